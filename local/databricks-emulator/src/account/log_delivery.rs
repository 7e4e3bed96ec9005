//! Billable usage and audit log delivery configurations. Bodies are wrapped in
//! `log_delivery_configuration`; configurations are disabled with PATCH, never deleted.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::AcctCtx;
use crate::errors::{ApiError, ApiResult};
use crate::state::{copy_fields, new_uuid, now_ms, App, Body, Fields};

#[derive(Deserialize)]
pub struct IdPath {
    pub id: String,
}

/// The real service only delivers audit logs as JSON and billable usage as CSV.
pub fn format_problem(log_type: &str, output_format: &str) -> Option<String> {
    match (log_type, output_format) {
        ("AUDIT_LOGS", "JSON") | ("BILLABLE_USAGE", "CSV") => None,
        ("AUDIT_LOGS", _) => Some("Audit logs must be delivered with output_format JSON".into()),
        ("BILLABLE_USAGE", _) => {
            Some("Billable usage logs must be delivered with output_format CSV".into())
        }
        (other, _) => Some(format!(
            "Invalid log_type {other}: expected AUDIT_LOGS or BILLABLE_USAGE"
        )),
    }
}

fn valid_start_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && s[..4].chars().all(|c| c.is_ascii_digit())
        && s[5..].parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
}

/// How many enabled configurations of one log type may have no workspace filter, and
/// how many may name one workspace in theirs (Databricks documents both limits).
const MAX_ENABLED_PER_SCOPE: usize = 2;

/// The fields that tell two configurations apart; Databricks refuses two enabled
/// configurations that share all of them (the name does not count).
const IDENTITY_FIELDS: &[&str] = &[
    "log_type",
    "output_format",
    "credentials_id",
    "storage_configuration_id",
    "delivery_path_prefix",
    "delivery_start_time",
];

fn workspace_filter(c: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = c["workspace_ids_filter"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Why `candidate` cannot be enabled next to the `others` (every other stored
/// configuration): an identical enabled one, or one scope over its limit. Pure.
pub fn enable_problem<'a>(
    candidate: &Value,
    others: impl Iterator<Item = &'a Value>,
) -> Option<ApiError> {
    let log_type = candidate["log_type"].as_str().unwrap_or_default();
    let filter = workspace_filter(candidate);
    let enabled: Vec<&Value> = others
        .filter(|c| c["status"] == "ENABLED" && c["log_type"] == candidate["log_type"])
        .collect();
    if let Some(same) = enabled.iter().find(|c| {
        IDENTITY_FIELDS.iter().all(|f| c[*f] == candidate[*f]) && workspace_filter(c) == filter
    }) {
        return Some(ApiError::already_exists(format!(
            "An enabled log delivery configuration with the same settings already exists: {}",
            same["config_id"].as_str().unwrap_or_default()
        )));
    }
    if filter.is_empty() {
        let account_level = enabled
            .iter()
            .filter(|c| workspace_filter(c).is_empty())
            .count();
        if account_level >= MAX_ENABLED_PER_SCOPE {
            return Some(ApiError::quota_exceeded(format!(
                "At most {MAX_ENABLED_PER_SCOPE} enabled {log_type} log delivery configurations without a workspace filter are allowed per account"
            )));
        }
    }
    for ws in &filter {
        let naming = enabled
            .iter()
            .filter(|c| workspace_filter(c).contains(ws))
            .count();
        if naming >= MAX_ENABLED_PER_SCOPE {
            return Some(ApiError::quota_exceeded(format!(
                "Workspace {ws} is already in the workspace filter of {MAX_ENABLED_PER_SCOPE} enabled {log_type} log delivery configurations"
            )));
        }
    }
    None
}

pub async fn create(_: AcctCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    let c = b
        .get("log_delivery_configuration")
        .cloned()
        .ok_or_else(|| ApiError::missing_field("log_delivery_configuration"))?;
    let log_type = c.req_str("log_type")?;
    let output_format = c.req_str("output_format")?;
    if let Some(p) = format_problem(&log_type, &output_format) {
        return Err(ApiError::invalid(p));
    }
    let credentials_id = c.req_str("credentials_id")?;
    let storage_id = c.req_str("storage_configuration_id")?;
    let status = c.opt_str("status").unwrap_or_else(|| "ENABLED".into());
    if status != "ENABLED" && status != "DISABLED" {
        return Err(ApiError::invalid(format!(
            "Invalid status {status}: expected ENABLED or DISABLED"
        )));
    }
    if let Some(t) = c.opt_str("delivery_start_time") {
        if !valid_start_time(&t) {
            return Err(ApiError::invalid(format!(
                "Invalid delivery_start_time {t}: expected YYYY-MM"
            )));
        }
    }
    app.mutate(|s| {
        if !s.credentials.contains_key(&credentials_id) {
            return Err(ApiError::invalid(format!("Credential configuration {credentials_id} does not exist")));
        }
        if !s.storage_configurations.contains_key(&storage_id) {
            return Err(ApiError::invalid(format!("Storage configuration {storage_id} does not exist")));
        }
        let id = new_uuid();
        let now = now_ms();
        let mut obj = json!({
            "config_id": id,
            "account_id": app.settings.account_id,
            "log_type": log_type,
            "output_format": output_format,
            "credentials_id": credentials_id,
            "storage_configuration_id": storage_id,
            "status": status,
            "creation_time": now,
            "update_time": now,
            "log_delivery_status": {
                "status": "CREATED",
                "message": "Log delivery configuration was created. Logs are delivered within an hour.",
            },
        });
        copy_fields(&mut obj, &c, &["config_name", "delivery_path_prefix", "delivery_start_time", "workspace_ids_filter"]);
        if status == "ENABLED" {
            if let Some(e) = enable_problem(&obj, s.log_delivery.values()) {
                return Err(e);
            }
        }
        s.log_delivery.insert(id, obj.clone());
        Ok(Json(json!({"log_delivery_configuration": obj})))
    })
}

pub async fn list(
    _: AcctCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    app.read(|s| {
        let items: Vec<Value> = s
            .log_delivery
            .values()
            .filter(|c| {
                ["status", "credentials_id", "storage_configuration_id"]
                    .iter()
                    .all(|f| {
                        q.get(*f)
                            .is_none_or(|want| c[*f].as_str() == Some(want.as_str()))
                    })
            })
            .cloned()
            .collect();
        Json(json!({"log_delivery_configurations": items}))
    })
}

pub async fn get(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    app.read(|s| {
        s.log_delivery
            .get(&p.id)
            .map(|c| Json(json!({"log_delivery_configuration": c})))
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "Log delivery configuration {} does not exist",
                    p.id
                ))
            })
    })
}

