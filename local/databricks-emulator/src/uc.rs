//! Unity Catalog 2.1 on a workspace: storage credentials, external locations, catalogs,
//! schemas, volumes, grants and the current metastore assignment. Objects belong to
//! the metastore assigned to the workspace, so workspaces sharing a metastore see the
//! same objects, as in the real service.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::state::{
    copy_fields, new_uuid, now_ms, query_bool, App, Body, Fields, MetastoreData, State as EmuState,
};

/// The AWS role Unity Catalog assumes to reach customer storage (a fixed, public
/// Databricks role in the real service).
const UC_MASTER_ROLE: &str =
    "arn:aws:iam::414351767826:role/unity-catalog-prod-UCMasterRole-14S5ZJVKOTYTL";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    StorageCredential,
    ExternalLocation,
    Catalog,
    Schema,
    Volume,
}

impl Kind {
    fn map(self, d: &mut MetastoreData) -> &mut BTreeMap<String, Value> {
        match self {
            Kind::StorageCredential => &mut d.storage_credentials,
            Kind::ExternalLocation => &mut d.external_locations,
            Kind::Catalog => &mut d.catalogs,
            Kind::Schema => &mut d.schemas,
            Kind::Volume => &mut d.volumes,
        }
    }
    fn list_key(self) -> &'static str {
        match self {
            Kind::StorageCredential => "storage_credentials",
            Kind::ExternalLocation => "external_locations",
            Kind::Catalog => "catalogs",
            Kind::Schema => "schemas",
            Kind::Volume => "volumes",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Kind::StorageCredential => "Storage Credential",
            Kind::ExternalLocation => "External Location",
            Kind::Catalog => "Catalog",
            Kind::Schema => "Schema",
            Kind::Volume => "Volume",
        }
    }
    fn missing(self, name: &str) -> ApiError {
        let code = match self {
            Kind::StorageCredential => "STORAGE_CREDENTIAL_DOES_NOT_EXIST",
            Kind::ExternalLocation => "EXTERNAL_LOCATION_DOES_NOT_EXIST",
            Kind::Catalog => "CATALOG_DOES_NOT_EXIST",
            Kind::Schema => "SCHEMA_DOES_NOT_EXIST",
            Kind::Volume => "RESOURCE_DOES_NOT_EXIST",
        };
        ApiError::new(
            StatusCode::NOT_FOUND,
            code,
            format!("{} '{name}' does not exist.", self.label()),
        )
    }
    fn exists(self, name: &str) -> ApiError {
        ApiError::already_exists(format!("{} '{name}' already exists", self.label()))
    }
    fn securable(self) -> &'static str {
        match self {
            Kind::StorageCredential => "STORAGE_CREDENTIAL",
            Kind::ExternalLocation => "EXTERNAL_LOCATION",
            Kind::Catalog => "CATALOG",
            Kind::Schema => "SCHEMA",
            Kind::Volume => "VOLUME",
        }
    }
}

fn metastore_of(s: &EmuState, workspace_id: i64) -> ApiResult<String> {
    s.metastore_assignments
        .get(&workspace_id)
        .and_then(|a| a["metastore_id"].as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "METASTORE_DOES_NOT_EXIST",
                "No metastore assigned for the current workspace.",
            )
        })
}

/// Runs `f` on the metastore's data, creating it on first use.
fn with_metastore<T>(
    app: &App,
    ws: i64,
    f: impl FnOnce(&mut MetastoreData, &str) -> ApiResult<T>,
) -> ApiResult<T> {
    app.mutate(|s| {
        let mid = metastore_of(s, ws)?;
        let d = s.metastore_data.entry(mid.clone()).or_default();
        f(d, &mid)
    })
}

fn stamp(v: &mut Value, ctx: &WsCtx, metastore_id: &str, creating: bool) {
    let now = now_ms();
    if creating {
        v["created_at"] = json!(now);
        v["created_by"] = json!(ctx.principal_name);
        v["metastore_id"] = json!(metastore_id);
        if v.get("owner").is_none() {
            v["owner"] = json!(ctx.principal_name);
        }
    }
    v["updated_at"] = json!(now);
    v["updated_by"] = json!(ctx.principal_name);
}

