//! Account provisioning objects: credentials, storage configurations, networks, VPC
//! endpoints, private access settings and customer-managed keys. Their lists are bare
//! JSON arrays, as in the real API.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::auth::AcctCtx;
use crate::errors::{ApiError, ApiResult};
use crate::faults::{credential_failure, credential_failure_error};
use crate::state::{
    copy_fields, new_uuid, now_ms, random_hex, App, Body, Fields, State as EmuState,
};

#[derive(Deserialize)]
pub struct IdPath {
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Credentials,
    StorageConfigurations,
    Networks,
    VpcEndpoints,
    PrivateAccessSettings,
    CustomerManagedKeys,
}

impl Kind {
    fn map(self, s: &mut EmuState) -> &mut BTreeMap<String, Value> {
        match self {
            Kind::Credentials => &mut s.credentials,
            Kind::StorageConfigurations => &mut s.storage_configurations,
            Kind::Networks => &mut s.networks,
            Kind::VpcEndpoints => &mut s.vpc_endpoints,
            Kind::PrivateAccessSettings => &mut s.private_access_settings,
            Kind::CustomerManagedKeys => &mut s.customer_managed_keys,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Credentials => "Credential configuration",
            Kind::StorageConfigurations => "Storage configuration",
            Kind::Networks => "Network configuration",
            Kind::VpcEndpoints => "VPC endpoint configuration",
            Kind::PrivateAccessSettings => "Private access settings",
            Kind::CustomerManagedKeys => "Customer-managed key configuration",
        }
    }

    /// Workspace fields that reference this kind, to refuse deleting objects in use.
    fn workspace_fields(self) -> &'static [&'static str] {
        match self {
            Kind::Credentials => &["credentials_id"],
            Kind::StorageConfigurations => &["storage_configuration_id"],
            Kind::Networks => &["network_id"],
            Kind::VpcEndpoints => &[],
            Kind::PrivateAccessSettings => &["private_access_settings_id"],
            Kind::CustomerManagedKeys => &[
                "managed_services_customer_managed_key_id",
                "storage_customer_managed_key_id",
            ],
        }
    }
}

pub fn get_object(s: &mut EmuState, kind: Kind, id: &str) -> ApiResult<Value> {
    kind.map(s)
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("{} {id} does not exist", kind.label())))
}

fn list(app: &App, kind: Kind) -> Json<Value> {
    let mut guard = app.lock();
    Json(Value::Array(
        kind.map(&mut guard).values().cloned().collect(),
    ))
}

fn delete(app: &App, kind: Kind, id: &str) -> ApiResult<Json<Value>> {
    app.mutate(|s| {
        let obj = get_object(s, kind, id)?;
        let users: Vec<String> = s
            .workspaces
            .values()
            .filter(|w| {
                kind.workspace_fields()
                    .iter()
                    .any(|f| w.info[*f].as_str() == Some(id))
            })
            .map(|w| {
                w.info["workspace_name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        let used_by_pas = matches!(kind, Kind::VpcEndpoints)
            && s.private_access_settings.values().any(|p| {
                p["allowed_vpc_endpoint_ids"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|v| v.as_str() == Some(id)))
            });
        if !users.is_empty() || used_by_pas {
            return Err(ApiError::invalid_state(format!(
                "{} {id} cannot be deleted because it is in use{}",
                kind.label(),
                if users.is_empty() {
                    String::new()
                } else {
                    format!(" by workspace(s) {}", users.join(", "))
                }
            )));
        }
        kind.map(s).remove(id);
        Ok(Json(obj))
    })
}

/// Credential, storage and network configuration names are unique in an account:
/// the real service refuses a second one with "Credential configuration name … already
/// exists in this account. Try again with a unique name." (the wording Databricks
/// answers for credentials; the same for the other two kinds).
fn name_taken(s: &mut EmuState, kind: Kind, name_field: &str, name: &str) -> ApiResult<()> {
    if kind
        .map(s)
        .values()
        .any(|o| o[name_field].as_str() == Some(name))
    {
        return Err(ApiError::already_exists(format!(
            "{} name {name} already exists in this account. Try again with a unique name.",
            kind.label()
        )));
    }
    Ok(())
}

fn base(app: &App, id_field: &str, id: &str) -> Value {
    json!({
        id_field: id,
        "account_id": app.settings.account_id,
        "creation_time": now_ms(),
    })
}

fn check_region(region: &str) -> ApiResult<()> {
    let ok = region.split('-').count() >= 3
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("Invalid AWS region: {region}")))
    }
}

// ---------------------------------------------------------------- credentials

