//! Repos, secret scopes and secrets, and SQL statement execution.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::state::{now_ms, random_hex, random_numeric_id, App, Body, Fields, SecretScope};

// ---------------------------------------------------------------- repos

const PROVIDERS: &[&str] = &[
    "gitHub",
    "bitbucketCloud",
    "gitLab",
    "azureDevOpsServices",
    "gitHubEnterprise",
    "bitbucketServer",
    "gitLabEnterpriseEdition",
    "awsCodeCommit",
];

#[derive(Deserialize)]
pub struct RepoPath {
    pub repo_id: i64,
}

/// The provider name in its canonical spelling (the API accepts any case).
pub fn canonical_provider(p: &str) -> Option<&'static str> {
    PROVIDERS
        .iter()
        .copied()
        .find(|x| x.eq_ignore_ascii_case(p))
}

fn repo_name(url: &str) -> String {
    url.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("repo")
        .trim_end_matches(".git")
        .to_string()
}

pub async fn create_repo(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let url = b.req_str("url")?;
    let provider = b.req_str("provider")?;
    let provider = canonical_provider(&provider)
        .ok_or_else(|| ApiError::invalid(format!("Invalid git provider {provider}")))?;
    let path = b
        .opt_str("path")
        .unwrap_or_else(|| format!("/Repos/{}/{}", ctx.principal_name, repo_name(&url)));
    if !path.starts_with("/Repos/") && !path.starts_with("/Workspace/") {
        return Err(ApiError::invalid(format!(
            "Invalid repo path {path}: must be under /Repos or /Workspace"
        )));
    }
    app.mutate(|s| {
        let d = s.ws_data(ctx.workspace_id);
        if d.repos.values().any(|r| r["path"] == json!(path)) {
            return Err(ApiError::already_exists(format!(
                "Path {path} already exists"
            )));
        }
        let id = random_numeric_id(15);
        let mut r = json!({
            "id": id,
            "url": url,
            "provider": provider,
            "path": path,
            "branch": "main",
            "head_commit_id": random_hex(40),
        });
        if let Some(sc) = b.get("sparse_checkout").filter(|v| !v.is_null()) {
            r["sparse_checkout"] = sc.clone();
        }
        d.repos.insert(id, r.clone());
        Ok(Json(r))
    })
}

pub async fn get_repo(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<RepoPath>,
) -> ApiResult<Json<Value>> {
    app.read(|s| {
        s.workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.repos.get(&p.repo_id))
            .map(|r| Json(r.clone()))
            .ok_or_else(|| ApiError::not_found(format!("Repo {} does not exist", p.repo_id)))
    })
}

pub async fn list_repos(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let prefix = q.get("path_prefix").cloned().unwrap_or_default();
    app.read(|s| {
        let items: Vec<Value> = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| {
                d.repos
                    .values()
                    .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with(&prefix)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Json(json!({"repos": items}))
    })
}

pub async fn update_repo(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<RepoPath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let branch = b.opt_str("branch");
    let tag = b.opt_str("tag");
    if branch.is_some() && tag.is_some() {
        return Err(ApiError::invalid("Only one of branch and tag may be given"));
    }
    app.mutate(|s| {
        let r = s
            .ws_data(ctx.workspace_id)
            .repos
            .get_mut(&p.repo_id)
            .ok_or_else(|| ApiError::not_found(format!("Repo {} does not exist", p.repo_id)))?;
        if let Some(br) = branch {
            r["branch"] = json!(br);
            r["head_commit_id"] = json!(random_hex(40));
        }
        if tag.is_some() {
            // Checking out a tag leaves the repo in detached HEAD state.
            if let Some(o) = r.as_object_mut() {
                o.remove("branch");
            }
            r["head_commit_id"] = json!(random_hex(40));
        }
        if let Some(sc) = b.get("sparse_checkout").filter(|v| !v.is_null()) {
            r["sparse_checkout"] = sc.clone();
        }
        Ok(Json(json!({})))
    })
}

pub async fn delete_repo(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<RepoPath>,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| {
        s.ws_data(ctx.workspace_id)
            .repos
            .remove(&p.repo_id)
            .map(|_| Json(json!({})))
            .ok_or_else(|| ApiError::not_found(format!("Repo {} does not exist", p.repo_id)))
    })
}

