//! Unity Catalog metastores at account level, and their workspace assignments.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::AcctCtx;
use crate::errors::{ApiError, ApiResult};
use crate::state::{new_uuid, now_ms, query_bool, App, Body, Fields, State as EmuState};

#[derive(Deserialize)]
pub struct MetastorePath {
    pub metastore_id: String,
}

#[derive(Deserialize)]
pub struct AssignPath {
    pub workspace_id: i64,
    pub metastore_id: Option<String>,
}

fn principal_name(s: &EmuState, sp_id: &str) -> String {
    s.service_principals
        .get(sp_id)
        .and_then(|sp| sp["applicationId"].as_str())
        .unwrap_or_default()
        .to_string()
}

pub fn get_metastore(s: &EmuState, id: &str) -> ApiResult<Value> {
    s.metastores
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("Metastore '{id}' does not exist.")))
}

pub async fn create(ctx: AcctCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    let info = b
        .get("metastore_info")
        .cloned()
        .ok_or_else(|| ApiError::missing_field("metastore_info"))?;
    let name = info.req_str("name")?;
    let region = info.req_str("region")?;
    let storage_root = info.opt_str("storage_root");
    if let Some(root) = &storage_root {
        if !root.starts_with("s3://") {
            return Err(ApiError::invalid(format!(
                "storage_root must be an s3:// URL, got {root}"
            )));
        }
    }
    app.mutate(|s| {
        if s.metastores.values().any(|m| m["region"] == json!(region)) {
            return Err(ApiError::already_exists(format!(
                "This account already has a metastore in region {region}; only one metastore per region is allowed"
            )));
        }
        let id = new_uuid();
        let now = now_ms();
        let who = principal_name(s, &ctx.service_principal_id);
        let mut m = json!({
            "metastore_id": id,
            "name": name,
            "region": region,
            "cloud": "aws",
            "global_metastore_id": format!("aws:{region}:{id}"),
            "owner": who,
            "created_at": now,
            "created_by": who,
            "updated_at": now,
            "updated_by": who,
            "delta_sharing_scope": "INTERNAL",
            "privilege_model_version": "1.0",
            "external_access_enabled": info["external_access_enabled"].as_bool().unwrap_or(false),
        });
        if let Some(root) = storage_root {
            m["storage_root"] = json!(format!("{}/{id}", root.trim_end_matches('/')));
        }
        s.metastores.insert(id, m.clone());
        Ok(Json(json!({"metastore_info": m})))
    })
}

pub async fn list(_: AcctCtx, State(app): State<App>) -> Json<Value> {
    app.read(|s| Json(json!({"metastores": s.metastores.values().cloned().collect::<Vec<_>>()})))
}

pub async fn get(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<MetastorePath>,
) -> ApiResult<Json<Value>> {
    app.read(|s| get_metastore(s, &p.metastore_id).map(|m| Json(json!({"metastore_info": m}))))
}

pub async fn update(
    ctx: AcctCtx,
    State(app): State<App>,
    Path(p): Path<MetastorePath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let info = b
        .get("metastore_info")
        .cloned()
        .unwrap_or_else(|| json!({}));
    app.mutate(|s| {
        let mut m = get_metastore(s, &p.metastore_id)?;
        for (from, to) in [
            ("new_name", "name"),
            ("owner", "owner"),
            ("delta_sharing_scope", "delta_sharing_scope"),
            (
                "delta_sharing_organization_name",
                "delta_sharing_organization_name",
            ),
            (
                "delta_sharing_recipient_token_lifetime_in_seconds",
                "delta_sharing_recipient_token_lifetime_in_seconds",
            ),
            ("storage_root_credential_id", "storage_root_credential_id"),
            ("privilege_model_version", "privilege_model_version"),
            ("external_access_enabled", "external_access_enabled"),
        ] {
            if let Some(v) = info.get(from).filter(|v| !v.is_null()) {
                m[to] = v.clone();
            }
        }
        m["updated_at"] = json!(now_ms());
        m["updated_by"] = json!(principal_name(s, &ctx.service_principal_id));
        s.metastores.insert(p.metastore_id.clone(), m.clone());
        Ok(Json(json!({"metastore_info": m})))
    })
}

pub async fn delete(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<MetastorePath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let force = query_bool(&q, "force");
    app.mutate(|s| {
        get_metastore(s, &p.metastore_id)?;
        let assigned = s
            .metastore_assignments
            .values()
            .any(|a| a["metastore_id"].as_str() == Some(p.metastore_id.as_str()));
        if assigned && !force {
            return Err(ApiError::invalid(format!(
                "Metastore {} is assigned to workspaces; unassign them first or delete with force=true",
                p.metastore_id
            )));
        }
        s.metastore_assignments
            .retain(|_, a| a["metastore_id"].as_str() != Some(p.metastore_id.as_str()));
        s.metastores.remove(&p.metastore_id);
        s.metastore_data.remove(&p.metastore_id);
        Ok(Json(json!({})))
    })
}

