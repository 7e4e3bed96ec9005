//! CSV, TSV and JSON-lines head inference (catalog-ingest `text`, `format`).
//!
//! Input: one byte choosing the format (bits 0-1: csv, tsv, jsonl, sniffed)
//! and whether the sample is the whole file (bit 2), then the sample.
//!
//! Properties: inference is deterministic; an inferred schema has at least
//! one column, at most `MAX_COLUMNS`, each a unique valid Glue name, with a
//! type string Glue accepts (at most 131,072 characters) that parses back to
//! the same type; JSON mappings name real columns; a row count is only given
//! for a whole file; a refusal gives a short, non-empty reason.
#![no_main]

use catalog_ingest::format::{sniff_text, valid_text_prefix, Compression, InferredSchema};
use catalog_ingest::glue_type::GlueType;
use catalog_ingest::text::{infer_delimited, infer_json_lines, MAX_COLUMNS};
use lakeops_fuzz::{assert_bounded_reason, split_first};
use lakeops_shared::spec::lake::{is_glue_name, DataFormat};
use libfuzzer_sys::fuzz_target;

/// Glue's limit on a column's type string (Column.Type).
const GLUE_TYPE_MAX: usize = 131_072;

fn infer(text: &str, format: DataFormat, complete: bool) -> Result<InferredSchema, String> {
    match format {
        DataFormat::Jsonl => infer_json_lines(text, Compression::None, complete),
        _ => infer_delimited(text, format, Compression::None, complete),
    }
}

fn check_schema(schema: &InferredSchema, format: DataFormat, complete: bool) {
    assert_eq!(schema.format, format);
    assert!(!schema.columns.is_empty(), "a schema without columns");
    assert!(schema.columns.len() <= MAX_COLUMNS);
    for (i, column) in schema.columns.iter().enumerate() {
        assert!(is_glue_name(&column.name), "column `{}`", column.name);
        assert!(
            !schema.columns[..i].iter().any(|c| c.name == column.name),
            "column `{}` twice",
            column.name
        );
        let text = column.ty.to_string();
        assert!(
            text.len() <= GLUE_TYPE_MAX,
            "a type of {} characters",
            text.len()
        );
        assert_eq!(
            GlueType::parse(&text),
            column.ty,
            "`{text}` does not parse back"
        );
    }
    for (column, _key) in &schema.json_mapping {
        assert!(schema.columns.iter().any(|c| &c.name == column));
    }
    if schema.row_count.is_some() {
        assert!(complete, "a row count from a partial sample");
    }
    if format == DataFormat::Jsonl {
        assert!(!schema.quoted);
    }
}

fuzz_target!(|data: &[u8]| {
    let (first, sample) = split_first(data);
    let complete = first & 4 != 0;
    let text = match valid_text_prefix(sample) {
        Ok(text) => text,
        Err(reason) => {
            assert_bounded_reason(&reason);
            assert_eq!(sniff_text(sample), None, "sniffed a format in binary data");
            return;
        }
    };
    assert!(sample.starts_with(text.as_bytes()));
    let format = match first & 3 {
        0 => DataFormat::Csv,
        1 => DataFormat::Tsv,
        2 => DataFormat::Jsonl,
        _ => match sniff_text(sample) {
            Some(format) => format,
            None => return,
        },
    };
    let inferred = infer(text, format, complete);
    assert_eq!(inferred, infer(text, format, complete), "not deterministic");
    match inferred {
        Ok(schema) => check_schema(&schema, format, complete),
        Err(reason) => assert_bounded_reason(&reason),
    }
});
