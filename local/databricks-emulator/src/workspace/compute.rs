//! Clusters 2.1, cluster policies, instance pools, instance profiles and global init
//! scripts.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::lifecycle::{cluster_settled_at, cluster_state, ClusterPhase, ClusterPhaseKind};
use crate::state::{
    copy_fields, now_ms, random_alnum_lower, random_hex, rfc3339, App, Body, ClusterRecord, Fields,
    State as EmuState,
};

/// `MMDD-HHMMSS-` prefix of cluster and pool ids, from the creation time.
fn time_prefix(ms: i64) -> String {
    let t = rfc3339(ms); // YYYY-MM-DDTHH:MM:SSZ
    format!(
        "{}{}-{}{}{}",
        &t[5..7],
        &t[8..10],
        &t[11..13],
        &t[14..16],
        &t[17..19]
    )
}

fn upper_hex_id() -> String {
    random_hex(16).to_uppercase()
}

// ---------------------------------------------------------------- clusters

/// Fields of a cluster spec that the API echoes back.
const SPEC_FIELDS: &[&str] = &[
    "cluster_name",
    "spark_version",
    "node_type_id",
    "driver_node_type_id",
    "num_workers",
    "autoscale",
    "autotermination_minutes",
    "aws_attributes",
    "spark_conf",
    "spark_env_vars",
    "custom_tags",
    "ssh_public_keys",
    "cluster_log_conf",
    "init_scripts",
    "instance_pool_id",
    "driver_instance_pool_id",
    "policy_id",
    "enable_elastic_disk",
    "enable_local_disk_encryption",
    "data_security_mode",
    "single_user_name",
    "runtime_engine",
    "is_single_node",
    "kind",
    "use_ml_runtime",
    "workload_type",
    "docker_image",
    "apply_policy_default_values",
];

