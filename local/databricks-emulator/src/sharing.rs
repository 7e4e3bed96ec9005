//! Delta Sharing, provider side: shares (`/api/2.1/unity-catalog/shares`: create, list,
//! get, PATCH with `updates[]` of TABLE / VIEW / SCHEMA data objects, delete) and their
//! permissions (`/shares/{name}/permissions`, principal = recipient, privilege SELECT),
//! stored under `SHARE/<share>` in `grants`, which `uc_data::share_source` reads.
//! Recipients and providers are in `sharing_parties`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::state::{copy_fields, now_ms, query_bool, App, Body, Fields, MetastoreData};
use crate::uc::Kind;
use crate::uc_common::{ident, list_answer, missing, stamp, with_metastore, PageRequest};
use crate::uc_grants::{apply_changes, check_share_changes, parse_changes, permissions_page};

const SHARES_PAGE: usize = 1000;

#[derive(Deserialize)]
pub struct SharePath {
    pub name: String,
}

pub fn share_missing(name: &str) -> ApiError {
    missing("SHARE_DOES_NOT_EXIST", "Share", name)
}

/// `ShareInfo` has no `metastore_id`; `stamp` sets one for every other securable.
fn share_stamp(v: &mut Value, ctx: &WsCtx, mid: &str, creating: bool) {
    stamp(v, ctx, mid, creating);
    if let Some(o) = v.as_object_mut() {
        o.remove("metastore_id");
    }
}

pub async fn create_share(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = ident(&b, "name")?;
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        if d.shares.contains_key(&name) {
            return Err(ApiError::already_exists(format!(
                "Share '{name}' already exists."
            )));
        }
        let mut v = json!({ "name": name, "objects": [] });
        copy_fields(&mut v, &b, &["comment", "storage_root"]);
        share_stamp(&mut v, &ctx, mid, true);
        d.shares.insert(name, v.clone());
        Ok(Json(v))
    })
}

/// A share as answered: `objects` only when `include_shared_data=true`.
fn share_answer(share: &Value, include_objects: bool) -> Value {
    let mut v = share.clone();
    if !include_objects {
        if let Some(o) = v.as_object_mut() {
            o.remove("objects");
        }
    }
    v
}

pub async fn get_share(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<SharePath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    with_metastore(&app, ctx.workspace_id, |d, _| {
        d.shares
            .get(&name)
            .map(|s| Json(share_answer(s, query_bool(&q, "include_shared_data"))))
            .ok_or_else(|| share_missing(&name))
    })
}

pub async fn list_shares(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let page = PageRequest::from_query(&q, SHARES_PAGE)?;
    with_metastore(&app, ctx.workspace_id, |d, _| {
        let all = d
            .shares
            .iter()
            .map(|(k, v)| (k.clone(), share_answer(v, false)))
            .collect();
        let (items, next) = page.page(all);
        Ok(Json(list_answer("shares", items, next)))
    })
}

