//! The Statement Execution API (`/api/2.0/sql/statements`): submit, get, cancel and
//! fetch result chunks, executing SQL with the engine in `crate::sql`.
//!
//! A statement is PENDING while its warehouse starts (submitting to a STOPPED
//! warehouse starts it, as Databricks does), RUNNING for the statement run time, and
//! then SUCCEEDED or FAILED; a cancel before the end makes it CANCELED. Nothing runs in
//! the background, so a statement's effects are applied when it is *settled*: before
//! the emulator answers any request (`settle_middleware`), every statement whose run
//! has ended is executed, in submission order, against the state as it is then. So a
//! statement's effects are visible to every request made after its run ended, and
//! never before; `status` is computed from timestamps as everywhere else.

use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::faults::{seconds_override, statement_fault, StatementFault};
use crate::lifecycle::{
    statement_progress, warehouse_settled_at, warehouse_state, StatementPhase, StatementProgress,
    WarehousePhase, WarehousePhaseKind,
};
use crate::requests::StatementLogInfo;
use crate::sql::error::SqlError;
use crate::sql::params::Param;
use crate::sql::{self, Session};
use crate::state::{new_uuid, now_ms, App, Body, Fields, State as EmuState};

/// Rows per result chunk; small, so that paging through `next_chunk_index` is
/// exercised by tests with a few hundred rows.
pub const CHUNK_ROWS: usize = 100;

/// How a statement ended, fixed when it is settled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded {
        /// (name, type_text)
        columns: Vec<(String, String)>,
        rows: Vec<Vec<Option<String>>>,
        truncated: bool,
    },
    Failed {
        error_class: String,
        sql_state: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementRecord {
    pub statement_id: String,
    /// Submission order across the emulator; due statements settle in this order.
    pub seq: u64,
    /// The statement with its parameters bound.
    pub statement: String,
    pub warehouse_id: String,
    pub metastore_id: Option<String>,
    pub catalog: String,
    pub schema: String,
    pub user: String,
    pub phase: StatementPhase,
    pub kind: String,
    pub mutating: bool,
    pub row_limit: Option<usize>,
    /// A failure decided at submission: a syntax error, or an injected fault.
    pub failure: Option<StatementFault>,
    pub outcome: Option<Outcome>,
}

#[derive(Deserialize)]
pub struct StatementPath {
    statement_id: String,
}

#[derive(Deserialize)]
pub struct ChunkPath {
    statement_id: String,
    chunk_index: usize,
}

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!("Statement {id} does not exist."))
}

/// `wait_timeout`: `0s`, or 5 to 50 seconds (`10s` when absent).
pub fn wait_seconds(v: Option<&str>) -> ApiResult<u64> {
    let Some(w) = v else { return Ok(10) };
    match w.strip_suffix('s').and_then(|n| n.parse::<u64>().ok()) {
        Some(n) if n == 0 || (5..=50).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid(format!(
            "wait_timeout must be 0s or between 5s and 50s, got {w}"
        ))),
    }
}

/// The request fields the emulator does not serve as Databricks would are refused,
/// never ignored.
fn check_result_options(b: &Value) -> ApiResult<()> {
    match b.opt_str("disposition").as_deref() {
        None | Some("INLINE") => {}
        Some("EXTERNAL_LINKS") => {
            return Err(ApiError::invalid(
                "disposition EXTERNAL_LINKS is not supported by databricks-emulator; use INLINE",
            ))
        }
        Some(other) => return Err(ApiError::invalid(format!("Invalid disposition {other}"))),
    }
    match b.opt_str("format").as_deref() {
        None | Some("JSON_ARRAY") => {}
        Some(f @ ("ARROW_STREAM" | "CSV")) => {
            return Err(ApiError::invalid(format!(
                "The INLINE disposition only supports the JSON_ARRAY format, not {f}"
            )))
        }
        Some(other) => return Err(ApiError::invalid(format!("Invalid format {other}"))),
    }
    match b.opt_str("on_wait_timeout").as_deref() {
        None | Some("CONTINUE") | Some("CANCEL") => Ok(()),
        Some(other) => Err(ApiError::invalid(format!(
            "on_wait_timeout must be CONTINUE or CANCEL, got {other}"
        ))),
    }
}

