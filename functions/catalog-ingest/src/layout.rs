//! From an S3 notification's bucket and key to a layer, a table and a
//! partition. Pure.
//!
//! Layout: `<table segments...>/<k=v>/.../<file>`. The layer's
//! `table_root.segment` says how many leading folders name the table; the
//! folders after them are Hive-style partitions.

use crate::names::{self, printable, Reason};
use lakeops_shared::spec::lake::{LakeSpec, LayerSpec};
use percent_encoding::percent_decode_str;

/// Decode the key of an S3 event: S3 URL-encodes it form-style, so `+` is a
/// space and a literal `+` arrives as `%2B`.
pub fn decode_event_key(encoded: &str) -> Result<String, Reason> {
    let spaced = encoded.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| format!("the key `{}` does not decode to UTF-8", printable(encoded)))
}

/// Where an object belongs in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub layer: String,
    pub database: String,
    pub table: String,
    /// `s3://bucket/table/segments/`
    pub table_location: String,
    /// Normalised partition key names, outermost first.
    pub partition_keys: Vec<String>,
    /// Partition values, Hive-unescaped.
    pub partition_values: Vec<String>,
    /// The key prefix of the partition (or of the table when unpartitioned),
    /// ending in `/`.
    pub partition_prefix: String,
    /// `s3://bucket/<partition_prefix>`
    pub partition_location: String,
    pub file_name: String,
}

/// The outcome of placing a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Object(Placement),
    /// Not data: a folder marker, or a writer's marker or temporary file
    /// (`_SUCCESS`, `.part.crc`, `_temporary/`), which Hive readers skip too.
    Ignore(String),
}

pub fn place(spec: &LakeSpec, bucket: &str, key: &str) -> Result<Place, Reason> {
    let layer = spec
        .layer_of_bucket(bucket)
        .ok_or_else(|| format!("bucket `{bucket}` is not a layer of the lake spec"))?;
    place_in_layer(layer, bucket, key)
}

pub fn place_in_layer(layer: &LayerSpec, bucket: &str, key: &str) -> Result<Place, Reason> {
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the key `{}` contains the control character U+{:04X}",
            printable(key),
            c as u32
        ));
    }
    if key.ends_with('/') {
        return Ok(Place::Ignore("folder marker".into()));
    }
    let segments: Vec<&str> = key.split('/').collect();
    if segments.iter().any(|s| s.contains("..") || *s == ".") {
        return Err(format!(
            "the key `{}` has a `..` or `.` segment",
            printable(key)
        ));
    }
    if segments.iter().any(|s| s.is_empty()) {
        return Err(format!(
            "the key `{}` has an empty segment (`//` or a leading `/`)",
            printable(key)
        ));
    }
    let (file_name, folders) = segments.split_last().expect("split never yields nothing");
    if file_name.starts_with('_') || file_name.starts_with('.') {
        return Ok(Place::Ignore(format!(
            "`{}` is a hidden or marker file",
            printable(file_name)
        )));
    }
    if let Some(hidden) = folders
        .iter()
        .find(|s| s.starts_with('_') || s.starts_with('.'))
    {
        return Ok(Place::Ignore(format!(
            "`{}` is a hidden or temporary folder",
            printable(hidden)
        )));
    }
    let root = layer.table_root.segment;
    if folders.len() <= root {
        return Err(format!(
            "the key `{}` has {} folder(s); layer `{}` names tables by folder {} (counting from 0), so a file needs at least {}",
            printable(key),
            folders.len(),
            layer.name,
            root,
            root + 1
        ));
    }
    let (table_segments, partition_segments) = folders.split_at(root + 1);
    let table = names::table_name(table_segments).map_err(|e| format!("table name: {e}"))?;

    let mut partition_keys = Vec::with_capacity(partition_segments.len());
    let mut partition_values = Vec::with_capacity(partition_segments.len());
    for segment in partition_segments {
        let (raw_key, raw_value) = segment.split_once('=').ok_or_else(|| {
            format!(
                "folder `{}` below table `{table}` is not a Hive partition `key=value`",
                printable(segment)
            )
        })?;
        let key_name =
            names::normalize(&hive_unescape(raw_key)).map_err(|e| format!("partition key: {e}"))?;
        if partition_keys.contains(&key_name) {
            return Err(format!(
                "partition key `{key_name}` appears twice in the key"
            ));
        }
        let value = hive_unescape(raw_value);
        if value.is_empty() {
            return Err(format!("partition `{key_name}` has an empty value"));
        }
        if value.chars().any(|c| c.is_control()) {
            return Err(format!(
                "partition `{key_name}` has a control character in its value"
            ));
        }
        partition_keys.push(key_name);
        partition_values.push(value);
    }
    let table_prefix = format!("{}/", table_segments.join("/"));
    let partition_prefix = format!("{}/", folders.join("/"));
    Ok(Place::Object(Placement {
        layer: layer.name.clone(),
        database: layer.database.clone(),
        table,
        table_location: format!("s3://{bucket}/{table_prefix}"),
        partition_keys,
        partition_values,
        partition_location: format!("s3://{bucket}/{partition_prefix}"),
        partition_prefix,
        file_name: file_name.to_string(),
    }))
}

