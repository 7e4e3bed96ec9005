//! What one side's Unity Catalog holds, as the sync reads it (REST lists, DESCRIBE
//! HISTORY and the information schema). The planner compares two of these; the
//! adapters fill them. Every key is a lower-case name.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::mapping::FullName;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub storage_credentials: BTreeMap<String, StorageCredential>,
    pub external_locations: BTreeMap<String, ExternalLocation>,
    pub catalogs: BTreeMap<String, Catalog>,
    /// `catalog.schema`
    pub schemas: BTreeMap<String, Schema>,
    /// Tables and views.
    pub tables: BTreeMap<FullName, Table>,
    pub volumes: BTreeMap<FullName, Volume>,
    pub functions: BTreeMap<FullName, Function>,
    pub tags: BTreeMap<Securable, BTreeMap<String, String>>,
    pub grants: BTreeMap<Securable, Grants>,
    /// Delta Sharing, as this side sees it.
    pub sharing: Sharing,
}

/// The Delta Sharing objects the sync sets up: on the primary a recipient for the
/// secondary's metastore and a share per synced catalog; on the secondary the
/// provider that appears by itself, and a share catalog per share.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sharing {
    /// This side's metastore (`global_metastore_id`, `aws:<region>:<id>`).
    pub global_metastore_id: String,
    /// recipient name -> the global metastore id it shares with (DATABRICKS recipients).
    pub recipients: BTreeMap<String, String>,
    /// share name -> the schemas (`catalog.schema`) and tables it holds.
    pub shares: BTreeMap<String, BTreeSet<String>>,
    /// share name -> recipients granted SELECT on it.
    pub share_grants: BTreeMap<String, BTreeSet<String>>,
    /// provider name -> the provider's global metastore id.
    pub providers: BTreeMap<String, String>,
}

/// principal -> privileges
pub type Grants = BTreeMap<String, BTreeSet<String>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageCredential {
    pub name: String,
    pub role_arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalLocation {
    pub name: String,
    pub url: String,
    pub credential_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    pub name: String,
    pub comment: Option<String>,
    /// MANAGED_CATALOG, DELTASHARING_CATALOG, ...
    pub catalog_type: String,
    /// Its own managed storage (`storage_root`); None: the metastore's.
    #[serde(default)]
    pub storage_root: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub full_name: String,
    pub comment: Option<String>,
    /// Its own managed storage (`storage_root`); None: its catalog's.
    #[serde(default)]
    pub storage_root: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TableType {
    Managed,
    External,
    View,
    MaterializedView,
    StreamingTable,
    /// MANAGED_SHALLOW_CLONE, EXTERNAL_SHALLOW_CLONE, FOREIGN, METRIC_VIEW, and types
    /// added later: reported, never copied.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub type_text: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub name: FullName,
    pub table_type: TableType,
    /// DELTA, PARQUET, CSV, JSON, ... (None for views).
    pub format: Option<String>,
    pub storage_location: Option<String>,
    pub columns: Vec<Column>,
    pub comment: Option<String>,
    pub view_definition: Option<String>,
    /// Full names of the tables and views a view reads.
    pub view_dependencies: Vec<FullName>,
    /// The current Delta version (tables only).
    pub version: Option<i64>,
    /// On a secondary table: the source version it was cloned at, when its latest
    /// commit is a CLONE (`operationParameters.sourceVersion`); None when it was
    /// written to after its clone, or never cloned — either way it is re-cloned.
    pub cloned_source_version: Option<i64>,
    /// Commit times (epoch ms) by version, for the versions after the last clone;
    /// read for changed tables only, to measure replication lag.
    pub commit_times: BTreeMap<i64, i64>,
    pub row_count: Option<u64>,
}

impl Table {
    /// A plain view, which the views stage re-creates from its definition. A
    /// materialized view is not one: its pipeline recreates it.
    pub fn is_view(&self) -> bool {
        self.table_type == TableType::View
    }

    pub fn is_delta(&self) -> bool {
        self.format
            .as_deref()
            .is_some_and(|f| f.eq_ignore_ascii_case("delta"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub name: FullName,
    /// MANAGED or EXTERNAL
    pub volume_type: String,
    pub storage_location: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Function {
    pub name: FullName,
    /// The parameter list as SQL (`x INT, y STRING`), from `input_params`.
    pub parameters: String,
    /// The return type as SQL (`full_data_type`).
    pub returns: String,
    /// The SQL body (`routine_definition`).
    pub body: String,
    pub comment: Option<String>,
    /// Why the sync cannot re-create it from its FunctionInfo (a Python function, a
    /// table function), for the report; None for a SQL scalar function.
    #[serde(default)]
    pub unsupported: Option<String>,
}

/// A securable of the permissions API and of tags; serialised as `KIND/name`, so it
/// can key a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Securable {
    /// CATALOG, SCHEMA, TABLE (views too), VOLUME, FUNCTION, COLUMN (tags only).
    pub kind: String,
    /// Lower-case full name; `catalog.schema.table.column` for a column.
    pub name: String,
}

impl Securable {
    pub fn new(kind: &str, name: impl Into<String>) -> Securable {
        Securable {
            kind: kind.to_ascii_uppercase(),
            name: name.into().to_lowercase(),
        }
    }

    /// The catalog the securable is in.
    pub fn catalog(&self) -> &str {
        self.name.split('.').next().unwrap_or_default()
    }

    /// The same securable in another catalog.
    pub fn with_catalog(&self, catalog: &str) -> Securable {
        let rest = self.name.split_once('.').map(|x| x.1);
        Securable {
            kind: self.kind.clone(),
            name: match rest {
                Some(rest) => format!("{}.{rest}", catalog.to_lowercase()),
                None => catalog.to_lowercase(),
            },
        }
    }
}

impl Serialize for Securable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}/{}", self.kind, self.name))
    }
}

impl<'de> Deserialize<'de> for Securable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let (kind, name) = text
            .split_once('/')
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not KIND/name")))?;
        Ok(Securable::new(kind, name))
    }
}