/// Checks a cluster spec the way the real service does, including both single-node
/// forms: the legacy one (`num_workers: 0` with the `singleNode` profile) and the new
/// one (`kind: CLASSIC_PREVIEW` with `is_single_node: true`).
pub fn cluster_spec_problem(spec: &Value) -> Option<String> {
    if spec["spark_version"].as_str().is_none_or(str::is_empty) {
        return Some("Missing required field: spark_version".into());
    }
    let has_node_type = spec["node_type_id"].as_str().is_some_and(|s| !s.is_empty())
        || spec["instance_pool_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
        || spec["policy_id"].as_str().is_some_and(|s| !s.is_empty());
    if !has_node_type {
        return Some("Missing required field: node_type_id (or instance_pool_id)".into());
    }
    let num_workers = spec["num_workers"].as_i64();
    let autoscale = spec.get("autoscale").filter(|a| !a.is_null());
    if num_workers.is_some_and(|n| n < 0) {
        return Some("num_workers must not be negative".into());
    }
    if num_workers.is_some_and(|n| n > 0) && autoscale.is_some() {
        return Some("Only one of num_workers and autoscale may be set".into());
    }
    if let Some(a) = autoscale {
        let (min, max) = (
            a["min_workers"].as_i64().unwrap_or(0),
            a["max_workers"].as_i64().unwrap_or(0),
        );
        if min < 0 || max < 1 || max < min {
            return Some(format!(
                "Invalid autoscale range: min_workers {min}, max_workers {max}"
            ));
        }
    }
    if spec["is_single_node"].as_bool() == Some(true) {
        if spec["kind"].as_str() != Some("CLASSIC_PREVIEW") {
            return Some("is_single_node can only be used with kind CLASSIC_PREVIEW".into());
        }
        if num_workers.is_some_and(|n| n > 0) || autoscale.is_some() {
            return Some("A single node cluster cannot have workers".into());
        }
    }
    let profile = spec
        .pointer("/spark_conf/spark.databricks.cluster.profile")
        .and_then(Value::as_str);
    if profile == Some("singleNode") && (num_workers.is_some_and(|n| n > 0) || autoscale.is_some())
    {
        return Some("A cluster with the singleNode profile must have num_workers 0".into());
    }
    if let Some(k) = spec["kind"].as_str() {
        if k != "CLASSIC_PREVIEW" {
            return Some(format!("Invalid kind {k}"));
        }
    }
    None
}

fn render_cluster(app: &App, rec: &ClusterRecord) -> Value {
    let now = now_ms();
    let delay = app.settings.cluster_ms;
    let state = cluster_state(rec.phase, now, delay);
    let mut v = rec.info.clone();
    v["state"] = json!(state);
    match state {
        "PENDING" => {
            v["state_message"] =
                json!("Finding instances for new nodes, acquiring more instances if necessary")
        }
        "RUNNING" => {
            v["state_message"] = json!("");
            v["spark_context_id"] = json!(
                rec.info["cluster_id"]
                    .as_str()
                    .map(|s| s.len() as i64)
                    .unwrap_or(1)
                    * 1_000_003
            );
            v["last_restarted_time"] = json!(cluster_settled_at(rec.phase, delay));
        }
        "TERMINATING" => v["state_message"] = json!("Terminating the cluster"),
        _ => {
            v["state_message"] = json!("Termination requested by user");
            v["terminated_time"] = json!(cluster_settled_at(rec.phase, delay));
        }
    }
    if rec.phase.kind == ClusterPhaseKind::Starting {
        if let Some(o) = v.as_object_mut() {
            o.remove("termination_reason");
        }
    }
    v
}

fn cluster_id_from(b: &Value, q: Option<&HashMap<String, String>>) -> ApiResult<String> {
    q.and_then(|q| q.get("cluster_id").cloned())
        .or_else(|| b.opt_str("cluster_id"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing_field("cluster_id"))
}

fn cluster_missing(id: &str) -> ApiError {
    // The real Clusters API answers unknown ids with 400 INVALID_PARAMETER_VALUE.
    ApiError::invalid(format!("Cluster {id} does not exist"))
}

fn check_refs(s: &EmuState, ws: i64, spec: &Value) -> ApiResult<()> {
    let d = s.workspace_data.get(&ws);
    for f in ["instance_pool_id", "driver_instance_pool_id"] {
        if let Some(id) = spec[f].as_str() {
            if !d.is_some_and(|d| d.instance_pools.contains_key(id)) {
                return Err(ApiError::invalid(format!(
                    "Instance pool {id} does not exist"
                )));
            }
        }
    }
    if let Some(id) = spec["policy_id"].as_str() {
        if !d.is_some_and(|d| d.cluster_policies.contains_key(id)) {
            return Err(ApiError::invalid(format!(
                "Cluster policy {id} does not exist"
            )));
        }
    }
    if let Some(arn) = spec
        .pointer("/aws_attributes/instance_profile_arn")
        .and_then(Value::as_str)
    {
        if !d.is_some_and(|d| d.instance_profiles.contains_key(arn)) {
            return Err(ApiError::invalid(format!(
                "Instance profile {arn} is not registered in this workspace"
            )));
        }
    }
    Ok(())
}

pub async fn create_cluster(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    if let Some(p) = cluster_spec_problem(&b) {
        return Err(ApiError::invalid(p));
    }
    app.mutate(|s| {
        check_refs(s, ctx.workspace_id, &b)?;
        let now = now_ms();
        let id = format!("{}-{}", time_prefix(now), random_alnum_lower(8));
        let mut spec = json!({});
        copy_fields(&mut spec, &b, SPEC_FIELDS);
        let mut info = spec.clone();
        info["cluster_id"] = json!(id);
        info["spec"] = spec;
        info["creator_user_name"] = json!(ctx.principal_name);
        info["cluster_source"] = json!("API");
        info["start_time"] = json!(now);
        if info.get("num_workers").is_none() && info.get("autoscale").is_none() {
            info["num_workers"] = json!(0);
        }
        if info.get("autotermination_minutes").is_none() {
            info["autotermination_minutes"] = json!(120);
        }
        if info.get("enable_elastic_disk").is_none() {
            info["enable_elastic_disk"] = json!(true);
        }
        if info.get("driver_node_type_id").is_none() {
            if let Some(n) = info.get("node_type_id").cloned() {
                info["driver_node_type_id"] = n;
            }
        }
        info["default_tags"] = json!({
            "Vendor": "Databricks",
            "Creator": ctx.principal_name,
            "ClusterName": b["cluster_name"].as_str().unwrap_or_default(),
            "ClusterId": id,
        });
        let rec = ClusterRecord {
            info,
            phase: ClusterPhase {
                kind: ClusterPhaseKind::Starting,
                since_ms: now,
            },
        };
        s.ws_data(ctx.workspace_id).clusters.insert(id.clone(), rec);
        Ok(Json(json!({"cluster_id": id})))
    })
}

pub async fn get_cluster(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let id = cluster_id_from(&json!({}), Some(&q))?;
    app.read(|s| {
        s.workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.clusters.get(&id))
            .map(|r| Json(render_cluster(&app, r)))
            .ok_or_else(|| cluster_missing(&id))
    })
}

pub async fn list_clusters(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let states: Option<Vec<String>> = q
        .get("filter_by.cluster_states")
        .map(|s| s.split(',').map(str::to_string).collect());
    app.read(|s| {
        let items: Vec<Value> = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| {
                d.clusters
                    .values()
                    .map(|r| render_cluster(&app, r))
                    .filter(|c| {
                        states
                            .as_ref()
                            .is_none_or(|st| st.iter().any(|x| c["state"] == json!(x)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Json(json!({"clusters": items}))
    })
}

pub async fn start_cluster(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let id = cluster_id_from(&b, None)?;
    app.mutate(|s| {
        let delay = app.settings.cluster_ms;
        let rec = s
            .ws_data(ctx.workspace_id)
            .clusters
            .get_mut(&id)
            .ok_or_else(|| cluster_missing(&id))?;
        let now = now_ms();
        let state = cluster_state(rec.phase, now, delay);
        if state != "TERMINATED" {
            return Err(ApiError::invalid_state(format!(
                "Cluster {id} is in unexpected state {}{}.",
                &state[..1],
                state[1..].to_lowercase()
            )));
        }
        rec.phase = ClusterPhase {
            kind: ClusterPhaseKind::Starting,
            since_ms: now,
        };
        rec.info["start_time"] = json!(now);
        Ok(Json(json!({})))
    })
}

pub async fn delete_cluster(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let id = cluster_id_from(&b, None)?;
    app.mutate(|s| {
        let rec = s
            .ws_data(ctx.workspace_id)
            .clusters
            .get_mut(&id)
            .ok_or_else(|| cluster_missing(&id))?;
        // Terminating an already terminating or terminated cluster is a no-op.
        if rec.phase.kind == ClusterPhaseKind::Starting {
            rec.phase = ClusterPhase {
                kind: ClusterPhaseKind::Terminating,
                since_ms: now_ms(),
            };
            rec.info["termination_reason"] = json!({
                "code": "USER_REQUEST",
                "type": "SUCCESS",
                "parameters": {"username": ctx.principal_name},
            });
        }
        Ok(Json(json!({})))
    })
}

pub async fn permanent_delete_cluster(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let id = cluster_id_from(&b, None)?;
    app.mutate(|s| {
        s.ws_data(ctx.workspace_id)
            .clusters
            .remove(&id)
            .map(|_| Json(json!({})))
            .ok_or_else(|| cluster_missing(&id))
    })
}

pub async fn spark_versions(_: WsCtx) -> Json<Value> {
    Json(json!({"versions": [
        {"key": "15.4.x-scala2.12", "name": "15.4 LTS (includes Apache Spark 3.5.0, Scala 2.12)"},
        {"key": "14.3.x-scala2.12", "name": "14.3 LTS (includes Apache Spark 3.5.0, Scala 2.12)"},
        {"key": "16.4.x-scala2.12", "name": "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.12)"},
    ]}))
}

// ---------------------------------------------------------------- cluster policies

fn check_definition(b: &Value) -> ApiResult<()> {
    if let Some(d) = b.opt_str("definition") {
        match serde_json::from_str::<Value>(&d) {
            Ok(Value::Object(_)) => {}
            _ => {
                return Err(ApiError::invalid(
                    "definition must be a JSON object encoded as a string",
                ))
            }
        }
    }
    if b.opt_str("definition").is_none() && b.opt_str("policy_family_id").is_none() {
        return Err(ApiError::missing_field("definition"));
    }
    Ok(())
}

const POLICY_FIELDS: &[&str] = &[
    "name",
    "definition",
    "description",
    "max_clusters_per_user",
    "policy_family_id",
    "policy_family_definition_overrides",
    "libraries",
];

pub async fn create_policy(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("create cluster policies")?;
    let name = b.req_str("name")?;
    check_definition(&b)?;
    app.mutate(|s| {
        let d = s.ws_data(ctx.workspace_id);
        if d.cluster_policies
            .values()
            .any(|p| p["name"] == json!(name))
        {
            return Err(ApiError::already_exists(format!(
                "Cluster policy with name {name} already exists"
            )));
        }
        let id = upper_hex_id();
        let mut p = json!({
            "policy_id": id,
            "created_at_timestamp": now_ms(),
            "creator_user_name": ctx.principal_name,
            "is_default": false,
        });
        copy_fields(&mut p, &b, POLICY_FIELDS);
        d.cluster_policies.insert(id.clone(), p);
        Ok(Json(json!({"policy_id": id})))
    })
}

pub async fn edit_policy(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("edit cluster policies")?;
    let id = b.req_str("policy_id")?;
    let name = b.req_str("name")?;
    check_definition(&b)?;
    app.mutate(|s| {
        let d = s.ws_data(ctx.workspace_id);
        if d.cluster_policies
            .iter()
            .any(|(k, p)| *k != id && p["name"] == json!(name))
        {
            return Err(ApiError::already_exists(format!(
                "Cluster policy with name {name} already exists"
            )));
        }
        let p = d
            .cluster_policies
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found(format!("Cluster policy {id} does not exist")))?;
        for f in POLICY_FIELDS {
            if let Some(o) = p.as_object_mut() {
                o.remove(*f);
            }
        }
        copy_fields(p, &b, POLICY_FIELDS);
        Ok(Json(json!({})))
    })
}

pub async fn get_policy(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let id = q
        .get("policy_id")
        .cloned()
        .ok_or_else(|| ApiError::missing_field("policy_id"))?;
    app.read(|s| {
        s.workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.cluster_policies.get(&id))
            .map(|p| Json(p.clone()))
            .ok_or_else(|| ApiError::not_found(format!("Cluster policy {id} does not exist")))
    })
}

pub async fn list_policies(ctx: WsCtx, State(app): State<App>) -> Json<Value> {
    app.read(|s| {
        let items: Vec<Value> = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| d.cluster_policies.values().cloned().collect())
            .unwrap_or_default();
        Json(json!({"policies": items}))
    })
}

pub async fn delete_policy(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("delete cluster policies")?;
    let id = b.req_str("policy_id")?;
    app.mutate(|s| {
        s.ws_data(ctx.workspace_id)
            .cluster_policies
            .remove(&id)
            .map(|_| Json(json!({})))
            .ok_or_else(|| ApiError::not_found(format!("Cluster policy {id} does not exist")))
    })
}

// ---------------------------------------------------------------- instance pools

const POOL_FIELDS: &[&str] = &[
    "instance_pool_name",
    "node_type_id",
    "min_idle_instances",
    "max_capacity",
    "idle_instance_autotermination_minutes",
    "aws_attributes",
    "custom_tags",
    "disk_spec",
    "enable_elastic_disk",
    "preloaded_spark_versions",
    "preloaded_docker_images",
];

fn pool_problem(b: &Value) -> ApiResult<()> {
    b.req_str("instance_pool_name")?;
    b.req_str("node_type_id")?;
    let min = b.opt_i64("min_idle_instances")?.unwrap_or(0);
    if let Some(max) = b.opt_i64("max_capacity")? {
        if max < min {
            return Err(ApiError::invalid(format!(
                "max_capacity {max} is smaller than min_idle_instances {min}"
            )));
        }
    }
    Ok(())
}

pub async fn create_pool(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    pool_problem(&b)?;
    app.mutate(|s| {
        let d = s.ws_data(ctx.workspace_id);
        let name = b["instance_pool_name"].clone();
        if d.instance_pools.values().any(|p| p["instance_pool_name"] == name) {
            return Err(ApiError::already_exists(format!("Instance pool with name {name} already exists")));
        }
        let id = format!("{}-{}-pool-{}", time_prefix(now_ms()), random_alnum_lower(6), random_alnum_lower(8));
        let mut p = json!({
            "instance_pool_id": id,
            "state": "ACTIVE",
            "min_idle_instances": 0,
            "idle_instance_autotermination_minutes": 60,
            "enable_elastic_disk": true,
            "default_tags": {"Vendor": "Databricks", "DatabricksInstancePoolCreatorId": ctx.principal_id.to_string(), "DatabricksInstancePoolId": id},
            "stats": {"used_count": 0, "idle_count": 0, "pending_used_count": 0, "pending_idle_count": 0},
        });
        copy_fields(&mut p, &b, POOL_FIELDS);
        let idle = p["min_idle_instances"].clone();
        p["stats"]["idle_count"] = idle;
        d.instance_pools.insert(id.clone(), p);
        Ok(Json(json!({"instance_pool_id": id})))
    })
}

pub async fn edit_pool(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let id = b.req_str("instance_pool_id")?;
    pool_problem(&b)?;
    app.mutate(|s| {
        let p = s
            .ws_data(ctx.workspace_id)
            .instance_pools
            .get_mut(&id)
            .ok_or_else(|| ApiError::not_found(format!("Instance pool {id} does not exist")))?;
        if p["node_type_id"] != b["node_type_id"] {
            return Err(ApiError::invalid(
                "node_type_id of an instance pool cannot be changed",
            ));
        }
        copy_fields(
            p,
            &b,
            &[
                "instance_pool_name",
                "min_idle_instances",
                "max_capacity",
                "idle_instance_autotermination_minutes",
                "custom_tags",
            ],
        );
        Ok(Json(json!({})))
    })
}

pub async fn get_pool(
    ctx: WsCtx,
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let id = q
        .get("instance_pool_id")
        .cloned()
        .ok_or_else(|| ApiError::missing_field("instance_pool_id"))?;
    app.read(|s| {
        s.workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.instance_pools.get(&id))
            .map(|p| Json(p.clone()))
            .ok_or_else(|| ApiError::not_found(format!("Instance pool {id} does not exist")))
    })
}

pub async fn list_pools(ctx: WsCtx, State(app): State<App>) -> Json<Value> {
    app.read(|s| {
        let items: Vec<Value> = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| d.instance_pools.values().cloned().collect())
            .unwrap_or_default();
        Json(json!({"instance_pools": items}))
    })
}

pub async fn delete_pool(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    let id = b.req_str("instance_pool_id")?;
    app.mutate(|s| {
        s.ws_data(ctx.workspace_id)
            .instance_pools
            .remove(&id)
            .map(|_| Json(json!({})))
            .ok_or_else(|| ApiError::not_found(format!("Instance pool {id} does not exist")))
    })
}

// ---------------------------------------------------------------- instance profiles

pub fn instance_profile_arn_problem(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "iam"
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5]
            .strip_prefix("instance-profile/")
            .is_some_and(|n| !n.is_empty());
    (!ok).then(|| format!("Invalid instance profile ARN: {arn}"))
}

