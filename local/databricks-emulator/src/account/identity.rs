//! Account SCIM v2 (Groups, ServicePrincipals), service principal OAuth secrets and
//! workspace permission assignments.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::AcctCtx;
use crate::errors::{ApiError, ApiResult};
use crate::scim;
use crate::state::{
    new_uuid, now_ms, random_hex, random_numeric_id, rfc3339, App, Body, Fields, SpSecret,
    State as EmuState,
};

const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const SP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal";
const MAX_SECRETS_PER_PRINCIPAL: usize = 5;

#[derive(Deserialize)]
pub struct IdPath {
    pub id: String,
}

fn scim_json(status: StatusCode, v: Value) -> Response {
    let mut r = (status, Json(v)).into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        "application/scim+json".parse().expect("static"),
    );
    r
}

#[derive(Clone, Copy, PartialEq)]
enum ScimKind {
    Group,
    ServicePrincipal,
}

impl ScimKind {
    fn map(self, s: &mut EmuState) -> &mut std::collections::BTreeMap<String, Value> {
        match self {
            ScimKind::Group => &mut s.groups,
            ScimKind::ServicePrincipal => &mut s.service_principals,
        }
    }
    fn label(self) -> &'static str {
        match self {
            ScimKind::Group => "Group",
            ScimKind::ServicePrincipal => "Service principal",
        }
    }
}

/// Keeps only the requested attributes (plus `id`), as `attributes=` asks.
fn project(v: &Value, attributes: Option<&String>, excluded: Option<&String>) -> Value {
    let Some(obj) = v.as_object() else {
        return v.clone();
    };
    let split = |s: &String| {
        s.split(',')
            .map(|a| a.trim().to_lowercase())
            .collect::<Vec<_>>()
    };
    let mut out: Map<String, Value> = obj.clone();
    if let Some(attrs) = attributes.map(split) {
        out.retain(|k, _| k == "id" || attrs.contains(&k.to_lowercase()));
    }
    if let Some(ex) = excluded.map(split) {
        out.retain(|k, _| k == "id" || !ex.contains(&k.to_lowercase()));
    }
    Value::Object(out)
}

fn list(app: &App, kind: ScimKind, q: &HashMap<String, String>) -> ApiResult<Response> {
    let filter = match q.get("filter").filter(|f| !f.trim().is_empty()) {
        Some(f) => {
            Some(scim::parse_filter(f).map_err(|e| ApiError::scim(StatusCode::BAD_REQUEST, e))?)
        }
        None => None,
    };
    let parse = |k: &str| -> ApiResult<Option<i64>> {
        q.get(k)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::scim(StatusCode::BAD_REQUEST, format!("{k} must be an integer"))
                })
            })
            .transpose()
    };
    let start = parse("startIndex")?;
    let count = parse("count")?;
    let mut guard = app.lock();
    let mut items: Vec<Value> = kind
        .map(&mut guard)
        .values()
        .filter(|v| filter.as_ref().is_none_or(|f| scim::matches(v, f)))
        .map(|v| project(v, q.get("attributes"), q.get("excludedAttributes")))
        .collect();
    if let Some(sort_by) = q.get("sortBy") {
        let key = |v: &Value| v.get(sort_by).map(|x| x.to_string()).unwrap_or_default();
        items.sort_by_key(key);
        if q.get("sortOrder")
            .is_some_and(|o| o.eq_ignore_ascii_case("descending"))
        {
            items.reverse();
        }
    }
    Ok(scim_json(StatusCode::OK, scim::page(items, start, count)))
}

fn get(app: &App, kind: ScimKind, id: &str) -> ApiResult<Response> {
    let mut guard = app.lock();
    kind.map(&mut guard)
        .get(id)
        .cloned()
        .map(|v| scim_json(StatusCode::OK, v))
        .ok_or_else(|| {
            ApiError::scim(
                StatusCode::NOT_FOUND,
                format!("{} with id {id} not found.", kind.label()),
            )
        })
}

