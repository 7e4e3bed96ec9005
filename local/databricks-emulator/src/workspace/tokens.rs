//! Personal access tokens, token management, workspace-conf and SCIM `Me`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::{groups_of, workspace_permissions, WsCtx};
use crate::errors::{ApiError, ApiResult};
use crate::state::{now_ms, random_hex, App, Body, Fields, PatRecord, State as EmuState};

/// Keys `workspace-conf` accepts, with whether the value must be a number.
const CONF_KEYS: &[(&str, bool)] = &[
    ("maxTokenLifetimeDays", true),
    ("enableTokensConfig", false),
    ("enableIpAccessLists", false),
    ("enableDeprecatedGlobalInitScripts", false),
    ("enableResultsDownloading", false),
    ("enableWorkspaceFilesystem", false),
    ("enableExportNotebook", false),
    ("enableNotebookTableClipboard", false),
    ("enableWebTerminal", false),
    ("enableDbfsFileBrowser", false),
    ("enableVerboseAuditLogs", false),
    ("enforceUserIsolation", false),
    ("storeInteractiveNotebookResultsInCustomerAccount", false),
    ("enableProjectTypeInWorkspace", false),
];

/// Checks a token lifetime against the workspace's `maxTokenLifetimeDays`.
pub fn lifetime_problem(lifetime_seconds: Option<i64>, max_days: Option<i64>) -> Option<String> {
    if let Some(l) = lifetime_seconds {
        if l < 0 {
            return Some("lifetime_seconds must not be negative".into());
        }
    }
    let max_days = max_days.filter(|d| *d > 0)?;
    let max_seconds = max_days * 86_400;
    match lifetime_seconds.filter(|l| *l > 0) {
        None => Some(format!(
            "Tokens without a lifetime are not allowed: this workspace limits token lifetime to {max_days} days"
        )),
        Some(l) if l > max_seconds => Some(format!(
            "Token lifetime {l} seconds exceeds the maximum of {max_days} days allowed in this workspace"
        )),
        Some(_) => None,
    }
}

fn max_days(s: &EmuState, workspace_id: i64) -> Option<i64> {
    s.workspace_data
        .get(&workspace_id)
        .and_then(|d| d.conf.get("maxTokenLifetimeDays"))
        .and_then(|v| v.parse().ok())
}

fn issue(
    s: &mut EmuState,
    workspace_id: i64,
    owner_id: i64,
    owner_name: &str,
    b: &Value,
) -> ApiResult<Value> {
    let lifetime = b.opt_i64("lifetime_seconds")?;
    if s.workspace_data
        .get(&workspace_id)
        .and_then(|d| d.conf.get("enableTokensConfig"))
        .is_some_and(|v| v == "false")
    {
        return Err(ApiError::permission_denied(
            "Personal access tokens are disabled in this workspace",
        ));
    }
    if let Some(p) = lifetime_problem(lifetime, max_days(s, workspace_id)) {
        return Err(ApiError::invalid(p));
    }
    let now = now_ms();
    let token_id = random_hex(64);
    let value = format!("dapi{}", random_hex(32));
    let expiry = match lifetime.filter(|l| *l > 0) {
        Some(l) => now + l * 1000,
        None => -1,
    };
    let mut info = json!({"token_id": token_id, "creation_time": now, "expiry_time": expiry});
    if let Some(c) = b.opt_str("comment") {
        info["comment"] = json!(c);
    }
    s.ws_data(workspace_id).tokens.insert(
        token_id,
        PatRecord {
            value: value.clone(),
            info: info.clone(),
            owner_id,
            owner_name: owner_name.to_string(),
        },
    );
    Ok(json!({"token_value": value, "token_info": info}))
}

pub async fn create(ctx: WsCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    app.mutate(|s| {
        issue(
            s,
            ctx.workspace_id,
            ctx.principal_id,
            &ctx.principal_name,
            &b,
        )
        .map(Json)
    })
}

fn live(t: &PatRecord, now: i64) -> bool {
    let e = t.info["expiry_time"].as_i64().unwrap_or(-1);
    e <= 0 || e > now
}

pub async fn list(ctx: WsCtx, State(app): State<App>) -> Json<Value> {
    app.read(|s| {
        let now = now_ms();
        let items: Vec<Value> = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| {
                d.tokens
                    .values()
                    .filter(|t| t.owner_id == ctx.principal_id && live(t, now))
                    .map(|t| t.info.clone())
                    .collect()
            })
            .unwrap_or_default();
        Json(json!({"token_infos": items}))
    })
}

pub async fn delete(ctx: WsCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    let token_id = b.req_str("token_id")?;
    app.mutate(|s| {
        let tokens = &mut s.ws_data(ctx.workspace_id).tokens;
        match tokens.get(&token_id) {
            Some(t) if t.owner_id == ctx.principal_id => {
                tokens.remove(&token_id);
                Ok(Json(json!({})))
            }
            _ => Err(ApiError::not_found(format!(
                "Token with id {token_id} does not exist"
            ))),
        }
    })
}

fn management_info(t: &PatRecord, workspace_id: i64) -> Value {
    let mut v = t.info.clone();
    v["created_by_id"] = json!(t.owner_id);
    v["created_by_username"] = json!(t.owner_name);
    v["owner_id"] = json!(t.owner_id);
    v["workspace_id"] = json!(workspace_id);
    v
}

#[derive(Deserialize)]
pub struct TokenPath {
    pub token_id: String,
}

