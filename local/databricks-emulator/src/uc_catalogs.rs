//! Catalogs and schemas, including Delta Sharing catalogs: a catalog created with
//! `provider_name` and `share_name` is a read-only `DELTASHARING_CATALOG` whose schemas
//! are not stored but derived, at every read, from what the provider's share exposes.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::state::{copy_fields, new_uuid, query_bool, App, Body, Fields, State as EmuState};
use crate::uc::{delete, get, list, update, Kind, NamePath};
use crate::uc_common::{ident, metastore_of, missing, read_only_share_catalog, stamp};
use crate::uc_data::{share_catalog_tables, share_of_catalog, share_source};

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

/// The schemas a Delta Sharing catalog shows: those with at least one shared table
/// (the same rule `uc_data::resolve_table` applies).
pub fn share_catalog_schemas(s: &EmuState, mid: &str, catalog: &Value) -> BTreeSet<String> {
    share_catalog_tables(s, mid, catalog)
        .into_iter()
        .map(|(schema, _, _)| schema)
        .collect()
}

/// A schema of a share catalog as `SchemaInfo`: owned by the catalog's owner.
fn shared_schema_info(mid: &str, catalog: &Value, schema: &str) -> Value {
    let name = catalog["name"].as_str().unwrap_or_default();
    json!({
        "name": schema,
        "catalog_name": name,
        "full_name": format!("{name}.{schema}"),
        "catalog_type": "DELTASHARING_CATALOG",
        "owner": catalog["owner"],
        "metastore_id": mid,
        "browse_only": false,
        "created_at": catalog["created_at"],
        "created_by": catalog["created_by"],
    })
}

/// The share catalog `catalog` of metastore `mid`, if it is one.
fn share_catalog<'a>(s: &'a EmuState, mid: &str, catalog: &str) -> Option<&'a Value> {
    s.metastore_data
        .get(mid)?
        .catalogs
        .get(catalog)
        .filter(|c| share_of_catalog(c).is_some())
}

