//! S3 key decoding and placement (catalog-ingest `layout`).
//!
//! Input: one byte for the layer's `table_root.segment` (0 to 3), then the
//! key as S3 sends it in an event (form-style URL encoding).
//!
//! Properties: decoding is total and undoes S3's encoding; placement is
//! deterministic; a placed object's table and partition keys are valid Glue
//! names, unique, with non-empty values, and its prefixes rebuild the key;
//! a refusal or an ignore gives a short, non-empty reason.
#![no_main]

use catalog_ingest::layout::{decode_event_key, place_in_layer, Place};
use lakeops_fuzz::{assert_bounded_reason, split_first};
use lakeops_shared::spec::lake::{is_glue_name, LayerSpec};
use libfuzzer_sys::fuzz_target;

const BUCKET: &str = "lakeops-dev-raw";

fn layer(segment: usize) -> LayerSpec {
    serde_json::from_value(serde_json::json!({
        "name": "raw", "bucket": BUCKET, "database": "lakeops_dev_raw",
        "table_root": {"segment": segment}
    }))
    .expect("a valid layer")
}

/// How S3 encodes an event's key: form-style, `+` for a space.
fn s3_encode(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn check_placement(segment: usize, key: &str) {
    let layer = layer(segment);
    let placed = place_in_layer(&layer, BUCKET, key);
    assert_eq!(
        placed,
        place_in_layer(&layer, BUCKET, key),
        "not deterministic"
    );
    match placed {
        Ok(Place::Object(p)) => {
            assert!(
                is_glue_name(&p.table),
                "table `{}` is not a Glue name",
                p.table
            );
            assert_eq!(p.database, layer.database);
            assert_eq!(p.layer, layer.name);
            assert_eq!(p.partition_keys.len(), p.partition_values.len());
            for (i, k) in p.partition_keys.iter().enumerate() {
                assert!(is_glue_name(k), "partition key `{k}` is not a Glue name");
                assert!(
                    !p.partition_keys[..i].contains(k),
                    "partition key `{k}` twice"
                );
            }
            for v in &p.partition_values {
                assert!(
                    !v.is_empty() && !v.chars().any(char::is_control),
                    "value {v:?}"
                );
            }
            assert!(!p.file_name.is_empty() && !p.file_name.contains('/'));
            assert!(p.partition_prefix.ends_with('/'));
            assert_eq!(format!("{}{}", p.partition_prefix, p.file_name), key);
            let table_prefix = p
                .table_location
                .strip_prefix(&format!("s3://{BUCKET}/"))
                .expect("table location in the bucket");
            assert!(table_prefix.ends_with('/'));
            assert!(p.partition_prefix.starts_with(table_prefix));
            assert_eq!(
                p.partition_location,
                format!("s3://{BUCKET}/{}", p.partition_prefix)
            );
            // Table folders, then exactly one folder per partition.
            let folders = p.partition_prefix.matches('/').count();
            assert_eq!(folders, segment + 1 + p.partition_keys.len());
        }
        Ok(Place::Ignore(reason)) => assert_bounded_reason(&reason),
        Err(reason) => assert_bounded_reason(&reason),
    }
}

fuzz_target!(|data: &[u8]| {
    let (first, rest) = split_first(data);
    let segment = usize::from(first % 4);
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    // Decoding is total; text without escapes decodes to itself.
    match decode_event_key(text) {
        Ok(key) => {
            if !text.contains(['%', '+']) {
                assert_eq!(key, text);
            }
            check_placement(segment, &key);
        }
        Err(reason) => assert_bounded_reason(&reason),
    }
    // Decoding undoes S3's encoding of any key.
    assert_eq!(decode_event_key(&s3_encode(text)).as_deref(), Ok(text));
    check_placement(segment, text);
});