/// UC identifiers are case-insensitive and stored in lower case.
fn ident(b: &Value, field: &str) -> ApiResult<String> {
    let n = b.req_str(field)?.to_lowercase();
    if n.contains(['.', ' ', '/']) || n.len() > 255 {
        return Err(ApiError::invalid(format!("Invalid {field} '{n}'")));
    }
    Ok(n)
}

#[derive(Deserialize)]
pub struct NamePath {
    pub name: String,
}

// ---------------------------------------------------------------- generic operations

fn get(app: &App, ctx: &WsCtx, kind: Kind, name: &str) -> ApiResult<Json<Value>> {
    let name = name.to_lowercase();
    with_metastore(app, ctx.workspace_id, |d, _| {
        kind.map(d)
            .get(&name)
            .cloned()
            .map(Json)
            .ok_or_else(|| kind.missing(&name))
    })
}

fn list(
    app: &App,
    ctx: &WsCtx,
    kind: Kind,
    keep: impl Fn(&Value) -> bool,
) -> ApiResult<Json<Value>> {
    with_metastore(app, ctx.workspace_id, |d, _| {
        let items: Vec<Value> = kind.map(d).values().filter(|v| keep(v)).cloned().collect();
        Ok(Json(json!({kind.list_key(): items})))
    })
}

fn update(
    app: &App,
    ctx: &WsCtx,
    kind: Kind,
    name: &str,
    b: &Value,
    fields: &[&str],
) -> ApiResult<Json<Value>> {
    let name = name.to_lowercase();
    with_metastore(app, ctx.workspace_id, |d, mid| {
        let v = kind
            .map(d)
            .get_mut(&name)
            .ok_or_else(|| kind.missing(&name))?;
        copy_fields(v, b, fields);
        stamp(v, ctx, mid, false);
        Ok(Json(v.clone()))
    })
}

fn dependents(d: &MetastoreData, kind: Kind, name: &str) -> usize {
    match kind {
        Kind::StorageCredential => d
            .external_locations
            .values()
            .filter(|l| l["credential_name"].as_str() == Some(name))
            .count(),
        Kind::Catalog => d
            .schemas
            .values()
            .filter(|s| s["catalog_name"].as_str() == Some(name))
            .filter(|s| !matches!(s["name"].as_str(), Some("default" | "information_schema")))
            .count(),
        Kind::Schema => d
            .volumes
            .keys()
            .filter(|v| v.starts_with(&format!("{name}.")))
            .count(),
        Kind::ExternalLocation => {
            let url = d
                .external_locations
                .get(name)
                .and_then(|l| l["url"].as_str())
                .unwrap_or("")
                .to_string();
            d.volumes
                .values()
                .filter(|v| {
                    !url.is_empty()
                        && v["storage_location"]
                            .as_str()
                            .is_some_and(|s| s.starts_with(&url))
                })
                .count()
        }
        Kind::Volume => 0,
    }
}

fn delete(app: &App, ctx: &WsCtx, kind: Kind, name: &str, force: bool) -> ApiResult<Json<Value>> {
    let name = name.to_lowercase();
    with_metastore(app, ctx.workspace_id, |d, _| {
        if !kind.map(d).contains_key(&name) {
            return Err(kind.missing(&name));
        }
        let n = dependents(d, kind, &name);
        if n > 0 && !force {
            return Err(ApiError::invalid(format!(
                "{} '{name}' is not empty or is in use by {n} object(s); delete them first or use force=true",
                kind.label()
            )));
        }
        kind.map(d).remove(&name);
        match kind {
            Kind::Catalog => {
                let prefix = format!("{name}.");
                d.schemas.retain(|k, _| !k.starts_with(&prefix));
                d.volumes.retain(|k, _| !k.starts_with(&prefix));
            }
            Kind::Schema => {
                let prefix = format!("{name}.");
                d.volumes.retain(|k, _| !k.starts_with(&prefix));
            }
            _ => {}
        }
        d.grants.remove(&format!("{}/{name}", kind.securable()));
        Ok(Json(json!({})))
    })
}

// ---------------------------------------------------------------- storage credentials

