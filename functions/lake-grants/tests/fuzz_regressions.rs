//! Inputs that the fuzz targets in fuzz/ found, kept as regression tests.

use lake_grants::policy::{parse_policy, policy_from_value};

/// fuzz target `grants_policy`, input `seeds/grants_policy/json-duplicate-key`: a
/// grant that gives `permissions` twice. The text is refused, naming the field,
/// rather than silently keeping one of the two lists (which would grant the
/// permissions a reviewer did not read last); the same document as a JSON value
/// cannot carry the duplicate, since the JSON parser already kept the last one.
#[test]
fn a_key_given_twice_is_refused_in_a_policy_text() {
    let text = r#"{"grants": [{"principal": "arn:aws:iam::123456789012:role/etl", "resource": {"database": "raw"}, "permissions": ["SELECT"], "permissions": ["ALL"]}]}"#;
    let refused = parse_policy(text).unwrap_err();
    assert!(
        refused.contains("duplicate field `permissions`"),
        "{refused}"
    );
    let yaml = "grants:\n  - principal: arn:aws:iam::123456789012:role/etl\n    resource: {database: raw}\n    permissions: [SELECT]\n    permissions: [ALL]\n";
    assert!(parse_policy(yaml).is_err(), "YAML refuses it too");
    let value: serde_json::Value = serde_json::from_str(text).unwrap();
    assert!(
        policy_from_value(value).is_ok(),
        "a value holds the last one only"
    );
}