pub async fn add_instance_profile(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("add instance profiles")?;
    let arn = b.req_str("instance_profile_arn")?;
    if let Some(p) = instance_profile_arn_problem(&arn) {
        return Err(ApiError::invalid(p));
    }
    app.mutate(|s| {
        let d = s.ws_data(ctx.workspace_id);
        if d.instance_profiles.contains_key(&arn) {
            return Err(ApiError::already_exists(format!(
                "Instance profile {arn} already exists"
            )));
        }
        let mut p = json!({"instance_profile_arn": arn, "is_meta_instance_profile": false});
        copy_fields(&mut p, &b, &["iam_role_arn", "is_meta_instance_profile"]);
        d.instance_profiles.insert(arn, p);
        Ok(Json(json!({})))
    })
}

pub async fn edit_instance_profile(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("edit instance profiles")?;
    let arn = b.req_str("instance_profile_arn")?;
    app.mutate(|s| {
        let p = s
            .ws_data(ctx.workspace_id)
            .instance_profiles
            .get_mut(&arn)
            .ok_or_else(|| ApiError::not_found(format!("Instance profile {arn} does not exist")))?;
        copy_fields(p, &b, &["iam_role_arn", "is_meta_instance_profile"]);
        Ok(Json(json!({})))
    })
}

