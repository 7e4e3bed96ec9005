//! Pipelines (`/api/2.0/pipelines`): create, get, list (`statuses`, paged with
//! `max_results`/`page_token`), start an update, stop and delete. A pipeline is
//! IDLE until an update starts; the update is STARTING for one run delay, then
//! RUNNING, and a triggered one completes after another delay (a continuous
//! one runs until stopped); a stop is STOPPING for one delay, then IDLE.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::lifecycle::{pipeline_state, PipelinePhase, PipelinePhaseKind};
use crate::state::{copy_fields, new_uuid, now_ms, App, Body, Fields, PipelineRecord};

/// The `{pipeline_id}` segment of the route (a struct, since the workspace routes
/// are nested under `/ws/{deployment_name}`, which is a path parameter too).
#[derive(serde::Deserialize)]
pub struct PipelinePath {
    pipeline_id: String,
}

/// Spec fields that `get` echoes back under `spec`.
const SPEC_FIELDS: &[&str] = &[
    "name",
    "catalog",
    "schema",
    "target",
    "storage",
    "continuous",
    "development",
    "photon",
    "serverless",
    "edition",
    "channel",
    "libraries",
    "clusters",
    "configuration",
    "notifications",
];

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!("The specified pipeline {id} was not found."))
}

pub async fn create(ctx: WsCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    let name = b.req_str("name")?;
    let continuous = b.opt_bool("continuous")?.unwrap_or(false);
    if b.opt_bool("dry_run")?.unwrap_or(false) {
        return Err(ApiError::invalid(
            "dry_run is not supported by the emulator",
        ));
    }
    app.mutate(|s| {
        let id = new_uuid();
        let mut spec = json!({"id": id, "name": name, "continuous": continuous});
        copy_fields(&mut spec, &b, SPEC_FIELDS);
        let info = json!({
            "pipeline_id": id,
            "name": name,
            "creator_user_name": ctx.principal_name,
            "run_as_user_name": ctx.principal_name,
            "spec": spec,
        });
        s.ws_data(ctx.workspace_id).pipelines.insert(
            id.clone(),
            PipelineRecord {
                info,
                phase: PipelinePhase {
                    kind: PipelinePhaseKind::Idle,
                    since_ms: now_ms(),
                },
                updates: Vec::new(),
            },
        );
        Ok(Json(json!({"pipeline_id": id})))
    })
}

/// `PipelineStateInfo` (list) or, with `full`, `GetPipelineResponse`.
fn render(app: &App, r: &PipelineRecord, full: bool) -> Value {
    let (state, update_state) = pipeline_state(r.phase, now_ms(), app.settings.run_ms);
    let latest: Vec<Value> = r
        .updates
        .iter()
        .enumerate()
        .map(|(i, (update_id, created))| {
            // Only the newest update can still be under way.
            let state = match (i, update_state) {
                (0, Some(s)) => s,
                _ => "COMPLETED",
            };
            json!({
                "update_id": update_id,
                "state": state,
                "creation_time": crate::state::rfc3339(*created),
            })
        })
        .collect();
    let mut v = json!({
        "pipeline_id": r.info["pipeline_id"],
        "name": r.info["name"],
        "state": state,
        "creator_user_name": r.info["creator_user_name"],
        "run_as_user_name": r.info["run_as_user_name"],
        "latest_updates": latest,
    });
    if full {
        v["spec"] = r.info["spec"].clone();
        v["last_modified"] = json!(r.phase.since_ms);
    }
    v
}

pub async fn get(
    ctx: WsCtx,
    State(app): State<App>,
    Path(PipelinePath { pipeline_id: id }): Path<PipelinePath>,
) -> ApiResult<Json<Value>> {
    app.read(|s| {
        s.workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.pipelines.get(&id))
            .map(|r| Json(render(&app, r, true)))
            .ok_or_else(|| missing(&id))
    })
}

/// In id order; `max_results` 1 to 100 (default 25), the token is the offset.
pub async fn list(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let max_results: usize = match q.get("max_results") {
        Some(m) => m
            .parse()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::invalid("max_results must be between 1 and 100"))?,
        None => 25,
    };
    if q.contains_key("filter") {
        return Err(ApiError::invalid("filter is not supported by the emulator"));
    }
    let offset: usize = match q.get("page_token") {
        Some(t) => t
            .parse()
            .map_err(|_| ApiError::invalid(format!("Invalid page_token {t}")))?,
        None => 0,
    };
    Ok(app.read(|s| {
        // BTreeMap order: by id, the service's default `id asc`.
        let all: Vec<Value> = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| {
                d.pipelines
                    .values()
                    .map(|r| render(&app, r, false))
                    .collect()
            })
            .unwrap_or_default();
        let total = all.len();
        let page: Vec<Value> = all.into_iter().skip(offset).take(max_results).collect();
        let mut out = json!({"statuses": page});
        if offset + max_results < total {
            out["next_page_token"] = json!((offset + max_results).to_string());
        }
        Json(out)
    }))
}

pub async fn start_update(
    ctx: WsCtx,
    State(app): State<App>,
    Path(PipelinePath { pipeline_id: id }): Path<PipelinePath>,
    Body(_b): Body,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| {
        let r = s
            .ws_data(ctx.workspace_id)
            .pipelines
            .get_mut(&id)
            .ok_or_else(|| missing(&id))?;
        let now = now_ms();
        let (state, _) = pipeline_state(r.phase, now, app.settings.run_ms);
        if state != "IDLE" {
            return Err(ApiError::invalid_state(format!(
                "Pipeline {id} has an active update (state {state}); stop it first."
            )));
        }
        let continuous = r.info["spec"]["continuous"].as_bool().unwrap_or(false);
        let update_id = new_uuid();
        r.updates.insert(0, (update_id.clone(), now));
        r.phase = PipelinePhase {
            kind: PipelinePhaseKind::Update { continuous },
            since_ms: now,
        };
        Ok(Json(json!({"update_id": update_id})))
    })
}

/// Cancels the active update; without one it is a no-op, as in the service.
pub async fn stop(
    ctx: WsCtx,
    State(app): State<App>,
    Path(PipelinePath { pipeline_id: id }): Path<PipelinePath>,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| {
        let r = s
            .ws_data(ctx.workspace_id)
            .pipelines
            .get_mut(&id)
            .ok_or_else(|| missing(&id))?;
        let now = now_ms();
        let (state, _) = pipeline_state(r.phase, now, app.settings.run_ms);
        if matches!(state, "STARTING" | "RUNNING") {
            r.phase = PipelinePhase {
                kind: PipelinePhaseKind::Stopping,
                since_ms: now,
            };
        }
        Ok(Json(json!({})))
    })
}

pub async fn delete(
    ctx: WsCtx,
    State(app): State<App>,
    Path(PipelinePath { pipeline_id: id }): Path<PipelinePath>,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| {
        s.ws_data(ctx.workspace_id)
            .pipelines
            .remove(&id)
            .map(|_| Json(json!({})))
            .ok_or_else(|| missing(&id))
    })
}
