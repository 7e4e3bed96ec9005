//! The Lake Formation state this function reasons about, in a normal form that
//! makes two descriptions of the same grant compare equal.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A Lake Formation principal identifier: an IAM role or user ARN, a SAML or
/// Identity Center ARN, an account id, or `IAM_ALLOWED_PRINCIPALS`.
pub type Principal = String;

/// The group that stands for "whatever IAM allows": grants to it bypass Lake Formation.
pub const IAM_ALLOWED_PRINCIPALS: &str = "IAM_ALLOWED_PRINCIPALS";

/// Which columns of a table a grant covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Columns {
    /// Exactly these columns.
    Only(BTreeSet<String>),
    /// Every column but these (an empty set means all columns).
    AllExcept(BTreeSet<String>),
}

/// Whether an LF-tag expression selects databases or tables.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum TagPolicyTarget {
    Database,
    Table,
}

impl TagPolicyTarget {
    pub fn as_str(self) -> &'static str {
        match self {
            TagPolicyTarget::Database => "DATABASE",
            TagPolicyTarget::Table => "TABLE",
        }
    }
}

/// An LF-tag expression: every key must have one of its values.
pub type TagExpression = BTreeMap<String, BTreeSet<String>>;

/// A resource of the account's own Data Catalog. Resources of other catalogs
/// are never managed here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Resource {
    Catalog,
    Database {
        name: String,
    },
    Table {
        database: String,
        name: String,
    },
    /// `TableWildcard`: every table of the database, present and future.
    AllTables {
        database: String,
    },
    Columns {
        database: String,
        table: String,
        columns: Columns,
    },
    DataLocation {
        arn: String,
    },
    LfTag {
        key: String,
        values: BTreeSet<String>,
    },
    LfTagPolicy {
        target: TagPolicyTarget,
        expression: TagExpression,
    },
}

impl Resource {
    /// The database a resource lives in, if any.
    pub fn database(&self) -> Option<&str> {
        match self {
            Resource::Database { name } => Some(name),
            Resource::Table { database, .. }
            | Resource::AllTables { database }
            | Resource::Columns { database, .. } => Some(database),
            _ => None,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(",");
        match self {
            Resource::Catalog => f.write_str("catalog"),
            Resource::Database { name } => write!(f, "database {name}"),
            Resource::Table { database, name } => write!(f, "table {database}.{name}"),
            Resource::AllTables { database } => write!(f, "table {database}.*"),
            Resource::Columns {
                database,
                table,
                columns,
            } => match columns {
                Columns::Only(names) => write!(f, "columns {database}.{table}({})", join(names)),
                Columns::AllExcept(names) => {
                    write!(f, "columns {database}.{table}(* except {})", join(names))
                }
            },
            Resource::DataLocation { arn } => write!(f, "location {arn}"),
            Resource::LfTag { key, values } => write!(f, "lf-tag {key}={}", join(values)),
            Resource::LfTagPolicy { target, expression } => {
                let terms: Vec<String> = expression
                    .iter()
                    .map(|(k, v)| format!("{k}={}", join(v)))
                    .collect();
                write!(
                    f,
                    "lf-tag-policy {} [{}]",
                    target.as_str(),
                    terms.join(" and ")
                )
            }
        }
    }
}

/// Permissions one principal holds on one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Permissions {
    pub permissions: BTreeSet<String>,
    /// Permissions the principal may grant on; always a subset of `permissions`.
    pub grantable: BTreeSet<String>,
}

impl Permissions {
    pub fn is_empty(&self) -> bool {
        self.permissions.is_empty() && self.grantable.is_empty()
    }

    pub fn merge(&mut self, other: &Permissions) {
        self.permissions.extend(other.permissions.iter().cloned());
        self.grantable.extend(other.grantable.iter().cloned());
    }
}

/// Grants keyed by principal and resource.
pub type GrantMap = BTreeMap<(Principal, Resource), Permissions>;

/// LF-tags as assigned to one database or table: key to values.
pub type TagAssignment = BTreeMap<String, BTreeSet<String>>;

/// A database or table that LF-tags can be assigned to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TagTarget {
    Database { name: String },
    Table { database: String, name: String },
}

impl TagTarget {
    pub fn database(&self) -> &str {
        match self {
            TagTarget::Database { name } => name,
            TagTarget::Table { database, .. } => database,
        }
    }
}

impl fmt::Display for TagTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagTarget::Database { name } => write!(f, "database {name}"),
            TagTarget::Table { database, name } => write!(f, "table {database}.{name}"),
        }
    }
}