/// Checks invariants after a create, replace or patch: unique names, existing members.
fn validate(s: &EmuState, kind: ScimKind, v: &Value) -> ApiResult<()> {
    let id = v["id"].as_str().unwrap_or_default();
    match kind {
        ScimKind::Group => {
            let name = v["displayName"]
                .as_str()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    ApiError::scim(
                        StatusCode::BAD_REQUEST,
                        "Required attribute displayName is missing",
                    )
                })?;
            if s.groups
                .values()
                .any(|g| g["id"] != json!(id) && g["displayName"].as_str() == Some(name))
            {
                return Err(ApiError::scim(
                    StatusCode::CONFLICT,
                    format!("Group with name {name} already exists."),
                ));
            }
            for m in v["members"].as_array().into_iter().flatten() {
                let mid = m["value"].as_str().unwrap_or_default();
                if mid == id {
                    return Err(ApiError::scim(
                        StatusCode::BAD_REQUEST,
                        "A group cannot be a member of itself",
                    ));
                }
                if !s.groups.contains_key(mid) && !s.service_principals.contains_key(mid) {
                    return Err(ApiError::scim(
                        StatusCode::NOT_FOUND,
                        format!("Member with id {mid} not found."),
                    ));
                }
            }
        }
        ScimKind::ServicePrincipal => {
            let app_id = v["applicationId"].as_str().unwrap_or_default();
            if s.service_principals
                .values()
                .any(|p| p["id"] != json!(id) && p["applicationId"].as_str() == Some(app_id))
            {
                return Err(ApiError::scim(
                    StatusCode::CONFLICT,
                    format!("Service principal with application id {app_id} already exists."),
                ));
            }
        }
    }
    Ok(())
}

/// Adds `display` and `$ref` to group members, as the real service returns them.
fn decorate_members(s: &EmuState, v: &mut Value) {
    if let Some(members) = v.get_mut("members").and_then(Value::as_array_mut) {
        for m in members {
            let mid = m["value"].as_str().unwrap_or_default().to_string();
            if let Some(g) = s.groups.get(&mid) {
                m["display"] = g["displayName"].clone();
                m["$ref"] = json!(format!("Groups/{mid}"));
            } else if let Some(sp) = s.service_principals.get(&mid) {
                m["display"] = sp["displayName"].clone();
                m["$ref"] = json!(format!("ServicePrincipals/{mid}"));
            }
        }
    }
}

const WRITABLE_GROUP: &[&str] = &[
    "displayName",
    "members",
    "externalId",
    "roles",
    "entitlements",
];
const WRITABLE_SP: &[&str] = &[
    "displayName",
    "active",
    "externalId",
    "roles",
    "entitlements",
];

fn build(app: &App, kind: ScimKind, id: &str, b: &Value) -> Value {
    let mut v = match kind {
        ScimKind::Group => {
            json!({"schemas": [GROUP_SCHEMA], "id": id, "meta": {"resourceType": "Group"}})
        }
        ScimKind::ServicePrincipal => json!({
            "schemas": [SP_SCHEMA],
            "id": id,
            "active": true,
            "applicationId": b.opt_str("applicationId").unwrap_or_else(new_uuid),
        }),
    };
    v["account_id"] = json!(app.settings.account_id);
    let writable = if kind == ScimKind::Group {
        WRITABLE_GROUP
    } else {
        WRITABLE_SP
    };
    for f in writable {
        if let Some(x) = b.get(*f).filter(|x| !x.is_null()) {
            v[*f] = x.clone();
        }
    }
    v
}

fn create(app: &App, kind: ScimKind, b: Value) -> ApiResult<Response> {
    app.mutate(|s| {
        let id = random_numeric_id(16).to_string();
        let mut v = build(app, kind, &id, &b);
        validate(s, kind, &v)?;
        decorate_members(s, &mut v);
        kind.map(s).insert(id, v.clone());
        Ok(scim_json(StatusCode::CREATED, v))
    })
}

