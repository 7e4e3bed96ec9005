//! Authentication: OAuth M2M token endpoints, discovery metadata, and the request
//! extractors that authenticate account and workspace API calls.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};

use crate::errors::ApiError;
use crate::lifecycle::workspace_status;
use crate::state::{now_ms, random_hex, App, OAuthToken, State as EmuState, TokenScope};

pub const WORKSPACE_PATH_PREFIX: &str = "/ws";

/// `http://<Host header>`: discovery documents must name the address the client used.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8900");
    format!("http://{host}")
}

pub fn workspace_url(base: &str, deployment_name: &str) -> String {
    format!("{base}{WORKSPACE_PATH_PREFIX}/{deployment_name}")
}

// ---------------------------------------------------------------- discovery

pub async fn account_host_metadata(headers: HeaderMap) -> Json<Value> {
    let base = base_url(&headers);
    // The account host serves many accounts, so its OIDC endpoint carries a
    // placeholder that the SDK fills with its configured account id.
    Json(json!({
        "oidc_endpoint": format!("{base}/oidc/accounts/{{account_id}}"),
        "cloud": "aws",
    }))
}

fn authorization_server(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/v1/authorize"),
        "token_endpoint": format!("{issuer}/v1/token"),
        "jwks_uri": format!("{issuer}/jwks.json"),
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "scopes_supported": ["all-apis", "offline_access", "openid", "profile", "email"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
    })
}

pub async fn account_authorization_server(
    State(app): State<App>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    if account_id != app.settings.account_id {
        return Err(ApiError::not_found(format!(
            "Account {account_id} does not exist"
        )));
    }
    let issuer = format!("{}/oidc/accounts/{account_id}", base_url(&headers));
    Ok(Json(authorization_server(&issuer)))
}

pub async fn workspace_host_metadata(
    State(app): State<App>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let deployment = params.get("deployment").cloned().unwrap_or_default();
    let workspace_id = app
        .read(|s| find_workspace(s, &deployment))
        .ok_or_else(|| unknown_workspace(&deployment))?;
    let ws = workspace_url(&base_url(&headers), &deployment);
    Ok(Json(json!({
        "oidc_endpoint": format!("{ws}/oidc"),
        "account_id": app.settings.account_id,
        "workspace_id": workspace_id.to_string(),
        "cloud": "aws",
    })))
}

pub async fn workspace_authorization_server(
    State(app): State<App>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let deployment = params.get("deployment").cloned().unwrap_or_default();
    app.read(|s| find_workspace(s, &deployment))
        .ok_or_else(|| unknown_workspace(&deployment))?;
    let issuer = format!("{}/oidc", workspace_url(&base_url(&headers), &deployment));
    Ok(Json(authorization_server(&issuer)))
}

// ---------------------------------------------------------------- token endpoints

struct ClientCredentials {
    client_id: String,
    client_secret: String,
    scope: String,
}

/// Reads client credentials from HTTP Basic auth or the form body (both are allowed
/// by the real endpoints; Basic wins when both are present).
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<ClientCredentials, ApiError> {
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    if grant != "client_credentials" {
        return Err(ApiError::oauth(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only grant_type=client_credentials is supported for service principals",
        ));
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let (client_id, client_secret) = match basic {
        Some(pair) => pair,
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    if client_id.is_empty() || client_secret.is_empty() {
        return Err(ApiError::oauth(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        ));
    }
    Ok(ClientCredentials {
        client_id,
        client_secret,
        scope: form
            .get("scope")
            .cloned()
            .unwrap_or_else(|| "all-apis".into()),
    })
}

/// The service principal id whose credentials these are, if they are valid now.
fn authenticate_client(app: &App, s: &EmuState, creds: &ClientCredentials) -> Option<String> {
    let sp = s.sp_by_application_id(&creds.client_id)?;
    if sp["active"].as_bool() == Some(false) {
        return None;
    }
    let sp_id = sp["id"].as_str()?.to_string();
    let is_bootstrap = creds.client_id == app.settings.admin_client_id
        && creds.client_secret == app.settings.admin_client_secret;
    let now = now_ms();
    let has_secret = s.sp_secrets.get(&sp_id).is_some_and(|secrets| {
        secrets
            .iter()
            .any(|sec| sec.secret == creds.client_secret && sec.expires_ms > now)
    });
    (is_bootstrap || has_secret).then_some(sp_id)
}

fn token_response(
    app: &App,
    s: &mut EmuState,
    sp_id: String,
    scope: TokenScope,
    requested_scope: &str,
) -> Response {
    let access_token = format!("dop{}", random_hex(61));
    let lifetime = app.settings.oauth_token_seconds;
    s.oauth_tokens.insert(
        access_token.clone(),
        OAuthToken {
            service_principal_id: sp_id,
            scope,
            expires_ms: now_ms() + lifetime * 1000,
        },
    );
    let mut r = Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": requested_scope,
    }))
    .into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("static header"),
    );
    r
}

