//! Entity tag assignments: `/api/2.1/unity-catalog/entity-tag-assignments` (POST) and
//! `.../{entity_type}/{entity_name}/tags[/{tag_key}]` (list paged, get, PATCH with
//! `update_mask`, delete) on catalogs, schemas, tables (and views), columns
//! (`catalog.schema.table.column`) and volumes, over `MetastoreData::tags`
//! (`uc_data::tag_key`), which SQL `SET TAGS` writes too.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::state::{now_ms, rfc3339, App, Body, Fields, MetastoreData};
use crate::uc::Kind;
use crate::uc_common::{list_answer, missing, with_metastore, PageRequest};
use crate::uc_data::{split_full_name, tag_key};

const TAGS_PAGE: usize = 1000;
/// Databricks allows at most 50 tags on one securable.
const MAX_TAGS: usize = 50;

#[derive(Deserialize)]
pub struct EntityPath {
    pub entity_type: String,
    pub entity_name: String,
}

#[derive(Deserialize)]
pub struct TagPath {
    pub entity_type: String,
    pub entity_name: String,
    pub tag_key: String,
}

/// The `tags` key of an entity, once it is known to exist.
fn entity_key(d: &MetastoreData, entity_type: &str, entity_name: &str) -> ApiResult<String> {
    let name = entity_name.to_lowercase();
    let (securable, exists) = match entity_type {
        "catalogs" => ("CATALOG", d.catalogs.contains_key(&name)),
        "schemas" => ("SCHEMA", d.schemas.contains_key(&name)),
        "tables" => ("TABLE", d.tables.contains_key(&name)),
        "volumes" => ("VOLUME", d.volumes.contains_key(&name)),
        "columns" => {
            let exists = name.rsplit_once('.').is_some_and(|(table, column)| {
                d.tables.get(table).is_some_and(|t| {
                    t.columns
                        .iter()
                        .any(|c| c.name.eq_ignore_ascii_case(column))
                })
            });
            ("COLUMN", exists)
        }
        other => {
            return Err(ApiError::invalid(format!(
            "Invalid entity_type {other}: expected catalogs, schemas, tables, columns or volumes"
        )))
        }
    };
    if exists {
        return Ok(tag_key(securable, &name));
    }
    Err(match securable {
        "CATALOG" => Kind::Catalog.missing(&name),
        "SCHEMA" => Kind::Schema.missing(&name),
        "VOLUME" => Kind::Volume.missing(&name),
        "TABLE" => missing("TABLE_DOES_NOT_EXIST", "Table", &name),
        _ => match name.rsplit_once('.').and_then(|(t, _)| split_full_name(t)) {
            Some(_) => missing("RESOURCE_DOES_NOT_EXIST", "Column", &name),
            None => ApiError::invalid(format!(
                "Invalid column name '{name}': expected catalog.schema.table.column"
            )),
        },
    })
}

/// One `EntityTagAssignment`. An empty value is a tag without a value.
fn assignment(
    d: &MetastoreData,
    key: &str,
    entity_type: &str,
    entity_name: &str,
    tag: &str,
) -> Option<Value> {
    let value = d.tags.get(key)?.get(tag)?;
    let mut v = json!({
        "entity_type": entity_type,
        "entity_name": entity_name.to_lowercase(),
        "tag_key": tag,
    });
    if !value.is_empty() {
        v["tag_value"] = json!(value);
    }
    if let Some((ms, who)) = d.tag_updates.get(key).and_then(|m| m.get(tag)) {
        v["update_time"] = json!(rfc3339(*ms));
        v["updated_by"] = json!(who);
    }
    Some(v)
}

fn tag_missing(entity_name: &str, tag: &str) -> ApiError {
    ApiError::not_found(format!(
        "Tag assignment with key '{tag}' does not exist on '{entity_name}'."
    ))
}

fn set_tag(d: &mut MetastoreData, key: &str, tag: &str, value: String, ctx: &WsCtx) {
    d.tags
        .entry(key.to_string())
        .or_default()
        .insert(tag.to_string(), value);
    d.tag_updates
        .entry(key.to_string())
        .or_default()
        .insert(tag.to_string(), (now_ms(), ctx.principal_name.clone()));
}