pub async fn create_credentials(
    _: AcctCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = b.req_str("credentials_name")?;
    let role_arn = b
        .pointer("/aws_credentials/sts_role/role_arn")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing_field("aws_credentials.sts_role.role_arn"))?
        .to_string();
    app.mutate(|s| {
        if let Some(plain) = credential_failure(&mut s.faults, &mut s.fault_counters) {
            return Err(credential_failure_error(plain));
        }
        if !role_arn.starts_with("arn:aws:iam::") || !role_arn.contains(":role/") {
            return Err(credential_failure_error(false));
        }
        name_taken(s, Kind::Credentials, "credentials_name", &name)?;
        let id = new_uuid();
        let mut obj = base(&app, "credentials_id", &id);
        obj["credentials_name"] = json!(name);
        obj["aws_credentials"] = json!({"sts_role": {"role_arn": role_arn}});
        s.credentials.insert(id, obj.clone());
        Ok(Json(obj))
    })
}

pub async fn list_credentials(_: AcctCtx, State(app): State<App>) -> Json<Value> {
    list(&app, Kind::Credentials)
}

pub async fn get_credentials(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| get_object(s, Kind::Credentials, &p.id).map(Json))
}

pub async fn delete_credentials(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    delete(&app, Kind::Credentials, &p.id)
}

/// A role ARN that an AWS account could actually own: 12-digit account, role resource.
pub fn credential_problem(cred: &Value) -> Option<String> {
    let arn = cred
        .pointer("/aws_credentials/sts_role/role_arn")
        .and_then(Value::as_str)
        .unwrap_or("");
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "iam"
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5]
            .strip_prefix("role/")
            .is_some_and(|n| !n.is_empty());
    (!valid).then(|| format!("Credentials validation failed: cannot assume role {arn}. Check the role ARN and its trust policy."))
}

// ---------------------------------------------------------------- storage configurations

pub async fn create_storage(
    _: AcctCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = b.req_str("storage_configuration_name")?;
    let bucket = b
        .pointer("/root_bucket_info/bucket_name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing_field("root_bucket_info.bucket_name"))?
        .to_string();
    app.mutate(|s| {
        name_taken(
            s,
            Kind::StorageConfigurations,
            "storage_configuration_name",
            &name,
        )?;
        let id = new_uuid();
        let mut obj = base(&app, "storage_configuration_id", &id);
        obj["storage_configuration_name"] = json!(name);
        obj["root_bucket_info"] = json!({"bucket_name": bucket});
        copy_fields(&mut obj, &b, &["role_arn"]);
        s.storage_configurations.insert(id, obj.clone());
        Ok(Json(obj))
    })
}

pub async fn list_storage(_: AcctCtx, State(app): State<App>) -> Json<Value> {
    list(&app, Kind::StorageConfigurations)
}

pub async fn get_storage(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| get_object(s, Kind::StorageConfigurations, &p.id).map(Json))
}

pub async fn delete_storage(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    delete(&app, Kind::StorageConfigurations, &p.id)
}

// ---------------------------------------------------------------- networks

/// What the real service checks when a network is attached to a workspace.
/// Returns the `error_messages` entries (`error_type`, `error_message`).
pub fn network_problems(net: &Value) -> Vec<Value> {
    let mut problems = Vec::new();
    let vpc = net["vpc_id"].as_str().unwrap_or("");
    if !vpc.starts_with("vpc-") {
        problems.push(json!({"error_type": "vpc", "error_message": format!("VPC {vpc} is not a valid VPC id")}));
    }
    let subnets: Vec<&str> = net["subnet_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if subnets.len() < 2 {
        problems.push(json!({"error_type": "subnet", "error_message": "At least two subnets in different availability zones are required"}));
    }
    for s in subnets.iter().filter(|s| !s.starts_with("subnet-")) {
        problems.push(json!({"error_type": "subnet", "error_message": format!("Subnet {s} is not a valid subnet id")}));
    }
    let sgs: Vec<&str> = net["security_group_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if sgs.is_empty() || sgs.len() > 5 {
        problems.push(json!({"error_type": "securityGroup", "error_message": "Between one and five security groups are required"}));
    }
    for g in sgs.iter().filter(|g| !g.starts_with("sg-")) {
        problems.push(json!({"error_type": "securityGroup", "error_message": format!("Security group {g} is not a valid security group id")}));
    }
    problems
}