fn parameters(b: &Value) -> ApiResult<Vec<Param>> {
    let Some(list) = b.get("parameters").filter(|p| !p.is_null()) else {
        return Ok(vec![]);
    };
    let items = list
        .as_array()
        .ok_or_else(|| ApiError::invalid("parameters must be a list"))?;
    items
        .iter()
        .map(|p| {
            Ok(Param {
                name: p.req_str("name")?,
                value: p.opt_str("value"),
                type_name: p.opt_str("type"),
            })
        })
        .collect()
}

/// The statement bound and classified: (text, kind, mutating, syntax failure).
fn classify(statement: &str, params: &[Param]) -> (String, String, bool, Option<StatementFault>) {
    let as_failure = |e: SqlError| StatementFault {
        error_class: e.error_class.clone(),
        sql_state: e.sql_state.clone(),
        message: e.message(),
    };
    let bound = match sql::params::bind(statement, params) {
        Ok(b) => b,
        Err(e) => {
            return (
                statement.to_string(),
                "INVALID".into(),
                false,
                Some(as_failure(e)),
            )
        }
    };
    match sql::parse::parse(&bound) {
        Ok(stmt) => (
            bound,
            stmt.kind().to_string(),
            sql::is_mutating(&stmt),
            None,
        ),
        Err(e) => (bound, "INVALID".into(), false, Some(as_failure(e))),
    }
}

/// When the warehouse runs for a statement submitted now; starts it when it is
/// stopped. Unknown or deleted warehouses are refused.
fn warehouse_running_at(
    app: &App,
    s: &mut EmuState,
    ws: i64,
    id: &str,
    now: i64,
) -> ApiResult<i64> {
    let start_delay = seconds_override(s.faults.warehouse_start_seconds);
    let default = app.settings.warehouse_ms;
    let gone = || ApiError::not_found(format!("SQL warehouse {id} does not exist."));
    let w = s.ws_data(ws).warehouses.get_mut(id).ok_or_else(gone)?;
    match warehouse_state(w.phase, now, default) {
        "RUNNING" => Ok(now),
        "STARTING" => Ok(warehouse_settled_at(w.phase, default)),
        "STOPPED" | "STOPPING" => {
            w.phase = WarehousePhase {
                kind: WarehousePhaseKind::Starting,
                since_ms: now,
                delay_ms: start_delay,
            };
            Ok(warehouse_settled_at(w.phase, default))
        }
        _ => Err(gone()),
    }
}

/// `POST /api/2.0/sql/statements`. The response carries the statement's kind for the
/// request log, also when the submission is refused.
pub async fn execute(ctx: WsCtx, State(app): State<App>, Body(b): Body) -> Response {
    let params = parameters(&b);
    let statement = b.req_str("statement");
    let classified = match (&statement, &params) {
        (Ok(text), Ok(p)) => Some(classify(text, p)),
        _ => None,
    };
    let info = classified
        .as_ref()
        .map(|(_, kind, mutating, _)| StatementLogInfo {
            kind: kind.clone(),
            mutating: *mutating,
        });
    let result = match (statement, params, classified) {
        (Err(e), _, _) | (_, Err(e), _) => Err(e),
        (Ok(_), Ok(_), Some(c)) => submit(&ctx, &app, &b, c).await,
        _ => Err(ApiError::missing_field("statement")),
    };
    let mut response = result.into_response();
    if let Some(info) = info {
        response.extensions_mut().insert(info);
    }
    response
}