// ---------------------------------------------------------------- assignments

fn assignment_body(b: &Value) -> Value {
    b.get("metastore_assignment")
        .cloned()
        .unwrap_or_else(|| json!({}))
}

pub fn assign(
    s: &mut EmuState,
    workspace_id: i64,
    metastore_id: &str,
    default_catalog: Option<String>,
    replace: bool,
) -> ApiResult<()> {
    let ws = s
        .workspaces
        .get(&workspace_id)
        .ok_or_else(|| ApiError::not_found(format!("Workspace {workspace_id} does not exist")))?;
    let region = ws.info["aws_region"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let m = get_metastore(s, metastore_id)?;
    if m["region"].as_str() != Some(region.as_str()) {
        return Err(ApiError::invalid(format!(
            "Metastore {metastore_id} is in region {}, but workspace {workspace_id} is in {region}",
            m["region"].as_str().unwrap_or_default()
        )));
    }
    match s.metastore_assignments.get(&workspace_id) {
        Some(existing) if !replace && existing["metastore_id"].as_str() != Some(metastore_id) => {
            return Err(ApiError::already_exists(format!(
                "Workspace {workspace_id} already has metastore {} assigned",
                existing["metastore_id"].as_str().unwrap_or_default()
            )));
        }
        _ => {}
    }
    let previous_default = s
        .metastore_assignments
        .get(&workspace_id)
        .and_then(|a| a["default_catalog_name"].as_str().map(str::to_string));
    s.metastore_assignments.insert(
        workspace_id,
        json!({
            "workspace_id": workspace_id,
            "metastore_id": metastore_id,
            "default_catalog_name": default_catalog.or(previous_default).unwrap_or_else(|| "main".into()),
        }),
    );
    Ok(())
}

pub async fn create_assignment(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<AssignPath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let body = assignment_body(&b);
    let mid = p.metastore_id.clone().unwrap_or_default();
    app.mutate(|s| {
        assign(
            s,
            p.workspace_id,
            &mid,
            body.opt_str("default_catalog_name"),
            false,
        )?;
        Ok(Json(json!({})))
    })
}

pub async fn update_assignment(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<AssignPath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let body = assignment_body(&b);
    let mid = p.metastore_id.clone().unwrap_or_default();
    app.mutate(|s| {
        let current = s
            .metastore_assignments
            .get(&p.workspace_id)
            .cloned()
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "Workspace {} has no metastore assigned",
                    p.workspace_id
                ))
            })?;
        if current["metastore_id"].as_str() != Some(mid.as_str()) {
            return Err(ApiError::invalid(format!(
                "Workspace {} is not assigned to metastore {mid}",
                p.workspace_id
            )));
        }
        assign(
            s,
            p.workspace_id,
            &mid,
            body.opt_str("default_catalog_name"),
            true,
        )?;
        Ok(Json(json!({})))
    })
}

pub async fn delete_assignment(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<AssignPath>,
) -> ApiResult<Json<Value>> {
    let mid = p.metastore_id.clone().unwrap_or_default();
    app.mutate(|s| {
        let matches = s
            .metastore_assignments
            .get(&p.workspace_id)
            .is_some_and(|a| a["metastore_id"].as_str() == Some(mid.as_str()));
        if !matches {
            return Err(ApiError::not_found(format!(
                "Workspace {} is not assigned to metastore {mid}",
                p.workspace_id
            )));
        }
        s.metastore_assignments.remove(&p.workspace_id);
        Ok(Json(json!({})))
    })
}

pub async fn get_assignment(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<AssignPath>,
) -> ApiResult<Json<Value>> {
    app.read(|s| {
        if !s.workspaces.contains_key(&p.workspace_id) {
            return Err(ApiError::not_found(format!(
                "Workspace {} does not exist",
                p.workspace_id
            )));
        }
        s.metastore_assignments
            .get(&p.workspace_id)
            .map(|a| Json(json!({"metastore_assignment": a})))
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "Workspace {} has no metastore assigned",
                    p.workspace_id
                ))
            })
    })
}

pub async fn list_assigned_workspaces(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<MetastorePath>,
) -> ApiResult<Json<Value>> {
    app.read(|s| {
        get_metastore(s, &p.metastore_id)?;
        let ids: Vec<i64> = s
            .metastore_assignments
            .iter()
            .filter(|(_, a)| a["metastore_id"].as_str() == Some(p.metastore_id.as_str()))
            .map(|(w, _)| *w)
            .collect();
        Ok(Json(json!({"workspace_ids": ids})))
    })
}