pub async fn create_storage_credential(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = ident(&b, "name")?;
    let role = b
        .pointer("/aws_iam_role/role_arn")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::missing_field("aws_iam_role.role_arn"))?
        .to_string();
    if !role.starts_with("arn:aws:iam::") || !role.contains(":role/") {
        return Err(ApiError::invalid(format!("Invalid IAM role ARN {role}")));
    }
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        if d.storage_credentials.contains_key(&name) {
            return Err(Kind::StorageCredential.exists(&name));
        }
        let mut v = json!({
            "id": new_uuid(),
            "name": name,
            "full_name": name,
            "aws_iam_role": {"role_arn": role, "external_id": new_uuid(), "unity_catalog_iam_arn": UC_MASTER_ROLE},
            "read_only": b["read_only"].as_bool().unwrap_or(false),
            "isolation_mode": "ISOLATION_MODE_OPEN",
            "used_for_managed_storage": false,
        });
        copy_fields(&mut v, &b, &["comment", "owner"]);
        stamp(&mut v, &ctx, mid, true);
        d.storage_credentials.insert(name, v.clone());
        Ok(Json(v))
    })
}

pub async fn get_storage_credential(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<NamePath>,
) -> ApiResult<Json<Value>> {
    get(&app, &ctx, Kind::StorageCredential, &p.name)
}

pub async fn list_storage_credentials(
    ctx: WsCtx,
    State(app): State<App>,
) -> ApiResult<Json<Value>> {
    list(&app, &ctx, Kind::StorageCredential, |_| true)
}

pub async fn update_storage_credential(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<NamePath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    update(
        &app,
        &ctx,
        Kind::StorageCredential,
        &p.name,
        &b,
        &["comment", "owner", "read_only", "aws_iam_role"],
    )
}

pub async fn delete_storage_credential(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<NamePath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    delete(
        &app,
        &ctx,
        Kind::StorageCredential,
        &p.name,
        query_bool(&q, "force"),
    )
}

// ---------------------------------------------------------------- external locations

/// Whether two storage URLs overlap (one is a path prefix of the other).
pub fn urls_overlap(a: &str, b: &str) -> bool {
    let norm = |u: &str| format!("{}/", u.trim_end_matches('/'));
    let (a, b) = (norm(a), norm(b));
    a.starts_with(&b) || b.starts_with(&a)
}

pub async fn create_external_location(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = ident(&b, "name")?;
    let url = b.req_str("url")?;
    let cred = b.req_str("credential_name")?.to_lowercase();
    if !url.starts_with("s3://") || url.len() <= "s3://".len() {
        return Err(ApiError::invalid(format!(
            "Invalid url {url}: expected s3://bucket/path"
        )));
    }
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        if d.external_locations.contains_key(&name) {
            return Err(Kind::ExternalLocation.exists(&name));
        }
        let cred_id = d
            .storage_credentials
            .get(&cred)
            .map(|c| c["id"].clone())
            .ok_or_else(|| Kind::StorageCredential.missing(&cred))?;
        if let Some(other) = d
            .external_locations
            .values()
            .find(|l| urls_overlap(l["url"].as_str().unwrap_or(""), &url))
        {
            return Err(ApiError::invalid(format!(
                "Input path url '{url}' overlaps with an existing external location '{}'",
                other["name"].as_str().unwrap_or_default()
            )));
        }
        let mut v = json!({
            "name": name,
            "url": url,
            "credential_name": cred,
            "credential_id": cred_id,
            "read_only": b["read_only"].as_bool().unwrap_or(false),
            "isolation_mode": "ISOLATION_MODE_OPEN",
            "browse_only": false,
        });
        copy_fields(&mut v, &b, &["comment", "owner", "fallback"]);
        stamp(&mut v, &ctx, mid, true);
        d.external_locations.insert(name, v.clone());
        Ok(Json(v))
    })
}

pub async fn get_external_location(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<NamePath>,
) -> ApiResult<Json<Value>> {
    get(&app, &ctx, Kind::ExternalLocation, &p.name)
}

pub async fn list_external_locations(ctx: WsCtx, State(app): State<App>) -> ApiResult<Json<Value>> {
    list(&app, &ctx, Kind::ExternalLocation, |_| true)
}

pub async fn update_external_location(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<NamePath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    update(
        &app,
        &ctx,
        Kind::ExternalLocation,
        &p.name,
        &b,
        &[
            "comment",
            "owner",
            "read_only",
            "url",
            "credential_name",
            "fallback",
        ],
    )
}

