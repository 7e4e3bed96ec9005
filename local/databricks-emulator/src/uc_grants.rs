//! Grants: `/permissions/{securable_type}/{full_name}` (GET with `principal` and paging,
//! PATCH with `changes[]`) and `/effective-permissions/...` (with what is inherited from
//! the metastore, catalog and schema). Grants are stored in `MetastoreData::grants`
//! under `SECURABLE_TYPE/full_name`; views are `TABLE` securables, as in Databricks,
//! and share grants (`SHARE/<share>`, principal = recipient) are also what
//! `uc_data::share_source` reads to decide whether a share catalog can read.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::state::{App, Body, Fields, MetastoreData};
use crate::uc::{privilege_problem, Kind};
use crate::uc_common::{list_answer, missing, with_metastore, PageRequest};

/// The page length when a client asks for `max_results=0` (server-configured in
/// Databricks; not documented).
const GRANTS_PAGE: usize = 1000;

#[derive(Deserialize)]
pub struct SecurablePath {
    pub securable_type: String,
    pub full_name: String,
}

/// Principal -> privileges of one securable.
pub type Grants = BTreeMap<String, BTreeSet<String>>;

/// One `PermissionsChange`: principal, privileges to add, privileges to remove.
pub type Change = (String, Vec<String>, Vec<String>);

/// The `grants` key of a securable, once it is known to exist.
pub fn securable_key(
    d: &MetastoreData,
    metastore_id: &str,
    securable_type: &str,
    full_name: &str,
) -> ApiResult<String> {
    let t = securable_type.to_uppercase().replace('-', "_");
    let name = full_name.to_lowercase();
    let exists = match t.as_str() {
        "CATALOG" => d.catalogs.contains_key(&name),
        "SCHEMA" => d.schemas.contains_key(&name),
        "VOLUME" => d.volumes.contains_key(&name),
        "EXTERNAL_LOCATION" => d.external_locations.contains_key(&name),
        "STORAGE_CREDENTIAL" => d.storage_credentials.contains_key(&name),
        "METASTORE" => name == metastore_id,
        "TABLE" => d.tables.contains_key(&name),
        "FUNCTION" => d.functions.contains_key(&name),
        "SHARE" => d.shares.contains_key(&name),
        other => {
            return Err(ApiError::invalid(format!(
                "Unsupported securable type {other}"
            )))
        }
    };
    if exists {
        return Ok(format!("{t}/{name}"));
    }
    Err(match t.as_str() {
        "CATALOG" => Kind::Catalog.missing(&name),
        "SCHEMA" => Kind::Schema.missing(&name),
        "VOLUME" => Kind::Volume.missing(&name),
        "EXTERNAL_LOCATION" => Kind::ExternalLocation.missing(&name),
        "STORAGE_CREDENTIAL" => Kind::StorageCredential.missing(&name),
        "TABLE" => missing("TABLE_DOES_NOT_EXIST", "Table", &name),
        "FUNCTION" => missing("FUNCTION_DOES_NOT_EXIST", "Function", &name),
        "SHARE" => missing("SHARE_DOES_NOT_EXIST", "Share", &name),
        _ => ApiError::not_found(format!("Metastore '{name}' does not exist.")),
    })
}

/// `PrivilegeAssignment`s of a securable, by principal name, optionally of one principal.
fn assignments(grants: Option<&Grants>, principal: Option<&String>) -> Vec<(String, Value)> {
    grants
        .into_iter()
        .flatten()
        .filter(|(p, privs)| !privs.is_empty() && principal.is_none_or(|want| want == *p))
        .map(|(p, privs)| (p.clone(), json!({"principal": p, "privileges": privs})))
        .collect()
}

/// The GET answer: `privilege_assignments` (paged by principal) and `next_page_token`.
pub fn permissions_page(grants: Option<&Grants>, q: &HashMap<String, String>) -> ApiResult<Value> {
    let page = PageRequest::from_query(q, GRANTS_PAGE)?;
    let (items, next) = page.page(assignments(grants, q.get("principal")));
    Ok(list_answer("privilege_assignments", items, next))
}

pub async fn get_permissions(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<SecurablePath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        let key = securable_key(d, mid, &p.securable_type, &p.full_name)?;
        permissions_page(d.grants.get(&key), &q).map(Json)
    })
}

/// Parses `changes[]` of a PATCH body.
pub fn parse_changes(b: &Value) -> ApiResult<Vec<Change>> {
    let mut parsed = Vec::new();
    for c in b["changes"].as_array().into_iter().flatten() {
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
    Ok(parsed)
}

/// A share is granted to recipients of its metastore, and only `SELECT` exists on it.
pub fn check_share_changes(d: &MetastoreData, changes: &[Change]) -> ApiResult<()> {
    for (principal, add, remove) in changes {
        if !d.recipients.contains_key(&principal.to_lowercase()) {
            return Err(missing("RECIPIENT_DOES_NOT_EXIST", "Recipient", principal));
        }
        if let Some(p) = add.iter().chain(remove).find(|p| *p != "SELECT") {
            return Err(ApiError::invalid(format!(
                "Privilege {p} is not applicable to a share; only SELECT is"
            )));
        }
    }
    Ok(())
}

/// Applies `changes` to a securable's grants. Share principals (recipients) are stored
/// in lower case, as recipient names are.
pub fn apply_changes(grants: &mut Grants, changes: Vec<Change>, lower_principals: bool) {
    for (principal, add, remove) in changes {
        let principal = if lower_principals {
            principal.to_lowercase()
        } else {
            principal
        };
        let set = grants.entry(principal.clone()).or_default();
        set.extend(add);
        for r in remove {
            set.remove(&r);
        }
        if set.is_empty() {
            grants.remove(&principal);
        }
    }
}

pub async fn update_permissions(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<SecurablePath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let changes = parse_changes(&b)?;
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        let key = securable_key(d, mid, &p.securable_type, &p.full_name)?;
        let is_share = key.starts_with("SHARE/");
        if is_share {
            check_share_changes(d, &changes)?;
        }
        let grants = d.grants.entry(key).or_default();
        apply_changes(grants, changes, is_share);
        let all: Vec<Value> = assignments(Some(grants), None)
            .into_iter()
            .map(|x| x.1)
            .collect();
        Ok(Json(json!({ "privilege_assignments": all })))
    })
}

