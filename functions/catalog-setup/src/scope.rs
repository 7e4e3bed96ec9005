//! Which Lake Formation data locations catalog-setup may touch. Lake Formation's
//! location actions (RegisterResource, UpdateResource, DeregisterResource) have
//! no resource types in IAM, so template.yaml must allow them on "*"; the bound
//! is kept here instead: only the layer buckets of the spec, and only buckets of
//! this deployment's environment (`lakeops-<env>-...`, the names every other
//! layer permission in template.yaml is scoped to). Another account's or
//! environment's bucket can never be registered, re-registered or deregistered.

use lakeops_shared::spec::lake::LakeSpec;
use lakeops_shared::validate::Problems;
use lakeops_shared::{Error, Result};

/// The name prefix of this environment's buckets.
pub fn bucket_prefix(environment: &str) -> String {
    format!("lakeops-{environment}-")
}

/// Whether `bucket` is one of this environment's buckets. Pure.
pub fn is_own_bucket(bucket: &str, environment: &str) -> bool {
    bucket.starts_with(&bucket_prefix(environment)) && !bucket.contains('/')
}

/// Refuse a spec that would register a layer bucket of another environment
/// (or of no lakeops environment), naming each such layer. Pure.
pub fn check_spec_locations(spec: &LakeSpec, environment: &str) -> Result<()> {
    if !spec.lake_formation.register_locations {
        return Ok(());
    }
    let mut problems = Problems::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        if !is_own_bucket(&layer.bucket, environment) {
            problems.add(
                format!("layers[{i}].bucket"),
                format!(
                    "{:?} is not a bucket of environment {environment:?} ({}...): catalog-setup registers \
                     only this environment's layer buckets with Lake Formation (or set \
                     lake_formation.register_locations to false)",
                    layer.bucket,
                    bucket_prefix(environment)
                ),
            );
        }
    }
    problems
        .into_result()
        .map_err(|problems| Error::invalid_fields(&problems))
}

/// The last check before a register, update or deregister call: the location
/// is a whole bucket of the spec's layers and of this environment. Pure.
pub fn ensure_own_location(resource_arn: &str, spec: &LakeSpec, environment: &str) -> Result<()> {
    let own = spec.layers.iter().any(|layer| {
        layer.location_arn() == resource_arn && is_own_bucket(&layer.bucket, environment)
    });
    if own {
        Ok(())
    } else {
        Err(Error::terminal(format!(
            "refusing to change the Lake Formation location {resource_arn}: it is not a layer bucket of \
             environment {environment:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::spec_json;
    use lakeops_shared::ErrorKind;

    fn spec(value: serde_json::Value) -> LakeSpec {
        LakeSpec::from_value(value).unwrap()
    }

    #[test]
    fn own_buckets_are_this_environments_only() {
        assert!(is_own_bucket("lakeops-dev-raw", "dev"));
        assert!(is_own_bucket("lakeops-dev-raw-123456789012", "dev"));
        assert!(!is_own_bucket("lakeops-prod-raw", "dev"));
        assert!(!is_own_bucket("lakeops-devx-raw", "dev"));
        assert!(!is_own_bucket("other-raw", "dev"));
        assert!(!is_own_bucket("lakeops-dev", "dev"));
    }

    #[test]
    fn a_spec_registering_another_environments_bucket_is_refused_by_field() {
        let mut value = spec_json();
        assert!(check_spec_locations(&spec(value.clone()), "dev").is_ok());
        value["layers"][1]["bucket"] = serde_json::json!("lakeops-prod-schematized");
        value["layers"][3]["bucket"] = serde_json::json!("finance-emergency");
        let error = check_spec_locations(&spec(value.clone()), "dev").unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidInput);
        assert!(error.message.contains("layers[1].bucket"), "{error}");
        assert!(error.message.contains("layers[3].bucket"), "{error}");
        assert!(!error.message.contains("layers[0]"), "{error}");

        // Not registering locations, the buckets are not catalog-setup's to bound.
        value["lake_formation"]["register_locations"] = serde_json::json!(false);
        assert!(check_spec_locations(&spec(value), "dev").is_ok());
    }

    #[test]
    fn only_a_layer_bucket_of_this_environment_may_be_changed() {
        let lake = spec(spec_json());
        assert!(ensure_own_location("arn:aws:s3:::lakeops-dev-raw", &lake, "dev").is_ok());
        for other in [
            "arn:aws:s3:::lakeops-prod-raw",
            "arn:aws:s3:::lakeops-dev-raw/prefix",
            "arn:aws:s3:::lakeops-dev-unlisted",
        ] {
            let error = ensure_own_location(other, &lake, "dev").unwrap_err();
            assert_eq!(error.kind, ErrorKind::Terminal, "{other}");
        }
        assert!(ensure_own_location("arn:aws:s3:::lakeops-dev-raw", &lake, "prod").is_err());
    }
}