pub async fn account_token(
    State(app): State<App>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form: HashMap<String, String> = form_decode(&body);
    let creds = match client_credentials(&headers, &form) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if account_id != app.settings.account_id {
        return ApiError::oauth(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        )
        .into_response();
    }
    let result = app.mutate(|s| {
        let sp_id = authenticate_client(&app, s, &creds).ok_or_else(|| {
            ApiError::oauth(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed",
            )
        })?;
        Ok(token_response(
            &app,
            s,
            sp_id,
            TokenScope::Account(account_id.clone()),
            &creds.scope,
        ))
    });
    result.unwrap_or_else(IntoResponse::into_response)
}

pub async fn workspace_token(
    State(app): State<App>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let deployment = params.get("deployment").cloned().unwrap_or_default();
    let form: HashMap<String, String> = form_decode(&body);
    let creds = match client_credentials(&headers, &form) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let result = app.mutate(|s| {
        let workspace_id = running_workspace(&app, s, &deployment)?;
        let sp_id = authenticate_client(&app, s, &creds).ok_or_else(|| {
            ApiError::oauth(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed",
            )
        })?;
        let principal: i64 = sp_id.parse().unwrap_or_default();
        if workspace_permissions(s, workspace_id, principal).is_empty() {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                "The service principal is not assigned to this workspace",
            ));
        }
        Ok(token_response(
            &app,
            s,
            sp_id,
            TokenScope::Workspace(workspace_id),
            &creds.scope,
        ))
    });
    result.unwrap_or_else(IntoResponse::into_response)
}

fn form_decode(body: &[u8]) -> HashMap<String, String> {
    serde_urlencoded_like(body)
}

/// Minimal `application/x-www-form-urlencoded` decoding (no extra dependency).
fn serde_urlencoded_like(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------- workspace lookup

pub fn find_workspace(s: &EmuState, deployment: &str) -> Option<i64> {
    s.workspaces
        .iter()
        .find(|(_, w)| w.info["deployment_name"].as_str() == Some(deployment))
        .map(|(id, _)| *id)
}

pub fn unknown_workspace(deployment: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
        format!("No workspace is served at deployment name {deployment}"),
    )
}

/// The id of the workspace with this deployment name, if it is RUNNING.
pub fn running_workspace(app: &App, s: &EmuState, deployment: &str) -> Result<i64, ApiError> {
    let id = find_workspace(s, deployment).ok_or_else(|| unknown_workspace(deployment))?;
    let status = workspace_status(
        &s.workspaces[&id].provisioning,
        now_ms(),
        app.settings.provisioning_ms,
    );
    match status.status {
        "RUNNING" => Ok(id),
        "PROVISIONING" => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TEMPORARILY_UNAVAILABLE",
            format!("Workspace {deployment} is still being provisioned"),
        )
        .with_retry_after(1)),
        _ => Err(unknown_workspace(deployment)),
    }
}

/// Groups that contain the principal directly or through nested groups.
pub fn groups_of(s: &EmuState, principal_id: &str) -> BTreeSet<String> {
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut frontier = vec![principal_id.to_string()];
    while let Some(member) = frontier.pop() {
        for (gid, g) in &s.groups {
            let contains = g["members"].as_array().is_some_and(|ms| {
                ms.iter()
                    .any(|m| m["value"].as_str() == Some(member.as_str()))
            });
            if contains && found.insert(gid.clone()) {
                frontier.push(gid.clone());
            }
        }
    }
    found
}

/// The permissions a principal has on a workspace, directly or through its groups.
pub fn workspace_permissions(
    s: &EmuState,
    workspace_id: i64,
    principal_id: i64,
) -> BTreeSet<String> {
    let Some(assignments) = s.permission_assignments.get(&workspace_id) else {
        return BTreeSet::new();
    };
    let mut principals: Vec<i64> = vec![principal_id];
    principals.extend(
        groups_of(s, &principal_id.to_string())
            .iter()
            .filter_map(|g| g.parse::<i64>().ok()),
    );
    principals
        .iter()
        .filter_map(|p| assignments.get(p))
        .flatten()
        .cloned()
        .collect()
}

fn bearer(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
}

// ---------------------------------------------------------------- extractors

