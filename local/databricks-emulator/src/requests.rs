//! Request log (`/_emulator/requests`): every API request the emulator answered, for
//! benchmarks that count the Databricks calls a function makes (per stage, per run).
//!
//! It records what a client sent and what it got — including the 429/503 answers of
//! fault injection, which are calls made too — but never headers or bodies, so no token
//! can end up in it. `/_emulator/*` itself is not logged.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use crate::state::App;

/// Entries kept; the oldest are dropped beyond it (a benchmark reads far fewer).
const CAPACITY: usize = 200_000;

#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Epoch seconds, so a reader can line them up with other processes' clocks.
    pub start: f64,
    pub end: f64,
    /// Anything but GET/HEAD: the Databricks REST APIs read with GET only; except a
    /// submitted SQL statement, which is mutating only when the statement is (a
    /// SELECT, DESCRIBE or SHOW is not).
    pub mutating: bool,
    /// For a statement submission (`POST /api/2.0/sql/statements`): the statement's
    /// kind (`SELECT`, `INSERT`, `DEEP CLONE`, ..., `INVALID` when it does not parse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement_kind: Option<String>,
}

/// What a handler tells the log about the request it answered, as a response
/// extension (the statements handler sets it; the log never reads bodies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLogInfo {
    pub kind: String,
    pub mutating: bool,
}

/// Whether a request is mutating: its method decides, unless the handler said what
/// the statement it ran was.
pub fn is_mutating(method: &Method, statement: Option<&StatementLogInfo>) -> bool {
    match statement {
        Some(info) => info.mutating,
        None => !(method == Method::GET || method == Method::HEAD),
    }
}

#[derive(Debug, Default)]
struct Log {
    next_seq: u64,
    entries: VecDeque<LoggedRequest>,
}

#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Log>>);

fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl RequestLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(
        &self,
        method: &Method,
        path: String,
        status: u16,
        (start, end): (f64, f64),
        statement: Option<&StatementLogInfo>,
    ) {
        let mut log = self.lock();
        let seq = log.next_seq;
        log.next_seq += 1;
        if log.entries.len() == CAPACITY {
            log.entries.pop_front();
        }
        log.entries.push_back(LoggedRequest {
            seq,
            mutating: is_mutating(method, statement),
            statement_kind: statement.map(|s| s.kind.clone()),
            method: method.to_string(),
            path,
            status,
            start,
            end,
        });
    }

    /// Entries with `seq >= since`, and the seq the next entry will get.
    pub fn since(&self, since: u64) -> (u64, Vec<LoggedRequest>) {
        let log = self.lock();
        let entries = log
            .entries
            .iter()
            .filter(|e| e.seq >= since)
            .cloned()
            .collect();
        (log.next_seq, entries)
    }

    pub fn clear(&self) {
        self.lock().entries.clear();
    }
}

/// Outermost layer: logs every request but `/_emulator/*`, faulted ones included.
pub async fn middleware(State(app): State<App>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/_emulator/") {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let start = epoch_seconds();
    let response = next.run(req).await;
    app.requests.record(
        &method,
        path,
        response.status().as_u16(),
        (start, epoch_seconds()),
        response.extensions().get::<StatementLogInfo>(),
    );
    response
}

/// `GET /_emulator/requests?since=N`
pub async fn list(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let since = q.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    let (next, requests) = app.requests.since(since);
    Json(json!({ "next": next, "requests": requests }))
}

/// `DELETE /_emulator/requests`
pub async fn clear(State(app): State<App>) -> Json<Value> {
    app.requests.clear();
    Json(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_reads_from_a_sequence_number() {
        let log = RequestLog::default();
        log.record(&Method::GET, "/a".into(), 200, (1.0, 2.0), None);
        log.record(&Method::POST, "/b".into(), 429, (2.0, 3.0), None);
        let (next, all) = log.since(0);
        assert_eq!(next, 2);
        assert_eq!(all.len(), 2);
        assert!(!all[0].mutating && all[1].mutating);
        let (_, later) = log.since(1);
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].path, "/b");
        log.clear();
        let (next, none) = log.since(0);
        assert_eq!((next, none.len()), (2, 0));
    }

    #[test]
    fn a_statement_is_as_mutating_as_its_sql() {
        let select = StatementLogInfo {
            kind: "SELECT".into(),
            mutating: false,
        };
        let insert = StatementLogInfo {
            kind: "INSERT".into(),
            mutating: true,
        };
        assert!(!is_mutating(&Method::POST, Some(&select)));
        assert!(is_mutating(&Method::POST, Some(&insert)));
        assert!(is_mutating(&Method::POST, None));
        assert!(!is_mutating(&Method::GET, None));
        let log = RequestLog::default();
        log.record(&Method::POST, "/s".into(), 200, (0.0, 1.0), Some(&select));
        let (_, all) = log.since(0);
        assert!(!all[0].mutating);
        assert_eq!(all[0].statement_kind.as_deref(), Some("SELECT"));
    }
}
