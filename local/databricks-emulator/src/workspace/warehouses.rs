//! SQL warehouses (`/api/2.0/sql/warehouses`): create, get, list (paged with
//! `page_size`/`page_token`), start, stop and delete, with the states of the
//! real service (STARTING → RUNNING, STOPPING → STOPPED, DELETING → DELETED),
//! each transition taking the warehouse delay (`--warehouse-seconds`, or a
//! fault's `warehouse_start_seconds` for starts); and edit.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::faults::seconds_override;
use crate::lifecycle::{warehouse_state, WarehousePhase, WarehousePhaseKind};
use crate::state::{copy_fields, now_ms, random_hex, App, Body, Fields, WarehouseRecord};

/// The `{id}` segment of the route (a struct, since the workspace routes
/// are nested under `/ws/{deployment_name}`, which is a path parameter too).
#[derive(serde::Deserialize)]
pub struct WarehousePath {
    id: String,
}

const CLUSTER_SIZES: &[&str] = &[
    "2X-Small", "X-Small", "Small", "Medium", "Large", "X-Large", "2X-Large", "3X-Large",
    "4X-Large", "5X-Large",
];

/// Request fields that the API echoes back.
const ECHOED: &[&str] = &[
    "name",
    "cluster_size",
    "auto_stop_mins",
    "min_num_clusters",
    "max_num_clusters",
    "enable_photon",
    "enable_serverless_compute",
    "warehouse_type",
    "spot_instance_policy",
    "channel",
    "tags",
    "creator_name",
    "instance_profile_arn",
];

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!("SQL warehouse {id} does not exist."))
}

fn settings_problem(b: &Value) -> ApiResult<()> {
    let size = b.req_str("cluster_size")?;
    if !CLUSTER_SIZES.contains(&size.as_str()) {
        return Err(ApiError::invalid(format!(
            "cluster_size {size} is not one of {}",
            CLUSTER_SIZES.join(", ")
        )));
    }
    let min = b.opt_i64("min_num_clusters")?.unwrap_or(1);
    let max = b.opt_i64("max_num_clusters")?.unwrap_or(1);
    if min < 1 || max < min || max > 30 {
        return Err(ApiError::invalid(
            "min_num_clusters must be > 0 and <= max_num_clusters, and max_num_clusters <= 30",
        ));
    }
    let auto_stop = b.opt_i64("auto_stop_mins")?.unwrap_or(120);
    if auto_stop != 0 && auto_stop < 10 {
        return Err(ApiError::invalid("auto_stop_mins must be 0 or >= 10"));
    }
    match b.opt_str("warehouse_type").as_deref() {
        None | Some("CLASSIC") | Some("PRO") | Some("TYPE_UNSPECIFIED") => Ok(()),
        Some(other) => Err(ApiError::invalid(format!(
            "warehouse_type {other} is not one of CLASSIC, PRO"
        ))),
    }
}

pub async fn create(ctx: WsCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    let name = b.req_str("name")?;
    if name.chars().count() >= 100 {
        return Err(ApiError::invalid("name must be less than 100 characters"));
    }
    settings_problem(&b)?;
    app.mutate(|s| {
        let start_delay = seconds_override(s.faults.warehouse_start_seconds);
        let d = s.ws_data(ctx.workspace_id);
        if d.warehouses.values().any(|w| {
            w.info["name"].as_str() == Some(name.as_str())
                && warehouse_state(w.phase, now_ms(), app.settings.warehouse_ms) != "DELETED"
        }) {
            return Err(ApiError::already_exists(format!(
                "SQL warehouse with name {name} already exists."
            )));
        }
        let id = random_hex(16);
        let mut info = json!({
            "id": id,
            "auto_stop_mins": 120,
            "min_num_clusters": 1,
            "max_num_clusters": 1,
            "enable_photon": true,
            "enable_serverless_compute": false,
            "warehouse_type": "CLASSIC",
            "spot_instance_policy": "COST_OPTIMIZED",
            "creator_name": ctx.principal_name,
        });
        copy_fields(&mut info, &b, ECHOED);
        info["jdbc_url"] = json!(format!(
            "jdbc:spark://{}:443/default;transportMode=http;ssl=1;AuthMech=3;httpPath=/sql/1.0/warehouses/{id};",
            ctx.deployment_name
        ));
        info["odbc_params"] = json!({
            "hostname": ctx.deployment_name,
            "path": format!("/sql/1.0/warehouses/{id}"),
            "protocol": "https",
            "port": 443,
        });
        d.warehouses.insert(
            id.clone(),
            WarehouseRecord {
                info,
                phase: WarehousePhase {
                    kind: WarehousePhaseKind::Starting,
                    since_ms: now_ms(),
                    delay_ms: start_delay,
                },
                created_ms: now_ms(),
            },
        );
        Ok(Json(json!({"id": id})))
    })
}

fn render(app: &App, r: &WarehouseRecord) -> Value {
    let state = warehouse_state(r.phase, now_ms(), app.settings.warehouse_ms);
    let mut v = r.info.clone();
    v["state"] = json!(state);
    v["num_clusters"] = json!(if state == "RUNNING" {
        r.info["min_num_clusters"].as_i64().unwrap_or(1)
    } else {
        0
    });
    v["num_active_sessions"] = json!(0);
    v
}