pub async fn create_network(
    _: AcctCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = b.req_str("network_name")?;
    let vpc_id = b.req_str("vpc_id")?;
    let subnets = b.str_list("subnet_ids")?;
    let sgs = b.str_list("security_group_ids")?;
    if subnets.is_empty() {
        return Err(ApiError::missing_field("subnet_ids"));
    }
    if sgs.is_empty() {
        return Err(ApiError::missing_field("security_group_ids"));
    }
    app.mutate(|s| {
        name_taken(s, Kind::Networks, "network_name", &name)?;
        if let Some(Value::Object(vpce)) = b.get("vpc_endpoints") {
            for ids in vpce.values() {
                for id in ids
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !s.vpc_endpoints.contains_key(id) {
                        return Err(ApiError::invalid(format!(
                            "VPC endpoint configuration {id} does not exist"
                        )));
                    }
                }
            }
        }
        let id = new_uuid();
        let mut obj = base(&app, "network_id", &id);
        obj["network_name"] = json!(name);
        obj["vpc_id"] = json!(vpc_id);
        obj["subnet_ids"] = json!(subnets);
        obj["security_group_ids"] = json!(sgs);
        obj["vpc_endpoints"] = b.get("vpc_endpoints").cloned().unwrap_or_else(|| json!({}));
        obj["vpc_status"] = json!("UNATTACHED");
        obj["error_messages"] = json!([]);
        obj["warning_messages"] = json!([]);
        s.networks.insert(id, obj.clone());
        Ok(Json(obj))
    })
}

pub async fn list_networks(_: AcctCtx, State(app): State<App>) -> Json<Value> {
    list(&app, Kind::Networks)
}

pub async fn get_network(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| get_object(s, Kind::Networks, &p.id).map(Json))
}

pub async fn delete_network(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    delete(&app, Kind::Networks, &p.id)
}

// ---------------------------------------------------------------- VPC endpoints

pub async fn create_vpc_endpoint(
    _: AcctCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let name = b.req_str("vpc_endpoint_name")?;
    let aws_id = b.req_str("aws_vpc_endpoint_id")?;
    let region = b.req_str("region")?;
    check_region(&region)?;
    if !aws_id.starts_with("vpce-") {
        return Err(ApiError::invalid(format!(
            "Invalid AWS VPC endpoint id: {aws_id}"
        )));
    }
    app.mutate(|s| {
        if s.vpc_endpoints.values().any(|v| v["aws_vpc_endpoint_id"] == json!(aws_id)) {
            return Err(ApiError::already_exists(format!("VPC endpoint {aws_id} is already registered")));
        }
        let id = new_uuid();
        let mut obj = json!({
            "vpc_endpoint_id": id,
            "account_id": app.settings.account_id,
            "vpc_endpoint_name": name,
            "aws_vpc_endpoint_id": aws_id,
            "aws_endpoint_service_id": format!("com.amazonaws.vpce.{region}.vpce-svc-{}", random_hex(17)),
            "region": region,
            "state": "available",
            "use_case": "WORKSPACE_ACCESS",
        });
        copy_fields(&mut obj, &b, &["gcp_vpc_endpoint_info"]);
        s.vpc_endpoints.insert(id, obj.clone());
        Ok(Json(obj))
    })
}

pub async fn list_vpc_endpoints(_: AcctCtx, State(app): State<App>) -> Json<Value> {
    list(&app, Kind::VpcEndpoints)
}

pub async fn get_vpc_endpoint(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| get_object(s, Kind::VpcEndpoints, &p.id).map(Json))
}

pub async fn delete_vpc_endpoint(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    delete(&app, Kind::VpcEndpoints, &p.id)
}

// ---------------------------------------------------------------- private access settings

fn private_access_object(app: &App, s: &EmuState, id: &str, b: &Value) -> ApiResult<Value> {
    let name = b.req_str("private_access_settings_name")?;
    let region = b.req_str("region")?;
    check_region(&region)?;
    let level = b
        .opt_str("private_access_level")
        .unwrap_or_else(|| "ACCOUNT".into());
    if level != "ACCOUNT" && level != "ENDPOINT" {
        return Err(ApiError::invalid(format!(
            "Invalid private_access_level: {level}"
        )));
    }
    let allowed = b.str_list("allowed_vpc_endpoint_ids")?;
    for v in &allowed {
        if !s.vpc_endpoints.contains_key(v) {
            return Err(ApiError::invalid(format!(
                "VPC endpoint configuration {v} does not exist"
            )));
        }
    }
    Ok(json!({
        "private_access_settings_id": id,
        "account_id": app.settings.account_id,
        "private_access_settings_name": name,
        "region": region,
        "public_access_enabled": b.opt_bool("public_access_enabled")?.unwrap_or(false),
        "private_access_level": level,
        "allowed_vpc_endpoint_ids": allowed,
    }))
}

pub async fn create_pas(
    _: AcctCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| {
        let id = new_uuid();
        let obj = private_access_object(&app, s, &id, &b)?;
        s.private_access_settings.insert(id, obj.clone());
        Ok(Json(obj))
    })
}

