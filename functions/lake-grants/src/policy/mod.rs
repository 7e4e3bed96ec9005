//! The grants policy: its document format (YAML or JSON), parsing, and the
//! validation that needs no AWS call (`validate.rs`, a grant's resource in
//! `resource.rs`). Every problem is reported at once under the path of its
//! field; nothing is applied while any remains.

use crate::model::{Columns, Principal, TagExpression, TagPolicyTarget};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

mod resource;
mod validate;

pub use validate::{is_principal, is_s3_location_arn, validate};

// ---------------------------------------------------------------------------
// The document, as written.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// Format version; only 1 exists.
    #[serde(default = "one")]
    pub version: u32,
    /// The complete list of data lake admins. Absent: admins are not managed.
    #[serde(default)]
    pub admins: Option<Vec<String>>,
    /// The complete list of read-only admins. Absent: not managed.
    #[serde(default)]
    pub read_only_admins: Option<Vec<String>>,
    /// true: new databases and tables get no `IAM_ALLOWED_PRINCIPALS` grant
    /// (Lake Formation permissions only). false: keep the IAM-compatible
    /// default. Absent: not managed.
    #[serde(default)]
    pub lake_formation_only: Option<bool>,
    /// Principals whose grants this policy owns besides those it grants to:
    /// their grants that the policy does not list are revoked.
    #[serde(default)]
    pub managed_principals: Vec<String>,
    #[serde(default)]
    pub data_locations: Vec<DataLocationDocument>,
    /// LF-tag keys and their allowed values. Keys not listed are left alone.
    #[serde(default)]
    pub lf_tags: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub tag_assignments: Vec<TagAssignmentDocument>,
    #[serde(default)]
    pub grants: Vec<GrantDocument>,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataLocationDocument {
    /// `arn:aws:s3:::bucket/prefix`.
    pub location: String,
    /// Register the location with Lake Formation when it is not yet.
    #[serde(default = "yes")]
    pub register: bool,
    /// The role Lake Formation uses to reach the location; absent: the
    /// service-linked role.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// Principals granted DATA_LOCATION_ACCESS on the location.
    #[serde(default)]
    pub principals: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TagAssignmentDocument {
    pub database: String,
    /// A table name, or a glob (`sales_*`) over the database's tables. Absent:
    /// the tags go on the database itself.
    #[serde(default)]
    pub tables: Option<String>,
    /// Key to the single value the resource gets.
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GrantDocument {
    #[serde(default)]
    pub principal: Option<String>,
    #[serde(default)]
    pub principals: Vec<String>,
    pub resource: ResourceDocument,
    pub permissions: Vec<String>,
    /// Permissions granted with the grant option (a subset of `permissions`).
    #[serde(default)]
    pub grantable: Vec<String>,
}

/// A resource: exactly one of its fields is given.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceDocument {
    /// The account's Data Catalog (`catalog: {}`).
    #[serde(default)]
    pub catalog: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub database: Option<String>,
    /// `name: "*"` is every table of the database, present and future (LF
    /// `TableWildcard`); a name with `*` elsewhere (`sales_*`) is expanded to
    /// the matching tables that exist when the policy is applied.
    #[serde(default)]
    pub table: Option<TableDocument>,
    #[serde(default)]
    pub columns: Option<ColumnsDocument>,
    #[serde(default)]
    pub data_location: Option<String>,
    #[serde(default)]
    pub lf_tag: Option<LfTagDocument>,
    #[serde(default)]
    pub lf_tag_policy: Option<LfTagPolicyDocument>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableDocument {
    pub database: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ColumnsDocument {
    pub database: String,
    pub table: String,
    /// Exactly these columns.
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// Every column but these.
    #[serde(default)]
    pub excluded: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LfTagDocument {
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LfTagPolicyDocument {
    pub resource_type: TagPolicyTarget,
    pub expression: BTreeMap<String, Vec<String>>,
}

/// Parse a policy written in YAML or JSON (JSON is tried when the text starts
/// with `{`, for its clearer error positions).
pub fn parse_policy(text: &str) -> Result<PolicyDocument, String> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("policy is not valid JSON: {e}"))
    } else {
        serde_norway::from_str(text).map_err(|e| format!("policy is not valid YAML: {e}"))
    }
}

/// Parse an inline policy given as a JSON value.
pub fn policy_from_value(value: serde_json::Value) -> Result<PolicyDocument, String> {
    match value {
        serde_json::Value::String(text) => parse_policy(&text),
        other => serde_json::from_value(other).map_err(|e| format!("policy is malformed: {e}")),
    }
}

// ---------------------------------------------------------------------------
// The validated policy.
// ---------------------------------------------------------------------------

/// Which tables of a database a policy entry means.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TableSelector {
    Name(String),
    /// Every table of the database, present and future (`TableWildcard`).
    All,
    /// The tables whose names match a glob with `*`, as they exist now.
    Glob(String),
}

impl TableSelector {
    fn parse(name: &str) -> Self {
        if name == "*" {
            TableSelector::All
        } else if name.contains('*') {
            TableSelector::Glob(name.to_string())
        } else {
            TableSelector::Name(name.to_string())
        }
    }
}

/// A resource as the policy names it, before it is resolved against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyResource {
    Catalog,
    Database(String),
    Table {
        database: String,
        table: TableSelector,
    },
    Columns {
        database: String,
        table: String,
        columns: Columns,
    },
    DataLocation(String),
    LfTag {
        key: String,
        values: BTreeSet<String>,
    },
    LfTagPolicy {
        target: TagPolicyTarget,
        expression: TagExpression,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyGrant {
    /// Where it came from, for error messages (`grants[3]`).
    pub path: String,
    pub principal: Principal,
    pub resource: PolicyResource,
    pub permissions: BTreeSet<String>,
    pub grantable: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLocation {
    pub arn: String,
    pub register: bool,
    pub role_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTagAssignment {
    pub path: String,
    pub database: String,
    pub tables: Option<TableSelector>,
    pub tags: BTreeMap<String, String>,
}

/// A policy whose every field is well-formed. Databases and tables are not yet
/// known to exist: [`crate::plan::resolve`] checks them against the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub admins: Option<BTreeSet<Principal>>,
    pub read_only_admins: Option<BTreeSet<Principal>>,
    pub lake_formation_only: Option<bool>,
    pub managed_principals: BTreeSet<Principal>,
    pub locations: Vec<PolicyLocation>,
    pub lf_tags: BTreeMap<String, BTreeSet<String>>,
    pub tag_assignments: Vec<PolicyTagAssignment>,
    pub grants: Vec<PolicyGrant>,
}

impl Policy {
    /// Principals whose grants the policy owns: everyone it grants to, plus
    /// the ones it lists as managed.
    pub fn managed(&self) -> BTreeSet<Principal> {
        let mut managed = self.managed_principals.clone();
        managed.extend(self.grants.iter().map(|g| g.principal.clone()));
        managed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_yaml_mean_the_same() {
        let json = r#"{"grants":[{"principal":"arn:aws:iam::123456789012:role/etl","resource":{"database":"raw"},"permissions":["CREATE_TABLE"]}]}"#;
        let yaml = "grants:\n  - principal: arn:aws:iam::123456789012:role/etl\n    resource: {database: raw}\n    permissions: [CREATE_TABLE]\n";
        assert_eq!(parse_policy(json).unwrap(), parse_policy(yaml).unwrap());
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            policy_from_value(value).unwrap(),
            parse_policy(yaml).unwrap()
        );
        assert_eq!(
            policy_from_value(serde_json::Value::String(yaml.into())).unwrap(),
            parse_policy(yaml).unwrap()
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let error = parse_policy("grants: []\nadmin: [x]\n").unwrap_err();
        assert!(error.contains("admin"), "{error}");
        let error = parse_policy(
            "grants:\n  - principal: x\n    resource: {view: v}\n    permissions: [ALL]\n",
        )
        .unwrap_err();
        assert!(error.contains("view"), "{error}");
        let doc = parse_policy("grants:\n  - principal: arn:aws:iam::123456789012:role/etl\n    resource: {database: raw, data_location: \"arn:aws:s3:::b\"}\n    permissions: [ALL]\n").unwrap();
        let problems = validate(&doc).unwrap_err().to_string();
        assert!(
            problems.contains("grants[0].resource: give exactly one of"),
            "{problems}"
        );
    }
}