// ---------------------------------------------------------------- secrets

/// Scope names and secret keys: alphanumerics, dashes, underscores and periods.
pub fn name_problem(kind: &str, name: &str, max: usize) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (!ok).then(|| {
        format!("{kind} '{name}' must contain only alphanumeric characters, dashes, underscores, and periods, and may not exceed {max} characters")
    })
}

fn scope_missing(scope: &str) -> ApiError {
    ApiError::not_found(format!("Scope {scope} does not exist!"))
}

pub async fn create_scope(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let scope = b.req_str("scope")?;
    if let Some(p) = name_problem("Scope name", &scope, 128) {
        return Err(ApiError::invalid(p));
    }
    let backend = b
        .opt_str("scope_backend_type")
        .unwrap_or_else(|| "DATABRICKS".into());
    if backend != "DATABRICKS" {
        return Err(ApiError::invalid(format!(
            "Scope backend {backend} is not available on AWS"
        )));
    }
    let manage = b.opt_str("initial_manage_principal");
    if manage.as_deref().is_some_and(|m| m != "users") {
        return Err(ApiError::invalid(
            "initial_manage_principal must be \"users\" or omitted",
        ));
    }
    app.mutate(|s| {
        let d = s.ws_data(ctx.workspace_id);
        if d.secret_scopes.contains_key(&scope) {
            return Err(ApiError::already_exists(format!(
                "Scope {scope} already exists!"
            )));
        }
        let mut sc = SecretScope {
            backend_type: backend,
            ..Default::default()
        };
        sc.acls.insert(
            manage.unwrap_or_else(|| ctx.principal_name.clone()),
            "MANAGE".into(),
        );
        d.secret_scopes.insert(scope, sc);
        Ok(Json(json!({})))
    })
}

pub async fn list_scopes(ctx: WsCtx, State(app): State<App>) -> Json<Value> {
    app.read(|s| {
        let items: Vec<Value> = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| {
                d.secret_scopes
                    .iter()
                    .map(|(n, sc)| json!({"name": n, "backend_type": sc.backend_type}))
                    .collect()
            })
            .unwrap_or_default();
        Json(json!({"scopes": items}))
    })
}

pub async fn delete_scope(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let scope = b.req_str("scope")?;
    app.mutate(|s| {
        s.ws_data(ctx.workspace_id)
            .secret_scopes
            .remove(&scope)
            .map(|_| Json(json!({})))
            .ok_or_else(|| scope_missing(&scope))
    })
}

pub async fn put_secret(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let scope = b.req_str("scope")?;
    let key = b.req_str("key")?;
    if let Some(p) = name_problem("Secret key", &key, 128) {
        return Err(ApiError::invalid(p));
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let value = match (b.opt_str("string_value"), b.opt_str("bytes_value")) {
        (Some(sv), None) => engine.encode(sv.as_bytes()),
        (None, Some(bv)) => {
            engine
                .decode(bv.as_bytes())
                .map_err(|_| ApiError::invalid("bytes_value must be base64-encoded"))?;
            bv
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "Only one of string_value and bytes_value may be given",
            ))
        }
        (None, None) => return Err(ApiError::missing_field("string_value")),
    };
    if value.len() > 128 * 1024 * 4 / 3 + 4 {
        return Err(ApiError::invalid("Secret values are limited to 128 KB"));
    }
    app.mutate(|s| {
        let sc = s
            .ws_data(ctx.workspace_id)
            .secret_scopes
            .get_mut(&scope)
            .ok_or_else(|| scope_missing(&scope))?;
        if !sc.secrets.contains_key(&key) && sc.secrets.len() >= 1000 {
            return Err(ApiError::quota_exceeded(format!(
                "Scope {scope} already holds the maximum of 1000 secrets"
            )));
        }
        sc.secrets.insert(key, (value, now_ms()));
        Ok(Json(json!({})))
    })
}

pub async fn list_secrets(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let scope = q
        .get("scope")
        .cloned()
        .ok_or_else(|| ApiError::missing_field("scope"))?;
    app.read(|s| {
        let sc = s
            .workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.secret_scopes.get(&scope))
            .ok_or_else(|| scope_missing(&scope))?;
        let items: Vec<Value> = sc
            .secrets
            .iter()
            .map(|(k, (_, ts))| json!({"key": k, "last_updated_timestamp": ts}))
            .collect();
        Ok(Json(json!({"secrets": items})))
    })
}