pub async fn delete_external_location(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<NamePath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    delete(
        &app,
        &ctx,
        Kind::ExternalLocation,
        &p.name,
        query_bool(&q, "force"),
    )
}

// ---------------------------------------------------------------- catalogs and schemas

fn schema_object(ctx: &WsCtx, mid: &str, catalog: &str, name: &str, b: &Value) -> Value {
    let mut v = json!({
        "name": name,
        "catalog_name": catalog,
        "full_name": format!("{catalog}.{name}"),
        "schema_id": new_uuid(),
        "catalog_type": "MANAGED_CATALOG",
        "browse_only": false,
    });
    copy_fields(
        &mut v,
        b,
        &["comment", "properties", "storage_root", "owner"],
    );
    stamp(&mut v, ctx, mid, true);
    v
}

pub async fn create_catalog(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = ident(&b, "name")?;
    if let Some(root) = b.opt_str("storage_root") {
        if !root.starts_with("s3://") {
            return Err(ApiError::invalid(format!(
                "Invalid storage_root {root}: expected an s3:// URL"
            )));
        }
    }
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        if d.catalogs.contains_key(&name) {
            return Err(Kind::Catalog.exists(&name));
        }
        let mut v = json!({
            "name": name,
            "full_name": name,
            "catalog_type": "MANAGED_CATALOG",
            "securable_type": "CATALOG",
            "isolation_mode": "OPEN",
            "browse_only": false,
        });
        copy_fields(
            &mut v,
            &b,
            &["comment", "properties", "storage_root", "owner", "options"],
        );
        stamp(&mut v, &ctx, mid, true);
        for schema in ["default", "information_schema"] {
            let mut sch = schema_object(&ctx, mid, &name, schema, &json!({}));
            if schema == "information_schema" {
                sch["owner"] = json!("System user");
            }
            d.schemas.insert(format!("{name}.{schema}"), sch);
        }
        d.catalogs.insert(name, v.clone());
        Ok(Json(v))
    })
}

pub async fn get_catalog(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<NamePath>,
) -> ApiResult<Json<Value>> {
    get(&app, &ctx, Kind::Catalog, &p.name)
}

pub async fn list_catalogs(ctx: WsCtx, State(app): State<App>) -> ApiResult<Json<Value>> {
    list(&app, &ctx, Kind::Catalog, |_| true)
}

pub async fn update_catalog(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<NamePath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    update(
        &app,
        &ctx,
        Kind::Catalog,
        &p.name,
        &b,
        &[
            "comment",
            "owner",
            "properties",
            "isolation_mode",
            "enable_predictive_optimization",
        ],
    )
}

pub async fn delete_catalog(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<NamePath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    delete(&app, &ctx, Kind::Catalog, &p.name, query_bool(&q, "force"))
}

pub async fn create_schema(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = ident(&b, "name")?;
    let catalog = ident(&b, "catalog_name")?;
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        if !d.catalogs.contains_key(&catalog) {
            return Err(Kind::Catalog.missing(&catalog));
        }
        let full = format!("{catalog}.{name}");
        if d.schemas.contains_key(&full) {
            return Err(Kind::Schema.exists(&full));
        }
        let v = schema_object(&ctx, mid, &catalog, &name, &b);
        d.schemas.insert(full, v.clone());
        Ok(Json(v))
    })
}

#[derive(Deserialize)]
pub struct FullNamePath {
    pub full_name: String,
}

pub async fn get_schema(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<FullNamePath>,
) -> ApiResult<Json<Value>> {
    get(&app, &ctx, Kind::Schema, &p.full_name)
}

pub async fn list_schemas(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let catalog = q
        .get("catalog_name")
        .map(|c| c.to_lowercase())
        .ok_or_else(|| ApiError::missing_field("catalog_name"))?;
    with_metastore(&app, ctx.workspace_id, |d, _| {
        if !d.catalogs.contains_key(&catalog) {
            return Err(Kind::Catalog.missing(&catalog));
        }
        Ok(())
    })?;
    list(&app, &ctx, Kind::Schema, |v| {
        v["catalog_name"].as_str() == Some(catalog.as_str())
    })
}

