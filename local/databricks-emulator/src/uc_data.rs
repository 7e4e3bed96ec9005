//! Unity Catalog's data plane, as stored per metastore: tables and views with their
//! columns, rows, Delta version and history; SQL functions; tags; and the Delta Sharing
//! objects (shares and recipients on the provider side, providers on the recipient side).
//!
//! Every name key is the object's lower-case full name (`catalog.schema.table`), as UC
//! identifiers are case-insensitive. The REST handlers (`uc_tables`, `sharing`) and the
//! SQL executor (`sql`) both read and write this model, so the rules that both need —
//! how a full name resolves, how a table reads through a share catalog, how a TableInfo
//! is rendered — live here and nowhere else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::state::{MetastoreData, State};

/// A column of a table or view, with the fields of the API's `ColumnInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// The SQL type as written, lower case (`bigint`, `decimal(10,2)`, `array<string>`).
    pub type_text: String,
    /// The API's `ColumnTypeName`: LONG, INT, STRING, DOUBLE, DECIMAL, ARRAY, STRUCT, ...
    pub type_name: String,
    pub nullable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_index: Option<i64>,
}

/// One data file of a Delta table. Rows are kept in the files they were written to, so a
/// clone can report the real Delta metrics (files and bytes copied) and skip files that
/// it already has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    /// Unique within the table's history; a clone keeps the source's id, so a re-clone
    /// knows which files it already copied.
    pub id: String,
    pub rows: Vec<Vec<Value>>,
    pub size_bytes: i64,
}

/// One commit of a table's Delta log, as `DESCRIBE HISTORY` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub version: i64,
    pub timestamp_ms: i64,
    /// WRITE, CREATE TABLE, CREATE OR REPLACE TABLE, DELETE, CLONE, SET TBLPROPERTIES, ...
    pub operation: String,
    #[serde(default)]
    pub operation_parameters: BTreeMap<String, String>,
    pub user_name: String,
}

/// A table or view of a metastore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRecord {
    /// The stored `TableInfo` fields other than `columns` (rendered from `columns`):
    /// name, catalog_name, schema_name, full_name, table_type, data_source_format,
    /// storage_location, view_definition, view_dependencies, properties, comment,
    /// owner, table_id, metastore_id, created_at, created_by, updated_at, updated_by.
    pub info: Value,
    pub columns: Vec<Column>,
    /// The current data files (empty for views).
    #[serde(default)]
    pub files: Vec<DataFile>,
    /// The current Delta version: 0 after the CREATE, +1 per commit. Views have none.
    #[serde(default)]
    pub version: i64,
    /// Commits, oldest first.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

impl TableRecord {
    #[cfg(test)]
    pub fn full_name(&self) -> &str {
        self.info["full_name"].as_str().unwrap_or_default()
    }

    pub fn table_type(&self) -> &str {
        self.info["table_type"].as_str().unwrap_or_default()
    }

    pub fn is_view(&self) -> bool {
        matches!(self.table_type(), "VIEW" | "MATERIALIZED_VIEW")
    }

    // Used by the SQL engine (h/sql); dead on a branch without it.

    #[cfg(test)]
    pub fn row_count(&self) -> usize {
        self.files.iter().map(|f| f.rows.len()).sum()
    }

    pub fn rows(&self) -> impl Iterator<Item = &Vec<Value>> {
        self.files.iter().flat_map(|f| f.rows.iter())
    }

    /// The API's `TableInfo`: the stored fields plus `columns[]` with `position` and
    /// `type_json` (the Spark StructField JSON, as the real service sends it).
    pub fn table_info(&self) -> Value {
        let mut v = self.info.clone();
        // Unity Catalog keeps a Delta table's last commit in its properties; clients
        // (lakeops' dr-sync among them) read versions from here without a statement.
        let delta = v["data_source_format"]
            .as_str()
            .is_some_and(|f| f.eq_ignore_ascii_case("DELTA"));
        if delta && !self.is_view() {
            if !v["properties"].is_object() {
                v["properties"] = json!({});
            }
            v["properties"]["delta.lastUpdateVersion"] = json!(self.version.to_string());
            if let Some(last) = self.history.last() {
                v["properties"]["delta.lastCommitTimestamp"] = json!(last.timestamp_ms.to_string());
            }
        }
        v["columns"] = Value::Array(
            self.columns
                .iter()
                .enumerate()
                .map(|(i, c)| column_info(c, i))
                .collect(),
        );
        v
    }
}

