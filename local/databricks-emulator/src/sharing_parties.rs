//! Delta Sharing parties. Recipients (provider side, `/api/2.1/unity-catalog/recipients`)
//! and providers (recipient side, `/providers`). Creating a `DATABRICKS` recipient whose
//! `data_recipient_global_metastore_id` names a metastore of this emulator makes the
//! provider appear in that metastore by itself, as Databricks-to-Databricks sharing does.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::state::{
    copy_fields, new_uuid, now_ms, random_alnum_lower, App, Body, Fields, State as EmuState,
};
use crate::uc_common::{
    ident, list_answer, metastore_of, missing, stamp, with_metastore, PageRequest,
};
use crate::uc_data::{metastore_by_global_id, share_source, shared_tables};

const PAGE: usize = 1000;

#[derive(Deserialize)]
pub struct PartyPath {
    pub name: String,
}

fn recipient_missing(name: &str) -> ApiError {
    missing("RECIPIENT_DOES_NOT_EXIST", "Recipient", name)
}

fn provider_missing(name: &str) -> ApiError {
    missing("PROVIDER_DOES_NOT_EXIST", "Provider", name)
}

/// Splits a sharing identifier `<cloud>:<region>:<metastore uuid>`.
fn parse_global_id(id: &str) -> ApiResult<(String, String, String)> {
    let parts: Vec<&str> = id.split(':').collect();
    match parts.as_slice() {
        [cloud, region, uuid] if !cloud.is_empty() && !region.is_empty() && !uuid.is_empty() => {
            Ok((cloud.to_string(), region.to_string(), uuid.to_string()))
        }
        _ => Err(ApiError::invalid(format!(
            "Invalid data_recipient_global_metastore_id '{id}': expected <cloud>:<region>:<metastore-uuid>"
        ))),
    }
}

/// The name a provider gets in the recipient's metastore: the provider metastore's
/// `delta_sharing_organization_name` (the field Databricks documents as "the official
/// name" in Databricks-to-Databricks sharing), else the metastore's name; made unique
/// among the recipient metastore's providers with a `_2`, `_3`, ... suffix.
fn provider_name_for(s: &EmuState, provider_mid: &str, target_mid: &str) -> String {
    let m = &s.metastores[provider_mid];
    let base = m["delta_sharing_organization_name"]
        .as_str()
        .or(m["name"].as_str())
        .unwrap_or(provider_mid)
        .to_lowercase();
    let taken = |n: &str| {
        s.metastore_data
            .get(target_mid)
            .is_some_and(|d| d.providers.contains_key(n))
    };
    let mut name = base.clone();
    let mut i = 2;
    while taken(&name) {
        name = format!("{base}_{i}");
        i += 1;
    }
    name
}

/// Makes the provider `provider_mid` appear in `target_mid` (once per provider metastore).
pub fn ensure_provider(s: &mut EmuState, provider_mid: &str, target_mid: &str, by: &str) {
    let Some(m) = s.metastores.get(provider_mid).cloned() else {
        return;
    };
    let global = m["global_metastore_id"].clone();
    let exists = s.metastore_data.get(target_mid).is_some_and(|d| {
        d.providers
            .values()
            .any(|p| p["data_provider_global_metastore_id"] == global)
    });
    if exists {
        return;
    }
    let name = provider_name_for(s, provider_mid, target_mid);
    let owner = s
        .metastores
        .get(target_mid)
        .map(|t| t["owner"].clone())
        .unwrap_or(json!(by));
    let now = now_ms();
    let provider = json!({
        "name": name,
        "authentication_type": "DATABRICKS",
        "data_provider_global_metastore_id": global,
        "metastore_id": provider_mid,
        "cloud": m["cloud"],
        "region": m["region"],
        "owner": owner,
        "created_at": now,
        "created_by": by,
        "updated_at": now,
        "updated_by": by,
    });
    s.metastore_data
        .entry(target_mid.to_string())
        .or_default()
        .providers
        .insert(name, provider);
}

