//! Schema inference for delimited text (CSV, TSV, with a header row), from a
//! sample of the first bytes of a file. Pure. JSON lines are in `jsonl.rs`.
//!
//! A sample usually ends mid-row; unless the sample is the whole file, the
//! last (possibly partial) row is not used.

pub use crate::jsonl::{infer_json_lines, infer_json_lines_within};

use crate::format::{Column, Compression, InferredSchema};
use crate::glue_type::GlueType;
use crate::limits::{self, Work};
use crate::names::{self, printable, Reason};
use lakeops_shared::spec::lake::DataFormat;

/// At most this many data rows of a sample are typed.
pub const MAX_SAMPLE_ROWS: usize = 1000;
/// Files with more columns than this are rejected (Glue allows more, but a
/// "header" this wide is almost always a binary or a headerless file).
pub const MAX_COLUMNS: usize = 2000;

/// Split delimited text into records, honouring RFC 4180 quotes (a quoted
/// field may hold the delimiter, newlines and doubled quotes). Returns the
/// records and whether any field was quoted. When `complete` is false, the
/// last record is dropped unless it ended with a newline.
pub fn split_records(
    text: &str,
    delimiter: char,
    complete: bool,
    max_records: usize,
) -> (Vec<Vec<String>>, bool) {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut quoted = false;
    let mut ended_with_newline = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        ended_with_newline = false;
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                in_quotes = true;
                quoted = true;
            }
            c if c == delimiter => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                ended_with_newline = true;
                if records.len() >= max_records {
                    return (drop_blank(records), quoted);
                }
            }
            c => field.push(c),
        }
    }
    if !ended_with_newline && complete && !in_quotes {
        record.push(field);
        records.push(record);
    }
    (drop_blank(records), quoted)
}

fn drop_blank(records: Vec<Vec<String>>) -> Vec<Vec<String>> {
    records
        .into_iter()
        .filter(|r| !(r.len() == 1 && r[0].trim().is_empty()))
        .collect()
}

/// The Glue type of one text value, or `None` for an empty (null) value.
pub fn value_type(value: &str) -> Option<GlueType> {
    let v = value.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("null") || v == "\\N" {
        return None;
    }
    if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
        return Some(GlueType::Boolean);
    }
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // Leading zeros (`007`, zip codes) are identifiers, not numbers.
        if digits.len() > 1 && digits.starts_with('0') {
            return Some(GlueType::String);
        }
        return Some(if v.parse::<i64>().is_ok() {
            GlueType::BigInt
        } else {
            GlueType::String
        });
    }
    if is_decimal_number(v) {
        return Some(GlueType::Double);
    }
    if is_date(v) {
        return Some(GlueType::Date);
    }
    if is_timestamp(v) {
        return Some(GlueType::Timestamp);
    }
    Some(GlueType::String)
}

fn is_decimal_number(v: &str) -> bool {
    let body = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        (!int_part.is_empty() || !frac_part.is_empty()) && digits(int_part) && digits(frac_part);
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some())
}

/// `YYYY-MM-DD`
fn is_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&v[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&v[8..10].parse::<u32>().unwrap_or(0))
}

/// `YYYY-MM-DD HH:MM:SS[.fffffffff]`, the form Hive's text SerDe reads.
fn is_timestamp(v: &str) -> bool {
    if v.len() < 19 || !v.is_char_boundary(10) || !v.is_char_boundary(19) {
        return false;
    }
    let (date, rest) = v.split_at(10);
    let b = rest.as_bytes();
    is_date(date)
        && b[0] == b' '
        && b[3] == b':'
        && b[6] == b':'
        && [1, 2, 4, 5, 7, 8].iter().all(|&i| b[i].is_ascii_digit())
        && (b.len() == 9
            || (b[9] == b'.'
                && b.len() > 10
                && b[10..].iter().all(u8::is_ascii_digit)
                && b.len() <= 19))
}