fn column_info(c: &Column, position: usize) -> Value {
    let mut v = json!({
        "name": c.name,
        "type_text": c.type_text,
        "type_name": c.type_name,
        "type_json": json!({
            "name": c.name,
            "type": spark_type_json(&c.type_text),
            "nullable": c.nullable,
            "metadata": c.comment.as_ref().map(|t| json!({"comment": t})).unwrap_or(json!({})),
        }).to_string(),
        "position": position,
        "nullable": c.nullable,
    });
    if let Some(t) = &c.comment {
        v["comment"] = json!(t);
    }
    if let Some(p) = c.partition_index {
        v["partition_index"] = json!(p);
    }
    v
}

/// Spark's JSON name of a simple type (`bigint` is "long"); complex types are written
/// as their type text, which is what a client reading `type_json` falls back to.
fn spark_type_json(type_text: &str) -> Value {
    let t = type_text.trim().to_ascii_lowercase();
    let simple = match t.as_str() {
        "bigint" | "long" => "long",
        "int" | "integer" => "integer",
        "smallint" | "short" => "short",
        "tinyint" | "byte" => "byte",
        "string" => "string",
        "double" => "double",
        "float" | "real" => "float",
        "boolean" => "boolean",
        "date" => "date",
        "timestamp" => "timestamp",
        "timestamp_ntz" => "timestamp_ntz",
        "binary" => "binary",
        other => return json!(other),
    };
    json!(simple)
}

/// Where a name resolved to: a table of this metastore, or one read through a share
/// catalog from the provider's metastore (read-only).
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    pub table: &'a TableRecord,
    /// Some(provider metastore id) when read through a Delta Sharing catalog.
    pub shared_from: Option<&'a str>,
}

/// Why a name did not resolve, so callers can answer with the service's error
/// (`TABLE_OR_VIEW_NOT_FOUND` / SQLSTATE 42P01, or the catalog's and schema's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    Catalog(String),
    Schema(String),
    Table(String),
}

/// Splits `catalog.schema.table` (lower case). Anything else is a table that cannot exist.
pub fn split_full_name(full_name: &str) -> Option<(String, String, String)> {
    let lower = full_name.to_lowercase();
    let mut parts = lower.split('.');
    let (c, s, t) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || c.is_empty() || s.is_empty() || t.is_empty() {
        return None;
    }
    Some((c.to_string(), s.to_string(), t.to_string()))
}

/// The catalog's share reference when it is a Delta Sharing catalog.
pub fn share_of_catalog(catalog: &Value) -> Option<(&str, &str)> {
    if catalog["catalog_type"].as_str() != Some("DELTASHARING_CATALOG") {
        return None;
    }
    Some((
        catalog["provider_name"].as_str()?,
        catalog["share_name"].as_str()?,
    ))
}

/// The metastore id whose `global_metastore_id` is `global`.
pub fn metastore_by_global_id<'a>(s: &'a State, global: &str) -> Option<&'a str> {
    s.metastores
        .iter()
        .find(|(_, m)| m["global_metastore_id"].as_str() == Some(global))
        .map(|(id, _)| id.as_str())
}

/// The `schema.table` names a share exposes, mapped to the provider's full table
/// names. A SCHEMA object exposes every table of that schema at the time of the read,
/// so tables created in a shared schema later are shared with no edit (as in Databricks).
pub fn shared_tables(provider: &MetastoreData, share: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for obj in share["objects"].as_array().into_iter().flatten() {
        let name = obj["name"].as_str().unwrap_or_default().to_lowercase();
        match obj["data_object_type"].as_str() {
            Some("TABLE") | Some("VIEW") | Some("MATERIALIZED_VIEW")
                if provider.tables.contains_key(&name) =>
            {
                let shared_as = obj["shared_as"]
                    .as_str()
                    .map(str::to_lowercase)
                    .unwrap_or_else(|| {
                        name.split_once('.')
                            .map(|x| x.1)
                            .unwrap_or(&name)
                            .to_string()
                    });
                out.insert(shared_as, name);
            }
            Some("SCHEMA") => {
                let prefix = format!("{name}.");
                let shared_schema = obj["shared_as"]
                    .as_str()
                    .map(str::to_lowercase)
                    .unwrap_or_else(|| {
                        name.split_once('.')
                            .map(|x| x.1)
                            .unwrap_or(&name)
                            .to_string()
                    });
                for full in provider.tables.keys().filter(|k| k.starts_with(&prefix)) {
                    let table = &full[prefix.len()..];
                    out.insert(format!("{shared_schema}.{table}"), full.clone());
                }
            }
            _ => {}
        }
    }
    out
}

