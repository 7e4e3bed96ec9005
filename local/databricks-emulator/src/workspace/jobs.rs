//! Jobs (served under both /api/2.1 and /api/2.2, which share request shapes) and runs.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::lifecycle::{run_state, RunPhase};
use crate::state::{
    now_ms, query_bool, random_numeric_id, App, Body, Fields, RunRecord, State as EmuState,
};

use super::job_settings::{merge_update, settings_problem, with_defaults};

fn job_missing(id: i64) -> ApiError {
    ApiError::invalid(format!("Job {id} does not exist."))
}

pub async fn create(ctx: WsCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    if let Some(p) = settings_problem(&b) {
        return Err(ApiError::invalid(p));
    }
    app.mutate(|s| {
        let id = random_numeric_id(15);
        let job = json!({
            "job_id": id,
            "creator_user_name": ctx.principal_name,
            "run_as_user_name": ctx.principal_name,
            "created_time": now_ms(),
            "settings": with_defaults(b.clone()),
        });
        s.ws_data(ctx.workspace_id).jobs.insert(id, job);
        Ok(Json(json!({"job_id": id})))
    })
}

fn stored_job(s: &mut EmuState, workspace_id: i64, id: i64) -> ApiResult<&mut Value> {
    s.ws_data(workspace_id)
        .jobs
        .get_mut(&id)
        .ok_or_else(|| job_missing(id))
}

/// `jobs/update`: a partial merge of `new_settings` (see `job_settings::merge_update`)
/// and removal of `fields_to_remove`; the result is validated as a whole.
pub async fn update(ctx: WsCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    let id = job_id(&b, None)?;
    let new_settings = b
        .get("new_settings")
        .filter(|v| !v.is_null())
        .cloned()
        .unwrap_or_else(|| json!({}));
    if !new_settings.is_object() {
        return Err(ApiError::invalid("Field new_settings must be an object"));
    }
    let fields_to_remove = b.str_list("fields_to_remove")?;
    app.mutate(|s| {
        let job = stored_job(s, ctx.workspace_id, id)?;
        let merged = merge_update(&job["settings"], &new_settings, &fields_to_remove)
            .map_err(ApiError::invalid)?;
        if let Some(p) = settings_problem(&merged) {
            return Err(ApiError::invalid(p));
        }
        job["settings"] = with_defaults(merged);
        Ok(Json(json!({})))
    })
}

/// `jobs/reset`: `new_settings` replaces every setting of the job.
pub async fn reset(ctx: WsCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    let id = job_id(&b, None)?;
    let new_settings = match b.get("new_settings") {
        Some(v) if v.is_object() => v.clone(),
        None | Some(Value::Null) => return Err(ApiError::missing_field("new_settings")),
        Some(_) => return Err(ApiError::invalid("Field new_settings must be an object")),
    };
    if let Some(p) = settings_problem(&new_settings) {
        return Err(ApiError::invalid(p));
    }
    app.mutate(|s| {
        let job = stored_job(s, ctx.workspace_id, id)?;
        job["settings"] = with_defaults(new_settings);
        Ok(Json(json!({})))
    })
}

fn job_id(b: &Value, q: Option<&HashMap<String, String>>) -> ApiResult<i64> {
    match q.and_then(|q| q.get("job_id")) {
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::invalid("job_id must be an integer")),
        None => b
            .opt_i64("job_id")?
            .ok_or_else(|| ApiError::missing_field("job_id")),
    }
}

pub async fn get(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let id = job_id(&json!({}), Some(&q))?;
    app.read(|s| {
        s.workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.jobs.get(&id))
            .map(|j| Json(j.clone()))
            .ok_or_else(|| job_missing(id))
    })
}

/// `limit` (1-100, default 20) and `offset`/`page_token` paging, newest first like the
/// real list.
pub async fn list(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 100"));
    }
    let offset: usize = q
        .get("page_token")
        .or_else(|| q.get("offset"))
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let expand = query_bool(&q, "expand_tasks");
    let name = q.get("name");
    Ok(app.read(|s| {
        let mut all: Vec<Value> = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| d.jobs.values().cloned().collect())
            .unwrap_or_default();
        // The SDK documents the name filter as exact but case insensitive.
        all.retain(|j| {
            name.is_none_or(|n| {
                j["settings"]["name"]
                    .as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(n))
            })
        });
        all.sort_by_key(|j| std::cmp::Reverse(j["created_time"].as_i64()));
        let total = all.len();
        let page: Vec<Value> = all
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|mut j| {
                if !expand {
                    if let Some(o) = j["settings"].as_object_mut() {
                        o.remove("tasks");
                        o.remove("job_clusters");
                    }
                }
                j
            })
            .collect();
        let has_more = offset + page.len() < total;
        let mut out = json!({"jobs": page, "has_more": has_more});
        if has_more {
            out["next_page_token"] = json!((offset + limit).to_string());
        }
        if offset > 0 {
            out["prev_page_token"] = json!(offset.saturating_sub(limit).to_string());
        }
        Json(out)
    }))
}

pub async fn delete(ctx: WsCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    let id = job_id(&b, None)?;
    app.mutate(|s| {
        let d = s.ws_data(ctx.workspace_id);
        d.jobs.remove(&id).ok_or_else(|| job_missing(id))?;
        d.runs.retain(|_, r| r.info["job_id"].as_i64() != Some(id));
        Ok(Json(json!({})))
    })
}

