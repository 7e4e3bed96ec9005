//! Functions REST: `/api/2.1/unity-catalog/functions` create (body `function_info`, a
//! `CreateFunction`), list (by catalog and schema, paged), get, update (owner only, as
//! the API allows) and delete, over `MetastoreData::functions` (`FunctionInfo` JSON by
//! lower-case full name; SQL `CREATE FUNCTION` writes the same map).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::state::{copy_fields, new_uuid, App, Body};
use crate::uc::Kind;
use crate::uc_common::{
    ident, list_answer, missing, read_only_share_catalog, stamp, with_metastore, PageRequest,
};
use crate::uc_data::share_of_catalog;

const FUNCTIONS_PAGE: usize = 1000;

/// `CreateFunction` fields the SDK marks required, apart from the three names.
const REQUIRED: &[&str] = &[
    "input_params",
    "data_type",
    "full_data_type",
    "routine_body",
    "routine_definition",
    "parameter_style",
    "is_deterministic",
    "sql_data_access",
    "is_null_call",
    "security_type",
    "specific_name",
];

/// The other `CreateFunction` fields, kept as sent.
const OPTIONAL: &[&str] = &[
    "comment",
    "external_language",
    "external_name",
    "properties",
    "return_params",
    "routine_dependencies",
    "sql_path",
];

#[derive(Deserialize)]
pub struct FunctionPath {
    pub name: String,
}

fn function_missing(name: &str) -> ApiError {
    missing("FUNCTION_DOES_NOT_EXIST", "Function", name)
}

pub async fn create_function(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let f = b
        .get("function_info")
        .filter(|v| v.is_object())
        .ok_or_else(|| ApiError::missing_field("function_info"))?;
    let name = ident(f, "name")?;
    let catalog = ident(f, "catalog_name")?;
    let schema = ident(f, "schema_name")?;
    if let Some(field) = REQUIRED
        .iter()
        .find(|k| f.get(**k).is_none_or(Value::is_null))
    {
        return Err(ApiError::missing_field(&format!("function_info.{field}")));
    }
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        if d.catalogs
            .get(&catalog)
            .is_some_and(|c| share_of_catalog(c).is_some())
        {
            return Err(read_only_share_catalog(&catalog));
        }
        let schema_full = format!("{catalog}.{schema}");
        if !d.schemas.contains_key(&schema_full) {
            return Err(Kind::Schema.missing(&schema_full));
        }
        let full = format!("{schema_full}.{name}");
        if d.functions.contains_key(&full) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "FUNCTION_ALREADY_EXISTS",
                format!("Function '{full}' already exists."),
            ));
        }
        let mut v = json!({
            "name": name,
            "catalog_name": catalog,
            "schema_name": schema,
            "full_name": full,
            "function_id": new_uuid(),
            "browse_only": false,
        });
        copy_fields(&mut v, f, REQUIRED);
        copy_fields(&mut v, f, OPTIONAL);
        stamp(&mut v, &ctx, mid, true);
        d.functions.insert(full, v.clone());
        Ok(Json(v))
    })
}

pub async fn list_functions(
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
    let page = PageRequest::from_query(&q, FUNCTIONS_PAGE)?;
    with_metastore(&app, ctx.workspace_id, |d, _| {
        if !d.catalogs.contains_key(&catalog) {
            return Err(Kind::Catalog.missing(&catalog));
        }
        let schema_full = format!("{catalog}.{schema}");
        if !d.schemas.contains_key(&schema_full) {
            return Err(Kind::Schema.missing(&schema_full));
        }
        let prefix = format!("{schema_full}.");
        let all = d
            .functions
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (items, next) = page.page(all);
        Ok(Json(list_answer("functions", items, next)))
    })
}

pub async fn get_function(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<FunctionPath>,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    with_metastore(&app, ctx.workspace_id, |d, _| {
        d.functions
            .get(&name)
            .cloned()
            .map(Json)
            .ok_or_else(|| function_missing(&name))
    })
}

pub async fn update_function(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<FunctionPath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        let f = d
            .functions
            .get_mut(&name)
            .ok_or_else(|| function_missing(&name))?;
        copy_fields(f, &b, &["owner"]);
        stamp(f, &ctx, mid, false);
        Ok(Json(f.clone()))
    })
}

pub async fn delete_function(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<FunctionPath>,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    with_metastore(&app, ctx.workspace_id, |d, _| {
        d.functions
            .remove(&name)
            .ok_or_else(|| function_missing(&name))?;
        d.grants.remove(&format!("FUNCTION/{name}"));
        Ok(Json(json!({})))
    })
}