/// Infer the schema of delimited text with a header row. Work is counted
/// against the default budget; see [`infer_delimited_within`].
pub fn infer_delimited(
    text: &str,
    format: DataFormat,
    compression: Compression,
    complete: bool,
) -> Result<InferredSchema, Reason> {
    infer_delimited_within(text, format, compression, complete, &mut Work::default())
}

/// [`infer_delimited`], counting the values typed against `work`.
pub fn infer_delimited_within(
    text: &str,
    format: DataFormat,
    compression: Compression,
    complete: bool,
    work: &mut Work,
) -> Result<InferredSchema, Reason> {
    let delimiter = if format == DataFormat::Tsv { '\t' } else { ',' };
    let (records, quoted) = split_records(text, delimiter, complete, MAX_SAMPLE_ROWS + 1);
    let Some((header, rows)) = records.split_first() else {
        return Err("no complete header row in the first bytes of the file".into());
    };
    if header.len() > MAX_COLUMNS {
        return Err(format!(
            "the header has {} fields, more than {MAX_COLUMNS}",
            header.len()
        ));
    }
    if header
        .iter()
        .all(|h| matches!(value_type(h), Some(t) if t != GlueType::String))
    {
        return Err(format!(
            "the first row ({}) looks like data, not a header",
            printable(&header.join(&delimiter.to_string()))
        ));
    }
    let names = names::column_names(header)?;
    let mut types: Vec<Option<GlueType>> = vec![None; names.len()];
    for (i, row) in rows.iter().enumerate() {
        if row.len() > names.len() {
            return Err(format!(
                "row {} has {} fields, the header has {}",
                i + 2,
                row.len(),
                names.len()
            ));
        }
        work.spend(row.len() as u64)?;
        for (slot, value) in types.iter_mut().zip(row) {
            if let Some(ty) = value_type(value) {
                *slot = Some(match slot.take() {
                    None => ty,
                    Some(seen) => GlueType::unify(&seen, &ty),
                });
            }
        }
    }
    let columns = names
        .into_iter()
        .zip(types)
        .map(|(name, ty)| {
            let ty = ty.unwrap_or(GlueType::String);
            // OpenCSVSerde reads dates and timestamps only as epoch numbers.
            let ty = if quoted && matches!(ty, GlueType::Date | GlueType::Timestamp) {
                GlueType::String
            } else {
                ty
            };
            Column::new(name, ty)
        })
        .collect::<Vec<_>>();
    limits::check_columns(&columns, work)?;
    let row_count = (complete && records.len() <= MAX_SAMPLE_ROWS).then_some(rows.len() as u64);
    Ok(InferredSchema {
        format,
        compression,
        columns,
        quoted,
        json_mapping: Vec::new(),
        row_count,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn cols(schema: &InferredSchema) -> Vec<(String, String)> {
        schema
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.to_string()))
            .collect()
    }

    pub(crate) fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn types_text_values() {
        assert_eq!(value_type("42"), Some(GlueType::BigInt));
        assert_eq!(value_type("-42"), Some(GlueType::BigInt));
        assert_eq!(value_type("007"), Some(GlueType::String));
        assert_eq!(value_type("99999999999999999999"), Some(GlueType::String));
        assert_eq!(value_type("3.14"), Some(GlueType::Double));
        assert_eq!(value_type("1e10"), Some(GlueType::Double));
        assert_eq!(value_type(".5"), Some(GlueType::Double));
        assert_eq!(value_type("1.2.3"), Some(GlueType::String));
        assert_eq!(value_type("TRUE"), Some(GlueType::Boolean));
        assert_eq!(value_type("2024-02-29"), Some(GlueType::Date));
        assert_eq!(value_type("2024-13-01"), Some(GlueType::String));
        assert_eq!(value_type("2024-02-29 10:00:00"), Some(GlueType::Timestamp));
        assert_eq!(
            value_type("2024-02-29 10:00:00.123"),
            Some(GlueType::Timestamp)
        );
        assert_eq!(value_type("2024-02-29T10:00:00Z"), Some(GlueType::String));
        assert_eq!(value_type(""), None);
        assert_eq!(value_type("\\N"), None);
    }

    #[test]
    fn infers_csv_with_header() {
        let text = "Id,First Name,amount,when,active,note\n1,Ann,1.5,2024-01-01,true,\n2,Bob,2,2024-01-02,false,x\n";
        let schema = infer_delimited(text, DataFormat::Csv, Compression::None, true).unwrap();
        assert_eq!(
            cols(&schema),
            pairs(&[
                ("id", "bigint"),
                ("first_name", "string"),
                ("amount", "double"),
                ("when", "date"),
                ("active", "boolean"),
                ("note", "string"),
            ])
        );
        assert_eq!(schema.row_count, Some(2));
        assert!(!schema.quoted);
    }

    #[test]
    fn a_partial_sample_drops_its_last_row() {
        let text = "a,b\n1,2\n3,hello wor";
        let schema = infer_delimited(text, DataFormat::Csv, Compression::None, false).unwrap();
        assert_eq!(cols(&schema), pairs(&[("a", "bigint"), ("b", "bigint")]));
        assert_eq!(schema.row_count, None);
    }

    #[test]
    fn quoted_csv_uses_string_dates_and_keeps_commas() {
        let text =
            "name,when,n\n\"Smith, J\",2024-01-01,\"1\"\n\"say \"\"hi\"\"\nthere\",2024-01-02,2\n";
        let (records, quoted) = split_records(text, ',', true, 10);
        assert!(quoted);
        assert_eq!(records[1][0], "Smith, J");
        assert_eq!(records[2][0], "say \"hi\"\nthere");
        let schema = infer_delimited(text, DataFormat::Csv, Compression::None, true).unwrap();
        assert_eq!(
            cols(&schema),
            pairs(&[("name", "string"), ("when", "string"), ("n", "bigint")])
        );
        assert!(schema.quoted);
    }

    #[test]
    fn tsv_and_crlf() {
        let text = "a\tb c\r\n1\tx\r\n";
        let schema = infer_delimited(text, DataFormat::Tsv, Compression::None, true).unwrap();
        assert_eq!(cols(&schema), pairs(&[("a", "bigint"), ("b_c", "string")]));
    }

    #[test]
    fn rejects_bad_delimited_text() {
        let err =
            |t: &str| infer_delimited(t, DataFormat::Csv, Compression::None, true).unwrap_err();
        assert!(err("1,2,3\n4,5,6\n").contains("looks like data"));
        assert!(err("a,b\n1,2,3\n").contains("row 2 has 3 fields"));
        assert!(err("a,A\n1,2\n").contains("both become `a`"));
        assert!(err("").contains("no complete header"));
        assert!(infer_delimited("a,b", DataFormat::Csv, Compression::None, false).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}", complete in any::<bool>()) {
            let _ = infer_delimited(&text, DataFormat::Csv, Compression::None, complete);
            let _ = infer_delimited(&text, DataFormat::Tsv, Compression::None, complete);
        }

        /// Writing a table as CSV and inferring it gives back its header and
        /// one type per column.
        #[test]
        fn csv_round_trip(
            header in proptest::collection::btree_set("[a-z][a-z0-9_]{0,8}", 1..6),
            rows in proptest::collection::vec(proptest::collection::vec(-1000i64..1000, 6), 1..20),
        ) {
            let header: Vec<String> = header.into_iter().collect();
            let mut text = header.join(",");
            text.push('\n');
            for row in &rows {
                let cells: Vec<String> = row.iter().take(header.len()).map(|v| v.to_string()).collect();
                text.push_str(&cells.join(","));
                text.push('\n');
            }
            let schema = infer_delimited(&text, DataFormat::Csv, Compression::None, true).unwrap();
            prop_assert_eq!(schema.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(), header);
            prop_assert!(schema.columns.iter().all(|c| c.ty == GlueType::BigInt));
            prop_assert_eq!(schema.row_count, Some(rows.len() as u64));
        }
    }
}