fn replace(app: &App, kind: ScimKind, id: &str, b: Value) -> ApiResult<Response> {
    app.mutate(|s| {
        let old = kind.map(s).get(id).cloned().ok_or_else(|| {
            ApiError::scim(
                StatusCode::NOT_FOUND,
                format!("{} with id {id} not found.", kind.label()),
            )
        })?;
        let mut v = build(app, kind, id, &b);
        if kind == ScimKind::ServicePrincipal {
            // The application id is immutable.
            v["applicationId"] = old["applicationId"].clone();
        }
        validate(s, kind, &v)?;
        decorate_members(s, &mut v);
        kind.map(s).insert(id.to_string(), v.clone());
        Ok(scim_json(StatusCode::OK, v))
    })
}

fn patch(app: &App, kind: ScimKind, id: &str, b: Value) -> ApiResult<Response> {
    let ops = b
        .get("Operations")
        .or_else(|| b.get("operations"))
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| ApiError::scim(StatusCode::BAD_REQUEST, "Missing Operations"))?;
    app.mutate(|s| {
        let mut v = kind.map(s).get(id).cloned().ok_or_else(|| {
            ApiError::scim(
                StatusCode::NOT_FOUND,
                format!("{} with id {id} not found.", kind.label()),
            )
        })?;
        scim::apply_patch(
            &mut v,
            &ops,
            &["id", "meta", "schemas", "applicationId", "account_id"],
        )
        .map_err(|e| ApiError::scim(StatusCode::BAD_REQUEST, e))?;
        validate(s, kind, &v)?;
        decorate_members(s, &mut v);
        kind.map(s).insert(id.to_string(), v.clone());
        Ok(scim_json(StatusCode::OK, v))
    })
}

fn delete(app: &App, kind: ScimKind, id: &str) -> ApiResult<Response> {
    app.mutate(|s| {
        kind.map(s).remove(id).ok_or_else(|| {
            ApiError::scim(
                StatusCode::NOT_FOUND,
                format!("{} with id {id} not found.", kind.label()),
            )
        })?;
        for g in s.groups.values_mut() {
            if let Some(ms) = g.get_mut("members").and_then(Value::as_array_mut) {
                ms.retain(|m| m["value"].as_str() != Some(id));
            }
        }
        if let Ok(pid) = id.parse::<i64>() {
            for a in s.permission_assignments.values_mut() {
                a.remove(&pid);
            }
        }
        if kind == ScimKind::ServicePrincipal {
            s.sp_secrets.remove(id);
            s.oauth_tokens.retain(|_, t| t.service_principal_id != id);
            for d in s.workspace_data.values_mut() {
                d.tokens.retain(|_, t| t.owner_id.to_string() != id);
            }
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

macro_rules! scim_handlers {
    ($kind:expr, $list:ident, $get:ident, $create:ident, $replace:ident, $patch:ident, $delete:ident) => {
        pub async fn $list(
            _: AcctCtx,
            State(app): State<App>,
            Query(q): Query<HashMap<String, String>>,
        ) -> ApiResult<Response> {
            list(&app, $kind, &q)
        }
        pub async fn $get(
            _: AcctCtx,
            State(app): State<App>,
            Path(p): Path<IdPath>,
        ) -> ApiResult<Response> {
            get(&app, $kind, &p.id)
        }
        pub async fn $create(
            _: AcctCtx,
            State(app): State<App>,
            body: Result<Body, ApiError>,
        ) -> ApiResult<Response> {
            let Body(b) = body.map_err(ApiError::into_scim)?;
            create(&app, $kind, b)
        }
        pub async fn $replace(
            _: AcctCtx,
            State(app): State<App>,
            Path(p): Path<IdPath>,
            body: Result<Body, ApiError>,
        ) -> ApiResult<Response> {
            let Body(b) = body.map_err(ApiError::into_scim)?;
            replace(&app, $kind, &p.id, b)
        }
        pub async fn $patch(
            _: AcctCtx,
            State(app): State<App>,
            Path(p): Path<IdPath>,
            body: Result<Body, ApiError>,
        ) -> ApiResult<Response> {
            let Body(b) = body.map_err(ApiError::into_scim)?;
            patch(&app, $kind, &p.id, b)
        }
        pub async fn $delete(
            _: AcctCtx,
            State(app): State<App>,
            Path(p): Path<IdPath>,
        ) -> ApiResult<Response> {
            delete(&app, $kind, &p.id)
        }
    };
}

scim_handlers!(
    ScimKind::Group,
    list_groups,
    get_group,
    create_group,
    replace_group,
    patch_group,
    delete_group
);
scim_handlers!(
    ScimKind::ServicePrincipal,
    list_sps,
    get_sp,
    create_sp,
    replace_sp,
    patch_sp,
    delete_sp
);

// ---------------------------------------------------------------- OAuth secrets

#[derive(Deserialize)]
pub struct SecretPath {
    pub sp_id: String,
    pub secret_id: Option<String>,
}

/// `"<seconds>s"`, the protobuf Duration JSON form the API uses for `lifetime`.
pub fn parse_lifetime(s: &str) -> Option<i64> {
    let n: f64 = s.strip_suffix('s')?.parse().ok()?;
    (n > 0.0 && n.is_finite()).then_some(n as i64)
}

const DEFAULT_SECRET_LIFETIME_SECONDS: i64 = 730 * 86_400;

/// A short stable fingerprint of a secret (FNV-1a), shown instead of the secret.
fn fingerprint(secret: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in secret.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")[..8].to_string()
}

fn check_sp(s: &EmuState, sp_id: &str) -> ApiResult<()> {
    if s.service_principals.contains_key(sp_id) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "Service principal {sp_id} does not exist"
        )))
    }
}

