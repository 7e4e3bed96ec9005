//! Tables REST: `/api/2.1/unity-catalog/tables` (create external Delta tables, list,
//! get, exists, owner update, delete) and `/table-summaries`. Tables live in
//! `MetastoreData::tables` (`uc_data::TableRecord`), written by this API and by SQL.
//! Tables of a Delta Sharing catalog are read through to the provider's metastore at
//! every request, so they show the provider's current columns and tables; they are
//! read-only.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::state::{new_uuid, now_ms, App, Body, Fields, State as EmuState};
use crate::uc::{urls_overlap, Kind};
use crate::uc_common::{
    ident, list_answer, metastore_of, missing, read_only_share_catalog, sql_like, stamp,
    PageRequest,
};
use crate::uc_data::{
    resolve_table, share_catalog_tables, share_of_catalog, split_full_name, tag_key, Column,
    HistoryEntry, TableRecord, Unresolved,
};

/// Page length for `max_results=0` on tables (server-configured, undocumented) and on
/// summaries (documented as 10000).
const TABLES_PAGE: usize = 1000;
const SUMMARIES_PAGE: usize = 10_000;

#[derive(Deserialize)]
pub struct TablePath {
    pub full_name: String,
}

pub fn unresolved_error(u: Unresolved) -> ApiError {
    match u {
        Unresolved::Catalog(c) => Kind::Catalog.missing(&c),
        Unresolved::Schema(s) => Kind::Schema.missing(&s),
        Unresolved::Table(t) => missing("TABLE_DOES_NOT_EXIST", "Table", &t),
    }
}

/// The `TableInfo` of a provider's table as a share catalog shows it: named in the
/// recipient's catalog, owned by the catalog's owner, `DELTASHARING` format, and
/// without the provider's storage location (a recipient never sees it).
pub fn shared_table_info(
    table: &TableRecord,
    catalog: &Value,
    schema: &str,
    name: &str,
    metastore_id: &str,
) -> Value {
    let mut v = table.table_info();
    let catalog_name = catalog["name"].as_str().unwrap_or_default();
    v["catalog_name"] = json!(catalog_name);
    v["schema_name"] = json!(schema);
    v["name"] = json!(name);
    v["full_name"] = json!(format!("{catalog_name}.{schema}.{name}"));
    v["data_source_format"] = json!("DELTASHARING");
    v["owner"] = catalog["owner"].clone();
    v["metastore_id"] = json!(metastore_id);
    if let Some(o) = v.as_object_mut() {
        o.remove("storage_location");
        o.remove("storage_credential_name");
    }
    v
}

/// The TableInfo of `full_name` in the caller's metastore, through share catalogs.
fn table_info(s: &EmuState, mid: &str, full_name: &str) -> ApiResult<Value> {
    let resolved = resolve_table(s, mid, full_name).map_err(unresolved_error)?;
    if resolved.shared_from.is_none() {
        return Ok(resolved.table.table_info());
    }
    let (c, sc, t) = split_full_name(full_name).unwrap_or_default();
    let catalog = &s.metastore_data[mid].catalogs[&c];
    Ok(shared_table_info(resolved.table, catalog, &sc, &t, mid))
}

/// Every table of a catalog (or of one schema of it) as (full name, TableInfo), sorted.
fn tables_of(
    s: &EmuState,
    mid: &str,
    catalog_name: &str,
    schema: Option<&str>,
) -> ApiResult<Vec<(String, Value)>> {
    let d = s
        .metastore_data
        .get(mid)
        .ok_or_else(|| Kind::Catalog.missing(catalog_name))?;
    let catalog = d
        .catalogs
        .get(catalog_name)
        .ok_or_else(|| Kind::Catalog.missing(catalog_name))?;
    let mut out = BTreeMap::new();
    if share_of_catalog(catalog).is_some() {
        let shared = share_catalog_tables(s, mid, catalog);
        if let Some(sc) = schema {
            if !shared.iter().any(|(x, _, _)| x == sc) {
                return Err(Kind::Schema.missing(&format!("{catalog_name}.{sc}")));
            }
        }
        for (sc, t, record) in shared {
            if schema.is_none_or(|want| want == sc) {
                let info = shared_table_info(record, catalog, &sc, &t, mid);
                out.insert(format!("{catalog_name}.{sc}.{t}"), info);
            }
        }
    } else {
        if let Some(sc) = schema {
            let full = format!("{catalog_name}.{sc}");
            if !d.schemas.contains_key(&full) {
                return Err(Kind::Schema.missing(&full));
            }
        }
        let prefix = match schema {
            Some(sc) => format!("{catalog_name}.{sc}."),
            None => format!("{catalog_name}."),
        };
        for (k, t) in d.tables.range(prefix.clone()..) {
            if !k.starts_with(&prefix) {
                break;
            }
            out.insert(k.clone(), t.table_info());
        }
    }
    Ok(out.into_iter().collect())
}