async fn submit(
    ctx: &WsCtx,
    app: &App,
    b: &Value,
    (statement, kind, mutating, syntax): (String, String, bool, Option<StatementFault>),
) -> ApiResult<Json<Value>> {
    let warehouse = b.req_str("warehouse_id")?;
    let wait = wait_seconds(b.opt_str("wait_timeout").as_deref())?;
    check_result_options(b)?;
    let row_limit = b
        .opt_i64("row_limit")?
        .map(|n| usize::try_from(n).map_err(|_| ApiError::invalid("row_limit must be positive")))
        .transpose()?;
    let cancel_on_timeout = b.opt_str("on_wait_timeout").as_deref() == Some("CANCEL");
    let id = app.mutate(|s| {
        let now = now_ms();
        let running_ms = warehouse_running_at(app, s, ctx.workspace_id, &warehouse, now)?;
        let assignment = s.metastore_assignments.get(&ctx.workspace_id);
        let metastore_id = assignment
            .and_then(|a| a["metastore_id"].as_str())
            .map(str::to_string);
        let default_catalog = assignment
            .and_then(|a| a["default_catalog_name"].as_str())
            .unwrap_or("hive_metastore")
            .to_string();
        let run_ms =
            seconds_override(s.faults.statement_seconds).unwrap_or(app.settings.statement_ms);
        let failure =
            syntax.or_else(|| statement_fault(&mut s.faults, &mut s.fault_counters, &statement));
        let seq = s
            .workspace_data
            .values()
            .flat_map(|d| d.sql_statements.values())
            .map(|r| r.seq + 1)
            .max()
            .unwrap_or(0);
        // Statement ids look like Databricks' (a UUID whose first group starts 01ef).
        let id = format!("01ef{}", &new_uuid()[4..]);
        let record = StatementRecord {
            statement_id: id.clone(),
            seq,
            statement,
            warehouse_id: warehouse.clone(),
            metastore_id,
            catalog: b.opt_str("catalog").unwrap_or(default_catalog),
            schema: b.opt_str("schema").unwrap_or_else(|| "default".to_string()),
            user: ctx.principal_name.clone(),
            phase: StatementPhase {
                submitted_ms: now,
                running_ms,
                run_ms,
                canceled_ms: None,
            },
            kind,
            mutating,
            row_limit,
            failure,
            outcome: None,
        };
        s.ws_data(ctx.workspace_id)
            .sql_statements
            .insert(id.clone(), record);
        Ok(id)
    })?;
    let deadline = now_ms() + (wait * 1000) as i64;
    loop {
        settle_if_due(app);
        let (view, terminal) = with_record(app, ctx.workspace_id, &id, |r, now| {
            Ok((render(r, now), is_terminal(r, now)))
        })?;
        if terminal {
            return Ok(Json(view));
        }
        if now_ms() >= deadline {
            if wait > 0 && cancel_on_timeout {
                return cancel_now(app, ctx.workspace_id, &id).map(Json);
            }
            return Ok(Json(view));
        }
        // The lock is not held while waiting.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_terminal(r: &StatementRecord, now: i64) -> bool {
    r.outcome.is_some()
        || matches!(
            statement_progress(r.phase, now),
            StatementProgress::Canceled { .. }
        )
}

fn cancel_now(app: &App, ws: i64, id: &str) -> ApiResult<Value> {
    app.mutate(|s| {
        let now = now_ms();
        settle_due(s, now);
        let r = s
            .ws_data(ws)
            .sql_statements
            .get_mut(id)
            .ok_or_else(|| missing(id))?;
        if r.outcome.is_none() && r.phase.canceled_ms.is_none() {
            r.phase.canceled_ms = Some(now);
        }
        Ok(render(r, now))
    })
}

/// Executes every statement whose run has ended by `now` and that has no outcome
/// yet, in submission order.
pub fn settle_due(s: &mut EmuState, now: i64) {
    let mut due: Vec<(u64, i64, String, i64)> = s
        .workspace_data
        .iter()
        .flat_map(|(ws, d)| {
            d.sql_statements.values().filter_map(move |r| {
                match (&r.outcome, statement_progress(r.phase, now)) {
                    (None, StatementProgress::Finished { finished_ms }) => {
                        Some((r.seq, *ws, r.statement_id.clone(), finished_ms))
                    }
                    _ => None,
                }
            })
        })
        .collect();
    due.sort();
    for (_, ws, id, finished_ms) in due {
        let Some(r) = s
            .workspace_data
            .get(&ws)
            .and_then(|d| d.sql_statements.get(&id))
        else {
            continue;
        };
        let outcome = run_statement(s, &r.clone(), finished_ms);
        if let Some(r) = s.ws_data(ws).sql_statements.get_mut(&id) {
            r.outcome = Some(outcome);
        }
    }
}

fn run_statement(s: &mut EmuState, r: &StatementRecord, finished_ms: i64) -> Outcome {
    let failed = |e: &SqlError| Outcome::Failed {
        error_class: e.error_class.clone(),
        sql_state: e.sql_state.clone(),
        message: e.message(),
    };
    if let Some(f) = &r.failure {
        return Outcome::Failed {
            error_class: f.error_class.clone(),
            sql_state: f.sql_state.clone(),
            message: f.message.clone(),
        };
    }
    let Some(metastore_id) = r.metastore_id.clone() else {
        return failed(&SqlError::new(
            "UC_NOT_ENABLED",
            "56038",
            "Unity Catalog is not enabled: no metastore is assigned to this workspace.",
        ));
    };
    let session = Session {
        metastore_id,
        user: r.user.clone(),
        catalog: r.catalog.clone(),
        schema: r.schema.clone(),
        now_ms: finished_ms,
    };
    let result = sql::parse::parse(&r.statement).and_then(|stmt| sql::execute(s, &session, &stmt));
    match result {
        Ok(rs) => {
            let mut rows: Vec<Vec<Option<String>>> = rs
                .rows
                .iter()
                .map(|row| row.iter().map(sql::value::render).collect())
                .collect();
            let truncated = r.row_limit.is_some_and(|n| rows.len() > n);
            if let Some(n) = r.row_limit {
                rows.truncate(n);
            }
            Outcome::Succeeded {
                columns: rs
                    .columns
                    .into_iter()
                    .map(|c| (c.name, c.type_text))
                    .collect(),
                rows,
                truncated,
            }
        }
        Err(e) => failed(&e),
    }
}

/// Applies due statements before any request is answered (see the module doc).
pub async fn settle_middleware(State(app): State<App>, req: Request, next: Next) -> Response {
    settle_if_due(&app);
    next.run(req).await
}

/// Settles due statements, taking the write path (which persists `--state`) only
/// when one is due.
pub fn settle_if_due(app: &App) {
    let now = now_ms();
    let due = app.read(|s| {
        s.workspace_data
            .values()
            .flat_map(|d| d.sql_statements.values())
            .any(|r| {
                r.outcome.is_none()
                    && matches!(
                        statement_progress(r.phase, now),
                        StatementProgress::Finished { .. }
                    )
            })
    });
    if due {
        let _ = app.mutate(|s| {
            settle_due(s, now);
            Ok(())
        });
    }
}

fn chunk(id: &str, rows: &[Vec<Option<String>>], index: usize) -> Value {
    let start = index * CHUNK_ROWS;
    let part = &rows[start.min(rows.len())..(start + CHUNK_ROWS).min(rows.len())];
    let data = json!(part);
    let mut v = json!({
        "chunk_index": index,
        "row_offset": start,
        "row_count": part.len(),
        "byte_count": data.to_string().len(),
        "data_array": data,
    });
    if start + CHUNK_ROWS < rows.len() {
        v["next_chunk_index"] = json!(index + 1);
        v["next_chunk_internal_link"] = json!(format!(
            "/api/2.0/sql/statements/{id}/result/chunks/{}",
            index + 1
        ));
    }
    v
}

fn chunk_count(rows: usize) -> usize {
    rows.div_ceil(CHUNK_ROWS)
}

fn manifest(
    id: &str,
    columns: &[(String, String)],
    rows: &[Vec<Option<String>>],
    truncated: bool,
) -> Value {
    let cols: Vec<Value> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, type_text))| {
            let mut c = json!({
                "name": name,
                "type_text": type_text.to_uppercase(),
                "type_name": sql::value::type_name(type_text),
                "position": i,
            });
            // decimal(p,s) also reports its precision and scale.
            if let Some((p, s)) = type_text
                .strip_prefix("decimal(")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|r| r.split_once(','))
            {
                c["type_precision"] = json!(p.trim().parse::<i64>().unwrap_or(10));
                c["type_scale"] = json!(s.trim().parse::<i64>().unwrap_or(0));
            }
            c
        })
        .collect();
    let chunks: Vec<Value> = (0..chunk_count(rows.len()))
        .map(|i| {
            let c = chunk(id, rows, i);
            json!({"chunk_index": i, "row_offset": c["row_offset"], "row_count": c["row_count"], "byte_count": c["byte_count"]})
        })
        .collect();
    let bytes: u64 = chunks.iter().filter_map(|c| c["byte_count"].as_u64()).sum();
    json!({
        "format": "JSON_ARRAY",
        "schema": {"column_count": cols.len(), "columns": cols},
        "total_chunk_count": chunks.len(),
        "chunks": chunks,
        "total_row_count": rows.len(),
        "total_byte_count": bytes,
        "truncated": truncated,
    })
}