pub async fn create_secret(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<SecretPath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let lifetime = match b.opt_str("lifetime") {
        Some(l) => parse_lifetime(&l).ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid lifetime {l}: expected a duration such as \"3600s\""
            ))
        })?,
        None => DEFAULT_SECRET_LIFETIME_SECONDS,
    };
    if lifetime > DEFAULT_SECRET_LIFETIME_SECONDS {
        return Err(ApiError::invalid(
            "lifetime cannot exceed 730 days (63072000s)",
        ));
    }
    app.mutate(|s| {
        check_sp(s, &p.sp_id)?;
        let now = now_ms();
        let secrets = s.sp_secrets.entry(p.sp_id.clone()).or_default();
        secrets.retain(|sec| sec.expires_ms > now);
        if secrets.len() >= MAX_SECRETS_PER_PRINCIPAL {
            return Err(ApiError::quota_exceeded(format!(
                "Service principal {} already has the maximum of {MAX_SECRETS_PER_PRINCIPAL} OAuth secrets",
                p.sp_id
            )));
        }
        let secret = format!("dose{}", random_hex(32));
        let expires_ms = now + lifetime * 1000;
        let mut info = json!({
            "id": random_hex(32),
            "secret_hash": fingerprint(&secret),
            "create_time": rfc3339(now),
            "update_time": rfc3339(now),
            "expire_time": rfc3339(expires_ms),
            "status": "ACTIVE",
        });
        if let Some(scopes) = b.get("scopes").filter(|v| v.is_array()) {
            info["scopes"] = scopes.clone();
        }
        secrets.push(SpSecret { info: info.clone(), secret: secret.clone(), expires_ms });
        info["secret"] = json!(secret);
        Ok(Json(info))
    })
}

pub async fn list_secrets(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<SecretPath>,
) -> ApiResult<Json<Value>> {
    app.read(|s| {
        check_sp(s, &p.sp_id)?;
        let now = now_ms();
        let infos: Vec<Value> = s
            .sp_secrets
            .get(&p.sp_id)
            .into_iter()
            .flatten()
            .filter(|sec| sec.expires_ms > now)
            .map(|sec| sec.info.clone())
            .collect();
        Ok(Json(json!({"secrets": infos})))
    })
}

pub async fn delete_secret(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<SecretPath>,
) -> ApiResult<Json<Value>> {
    let secret_id = p.secret_id.clone().unwrap_or_default();
    app.mutate(|s| {
        check_sp(s, &p.sp_id)?;
        let secrets = s.sp_secrets.entry(p.sp_id.clone()).or_default();
        let before = secrets.len();
        secrets.retain(|sec| sec.info["id"].as_str() != Some(secret_id.as_str()));
        if secrets.len() == before {
            return Err(ApiError::not_found(format!(
                "Secret {secret_id} does not exist"
            )));
        }
        Ok(Json(json!({})))
    })
}