/// An authenticated account API call.
pub struct AcctCtx {
    pub service_principal_id: String,
}

impl FromRequestParts<App> for AcctCtx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let params = Path::<HashMap<String, String>>::from_request_parts(parts, app)
            .await
            .map_err(|_| ApiError::not_found("Unknown account path"))?;
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        let account_id = params.0.get("account_id").cloned().unwrap_or_default();
        app.read(|s| {
            let t = s
                .oauth_tokens
                .get(&token)
                .ok_or_else(ApiError::invalid_token)?;
            if t.expires_ms <= now_ms() {
                return Err(ApiError::invalid_token());
            }
            if t.scope != TokenScope::Account(s.account_id.clone()) {
                return Err(ApiError::invalid_token());
            }
            if account_id != s.account_id {
                return Err(ApiError::permission_denied(format!(
                    "Not authorized to access account {account_id}"
                )));
            }
            let sp = s
                .service_principals
                .get(&t.service_principal_id)
                .ok_or_else(ApiError::invalid_token)?;
            let is_admin = sp["roles"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["value"] == "account_admin"));
            if !is_admin || sp["active"].as_bool() == Some(false) {
                return Err(ApiError::permission_denied(
                    "Only account admins can use the account API",
                ));
            }
            Ok(AcctCtx {
                service_principal_id: t.service_principal_id.clone(),
            })
        })
    }
}

/// An authenticated call to one workspace.
#[derive(Debug, Clone)]
pub struct WsCtx {
    pub workspace_id: i64,
    pub deployment_name: String,
    pub principal_id: i64,
    /// The principal's user name: a service principal's application id.
    pub principal_name: String,
    pub display_name: String,
    pub is_admin: bool,
}

impl WsCtx {
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.is_admin {
            Ok(())
        } else {
            Err(ApiError::permission_denied(format!(
                "Only workspace admins can {what}"
            )))
        }
    }
}

impl FromRequestParts<App> for WsCtx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let params = Path::<HashMap<String, String>>::from_request_parts(parts, app)
            .await
            .map_err(|_| ApiError::not_found("Unknown workspace path"))?;
        let deployment = params.0.get("deployment").cloned().unwrap_or_default();
        let token = bearer(parts);
        app.read(|s| {
            let workspace_id = running_workspace(app, s, &deployment)?;
            let token = token.ok_or_else(ApiError::unauthenticated)?;
            let now = now_ms();
            let sp_id: String = if token.starts_with("dapi") {
                let pat = s
                    .workspace_data
                    .get(&workspace_id)
                    .and_then(|d| d.tokens.values().find(|t| t.value == token))
                    .ok_or_else(ApiError::invalid_token)?;
                let expiry = pat.info["expiry_time"].as_i64().unwrap_or(-1);
                if expiry > 0 && expiry <= now {
                    return Err(ApiError::invalid_token());
                }
                pat.owner_id.to_string()
            } else {
                let t = s
                    .oauth_tokens
                    .get(&token)
                    .ok_or_else(ApiError::invalid_token)?;
                let scoped = match &t.scope {
                    TokenScope::Workspace(w) => *w == workspace_id,
                    // Account-level tokens work on workspaces the principal is assigned to.
                    TokenScope::Account(a) => *a == s.account_id,
                };
                if !scoped || t.expires_ms <= now {
                    return Err(ApiError::invalid_token());
                }
                t.service_principal_id.clone()
            };
            let sp = s
                .service_principals
                .get(&sp_id)
                .ok_or_else(ApiError::invalid_token)?;
            if sp["active"].as_bool() == Some(false) {
                return Err(ApiError::invalid_token());
            }
            let principal_id: i64 = sp_id.parse().unwrap_or_default();
            let perms = workspace_permissions(s, workspace_id, principal_id);
            if perms.is_empty() {
                return Err(ApiError::permission_denied(format!(
                    "Service principal {} is not assigned to workspace {workspace_id}",
                    sp["applicationId"].as_str().unwrap_or_default()
                )));
            }
            Ok(WsCtx {
                workspace_id,
                deployment_name: deployment.clone(),
                principal_id,
                principal_name: sp["applicationId"].as_str().unwrap_or_default().to_string(),
                display_name: sp["displayName"].as_str().unwrap_or_default().to_string(),
                is_admin: perms.contains("ADMIN"),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms() {
        let f = form_decode(
            b"grant_type=client_credentials&scope=all-apis+offline_access&client_id=a%2Fb",
        );
        assert_eq!(f["grant_type"], "client_credentials");
        assert_eq!(f["scope"], "all-apis offline_access");
        assert_eq!(f["client_id"], "a/b");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