/// Whether `alias` is a valid `shared_as`: `<schema>.<table>`, letters, digits and `_`.
fn valid_shared_as(alias: &str) -> bool {
    let parts: Vec<&str> = alias.split('.').collect();
    parts.len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// The new `SharedDataObject` of an ADD, after checking that the object exists and is
/// not in the share yet.
fn added_object(d: &MetastoreData, share: &Value, obj: &Value, ctx: &WsCtx) -> ApiResult<Value> {
    let name = obj.req_str("name")?.to_lowercase();
    let kind = obj.req_str("data_object_type")?;
    let objects = share["objects"].as_array().cloned().unwrap_or_default();
    if objects
        .iter()
        .any(|o| o["name"].as_str() == Some(name.as_str()))
    {
        return Err(ApiError::already_exists(format!(
            "Data object '{name}' is already in share '{}'.",
            share["name"].as_str().unwrap_or_default()
        )));
    }
    let mut v = json!({
        "name": name,
        "data_object_type": kind,
        "added_at": now_ms(),
        "added_by": ctx.principal_name,
        "status": "ACTIVE",
    });
    match kind.as_str() {
        "TABLE" | "VIEW" => {
            let table = d
                .tables
                .get(&name)
                .ok_or_else(|| missing("TABLE_DOES_NOT_EXIST", "Table", &name))?;
            if table.is_view() != (kind == "VIEW") {
                return Err(ApiError::invalid(format!(
                    "'{name}' is a {}; add it with data_object_type {}",
                    table.table_type(),
                    if table.is_view() { "VIEW" } else { "TABLE" }
                )));
            }
            // The service names a table `<schema>.<table>` unless told otherwise.
            let default_alias = name.split_once('.').map(|x| x.1).unwrap_or(&name).to_string();
            let alias = obj.opt_str("shared_as").unwrap_or(default_alias).to_lowercase();
            if !valid_shared_as(&alias) {
                return Err(ApiError::invalid(format!(
                    "Invalid shared_as '{alias}': expected <schema>.<table> with letters, digits and underscores"
                )));
            }
            if objects.iter().any(|o| o["shared_as"].as_str() == Some(alias.as_str())) {
                return Err(ApiError::already_exists(format!(
                    "A data object is already shared as '{alias}'."
                )));
            }
            v["shared_as"] = json!(alias);
        }
        "SCHEMA" => {
            if !d.schemas.contains_key(&name) {
                return Err(Kind::Schema.missing(&name));
            }
            if obj.opt_str("shared_as").is_some() {
                return Err(ApiError::invalid(
                    "shared_as applies to table-like data objects, not to a SCHEMA",
                ));
            }
        }
        other => {
            return Err(ApiError::invalid(format!(
                "data_object_type {other} is not supported by the emulator (TABLE, VIEW and SCHEMA are)"
            )))
        }
    }
    copy_fields(
        &mut v,
        obj,
        &[
            "comment",
            "cdf_enabled",
            "history_data_sharing_status",
            "partitions",
            "start_version",
        ],
    );
    Ok(v)
}

/// Applies one `SharedDataObjectUpdate` to (a copy of) a share.
fn apply_update(d: &MetastoreData, share: &mut Value, u: &Value, ctx: &WsCtx) -> ApiResult<()> {
    let action = u.req_str("action")?;
    let obj = u
        .get("data_object")
        .filter(|o| o.is_object())
        .ok_or_else(|| ApiError::missing_field("data_object"))?;
    if action == "ADD" {
        let added = added_object(d, share, obj, ctx)?;
        share["objects"]
            .as_array_mut()
            .map(|a| a.push(added))
            .ok_or_else(|| ApiError::invalid("share has no objects list"))?;
        return Ok(());
    }
    let name = obj.req_str("name")?.to_lowercase();
    let share_name = share["name"].as_str().unwrap_or_default().to_string();
    let objects = share["objects"]
        .as_array_mut()
        .ok_or_else(|| ApiError::invalid("share has no objects list"))?;
    let at = objects
        .iter()
        .position(|o| o["name"].as_str() == Some(name.as_str()))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Data object '{name}' is not in share '{share_name}'."
            ))
        })?;
    match action.as_str() {
        "REMOVE" => {
            objects.remove(at);
        }
        "UPDATE" => {
            let current = &mut objects[at];
            if let Some(alias) = obj.opt_str("shared_as") {
                if current["shared_as"].as_str() != Some(alias.to_lowercase().as_str()) {
                    return Err(ApiError::invalid(
                        "shared_as cannot be changed; remove the object and add it again",
                    ));
                }
            }
            copy_fields(
                current,
                obj,
                &[
                    "comment",
                    "cdf_enabled",
                    "history_data_sharing_status",
                    "partitions",
                    "start_version",
                ],
            );
        }
        other => {
            return Err(ApiError::invalid(format!(
                "Invalid action {other}: expected ADD, REMOVE or UPDATE"
            )))
        }
    }
    Ok(())
}

pub async fn update_share(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<SharePath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        let mut share = d
            .shares
            .get(&name)
            .cloned()
            .ok_or_else(|| share_missing(&name))?;
        // Every update is checked before any is kept: a request applies whole or not at all.
        for u in b["updates"].as_array().into_iter().flatten() {
            apply_update(d, &mut share, u, &ctx)?;
        }
        copy_fields(&mut share, &b, &["comment", "owner", "storage_root"]);
        share_stamp(&mut share, &ctx, mid, false);
        let new_name = b
            .opt_str("new_name")
            .map(|n| n.to_lowercase())
            .filter(|n| *n != name);
        if let Some(new) = &new_name {
            if d.shares.contains_key(new) {
                return Err(ApiError::already_exists(format!(
                    "Share '{new}' already exists."
                )));
            }
            share["name"] = json!(new);
            d.shares.remove(&name);
            if let Some(g) = d.grants.remove(&format!("SHARE/{name}")) {
                d.grants.insert(format!("SHARE/{new}"), g);
            }
        }
        d.shares.insert(new_name.unwrap_or(name), share.clone());
        Ok(Json(share))
    })
}

pub async fn delete_share(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<SharePath>,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    with_metastore(&app, ctx.workspace_id, |d, _| {
        d.shares.remove(&name).ok_or_else(|| share_missing(&name))?;
        d.grants.remove(&format!("SHARE/{name}"));
        Ok(Json(json!({})))
    })
}

pub async fn get_share_permissions(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<SharePath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    with_metastore(&app, ctx.workspace_id, |d, _| {
        if !d.shares.contains_key(&name) {
            return Err(share_missing(&name));
        }
        permissions_page(d.grants.get(&format!("SHARE/{name}")), &q).map(Json)
    })
}

pub async fn update_share_permissions(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<SharePath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    let changes = parse_changes(&b)?;
    let omit_list = b.opt_bool("omit_permissions_list")?.unwrap_or(false);
    with_metastore(&app, ctx.workspace_id, |d, _| {
        if !d.shares.contains_key(&name) {
            return Err(share_missing(&name));
        }
        check_share_changes(d, &changes)?;
        let grants = d.grants.entry(format!("SHARE/{name}")).or_default();
        apply_changes(grants, changes, true);
        if omit_list {
            return Ok(Json(json!({})));
        }
        permissions_page(Some(grants), &HashMap::new()).map(Json)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_as_is_two_plain_parts() {
        assert!(valid_shared_as("sales.orders_2024"));
        assert!(!valid_shared_as("main.sales.orders"));
        assert!(!valid_shared_as("sales-x.orders"));
        assert!(!valid_shared_as("orders"));
    }
}