/// Applies the list's `omit_columns`, `omit_properties` and `omit_username` flags, and
/// drops what ListTables never returns (`view_dependencies`, `table_constraints`).
fn trim_for_list(mut v: Value, q: &HashMap<String, String>) -> Value {
    let flag = |k: &str| crate::state::query_bool(q, k);
    if let Some(o) = v.as_object_mut() {
        o.remove("view_dependencies");
        o.remove("table_constraints");
        if flag("omit_columns") {
            o.remove("columns");
        }
        if flag("omit_properties") {
            o.remove("properties");
        }
        if flag("omit_username") {
            for k in ["owner", "created_by", "updated_by"] {
                o.remove(k);
            }
        }
    }
    v
}

pub async fn list_tables(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let catalog = q
        .get("catalog_name")
        .map(|c| c.to_lowercase())
        .ok_or_else(|| ApiError::missing_field("catalog_name"))?;
    let schema = q
        .get("schema_name")
        .map(|c| c.to_lowercase())
        .ok_or_else(|| ApiError::missing_field("schema_name"))?;
    let page = PageRequest::from_query(&q, TABLES_PAGE)?;
    app.read(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        let all = tables_of(s, &mid, &catalog, Some(&schema))?;
        let (items, next) = page.page(all);
        let items = items.into_iter().map(|v| trim_for_list(v, &q)).collect();
        Ok(Json(list_answer("tables", items, next)))
    })
}

pub async fn list_table_summaries(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let catalog = q
        .get("catalog_name")
        .map(|c| c.to_lowercase())
        .ok_or_else(|| ApiError::missing_field("catalog_name"))?;
    // Summaries are paged by default (SUMMARIES_PAGE), unlike ListTables.
    let mut paged = q.clone();
    paged
        .entry("max_results".into())
        .or_insert_with(|| "0".into());
    let page = PageRequest::from_query(&paged, SUMMARIES_PAGE)?;
    let pattern = |k: &str| q.get(k).filter(|p| !p.is_empty()).cloned();
    let (schema_pattern, table_pattern) = (
        pattern("schema_name_pattern"),
        pattern("table_name_pattern"),
    );
    app.read(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        let all = tables_of(s, &mid, &catalog, None)?
            .into_iter()
            .filter(|(_, t)| {
                let sc = t["schema_name"].as_str().unwrap_or_default();
                let name = t["name"].as_str().unwrap_or_default();
                schema_pattern.as_ref().is_none_or(|p| sql_like(p, sc))
                    && table_pattern.as_ref().is_none_or(|p| sql_like(p, name))
            })
            .map(|(k, t)| {
                let summary = json!({"full_name": t["full_name"], "table_type": t["table_type"]});
                (k, summary)
            })
            .collect();
        let (items, next) = page.page(all);
        Ok(Json(list_answer("tables", items, next)))
    })
}

pub async fn get_table(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<TablePath>,
) -> ApiResult<Json<Value>> {
    app.read(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        table_info(s, &mid, &p.full_name).map(Json)
    })
}

/// `table_exists` is false for a missing table; a missing catalog or schema is an
/// error, as for a get.
pub async fn table_exists(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<TablePath>,
) -> ApiResult<Json<Value>> {
    app.read(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        match resolve_table(s, &mid, &p.full_name) {
            Ok(_) => Ok(Json(json!({"table_exists": true}))),
            Err(Unresolved::Table(_)) => Ok(Json(json!({"table_exists": false}))),
            Err(other) => Err(unresolved_error(other)),
        }
    })
}

/// The local table `full_name` for a write, refusing share catalogs (read-only).
fn writable_table<'a>(
    s: &'a mut EmuState,
    mid: &str,
    full_name: &str,
) -> ApiResult<&'a mut TableRecord> {
    let (c, _, _) = split_full_name(full_name)
        .ok_or_else(|| missing("TABLE_DOES_NOT_EXIST", "Table", full_name))?;
    let catalog = s.metastore_data.get(mid).and_then(|d| d.catalogs.get(&c));
    if catalog.is_some_and(|c| share_of_catalog(c).is_some()) {
        return Err(read_only_share_catalog(&c));
    }
    resolve_table(s, mid, full_name).map_err(unresolved_error)?;
    let d = s.metastore_data.entry(mid.to_string()).or_default();
    Ok(d.tables
        .get_mut(&full_name.to_lowercase())
        .expect("resolved above"))
}

