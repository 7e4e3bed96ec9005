//! The Parquet footer reader (catalog-ingest `parquet_footer`).
//!
//! Input: the footer metadata (Thrift compact `FileMetaData`), as the
//! handler passes it to `infer_parquet` after the length check; and the same
//! bytes as a whole file's tail for `metadata_length`.
//!
//! Properties: the reader allocates at most `ALLOC_PER_FOOTER_BYTE` bytes per
//! footer byte plus `ALLOC_FIXED` (measured by a counting global allocator),
//! so with the `MAX_FOOTER_BYTES` cap on the footer its memory is bounded
//! before any byte is read; a checked length fits the object and the cap;
//! an inferred schema has unique valid Glue column names whose type strings
//! parse back to the same type; inference is deterministic; a refusal gives a
//! short, non-empty reason.
#![no_main]

use catalog_ingest::glue_type::GlueType;
use catalog_ingest::parquet_footer::{
    infer_parquet, metadata_length, FOOTER_TAIL_BYTES, MAX_FOOTER_BYTES,
};
use lakeops_fuzz::{assert_bounded_reason, Counting};
use lakeops_shared::spec::lake::{is_glue_name, DataFormat};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: Counting = Counting;

/// The cap: the decoded schema (one element of about 60 bytes per Thrift
/// struct, each at least one byte of footer, in a vector that may double),
/// its tree and the Glue types built from it, and the column names.
pub const ALLOC_PER_FOOTER_BYTE: usize = 512;
pub const ALLOC_FIXED: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    // The tail check, with the input as the end of an object of some size.
    for object_size in [data.len() as u64, u64::from(u32::MAX) + 64] {
        match metadata_length(data, object_size) {
            Ok(length) => {
                assert!(length > 0 && length <= MAX_FOOTER_BYTES);
                assert!(length + FOOTER_TAIL_BYTES + 4 <= object_size);
                assert!(data.ends_with(b"PAR1"));
            }
            Err(reason) => assert_bounded_reason(&reason),
        }
    }

    let (inferred, peak) = Counting::peak_of(|| infer_parquet(data));
    let cap = ALLOC_FIXED + ALLOC_PER_FOOTER_BYTE * data.len();
    assert!(
        peak <= cap,
        "{peak} bytes allocated for a {}-byte footer (cap {cap})",
        data.len()
    );
    assert_eq!(inferred, infer_parquet(data), "not deterministic");
    match inferred {
        Ok(schema) => {
            assert_eq!(schema.format, DataFormat::Parquet);
            assert!(!schema.columns.is_empty());
            for (i, column) in schema.columns.iter().enumerate() {
                assert!(is_glue_name(&column.name), "column `{}`", column.name);
                assert!(!schema.columns[..i].iter().any(|c| c.name == column.name));
                let text = column.ty.to_string();
                assert_eq!(
                    GlueType::parse(&text),
                    column.ty,
                    "`{text}` does not parse back"
                );
            }
        }
        Err(reason) => assert_bounded_reason(&reason),
    }
});