pub async fn create_tag_assignment(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let entity_type = b.req_str("entity_type")?;
    let entity_name = b.req_str("entity_name")?;
    let tag = b.req_str("tag_key")?;
    let value = b.opt_str("tag_value").unwrap_or_default();
    with_metastore(&app, ctx.workspace_id, |d, _| {
        let key = entity_key(d, &entity_type, &entity_name)?;
        let existing = d.tags.get(&key);
        if existing.is_some_and(|t| t.contains_key(&tag)) {
            return Err(ApiError::already_exists(format!(
                "Tag assignment with key '{tag}' already exists on '{entity_name}'."
            )));
        }
        if existing.is_some_and(|t| t.len() >= MAX_TAGS) {
            return Err(ApiError::invalid(format!(
                "'{entity_name}' already has {MAX_TAGS} tags, the most a securable can have"
            )));
        }
        set_tag(d, &key, &tag, value, &ctx);
        Ok(Json(
            assignment(d, &key, &entity_type, &entity_name, &tag).unwrap_or_default(),
        ))
    })
}

pub async fn list_tag_assignments(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<EntityPath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let page = PageRequest::from_query(&q, TAGS_PAGE)?;
    with_metastore(&app, ctx.workspace_id, |d, _| {
        let key = entity_key(d, &p.entity_type, &p.entity_name)?;
        let all = d
            .tags
            .get(&key)
            .into_iter()
            .flat_map(|t| t.keys())
            .filter_map(|tag| {
                let v = assignment(d, &key, &p.entity_type, &p.entity_name, tag)?;
                Some((tag.clone(), v))
            })
            .collect();
        let (items, next) = page.page(all);
        Ok(Json(list_answer("tag_assignments", items, next)))
    })
}

pub async fn get_tag_assignment(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<TagPath>,
) -> ApiResult<Json<Value>> {
    with_metastore(&app, ctx.workspace_id, |d, _| {
        let key = entity_key(d, &p.entity_type, &p.entity_name)?;
        assignment(d, &key, &p.entity_type, &p.entity_name, &p.tag_key)
            .map(Json)
            .ok_or_else(|| tag_missing(&p.entity_name, &p.tag_key))
    })
}

/// PATCH: `update_mask` must name `tag_value` (or be `*`), the only field that changes.
pub async fn update_tag_assignment(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<TagPath>,
    Query(q): Query<HashMap<String, String>>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let mask = q
        .get("update_mask")
        .ok_or_else(|| ApiError::missing_field("update_mask"))?;
    if !mask
        .split(',')
        .any(|f| matches!(f.trim(), "tag_value" | "*"))
    {
        return Err(ApiError::invalid(format!(
            "update_mask '{mask}' names no field that can change; only tag_value can"
        )));
    }
    let value = b.opt_str("tag_value").unwrap_or_default();
    with_metastore(&app, ctx.workspace_id, |d, _| {
        let key = entity_key(d, &p.entity_type, &p.entity_name)?;
        if !d.tags.get(&key).is_some_and(|t| t.contains_key(&p.tag_key)) {
            return Err(tag_missing(&p.entity_name, &p.tag_key));
        }
        set_tag(d, &key, &p.tag_key, value, &ctx);
        Ok(Json(
            assignment(d, &key, &p.entity_type, &p.entity_name, &p.tag_key).unwrap_or_default(),
        ))
    })
}

pub async fn delete_tag_assignment(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<TagPath>,
) -> ApiResult<Json<Value>> {
    with_metastore(&app, ctx.workspace_id, |d, _| {
        let key = entity_key(d, &p.entity_type, &p.entity_name)?;
        let removed = d.tags.get_mut(&key).and_then(|t| t.remove(&p.tag_key));
        if removed.is_none() {
            return Err(tag_missing(&p.entity_name, &p.tag_key));
        }
        if let Some(u) = d.tag_updates.get_mut(&key) {
            u.remove(&p.tag_key);
        }
        Ok(Json(json!({})))
    })
}