pub async fn get_secret(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let scope = q
        .get("scope")
        .cloned()
        .ok_or_else(|| ApiError::missing_field("scope"))?;
    let key = q
        .get("key")
        .cloned()
        .ok_or_else(|| ApiError::missing_field("key"))?;
    app.read(|s| {
        let sc = s
            .workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.secret_scopes.get(&scope))
            .ok_or_else(|| scope_missing(&scope))?;
        let (v, _) = sc.secrets.get(&key).ok_or_else(|| {
            ApiError::not_found(format!("Failed to get secret {key} for scope {scope}."))
        })?;
        Ok(Json(json!({"key": key, "value": v})))
    })
}

pub async fn delete_secret(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let scope = b.req_str("scope")?;
    let key = b.req_str("key")?;
    app.mutate(|s| {
        let sc = s
            .ws_data(ctx.workspace_id)
            .secret_scopes
            .get_mut(&scope)
            .ok_or_else(|| scope_missing(&scope))?;
        sc.secrets
            .remove(&key)
            .map(|_| Json(json!({})))
            .ok_or_else(|| {
                ApiError::not_found(format!("Secret {key} does not exist in scope {scope}"))
            })
    })
}

pub async fn put_acl(ctx: WsCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    let scope = b.req_str("scope")?;
    let principal = b.req_str("principal")?;
    let permission = b.req_str("permission")?;
    if !["READ", "WRITE", "MANAGE"].contains(&permission.as_str()) {
        return Err(ApiError::invalid(format!(
            "Invalid permission {permission}"
        )));
    }
    app.mutate(|s| {
        let sc = s
            .ws_data(ctx.workspace_id)
            .secret_scopes
            .get_mut(&scope)
            .ok_or_else(|| scope_missing(&scope))?;
        sc.acls.insert(principal, permission);
        Ok(Json(json!({})))
    })
}

pub async fn list_acls(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let scope = q
        .get("scope")
        .cloned()
        .ok_or_else(|| ApiError::missing_field("scope"))?;
    app.read(|s| {
        let sc = s
            .workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.secret_scopes.get(&scope))
            .ok_or_else(|| scope_missing(&scope))?;
        let items: Vec<Value> = sc
            .acls
            .iter()
            .map(|(p, perm)| json!({"principal": p, "permission": perm}))
            .collect();
        Ok(Json(json!({"items": items})))
    })
}

pub async fn get_acl(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let scope = q
        .get("scope")
        .cloned()
        .ok_or_else(|| ApiError::missing_field("scope"))?;
    let principal = q
        .get("principal")
        .cloned()
        .ok_or_else(|| ApiError::missing_field("principal"))?;
    app.read(|s| {
        let sc = s
            .workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.secret_scopes.get(&scope))
            .ok_or_else(|| scope_missing(&scope))?;
        sc.acls
            .get(&principal)
            .map(|perm| Json(json!({"principal": principal, "permission": perm})))
            .ok_or_else(|| ApiError::not_found(format!("No ACL for {principal} in scope {scope}")))
    })
}

pub async fn delete_acl(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let scope = b.req_str("scope")?;
    let principal = b.req_str("principal")?;
    app.mutate(|s| {
        let sc = s
            .ws_data(ctx.workspace_id)
            .secret_scopes
            .get_mut(&scope)
            .ok_or_else(|| scope_missing(&scope))?;
        sc.acls
            .remove(&principal)
            .map(|_| Json(json!({})))
            .ok_or_else(|| ApiError::not_found(format!("No ACL for {principal} in scope {scope}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_providers() {
        assert!(name_problem("Scope name", "lakeops.prod-1_a", 128).is_none());
        assert!(name_problem("Scope name", "bad name", 128).is_some());
        assert_eq!(canonical_provider("github"), Some("gitHub"));
        assert_eq!(canonical_provider("svn"), None);
        assert_eq!(repo_name("https://github.com/org/lakeops.git"), "lakeops");
    }
}