pub async fn list_instance_profiles(ctx: WsCtx, State(app): State<App>) -> Json<Value> {
    app.read(|s| {
        let items: Vec<Value> = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| d.instance_profiles.values().cloned().collect())
            .unwrap_or_default();
        Json(json!({"instance_profiles": items}))
    })
}

pub async fn remove_instance_profile(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("remove instance profiles")?;
    let arn = b.req_str("instance_profile_arn")?;
    app.mutate(|s| {
        s.ws_data(ctx.workspace_id)
            .instance_profiles
            .remove(&arn)
            .map(|_| Json(json!({})))
            .ok_or_else(|| ApiError::not_found(format!("Instance profile {arn} does not exist")))
    })
}

// ---------------------------------------------------------------- global init scripts

#[derive(Deserialize)]
pub struct ScriptPath {
    pub script_id: String,
}

fn check_script(b: &Value) -> ApiResult<()> {
    let script = b.req_str("script")?;
    base64::engine::general_purpose::STANDARD
        .decode(script.as_bytes())
        .map_err(|_| ApiError::invalid("script must be base64-encoded"))?;
    if let Some(p) = b.opt_i64("position")? {
        if p < 0 {
            return Err(ApiError::invalid("position must not be negative"));
        }
    }
    Ok(())
}