pub async fn get(
    ctx: WsCtx,
    State(app): State<App>,
    Path(WarehousePath { id }): Path<WarehousePath>,
) -> ApiResult<Json<Value>> {
    app.read(|s| {
        s.workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.warehouses.get(&id))
            .map(|r| Json(render(&app, r)))
            .ok_or_else(|| missing(&id))
    })
}

/// Oldest first; `page_size` (1 to 1000) pages, the token is the offset. A
/// warehouse that is DELETED is no longer listed.
pub async fn list(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let page_size: Option<usize> = q
        .get("page_size")
        .map(|p| {
            p.parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ApiError::invalid("page_size must be between 1 and 1000"))
        })
        .transpose()?;
    let offset: usize = match q.get("page_token") {
        Some(t) => t
            .parse()
            .map_err(|_| ApiError::invalid(format!("Invalid page_token {t}")))?,
        None => 0,
    };
    Ok(app.read(|s| {
        let mut all: Vec<(i64, Value)> = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| {
                d.warehouses
                    .values()
                    .map(|r| (r.created_ms, render(&app, r)))
                    .filter(|(_, w)| w["state"] != "DELETED")
                    .collect()
            })
            .unwrap_or_default();
        all.sort_by(|a, b| (a.0, a.1["id"].as_str()).cmp(&(b.0, b.1["id"].as_str())));
        let total = all.len();
        let limit = page_size.unwrap_or(total.max(1));
        let page: Vec<Value> = all
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|(_, w)| w)
            .collect();
        let mut out = json!({"warehouses": page});
        if offset + limit < total {
            out["next_page_token"] = json!((offset + limit).to_string());
        }
        Json(out)
    }))
}

fn set_phase(
    app: &App,
    ctx: &WsCtx,
    id: &str,
    next: fn(&'static str) -> Result<Option<WarehousePhaseKind>, String>,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| {
        let start_delay = seconds_override(s.faults.warehouse_start_seconds);
        let r = s
            .ws_data(ctx.workspace_id)
            .warehouses
            .get_mut(id)
            .ok_or_else(|| missing(id))?;
        let now = now_ms();
        let state = warehouse_state(r.phase, now, app.settings.warehouse_ms);
        // None: already there or on the way; idempotent, like the service.
        if let Some(kind) = next(state).map_err(ApiError::invalid_state)? {
            r.phase = WarehousePhase {
                kind,
                since_ms: now,
                delay_ms: (kind == WarehousePhaseKind::Starting)
                    .then_some(start_delay)
                    .flatten(),
            };
        }
        Ok(Json(json!({})))
    })
}

pub async fn start(
    ctx: WsCtx,
    State(app): State<App>,
    Path(WarehousePath { id }): Path<WarehousePath>,
) -> ApiResult<Json<Value>> {
    set_phase(&app, &ctx, &id, |state| match state {
        "STARTING" | "RUNNING" => Ok(None),
        "STOPPING" | "STOPPED" => Ok(Some(WarehousePhaseKind::Starting)),
        other => Err(format!("SQL warehouse is {other} and cannot be started.")),
    })
}

pub async fn stop(
    ctx: WsCtx,
    State(app): State<App>,
    Path(WarehousePath { id }): Path<WarehousePath>,
) -> ApiResult<Json<Value>> {
    set_phase(&app, &ctx, &id, |state| match state {
        "STOPPING" | "STOPPED" => Ok(None),
        "STARTING" | "RUNNING" => Ok(Some(WarehousePhaseKind::Stopping)),
        other => Err(format!("SQL warehouse is {other} and cannot be stopped.")),
    })
}

pub async fn delete(
    ctx: WsCtx,
    State(app): State<App>,
    Path(WarehousePath { id }): Path<WarehousePath>,
) -> ApiResult<Json<Value>> {
    set_phase(&app, &ctx, &id, |state| match state {
        "DELETING" | "DELETED" => Ok(None),
        _ => Ok(Some(WarehousePhaseKind::Deleting)),
    })
}

/// `POST /api/2.0/sql/warehouses/{id}/edit`: replaces the settings given, keeps the
/// others, and validates the result as create does. The warehouse's state does not
/// change (a running warehouse takes the new settings without a restart here).
pub async fn edit(
    ctx: WsCtx,
    State(app): State<App>,
    Path(WarehousePath { id }): Path<WarehousePath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| {
        let now = now_ms();
        let d = s.ws_data(ctx.workspace_id);
        let r = d.warehouses.get(&id).ok_or_else(|| missing(&id))?;
        if matches!(
            warehouse_state(r.phase, now, app.settings.warehouse_ms),
            "DELETING" | "DELETED"
        ) {
            return Err(missing(&id));
        }
        let mut merged = r.info.clone();
        copy_fields(&mut merged, &b, ECHOED);
        settings_problem(&merged)?;
        let name = merged["name"].as_str().unwrap_or_default().to_string();
        if name.chars().count() >= 100 {
            return Err(ApiError::invalid("name must be less than 100 characters"));
        }
        let taken = d.warehouses.iter().any(|(other, w)| {
            *other != id
                && w.info["name"].as_str() == Some(name.as_str())
                && warehouse_state(w.phase, now, app.settings.warehouse_ms) != "DELETED"
        });
        if taken {
            return Err(ApiError::already_exists(format!(
                "SQL warehouse with name {name} already exists."
            )));
        }
        if let Some(r) = d.warehouses.get_mut(&id) {
            r.info = merged;
        }
        Ok(Json(json!({})))
    })
}
