//! The lake spec a freshly deployed stack runs with until one is uploaded:
//! derived from what the template knows (the environment, the five layer
//! buckets, the Athena results bucket), named as in the example spec
//! (`events/lake-spec.json`), so that an uploaded spec that follows the
//! example keeps the same databases and tables.
//!
//! - name `lakeops-<env>`; layer databases `lakeops_<env>_<layer>` (a `-` of
//!   the environment becomes `_`: Glue and Athena names have no `-`);
//! - every layer parses every format; no layer has a crawler, because the
//!   crawlers exist only once lake setup ran;
//! - Athena workgroups `lakeops-<env>-<profile>` writing to
//!   `s3://<results bucket>/<profile>/`.

use super::lake::{LakeSpec, Profile, REQUIRED_LAYERS};
use serde_json::json;

/// `raw=bucket,schematized=bucket,...` → [(layer, bucket)], or why not.
pub fn parse_layer_buckets(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut layers = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (layer, bucket) = item
            .split_once('=')
            .ok_or_else(|| format!("`{item}` is not layer=bucket"))?;
        layers.push((layer.trim().to_string(), bucket.trim().to_string()));
    }
    for required in REQUIRED_LAYERS {
        if !layers.iter().any(|(layer, _)| layer == required) {
            return Err(format!("the `{required}` layer has no bucket"));
        }
    }
    Ok(layers)
}

/// The Glue database of a layer, as the example spec names it.
pub fn layer_database(environment: &str, layer: &str) -> String {
    format!("lakeops_{}_{layer}", environment.replace('-', "_")).to_ascii_lowercase()
}

impl LakeSpec {
    /// The spec of a stack before one is uploaded (see the module docs);
    /// validated like any other.
    pub fn stack_default(
        environment: &str,
        layer_buckets: &[(String, String)],
        athena_results_bucket: &str,
    ) -> crate::Result<LakeSpec> {
        let layers: Vec<serde_json::Value> = layer_buckets
            .iter()
            .map(|(layer, bucket)| {
                json!({
                    "name": layer,
                    "bucket": bucket,
                    "database": layer_database(environment, layer),
                    "crawler": {"enabled": false},
                })
            })
            .collect();
        let workgroups: Vec<serde_json::Value> = Profile::ALL
            .iter()
            .map(|profile| {
                json!({
                    "profile": profile.as_str(),
                    "name": format!("lakeops-{environment}-{}", profile.as_str()),
                    "result_location": format!("s3://{athena_results_bucket}/{}/", profile.as_str()),
                })
            })
            .collect();
        LakeSpec::from_value(json!({
            "name": format!("lakeops-{environment}"),
            "layers": layers,
            "athena": {"workgroups": workgroups},
        }))
        .map_err(|e| e.context("the default lake spec"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(env: &str) -> Vec<(String, String)> {
        REQUIRED_LAYERS
            .iter()
            .map(|l| (l.to_string(), format!("lakeops-{env}-{l}-123456789012")))
            .collect()
    }

    #[test]
    fn the_default_spec_names_things_as_the_example_does() {
        let spec = LakeSpec::stack_default(
            "dev",
            &buckets("dev"),
            "lakeops-dev-athena-results-123456789012",
        )
        .unwrap();
        let example: LakeSpec =
            LakeSpec::from_json(include_str!("../../../events/lake-spec.json")).unwrap();
        assert_eq!(spec.name, example.name);
        for layer in &example.layers {
            let ours = spec.layer(&layer.name).unwrap();
            assert_eq!(
                (&ours.bucket, &ours.database),
                (&layer.bucket, &layer.database)
            );
            assert!(!ours.crawler.enabled, "no crawler before lake setup");
        }
        for (ours, theirs) in spec
            .athena
            .workgroups
            .iter()
            .zip(&example.athena.workgroups)
        {
            assert_eq!(
                (&ours.name, &ours.result_location),
                (&theirs.name, &theirs.result_location)
            );
        }
        assert!(spec.layer("emergency").unwrap().alerts());
    }

    #[test]
    fn environment_dashes_become_underscores_in_databases() {
        let spec = LakeSpec::stack_default("dev-eu", &buckets("dev-eu"), "results-bucket").unwrap();
        assert_eq!(spec.layer("raw").unwrap().database, "lakeops_dev_eu_raw");
        assert_eq!(spec.name, "lakeops-dev-eu");
    }

    #[test]
    fn layer_buckets_are_read_and_checked() {
        let text = "raw=a-raw, schematized=a-s,filtered=a-f,emergency=a-e,curated=a-c";
        let layers = parse_layer_buckets(text).unwrap();
        assert_eq!(layers[1], ("schematized".to_string(), "a-s".to_string()));
        assert!(parse_layer_buckets("raw=a-raw")
            .unwrap_err()
            .contains("`schematized` layer"));
        assert!(parse_layer_buckets("raw")
            .unwrap_err()
            .contains("not layer=bucket"));
        let error = LakeSpec::stack_default(
            "dev",
            &parse_layer_buckets(&text.replace("a-raw", "A_RAW")).unwrap(),
            "r-b",
        )
        .unwrap_err();
        assert!(
            error.message.contains("layers[0].bucket"),
            "{}",
            error.message
        );
    }
}