/// Undo Hive's escaping of partition paths (`%3A` → `:`). Sequences that are
/// not `%` and two hex digits stay as they are, as Hive leaves them.
pub fn hive_unescape(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakeops_shared::spec::lake::TableRoot;
    use proptest::prelude::*;

    fn layer(segment: usize) -> LayerSpec {
        serde_json::from_value(serde_json::json!({
            "name": "raw", "bucket": "lake-raw", "database": "lake_raw",
            "table_root": {"segment": segment}
        }))
        .unwrap()
    }

    fn object(segment: usize, key: &str) -> Placement {
        match place_in_layer(&layer(segment), "lake-raw", key).unwrap() {
            Place::Object(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decodes_s3_event_keys() {
        assert_eq!(
            decode_event_key("my+folder/a%2Bb%3Dc.csv").unwrap(),
            "my folder/a+b=c.csv"
        );
        assert_eq!(
            decode_event_key("dt%3D2024-01-01/x.csv").unwrap(),
            "dt=2024-01-01/x.csv"
        );
        assert_eq!(decode_event_key("caf%C3%A9").unwrap(), "café");
        assert!(decode_event_key("bad%FF%FE").is_err());
    }

    #[test]
    fn places_hive_partitioned_keys() {
        let p = object(0, "Sales Orders/year=2024/month=01/part 0.csv");
        assert_eq!(p.table, "sales_orders");
        assert_eq!(p.table_location, "s3://lake-raw/Sales Orders/");
        assert_eq!(p.partition_keys, vec!["year", "month"]);
        assert_eq!(p.partition_values, vec!["2024", "01"]);
        assert_eq!(p.partition_prefix, "Sales Orders/year=2024/month=01/");
        assert_eq!(
            p.partition_location,
            "s3://lake-raw/Sales Orders/year=2024/month=01/"
        );
        assert_eq!(p.database, "lake_raw");
    }

    #[test]
    fn table_root_segment_names_the_table_from_several_folders() {
        let p = object(1, "crm/customers/dt=2024-01-01/a.json");
        assert_eq!(p.table, "crm_customers");
        assert_eq!(p.table_location, "s3://lake-raw/crm/customers/");
        let unpartitioned = object(1, "crm/customers/a.json");
        assert!(unpartitioned.partition_keys.is_empty());
        assert_eq!(
            unpartitioned.partition_location,
            "s3://lake-raw/crm/customers/"
        );
        let error = place_in_layer(&layer(1), "lake-raw", "crm/a.json").unwrap_err();
        assert!(error.contains("at least 2"), "{error}");
    }

    #[test]
    fn hive_escapes_in_values_are_undone() {
        let p = object(0, "events/ts=2024-01-01 10%3A00%3A00/x.parquet");
        assert_eq!(p.partition_values, vec!["2024-01-01 10:00:00"]);
        assert_eq!(
            p.partition_location,
            "s3://lake-raw/events/ts=2024-01-01 10%3A00%3A00/"
        );
        assert_eq!(hive_unescape("100%"), "100%");
        assert_eq!(hive_unescape("%zz"), "%zz");
        assert_eq!(hive_unescape("a%2"), "a%2");
    }

    #[test]
    fn rejects_unsafe_keys_with_a_reason() {
        let l = layer(0);
        for (key, expected) in [
            ("../etc/passwd", "`..`"),
            ("t/../x.csv", "`..`"),
            ("t/./x.csv", "`..`"),
            ("t//x.csv", "empty segment"),
            ("t\u{0001}/x.csv", "control character"),
            ("tablé/x.csv", "non-ASCII"),
            ("t/notapartition/x.csv", "not a Hive partition"),
            ("t/dt=/x.csv", "empty value"),
            ("t/dt=1/DT=2/x.csv", "appears twice"),
            ("x.csv", "at least 1"),
            ("---/x.csv", "no letter or digit"),
        ] {
            let error = place_in_layer(&l, "lake-raw", key).unwrap_err();
            assert!(
                error.contains(expected),
                "{key}: `{expected}` not in {error}"
            );
        }
    }

    #[test]
    fn ignores_markers_and_hidden_files() {
        let l = layer(0);
        for key in [
            "t/",
            "t/_SUCCESS",
            "t/.part-0.crc",
            "t/_temporary/0/x.csv",
            "t/dt=1/.hidden/x",
        ] {
            assert!(
                matches!(
                    place_in_layer(&l, "lake-raw", key).unwrap(),
                    Place::Ignore(_)
                ),
                "{key}"
            );
        }
    }

    #[test]
    fn unknown_buckets_are_rejected() {
        let spec = crate::test_support::spec();
        assert!(place(&spec, "someone-else", "t/x.csv")
            .unwrap_err()
            .contains("not a layer"));
        let _ = TableRoot::default();
    }

    proptest! {
        /// Whatever the key, placing it never panics, and a placed object has
        /// a valid table name, a location under the bucket and one value per key.
        #[test]
        fn placing_any_key_is_safe(key in "\\PC{0,80}", segment in 0usize..3) {
            if let Ok(Place::Object(p)) = place_in_layer(&layer(segment), "lake-raw", &key) {
                prop_assert!(lakeops_shared::spec::lake::is_glue_name(&p.table));
                prop_assert!(p.table_location.starts_with("s3://lake-raw/"));
                prop_assert!(p.partition_location.starts_with(&p.table_location));
                prop_assert_eq!(p.partition_keys.len(), p.partition_values.len());
                prop_assert!(!key.contains(".."));
            }
        }

        /// Encoding a key as S3 does and decoding it gives it back.
        #[test]
        fn event_keys_round_trip(key in "\\PC{1,60}") {
            let encoded: String = percent_encoding::utf8_percent_encode(&key, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
            prop_assert_eq!(decode_event_key(&encoded).unwrap(), key.clone());
            let form_style = encoded.replace("%20", "+");
            prop_assert_eq!(decode_event_key(&form_style).unwrap(), key);
        }
    }
}