/// Places `id` at `position` and renumbers the others to stay 0..n-1, as the real
/// service keeps positions contiguous.
fn reposition(
    scripts: &mut std::collections::BTreeMap<String, Value>,
    id: &str,
    position: Option<i64>,
) {
    let mut order: Vec<(i64, String)> = scripts
        .iter()
        .filter(|(k, _)| k.as_str() != id)
        .map(|(k, v)| (v["position"].as_i64().unwrap_or(i64::MAX), k.clone()))
        .collect();
    order.sort();
    let mut ids: Vec<String> = order.into_iter().map(|(_, k)| k).collect();
    let at = position
        .map(|p| (p as usize).min(ids.len()))
        .unwrap_or(ids.len());
    ids.insert(at, id.to_string());
    for (i, k) in ids.iter().enumerate() {
        if let Some(v) = scripts.get_mut(k) {
            v["position"] = json!(i);
        }
    }
}

pub async fn create_script(
    ctx: WsCtx,
    State(app): State<App>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("manage global init scripts")?;
    let name = b.req_str("name")?;
    check_script(&b)?;
    app.mutate(|s| {
        let now = now_ms();
        let id = upper_hex_id();
        let v = json!({
            "script_id": id,
            "name": name,
            "script": b["script"],
            "enabled": b["enabled"].as_bool().unwrap_or(false),
            "created_at": now,
            "created_by": ctx.principal_name,
            "updated_at": now,
            "updated_by": ctx.principal_name,
        });
        let scripts = &mut s.ws_data(ctx.workspace_id).global_init_scripts;
        scripts.insert(id.clone(), v);
        reposition(scripts, &id, b["position"].as_i64());
        Ok(Json(json!({"script_id": id})))
    })
}