/// The data lake settings fields this function may manage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsView {
    pub admins: BTreeSet<Principal>,
    pub read_only_admins: BTreeSet<Principal>,
    /// Principals that get permissions on new databases by default.
    pub create_database_defaults: BTreeSet<Principal>,
    /// Principals that get permissions on new tables by default.
    pub create_table_defaults: BTreeSet<Principal>,
}

/// Everything read from Lake Formation before planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LakeState {
    pub settings: SettingsView,
    pub grants: GrantMap,
    pub lf_tags: BTreeMap<String, BTreeSet<String>>,
    pub tag_assignments: BTreeMap<TagTarget, TagAssignment>,
    pub registered_locations: BTreeSet<String>,
}

/// The Glue Data Catalog as far as the policy refers to it: databases, their
/// tables and each table's columns (partition keys included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogSnapshot {
    pub databases: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

impl CatalogSnapshot {
    pub fn with_table(mut self, database: &str, table: &str, columns: &[&str]) -> Self {
        self.databases
            .entry(database.to_string())
            .or_default()
            .insert(
                table.to_string(),
                columns.iter().map(|c| c.to_string()).collect(),
            );
        self
    }

    pub fn with_database(mut self, database: &str) -> Self {
        self.databases.entry(database.to_string()).or_default();
        self
    }
}

/// The IAM identity of a principal ARN, for comparing the running identity
/// with admins: an assumed-role session is its role, and role paths are
/// ignored because an assumed-role ARN does not carry them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamIdentity {
    pub account: String,
    pub kind: String,
    pub name: String,
}

/// Parse an IAM or STS ARN into the identity it acts as.
pub fn iam_identity(arn: &str) -> Option<IamIdentity> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[4].is_empty() {
        return None;
    }
    let (service, account, resource) = (parts[2], parts[4], parts[5]);
    let (kind, rest) = resource.split_once('/')?;
    let name = match (service, kind) {
        // arn:aws:sts::123:assumed-role/RoleName/session
        ("sts", "assumed-role") => rest.split('/').next()?,
        ("sts", "user") | ("iam", "user") | ("iam", "role") => rest.rsplit('/').next()?,
        _ => return None,
    };
    let kind = if kind == "assumed-role" { "role" } else { kind };
    if name.is_empty() {
        return None;
    }
    Some(IamIdentity {
        account: account.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
    })
}

/// The IAM ARN Lake Formation knows the caller by: an assumed-role session
/// becomes its role ARN (without path, which STS does not reveal).
pub fn caller_principal(caller_arn: &str) -> String {
    match iam_identity(caller_arn) {
        Some(id) => {
            let partition = caller_arn.split(':').nth(1).unwrap_or("aws");
            format!(
                "arn:{partition}:iam::{}:{}/{}",
                id.account, id.kind, id.name
            )
        }
        None => caller_arn.to_string(),
    }
}

/// True when `principal` names the same IAM identity as the caller.
pub fn is_caller(principal: &str, caller_arn: &str) -> bool {
    match (iam_identity(principal), iam_identity(caller_arn)) {
        (Some(a), Some(b)) => a == b,
        _ => principal == caller_arn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_sessions_are_their_role() {
        let session =
            "arn:aws:sts::123456789012:assumed-role/lakeops-dev-lake-grants/lake-grants-fn";
        assert_eq!(
            caller_principal(session),
            "arn:aws:iam::123456789012:role/lakeops-dev-lake-grants"
        );
        assert!(is_caller(
            "arn:aws:iam::123456789012:role/service-role/lakeops-dev-lake-grants",
            session
        ));
        assert!(!is_caller("arn:aws:iam::123456789012:role/other", session));
        assert!(!is_caller(
            "arn:aws:iam::999999999999:role/lakeops-dev-lake-grants",
            session
        ));
        assert_eq!(
            caller_principal("arn:aws:sts::123456789012:user/moto"),
            "arn:aws:iam::123456789012:user/moto"
        );
        assert!(is_caller(
            "arn:aws:iam::123456789012:user/moto",
            "arn:aws:sts::123456789012:user/moto"
        ));
        assert!(!is_caller(
            "arn:aws:iam::123456789012:role/moto",
            "arn:aws:sts::123456789012:user/moto"
        ));
        assert_eq!(
            caller_principal("IAM_ALLOWED_PRINCIPALS"),
            "IAM_ALLOWED_PRINCIPALS"
        );
        assert!(iam_identity("arn:aws:iam::123456789012:role/").is_none());
        assert!(iam_identity("arn:aws:s3:::bucket/x").is_none());
    }
}