/// The provider metastore and share behind a share catalog, if the provider's
/// recipient still grants this metastore the share.
pub fn share_source<'a>(
    s: &'a State,
    metastore_id: &str,
    provider_name: &str,
    share_name: &str,
) -> Option<(&'a str, &'a Value)> {
    let here = s.metastore_data.get(metastore_id)?;
    let provider = here.providers.get(&provider_name.to_lowercase())?;
    let source_global = provider["data_provider_global_metastore_id"].as_str()?;
    let source_id = metastore_by_global_id(s, source_global)?;
    let source = s.metastore_data.get(source_id)?;
    let share = source.shares.get(&share_name.to_lowercase())?;
    let my_global = s.metastores.get(metastore_id)?["global_metastore_id"].as_str()?;
    // The share must be granted (SELECT) to a recipient for this metastore.
    let granted = source
        .grants
        .get(&format!("SHARE/{}", share_name.to_lowercase()))
        .into_iter()
        .flatten()
        .any(|(recipient, privileges)| {
            privileges.contains("SELECT")
                && source.recipients.get(recipient).is_some_and(|r| {
                    r["data_recipient_global_metastore_id"].as_str() == Some(my_global)
                })
        });
    granted.then_some((source_id, share))
}

/// Resolves `catalog.schema.table` in a metastore, reading through share catalogs.
pub fn resolve_table<'a>(
    s: &'a State,
    metastore_id: &str,
    full_name: &str,
) -> Result<Resolved<'a>, Unresolved> {
    let (c, sc, t) =
        split_full_name(full_name).ok_or_else(|| Unresolved::Table(full_name.to_lowercase()))?;
    let data = s
        .metastore_data
        .get(metastore_id)
        .ok_or_else(|| Unresolved::Catalog(c.clone()))?;
    let catalog = data
        .catalogs
        .get(&c)
        .ok_or_else(|| Unresolved::Catalog(c.clone()))?;
    if let Some((provider, share)) = share_of_catalog(catalog) {
        let (source_id, share) = share_source(s, metastore_id, provider, share)
            .ok_or_else(|| Unresolved::Table(format!("{c}.{sc}.{t}")))?;
        let source = &s.metastore_data[source_id];
        let tables = shared_tables(source, share);
        if !tables.keys().any(|k| k.starts_with(&format!("{sc}."))) {
            return Err(Unresolved::Schema(format!("{c}.{sc}")));
        }
        let source_name = tables
            .get(&format!("{sc}.{t}"))
            .ok_or_else(|| Unresolved::Table(format!("{c}.{sc}.{t}")))?;
        return Ok(Resolved {
            table: &source.tables[source_name],
            shared_from: Some(source_id),
        });
    }
    if !data.schemas.contains_key(&format!("{c}.{sc}")) {
        return Err(Unresolved::Schema(format!("{c}.{sc}")));
    }
    data.tables
        .get(&format!("{c}.{sc}.{t}"))
        .map(|table| Resolved {
            table,
            shared_from: None,
        })
        .ok_or(Unresolved::Table(format!("{c}.{sc}.{t}")))
}

/// The tables a share catalog shows: (schema, table name, source record).
pub fn share_catalog_tables<'a>(
    s: &'a State,
    metastore_id: &str,
    catalog: &Value,
) -> Vec<(String, String, &'a TableRecord)> {
    let Some((provider, share)) = share_of_catalog(catalog) else {
        return vec![];
    };
    let Some((source_id, share)) = share_source(s, metastore_id, provider, share) else {
        return vec![];
    };
    let source = &s.metastore_data[source_id];
    shared_tables(source, share)
        .into_iter()
        .filter_map(|(shared_as, full)| {
            let (schema, table) = shared_as.split_once('.')?;
            Some((schema.to_string(), table.to_string(), &source.tables[&full]))
        })
        .collect()
}

/// Tag assignments of one securable: key -> value (a tag may have an empty value).
pub type Tags = BTreeMap<String, String>;

