//! Inputs that the fuzz targets in fuzz/ found, kept as regression tests.

use catalog_ingest::format::Compression;
use catalog_ingest::text::infer_json_lines;

/// fuzz target `text_infer`, input `07 20 20 7b 7d 0a 20 7b 7d` (sniffed,
/// whole file: `  {}\n {}`): JSON lines whose objects have no key inferred
/// a table without columns, which Glue stores and Athena cannot read (the
/// Parquet reader refuses a schema without columns).
#[test]
fn json_lines_without_keys_are_refused() {
    let inferred = infer_json_lines("  {}\n {}", Compression::None, true);
    assert!(inferred.is_err(), "{inferred:?}");
}