/// The API's `StatementResponse`.
fn render(r: &StatementRecord, now: i64) -> Value {
    let id = &r.statement_id;
    match (&r.outcome, statement_progress(r.phase, now)) {
        (_, StatementProgress::Canceled { .. }) => {
            json!({"statement_id": id, "status": {"state": "CANCELED"}})
        }
        (
            Some(Outcome::Succeeded {
                columns,
                rows,
                truncated,
            }),
            _,
        ) => {
            let mut v = json!({
                "statement_id": id,
                "status": {"state": "SUCCEEDED"},
                "manifest": manifest(id, columns, rows, *truncated),
            });
            if !rows.is_empty() {
                v["result"] = chunk(id, rows, 0);
            }
            v
        }
        (
            Some(Outcome::Failed {
                error_class: _,
                sql_state,
                message,
            }),
            _,
        ) => json!({
            "statement_id": id,
            "status": {
                "state": "FAILED",
                "error": {"error_code": error_code(sql_state), "message": message},
                "sql_state": sql_state,
            },
        }),
        (None, StatementProgress::Pending) => {
            json!({"statement_id": id, "status": {"state": "PENDING"}})
        }
        // Finished but not settled cannot be seen (requests settle first); it reads
        // as RUNNING until its effects are applied.
        (None, _) => json!({"statement_id": id, "status": {"state": "RUNNING"}}),
    }
}

