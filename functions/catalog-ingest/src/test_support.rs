//! The lake spec of the unit tests.

pub fn spec_json() -> serde_json::Value {
    let layer = |name: &str| serde_json::json!({"name": name, "bucket": format!("lake-{name}"), "database": format!("lake_{name}")});
    serde_json::json!({
        "name": "lake", "crawler_role_arn": "arn:aws:iam::123456789012:role/crawler",
        "layers": [layer("raw"), layer("schematized"), layer("filtered"), layer("emergency"), layer("curated")],
        "athena": {"workgroups": [
            {"profile": "engineer", "name": "e", "result_location": "s3://lake-athena/e/"},
            {"profile": "analyst", "name": "a", "result_location": "s3://lake-athena/a/"},
            {"profile": "architect", "name": "r", "result_location": "s3://lake-athena/r/"}]}
    })
}

pub fn spec() -> lakeops_shared::spec::lake::LakeSpec {
    lakeops_shared::spec::lake::LakeSpec::from_value(spec_json()).unwrap()
}
