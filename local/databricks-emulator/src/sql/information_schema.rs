//! `system.information_schema.*` (every catalog of the metastore) and
//! `<catalog>.information_schema.*` (that catalog only): catalogs, schemata, tables,
//! views, columns, routines, volumes, the privilege views and the tag views, with
//! Databricks' column names. Tables read through a share catalog are listed under that catalog.

use serde_json::{json, Value};

use super::ast::Name;
use super::describe::timestamp_text;
use super::error::{SqlError, SqlResult};
use super::names::data;
use super::{ResultColumn, ResultSet, Session};
use crate::state::{MetastoreData, State};
use crate::uc_data::{share_catalog_tables, share_of_catalog, TableRecord};

/// The information_schema view a name denotes, if it denotes one.
pub fn relation(state: &State, session: &Session, name: &Name) -> SqlResult<Option<ResultSet>> {
    let (catalog, view) = match name.0.as_slice() {
        [c, s, v] if s == "information_schema" => (c.clone(), v.clone()),
        [s, v] if s == "information_schema" => (session.catalog.to_lowercase(), v.clone()),
        [v] if session.schema.eq_ignore_ascii_case("information_schema") => {
            (session.catalog.to_lowercase(), v.clone())
        }
        _ => return Ok(None),
    };
    let d = data(state, session)?;
    let only = (catalog != "system").then_some(catalog.as_str());
    if let Some(c) = only {
        if !d.catalogs.contains_key(c) {
            return Err(SqlError::catalog_not_found(c));
        }
    }
    let in_scope = |c: &str| only.is_none_or(|o| o == c);
    let tables = visible_tables(state, session, d);
    let tables: Vec<&Visible> = tables.iter().filter(|t| in_scope(&t.catalog)).collect();
    let rs = match view.as_str() {
        "catalogs" => catalogs(d, &in_scope),
        "schemata" => schemata(d, &in_scope),
        "tables" => tables_view(&tables),
        "views" => views_view(&tables),
        "columns" => columns_view(&tables),
        "catalog_privileges" | "schema_privileges" | "table_privileges" => {
            privileges(d, &view, &in_scope)
        }
        "catalog_tags" | "schema_tags" | "table_tags" | "column_tags" => tags(d, &view, &in_scope),
        "routines" => routines(d, &in_scope),
        "volumes" => volumes(d, &in_scope),
        other => {
            return Err(SqlError::table_not_found(&format!(
                "{catalog}.information_schema.{other}"
            )))
        }
    };
    Ok(Some(rs))
}

struct Visible<'a> {
    catalog: String,
    schema: String,
    name: String,
    record: &'a TableRecord,
}

fn visible_tables<'a>(
    state: &'a State,
    session: &Session,
    d: &'a MetastoreData,
) -> Vec<Visible<'a>> {
    let mut out: Vec<Visible> = d
        .tables
        .iter()
        .filter_map(|(full, record)| {
            let mut p = full.split('.');
            Some(Visible {
                catalog: p.next()?.to_string(),
                schema: p.next()?.to_string(),
                name: p.next()?.to_string(),
                record,
            })
        })
        .collect();
    for (name, catalog) in &d.catalogs {
        if share_of_catalog(catalog).is_some() {
            for (schema, table, record) in
                share_catalog_tables(state, &session.metastore_id, catalog)
            {
                out.push(Visible {
                    catalog: name.clone(),
                    schema,
                    name: table,
                    record,
                });
            }
        }
    }
    out
}

fn rs(columns: &[&str], rows: Vec<Vec<Value>>) -> ResultSet {
    ResultSet {
        columns: columns
            .iter()
            .map(|c| match *c {
                "ordinal_position" | "partition_index" => ResultColumn::new(c, "int"),
                "created" | "last_altered" => ResultColumn::new(c, "timestamp"),
                _ => ResultColumn::new(c, "string"),
            })
            .collect(),
        rows,
    }
}

fn ts(v: &Value) -> Value {
    v.as_i64()
        .map(|ms| json!(timestamp_text(ms)))
        .unwrap_or(Value::Null)
}

fn catalogs(d: &MetastoreData, in_scope: &dyn Fn(&str) -> bool) -> ResultSet {
    let rows = d
        .catalogs
        .iter()
        .filter(|(n, _)| in_scope(n))
        .map(|(n, c)| {
            vec![
                json!(n),
                c["owner"].clone(),
                c["comment"].clone(),
                ts(&c["created_at"]),
                c["created_by"].clone(),
                ts(&c["updated_at"]),
                c["updated_by"].clone(),
            ]
        })
        .collect();
    rs(
        &[
            "catalog_name",
            "catalog_owner",
            "comment",
            "created",
            "created_by",
            "last_altered",
            "last_altered_by",
        ],
        rows,
    )
}