/// PUT replaces the whole object. Newer SDKs wrap the fields in
/// `customer_facing_private_access_settings`; older ones send them at the top level.
pub async fn replace_pas(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let fields = b
        .get("customer_facing_private_access_settings")
        .cloned()
        .unwrap_or(b);
    app.mutate(|s| {
        get_object(s, Kind::PrivateAccessSettings, &p.id)?;
        let obj = private_access_object(&app, s, &p.id, &fields)?;
        s.private_access_settings.insert(p.id.clone(), obj.clone());
        Ok(Json(obj))
    })
}

pub async fn list_pas(_: AcctCtx, State(app): State<App>) -> Json<Value> {
    list(&app, Kind::PrivateAccessSettings)
}

pub async fn get_pas(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| get_object(s, Kind::PrivateAccessSettings, &p.id).map(Json))
}

pub async fn delete_pas(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    delete(&app, Kind::PrivateAccessSettings, &p.id)
}

// ---------------------------------------------------------------- customer-managed keys

pub async fn create_cmk(
    _: AcctCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let key_arn = b
        .pointer("/aws_key_info/key_arn")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing_field("aws_key_info.key_arn"))?
        .to_string();
    let parts: Vec<&str> = key_arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "kms" || !parts[5].starts_with("key/") {
        return Err(ApiError::invalid(format!("Invalid KMS key ARN: {key_arn}")));
    }
    let use_cases = b.str_list("use_cases")?;
    if use_cases.is_empty() {
        return Err(ApiError::missing_field("use_cases"));
    }
    if let Some(bad) = use_cases
        .iter()
        .find(|u| *u != "MANAGED_SERVICES" && *u != "STORAGE")
    {
        return Err(ApiError::invalid(format!("Invalid use case: {bad}")));
    }
    let mut key_info = json!({"key_arn": key_arn, "key_region": parts[3]});
    if let Some(info) = b.get("aws_key_info") {
        copy_fields(
            &mut key_info,
            info,
            &["key_alias", "reuse_key_for_cluster_volumes"],
        );
    }
    app.mutate(|s| {
        let id = new_uuid();
        let mut obj = base(&app, "customer_managed_key_id", &id);
        obj["aws_key_info"] = key_info;
        obj["use_cases"] = json!(use_cases);
        s.customer_managed_keys.insert(id, obj.clone());
        Ok(Json(obj))
    })
}

pub async fn list_cmks(_: AcctCtx, State(app): State<App>) -> Json<Value> {
    list(&app, Kind::CustomerManagedKeys)
}

pub async fn get_cmk(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    app.mutate(|s| get_object(s, Kind::CustomerManagedKeys, &p.id).map(Json))
}

pub async fn delete_cmk(
    _: AcctCtx,
    State(app): State<App>,
    Path(p): Path<IdPath>,
) -> ApiResult<Json<Value>> {
    delete(&app, Kind::CustomerManagedKeys, &p.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_checks_name_each_problem() {
        let good = json!({"vpc_id": "vpc-1", "subnet_ids": ["subnet-a", "subnet-b"], "security_group_ids": ["sg-1"]});
        assert!(network_problems(&good).is_empty());
        let bad =
            json!({"vpc_id": "x", "subnet_ids": ["subnet-a"], "security_group_ids": ["nope"]});
        let types: Vec<String> = network_problems(&bad)
            .iter()
            .map(|p| p["error_type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types, vec!["vpc", "subnet", "securityGroup"]);
    }

    #[test]
    fn configuration_names_are_unique_per_kind() {
        let mut s = EmuState::default();
        s.credentials
            .insert("c1".into(), json!({"credentials_name": "prod"}));
        let err = name_taken(&mut s, Kind::Credentials, "credentials_name", "prod").unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::CONFLICT);
        assert_eq!(
            err.body,
            crate::errors::ErrorBody::Standard {
                error_code: json!("RESOURCE_ALREADY_EXISTS"),
                message: "Credential configuration name prod already exists in this account. Try again with a unique name.".into(),
            }
        );
        assert!(name_taken(&mut s, Kind::Credentials, "credentials_name", "dev").is_ok());
        // Another kind may use the same name.
        assert!(name_taken(&mut s, Kind::Networks, "network_name", "prod").is_ok());
    }

    #[test]
    fn credential_arns_must_name_a_role_in_a_real_account() {
        let cred = |arn: &str| json!({"aws_credentials": {"sts_role": {"role_arn": arn}}});
        assert!(credential_problem(&cred("arn:aws:iam::123456789012:role/x")).is_none());
        assert!(credential_problem(&cred("arn:aws:iam::1234:role/x")).is_some());
        assert!(credential_problem(&cred("arn:aws:iam::123456789012:user/x")).is_some());
    }
}