/// The securables a grant on `key` inherits from, nearest first, ending with the
/// metastore: a table inherits from its schema and catalog.
fn ancestors(key: &str, metastore_id: &str) -> Vec<(String, String)> {
    let Some((t, name)) = key.split_once('/') else {
        return vec![];
    };
    let mut out = Vec::new();
    let parts: Vec<&str> = name.split('.').collect();
    let in_catalog = matches!(t, "SCHEMA" | "TABLE" | "FUNCTION" | "VOLUME");
    if in_catalog && parts.len() == 3 {
        out.push(("SCHEMA".to_string(), format!("{}.{}", parts[0], parts[1])));
    }
    if in_catalog {
        out.push(("CATALOG".to_string(), parts[0].to_string()));
    }
    if t != "METASTORE" {
        out.push(("METASTORE".to_string(), metastore_id.to_string()));
    }
    out
}

/// `EffectivePrivilegeAssignment`s: the securable's own privileges, then inherited ones
/// with `inherited_from_type` / `inherited_from_name`.
fn effective(d: &MetastoreData, key: &str, metastore_id: &str) -> Vec<(String, Value)> {
    let mut by_principal: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (p, privs) in d.grants.get(key).into_iter().flatten() {
        for privilege in privs {
            by_principal
                .entry(p.clone())
                .or_default()
                .push(json!({ "privilege": privilege }));
        }
    }
    for (t, name) in ancestors(key, metastore_id) {
        for (p, privs) in d.grants.get(&format!("{t}/{name}")).into_iter().flatten() {
            for privilege in privs {
                by_principal.entry(p.clone()).or_default().push(json!({
                    "privilege": privilege,
                    "inherited_from_type": t,
                    "inherited_from_name": name,
                }));
            }
        }
    }
    by_principal
        .into_iter()
        .map(|(p, privileges)| (p.clone(), json!({"principal": p, "privileges": privileges})))
        .collect()
}

pub async fn get_effective_permissions(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<SecurablePath>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    with_metastore(&app, ctx.workspace_id, |d, mid| {
        let key = securable_key(d, mid, &p.securable_type, &p.full_name)?;
        let page = PageRequest::from_query(&q, GRANTS_PAGE)?;
        let all = effective(d, &key, mid)
            .into_iter()
            .filter(|(principal, _)| q.get("principal").is_none_or(|want| want == principal))
            .collect();
        let (items, next) = page.page(all);
        Ok(Json(list_answer("privilege_assignments", items, next)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_inherits_from_schema_catalog_and_metastore() {
        let mut d = MetastoreData::default();
        let grant = |d: &mut MetastoreData, key: &str, who: &str, p: &str| {
            d.grants
                .entry(key.into())
                .or_default()
                .entry(who.into())
                .or_default()
                .insert(p.into());
        };
        grant(&mut d, "TABLE/c.s.t", "ana", "SELECT");
        grant(&mut d, "SCHEMA/c.s", "ana", "USE_SCHEMA");
        grant(&mut d, "CATALOG/c", "bo", "USE_CATALOG");
        grant(&mut d, "METASTORE/m", "bo", "CREATE_CATALOG");
        grant(&mut d, "SCHEMA/c.other", "cy", "USE_SCHEMA");
        let got: BTreeMap<String, Value> = effective(&d, "TABLE/c.s.t", "m").into_iter().collect();
        assert_eq!(got.len(), 2, "cy's grant is on another schema");
        assert_eq!(got["ana"]["privileges"][0], json!({"privilege": "SELECT"}));
        assert_eq!(got["ana"]["privileges"][1]["inherited_from_name"], "c.s");
        assert_eq!(got["bo"]["privileges"][0]["inherited_from_type"], "CATALOG");
        assert_eq!(
            got["bo"]["privileges"][1]["inherited_from_type"],
            "METASTORE"
        );
    }

    #[test]
    fn share_grants_need_a_recipient_and_select() {
        let mut d = MetastoreData::default();
        d.recipients.insert("r".into(), json!({"name": "r"}));
        assert!(check_share_changes(&d, &[("R".into(), vec!["SELECT".into()], vec![])]).is_ok());
        assert!(check_share_changes(&d, &[("x".into(), vec!["SELECT".into()], vec![])]).is_err());
        assert!(check_share_changes(&d, &[("r".into(), vec!["MODIFY".into()], vec![])]).is_err());
        let mut g = Grants::new();
        apply_changes(
            &mut g,
            vec![("R".into(), vec!["SELECT".into()], vec![])],
            true,
        );
        assert!(g["r"].contains("SELECT"));
        apply_changes(
            &mut g,
            vec![("r".into(), vec![], vec!["SELECT".into()])],
            true,
        );
        assert!(g.is_empty());
    }
}