/// A `RecipientInfo` of a create request, without audit fields.
fn recipient_info(b: &Value, name: &str, ctx: &WsCtx) -> ApiResult<Value> {
    let auth = b.req_str("authentication_type")?;
    let mut v = json!({"id": new_uuid(), "name": name, "authentication_type": auth});
    match auth.as_str() {
        "DATABRICKS" => {
            let global = b.req_str("data_recipient_global_metastore_id")?;
            let (cloud, region, uuid) = parse_global_id(&global)?;
            v["data_recipient_global_metastore_id"] = json!(global);
            v["cloud"] = json!(cloud);
            v["region"] = json!(region);
            v["metastore_id"] = json!(uuid);
            v["activated"] = json!(true);
        }
        "TOKEN" => {
            if b.opt_str("data_recipient_global_metastore_id").is_some() {
                return Err(ApiError::invalid(
                    "data_recipient_global_metastore_id applies to DATABRICKS recipients only",
                ));
            }
            // Open sharing is recorded but not served: the activation URL and token
            // have no endpoint behind them in the emulator.
            let url = format!(
                "https://{}.cloud.databricks.com/delta_sharing/retrieve_config.html?{}",
                ctx.deployment_name,
                random_alnum_lower(32)
            );
            let now = now_ms();
            v["activated"] = json!(false);
            v["activation_url"] = json!(url);
            v["tokens"] = json!([{
                "id": new_uuid(), "activation_url": url,
                "created_at": now, "created_by": ctx.principal_name,
                "updated_at": now, "updated_by": ctx.principal_name,
            }]);
            copy_fields(&mut v, b, &["ip_access_list", "expiration_time"]);
        }
        other => {
            return Err(ApiError::invalid(format!(
                "authentication_type {other} is not supported by the emulator (DATABRICKS and TOKEN are)"
            )))
        }
    }
    copy_fields(
        &mut v,
        b,
        &["comment", "owner", "properties_kvpairs", "sharing_code"],
    );
    Ok(v)
}

pub async fn create_recipient(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = ident(&b, "name")?;
    let mut v = recipient_info(&b, &name, &ctx)?;
    app.mutate(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        let d = s.metastore_data.entry(mid.clone()).or_default();
        if d.recipients.contains_key(&name) {
            return Err(ApiError::already_exists(format!(
                "Recipient '{name}' already exists."
            )));
        }
        let target = v["data_recipient_global_metastore_id"]
            .as_str()
            .and_then(|g| metastore_by_global_id(s, g))
            .map(str::to_string);
        // Open sharing, and Databricks-to-Databricks sharing with a metastore outside
        // this account (one the emulator does not have), are external sharing.
        let scope = s.metastores.get(&mid).map(|m| m["delta_sharing_scope"].clone());
        if target.is_none() && scope != Some(json!("INTERNAL_AND_EXTERNAL")) {
            return Err(ApiError::invalid(
                "External Delta Sharing is not enabled on the metastore. Please contact the account admin to enable External Delta Sharing.",
            ));
        }
        let d = s.metastore_data.entry(mid.clone()).or_default();
        stamp(&mut v, &ctx, &mid, true);
        // RecipientInfo.metastore_id is the recipient's metastore, not the provider's.
        if let Some(global) = v["data_recipient_global_metastore_id"].as_str() {
            v["metastore_id"] = json!(global.rsplit(':').next().unwrap_or_default());
        } else if let Some(o) = v.as_object_mut() {
            o.remove("metastore_id");
        }
        d.recipients.insert(name, v.clone());
        if let Some(target) = target {
            ensure_provider(s, &mid, &target, &ctx.principal_name);
        }
        Ok(Json(v))
    })
}

pub async fn list_recipients(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let page = PageRequest::from_query(&q, PAGE)?;
    let want = q.get("data_recipient_global_metastore_id");
    with_metastore(&app, ctx.workspace_id, |d, _| {
        let all = d
            .recipients
            .iter()
            .filter(|(_, r)| {
                want.is_none_or(|w| r["data_recipient_global_metastore_id"].as_str() == Some(w))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (items, next) = page.page(all);
        Ok(Json(list_answer("recipients", items, next)))
    })
}

pub async fn get_recipient(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<PartyPath>,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    with_metastore(&app, ctx.workspace_id, |d, _| {
        d.recipients
            .get(&name)
            .cloned()
            .map(Json)
            .ok_or_else(|| recipient_missing(&name))
    })
}

pub async fn update_recipient(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<PartyPath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    let new_name = b.opt_str("new_name").map(|n| n.to_lowercase());
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        let mut r = d
            .recipients
            .get(&name)
            .cloned()
            .ok_or_else(|| recipient_missing(&name))?;
        copy_fields(
            &mut r,
            &b,
            &[
                "comment",
                "owner",
                "properties_kvpairs",
                "ip_access_list",
                "expiration_time",
            ],
        );
        stamp(&mut r, &ctx, mid, false);
        let key = match new_name.filter(|n| *n != name) {
            Some(new) => {
                if d.recipients.contains_key(&new) {
                    return Err(ApiError::already_exists(format!(
                        "Recipient '{new}' already exists."
                    )));
                }
                d.recipients.remove(&name);
                // Share grants name the recipient; they follow the rename.
                for (k, grants) in d.grants.iter_mut() {
                    if k.starts_with("SHARE/") {
                        if let Some(p) = grants.remove(&name) {
                            grants.insert(new.clone(), p);
                        }
                    }
                }
                r["name"] = json!(new);
                new
            }
            None => name,
        };
        d.recipients.insert(key, r.clone());
        Ok(Json(r))
    })
}

