//! Configuration, read once at init.
//!
//! - `LAKE_SPEC`: the lake spec as inline JSON, or
//! - `LAKE_SPEC_URI`: `s3://bucket/key` of the lake spec (read on the first
//!   batch, and again every minute; see `spec_source.rs`);
//! - `DEFAULT_LAKE_LAYERS` (`raw=<bucket>,schematized=<bucket>,...`) and
//!   `DEFAULT_ATHENA_RESULTS_BUCKET`, with `LAKEOPS_ENVIRONMENT`: the default
//!   spec used while nothing is at `LAKE_SPEC_URI` (a fresh stack), see
//!   `LakeSpec::stack_default`;
//! - `ALERT_TOPIC_ARN`: the SNS topic of arrival alerts (required when a layer
//!   alerts, which the emergency layer does by default);
//! - `TEXT_SAMPLE_BYTES`: bytes read from the start of a text file (default 65536);
//! - `CATALOG_CACHE_TTL_SECONDS`: how long a warm container trusts the tables
//!   and partitions Glue confirmed (default 300; 0 turns the cache off, and
//!   every batch starts from Glue). It bounds how long a table or partition
//!   deleted by someone else goes unnoticed (see `cache.rs`).

use crate::batch::IngestConfig;
use lakeops_shared::settings::{Env, SettingsError};
use lakeops_shared::spec::lake::{parse_s3_uri, LakeSpec};
use lakeops_shared::spec::lake_default::parse_layer_buckets;
use lakeops_shared::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecSource {
    Inline(String),
    S3 { bucket: String, key: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub spec: SpecSource,
    /// The spec used while nothing is at `LAKE_SPEC_URI`.
    pub default_spec: Option<LakeSpec>,
    pub alert_topic_arn: Option<String>,
    pub text_sample_bytes: u64,
    pub cache_ttl: std::time::Duration,
}

pub fn read(mut env: Env) -> Result<Settings, SettingsError> {
    let inline: Option<String> = env.optional("LAKE_SPEC");
    let uri: Option<String> = env.optional("LAKE_SPEC_URI");
    let alert_topic_arn: Option<String> = env.optional("ALERT_TOPIC_ARN");
    let text_sample_bytes: u64 = env.or("TEXT_SAMPLE_BYTES", 64 * 1024);
    if !(1024..=8 * 1024 * 1024).contains(&text_sample_bytes) {
        env.problem("TEXT_SAMPLE_BYTES", "must be between 1024 and 8388608");
    }
    let cache_ttl_seconds: u64 = env.or(
        "CATALOG_CACHE_TTL_SECONDS",
        crate::cache::DEFAULT_TTL.as_secs(),
    );
    if cache_ttl_seconds > 3600 {
        env.problem(
            "CATALOG_CACHE_TTL_SECONDS",
            "must be at most 3600 (it bounds how long out-of-band deletions go unnoticed)",
        );
    }
    let spec = match (inline, uri) {
        (Some(text), None) => SpecSource::Inline(text),
        (None, Some(uri)) => match parse_s3_uri(&uri) {
            Some((bucket, key)) => SpecSource::S3 {
                bucket: bucket.into(),
                key: key.into(),
            },
            None => {
                env.problem("LAKE_SPEC_URI", "must be s3://bucket/key");
                SpecSource::Inline(String::new())
            }
        },
        (Some(_), Some(_)) => {
            env.problem("LAKE_SPEC", "set LAKE_SPEC or LAKE_SPEC_URI, not both");
            SpecSource::Inline(String::new())
        }
        (None, None) => {
            env.problem("LAKE_SPEC", "is missing (or set LAKE_SPEC_URI)");
            SpecSource::Inline(String::new())
        }
    };
    let default_spec = default_spec(&mut env);
    env.finish()?;
    Ok(Settings {
        spec,
        default_spec,
        alert_topic_arn,
        text_sample_bytes,
        cache_ttl: std::time::Duration::from_secs(cache_ttl_seconds),
    })
}

/// The default spec, when the template gives the layer buckets.
fn default_spec(env: &mut Env) -> Option<LakeSpec> {
    let layers: Option<String> = env.optional("DEFAULT_LAKE_LAYERS");
    let athena: Option<String> = env.optional("DEFAULT_ATHENA_RESULTS_BUCKET");
    let environment: Option<String> = env.optional("LAKEOPS_ENVIRONMENT");
    let layers = layers?;
    let (Some(athena), Some(environment)) = (athena, environment) else {
        env.problem(
            "DEFAULT_LAKE_LAYERS",
            "needs DEFAULT_ATHENA_RESULTS_BUCKET and LAKEOPS_ENVIRONMENT",
        );
        return None;
    };
    let spec = parse_layer_buckets(&layers)
        .map_err(|e| e.to_string())
        .and_then(|l| LakeSpec::stack_default(&environment, &l, &athena).map_err(|e| e.message));
    match spec {
        Ok(spec) => Some(spec),
        Err(problem) => {
            env.problem("DEFAULT_LAKE_LAYERS", problem);
            None
        }
    }
}

/// The ingest configuration: the spec parsed and validated, checked against
/// the alert topic.
pub fn config(settings: &Settings, spec_text: &str) -> Result<IngestConfig> {
    config_of(settings, LakeSpec::from_json(spec_text)?)
}

/// The ingest configuration of a parsed spec.
pub fn config_of(settings: &Settings, spec: LakeSpec) -> Result<IngestConfig> {
    if settings.alert_topic_arn.is_none() {
        if let Some(layer) = spec.layers.iter().find(|l| l.alerts()) {
            return Err(Error::invalid_input(format!(
                "ALERT_TOPIC_ARN: is required because layer `{}` raises alerts",
                layer.name
            )));
        }
    }
    let mut config = IngestConfig::new(spec, settings.alert_topic_arn.clone());
    config.text_sample_bytes = settings.text_sample_bytes;
    Ok(config)
}

/// Read the spec text from S3 (at most 1 MiB); `None` when there is no such
/// object (`NoSuchKey`: the role may list the bucket, else S3 would answer
/// `AccessDenied`).
pub async fn read_spec_from_s3(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Option<String>> {
    let object = match s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .range("bytes=0-1048575")
        .send()
        .await
    {
        Ok(object) => object,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
        Err(e) => {
            return Err(lakeops_shared::aws::aws_error(
                format!("s3:GetObject s3://{bucket}/{key}"),
                e,
            ))
        }
    };
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| Error::retryable(format!("s3:GetObject s3://{bucket}/{key} body: {e}")))?
        .into_bytes();
    String::from_utf8(bytes.to_vec())
        .map(Some)
        .map_err(|_| Error::invalid_input("LAKE_SPEC_URI: the object is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn reads_one_spec_source() {
        let s = read(env(&[("LAKE_SPEC_URI", "s3://specs/lake.json")])).unwrap();
        assert_eq!(
            s.spec,
            SpecSource::S3 {
                bucket: "specs".into(),
                key: "lake.json".into()
            }
        );
        assert_eq!(s.text_sample_bytes, 65536);
        assert_eq!(s.cache_ttl, std::time::Duration::from_secs(300));
        let s = read(env(&[
            ("LAKE_SPEC", "{}"),
            ("CATALOG_CACHE_TTL_SECONDS", "0"),
        ]))
        .unwrap();
        assert!(s.cache_ttl.is_zero());
        let error = read(env(&[
            ("LAKE_SPEC", "{}"),
            ("CATALOG_CACHE_TTL_SECONDS", "86400"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(error.contains("CATALOG_CACHE_TTL_SECONDS"), "{error}");
        let error = read(env(&[])).unwrap_err().to_string();
        assert!(error.contains("LAKE_SPEC is missing"), "{error}");
        let error = read(env(&[
            ("LAKE_SPEC", "{}"),
            ("LAKE_SPEC_URI", "s3://a/b"),
            ("TEXT_SAMPLE_BYTES", "5"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("not both") && error.contains("TEXT_SAMPLE_BYTES"),
            "{error}"
        );
    }

    #[test]
    fn the_template_gives_a_default_spec() {
        let layers = "raw=lakeops-dev-raw-1,schematized=lakeops-dev-schematized-1,filtered=lakeops-dev-filtered-1,emergency=lakeops-dev-emergency-1,curated=lakeops-dev-curated-1";
        let s = read(env(&[
            ("LAKE_SPEC_URI", "s3://specs/lake.json"),
            ("DEFAULT_LAKE_LAYERS", layers),
            (
                "DEFAULT_ATHENA_RESULTS_BUCKET",
                "lakeops-dev-athena-results-1",
            ),
            ("LAKEOPS_ENVIRONMENT", "dev"),
        ]))
        .unwrap();
        let spec = s.default_spec.unwrap();
        assert_eq!(
            spec.layer("curated").unwrap().database,
            "lakeops_dev_curated"
        );
        assert_eq!(
            spec.layer_of_bucket("lakeops-dev-raw-1").unwrap().name,
            "raw"
        );
        let error = read(env(&[
            ("LAKE_SPEC_URI", "s3://specs/lake.json"),
            ("DEFAULT_LAKE_LAYERS", "raw=lakeops-dev-raw-1"),
            (
                "DEFAULT_ATHENA_RESULTS_BUCKET",
                "lakeops-dev-athena-results-1",
            ),
            ("LAKEOPS_ENVIRONMENT", "dev"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(error.contains("DEFAULT_LAKE_LAYERS"), "{error}");
        let error = read(env(&[
            ("LAKE_SPEC_URI", "s3://specs/lake.json"),
            ("DEFAULT_LAKE_LAYERS", layers),
        ]))
        .unwrap_err()
        .to_string();
        assert!(error.contains("DEFAULT_ATHENA_RESULTS_BUCKET"), "{error}");
        assert!(read(env(&[("LAKE_SPEC_URI", "s3://specs/lake.json")]))
            .unwrap()
            .default_spec
            .is_none());
    }

    #[test]
    fn alerting_layers_need_a_topic() {
        let spec = crate::test_support::spec_json().to_string();
        let settings = read(env(&[("LAKE_SPEC", &spec)])).unwrap();
        let error = config(&settings, &spec).unwrap_err();
        assert!(
            error.message.contains("ALERT_TOPIC_ARN"),
            "{}",
            error.message
        );
        let settings = read(env(&[
            ("LAKE_SPEC", &spec),
            ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
        ]))
        .unwrap();
        assert!(config(&settings, &spec).is_ok());
    }
}