fn schemata(d: &MetastoreData, in_scope: &dyn Fn(&str) -> bool) -> ResultSet {
    let rows = d
        .schemas
        .iter()
        .filter_map(|(full, s)| {
            let (c, n) = full.split_once('.')?;
            in_scope(c).then(|| {
                vec![
                    json!(c),
                    json!(n),
                    s["owner"].clone(),
                    s["comment"].clone(),
                    ts(&s["created_at"]),
                    s["created_by"].clone(),
                    ts(&s["updated_at"]),
                    s["updated_by"].clone(),
                ]
            })
        })
        .collect();
    rs(
        &[
            "catalog_name",
            "schema_name",
            "schema_owner",
            "comment",
            "created",
            "created_by",
            "last_altered",
            "last_altered_by",
        ],
        rows,
    )
}

fn tables_view(tables: &[&Visible]) -> ResultSet {
    let rows = tables
        .iter()
        .map(|t| {
            let i = &t.record.info;
            let insertable = if t.record.is_view() { "NO" } else { "YES" };
            vec![
                json!(t.catalog),
                json!(t.schema),
                json!(t.name),
                i["table_type"].clone(),
                json!(insertable),
                json!("PRESERVE"),
                i["owner"].clone(),
                i["comment"].clone(),
                ts(&i["created_at"]),
                i["created_by"].clone(),
                ts(&i["updated_at"]),
                i["updated_by"].clone(),
                i["data_source_format"].clone(),
                Value::Null,
            ]
        })
        .collect();
    rs(
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "table_type",
            "is_insertable_into",
            "commit_action",
            "table_owner",
            "comment",
            "created",
            "created_by",
            "last_altered",
            "last_altered_by",
            "data_source_format",
            "storage_sub_directory",
        ],
        rows,
    )
}

fn views_view(tables: &[&Visible]) -> ResultSet {
    let rows = tables
        .iter()
        .filter(|t| t.record.is_view())
        .map(|t| {
            let materialized = if t.record.table_type() == "MATERIALIZED_VIEW" {
                "TRUE"
            } else {
                "FALSE"
            };
            vec![
                json!(t.catalog),
                json!(t.schema),
                json!(t.name),
                t.record.info["view_definition"].clone(),
                json!("NONE"),
                json!("NO"),
                json!("NO"),
                Value::Null,
                json!(materialized),
            ]
        })
        .collect();
    rs(
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "view_definition",
            "check_option",
            "is_updatable",
            "is_insertable_into",
            "sql_path",
            "is_materialized",
        ],
        rows,
    )
}

fn columns_view(tables: &[&Visible]) -> ResultSet {
    let mut rows = Vec::new();
    for t in tables {
        for (i, c) in t.record.columns.iter().enumerate() {
            let nullable = if c.nullable { "YES" } else { "NO" };
            rows.push(vec![
                json!(t.catalog),
                json!(t.schema),
                json!(t.name),
                json!(c.name),
                json!(i + 1),
                Value::Null,
                json!(nullable),
                json!(c.type_text),
                json!(c.type_name),
                c.partition_index.map(|p| json!(p)).unwrap_or(Value::Null),
                c.comment.as_ref().map(|s| json!(s)).unwrap_or(Value::Null),
            ]);
        }
    }
    rs(
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
            "ordinal_position",
            "column_default",
            "is_nullable",
            "full_data_type",
            "data_type",
            "partition_index",
            "comment",
        ],
        rows,
    )
}

/// One row per (securable, grantee, privilege). The grantor is the metastore's
/// emulated admin: grants do not record who made them.
fn privileges(d: &MetastoreData, view: &str, in_scope: &dyn Fn(&str) -> bool) -> ResultSet {
    let (kind, names): (&str, &[&str]) = match view {
        "catalog_privileges" => ("CATALOG", &["catalog_name"]),
        "schema_privileges" => ("SCHEMA", &["catalog_name", "schema_name"]),
        _ => ("TABLE", &["table_catalog", "table_schema", "table_name"]),
    };
    let mut rows = Vec::new();
    for (key, grants) in &d.grants {
        let Some(full) = key.strip_prefix(&format!("{kind}/")) else {
            continue;
        };
        let parts: Vec<&str> = full.split('.').collect();
        if parts.len() != names.len() || !in_scope(parts[0]) {
            continue;
        }
        for (grantee, privs) in grants {
            for p in privs {
                let mut row = vec![json!("System user"), json!(grantee)];
                row.extend(parts.iter().map(|x| json!(x)));
                row.extend([json!(p), json!("NO"), Value::Null]);
                rows.push(row);
            }
        }
    }
    let mut cols = vec!["grantor", "grantee"];
    cols.extend_from_slice(names);
    cols.extend(["privilege_type", "is_grantable", "inherited_from"]);
    rs(&cols, rows)
}

