//! `/_emulator/*`: endpoints for tests and operators, not part of the Databricks API.
//! They need no authentication.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::{base_url, WORKSPACE_PATH_PREFIX};
use crate::errors::{ApiError, ApiResult};
use crate::faults::FaultConfig;
use crate::state::{App, Body, State as EmuState};

pub async fn info(State(app): State<App>, headers: HeaderMap) -> Json<Value> {
    let base = base_url(&headers);
    let s = &app.settings;
    Json(json!({
        "account_host": base,
        "account_id": s.account_id,
        "workspace_host_template": format!("{base}{WORKSPACE_PATH_PREFIX}/{{deployment_name}}"),
        "aws_workspace_host_template": "https://{deployment_name}.cloud.databricks.com",
        "account_token_endpoint": format!("{base}/oidc/accounts/{}/v1/token", s.account_id),
        "admin_client_id": s.admin_client_id,
        "provisioning_seconds": s.provisioning_ms as f64 / 1000.0,
        "cluster_seconds": s.cluster_ms as f64 / 1000.0,
        "run_seconds": s.run_ms as f64 / 1000.0,
        "statement_seconds": s.statement_ms as f64 / 1000.0,
        "warehouse_seconds": s.warehouse_ms as f64 / 1000.0,
        "oauth_token_seconds": s.oauth_token_seconds,
        "state_file": s.state_file.as_ref().map(|p| p.display().to_string()),
    }))
}

/// Replaces every secret in a state dump with `***` (tokens, OAuth secrets).
pub fn redacted(state: &EmuState) -> Value {
    let mut v = serde_json::to_value(state).unwrap_or(Value::Null);
    if let Some(tokens) = v.get_mut("oauth_tokens").and_then(Value::as_object_mut) {
        let entries: Vec<Value> = tokens
            .iter()
            .map(|(k, t)| {
                let mut t = t.clone();
                t["access_token"] = json!(format!("{}***", &k[..k.len().min(6)]));
                t
            })
            .collect();
        v["oauth_tokens"] = Value::Array(entries);
    }
    if let Some(sps) = v.get_mut("sp_secrets").and_then(Value::as_object_mut) {
        for secrets in sps.values_mut().filter_map(Value::as_array_mut) {
            for sec in secrets {
                sec["secret"] = json!("***");
            }
        }
    }
    if let Some(wss) = v.get_mut("workspace_data").and_then(Value::as_object_mut) {
        for ws in wss.values_mut() {
            if let Some(tokens) = ws.get_mut("tokens").and_then(Value::as_object_mut) {
                for t in tokens.values_mut() {
                    t["value"] = json!("***");
                }
            }
            if let Some(scopes) = ws.get_mut("secret_scopes").and_then(Value::as_object_mut) {
                for sc in scopes.values_mut() {
                    if let Some(secrets) = sc.get_mut("secrets").and_then(Value::as_object_mut) {
                        for s in secrets.values_mut() {
                            s[0] = json!("***");
                        }
                    }
                }
            }
        }
    }
    v
}

pub async fn state(State(app): State<App>) -> Json<Value> {
    Json(app.read(redacted))
}

pub async fn reset(State(app): State<App>) -> Json<Value> {
    app.replace(EmuState::initial(&app.settings));
    Json(json!({}))
}

fn faults_view(s: &EmuState) -> Value {
    json!({"config": s.faults, "counters": s.fault_counters})
}

pub async fn get_faults(State(app): State<App>) -> Json<Value> {
    Json(app.read(faults_view))
}

pub async fn set_faults(State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    let cfg: FaultConfig = serde_json::from_value(b)
        .map_err(|e| ApiError::invalid(format!("Invalid fault configuration: {e}")))?;
    cfg.validate().map_err(ApiError::invalid)?;
    app.mutate(|s| {
        s.faults = cfg;
        Ok(Json(faults_view(s)))
    })
}

pub async fn clear_faults(State(app): State<App>) -> ApiResult<Json<Value>> {
    app.mutate(|s| {
        s.faults = FaultConfig::default();
        Ok(Json(faults_view(s)))
    })
}
