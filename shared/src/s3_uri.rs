//! `s3://` URIs, parsed one way everywhere: a valid bucket name (S3's naming
//! rules, `validate::is_bucket_name`) and, for an object, a non-empty key.

use crate::validate::is_bucket_name;

/// `s3://bucket/key` of one object → (`bucket`, `key`). `None` unless the
/// bucket is a valid bucket name and the key is not empty (`s3://b/` and
/// `s3://b` name no object).
pub fn parse_s3_uri(uri: &str) -> Option<(&str, &str)> {
    let (bucket, key) = parse_s3_location(uri)?;
    (!key.is_empty()).then_some((bucket, key))
}

/// `s3://bucket/prefix` of a location (a prefix, possibly empty) →
/// (`bucket`, `prefix`). `None` unless the bucket is a valid bucket name.
pub fn parse_s3_location(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    is_bucket_name(bucket).then_some((bucket, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_need_a_valid_bucket_and_a_key() {
        assert_eq!(
            parse_s3_uri("s3://my-bucket/specs/lake.json"),
            Some(("my-bucket", "specs/lake.json"))
        );
        assert_eq!(parse_s3_uri("s3://my-bucket/a/"), Some(("my-bucket", "a/")));
        for bad in [
            "s3:///key",           // empty bucket
            "s3://my-bucket",      // no key
            "s3://my-bucket/",     // empty key
            "s3://b/key",          // bucket too short
            "s3://My_Bucket/key",  // uppercase and `_`
            "s3://-bucket/key",    // starts with `-`
            "s3://my..bucket/key", // `..`
            "https://my-bucket/key",
            "my-bucket/key",
            "",
        ] {
            assert_eq!(parse_s3_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn locations_may_have_an_empty_prefix() {
        assert_eq!(
            parse_s3_location("s3://athena-results/engineer/"),
            Some(("athena-results", "engineer/"))
        );
        assert_eq!(
            parse_s3_location("s3://athena-results/"),
            Some(("athena-results", ""))
        );
        assert_eq!(
            parse_s3_location("s3://athena-results"),
            Some(("athena-results", ""))
        );
        assert_eq!(parse_s3_location("s3:///x"), None);
        assert_eq!(parse_s3_location("s3://Bad_Bucket/x"), None);
    }
}