pub async fn update_schema(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<FullNamePath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    update(
        &app,
        &ctx,
        Kind::Schema,
        &p.full_name,
        &b,
        &[
            "comment",
            "owner",
            "properties",
            "enable_predictive_optimization",
        ],
    )
}

pub async fn delete_schema(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<FullNamePath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    delete(
        &app,
        &ctx,
        Kind::Schema,
        &p.full_name,
        query_bool(&q, "force"),
    )
}

// ---------------------------------------------------------------- volumes

pub async fn create_volume(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let catalog = ident(&b, "catalog_name")?;
    let schema = ident(&b, "schema_name")?;
    let name = ident(&b, "name")?;
    let volume_type = b.req_str("volume_type")?;
    let location = b.opt_str("storage_location");
    match (volume_type.as_str(), &location) {
        ("EXTERNAL", None) => return Err(ApiError::missing_field("storage_location")),
        ("MANAGED", Some(_)) => {
            return Err(ApiError::invalid(
                "storage_location cannot be set for a MANAGED volume",
            ))
        }
        ("EXTERNAL" | "MANAGED", _) => {}
        (other, _) => {
            return Err(ApiError::invalid(format!(
                "Invalid volume_type {other}: expected MANAGED or EXTERNAL"
            )))
        }
    }
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        let schema_full = format!("{catalog}.{schema}");
        if !d.schemas.contains_key(&schema_full) {
            return Err(Kind::Schema.missing(&schema_full));
        }
        let full = format!("{schema_full}.{name}");
        if d.volumes.contains_key(&full) {
            return Err(Kind::Volume.exists(&full));
        }
        let volume_id = new_uuid();
        let storage_location = match &location {
            Some(loc) => {
                if !d.external_locations.values().any(|l| {
                    urls_overlap(l["url"].as_str().unwrap_or(""), loc)
                        && loc
                            .starts_with(l["url"].as_str().unwrap_or("\u{0}").trim_end_matches('/'))
                }) {
                    return Err(ApiError::invalid(format!(
                        "No external location covers storage_location {loc}"
                    )));
                }
                loc.clone()
            }
            None => {
                let root = d
                    .catalogs
                    .get(&catalog)
                    .and_then(|c| c["storage_root"].as_str())
                    .map(str::to_string);
                format!(
                    "{}/__unitystorage/catalogs/{catalog}/volumes/{volume_id}",
                    root.unwrap_or_else(|| format!("s3://metastore-{mid}"))
                        .trim_end_matches('/')
                )
            }
        };
        let mut v = json!({
            "volume_id": volume_id,
            "name": name,
            "catalog_name": catalog,
            "schema_name": schema,
            "full_name": full,
            "volume_type": volume_type,
            "storage_location": storage_location,
            "browse_only": false,
        });
        copy_fields(&mut v, &b, &["comment"]);
        stamp(&mut v, &ctx, mid, true);
        d.volumes.insert(full, v.clone());
        Ok(Json(v))
    })
}

pub async fn get_volume(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<NamePath>,
) -> ApiResult<Json<Value>> {
    get(&app, &ctx, Kind::Volume, &p.name)
}

pub async fn list_volumes(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let catalog = q
        .get("catalog_name")
        .map(|c| c.to_lowercase())
        .ok_or_else(|| ApiError::missing_field("catalog_name"))?;
    let schema = q
        .get("schema_name")
        .map(|c| c.to_lowercase())
        .ok_or_else(|| ApiError::missing_field("schema_name"))?;
    list(&app, &ctx, Kind::Volume, |v| {
        v["catalog_name"].as_str() == Some(catalog.as_str())
            && v["schema_name"].as_str() == Some(schema.as_str())
    })
}

pub async fn update_volume(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<NamePath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    update(&app, &ctx, Kind::Volume, &p.name, &b, &["comment", "owner"])
}

pub async fn delete_volume(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<NamePath>,
) -> ApiResult<Json<Value>> {
    delete(&app, &ctx, Kind::Volume, &p.name, false)
}

// ---------------------------------------------------------------- grants

#[derive(Deserialize)]
pub struct SecurablePath {
    pub securable_type: String,
    pub full_name: String,
}

