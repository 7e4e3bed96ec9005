//! Fault injection for tests (`/_emulator/faults`).
//!
//! Faults apply to REST API requests (paths containing `/api/`), never to OAuth or
//! discovery endpoints, nor to `/_emulator`. The decision is a pure function of the
//! configuration, counters and two random rolls, so it is unit-tested without a server.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::errors::ApiError;
use crate::state::App;

/// The body of `POST /_emulator/faults`. Every field is optional; missing fields take
/// the default (no fault). A POST replaces the whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Probability in [0, 1] that an API request is answered 429 REQUEST_LIMIT_EXCEEDED.
    pub throttle_rate: f64,
    /// The next N API requests are answered 429 (deterministic; counted down).
    pub throttle_next: u64,
    /// Probability in [0, 1] that an API request is answered 503 TEMPORARILY_UNAVAILABLE.
    pub unavailable_rate: f64,
    /// The next N API requests are answered 503 (deterministic; counted down).
    pub unavailable_next: u64,
    /// `Retry-After` seconds sent with 429 and 503 answers (default 1).
    pub retry_after_seconds: Option<u64>,
    /// Only requests whose path contains this string are affected by 429/503/latency.
    pub path_contains: Option<String>,
    /// The next N credential configuration creations fail with MALFORMED_REQUEST
    /// "Failed credential validation checks" (the IAM propagation delay).
    pub credential_validation_failures: u64,
    /// Body of those failures: "json" (default), "text" (text/plain
    /// `MALFORMED_REQUEST: ...`), or "alternate" (text for every second failure).
    pub credential_failure_format: Option<String>,
    /// Added latency for every affected API request, in milliseconds.
    pub latency_ms: u64,
    /// Fields removed from the JSON answers of affected requests that succeed,
    /// as dotted paths (`token_value`, `token_info.token_id`): a service that
    /// answers without a field its clients need. Not counted down.
    pub omit_response_fields: Vec<String>,
    /// The next N SQL statements submitted fail (deterministic; counted down).
    pub statement_failures_next: u64,
    /// Every SQL statement whose text contains this (case-insensitive) fails, e.g.
    /// `DEEP CLONE`. Not counted down.
    pub statement_fail_contains: Option<String>,
    /// The error of injected statement failures: error class (default
    /// `INTERNAL_ERROR`), SQLSTATE (default `XX000`) and message.
    pub statement_error_class: Option<String>,
    pub statement_sql_state: Option<String>,
    pub statement_error_message: Option<String>,
    /// How long statements submitted from now on stay RUNNING (overrides
    /// `--statement-seconds`).
    pub statement_seconds: Option<f64>,
    /// How long warehouse starts begun from now on take (overrides
    /// `--warehouse-seconds`).
    pub warehouse_start_seconds: Option<f64>,
}

/// Counts of faults injected so far (reported by GET /_emulator/faults).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultCounters {
    pub throttled: u64,
    pub unavailable: u64,
    pub credential_failures: u64,
    #[serde(default)]
    pub statement_failures: u64,
}

/// An injected SQL failure, decided when a statement is submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementFault {
    pub error_class: String,
    pub sql_state: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultDecision {
    Pass,
    Throttle,
    Unavailable,
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("throttle_rate", self.throttle_rate),
            ("unavailable_rate", self.unavailable_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        for (name, secs) in [
            ("statement_seconds", self.statement_seconds),
            ("warehouse_start_seconds", self.warehouse_start_seconds),
        ] {
            if secs.is_some_and(|s| !(0.0..=86_400.0).contains(&s)) {
                return Err(format!("{name} must be between 0 and 86400"));
            }
        }
        match self.credential_failure_format.as_deref() {
            None | Some("json") | Some("text") | Some("alternate") => Ok(()),
            Some(other) => Err(format!(
                "credential_failure_format must be json, text or alternate, got {other}"
            )),
        }
    }

    pub fn applies_to(&self, path: &str) -> bool {
        path.contains("/api/")
            && self
                .path_contains
                .as_deref()
                .is_none_or(|needle| path.contains(needle))
    }
}

