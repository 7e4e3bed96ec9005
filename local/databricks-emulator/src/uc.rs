//! Unity Catalog 2.1 on a workspace: storage credentials, external locations, volumes,
//! the operations they share with catalogs and schemas (`uc_catalogs`), and the
//! current metastore assignment. Objects belong to the metastore assigned to the
//! workspace, so workspaces sharing a metastore see the same objects, as in the real
//! service. Grants are in `uc_grants`, tables in `uc_tables`, functions in
//! `uc_functions`, tags in `uc_tags`, Delta Sharing in `sharing`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::state::{copy_fields, new_uuid, query_bool, App, Body, Fields, MetastoreData};
pub use crate::uc_catalogs::{
    create_catalog, create_schema, delete_catalog, delete_schema, get_catalog, get_schema,
    list_catalogs, list_schemas, update_catalog, update_schema,
};
pub(crate) use crate::uc_common::{ident, metastore_of, stamp, with_metastore};
pub use crate::uc_grants::{get_permissions, update_permissions};

/// The AWS role Unity Catalog assumes to reach customer storage (a fixed, public
/// Databricks role in the real service).
const UC_MASTER_ROLE: &str =
    "arn:aws:iam::414351767826:role/unity-catalog-prod-UCMasterRole-14S5ZJVKOTYTL";

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    StorageCredential,
    ExternalLocation,
    Catalog,
    Schema,
    Volume,
}

impl Kind {
    pub(crate) fn map(self, d: &mut MetastoreData) -> &mut BTreeMap<String, Value> {
        match self {
            Kind::StorageCredential => &mut d.storage_credentials,
            Kind::ExternalLocation => &mut d.external_locations,
            Kind::Catalog => &mut d.catalogs,
            Kind::Schema => &mut d.schemas,
            Kind::Volume => &mut d.volumes,
        }
    }
    pub(crate) fn list_key(self) -> &'static str {
        match self {
            Kind::StorageCredential => "storage_credentials",
            Kind::ExternalLocation => "external_locations",
            Kind::Catalog => "catalogs",
            Kind::Schema => "schemas",
            Kind::Volume => "volumes",
        }
    }
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::StorageCredential => "Storage Credential",
            Kind::ExternalLocation => "External Location",
            Kind::Catalog => "Catalog",
            Kind::Schema => "Schema",
            Kind::Volume => "Volume",
        }
    }
    pub(crate) fn missing(self, name: &str) -> ApiError {
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
    pub(crate) fn exists(self, name: &str) -> ApiError {
        ApiError::already_exists(format!("{} '{name}' already exists", self.label()))
    }
    pub(crate) fn securable(self) -> &'static str {
        match self {
            Kind::StorageCredential => "STORAGE_CREDENTIAL",
            Kind::ExternalLocation => "EXTERNAL_LOCATION",
            Kind::Catalog => "CATALOG",
            Kind::Schema => "SCHEMA",
            Kind::Volume => "VOLUME",
        }
    }
}

#[derive(Deserialize)]
pub struct NamePath {
    pub name: String,
}

// ---------------------------------------------------------------- generic operations

pub(crate) fn get(app: &App, ctx: &WsCtx, kind: Kind, name: &str) -> ApiResult<Json<Value>> {
    let name = name.to_lowercase();
    with_metastore(app, ctx.workspace_id, |d, _| {
        kind.map(d)
            .get(&name)
            .cloned()
            .map(Json)
            .ok_or_else(|| kind.missing(&name))
    })
}