pub async fn update_script(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<ScriptPath>,
    Body(b): Body,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("manage global init scripts")?;
    b.req_str("name")?;
    check_script(&b)?;
    app.mutate(|s| {
        let scripts = &mut s.ws_data(ctx.workspace_id).global_init_scripts;
        let v = scripts.get_mut(&p.script_id).ok_or_else(|| {
            ApiError::not_found(format!("Global init script {} does not exist", p.script_id))
        })?;
        copy_fields(v, &b, &["name", "script", "enabled"]);
        v["updated_at"] = json!(now_ms());
        v["updated_by"] = json!(ctx.principal_name);
        let position = b["position"].as_i64().or(v["position"].as_i64());
        reposition(scripts, &p.script_id, position);
        Ok(Json(json!({})))
    })
}

pub async fn get_script(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<ScriptPath>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("manage global init scripts")?;
    app.read(|s| {
        s.workspace_data
            .get(&ctx.workspace_id)
            .and_then(|d| d.global_init_scripts.get(&p.script_id))
            .map(|v| Json(v.clone()))
            .ok_or_else(|| {
                ApiError::not_found(format!("Global init script {} does not exist", p.script_id))
            })
    })
}

pub async fn list_scripts(ctx: WsCtx, State(app): State<App>) -> ApiResult<Json<Value>> {
    ctx.require_admin("manage global init scripts")?;
    Ok(app.read(|s| {
        let mut items: Vec<Value> = s
            .workspace_data
            .get(&ctx.workspace_id)
            .map(|d| d.global_init_scripts.values().cloned().collect())
            .unwrap_or_default();
        items.sort_by_key(|v| v["position"].as_i64());
        for v in &mut items {
            if let Some(o) = v.as_object_mut() {
                o.remove("script");
            }
        }
        Json(json!({"scripts": items}))
    }))
}