fn tags(d: &MetastoreData, view: &str, in_scope: &dyn Fn(&str) -> bool) -> ResultSet {
    let (kind, names): (&str, &[&str]) = match view {
        "catalog_tags" => ("CATALOG", &["catalog_name"]),
        "schema_tags" => ("SCHEMA", &["catalog_name", "schema_name"]),
        "table_tags" => ("TABLE", &["catalog_name", "schema_name", "table_name"]),
        _ => (
            "COLUMN",
            &["catalog_name", "schema_name", "table_name", "column_name"],
        ),
    };
    let mut rows = Vec::new();
    for (key, tags) in &d.tags {
        let Some(full) = key.strip_prefix(&format!("{kind}/")) else {
            continue;
        };
        let parts: Vec<&str> = full.splitn(names.len(), '.').collect();
        if parts.len() != names.len() || !in_scope(parts[0]) {
            continue;
        }
        for (k, v) in tags {
            let mut row: Vec<Value> = parts.iter().map(|x| json!(x)).collect();
            row.extend([json!(k), json!(v)]);
            rows.push(row);
        }
    }
    let mut cols = names.to_vec();
    cols.extend(["tag_name", "tag_value"]);
    rs(&cols, rows)
}

/// Three-part names of a map keyed `catalog.schema.name`, in scope.
fn three_parts<'a>(
    map: &'a std::collections::BTreeMap<String, Value>,
    in_scope: &'a dyn Fn(&str) -> bool,
) -> impl Iterator<Item = ([&'a str; 3], &'a Value)> + 'a {
    map.iter().filter_map(move |(full, v)| {
        let mut p = full.splitn(3, '.');
        let parts = [p.next()?, p.next()?, p.next()?];
        in_scope(parts[0]).then_some((parts, v))
    })
}

fn routines(d: &MetastoreData, in_scope: &dyn Fn(&str) -> bool) -> ResultSet {
    let rows = three_parts(&d.functions, in_scope)
        .map(|([c, s, n], f)| {
            let yes_no = |b: bool| json!(if b { "YES" } else { "NO" });
            vec![
                json!(c),
                json!(s),
                json!(n),
                json!(c),
                json!(s),
                json!(n),
                f["owner"].clone(),
                json!("FUNCTION"),
                f["data_type"].clone(),
                f["full_data_type"].clone(),
                f["routine_body"].clone(),
                f["routine_definition"].clone(),
                yes_no(f["is_deterministic"].as_bool().unwrap_or(true)),
                f["sql_data_access"].clone(),
                yes_no(f["is_null_call"].as_bool().unwrap_or(false)),
                f["security_type"].clone(),
                f["comment"].clone(),
                ts(&f["created_at"]),
                f["created_by"].clone(),
                ts(&f["updated_at"]),
                f["updated_by"].clone(),
            ]
        })
        .collect();
    rs(
        &[
            "specific_catalog",
            "specific_schema",
            "specific_name",
            "routine_catalog",
            "routine_schema",
            "routine_name",
            "routine_owner",
            "routine_type",
            "data_type",
            "full_data_type",
            "routine_body",
            "routine_definition",
            "is_deterministic",
            "sql_data_access",
            "is_null_call",
            "security_type",
            "comment",
            "created",
            "created_by",
            "last_altered",
            "last_altered_by",
        ],
        rows,
    )
}

fn volumes(d: &MetastoreData, in_scope: &dyn Fn(&str) -> bool) -> ResultSet {
    let rows = three_parts(&d.volumes, in_scope)
        .map(|([c, s, n], v)| {
            vec![
                json!(c),
                json!(s),
                json!(n),
                v["volume_type"].clone(),
                v["owner"].clone(),
                v["comment"].clone(),
                v["storage_location"].clone(),
                ts(&v["created_at"]),
                v["created_by"].clone(),
                ts(&v["updated_at"]),
                v["updated_by"].clone(),
            ]
        })
        .collect();
    rs(
        &[
            "volume_catalog",
            "volume_schema",
            "volume_name",
            "volume_type",
            "volume_owner",
            "comment",
            "storage_location",
            "created",
            "created_by",
            "last_altered",
            "last_altered_by",
        ],
        rows,
    )
}
