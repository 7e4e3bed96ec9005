//! Workspaces: create, get, list, update (PATCH), delete.
//!
//! A workspace is PROVISIONING for `--provisioning-seconds`, then RUNNING, or FAILED
//! with a `workspace_status_message` when its network or credentials do not pass the
//! checks the real service runs. The outcome is decided when provisioning starts.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

use super::provisioning::{credential_problem, get_object, network_problems, Kind};
use crate::auth::AcctCtx;
use crate::errors::{ApiError, ApiResult};
use crate::lifecycle::{workspace_status, ProvisioningOutcome, WorkspaceProvisioning};
use crate::state::{
    copy_fields, now_ms, random_hex, random_numeric_id, App, Body, Fields, State as EmuState,
    WorkspaceRecord,
};

#[derive(Deserialize)]
pub struct WsPath {
    pub workspace_id: i64,
}

/// Deployment names become host names, so the real service restricts them to lower
/// case letters, digits and hyphens.
pub fn deployment_name_problem(name: &str) -> Option<String> {
    let valid = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    (!valid).then(|| {
        format!("Invalid deployment_name {name}: use 3 to 63 lower case letters, digits and hyphens, not starting or ending with a hyphen")
    })
}

/// The workspace object with its current status fields.
pub fn render(app: &App, rec: &WorkspaceRecord) -> Value {
    let status = workspace_status(&rec.provisioning, now_ms(), app.settings.provisioning_ms);
    let mut v = rec.info.clone();
    v["workspace_status"] = json!(status.status);
    v["workspace_status_message"] = json!(status.message);
    v
}