pub async fn mgmt_list(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("access token management APIs")?;
    Ok(app.read(|s| {
        let now = now_ms();
        let items: Vec<Value> = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| {
                d.tokens
                    .values()
                    .filter(|t| live(t, now))
                    .filter(|t| {
                        q.get("created_by_id")
                            .is_none_or(|id| *id == t.owner_id.to_string())
                    })
                    .filter(|t| {
                        q.get("created_by_username")
                            .is_none_or(|n| *n == t.owner_name)
                    })
                    .map(|t| management_info(t, ctx.workspace_id))
                    .collect()
            })
            .unwrap_or_default();
        Json(json!({"token_infos": items}))
    }))
}

pub async fn mgmt_get(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<TokenPath>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("access token management APIs")?;
    app.read(|s| {
        s.workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.tokens.get(&p.token_id))
            .map(|t| Json(json!({"token_info": management_info(t, ctx.workspace_id)})))
            .ok_or_else(|| {
                ApiError::not_found(format!("Token with id {} does not exist", p.token_id))
            })
    })
}

pub async fn mgmt_delete(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<TokenPath>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("access token management APIs")?;
    app.mutate(|s| {
        s.ws_data(ctx.workspace_id)
            .tokens
            .remove(&p.token_id)
            .map(|_| Json(json!({})))
            .ok_or_else(|| {
                ApiError::not_found(format!("Token with id {} does not exist", p.token_id))
            })
    })
}

pub async fn create_obo(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("create tokens on behalf of service principals")?;
    let application_id = b.req_str("application_id")?;
    app.mutate(|s| {
        let sp = s
            .sp_by_application_id(&application_id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("Service principal {application_id} does not exist")))?;
        let sp_id: i64 = sp["id"].as_str().and_then(|i| i.parse().ok()).unwrap_or_default();
        if workspace_permissions(s, ctx.workspace_id, sp_id).is_empty() {
            return Err(ApiError::invalid(format!(
                "Service principal {application_id} is not assigned to this workspace"
            )));
        }
        let out = issue(s, ctx.workspace_id, sp_id, &application_id, &b)?;
        let token_id = out["token_info"]["token_id"].as_str().unwrap_or_default().to_string();
        let rec = s.ws_data(ctx.workspace_id).tokens[&token_id].clone();
        Ok(Json(json!({"token_value": out["token_value"], "token_info": management_info(&rec, ctx.workspace_id)})))
    })
}

// ---------------------------------------------------------------- workspace-conf

pub async fn get_conf(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let keys: Vec<String> = q
        .get("keys")
        .map(|k| {
            k.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if keys.is_empty() {
        return Err(ApiError::missing_field("keys"));
    }
    if let Some(bad) = keys.iter().find(|k| !CONF_KEYS.iter().any(|(c, _)| c == k)) {
        return Err(ApiError::invalid(format!("Invalid keys: [{bad}]")));
    }
    Ok(app.read(|s| {
        let conf = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| d.conf.clone())
            .unwrap_or_default();
        let mut out = Map::new();
        for k in keys {
            let v = conf.get(&k).map(|v| json!(v)).unwrap_or(Value::Null);
            out.insert(k, v);
        }
        Json(Value::Object(out))
    }))
}

pub async fn set_conf(ctx: WsCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Response> {
    ctx.require_admin("change workspace configuration")?;
    let Value::Object(fields) = b else {
        return Err(ApiError::malformed("Expected an object"));
    };
    let mut updates = Vec::new();
    for (k, v) in fields {
        let Some((_, numeric)) = CONF_KEYS.iter().find(|(c, _)| *c == k) else {
            return Err(ApiError::invalid(format!("Invalid keys: [{k}]")));
        };
        let value = match &v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => {
                return Err(ApiError::invalid(format!(
                    "Value of {k} must be a string, got {other}"
                )))
            }
        };
        if *numeric && !value.is_empty() && value.parse::<u32>().is_err() {
            return Err(ApiError::invalid(format!(
                "Value of {k} must be a non-negative whole number, got {value}"
            )));
        }
        if !*numeric && !value.is_empty() && value != "true" && value != "false" {
            return Err(ApiError::invalid(format!(
                "Value of {k} must be \"true\" or \"false\", got {value}"
            )));
        }
        updates.push((k, value));
    }
    app.mutate(|s| {
        let conf = &mut s.ws_data(ctx.workspace_id).conf;
        for (k, v) in updates {
            if v.is_empty() {
                conf.remove(&k);
            } else {
                conf.insert(k, v);
            }
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

// ---------------------------------------------------------------- SCIM Me

pub async fn me(ctx: WsCtx, State(app): State<App>) -> Json<Value> {
    app.read(|s| {
        let groups: Vec<Value> = groups_of(s, &ctx.principal_id.to_string())
            .into_iter()
            .map(|g| {
                json!({
                    "value": g,
                    "display": s.groups.get(&g).map(|x| x["displayName"].clone()).unwrap_or(Value::Null),
                    "$ref": format!("Groups/{g}"),
                })
            })
            .collect();
        let mut entitlements = vec![json!({"value": "workspace-access"})];
        if ctx.is_admin {
            entitlements.push(json!({"value": "allow-cluster-create"}));
        }
        Json(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": ctx.principal_id.to_string(),
            "userName": ctx.principal_name,
            "displayName": ctx.display_name,
            "active": true,
            "emails": [],
            "groups": groups,
            "entitlements": entitlements,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_respect_workspace_maximum() {
        assert!(lifetime_problem(None, None).is_none());
        assert!(lifetime_problem(Some(3600), None).is_none());
        assert!(lifetime_problem(Some(86_400), Some(1)).is_none());
        assert!(lifetime_problem(Some(86_401), Some(1)).is_some());
        assert!(lifetime_problem(None, Some(1)).is_some());
        assert!(lifetime_problem(Some(-1), None).is_some());
        assert!(lifetime_problem(Some(10_000_000), Some(0)).is_none());
    }
}