pub async fn run_now(ctx: WsCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    let id = job_id(&b, None)?;
    app.mutate(|s| {
        let d = s.ws_data(ctx.workspace_id);
        let job = d.jobs.get(&id).cloned().ok_or_else(|| job_missing(id))?;
        let run_id = random_numeric_id(15);
        let number = d
            .runs
            .values()
            .filter(|r| r.info["job_id"].as_i64() == Some(id))
            .count() as i64
            + 1;
        let info = json!({
            "job_id": id,
            "run_id": run_id,
            "number_in_job": run_id,
            "creator_user_name": ctx.principal_name,
            "run_name": job["settings"]["name"],
            "run_type": "JOB_RUN",
            "trigger": "ONE_TIME",
            "attempt_number": 0,
            "run_page_url": format!("/ws/{}/#job/{id}/run/{run_id}", ctx.deployment_name),
            "sequence": number,
        });
        d.runs.insert(
            run_id,
            RunRecord {
                info,
                phase: RunPhase {
                    started_ms: now_ms(),
                    cancelled_ms: None,
                },
            },
        );
        Ok(Json(json!({"run_id": run_id, "number_in_job": run_id})))
    })
}

fn render_run(app: &App, r: &RunRecord) -> Value {
    let st = run_state(r.phase, now_ms(), app.settings.run_ms);
    let mut v = r.info.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("sequence");
    }
    v["start_time"] = json!(r.phase.started_ms);
    let mut state = json!({"life_cycle_state": st.life_cycle_state, "state_message": "", "user_cancelled_or_timedout": r.phase.cancelled_ms.is_some()});
    if let Some(res) = st.result_state {
        state["result_state"] = json!(res);
    }
    v["state"] = state;
    if let Some(end) = st.end_ms {
        v["end_time"] = json!(end);
        v["run_duration"] = json!(end - r.phase.started_ms);
    }
    v
}

fn run_id(b: &Value, q: Option<&HashMap<String, String>>) -> ApiResult<i64> {
    match q.and_then(|q| q.get("run_id")) {
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::invalid("run_id must be an integer")),
        None => b
            .opt_i64("run_id")?
            .ok_or_else(|| ApiError::missing_field("run_id")),
    }
}

pub async fn list_runs(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let active_only = query_bool(&q, "active_only");
    let completed_only = query_bool(&q, "completed_only");
    if active_only && completed_only {
        return Err(ApiError::invalid(
            "active_only and completed_only cannot both be true",
        ));
    }
    let job: Option<i64> = q
        .get("job_id")
        .map(|j| {
            j.parse()
                .map_err(|_| ApiError::invalid("job_id must be an integer"))
        })
        .transpose()?;
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(25);
    let offset: usize = q
        .get("page_token")
        .or_else(|| q.get("offset"))
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    Ok(app.read(|s| {
        let now = now_ms();
        let mut runs: Vec<(&RunRecord, bool)> = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| {
                d.runs
                    .values()
                    .map(|r| (r, run_state(r.phase, now, app.settings.run_ms).is_active()))
                    .collect()
            })
            .unwrap_or_default();
        runs.retain(|(r, active)| {
            job.is_none_or(|j| r.info["job_id"].as_i64() == Some(j))
                && (!active_only || *active)
                && (!completed_only || !*active)
        });
        runs.sort_by_key(|(r, _)| {
            std::cmp::Reverse((r.phase.started_ms, r.info["sequence"].as_i64()))
        });
        let total = runs.len();
        let page: Vec<Value> = runs
            .iter()
            .skip(offset)
            .take(limit)
            .map(|(r, _)| render_run(&app, r))
            .collect();
        let has_more = offset + page.len() < total;
        let mut out = json!({"runs": page, "has_more": has_more});
        if has_more {
            out["next_page_token"] = json!((offset + limit).to_string());
        }
        Json(out)
    }))
}

pub async fn get_run(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let id = run_id(&json!({}), Some(&q))?;
    app.read(|s| {
        s.workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.runs.get(&id))
            .map(|r| Json(render_run(&app, r)))
            .ok_or_else(|| ApiError::invalid(format!("Run {id} does not exist.")))
    })
}

pub async fn cancel_run(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let id = run_id(&b, None)?;
    app.mutate(|s| {
        let r = s
            .ws_data(ctx.workspace_id)
            .runs
            .get_mut(&id)
            .ok_or_else(|| ApiError::invalid(format!("Run {id} does not exist.")))?;
        if r.phase.cancelled_ms.is_none() {
            r.phase.cancelled_ms = Some(now_ms());
        }
        Ok(Json(json!({})))
    })
}

/// `runs/cancel-all`: with `job_id`, every active run of that job is cancelled, as
/// `runs/cancel` cancels one. `all_queued_runs` alone cancels the workspace's queued
/// runs; the emulator never queues a run (it starts each at once), so there are
/// none to cancel.
pub async fn cancel_all_runs(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let job = b.opt_i64("job_id")?;
    let all_queued = b.opt_bool("all_queued_runs")?.unwrap_or(false);
    if job.is_none() && !all_queued {
        return Err(ApiError::invalid(
            "Either job_id or all_queued_runs must be provided",
        ));
    }
    app.mutate(|s| {
        let d = s.ws_data(ctx.workspace_id);
        let Some(id) = job else {
            return Ok(Json(json!({})));
        };
        if !d.jobs.contains_key(&id) {
            return Err(job_missing(id));
        }
        let now = now_ms();
        for r in d.runs.values_mut() {
            let active = run_state(r.phase, now, app.settings.run_ms).is_active();
            if r.info["job_id"].as_i64() == Some(id) && active && r.phase.cancelled_ms.is_none() {
                r.phase.cancelled_ms = Some(now);
            }
        }
        Ok(Json(json!({})))
    })
}