pub(crate) fn list(
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

pub(crate) fn update(
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

pub(crate) fn dependents(d: &MetastoreData, kind: Kind, name: &str) -> usize {
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
        // Tables and functions are in a schema as volumes are.
        Kind::Schema => {
            let prefix = format!("{name}.");
            d.volumes.keys().filter(|v| v.starts_with(&prefix)).count()
                + d.tables.keys().filter(|t| t.starts_with(&prefix)).count()
                + d.functions
                    .keys()
                    .filter(|f| f.starts_with(&prefix))
                    .count()
        }
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

/// Removes what a forced delete of catalog or schema `name` takes with it: the objects
/// below it and their grants and tags (keys `TYPE/<name>.…`).
fn remove_contents(d: &mut MetastoreData, name: &str) {
    let prefix = format!("{name}.");
    let below = |k: &String| k.starts_with(&prefix);
    d.schemas.retain(|k, _| !below(k));
    d.volumes.retain(|k, _| !below(k));
    d.tables.retain(|k, _| !below(k));
    d.functions.retain(|k, _| !below(k));
    let below_key = |k: &String| {
        k.split_once('/')
            .is_some_and(|(_, n)| n.starts_with(&prefix))
    };
    d.grants.retain(|k, _| !below_key(k));
    d.tags.retain(|k, _| !below_key(k));
}

pub(crate) fn delete(
    app: &App,
    ctx: &WsCtx,
    kind: Kind,
    name: &str,
    force: bool,
) -> ApiResult<Json<Value>> {
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
        if matches!(kind, Kind::Catalog | Kind::Schema) {
            remove_contents(d, &name);
        }
        d.grants.remove(&format!("{}/{name}", kind.securable()));
        d.tags
            .remove(&crate::uc_data::tag_key(kind.securable(), &name));
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
        let mut v = new_volume(
            d,
            mid,
            &catalog,
            &schema,
            &name,
            &volume_type,
            location.as_deref(),
        )?;
        copy_fields(&mut v, &b, &["comment"]);
        stamp(&mut v, &ctx, mid, true);
        d.volumes.insert(
            v["full_name"].as_str().unwrap_or_default().to_string(),
            v.clone(),
        );
        Ok(Json(v))
    })
}

/// A new volume's record, checked against the metastore (its schema exists, the name
/// is free, an external location covers an EXTERNAL volume's storage): for the REST
/// API and for `CREATE [EXTERNAL] VOLUME`. The caller stamps and inserts it.
pub fn new_volume(
    d: &MetastoreData,
    mid: &str,
    catalog: &str,
    schema: &str,
    name: &str,
    volume_type: &str,
    location: Option<&str>,
) -> ApiResult<Value> {
    {
        let schema_full = format!("{catalog}.{schema}");
        if !d.schemas.contains_key(&schema_full) {
            return Err(Kind::Schema.missing(&schema_full));
        }
        let full = format!("{schema_full}.{name}");
        if d.volumes.contains_key(&full) {
            return Err(Kind::Volume.exists(&full));
        }
        let volume_id = new_uuid();
        let storage_location = match location {
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
                loc.to_string()
            }
            None => {
                let root = d
                    .catalogs
                    .get(catalog)
                    .and_then(|c| c["storage_root"].as_str())
                    .map(str::to_string);
                format!(
                    "{}/__unitystorage/catalogs/{catalog}/volumes/{volume_id}",
                    root.unwrap_or_else(|| format!("s3://metastore-{mid}"))
                        .trim_end_matches('/')
                )
            }
        };
        Ok(json!({
            "volume_id": volume_id,
            "name": name,
            "catalog_name": catalog,
            "schema_name": schema,
            "full_name": full,
            "volume_type": volume_type,
            "storage_location": storage_location,
            "browse_only": false,
        }))
    }
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

/// Why a privilege name is invalid, if it is (privileges are UPPER_SNAKE_CASE). Used by
/// the permissions API (`uc_grants`) and by SQL GRANT.
pub fn privilege_problem(p: &str) -> Option<String> {
    let ok = !p.is_empty() && p.chars().all(|c| c.is_ascii_uppercase() || c == '_');
    (!ok).then(|| format!("Invalid privilege {p}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_are_upper_snake_case() {
        assert!(privilege_problem("USE_CATALOG").is_none());
        assert!(privilege_problem("use catalog").is_some());
    }

    #[test]
    fn overlapping_urls_are_path_prefixes() {
        assert!(urls_overlap("s3://b/a", "s3://b/a/c"));
        assert!(urls_overlap("s3://b/a/", "s3://b/a"));
        assert!(!urls_overlap("s3://b/a", "s3://b/ab"));
        assert!(!urls_overlap("s3://b1", "s3://b2"));
    }
}