pub async fn delete_recipient(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<PartyPath>,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    with_metastore(&app, ctx.workspace_id, |d, _| {
        d.recipients
            .remove(&name)
            .ok_or_else(|| recipient_missing(&name))?;
        for (k, grants) in d.grants.iter_mut() {
            if k.starts_with("SHARE/") {
                grants.remove(&name);
            }
        }
        Ok(Json(json!({})))
    })
}

/// `permissions_out[]`: the shares granted to the recipient, one `ShareToPrivilegeAssignment`
/// each, paged by share name.
pub async fn recipient_share_permissions(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<PartyPath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    let page = PageRequest::from_query(&q, PAGE)?;
    with_metastore(&app, ctx.workspace_id, |d, _| {
        if !d.recipients.contains_key(&name) {
            return Err(recipient_missing(&name));
        }
        let all = d
            .grants
            .iter()
            .filter_map(|(k, grants)| {
                let share = k.strip_prefix("SHARE/")?;
                let privileges = grants.get(&name).filter(|p| !p.is_empty())?;
                let v = json!({
                    "share_name": share,
                    "privilege_assignments": [{"principal": name, "privileges": privileges}],
                });
                Some((share.to_string(), v))
            })
            .collect();
        let (items, next) = page.page(all);
        Ok(Json(list_answer("permissions_out", items, next)))
    })
}

// ---------------------------------------------------------------- providers

/// Providers of `DATABRICKS` type appear by themselves; open-sharing providers (TOKEN)
/// would need a Delta Sharing server, which the emulator does not have.
pub async fn create_provider(_: WsCtx, Body(b): Body) -> ApiResult<Json<Value>> {
    let auth = b.opt_str("authentication_type").unwrap_or_default();
    Err(ApiError::invalid(match auth.as_str() {
        "DATABRICKS" => "A DATABRICKS provider is created by the provider's recipient; it cannot be created here".to_string(),
        other => format!("authentication_type {other} providers are not supported by the emulator"),
    }))
}

pub async fn list_providers(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let page = PageRequest::from_query(&q, PAGE)?;
    let want = q.get("data_provider_global_metastore_id");
    with_metastore(&app, ctx.workspace_id, |d, _| {
        let all = d
            .providers
            .iter()
            .filter(|(_, p)| {
                want.is_none_or(|w| p["data_provider_global_metastore_id"].as_str() == Some(w))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (items, next) = page.page(all);
        Ok(Json(list_answer("providers", items, next)))
    })
}

pub async fn get_provider(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<PartyPath>,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    with_metastore(&app, ctx.workspace_id, |d, _| {
        d.providers
            .get(&name)
            .cloned()
            .map(Json)
            .ok_or_else(|| provider_missing(&name))
    })
}

pub async fn update_provider(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<PartyPath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    let new_name = b.opt_str("new_name").map(|n| n.to_lowercase());
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        let mut v = d
            .providers
            .get(&name)
            .cloned()
            .ok_or_else(|| provider_missing(&name))?;
        copy_fields(&mut v, &b, &["comment", "owner"]);
        stamp(&mut v, &ctx, mid, false);
        let key = match new_name.filter(|n| *n != name) {
            Some(new) => {
                if d.providers.contains_key(&new) {
                    return Err(ApiError::already_exists(format!(
                        "Provider '{new}' already exists."
                    )));
                }
                d.providers.remove(&name);
                // Share catalogs name their provider; they follow the rename.
                for c in d.catalogs.values_mut() {
                    if c["provider_name"].as_str() == Some(name.as_str()) {
                        c["provider_name"] = json!(new);
                    }
                }
                v["name"] = json!(new);
                new
            }
            None => name,
        };
        d.providers.insert(key, v.clone());
        Ok(Json(v))
    })
}

pub async fn delete_provider(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<PartyPath>,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    with_metastore(&app, ctx.workspace_id, |d, _| {
        d.providers
            .remove(&name)
            .map(|_| Json(json!({})))
            .ok_or_else(|| provider_missing(&name))
    })
}