// ---------------------------------------------------------------- permission assignments

#[derive(Deserialize)]
pub struct AssignmentPath {
    pub workspace_id: i64,
    pub principal_id: Option<i64>,
}

fn principal_output(s: &EmuState, principal_id: i64) -> Option<Value> {
    let key = principal_id.to_string();
    if let Some(sp) = s.service_principals.get(&key) {
        return Some(json!({
            "principal_id": principal_id,
            "display_name": sp["displayName"],
            "service_principal_name": sp["applicationId"],
        }));
    }
    s.groups.get(&key).map(|g| {
        json!({
            "principal_id": principal_id,
            "display_name": g["displayName"],
            "group_name": g["displayName"],
        })
    })
}

fn check_workspace(s: &EmuState, workspace_id: i64) -> ApiResult<()> {
    if s.workspaces.contains_key(&workspace_id) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "Workspace {workspace_id} does not exist"
        )))
    }
}

pub async fn list_assignments(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<AssignmentPath>,
) -> ApiResult<Json<Value>> {
    app.read(|s| {
        check_workspace(s, p.workspace_id)?;
        let items: Vec<Value> = s
            .permission_assignments
            .get(&p.workspace_id)
            .into_iter()
            .flatten()
            .filter_map(|(pid, perms)| {
                principal_output(s, *pid).map(|po| json!({"principal": po, "permissions": perms}))
            })
            .collect();
        Ok(Json(json!({"permission_assignments": items})))
    })
}

pub async fn assignment_permissions(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<AssignmentPath>,
) -> ApiResult<Json<Value>> {
    app.read(|s| check_workspace(s, p.workspace_id))?;
    Ok(Json(json!({"permissions": [
        {"permission_level": "USER", "description": "Can use the workspace."},
        {"permission_level": "ADMIN", "description": "Can use the workspace and manage it as an admin."},
    ]})))
}

pub async fn put_assignment(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<AssignmentPath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let principal_id = p
        .principal_id
        .ok_or_else(|| ApiError::missing_field("principal_id"))?;
    let perms = b.str_list("permissions")?;
    if perms.is_empty() {
        return Err(ApiError::missing_field("permissions"));
    }
    if let Some(bad) = perms.iter().find(|x| *x != "USER" && *x != "ADMIN") {
        return Err(ApiError::invalid(format!(
            "Invalid permission {bad}: expected USER or ADMIN"
        )));
    }
    app.mutate(|s| {
        check_workspace(s, p.workspace_id)?;
        let po = principal_output(s, principal_id).ok_or_else(|| {
            ApiError::not_found(format!("Principal {principal_id} does not exist"))
        })?;
        s.permission_assignments
            .entry(p.workspace_id)
            .or_default()
            .insert(principal_id, perms.clone());
        Ok(Json(json!({"principal": po, "permissions": perms})))
    })
}

pub async fn delete_assignment(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<AssignmentPath>,
) -> ApiResult<Json<Value>> {
    let principal_id = p
        .principal_id
        .ok_or_else(|| ApiError::missing_field("principal_id"))?;
    app.mutate(|s| {
        check_workspace(s, p.workspace_id)?;
        let removed = s
            .permission_assignments
            .get_mut(&p.workspace_id)
            .and_then(|a| a.remove(&principal_id));
        if removed.is_none() {
            return Err(ApiError::not_found(format!(
                "Principal {principal_id} is not assigned to workspace {}",
                p.workspace_id
            )));
        }
        Ok(Json(json!({})))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_duration_strings() {
        assert_eq!(parse_lifetime("3600s"), Some(3600));
        assert_eq!(parse_lifetime("1.5s"), Some(1));
        assert_eq!(parse_lifetime("3600"), None);
        assert_eq!(parse_lifetime("-5s"), None);
    }

    #[test]
    fn fingerprints_are_stable_and_short() {
        assert_eq!(fingerprint("abc"), fingerprint("abc"));
        assert_ne!(fingerprint("abc"), fingerprint("abd"));
        assert_eq!(fingerprint("abc").len(), 8);
    }
}
