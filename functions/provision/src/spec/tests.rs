//! Sample specs for the tests of this module and of the crate (`minimal`,
//! `full`), helpers that list what `parse` reports, and the tests of whole
//! specs.

use super::*;
use serde_json::json;

/// The smallest valid spec.
pub fn minimal() -> Value {
    json!({
        "environment": "dev",
        "account": {
            "id": "00000000-0000-0000-0000-000000000001",
            "credentials_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:lakeops/dev/account-sp-AbCdEf"
        },
        "aws": {
            "region": "us-east-1",
            "cross_account_role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-cross-account"
        },
        "storage": {"root_bucket": "lakeops-dev-root"},
        "network": {
            "vpc_id": "vpc-0a1b2c3d4e5f60718",
            "subnet_ids": ["subnet-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60719"],
            "security_group_ids": ["sg-0a1b2c3d4e5f60718"]
        },
        "workspace": {"name": "lakeops-dev"},
        "compute": {"cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "m5d.large"}},
        "unity_catalog": {
            "storage_credential": {"role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-uc"},
            "catalog": {"storage_root": "s3://lakeops-dev-catalog/managed"}
        }
    })
}

/// A spec that uses every option.
pub fn full() -> Value {
    let mut spec = minimal();
    let extra = json!({
        "network": {
            "vpc_id": "vpc-0a1b2c3d4e5f60718",
            "subnet_ids": ["subnet-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60719"],
            "security_group_ids": ["sg-0a1b2c3d4e5f60718"],
            "private_link": {
                "rest_vpc_endpoint_id": "vpce-0a1b2c3d4e5f60718",
                "relay_vpc_endpoint_id": "vpce-0a1b2c3d4e5f60719"
            }
        },
        "encryption": {
            "managed_services": {"key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555", "key_alias": "alias/lakeops-dev-ms"},
            "storage": {"key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-666666666666"}
        },
        "workspace": {"name": "lakeops-dev", "pricing_tier": "ENTERPRISE"},
        "log_delivery": {"bucket": "lakeops-logs", "role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-logs"},
        "groups": [{"name": "DE", "workspace_permission": "USER"}, {"name": "ADMIN", "workspace_permission": "ADMIN"}],
        "service_principal": {"workspace_permission": "ADMIN"},
        "pat": {"lifetime_days": 90, "rotation_days": 30},
        "compute": {
            "cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "m5d.large", "autotermination_minutes": 20},
            "policy": {"definition": {"spark_version": {"type": "fixed", "value": "15.4.x-scala2.12"}}},
            "instance_profile_arn": "arn:aws:iam::123456789012:instance-profile/lakeops-dev",
            "instance_pool": {"node_type_id": "m5d.large", "max_capacity": 4}
        },
        "unity_catalog": {
            "storage_credential": {"role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-uc"},
            "external_locations": [{"name": "raw_landing", "url": "s3://lakeops-dev-raw/landing"}],
            "catalog": {"storage_root": "s3://lakeops-dev-catalog/managed"},
            "volumes": [{"name": "landing", "schema": "raw", "location": "s3://lakeops-dev-raw/landing/files"}]
        },
        "jobs": [{"name": "sample", "notebook_path": "/Shared/sample"}],
        "repos": [{"url": "https://github.com/example/etl.git", "provider": "gitHub", "path": "/Repos/lakeops/etl"}],
        "init_script": {"kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-777777777777"},
        "destroy": {"include_adopted": false}
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

/// Every problem `parse` reports, as (path, problem).
pub fn problems_of(value: &Value) -> Vec<(String, String)> {
    match parse(value) {
        Ok(_) => vec![],
        Err(p) => p
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    }
}

/// The paths of every problem `parse` reports.
pub fn paths(value: &Value) -> Vec<String> {
    problems_of(value).into_iter().map(|(p, _)| p).collect()
}

#[test]
fn minimal_and_full_specs_are_valid() {
    let spec = parse(&minimal()).unwrap();
    assert_eq!(spec.unity_catalog.schemas, vec!["sandbox", "raw"]);
    assert_eq!(spec.workspace.pricing_tier, "PREMIUM");
    assert_eq!(spec.catalog_name(), "dev");
    assert!(spec.private_link().is_none());
    let full = parse(&full()).unwrap();
    assert_eq!(full.groups.len(), 2);
    assert!(full.private_link().is_some());
}

#[test]
fn the_sample_events_are_valid_specs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("provision-") || !name.ends_with(".json") {
            continue;
        }
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // Stage events and lists of environments may name specs in S3.
        let Some(spec) = event.get("spec").filter(|s| s.is_object()) else {
            continue;
        };
        if let Err(problems) = parse(spec) {
            panic!("{name}: {problems}");
        }
        seen += 1;
    }
    assert!(seen >= 2, "expected the minimal and the full sample inputs");
}