/// Decides the fault for one affected request. Deterministic counters win over rates;
/// 429 is checked before 503. `throttle_roll` and `unavailable_roll` are uniform in [0, 1).
pub fn decide(
    cfg: &mut FaultConfig,
    counters: &mut FaultCounters,
    throttle_roll: f64,
    unavailable_roll: f64,
) -> FaultDecision {
    let decision = if cfg.throttle_next > 0 {
        cfg.throttle_next -= 1;
        FaultDecision::Throttle
    } else if cfg.unavailable_next > 0 {
        cfg.unavailable_next -= 1;
        FaultDecision::Unavailable
    } else if throttle_roll < cfg.throttle_rate {
        FaultDecision::Throttle
    } else if unavailable_roll < cfg.unavailable_rate {
        FaultDecision::Unavailable
    } else {
        FaultDecision::Pass
    };
    match decision {
        FaultDecision::Throttle => counters.throttled += 1,
        FaultDecision::Unavailable => counters.unavailable += 1,
        FaultDecision::Pass => {}
    }
    decision
}

/// Whether a statement submitted now fails by configuration: the countdown first,
/// then the text match. Counts the failures it injects.
pub fn statement_fault(
    cfg: &mut FaultConfig,
    counters: &mut FaultCounters,
    statement: &str,
) -> Option<StatementFault> {
    let matches_text = cfg
        .statement_fail_contains
        .as_deref()
        .is_some_and(|needle| statement.to_lowercase().contains(&needle.to_lowercase()));
    if cfg.statement_failures_next > 0 {
        cfg.statement_failures_next -= 1;
    } else if !matches_text {
        return None;
    }
    counters.statement_failures += 1;
    let error_class = cfg
        .statement_error_class
        .clone()
        .unwrap_or_else(|| "INTERNAL_ERROR".to_string());
    let sql_state = cfg
        .statement_sql_state
        .clone()
        .unwrap_or_else(|| "XX000".to_string());
    let text = cfg.statement_error_message.clone().unwrap_or_else(|| {
        "Injected failure (databricks-emulator fault configuration).".to_string()
    });
    // Worded as Databricks words SQL errors: `[CLASS] text SQLSTATE: xxxxx`.
    Some(StatementFault {
        message: format!("[{error_class}] {text} SQLSTATE: {sql_state}"),
        error_class,
        sql_state,
    })
}

/// A duration override in seconds as milliseconds.
pub fn seconds_override(s: Option<f64>) -> Option<i64> {
    s.map(|s| (s * 1000.0).round() as i64)
}

/// Remove each dotted `path` from `value`; paths that are not there are ignored.
pub fn omit_fields(value: &mut serde_json::Value, paths: &[String]) {
    for path in paths {
        let mut parts: Vec<&str> = path.split('.').collect();
        let Some(last) = parts.pop() else { continue };
        let parent = parts.iter().try_fold(&mut *value, |v, key| v.get_mut(*key));
        if let Some(serde_json::Value::Object(map)) = parent {
            map.remove(last);
        }
    }
}

/// Whether this credential creation must fail, and whether as text/plain. Counts down
/// `credential_validation_failures`.
pub fn credential_failure(cfg: &mut FaultConfig, counters: &mut FaultCounters) -> Option<bool> {
    if cfg.credential_validation_failures == 0 {
        return None;
    }
    cfg.credential_validation_failures -= 1;
    counters.credential_failures += 1;
    let plain = match cfg.credential_failure_format.as_deref() {
        Some("text") => true,
        Some("alternate") => counters.credential_failures % 2 == 0,
        _ => false,
    };
    Some(plain)
}

pub const CREDENTIAL_VALIDATION_MESSAGE: &str = "Failed credential validation checks: please use a valid cross account IAM role with permissions setup correctly";