/// The key of a securable in `MetastoreData::tags`: `TABLE/cat.s.t`, `COLUMN/cat.s.t.col`,
/// `SCHEMA/cat.s`, `CATALOG/cat`, `VOLUME/cat.s.v`.
pub fn tag_key(securable_type: &str, full_name: &str) -> String {
    format!(
        "{}/{}",
        securable_type.to_ascii_uppercase(),
        full_name.to_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(full: &str) -> TableRecord {
        let (c, s, t) = split_full_name(full).unwrap();
        TableRecord {
            info: json!({"name": t, "catalog_name": c, "schema_name": s, "full_name": full,
                         "table_type": "MANAGED", "data_source_format": "DELTA"}),
            columns: vec![Column {
                name: "id".into(),
                type_text: "bigint".into(),
                type_name: "LONG".into(),
                nullable: true,
                comment: Some("key".into()),
                partition_index: None,
            }],
            files: vec![DataFile {
                id: "f1".into(),
                rows: vec![vec![json!(1)], vec![json!(2)]],
                size_bytes: 10,
            }],
            version: 1,
            history: vec![],
        }
    }

    /// Two metastores: `p` (provider) shares schema `main.sales` and table
    /// `main.hr.people` as `hr.people` with `r` through recipient `dr`.
    fn two_regions() -> State {
        let mut s = State::default();
        s.metastores.insert(
            "p".into(),
            json!({"global_metastore_id": "aws:us-east-1:p"}),
        );
        s.metastores.insert(
            "r".into(),
            json!({"global_metastore_id": "aws:us-west-2:r"}),
        );
        let p = s.metastore_data.entry("p".into()).or_default();
        for t in [
            "main.sales.orders",
            "main.sales.items",
            "main.hr.people",
            "main.hr.pay",
        ] {
            p.tables.insert(t.into(), table(t));
        }
        p.shares.insert(
            "main_share".into(),
            json!({"name": "main_share", "objects": [
                {"name": "main.sales", "data_object_type": "SCHEMA"},
                {"name": "main.hr.people", "data_object_type": "TABLE"},
            ]}),
        );
        p.recipients.insert(
            "dr".into(),
            json!({"name": "dr", "data_recipient_global_metastore_id": "aws:us-west-2:r"}),
        );
        p.grants
            .entry("SHARE/main_share".into())
            .or_default()
            .entry("dr".into())
            .or_default()
            .insert("SELECT".into());
        let r = s.metastore_data.entry("r".into()).or_default();
        r.providers.insert(
            "prov".into(),
            json!({"name": "prov", "data_provider_global_metastore_id": "aws:us-east-1:p"}),
        );
        r.catalogs.insert(
            "shared".into(),
            json!({"name": "shared", "catalog_type": "DELTASHARING_CATALOG",
                   "provider_name": "prov", "share_name": "main_share"}),
        );
        s
    }

    #[test]
    fn share_catalog_reads_through_to_the_provider() {
        let s = two_regions();
        let got = resolve_table(&s, "r", "SHARED.sales.orders").unwrap();
        assert_eq!(got.table.full_name(), "main.sales.orders");
        assert_eq!(got.shared_from, Some("p"));
        assert_eq!(
            resolve_table(&s, "r", "shared.hr.people")
                .unwrap()
                .table
                .row_count(),
            2
        );
        // Only the named table of `hr` is shared.
        assert_eq!(
            resolve_table(&s, "r", "shared.hr.pay").unwrap_err(),
            Unresolved::Table("shared.hr.pay".into())
        );
        assert_eq!(
            resolve_table(&s, "r", "shared.nope.x").unwrap_err(),
            Unresolved::Schema("shared.nope".into())
        );
    }

    #[test]
    fn a_table_added_to_a_shared_schema_later_is_shared() {
        let mut s = two_regions();
        assert!(resolve_table(&s, "r", "shared.sales.returns").is_err());
        s.metastore_data
            .get_mut("p")
            .unwrap()
            .tables
            .insert("main.sales.returns".into(), table("main.sales.returns"));
        assert!(resolve_table(&s, "r", "shared.sales.returns").is_ok());
        let names: Vec<String> =
            share_catalog_tables(&s, "r", &s.metastore_data["r"].catalogs["shared"])
                .into_iter()
                .map(|(sc, t, _)| format!("{sc}.{t}"))
                .collect();
        assert_eq!(
            names,
            ["hr.people", "sales.items", "sales.orders", "sales.returns"]
        );
    }

    #[test]
    fn revoking_the_share_hides_its_tables() {
        let mut s = two_regions();
        s.metastore_data.get_mut("p").unwrap().grants.clear();
        assert!(resolve_table(&s, "r", "shared.sales.orders").is_err());
    }

    #[test]
    fn local_names_need_their_catalog_and_schema() {
        let mut s = two_regions();
        let p = s.metastore_data.get_mut("p").unwrap();
        p.catalogs
            .insert("main".into(), json!({"catalog_type": "MANAGED_CATALOG"}));
        p.schemas.insert("main.sales".into(), json!({}));
        assert!(resolve_table(&s, "p", "main.sales.orders").is_ok());
        assert_eq!(
            resolve_table(&s, "p", "main.hr.people").unwrap_err(),
            Unresolved::Schema("main.hr".into())
        );
        assert_eq!(
            resolve_table(&s, "p", "other.a.b").unwrap_err(),
            Unresolved::Catalog("other".into())
        );
        assert!(matches!(
            resolve_table(&s, "p", "main.sales"),
            Err(Unresolved::Table(_))
        ));
    }

    #[test]
    fn table_info_renders_columns_with_position_and_type_json() {
        let info = table("a.b.c").table_info();
        let col = &info["columns"][0];
        assert_eq!(col["position"], 0);
        assert_eq!(col["type_name"], "LONG");
        let tj: Value = serde_json::from_str(col["type_json"].as_str().unwrap()).unwrap();
        assert_eq!(tj["type"], "long");
        assert_eq!(tj["metadata"]["comment"], "key");
        assert_eq!(info["properties"]["delta.lastUpdateVersion"], "1");
    }
}
