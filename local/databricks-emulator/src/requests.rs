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
    /// Anything but GET/HEAD: the Databricks REST APIs read with GET only.
    pub mutating: bool,
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

    fn record(&self, method: &Method, path: String, status: u16, start: f64, end: f64) {
        let mut log = self.lock();
        let seq = log.next_seq;
        log.next_seq += 1;
        if log.entries.len() == CAPACITY {
            log.entries.pop_front();
        }
        log.entries.push_back(LoggedRequest {
            seq,
            mutating: !(method == Method::GET || method == Method::HEAD),
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
        start,
        epoch_seconds(),
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
        log.record(&Method::GET, "/a".into(), 200, 1.0, 2.0);
        log.record(&Method::POST, "/b".into(), 429, 2.0, 3.0);
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
}