pub async fn delete_table(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<TablePath>,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        writable_table(s, &mid, &p.full_name)?;
        let full = p.full_name.to_lowercase();
        let d = s.metastore_data.entry(mid).or_default();
        d.tables.remove(&full);
        d.grants.remove(&format!("TABLE/{full}"));
        // The table's tags and those of its columns (`COLUMN/<table>.<column>`).
        let column_prefix = tag_key("COLUMN", &format!("{full}."));
        d.tags
            .retain(|k, _| *k != tag_key("TABLE", &full) && !k.starts_with(&column_prefix));
        Ok(Json(json!({})))
    })
}

/// PATCH: the API changes only the owner (comments change through SQL).
pub async fn update_table(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<TablePath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        let table = writable_table(s, &mid, &p.full_name)?;
        if let Some(owner) = b.opt_str("owner").filter(|o| !o.is_empty()) {
            table.info["owner"] = json!(owner);
        }
        stamp(&mut table.info, &ctx, &mid, false);
        Ok(Json(json!({})))
    })
}

/// A `ColumnInfo` of a create request.
fn column_of(c: &Value) -> ApiResult<Column> {
    let name = c.req_str("name")?;
    let type_text = c.req_str("type_text")?.to_lowercase();
    let type_name = c.req_str("type_name")?;
    Ok(Column {
        name,
        type_text,
        type_name,
        nullable: c.opt_bool("nullable")?.unwrap_or(true),
        comment: c.opt_str("comment"),
        partition_index: c.opt_i64("partition_index")?,
    })
}

/// POST creates an external Delta table only: that is all the Databricks API accepts
/// from external clients; managed tables and views are created with SQL.
pub async fn create_table(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = ident(&b, "name")?;
    let catalog = ident(&b, "catalog_name")?;
    let schema = ident(&b, "schema_name")?;
    let table_type = b.req_str("table_type")?;
    let format = b.req_str("data_source_format")?;
    let location = b.req_str("storage_location")?;
    if table_type != "EXTERNAL" || format != "DELTA" {
        return Err(ApiError::invalid(format!(
            "Only EXTERNAL DELTA tables can be created with this API, not {table_type} {format}"
        )));
    }
    let columns = b["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(column_of)
        .collect::<ApiResult<Vec<_>>>()?;
    app.mutate(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        let full = format!("{catalog}.{schema}.{name}");
        let catalog_info = s
            .metastore_data
            .get(&mid)
            .and_then(|d| d.catalogs.get(&catalog));
        if catalog_info.is_some_and(|c| share_of_catalog(c).is_some()) {
            return Err(read_only_share_catalog(&catalog));
        }
        match resolve_table(s, &mid, &full) {
            Ok(_) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "TABLE_ALREADY_EXISTS",
                    format!("Table '{full}' already exists."),
                ))
            }
            Err(Unresolved::Table(_)) => {}
            Err(other) => return Err(unresolved_error(other)),
        }
        let d = s.metastore_data.entry(mid.clone()).or_default();
        let covered = d.external_locations.values().any(|l| {
            let url = l["url"].as_str().unwrap_or("\u{0}");
            urls_overlap(url, &location) && location.starts_with(url.trim_end_matches('/'))
        });
        if !covered {
            return Err(ApiError::invalid(format!(
                "No external location covers storage_location {location}"
            )));
        }
        let mut info = json!({
            "name": name, "catalog_name": catalog, "schema_name": schema, "full_name": full,
            "table_type": table_type, "data_source_format": format,
            "storage_location": location, "table_id": new_uuid(),
            "properties": b.get("properties").cloned().unwrap_or_else(|| json!({})),
        });
        stamp(&mut info, &ctx, &mid, true);
        let created = HistoryEntry {
            version: 0,
            timestamp_ms: now_ms(),
            operation: "CREATE TABLE".into(),
            operation_parameters: Default::default(),
            user_name: ctx.principal_name.clone(),
        };
        let record = TableRecord {
            info,
            columns,
            files: vec![],
            version: 0,
            history: vec![created],
        };
        let answer = record.table_info();
        d.tables.insert(full, record);
        Ok(Json(answer))
    })
}

#[cfg(test)]
mod tests;