/// The `CatalogInfo` of a new Delta Sharing catalog, after checking that the provider
/// exists here and that its share is granted to this metastore.
fn share_catalog_info(
    s: &EmuState,
    mid: &str,
    name: &str,
    provider: &str,
    share: &str,
) -> ApiResult<Value> {
    let provider = provider.to_lowercase();
    let share = share.to_lowercase();
    let data = s.metastore_data.get(mid);
    if !data.is_some_and(|d| d.providers.contains_key(&provider)) {
        return Err(missing("PROVIDER_DOES_NOT_EXIST", "Provider", &provider));
    }
    if share_source(s, mid, &provider, &share).is_none() {
        return Err(missing(
            "SHARE_DOES_NOT_EXIST",
            &format!("Share of provider '{provider}'"),
            &share,
        ));
    }
    Ok(json!({
        "name": name,
        "full_name": name,
        "catalog_type": "DELTASHARING_CATALOG",
        "securable_type": "CATALOG",
        "provider_name": provider,
        "share_name": share,
        "isolation_mode": "OPEN",
        "browse_only": false,
    }))
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
    let sharing = match (b.opt_str("provider_name"), b.opt_str("share_name")) {
        (Some(p), Some(s)) => Some((p, s)),
        (None, None) => None,
        (Some(_), None) => return Err(ApiError::missing_field("share_name")),
        (None, Some(_)) => return Err(ApiError::missing_field("provider_name")),
    };
    app.mutate(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        if s.metastore_data
            .get(&mid)
            .is_some_and(|d| d.catalogs.contains_key(&name))
        {
            return Err(Kind::Catalog.exists(&name));
        }
        let mut v = match &sharing {
            Some((provider, share)) => share_catalog_info(s, &mid, &name, provider, share)?,
            None => json!({
                "name": name,
                "full_name": name,
                "catalog_type": "MANAGED_CATALOG",
                "securable_type": "CATALOG",
                "isolation_mode": "OPEN",
                "browse_only": false,
            }),
        };
        let fields: &[&str] = if sharing.is_some() {
            &["comment", "properties", "owner"]
        } else {
            &["comment", "properties", "storage_root", "owner", "options"]
        };
        copy_fields(&mut v, &b, fields);
        stamp(&mut v, &ctx, &mid, true);
        let d = s.metastore_data.entry(mid.clone()).or_default();
        // A share catalog's schemas come from the share; a standard catalog starts with
        // `default` and `information_schema`, as in Databricks.
        if sharing.is_none() {
            for schema in ["default", "information_schema"] {
                let mut sch = schema_object(&ctx, &mid, &name, schema, &json!({}));
                if schema == "information_schema" {
                    sch["owner"] = json!("System user");
                }
                d.schemas.insert(format!("{name}.{schema}"), sch);
            }
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
    app.mutate(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        if share_catalog(s, &mid, &catalog).is_some() {
            return Err(read_only_share_catalog(&catalog));
        }
        let d = s.metastore_data.entry(mid.clone()).or_default();
        if !d.catalogs.contains_key(&catalog) {
            return Err(Kind::Catalog.missing(&catalog));
        }
        let full = format!("{catalog}.{name}");
        if d.schemas.contains_key(&full) {
            return Err(Kind::Schema.exists(&full));
        }
        let v = schema_object(&ctx, &mid, &catalog, &name, &b);
        d.schemas.insert(full, v.clone());
        Ok(Json(v))
    })
}

#[derive(Deserialize)]
pub struct FullNamePath {
    pub full_name: String,
}

/// `Some(catalog)` when `full_name` (`catalog.schema`) is in a share catalog.
fn in_share_catalog(s: &EmuState, mid: &str, full_name: &str) -> Option<String> {
    let catalog = full_name.split('.').next()?.to_lowercase();
    share_catalog(s, mid, &catalog).map(|_| catalog)
}

pub async fn get_schema(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<FullNamePath>,
) -> ApiResult<Json<Value>> {
    let shared = app.read(|s| -> ApiResult<Option<Value>> {
        let mid = metastore_of(s, ctx.workspace_id)?;
        let full = p.full_name.to_lowercase();
        let Some(catalog_name) = in_share_catalog(s, &mid, &full) else {
            return Ok(None);
        };
        let catalog = &s.metastore_data[&mid].catalogs[&catalog_name];
        let schema = full.split_once('.').map(|x| x.1).unwrap_or_default();
        if !share_catalog_schemas(s, &mid, catalog).contains(schema) {
            return Err(Kind::Schema.missing(&full));
        }
        Ok(Some(shared_schema_info(&mid, catalog, schema)))
    })?;
    match shared {
        Some(v) => Ok(Json(v)),
        None => get(&app, &ctx, Kind::Schema, &p.full_name),
    }
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
    let shared = app.read(|s| -> ApiResult<Option<Vec<Value>>> {
        let mid = metastore_of(s, ctx.workspace_id)?;
        let exists = s
            .metastore_data
            .get(&mid)
            .is_some_and(|d| d.catalogs.contains_key(&catalog));
        if !exists {
            return Err(Kind::Catalog.missing(&catalog));
        }
        Ok(share_catalog(s, &mid, &catalog).map(|c| {
            share_catalog_schemas(s, &mid, c)
                .iter()
                .map(|schema| shared_schema_info(&mid, c, schema))
                .collect()
        }))
    })?;
    if let Some(schemas) = shared {
        return Ok(Json(json!({ "schemas": schemas })));
    }
    list(&app, &ctx, Kind::Schema, |v| {
        v["catalog_name"].as_str() == Some(catalog.as_str())
    })
}

/// Refuses a write to a schema of a share catalog.
fn refuse_shared_schema(app: &App, ctx: &WsCtx, full_name: &str) -> ApiResult<()> {
    app.read(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        match in_share_catalog(s, &mid, full_name) {
            Some(catalog) => Err(read_only_share_catalog(&catalog)),
            None => Ok(()),
        }
    })
}

pub async fn update_schema(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<FullNamePath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    refuse_shared_schema(&app, &ctx, &p.full_name)?;
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
    refuse_shared_schema(&app, &ctx, &p.full_name)?;
    delete(
        &app,
        &ctx,
        Kind::Schema,
        &p.full_name,
        query_bool(&q, "force"),
    )
}