pub fn credential_failure_error(plain: bool) -> ApiError {
    if plain {
        ApiError::plain(
            StatusCode::BAD_REQUEST,
            format!("MALFORMED_REQUEST: {CREDENTIAL_VALIDATION_MESSAGE}"),
        )
    } else {
        ApiError::malformed(CREDENTIAL_VALIDATION_MESSAGE)
    }
}

pub async fn middleware(State(app): State<App>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let (decision, latency, retry_after, omit) = {
        let mut guard = app.lock();
        let state = &mut *guard;
        if !state.faults.applies_to(&path) {
            (FaultDecision::Pass, 0, 1, Vec::new())
        } else {
            let (a, b) = {
                let mut rng = rand::rng();
                (rng.random::<f64>(), rng.random::<f64>())
            };
            let d = decide(&mut state.faults, &mut state.fault_counters, a, b);
            (
                d,
                state.faults.latency_ms,
                state.faults.retry_after_seconds.unwrap_or(1),
                state.faults.omit_response_fields.clone(),
            )
        }
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    match decision {
        FaultDecision::Pass if omit.is_empty() => next.run(req).await,
        FaultDecision::Pass => without_fields(next.run(req).await, &omit).await,
        FaultDecision::Throttle => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "REQUEST_LIMIT_EXCEEDED",
            "Current request has to be retried: rate limit exceeded. Please try again later.",
        )
        .with_retry_after(retry_after)
        .into_response(),
        FaultDecision::Unavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TEMPORARILY_UNAVAILABLE",
            format!("The service at {path} is temporarily unavailable. Please try again later."),
        )
        .with_retry_after(retry_after)
        .into_response(),
    }
}