fn securable_key(
    d: &mut MetastoreData,
    metastore_id: &str,
    securable_type: &str,
    full_name: &str,
) -> ApiResult<String> {
    let t = securable_type.to_uppercase().replace('-', "_");
    let name = full_name.to_lowercase();
    let kind = match t.as_str() {
        "CATALOG" => Some(Kind::Catalog),
        "SCHEMA" => Some(Kind::Schema),
        "VOLUME" => Some(Kind::Volume),
        "EXTERNAL_LOCATION" => Some(Kind::ExternalLocation),
        "STORAGE_CREDENTIAL" => Some(Kind::StorageCredential),
        "METASTORE" => None,
        other => {
            return Err(ApiError::invalid(format!(
                "Unsupported securable type {other}"
            )))
        }
    };
    match kind {
        Some(k) if !k.map(d).contains_key(&name) => Err(k.missing(&name)),
        None if name != metastore_id => Err(ApiError::not_found(format!(
            "Metastore '{name}' does not exist."
        ))),
        _ => Ok(format!("{t}/{name}")),
    }
}

fn assignments(
    grants: Option<&BTreeMap<String, std::collections::BTreeSet<String>>>,
    principal: Option<&String>,
) -> Vec<Value> {
    grants
        .into_iter()
        .flatten()
        .filter(|(p, privs)| !privs.is_empty() && principal.is_none_or(|want| want == *p))
        .map(|(p, privs)| json!({"principal": p, "privileges": privs}))
        .collect()
}

pub async fn get_permissions(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<SecurablePath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        let key = securable_key(d, mid, &p.securable_type, &p.full_name)?;
        Ok(Json(
            json!({"privilege_assignments": assignments(d.grants.get(&key), q.get("principal"))}),
        ))
    })
}

pub fn privilege_problem(p: &str) -> Option<String> {
    let ok = !p.is_empty() && p.chars().all(|c| c.is_ascii_uppercase() || c == '_');
    (!ok).then(|| format!("Invalid privilege {p}"))
}

pub async fn update_permissions(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<SecurablePath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let changes = b
        .get("changes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut parsed = Vec::new();
    for c in &changes {
        let principal = c.req_str("principal")?;
        let add = c.str_list("add")?;
        let remove = c.str_list("remove")?;
        if let Some(e) = add
            .iter()
            .chain(remove.iter())
            .find_map(|x| privilege_problem(x))
        {
            return Err(ApiError::invalid(e));
        }
        parsed.push((principal, add, remove));
    }
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        let key = securable_key(d, mid, &p.securable_type, &p.full_name)?;
        let grants = d.grants.entry(key).or_default();
        for (principal, add, remove) in parsed {
            let set = grants.entry(principal.clone()).or_default();
            set.extend(add);
            for r in remove {
                set.remove(&r);
            }
            if set.is_empty() {
                grants.remove(&principal);
            }
        }
        Ok(Json(
            json!({"privilege_assignments": assignments(Some(grants), None)}),
        ))
    })
}

// ---------------------------------------------------------------- metastore of the workspace

pub async fn current_metastore_assignment(
    ctx: WsCtx,
    State(app): State<App>,
) -> ApiResult<Json<Value>> {
    app.read(|s| {
        metastore_of(s, ctx.workspace_id)?;
        Ok(Json(s.metastore_assignments[&ctx.workspace_id].clone()))
    })
}

pub async fn metastore_summary(ctx: WsCtx, State(app): State<App>) -> ApiResult<Json<Value>> {
    app.read(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        s.metastores
            .get(&mid)
            .map(|m| Json(m.clone()))
            .ok_or_else(|| ApiError::not_found(format!("Metastore '{mid}' does not exist.")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_urls_are_path_prefixes() {
        assert!(urls_overlap("s3://b/a", "s3://b/a/c"));
        assert!(urls_overlap("s3://b/a/", "s3://b/a"));
        assert!(!urls_overlap("s3://b/a", "s3://b/ab"));
        assert!(!urls_overlap("s3://b1", "s3://b2"));
    }

    #[test]
    fn privileges_are_upper_snake_case() {
        assert!(privilege_problem("USE_CATALOG").is_none());
        assert!(privilege_problem("use catalog").is_some());
    }
}
