//! Format detection: by file name first, confirmed (or, without a known
//! extension, decided) by the first bytes. Gzip is undone here, with a bound
//! on the output so a small compressed sample cannot expand without limit.

use crate::glue_type::GlueType;
use lakeops_shared::spec::lake::DataFormat;
use std::io::Read;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: GlueType,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: GlueType) -> Self {
        Self {
            name: name.into(),
            ty,
        }
    }
}

/// What a file holds, as far as the catalog needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferredSchema {
    pub format: DataFormat,
    pub compression: Compression,
    pub columns: Vec<Column>,
    /// CSV with quoted fields needs OpenCSVSerde (LazySimpleSerDe does not
    /// understand quotes).
    pub quoted: bool,
    /// JSON keys whose column name differs from the key by more than case:
    /// (column, key), for the JSON SerDe's `mapping.` properties.
    pub json_mapping: Vec<(String, String)>,
    /// Rows, when that was cheap to know (whole small text files, Parquet).
    pub row_count: Option<u64>,
}

/// What the name says, if anything: (format, compression).
pub fn format_from_name(file_name: &str) -> Option<(DataFormat, Compression)> {
    let lower = file_name.to_ascii_lowercase();
    let (stem, compression) = match lower
        .strip_suffix(".gz")
        .or_else(|| lower.strip_suffix(".gzip"))
    {
        Some(stem) => (stem.to_string(), Compression::Gzip),
        None => (lower.clone(), Compression::None),
    };
    let extension = stem.rsplit_once('.').map(|(_, e)| e)?;
    let format = match extension {
        "csv" => DataFormat::Csv,
        "tsv" | "tab" => DataFormat::Tsv,
        "jsonl" | "ndjson" | "json" => DataFormat::Jsonl,
        // Parquet compresses inside the file; `.parquet.gz` is not readable.
        "parquet" | "parq" if compression == Compression::None => DataFormat::Parquet,
        _ => return None,
    };
    Some((format, compression))
}

pub const PARQUET_MAGIC: &[u8; 4] = b"PAR1";
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&GZIP_MAGIC)
}

/// Decide a format from the first bytes of an uncompressed sample.
pub fn sniff_text(sample: &[u8]) -> Option<DataFormat> {
    let text = valid_text_prefix(sample).ok()?;
    let first = text.trim_start();
    if first.starts_with('{') {
        return Some(DataFormat::Jsonl);
    }
    let line = first.lines().next()?;
    if line.contains('\t') {
        Some(DataFormat::Tsv)
    } else if line.contains(',') {
        Some(DataFormat::Csv)
    } else {
        None
    }
}

/// Decompress at most `limit` bytes of a gzip sample. A sample cut in the
/// middle of the stream is expected: what was decompressed up to the cut is
/// returned, and `complete` says whether the stream ended.
pub fn gunzip_prefix(compressed: &[u8], limit: usize) -> Result<(Vec<u8>, bool), String> {
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut out = Vec::with_capacity(limit.min(1 << 20));
    let mut buf = [0u8; 16 * 1024];
    loop {
        if out.len() >= limit {
            out.truncate(limit);
            return Ok((out, false));
        }
        match decoder.read(&mut buf) {
            Ok(0) => return Ok((out, true)),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // The sample ends mid-stream: keep what we have.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {
                return Ok((out, false))
            }
            Err(e) => {
                if out.is_empty() {
                    return Err(format!("not a readable gzip stream: {e}"));
                }
                return Ok((out, false));
            }
        }
    }
}

/// The sample as text: UTF-8 without NUL bytes. A multi-byte character cut
/// at the end of a partial sample is dropped; anything else invalid means
/// the file is binary.
pub fn valid_text_prefix(sample: &[u8]) -> Result<&str, String> {
    if let Some(at) = sample.iter().position(|b| *b == 0) {
        return Err(format!("binary content: a NUL byte at offset {at}"));
    }
    match std::str::from_utf8(sample) {
        Ok(text) => Ok(text),
        Err(e) if e.error_len().is_none() => {
            Ok(std::str::from_utf8(&sample[..e.valid_up_to()]).expect("valid prefix"))
        }
        Err(e) => Err(format!(
            "binary content: invalid UTF-8 at offset {}",
            e.valid_up_to()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn names_say_format_and_compression() {
        assert_eq!(
            format_from_name("a.CSV"),
            Some((DataFormat::Csv, Compression::None))
        );
        assert_eq!(
            format_from_name("a.csv.gz"),
            Some((DataFormat::Csv, Compression::Gzip))
        );
        assert_eq!(
            format_from_name("a.tsv"),
            Some((DataFormat::Tsv, Compression::None))
        );
        assert_eq!(
            format_from_name("a.ndjson.gz"),
            Some((DataFormat::Jsonl, Compression::Gzip))
        );
        assert_eq!(
            format_from_name("part-0.snappy.parquet"),
            Some((DataFormat::Parquet, Compression::None))
        );
        assert_eq!(format_from_name("a.parquet.gz"), None);
        assert_eq!(format_from_name("a.avro"), None);
        assert_eq!(format_from_name("part-00000"), None);
    }

    #[test]
    fn sniffs_text_formats() {
        assert_eq!(sniff_text(b"  {\"a\":1}\n"), Some(DataFormat::Jsonl));
        assert_eq!(sniff_text(b"a\tb\n1\t2\n"), Some(DataFormat::Tsv));
        assert_eq!(sniff_text(b"a,b\n1,2\n"), Some(DataFormat::Csv));
        assert_eq!(sniff_text(b"hello\n"), None);
        assert_eq!(sniff_text(b"\x00\x01\x02"), None);
    }

    #[test]
    fn text_checks_catch_binary() {
        assert!(valid_text_prefix(b"a,b\x00").unwrap_err().contains("NUL"));
        assert!(valid_text_prefix(b"a\xff\xfeb")
            .unwrap_err()
            .contains("invalid UTF-8"));
        // A character cut at the end of a partial sample is fine.
        assert_eq!(
            valid_text_prefix("ab\u{e9}".as_bytes().split_last().unwrap().1).unwrap(),
            "ab"
        );
    }

    #[test]
    fn gunzip_is_bounded_and_tolerates_a_cut_stream() {
        let data = "x,y\n".repeat(100_000);
        let packed = gzip(data.as_bytes());
        let (out, complete) = gunzip_prefix(&packed, 1000).unwrap();
        assert_eq!(out.len(), 1000);
        assert!(!complete);
        let (out, complete) = gunzip_prefix(&packed, 10 << 20).unwrap();
        assert_eq!(out.len(), data.len());
        assert!(complete);
        let (out, complete) = gunzip_prefix(&packed[..packed.len() / 2], 10 << 20).unwrap();
        assert!(!out.is_empty() && !complete);
        assert!(data.starts_with(std::str::from_utf8(&out).unwrap()));
        assert!(gunzip_prefix(b"\x1f\x8bnot really", 100).is_err());
    }
}