pub async fn delete_script(
    ctx: WsCtx,
    State(app): State<App>,
    Path(p): Path<ScriptPath>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("manage global init scripts")?;
    app.mutate(|s| {
        let scripts = &mut s.ws_data(ctx.workspace_id).global_init_scripts;
        scripts.remove(&p.script_id).ok_or_else(|| {
            ApiError::not_found(format!("Global init script {} does not exist", p.script_id))
        })?;
        if let Some(first) = scripts.keys().next().cloned() {
            let pos = scripts[&first]["position"].as_i64();
            reposition(scripts, &first, pos);
        }
        Ok(Json(json!({})))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_node_forms_are_checked() {
        let legacy = json!({
            "spark_version": "15.4.x-scala2.12", "node_type_id": "m5.large", "num_workers": 0,
            "spark_conf": {"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"},
            "custom_tags": {"ResourceClass": "SingleNode"},
        });
        assert!(cluster_spec_problem(&legacy).is_none());
        let mut legacy_with_workers = legacy.clone();
        legacy_with_workers["num_workers"] = json!(2);
        assert!(cluster_spec_problem(&legacy_with_workers).is_some());
        let new = json!({"spark_version": "15.4.x-scala2.12", "node_type_id": "m5.large", "kind": "CLASSIC_PREVIEW", "is_single_node": true});
        assert!(cluster_spec_problem(&new).is_none());
        let no_kind = json!({"spark_version": "15.4.x-scala2.12", "node_type_id": "m5.large", "is_single_node": true});
        assert!(cluster_spec_problem(&no_kind).is_some());
        assert!(cluster_spec_problem(&json!({"node_type_id": "m5.large"})).is_some());
        assert!(cluster_spec_problem(&json!({"spark_version": "x"})).is_some());
    }

    #[test]
    fn cluster_id_prefix_is_month_day_time() {
        assert_eq!(time_prefix(1_700_000_000_000), "1114-221320");
    }

    #[test]
    fn init_script_positions_stay_contiguous() {
        let mut m = std::collections::BTreeMap::new();
        for id in ["a", "b", "c"] {
            m.insert(id.to_string(), json!({}));
            reposition(&mut m, id, None);
        }
        reposition(&mut m, "c", Some(0));
        assert_eq!(m["c"]["position"], 0);
        assert_eq!(m["a"]["position"], 1);
        assert_eq!(m["b"]["position"], 2);
    }

    #[test]
    fn instance_profile_arns_are_checked() {
        assert!(
            instance_profile_arn_problem("arn:aws:iam::123456789012:instance-profile/x").is_none()
        );
        assert!(instance_profile_arn_problem("arn:aws:iam::123456789012:role/x").is_some());
    }
}