fn check_references(
    s: &mut EmuState,
    info: &Value,
    region: &str,
    workspace_id: i64,
) -> ApiResult<()> {
    for (field, kind) in [
        ("credentials_id", Kind::Credentials),
        ("storage_configuration_id", Kind::StorageConfigurations),
        ("network_id", Kind::Networks),
        ("private_access_settings_id", Kind::PrivateAccessSettings),
        (
            "managed_services_customer_managed_key_id",
            Kind::CustomerManagedKeys,
        ),
        ("storage_customer_managed_key_id", Kind::CustomerManagedKeys),
    ] {
        if let Some(id) = info[field].as_str() {
            let obj = get_object(s, kind, id).map_err(|e| match e.body {
                crate::errors::ErrorBody::Standard { message, .. } => ApiError::invalid(message),
                _ => e,
            })?;
            if let Some(r) = obj["region"].as_str() {
                if r != region {
                    return Err(ApiError::invalid(format!(
                        "{field} {id} is in region {r}, but the workspace is in {region}"
                    )));
                }
            }
            if kind == Kind::Networks {
                if let Some(other) = obj["workspace_id"].as_i64() {
                    if other != workspace_id {
                        return Err(ApiError::invalid(format!(
                            "Network configuration {id} is already used by workspace {other}"
                        )));
                    }
                }
            }
            if field.ends_with("customer_managed_key_id") {
                let use_case = if field.starts_with("managed_services") {
                    "MANAGED_SERVICES"
                } else {
                    "STORAGE"
                };
                let ok = obj["use_cases"]
                    .as_array()
                    .is_some_and(|u| u.iter().any(|x| x == use_case));
                if !ok {
                    return Err(ApiError::invalid(format!(
                        "Customer-managed key {id} does not have use case {use_case}"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Runs the provisioning-time checks and records their results on the network.
fn start_provisioning(s: &mut EmuState, info: &Value, workspace_id: i64) -> WorkspaceProvisioning {
    let mut failures = Vec::new();
    if let Some(cred) = info["credentials_id"]
        .as_str()
        .and_then(|id| s.credentials.get(id))
    {
        if let Some(p) = credential_problem(cred) {
            failures.push(p);
        }
    }
    if let Some(net_id) = info["network_id"].as_str() {
        if let Some(net) = s.networks.get_mut(net_id) {
            let problems = network_problems(net);
            net["workspace_id"] = json!(workspace_id);
            if problems.is_empty() {
                net["vpc_status"] = json!("VALID");
                net["error_messages"] = json!([]);
            } else {
                net["vpc_status"] = json!("BROKEN");
                failures.push(format!(
                    "Network validation failed for network {net_id}: {}",
                    problems
                        .iter()
                        .filter_map(|p| p["error_message"].as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
                net["error_messages"] = json!(problems);
            }
        }
    }
    WorkspaceProvisioning {
        started_ms: now_ms(),
        outcome: if failures.is_empty() {
            ProvisioningOutcome::Running
        } else {
            ProvisioningOutcome::Failed {
                message: failures.join(" "),
            }
        },
    }
}

const CREATE_FIELDS: &[&str] = &[
    "credentials_id",
    "storage_configuration_id",
    "network_id",
    "private_access_settings_id",
    "managed_services_customer_managed_key_id",
    "storage_customer_managed_key_id",
    "custom_tags",
    "network_connectivity_config_id",
];

pub async fn create(ctx: AcctCtx, State(app): State<App>, Body(b): Body) -> ApiResult<Json<Value>> {
    let name = b.req_str("workspace_name")?;
    let region = b.req_str("aws_region")?;
    let compute_mode = b.opt_str("compute_mode");
    if compute_mode.as_deref() != Some("SERVERLESS") {
        b.req_str("credentials_id")?;
        b.req_str("storage_configuration_id")?;
    }
    let pricing_tier = b
        .opt_str("pricing_tier")
        .unwrap_or_else(|| "PREMIUM".into());
    if ![
        "COMMUNITY_EDITION",
        "DEDICATED",
        "ENTERPRISE",
        "PREMIUM",
        "STANDARD",
        "UNKNOWN",
    ]
    .contains(&pricing_tier.as_str())
    {
        return Err(ApiError::invalid(format!(
            "Invalid pricing_tier: {pricing_tier}"
        )));
    }
    let deployment = match b.opt_str("deployment_name") {
        Some(d) => {
            if let Some(p) = deployment_name_problem(&d) {
                return Err(ApiError::invalid(p));
            }
            d
        }
        None => format!("dbc-{}-{}", random_hex(8), random_hex(4)),
    };
    app.mutate(|s| {
        if s.workspaces
            .values()
            .any(|w| w.info["deployment_name"] == json!(deployment))
        {
            return Err(ApiError::already_exists(format!(
                "Deployment name {deployment} is already in use"
            )));
        }
        let workspace_id = random_numeric_id(16);
        let mut info = json!({
            "workspace_id": workspace_id,
            "account_id": app.settings.account_id,
            "workspace_name": name,
            "deployment_name": deployment,
            "aws_region": region,
            "cloud": "aws",
            "pricing_tier": pricing_tier,
            "creation_time": now_ms(),
        });
        copy_fields(&mut info, &b, CREATE_FIELDS);
        if let Some(m) = &compute_mode {
            info["compute_mode"] = json!(m);
        }
        check_references(s, &info, &region, workspace_id)?;
        let provisioning = start_provisioning(s, &info, workspace_id);
        let creator: Option<i64> = ctx.service_principal_id.parse().ok();
        // The real service makes the creator an admin of the new workspace.
        if let Some(c) = creator {
            s.permission_assignments
                .entry(workspace_id)
                .or_default()
                .insert(c, vec!["ADMIN".into()]);
        }
        let rec = WorkspaceRecord {
            info,
            provisioning,
            creator_principal_id: creator,
        };
        let out = render(&app, &rec);
        s.workspaces.insert(workspace_id, rec);
        Ok(Json(out))
    })
}

pub fn get_record(s: &EmuState, id: i64) -> ApiResult<&WorkspaceRecord> {
    s.workspaces
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("Workspace {id} does not exist")))
}

pub async fn get(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<WsPath>,
) -> ApiResult<Json<Value>> {
    app.read(|s| get_record(s, p.workspace_id).map(|r| Json(render(&app, r))))
}

pub async fn list(_: AcctCtx, State(app): State<App>) -> Json<Value> {
    app.read(|s| {
        Json(Value::Array(
            s.workspaces.values().map(|r| render(&app, r)).collect(),
        ))
    })
}

/// Fields a PATCH may change; the ones that need reprovisioning are marked.
const UPDATABLE: &[(&str, bool)] = &[
    ("workspace_name", false),
    ("custom_tags", false),
    ("credentials_id", true),
    ("network_id", true),
    ("private_access_settings_id", true),
    ("managed_services_customer_managed_key_id", true),
    ("storage_customer_managed_key_id", true),
    ("storage_configuration_id", true),
    ("aws_region", true),
    ("network_connectivity_config_id", false),
];

pub async fn update(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<WsPath>,
    Query(q): Query<HashMap<String, String>>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let mask: Option<Vec<String>> = q.get("update_mask").map(|m| {
        m.split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect()
    });
    app.mutate(|s| {
        let rec = get_record(s, p.workspace_id)?.clone();
        let status =
            workspace_status(&rec.provisioning, now_ms(), app.settings.provisioning_ms).status;
        let mut info = rec.info.clone();
        let mut reprovision = false;
        for (field, needs_provisioning) in UPDATABLE {
            if mask.as_ref().is_some_and(|m| !m.iter().any(|f| f == field)) {
                continue;
            }
            let Some(v) = b.get(*field).filter(|v| !v.is_null()) else {
                continue;
            };
            if info[*field] == *v {
                continue;
            }
            if (*field == "storage_configuration_id" || *field == "aws_region")
                && status != "FAILED"
            {
                return Err(ApiError::invalid(format!(
                    "{field} can only be changed on a FAILED workspace"
                )));
            }
            info[*field] = v.clone();
            reprovision |= *needs_provisioning;
        }
        if let Some(m) = &mask {
            if let Some(bad) = m.iter().find(|f| !UPDATABLE.iter().any(|(u, _)| u == f)) {
                return Err(ApiError::invalid(format!("Field {bad} cannot be updated")));
            }
        }
        if status == "PROVISIONING" && reprovision {
            return Err(ApiError::invalid_state(
                "Workspace is being provisioned; retry when it is RUNNING or FAILED",
            ));
        }
        let region = info["aws_region"].as_str().unwrap_or_default().to_string();
        check_references(s, &info, &region, p.workspace_id)?;
        if reprovision {
            // Detach a network that is no longer used.
            if let Some(old) = rec.info["network_id"].as_str() {
                if info["network_id"].as_str() != Some(old) {
                    if let Some(n) = s.networks.get_mut(old) {
                        if let Some(o) = n.as_object_mut() {
                            o.remove("workspace_id");
                        }
                        n["vpc_status"] = json!("UNATTACHED");
                    }
                }
            }
        }
        let provisioning = if reprovision {
            start_provisioning(s, &info, p.workspace_id)
        } else {
            rec.provisioning.clone()
        };
        let new_rec = WorkspaceRecord {
            info,
            provisioning,
            creator_principal_id: rec.creator_principal_id,
        };
        let out = render(&app, &new_rec);
        s.workspaces.insert(p.workspace_id, new_rec);
        Ok(Json(out))
    })
}

pub async fn delete(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<WsPath>,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| {
        let rec = get_record(s, p.workspace_id)?.clone();
        let mut out = render(&app, &rec);
        out["workspace_status"] = json!("CANCELLING");
        out["workspace_status_message"] = json!("Workspace is being deleted.");
        if let Some(net_id) = rec.info["network_id"].as_str() {
            if let Some(n) = s.networks.get_mut(net_id) {
                if let Some(o) = n.as_object_mut() {
                    o.remove("workspace_id");
                }
                n["vpc_status"] = json!("UNATTACHED");
            }
        }
        s.workspaces.remove(&p.workspace_id);
        s.permission_assignments.remove(&p.workspace_id);
        s.metastore_assignments.remove(&p.workspace_id);
        s.workspace_data.remove(&p.workspace_id);
        s.oauth_tokens
            .retain(|_, t| t.scope != crate::state::TokenScope::Workspace(p.workspace_id));
        Ok(Json(out))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_names_are_host_labels() {
        assert!(deployment_name_problem("lakeops-dev").is_none());
        assert!(deployment_name_problem("Lakeops").is_some());
        assert!(deployment_name_problem("-x-").is_some());
        assert!(deployment_name_problem("ab").is_some());
        assert!(deployment_name_problem("a_b_c").is_some());
    }
}
