//! The grants policy: its document format (YAML or JSON), parsing, and the
//! validation that needs no AWS call. Every problem is reported at once under
//! the path of its field; nothing is applied while any remains.

use crate::model::{Columns, Principal, TagExpression, TagPolicyTarget, IAM_ALLOWED_PRINCIPALS};
use lakeops_shared::validate::{is_bucket_name, Problems};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

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

/// The one kind a resource document names.
enum ResourceKind<'a> {
    Catalog(&'a BTreeMap<String, String>),
    Database(&'a String),
    Table(&'a TableDocument),
    Columns(&'a ColumnsDocument),
    DataLocation(&'a String),
    LfTag(&'a LfTagDocument),
    LfTagPolicy(&'a LfTagPolicyDocument),
}

impl ResourceDocument {
    fn kind(&self) -> Result<ResourceKind<'_>, String> {
        let mut kinds = Vec::new();
        if let Some(v) = &self.catalog {
            kinds.push(ResourceKind::Catalog(v));
        }
        if let Some(v) = &self.database {
            kinds.push(ResourceKind::Database(v));
        }
        if let Some(v) = &self.table {
            kinds.push(ResourceKind::Table(v));
        }
        if let Some(v) = &self.columns {
            kinds.push(ResourceKind::Columns(v));
        }
        if let Some(v) = &self.data_location {
            kinds.push(ResourceKind::DataLocation(v));
        }
        if let Some(v) = &self.lf_tag {
            kinds.push(ResourceKind::LfTag(v));
        }
        if let Some(v) = &self.lf_tag_policy {
            kinds.push(ResourceKind::LfTagPolicy(v));
        }
        match kinds.len() {
            1 => Ok(kinds.pop().unwrap()),
            n => Err(format!(
                "give exactly one of catalog, database, table, columns, data_location, lf_tag, lf_tag_policy (found {n})"
            )),
        }
    }
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

const CATALOG_PERMISSIONS: &[&str] = &[
    "ALL",
    "ALTER",
    "CREATE_CATALOG",
    "CREATE_DATABASE",
    "CREATE_LF_TAG",
    "CREATE_LF_TAG_EXPRESSION",
    "DESCRIBE",
    "DROP",
    "SUPER_USER",
];
const DATABASE_PERMISSIONS: &[&str] = &["ALL", "ALTER", "CREATE_TABLE", "DESCRIBE", "DROP"];
const TABLE_PERMISSIONS: &[&str] = &[
    "ALL", "ALTER", "DELETE", "DESCRIBE", "DROP", "INSERT", "SELECT",
];
const COLUMN_PERMISSIONS: &[&str] = &["SELECT"];
const LOCATION_PERMISSIONS: &[&str] = &["DATA_LOCATION_ACCESS"];
const LF_TAG_PERMISSIONS: &[&str] = &[
    "ALTER",
    "ASSOCIATE",
    "DESCRIBE",
    "DROP",
    "GRANT_WITH_LF_TAG_EXPRESSION",
];

/// A principal Lake Formation accepts: `IAM_ALLOWED_PRINCIPALS`, an account
/// id, or an IAM, Identity Center, Organizations or QuickSight ARN.
pub fn is_principal(value: &str) -> bool {
    if value == IAM_ALLOWED_PRINCIPALS {
        return true;
    }
    if value.len() == 12 && value.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && matches!(
            parts[2],
            "iam" | "identitystore" | "organizations" | "quicksight"
        )
        && !parts[5].is_empty()
        && !parts[5].ends_with('/')
        && (parts[2] != "iam"
            || (parts[4].len() == 12
                && parts[4].chars().all(|c| c.is_ascii_digit())
                && ["role/", "user/", "saml-provider/"]
                    .iter()
                    .any(|p| parts[5].starts_with(p))))
}

/// An S3 location ARN (`arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/prefix`).
pub fn is_s3_location_arn(value: &str) -> bool {
    let Some(rest) = value
        .strip_prefix("arn:aws:s3:::")
        .or_else(|| value.strip_prefix("arn:aws-cn:s3:::"))
        .or_else(|| value.strip_prefix("arn:aws-us-gov:s3:::"))
    else {
        return false;
    };
    let bucket = rest.split('/').next().unwrap_or_default();
    is_bucket_name(bucket) && !rest.contains("//")
}

/// Glue keeps database and table names in lower case; a policy that names
/// `Sales` would never match what Lake Formation lists.
fn check_catalog_name(problems: &mut Problems, value: &str, path: &str, allow_glob: bool) {
    if value.trim().is_empty() {
        problems.add(path, "is required");
    } else if !value.chars().all(|c| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || c == '_'
            || c == '-'
            || (allow_glob && c == '*')
    }) {
        problems.add(
            path,
            format!(
                "'{value}' is not a Glue name (lower-case letters, digits, '_' and '-' only{})",
                if allow_glob {
                    ", or '*' as a wildcard"
                } else {
                    ""
                }
            ),
        );
    }
}

fn check_principal(problems: &mut Problems, value: &str, path: &str) {
    if value.trim().is_empty() {
        problems.add(path, "is required");
    } else if !is_principal(value) {
        problems.add(
            path,
            format!("'{value}' is not a Lake Formation principal (an IAM role/user ARN, an Identity Center or Organizations ARN, an account id, or IAM_ALLOWED_PRINCIPALS)"),
        );
    }
}

fn check_principals(problems: &mut Problems, values: &[String], path: &str) -> BTreeSet<Principal> {
    for (i, value) in values.iter().enumerate() {
        check_principal(problems, value, &format!("{path}[{i}]"));
    }
    values.iter().cloned().collect()
}

/// Validate a parsed document: every malformed or inconsistent field, by path.
pub fn validate(doc: &PolicyDocument) -> Result<Policy, Problems> {
    let mut problems = Problems::new();
    problems.check(
        doc.version == 1,
        "version",
        format!("{} is not a supported version (only 1)", doc.version),
    );

    let admins = doc
        .admins
        .as_ref()
        .map(|a| check_principals(&mut problems, a, "admins"));
    let read_only_admins = doc
        .read_only_admins
        .as_ref()
        .map(|a| check_principals(&mut problems, a, "read_only_admins"));
    if let Some(admins) = &admins {
        if admins.contains(IAM_ALLOWED_PRINCIPALS) {
            problems.add(
                "admins",
                "IAM_ALLOWED_PRINCIPALS cannot be a data lake admin",
            );
        }
    }
    let managed_principals =
        check_principals(&mut problems, &doc.managed_principals, "managed_principals");

    let mut lf_tags = BTreeMap::new();
    for (key, values) in &doc.lf_tags {
        let path = format!("lf_tags.{key}");
        if key.trim().is_empty() || key.len() > 128 {
            problems.add(&path, "tag key must be 1 to 128 characters");
        }
        if values.is_empty() {
            problems.add(&path, "needs at least one value");
        }
        for (i, value) in values.iter().enumerate() {
            if value.trim().is_empty() || value.len() > 256 {
                problems.add(
                    format!("{path}[{i}]"),
                    "tag value must be 1 to 256 characters",
                );
            }
        }
        lf_tags.insert(key.clone(), values.iter().cloned().collect::<BTreeSet<_>>());
    }
    let check_tag =
        |problems: &mut Problems, key: &str, value: &str, path: &str| match lf_tags.get(key) {
            None => problems.add(
                path,
                format!("LF-tag '{key}' is not declared under lf_tags"),
            ),
            Some(values) if !values.contains(value) => problems.add(
                path,
                format!("'{value}' is not a declared value of LF-tag '{key}'"),
            ),
            Some(_) => {}
        };

    let mut locations = Vec::new();
    let mut location_grants = Vec::new();
    for (i, location) in doc.data_locations.iter().enumerate() {
        let path = format!("data_locations[{i}]");
        if !is_s3_location_arn(&location.location) {
            problems.add(
                format!("{path}.location"),
                format!(
                    "'{}' is not an S3 location ARN (arn:aws:s3:::bucket/prefix)",
                    location.location
                ),
            );
        }
        if let Some(role) = &location.role_arn {
            if !(is_principal(role) && role.contains(":role/")) {
                problems.add(
                    format!("{path}.role_arn"),
                    format!("'{role}' is not an IAM role ARN"),
                );
            }
        }
        let location_arn = location.location.trim_end_matches('/').to_string();
        for (j, principal) in location.principals.iter().enumerate() {
            check_principal(&mut problems, principal, &format!("{path}.principals[{j}]"));
            location_grants.push(PolicyGrant {
                path: format!("{path}.principals[{j}]"),
                principal: principal.clone(),
                resource: PolicyResource::DataLocation(location_arn.clone()),
                permissions: BTreeSet::from(["DATA_LOCATION_ACCESS".to_string()]),
                grantable: BTreeSet::new(),
            });
        }
        locations.push(PolicyLocation {
            arn: location_arn,
            register: location.register,
            role_arn: location.role_arn.clone(),
        });
    }

    let mut tag_assignments = Vec::new();
    for (i, assignment) in doc.tag_assignments.iter().enumerate() {
        let path = format!("tag_assignments[{i}]");
        check_catalog_name(
            &mut problems,
            &assignment.database,
            &format!("{path}.database"),
            false,
        );
        if let Some(tables) = &assignment.tables {
            check_catalog_name(&mut problems, tables, &format!("{path}.tables"), true);
        }
        if assignment.tags.is_empty() {
            problems.add(format!("{path}.tags"), "needs at least one tag");
        }
        for (key, value) in &assignment.tags {
            check_tag(&mut problems, key, value, &format!("{path}.tags.{key}"));
        }
        tag_assignments.push(PolicyTagAssignment {
            path,
            database: assignment.database.clone(),
            tables: assignment.tables.as_deref().map(TableSelector::parse),
            tags: assignment.tags.clone(),
        });
    }

    let mut grants = Vec::new();
    for (i, grant) in doc.grants.iter().enumerate() {
        let path = format!("grants[{i}]");
        let mut principals: Vec<(String, String)> = Vec::new();
        if let Some(principal) = &grant.principal {
            principals.push((format!("{path}.principal"), principal.clone()));
        }
        for (j, principal) in grant.principals.iter().enumerate() {
            principals.push((format!("{path}.principals[{j}]"), principal.clone()));
        }
        if principals.is_empty() {
            problems.add(format!("{path}.principal"), "is required (or principals)");
        }
        for (principal_path, principal) in &principals {
            check_principal(&mut problems, principal, principal_path);
        }

        let resource_path = format!("{path}.resource");
        let kind = match grant.resource.kind() {
            Ok(kind) => Some(kind),
            Err(problem) => {
                problems.add(&resource_path, problem);
                None
            }
        };
        let (resource, allowed): (Option<PolicyResource>, &[&str]) = match kind {
            None => (None, &[]),
            Some(ResourceKind::Catalog(extra)) => {
                if !extra.is_empty() {
                    problems.add(
                        format!("{resource_path}.catalog"),
                        "takes no fields (write catalog: {})",
                    );
                }
                (Some(PolicyResource::Catalog), CATALOG_PERMISSIONS)
            }
            Some(ResourceKind::Database(name)) => {
                check_catalog_name(
                    &mut problems,
                    name,
                    &format!("{resource_path}.database"),
                    false,
                );
                (
                    Some(PolicyResource::Database(name.clone())),
                    DATABASE_PERMISSIONS,
                )
            }
            Some(ResourceKind::Table(TableDocument { database, name })) => {
                check_catalog_name(
                    &mut problems,
                    database,
                    &format!("{resource_path}.table.database"),
                    false,
                );
                check_catalog_name(
                    &mut problems,
                    name,
                    &format!("{resource_path}.table.name"),
                    true,
                );
                (
                    Some(PolicyResource::Table {
                        database: database.clone(),
                        table: TableSelector::parse(name),
                    }),
                    TABLE_PERMISSIONS,
                )
            }
            Some(ResourceKind::Columns(ColumnsDocument {
                database,
                table,
                names,
                excluded,
            })) => {
                let cpath = format!("{resource_path}.columns");
                check_catalog_name(&mut problems, database, &format!("{cpath}.database"), false);
                check_catalog_name(&mut problems, table, &format!("{cpath}.table"), false);
                let columns = match (names, excluded) {
                    (Some(names), None) if !names.is_empty() => {
                        Some(Columns::Only(names.iter().cloned().collect()))
                    }
                    (Some(_), None) => {
                        problems.add(format!("{cpath}.names"), "needs at least one column");
                        None
                    }
                    (None, Some(excluded)) => {
                        Some(Columns::AllExcept(excluded.iter().cloned().collect()))
                    }
                    (Some(_), Some(_)) => {
                        problems.add(&cpath, "give either names or excluded, not both");
                        None
                    }
                    (None, None) => {
                        problems.add(
                            &cpath,
                            "give names (these columns) or excluded (all columns but these)",
                        );
                        None
                    }
                };
                (
                    columns.map(|columns| PolicyResource::Columns {
                        database: database.clone(),
                        table: table.clone(),
                        columns,
                    }),
                    COLUMN_PERMISSIONS,
                )
            }
            Some(ResourceKind::DataLocation(arn)) => {
                if !is_s3_location_arn(arn) {
                    problems.add(
                        format!("{resource_path}.data_location"),
                        format!("'{arn}' is not an S3 location ARN (arn:aws:s3:::bucket/prefix)"),
                    );
                }
                (
                    Some(PolicyResource::DataLocation(
                        arn.trim_end_matches('/').to_string(),
                    )),
                    LOCATION_PERMISSIONS,
                )
            }
            Some(ResourceKind::LfTag(LfTagDocument { key, values })) => {
                if values.is_empty() {
                    problems.add(
                        format!("{resource_path}.lf_tag.values"),
                        "needs at least one value",
                    );
                }
                for (j, value) in values.iter().enumerate() {
                    check_tag(
                        &mut problems,
                        key,
                        value,
                        &format!("{resource_path}.lf_tag.values[{j}]"),
                    );
                }
                (
                    Some(PolicyResource::LfTag {
                        key: key.clone(),
                        values: values.iter().cloned().collect(),
                    }),
                    LF_TAG_PERMISSIONS,
                )
            }
            Some(ResourceKind::LfTagPolicy(LfTagPolicyDocument {
                resource_type,
                expression,
            })) => {
                let epath = format!("{resource_path}.lf_tag_policy.expression");
                if expression.is_empty() {
                    problems.add(&epath, "needs at least one tag");
                }
                for (key, values) in expression {
                    if values.is_empty() {
                        problems.add(format!("{epath}.{key}"), "needs at least one value");
                    }
                    for (j, value) in values.iter().enumerate() {
                        check_tag(&mut problems, key, value, &format!("{epath}.{key}[{j}]"));
                    }
                }
                let allowed = match resource_type {
                    TagPolicyTarget::Database => DATABASE_PERMISSIONS,
                    TagPolicyTarget::Table => TABLE_PERMISSIONS,
                };
                (
                    Some(PolicyResource::LfTagPolicy {
                        target: *resource_type,
                        expression: expression
                            .iter()
                            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                            .collect(),
                    }),
                    allowed,
                )
            }
        };

        if grant.permissions.is_empty() {
            problems.add(
                format!("{path}.permissions"),
                "needs at least one permission",
            );
        }
        for (j, permission) in grant.permissions.iter().enumerate() {
            if resource.is_some() && !allowed.contains(&permission.as_str()) {
                problems.add(
                    format!("{path}.permissions[{j}]"),
                    format!(
                        "'{permission}' does not apply to this resource (use one of {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
        for (j, permission) in grant.grantable.iter().enumerate() {
            if !grant.permissions.contains(permission) {
                problems.add(
                    format!("{path}.grantable[{j}]"),
                    format!("'{permission}' is not among the permissions granted"),
                );
            }
        }
        if let Some(resource) = resource {
            for (_, principal) in principals {
                grants.push(PolicyGrant {
                    path: path.clone(),
                    principal,
                    resource: resource.clone(),
                    permissions: grant.permissions.iter().cloned().collect(),
                    grantable: grant.grantable.iter().cloned().collect(),
                });
            }
        }
    }
    grants.extend(location_grants);

    problems.into_result()?;
    Ok(Policy {
        admins,
        read_only_admins,
        lake_formation_only: doc.lake_formation_only,
        managed_principals,
        locations,
        lf_tags,
        tag_assignments,
        grants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
version: 1
admins: [arn:aws:iam::123456789012:role/platform-admin]
lake_formation_only: true
data_locations:
  - location: arn:aws:s3:::lakeops-dev-raw/
    principals: [arn:aws:iam::123456789012:role/etl]
lf_tags:
  tier: [raw, curated]
tag_assignments:
  - database: curated
    tags: {tier: curated}
grants:
  - principal: arn:aws:iam::123456789012:role/etl
    resource: {table: {database: raw, name: "*"}}
    permissions: [ALL]
  - principals: [arn:aws:iam::123456789012:role/analyst]
    resource: {lf_tag_policy: {resource_type: TABLE, expression: {tier: [curated]}}}
    permissions: [SELECT, DESCRIBE]
    grantable: [DESCRIBE]
  - principal: arn:aws:iam::123456789012:role/analyst
    resource: {columns: {database: curated, table: orders, excluded: [card_number]}}
    permissions: [SELECT]
"#;

    #[test]
    fn parses_and_validates_a_yaml_policy() {
        let policy = validate(&parse_policy(SAMPLE).unwrap()).unwrap();
        assert_eq!(policy.lake_formation_only, Some(true));
        assert_eq!(
            policy.grants.len(),
            4,
            "three grants plus one location grant"
        );
        assert_eq!(
            policy.grants[0].resource,
            PolicyResource::Table {
                database: "raw".into(),
                table: TableSelector::All
            }
        );
        assert_eq!(policy.locations[0].arn, "arn:aws:s3:::lakeops-dev-raw");
        assert_eq!(policy.managed().len(), 2);
    }

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

    #[test]
    fn reports_every_problem_by_path() {
        let doc = parse_policy(
            r#"
version: 2
admins: [IAM_ALLOWED_PRINCIPALS, "arn:aws:iam::123:role/short-account"]
data_locations:
  - location: s3://bucket/prefix
    role_arn: arn:aws:iam::123456789012:user/not-a-role
lf_tags: {tier: []}
tag_assignments:
  - database: Curated
    tags: {owner: finance}
grants:
  - resource: {database: raw}
    permissions: [SELECT]
  - principal: arn:aws:iam::123456789012:role/etl
    resource: {columns: {database: raw, table: t, names: [a], excluded: [b]}}
    permissions: [SELECT]
    grantable: [ALTER]
  - principal: arn:aws:iam::123456789012:role/etl
    resource: {lf_tag_policy: {resource_type: TABLE, expression: {tier: [gold]}}}
    permissions: []
"#,
        )
        .unwrap();
        let problems = validate(&doc).unwrap_err();
        let text = problems.to_string();
        for expected in [
            "version: 2 is not a supported version",
            "admins[1]: 'arn:aws:iam::123:role/short-account' is not a Lake Formation principal",
            "admins: IAM_ALLOWED_PRINCIPALS cannot be a data lake admin",
            "data_locations[0].location: 's3://bucket/prefix' is not an S3 location ARN",
            "data_locations[0].role_arn",
            "lf_tags.tier: needs at least one value",
            "tag_assignments[0].database: 'Curated' is not a Glue name",
            "tag_assignments[0].tags.owner: LF-tag 'owner' is not declared",
            "grants[0].principal: is required",
            "grants[0].permissions[0]: 'SELECT' does not apply to this resource",
            "grants[1].resource.columns: give either names or excluded",
            "grants[1].grantable[0]: 'ALTER' is not among the permissions granted",
            "grants[2].resource.lf_tag_policy.expression.tier[0]: 'gold' is not a declared value",
            "grants[2].permissions: needs at least one permission",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in: {text}");
        }
    }

    #[test]
    fn principals_and_locations() {
        assert!(is_principal("arn:aws:iam::123456789012:role/etl"));
        assert!(is_principal("arn:aws:iam::123456789012:role/path/etl"));
        assert!(is_principal("arn:aws:iam::123456789012:user/alice"));
        assert!(is_principal("123456789012"));
        assert!(is_principal("IAM_ALLOWED_PRINCIPALS"));
        assert!(is_principal("arn:aws:identitystore:::group/abc-123"));
        assert!(!is_principal("arn:aws:iam::123456789012:policy/p"));
        assert!(!is_principal("arn:aws:iam::123456789012:role/"));
        assert!(!is_principal("etl"));
        assert!(!is_principal("arn:aws:s3:::bucket"));
        assert!(is_s3_location_arn("arn:aws:s3:::lakeops-dev-raw"));
        assert!(is_s3_location_arn("arn:aws:s3:::lakeops-dev-raw/events/"));
        assert!(!is_s3_location_arn("arn:aws:s3:::Bad_Bucket/x"));
        assert!(!is_s3_location_arn("s3://lakeops-dev-raw/x"));
    }
}