/// The `ServiceErrorCode` of a failure: analysis errors are BAD_REQUEST, internal
/// ones (SQLSTATE class XX) INTERNAL_ERROR.
fn error_code(sql_state: &str) -> &'static str {
    SqlError::new("", sql_state, "").service_error_code()
}

fn with_record<T>(
    app: &App,
    ws: i64,
    id: &str,
    f: impl FnOnce(&StatementRecord, i64) -> ApiResult<T>,
) -> ApiResult<T> {
    settle_if_due(app);
    app.read(|s| {
        let r = s
            .workspace_data
            .get(&ws)
            .and_then(|d| d.sql_statements.get(id))
            .ok_or_else(|| missing(id))?;
        f(r, now_ms())
    })
}

pub async fn get(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<StatementPath>,
) -> ApiResult<Json<Value>> {
    with_record(&app, ctx.workspace_id, &p.statement_id, |r, now| {
        Ok(Json(render(r, now)))
    })
}

pub async fn cancel(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<StatementPath>,
) -> ApiResult<Json<Value>> {
    cancel_now(&app, ctx.workspace_id, &p.statement_id)?;
    Ok(Json(json!({})))
}

/// `GET .../result/chunks/{n}`: the API's `ResultData` of a SUCCEEDED statement.
pub async fn result_chunk(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<ChunkPath>,
) -> ApiResult<Json<Value>> {
    with_record(&app, ctx.workspace_id, &p.statement_id, |r, _| {
        match &r.outcome {
            Some(Outcome::Succeeded { rows, .. })
                if p.chunk_index < chunk_count(rows.len()).max(1) =>
            {
                Ok(Json(chunk(&r.statement_id, rows, p.chunk_index)))
            }
            Some(Outcome::Succeeded { rows, .. }) => Err(ApiError::invalid(format!(
                "chunk_index {} is out of range: the result has {} chunks",
                p.chunk_index,
                chunk_count(rows.len())
            ))),
            _ => Err(ApiError::invalid_state(format!(
                "Statement {} has no result: it did not succeed",
                r.statement_id
            ))),
        }
    })
}

#[cfg(test)]
#[path = "statements_tests.rs"]
mod tests;