/// The response with `paths` removed from its JSON body, when it succeeded
/// with one; any other response as it was.
async fn without_fields(response: Response, paths: &[String]) -> Response {
    if !response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "emulator: could not read its own answer",
        )
        .into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    omit_fields(&mut value, paths);
    let text = value.to_string();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn deterministic_counters_count_down_before_rates() {
        let mut cfg = FaultConfig {
            throttle_next: 2,
            unavailable_next: 1,
            ..Default::default()
        };
        let mut c = FaultCounters::default();
        assert_eq!(decide(&mut cfg, &mut c, 0.9, 0.9), FaultDecision::Throttle);
        assert_eq!(decide(&mut cfg, &mut c, 0.9, 0.9), FaultDecision::Throttle);
        assert_eq!(
            decide(&mut cfg, &mut c, 0.9, 0.9),
            FaultDecision::Unavailable
        );
        assert_eq!(decide(&mut cfg, &mut c, 0.0, 0.0), FaultDecision::Pass);
        assert_eq!(c.throttled, 2);
        assert_eq!(c.unavailable, 1);
    }

    #[test]
    fn rates_compare_against_rolls() {
        let mut cfg = FaultConfig {
            throttle_rate: 0.25,
            unavailable_rate: 0.5,
            ..Default::default()
        };
        let mut c = FaultCounters::default();
        assert_eq!(decide(&mut cfg, &mut c, 0.1, 0.9), FaultDecision::Throttle);
        assert_eq!(
            decide(&mut cfg, &mut c, 0.3, 0.4),
            FaultDecision::Unavailable
        );
        assert_eq!(decide(&mut cfg, &mut c, 0.3, 0.6), FaultDecision::Pass);
    }

    #[test]
    fn credential_failures_follow_format() {
        let mut cfg = FaultConfig {
            credential_validation_failures: 3,
            credential_failure_format: Some("alternate".into()),
            ..Default::default()
        };
        let mut c = FaultCounters::default();
        assert_eq!(credential_failure(&mut cfg, &mut c), Some(false));
        assert_eq!(credential_failure(&mut cfg, &mut c), Some(true));
        assert_eq!(credential_failure(&mut cfg, &mut c), Some(false));
        assert_eq!(credential_failure(&mut cfg, &mut c), None);
    }

    #[test]
    fn only_api_paths_matching_the_filter_are_affected() {
        let cfg = FaultConfig {
            path_contains: Some("/clusters/".into()),
            ..Default::default()
        };
        assert!(cfg.applies_to("/ws/x/api/2.1/clusters/get"));
        assert!(!cfg.applies_to("/ws/x/api/2.0/token/list"));
        assert!(!cfg.applies_to("/oidc/v1/token"));
        assert!(FaultConfig::default().applies_to("/api/2.0/accounts/a/workspaces"));
    }

    #[test]
    fn invalid_rates_are_rejected() {
        let cfg = FaultConfig {
            throttle_rate: 1.5,
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
        assert!(serde_json::from_str::<FaultConfig>(r#"{"throttle_rat": 1}"#).is_err());
    }

    #[test]
    fn omitted_fields_are_removed_at_any_depth_and_others_kept() {
        let mut answer = serde_json::json!({
            "token_value": "dapi1",
            "token_info": {"token_id": "t1", "comment": "c"},
        });
        omit_fields(
            &mut answer,
            &[
                "token_value".into(),
                "token_info.token_id".into(),
                "nope.deeper".into(),
            ],
        );
        assert_eq!(answer, serde_json::json!({"token_info": {"comment": "c"}}));
        let cfg: FaultConfig = serde_json::from_str(
            r#"{"omit_response_fields": ["secret"], "path_contains": "/secrets"}"#,
        )
        .unwrap();
        assert_eq!(cfg.omit_response_fields, vec!["secret"]);
    }

    #[test]
    fn statement_failures_count_down_then_match_text() {
        let mut cfg: FaultConfig = serde_json::from_str(
            r#"{"statement_failures_next": 1, "statement_fail_contains": "deep clone",
                "statement_error_class": "DELTA_CLONE_FAILED", "statement_sql_state": "58000"}"#,
        )
        .unwrap();
        let mut c = FaultCounters::default();
        let first = statement_fault(&mut cfg, &mut c, "SELECT 1").unwrap();
        assert_eq!(
            (first.error_class.as_str(), first.sql_state.as_str()),
            ("DELTA_CLONE_FAILED", "58000")
        );
        assert_eq!(first.message, "[DELTA_CLONE_FAILED] Injected failure (databricks-emulator fault configuration). SQLSTATE: 58000");
        assert_eq!(statement_fault(&mut cfg, &mut c, "SELECT 1"), None);
        assert!(statement_fault(&mut cfg, &mut c, "CREATE TABLE a DEEP CLONE b").is_some());
        assert!(statement_fault(&mut cfg, &mut c, "create table a deep clone b").is_some());
        assert_eq!(c.statement_failures, 3);
        let mut none = FaultConfig::default();
        assert_eq!(
            statement_fault(&mut none, &mut c, "CREATE TABLE a DEEP CLONE b"),
            None
        );
        let defaults = statement_fault(
            &mut FaultConfig {
                statement_failures_next: 1,
                ..Default::default()
            },
            &mut c,
            "x",
        )
        .unwrap();
        assert_eq!(
            (defaults.error_class.as_str(), defaults.sql_state.as_str()),
            ("INTERNAL_ERROR", "XX000")
        );
        assert!(FaultConfig {
            statement_seconds: Some(-1.0),
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    proptest! {
        #[test]
        fn zero_rates_never_fault(a in 0.0f64..1.0, b in 0.0f64..1.0) {
            let mut cfg = FaultConfig::default();
            let mut c = FaultCounters::default();
            prop_assert_eq!(decide(&mut cfg, &mut c, a, b), FaultDecision::Pass);
        }

        #[test]
        fn full_rates_always_fault(a in 0.0f64..1.0, b in 0.0f64..1.0) {
            let mut cfg = FaultConfig { throttle_rate: 1.0, ..Default::default() };
            let mut c = FaultCounters::default();
            prop_assert_eq!(decide(&mut cfg, &mut c, a, b), FaultDecision::Throttle);
        }
    }
}