/// The provider's shares this metastore can read now (granted to one of the provider's
/// recipients naming this metastore), as `ProviderShare`s.
pub async fn list_provider_shares(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<PartyPath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let name = p.name.to_lowercase();
    let page = PageRequest::from_query(&q, PAGE)?;
    app.read(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        let provider = s
            .metastore_data
            .get(&mid)
            .and_then(|d| d.providers.get(&name))
            .ok_or_else(|| provider_missing(&name))?;
        let source = provider["data_provider_global_metastore_id"]
            .as_str()
            .and_then(|g| metastore_by_global_id(s, g))
            .and_then(|id| s.metastore_data.get(id));
        let all = source
            .into_iter()
            .flat_map(|d| d.shares.keys())
            .filter(|share| share_source(s, &mid, &name, share).is_some())
            .map(|share| (share.clone(), json!({ "name": share })))
            .collect();
        let (items, next) = page.page(all);
        Ok(Json(list_answer("shares", items, next)))
    })
}

#[derive(Deserialize)]
pub struct ProviderSharePath {
    pub provider_name: String,
    pub share_name: String,
}

/// `/api/2.1/data-sharing/providers/{provider}/shares/{share}`: the tables of a share
/// granted to this metastore, as `Table`s (`name` and `schema` as shared). Only tables
/// are shared in the emulator, so `functions`, `notebooks` and `volumes` are empty.
pub async fn list_provider_share_assets(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<ProviderSharePath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let provider = p.provider_name.to_lowercase();
    let share = p.share_name.to_lowercase();
    let limit = match q.get("table_max_results") {
        None => None,
        Some(raw) => Some(raw.parse::<usize>().map_err(|_| {
            ApiError::invalid(format!(
                "table_max_results must be a non-negative integer, got {raw}"
            ))
        })?),
    };
    app.read(|s| {
        let mid = metastore_of(s, ctx.workspace_id)?;
        if !s
            .metastore_data
            .get(&mid)
            .is_some_and(|d| d.providers.contains_key(&provider))
        {
            return Err(provider_missing(&provider));
        }
        let (source_id, share_info) = share_source(s, &mid, &provider, &share)
            .ok_or_else(|| missing("SHARE_DOES_NOT_EXIST", "Share", &share))?;
        let source = &s.metastore_data[source_id];
        let tables: Vec<Value> = shared_tables(source, share_info)
            .into_iter()
            .filter_map(|(shared_as, full)| {
                let (schema, name) = shared_as.split_once('.')?;
                let info = &source.tables[&full].info;
                let mut t =
                    json!({"name": name, "schema": schema, "share": share, "id": info["table_id"]});
                copy_fields(&mut t, info, &["comment"]);
                Some(t)
            })
            .take(limit.filter(|n| *n > 0).unwrap_or(usize::MAX))
            .collect();
        Ok(Json(json!({
            "share": {"name": share},
            "tables": tables,
            "functions": [],
            "notebooks": [],
            "volumes": [],
        })))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metastores() -> EmuState {
        let mut s = EmuState::default();
        for (id, name, org) in [
            ("p", "East", Some("Acme Corp")),
            ("q", "west", None),
            ("r", "r", None),
        ] {
            let mut m = json!({"name": name, "region": "us-east-1", "cloud": "aws",
                               "owner": "admins", "global_metastore_id": format!("aws:us-east-1:{id}")});
            if let Some(org) = org {
                m["delta_sharing_organization_name"] = json!(org);
            }
            s.metastores.insert(id.into(), m);
        }
        s
    }

    #[test]
    fn a_provider_is_named_after_the_organization_or_the_metastore_once() {
        let mut s = metastores();
        ensure_provider(&mut s, "p", "r", "me");
        ensure_provider(&mut s, "p", "r", "me");
        ensure_provider(&mut s, "q", "r", "me");
        let names: Vec<&String> = s.metastore_data["r"].providers.keys().collect();
        assert_eq!(names, ["acme corp", "west"]);
        let acme = &s.metastore_data["r"].providers["acme corp"];
        assert_eq!(acme["data_provider_global_metastore_id"], "aws:us-east-1:p");
        assert_eq!(
            (acme["metastore_id"].clone(), acme["owner"].clone()),
            (json!("p"), json!("admins"))
        );
    }

    #[test]
    fn a_taken_provider_name_gets_a_suffix() {
        let mut s = metastores();
        s.metastore_data
            .entry("r".into())
            .or_default()
            .providers
            .insert(
                "west".into(),
                json!({"name": "west", "data_provider_global_metastore_id": "gcp:x:y"}),
            );
        ensure_provider(&mut s, "q", "r", "me");
        assert!(s.metastore_data["r"].providers.contains_key("west_2"));
    }

    #[test]
    fn sharing_identifiers_have_three_parts() {
        assert_eq!(
            parse_global_id("aws:us-west-2:abc").unwrap(),
            ("aws".into(), "us-west-2".into(), "abc".into())
        );
        assert!(parse_global_id("aws:us-west-2").is_err());
        assert!(parse_global_id("aws::abc").is_err());
    }
}