pub async fn patch_status(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let status = b.req_str("status")?;
    if status != "ENABLED" && status != "DISABLED" {
        return Err(ApiError::invalid(format!(
            "Invalid status {status}: expected ENABLED or DISABLED"
        )));
    }
    app.mutate(|s| {
        // Re-enabling is refused when the configuration would break a limit or
        // duplicate another enabled one, as on creation.
        if status == "ENABLED" {
            if let Some(c) = s.log_delivery.get(&p.id) {
                if c["status"] != "ENABLED" {
                    let others = s.log_delivery.iter().filter(|(id, _)| **id != p.id);
                    if let Some(e) = enable_problem(c, others.map(|(_, v)| v)) {
                        return Err(e);
                    }
                }
            }
        }
        let c = s.log_delivery.get_mut(&p.id).ok_or_else(|| {
            ApiError::not_found(format!(
                "Log delivery configuration {} does not exist",
                p.id
            ))
        })?;
        c["status"] = json!(status);
        c["update_time"] = json!(now_ms());
        Ok(Json(json!({})))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_log_types() {
        assert!(format_problem("AUDIT_LOGS", "JSON").is_none());
        assert!(format_problem("BILLABLE_USAGE", "CSV").is_none());
        assert!(format_problem("AUDIT_LOGS", "CSV").is_some());
        assert!(format_problem("X", "CSV").is_some());
        assert!(valid_start_time("2024-02"));
        assert!(!valid_start_time("2024-13"));
        assert!(!valid_start_time("24-02"));
    }

    #[test]
    fn enabled_configurations_are_distinct_and_limited_per_scope() {
        let conf = |id: &str, prefix: &str, filter: Value| {
            json!({"config_id": id, "log_type": "AUDIT_LOGS", "output_format": "JSON", "credentials_id": "c",
                   "storage_configuration_id": "s", "delivery_path_prefix": prefix, "status": "ENABLED",
                   "workspace_ids_filter": filter})
        };
        let a = conf("a", "p1", Value::Null);
        let same = conf("x", "p1", Value::Null);
        assert_eq!(
            enable_problem(&same, [&a].into_iter()).unwrap().status,
            axum::http::StatusCode::CONFLICT
        );
        let b = conf("b", "p2", Value::Null);
        assert!(enable_problem(&b, [&a].into_iter()).is_none());
        let third = conf("c", "p3", Value::Null);
        let err = enable_problem(&third, [&a, &b].into_iter()).unwrap();
        assert!(
            matches!(&err.body, crate::errors::ErrorBody::Standard { error_code, .. } if error_code == "QUOTA_EXCEEDED")
        );
        // A disabled one or another log type does not count; workspace filters have their own limit.
        let mut off = b.clone();
        off["status"] = json!("DISABLED");
        assert!(enable_problem(&third, [&a, &off].into_iter()).is_none());
        let mut usage = b.clone();
        usage["log_type"] = json!("BILLABLE_USAGE");
        assert!(enable_problem(&third, [&a, &usage].into_iter()).is_none());
        let w1 = conf("w1", "p1", json!([7]));
        let w2 = conf("w2", "p2", json!([7, 8]));
        assert!(enable_problem(
            &conf("w3", "p3", json!([8])),
            [&a, &b, &w1, &w2].into_iter()
        )
        .is_none());
        assert!(enable_problem(&conf("w3", "p3", json!([7])), [&w1, &w2].into_iter()).is_some());
    }
}
