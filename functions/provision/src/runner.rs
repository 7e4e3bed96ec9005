//! The stage runner: one function per stage. Each builds what the spec wants
//! (pure), finds what exists by deterministic name, and converges through
//! [`crate::resources::converge`]. Stages never sleep: a stage that must wait
//! returns `wait` and the state machine calls it again.

use crate::aws::Secrets;
use crate::event::{readiness, Readiness, StageFailure, StageResult};
use crate::names::Names;
use crate::plan::{change_for, decide, Action, Change, Desired, Mode, Updatable};
use crate::resources::{
    self, account, converge, databricks_failure, workspace, Collection, Converged, OWNER_MARK,
};
use crate::spec::PlatformSpec;
use crate::stages::Stage;
use lakeops_shared::credentials::{Credential, DatabricksPat, DatabricksSpSecret};
use lakeops_shared::databricks::{Credentials, DatabricksClient, DatabricksConnector};
use lakeops_shared::Error;
use serde_json::{json, Map, Value};
use std::time::SystemTime;

/// What every invocation shares, built once at init.
#[derive(Clone)]
pub struct Platform {
    /// This deployment: what the function's own role may reach.
    pub deployment: crate::deployment::Deployment,
    pub databricks: DatabricksConnector,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub s3: aws_sdk_s3::Client,
    /// The function's own AWS configuration, from which environment roles are assumed.
    pub sdk: aws_config::SdkConfig,
    /// The function that rotates the PAT (`PAT_ROTATION_FUNCTION_ARN`), unless the spec names one.
    pub pat_rotation_function_arn: Option<String>,
    /// Clients that depend on the spec, kept between invocations.
    pub spec_clients: SpecClients,
}

/// Assumed roles count as fresh until this long before they expire.
const SESSION_REFRESH_MARGIN: std::time::Duration = std::time::Duration::from_secs(300);

/// Clients that depend on the spec — Secrets Manager in an environment's own
/// account (after its role chain), a connector for another Databricks account
/// host — built on first use and kept for the life of the process. A warm
/// container then runs the next stage without assuming the same roles again or
/// building another HTTP client (and loading TLS roots) per invocation.
#[derive(Clone, Default)]
pub struct SpecClients {
    /// (role chain, session name) -> client, and when its credentials expire.
    sessions:
        SharedMap<(Vec<String>, String), (aws_sdk_secretsmanager::Client, Option<SystemTime>)>,
    /// account host -> connector.
    connectors: SharedMap<String, DatabricksConnector>,
}

type SharedMap<K, V> = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<K, V>>>;

fn cached<K: std::hash::Hash + Eq, V: Clone>(map: &SharedMap<K, V>, key: &K) -> Option<V> {
    map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(key)
        .cloned()
}

fn remember<K: std::hash::Hash + Eq, V>(map: &SharedMap<K, V>, key: K, value: V) {
    map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, value);
}

/// Whether credentials that expire at `expiry` are still good to use at `now`. Pure.
fn session_is_fresh(expiry: Option<SystemTime>, now: SystemTime) -> bool {
    match expiry {
        None => false,
        Some(expiry) => now + SESSION_REFRESH_MARGIN < expiry,
    }
}

impl SpecClients {
    /// Secrets Manager as the last role of `roles` (the caller's own client when there is none).
    async fn secrets_manager(
        &self,
        platform: &Platform,
        roles: Vec<String>,
        session: String,
    ) -> Result<aws_sdk_secretsmanager::Client, StageFailure> {
        if roles.is_empty() {
            return Ok(platform.secrets.clone());
        }
        let key = (roles, session);
        if let Some((client, expiry)) = cached(&self.sessions, &key) {
            if session_is_fresh(expiry, SystemTime::now()) {
                return Ok(client);
            }
        }
        let (config, expiry) = crate::aws::assume_roles(&platform.sdk, &key.0, &key.1).await?;
        let client = lakeops_shared::aws::secretsmanager(&config);
        remember(&self.sessions, key, (client.clone(), expiry));
        Ok(client)
    }

    /// The connector for `host` (the platform's own when it is the configured host).
    fn connector(
        &self,
        platform: &Platform,
        host: Option<&str>,
    ) -> Result<DatabricksConnector, StageFailure> {
        let configured = &platform.databricks.settings().account_host;
        let host = match host.map(|h| h.trim_end_matches('/')) {
            Some(host) if host != configured => host.to_string(),
            _ => return Ok(platform.databricks.clone()),
        };
        if let Some(connector) = cached(&self.connectors, &host) {
            return Ok(connector);
        }
        let mut settings = platform.databricks.settings().clone();
        settings.account_host = host.clone();
        let connector = DatabricksConnector::new(settings)?;
        remember(&self.connectors, host, connector.clone());
        Ok(connector)
    }
}

/// Placeholder for an id that exists only after `apply`.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

pub struct Ctx<'a> {
    pub platform: &'a Platform,
    pub mode: Mode,
    pub spec: &'a PlatformSpec,
    pub names: Names,
    pub outputs: &'a Map<String, Value>,
    connector: DatabricksConnector,
    /// Secrets Manager in the environment's account (after the role chain).
    secrets_client: aws_sdk_secretsmanager::Client,
}

impl<'a> Ctx<'a> {
    pub async fn new(
        platform: &'a Platform,
        mode: Mode,
        spec: &'a PlatformSpec,
        outputs: &'a Map<String, Value>,
    ) -> Result<Self, StageFailure> {
        let roles = crate::aws::role_chain(
            spec.aws.admin_role_arn.as_deref(),
            spec.aws.environment_role_arn.as_deref(),
        );
        let clients = &platform.spec_clients;
        let secrets_client = clients
            .secrets_manager(platform, roles, crate::aws::session_name(&spec.environment))
            .await?;
        // The spec may name another account host (e.g. a GovCloud account console).
        let connector = clients.connector(platform, spec.account.host.as_deref())?;
        Ok(Self {
            platform,
            mode,
            spec,
            names: Names::new(&spec.environment),
            outputs,
            connector,
            secrets_client,
        })
    }

    fn secrets(&self) -> Secrets<'_> {
        Secrets {
            client: &self.secrets_client,
        }
    }

    fn include_adopted(&self) -> bool {
        self.spec.destroy.include_adopted
    }

    /// The account service principal's OAuth credentials, from Secrets Manager.
    async fn account_credentials(&self) -> Result<Credentials, StageFailure> {
        let arn = &self.spec.account.credentials_secret_arn;
        match self.secrets().credential(arn).await? {
            Credential::DatabricksSpSecret(sp) => Ok(Credentials::OAuthM2M {
                client_id: sp.client_id,
                client_secret: sp.client_secret,
            }),
            other => Err(Error::invalid_input(format!(
                "account.credentials_secret_arn: the secret is a {} credential, expected databricks-sp-secret",
                other.kind()
            ))
            .into()),
        }
    }

    pub async fn account(&self) -> Result<DatabricksClient, StageFailure> {
        Ok(self
            .connector
            .account(&self.spec.account.id, self.account_credentials().await?))
    }

    /// The workspace API as the account service principal (the workspace's creator).
    async fn workspace_api(&self) -> Result<Option<DatabricksClient>, StageFailure> {
        match self.output_str("deployment_name") {
            Some(deployment) => Ok(Some(
                self.connector
                    .workspace(deployment, self.account_credentials().await?),
            )),
            None => Ok(None),
        }
    }

    pub fn output_str(&self, key: &str) -> Option<&str> {
        self.outputs
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && *s != KNOWN_AFTER_APPLY)
    }

    /// An output an earlier stage must have produced. In `plan` it may not
    /// exist yet, which is fine; in `apply` it means the stages ran out of order.
    fn need(&self, key: &str, stage: Stage) -> Result<String, StageFailure> {
        match self.output_str(key) {
            Some(value) => Ok(value.to_string()),
            None if self.mode != Mode::Apply => Ok(KNOWN_AFTER_APPLY.to_string()),
            None => Err(Error::terminal(format!(
                "outputs.{key} is missing: run stage {stage} first"
            ))
            .into()),
        }
    }

    /// Converge one resource; with no API to ask (its parent does not exist
    /// yet, in `plan` or `destroy`), it is simply absent.
    async fn resource(
        &self,
        api: Option<&DatabricksClient>,
        collection: &Collection,
        desired: Desired,
        body: Value,
        adopted: bool,
    ) -> Result<Converged, StageFailure> {
        match api {
            Some(api) => {
                converge(
                    api,
                    collection,
                    self.mode,
                    &desired,
                    &body,
                    adopted,
                    self.include_adopted(),
                )
                .await
            }
            None => {
                let decision = decide(self.mode, &desired, None, self.include_adopted());
                Ok(Converged {
                    change: change_for(&decision, &desired, None),
                    id: None,
                    value: None,
                })
            }
        }
    }
}

fn desired(
    kind: &'static str,
    name: impl Into<String>,
    compare: Value,
    updatable: Updatable,
) -> Desired {
    Desired {
        kind,
        name: name.into(),
        compare,
        updatable,
    }
}

/// Record a converged resource: its change, and its id under `key` (null once deleted).
fn record(result: &mut StageResult, key: &str, converged: &Converged) {
    let value = match (converged.change.action, &converged.id) {
        (Action::Delete, _) | (_, None) => Value::Null,
        (_, Some(id)) => Value::String(id.clone()),
    };
    result.outputs.insert(key.to_string(), value);
    result.changes.push(converged.change.clone());
}

/// Insert `key: value` only when the value is known.
fn insert_some(object: &mut Value, key: &str, value: Option<String>) {
    if let Some(value) = value.filter(|v| v != KNOWN_AFTER_APPLY) {
        object[key] = Value::String(value);
    }
}

pub async fn run(ctx: &Ctx<'_>, stage: Stage) -> Result<StageResult, StageFailure> {
    match stage {
        Stage::Validate => validate(ctx).await,
        Stage::Credentials => credentials(ctx).await,
        Stage::Storage => storage(ctx).await,
        Stage::PrivateLink => private_link(ctx).await,
        Stage::Network => network(ctx).await,
        Stage::EncryptionKeys => encryption_keys(ctx).await,
        Stage::Workspace => workspace_stage(ctx).await,
        Stage::WorkspaceReady => workspace_ready(ctx).await,
        Stage::LogDelivery => log_delivery(ctx).await,
        Stage::Metastore => metastore(ctx).await,
        Stage::Identity => identity(ctx).await,
        Stage::Pat => pat(ctx).await,
        Stage::Compute => compute(ctx).await,
        Stage::Catalog => catalog(ctx).await,
        Stage::Extras => extras(ctx).await,
    }
}

async fn validate(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    // Parsing already validated the spec; this stage makes that the first
    // visible step, and records the names the later stages use.
    let mut result = StageResult::default();
    result
        .outputs
        .insert("environment".into(), json!(ctx.spec.environment));
    result
        .outputs
        .insert("workspace_name".into(), json!(ctx.spec.workspace.name));
    result
        .outputs
        .insert("catalog_name".into(), json!(ctx.spec.catalog_name()));
    // An existing workspace, found by name: `destroy` reaches the
    // workspace-level stages before the workspace stage, and `plan` compares
    // against what is there.
    if ctx.output_str("workspace_id").is_none() {
        let api = ctx.account().await?;
        if let Some(found) = account::workspaces(&api)
            .find(&api, &ctx.spec.workspace.name, false)
            .await?
        {
            let deployment = found
                .value
                .get("deployment_name")
                .and_then(Value::as_str)
                .map(str::to_string);
            result
                .outputs
                .insert("workspace_id".into(), json!(found.id));
            result
                .outputs
                .insert("deployment_name".into(), json!(deployment));
            result.outputs.insert(
                "workspace_url".into(),
                json!(deployment
                    .as_deref()
                    .map(|d| ctx.connector.settings().workspace_url(d))),
            );
        }
    }
    Ok(result)
}

/// An account credentials configuration for `role_arn`, named `name`, recorded under `key`.
/// Databricks cannot update one: a different role is drift.
async fn converge_credentials(
    ctx: &Ctx<'_>,
    api: &DatabricksClient,
    name: String,
    role_arn: &str,
    key: &str,
    result: &mut StageResult,
) -> Result<(), StageFailure> {
    let compare = json!({"aws_credentials": {"sts_role": {"role_arn": role_arn}}});
    let mut body = compare.clone();
    body["credentials_name"] = json!(name);
    let d = desired("credentials", name, compare, Updatable::No);
    let converged = ctx
        .resource(Some(api), &account::credentials(api), d, body, false)
        .await?;
    record(result, key, &converged);
    Ok(())
}

/// An account storage configuration for `bucket`, named `name`, recorded under `key`.
/// Databricks cannot update one: a different bucket is drift.
async fn converge_storage_configuration(
    ctx: &Ctx<'_>,
    api: &DatabricksClient,
    name: String,
    bucket: &str,
    key: &str,
    result: &mut StageResult,
) -> Result<(), StageFailure> {
    let compare = json!({"root_bucket_info": {"bucket_name": bucket}});
    let mut body = compare.clone();
    body["storage_configuration_name"] = json!(name);
    let d = desired("storage_configuration", name, compare, Updatable::No);
    let converged = ctx
        .resource(
            Some(api),
            &account::storage_configurations(api),
            d,
            body,
            false,
        )
        .await?;
    record(result, key, &converged);
    Ok(())
}

async fn credentials(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    let api = ctx.account().await?;
    let mut result = StageResult::default();
    converge_credentials(
        ctx,
        &api,
        ctx.names.credentials(),
        &ctx.spec.aws.cross_account_role_arn,
        "credentials_id",
        &mut result,
    )
    .await?;
    Ok(result)
}

async fn storage(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    let api = ctx.account().await?;
    let mut result = StageResult::default();
    converge_storage_configuration(
        ctx,
        &api,
        ctx.names.storage(),
        &ctx.spec.storage.root_bucket,
        "storage_configuration_id",
        &mut result,
    )
    .await?;
    Ok(result)
}

async fn private_link(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    let mut result = StageResult::default();
    let Some(link) = ctx.spec.private_link() else {
        return Ok(result);
    };
    let api = ctx.account().await?;
    let region = &ctx.spec.aws.region;
    let endpoints = [
        (
            "rest_vpc_endpoint_id",
            ctx.names.rest_vpc_endpoint(),
            &link.rest_vpc_endpoint_id,
        ),
        (
            "relay_vpc_endpoint_id",
            ctx.names.relay_vpc_endpoint(),
            &link.relay_vpc_endpoint_id,
        ),
    ];
    for (key, name, aws_id) in endpoints {
        let compare = json!({"aws_vpc_endpoint_id": aws_id, "region": region});
        let mut body = compare.clone();
        body["vpc_endpoint_name"] = json!(name);
        let d = desired("vpc_endpoint", name, compare, Updatable::No);
        let converged = ctx
            .resource(Some(&api), &account::vpc_endpoints(&api), d, body, false)
            .await?;
        record(&mut result, key, &converged);
    }
    let compare = json!({
        "region": region,
        "public_access_enabled": link.public_access_enabled,
        "private_access_level": link.private_access_level,
    });
    let mut body = compare.clone();
    body["private_access_settings_name"] = json!(ctx.names.private_access_settings());
    let d = desired(
        "private_access_settings",
        ctx.names.private_access_settings(),
        compare,
        Updatable::Except(&["region"]),
    );
    let converged = ctx
        .resource(
            Some(&api),
            &account::private_access_settings(&api),
            d,
            body,
            false,
        )
        .await?;
    record(&mut result, "private_access_settings_id", &converged);
    Ok(result)
}

async fn network(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    let api = ctx.account().await?;
    let net = &ctx.spec.network;
    let mut compare = json!({
        "vpc_id": net.vpc_id,
        "subnet_ids": net.subnet_ids,
        "security_group_ids": net.security_group_ids,
    });
    if ctx.spec.private_link().is_some() && ctx.mode != Mode::Destroy {
        let rest = ctx.need("rest_vpc_endpoint_id", Stage::PrivateLink)?;
        let relay = ctx.need("relay_vpc_endpoint_id", Stage::PrivateLink)?;
        compare["vpc_endpoints"] = json!({"rest_api": [rest], "dataplane_relay": [relay]});
    }
    let mut body = compare.clone();
    body["network_name"] = json!(ctx.names.network());
    let d = desired("network", ctx.names.network(), compare, Updatable::No);
    let converged = ctx
        .resource(Some(&api), &account::networks(&api), d, body, false)
        .await?;
    let mut result = StageResult::default();
    record(&mut result, "network_id", &converged);
    Ok(result)
}

/// The key registrations the spec asks for: one per distinct key ARN, with
/// its use cases (one key may serve both). Pure.
pub fn key_registrations(spec: &PlatformSpec) -> Vec<(String, Option<String>, Vec<&'static str>)> {
    let mut keys: Vec<(String, Option<String>, Vec<&'static str>)> = Vec::new();
    let Some(encryption) = &spec.encryption else {
        return keys;
    };
    for (key, use_case) in [
        (&encryption.managed_services, "MANAGED_SERVICES"),
        (&encryption.storage, "STORAGE"),
    ] {
        let Some(key) = key else { continue };
        match keys.iter_mut().find(|(arn, _, _)| *arn == key.key_arn) {
            Some(entry) => entry.2.push(use_case),
            None => keys.push((key.key_arn.clone(), key.key_alias.clone(), vec![use_case])),
        }
    }
    keys
}

async fn encryption_keys(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    let mut result = StageResult::default();
    let keys = key_registrations(ctx.spec);
    if keys.is_empty() {
        return Ok(result);
    }
    let api = ctx.account().await?;
    for (arn, alias, use_cases) in keys {
        let mut key_info = json!({"key_arn": arn});
        if let Some(alias) = alias {
            key_info["key_alias"] = json!(alias);
        }
        if use_cases.contains(&"STORAGE") {
            key_info["reuse_key_for_cluster_volumes"] = json!(true);
        }
        let compare = json!({"use_cases": use_cases});
        let body = json!({"aws_key_info": key_info, "use_cases": use_cases});
        let d = desired("customer_managed_key", arn.clone(), compare, Updatable::No);
        let converged = ctx
            .resource(
                Some(&api),
                &account::customer_managed_keys(&api),
                d,
                body,
                false,
            )
            .await?;
        for use_case in &use_cases {
            let key = if *use_case == "STORAGE" {
                "storage_key_id"
            } else {
                "managed_services_key_id"
            };
            record(&mut result, key, &converged);
        }
        // One change per registration, not per use case.
        if use_cases.len() > 1 {
            result.changes.pop();
        }
    }
    Ok(result)
}

/// The workspace's create body and the fields compared on an existing one. Pure.
pub fn workspace_body(ctx_spec: &PlatformSpec, ids: &Map<String, Value>) -> (Value, Value) {
    let id = |key: &str| ids.get(key).and_then(Value::as_str).map(str::to_string);
    let mut compare = json!({
        "aws_region": ctx_spec.aws.region,
        "pricing_tier": ctx_spec.workspace.pricing_tier,
    });
    insert_some(&mut compare, "credentials_id", id("credentials_id"));
    insert_some(
        &mut compare,
        "storage_configuration_id",
        id("storage_configuration_id"),
    );
    insert_some(&mut compare, "network_id", id("network_id"));
    insert_some(
        &mut compare,
        "private_access_settings_id",
        id("private_access_settings_id"),
    );
    insert_some(
        &mut compare,
        "managed_services_customer_managed_key_id",
        id("managed_services_key_id"),
    );
    insert_some(
        &mut compare,
        "storage_customer_managed_key_id",
        id("storage_key_id"),
    );
    insert_some(
        &mut compare,
        "deployment_name",
        ctx_spec.workspace.deployment_name.clone(),
    );
    let mut body = compare.clone();
    body["workspace_name"] = json!(ctx_spec.workspace.name);
    body["custom_tags"] = json!({"lakeops-environment": ctx_spec.environment});
    (body, compare)
}

async fn workspace_stage(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    let api = ctx.account().await?;
    let mut ids = Map::new();
    if ctx.mode != Mode::Destroy {
        for (key, stage) in [
            ("credentials_id", Stage::Credentials),
            ("storage_configuration_id", Stage::Storage),
            ("network_id", Stage::Network),
        ] {
            ids.insert(key.into(), json!(ctx.need(key, stage)?));
        }
        if ctx.spec.private_link().is_some() {
            ids.insert(
                "private_access_settings_id".into(),
                json!(ctx.need("private_access_settings_id", Stage::PrivateLink)?),
            );
        }
        for use_case in key_registrations(ctx.spec)
            .iter()
            .flat_map(|(_, _, cases)| cases.clone())
        {
            let key = if use_case == "STORAGE" {
                "storage_key_id"
            } else {
                "managed_services_key_id"
            };
            ids.insert(key.into(), json!(ctx.need(key, Stage::EncryptionKeys)?));
        }
    }
    let (body, compare) = workspace_body(ctx.spec, &ids);
    let d = desired(
        "workspace",
        ctx.spec.workspace.name.clone(),
        compare,
        Updatable::Except(&[
            "aws_region",
            "pricing_tier",
            "deployment_name",
            "storage_configuration_id",
        ]),
    );
    let converged = ctx
        .resource(Some(&api), &account::workspaces(&api), d, body, false)
        .await?;
    let mut result = StageResult::default();
    record(&mut result, "workspace_id", &converged);
    let deployment = converged
        .value
        .as_ref()
        .and_then(|v| v.get("deployment_name"))
        .and_then(Value::as_str)
        .filter(|_| converged.change.action != Action::Delete)
        .map(str::to_string);
    result
        .outputs
        .insert("deployment_name".into(), json!(deployment));
    result.outputs.insert(
        "workspace_url".into(),
        json!(deployment
            .as_deref()
            .map(|d| ctx.connector.settings().workspace_url(d))),
    );
    Ok(result)
}

async fn workspace_ready(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    let mut result = StageResult::default();
    let Some(workspace_id) = ctx.output_str("workspace_id").map(str::to_string) else {
        if ctx.mode == Mode::Apply {
            return Err(Error::terminal(
                "outputs.workspace_id is missing: run stage workspace first",
            )
            .into());
        }
        return Ok(result);
    };
    if ctx.mode != Mode::Apply {
        return Ok(result);
    }
    let api = ctx.account().await?;
    let info: Value = api
        .get(&api.account_path(&format!("workspaces/{workspace_id}")))
        .await
        .map_err(databricks_failure)?;
    let status = info["workspace_status"].as_str().unwrap_or("UNKNOWN");
    let message = info["workspace_status_message"]
        .as_str()
        .unwrap_or_default();
    let created_ms = info["creation_time"].as_u64().unwrap_or(0);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let age_seconds = now_ms.saturating_sub(created_ms) / 1000;
    let api_answers = if status == "RUNNING" {
        match ctx.workspace_api().await? {
            Some(ws) => ws.get::<Value>("/api/2.0/preview/scim/v2/Me").await.is_ok(),
            None => false,
        }
    } else {
        false
    };
    let timeout = u64::from(ctx.spec.workspace.ready_timeout_minutes) * 60;
    result
        .outputs
        .insert("workspace_status".into(), json!(status));
    match readiness(status, message, api_answers, age_seconds, timeout) {
        Readiness::Ready => Ok(result),
        Readiness::Wait(seconds) => {
            result.wait = Some(seconds);
            Ok(result)
        }
        Readiness::Failed(why) => Err(Error::terminal(why).into()),
    }
}

async fn log_delivery(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    let mut result = StageResult::default();
    let Some(logs) = &ctx.spec.log_delivery else {
        return Ok(result);
    };
    let api = ctx.account().await?;
    // In destroy, the deliveries go first: they use the configurations.
    let configs = async |result: &mut StageResult| -> Result<(), StageFailure> {
        converge_credentials(
            ctx,
            &api,
            ctx.names.log_credentials(),
            &logs.role_arn,
            "log_credentials_id",
            result,
        )
        .await?;
        converge_storage_configuration(
            ctx,
            &api,
            ctx.names.log_storage(),
            &logs.bucket,
            "log_storage_configuration_id",
            result,
        )
        .await
    };
    if ctx.mode != Mode::Destroy {
        configs(&mut result).await?;
    }
    let credentials_id = result
        .outputs
        .get("log_credentials_id")
        .and_then(Value::as_str)
        .unwrap_or(KNOWN_AFTER_APPLY)
        .to_string();
    let storage_id = result
        .outputs
        .get("log_storage_configuration_id")
        .and_then(Value::as_str)
        .unwrap_or(KNOWN_AFTER_APPLY)
        .to_string();
    let deliveries = [
        (
            "audit_log_delivery_id",
            ctx.names.audit_log_delivery(),
            "AUDIT_LOGS",
            "JSON",
            &logs.audit_prefix,
        ),
        (
            "billable_usage_delivery_id",
            ctx.names.billable_usage_delivery(),
            "BILLABLE_USAGE",
            "CSV",
            &logs.billable_usage_prefix,
        ),
    ];
    for (key, name, log_type, format, prefix) in deliveries {
        let mut compare = json!({
            "log_type": log_type,
            "output_format": format,
            "delivery_path_prefix": prefix,
            "status": "ENABLED",
        });
        if ctx.mode != Mode::Destroy {
            compare["credentials_id"] = json!(credentials_id);
            compare["storage_configuration_id"] = json!(storage_id);
        }
        let mut body = compare.clone();
        body["config_name"] = json!(name);
        let d = desired(
            "log_delivery",
            name,
            compare,
            Updatable::Except(&[
                "log_type",
                "output_format",
                "delivery_path_prefix",
                "credentials_id",
                "storage_configuration_id",
            ]),
        );
        let converged = ctx
            .resource(Some(&api), &account::log_delivery(&api), d, body, false)
            .await?;
        record(&mut result, key, &converged);
    }
    if ctx.mode == Mode::Destroy {
        configs(&mut result).await?;
    }
    Ok(result)
}

async fn metastore(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    let api = ctx.account().await?;
    let mut result = StageResult::default();
    let uc = &ctx.spec.unity_catalog;
    let workspace_id = ctx.output_str("workspace_id").map(str::to_string);

    // Which metastore: the one the spec reuses (adopted), or lakeops' own.
    let metastore_id = match &uc.metastore.existing_id {
        Some(id) => {
            let found: Option<Value> = api
                .get_optional(&api.account_path(&format!("metastores/{id}")))
                .await
                .map_err(databricks_failure)?;
            if found.is_none() {
                return Err(Error::invalid_input(format!(
                    "unity_catalog.metastore.existing_id: metastore {id} does not exist"
                ))
                .into());
            }
            let change = Change::new(Action::None, "metastore", id)
                .with_id(Some(id.clone()))
                .with_note("adopted");
            result.changes.push(change);
            Some(id.clone())
        }
        None => {
            let collection = account::metastores(&api);
            let mut body = json!({"name": ctx.names.metastore(), "region": ctx.spec.aws.region});
            insert_some(&mut body, "storage_root", uc.metastore.storage_root.clone());
            let d = desired(
                "metastore",
                ctx.names.metastore(),
                json!({"region": ctx.spec.aws.region}),
                Updatable::No,
            );
            if ctx.mode == Mode::Destroy {
                // Delete the assignment first; the metastore only when no other workspace uses it.
                let found = collection.find(&api, &ctx.names.metastore(), false).await?;
                if let (Some(found), Some(ws)) = (&found, &workspace_id) {
                    unassign(&api, ws, &found.id, &mut result).await?;
                }
                if let Some(found) = &found {
                    let assigned: Value = api
                        .get(&api.account_path(&format!("metastores/{}/workspaces", found.id)))
                        .await
                        .map_err(databricks_failure)?;
                    let others: Vec<String> = assigned["workspace_ids"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(resources::id_string)
                        .collect();
                    if !others.is_empty() {
                        result.changes.push(
                            Change::new(Action::None, "metastore", &ctx.names.metastore())
                                .with_id(Some(found.id.clone()))
                                .with_note(format!(
                                    "still assigned to workspaces {}; left alone",
                                    others.join(", ")
                                )),
                        );
                        result
                            .outputs
                            .insert("metastore_id".into(), json!(found.id));
                        return Ok(result);
                    }
                }
                let converged = ctx
                    .resource(Some(&api), &collection, d, body, false)
                    .await?;
                record(&mut result, "metastore_id", &converged);
                return Ok(result);
            }
            let converged = ctx
                .resource(Some(&api), &collection, d, body, false)
                .await?;
            record(&mut result, "metastore_id", &converged);
            converged.id
        }
    };
    result
        .outputs
        .insert("metastore_id".into(), json!(metastore_id));

    // The assignment of the workspace to it.
    let Some(workspace_id) = workspace_id else {
        if ctx.mode == Mode::Apply {
            return Err(Error::terminal(
                "outputs.workspace_id is missing: run stage workspace first",
            )
            .into());
        }
        if ctx.mode == Mode::Plan {
            result.changes.push(Change::new(
                Action::Create,
                "metastore_assignment",
                &ctx.spec.workspace.name,
            ));
        }
        return Ok(result);
    };
    let resource = ctx.spec.workspace.name.clone();
    let current: Option<Value> = api
        .get_optional(&api.account_path(&format!("workspaces/{workspace_id}/metastore")))
        .await
        .map_err(databricks_failure)?;
    let assigned_to = current
        .as_ref()
        .and_then(|c| c.pointer("/metastore_assignment/metastore_id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    match (ctx.mode, assigned_to, &metastore_id) {
        (Mode::Destroy, Some(assigned), _) => {
            unassign(&api, &workspace_id, &assigned, &mut result).await?;
        }
        (Mode::Destroy, None, _) => {}
        (_, Some(assigned), Some(wanted)) if assigned == *wanted => {
            result.changes.push(
                Change::new(Action::None, "metastore_assignment", &resource)
                    .with_id(Some(assigned)),
            );
        }
        (_, Some(assigned), _) => {
            // Moving a workspace to another metastore hides its catalogs: a person decides.
            result.changes.push(
                Change::new(Action::None, "metastore_assignment", &resource)
                    .with_id(Some(assigned))
                    .with_fields(vec!["metastore_id".into()])
                    .with_note("drift: assigned to another metastore; left alone"),
            );
        }
        (Mode::Plan, None, _) | (_, None, None) => {
            result.changes.push(Change::new(
                Action::Create,
                "metastore_assignment",
                &resource,
            ));
        }
        (_, None, Some(wanted)) => {
            let path = api.account_path(&format!("workspaces/{workspace_id}/metastores/{wanted}"));
            let body = json!({"metastore_assignment": {"metastore_id": wanted}});
            match api.post::<_, Value>(&path, &body).await {
                Ok(_) => {}
                Err(e) if e.is_already_exists() => {}
                Err(e) => return Err(databricks_failure(e)),
            }
            result.changes.push(
                Change::new(Action::Create, "metastore_assignment", &resource)
                    .with_id(Some(wanted.clone())),
            );
        }
    }
    Ok(result)
}

async fn unassign(
    api: &DatabricksClient,
    workspace_id: &str,
    metastore_id: &str,
    result: &mut StageResult,
) -> Result<(), StageFailure> {
    let current: Option<Value> = api
        .get_optional(&api.account_path(&format!("workspaces/{workspace_id}/metastore")))
        .await
        .map_err(databricks_failure)?;
    let assigned = current
        .as_ref()
        .and_then(|c| c.pointer("/metastore_assignment/metastore_id"))
        .and_then(Value::as_str);
    if assigned == Some(metastore_id) {
        match api
            .delete(&api.account_path(&format!(
                "workspaces/{workspace_id}/metastores/{metastore_id}"
            )))
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(databricks_failure(e)),
        }
        result.changes.push(
            Change::new(Action::Delete, "metastore_assignment", workspace_id)
                .with_id(Some(metastore_id.to_string())),
        );
    }
    Ok(())
}

async fn identity(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    let api = ctx.account().await?;
    let mut result = StageResult::default();
    let workspace_id = ctx.output_str("workspace_id").map(str::to_string);

    // Principals first; in destroy the secret goes before its principal.
    let secret_name = ctx.names.service_principal_secret();
    if ctx.mode == Mode::Destroy {
        if let Some(info) = ctx.secrets().describe(&secret_name).await? {
            if !info.deleted {
                ctx.secrets().delete(&secret_name).await?;
                result.changes.push(
                    Change::new(Action::Delete, "secret", &secret_name).with_id(Some(info.arn)),
                );
            }
        }
        result
            .outputs
            .insert("service_principal_secret_arn".into(), Value::Null);
    }

    let mut principals: Vec<(String, Option<String>, String)> = Vec::new();
    let mut group_ids = Map::new();
    for group in &ctx.spec.groups {
        let name = ctx.names.group(&group.name);
        let body = json!({"displayName": name, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]});
        let d = desired("group", name.clone(), json!({}), Updatable::No);
        let converged = ctx
            .resource(Some(&api), &account::groups(&api, &name), d, body, false)
            .await?;
        result.changes.push(converged.change.clone());
        let id = converged
            .id
            .clone()
            .filter(|_| converged.change.action != Action::Delete);
        group_ids.insert(group.name.clone(), json!(id));
        principals.push((name, id, group.workspace_permission.clone()));
    }
    result
        .outputs
        .insert("group_ids".into(), Value::Object(group_ids));

    let sp_name = ctx.names.service_principal();
    let body = json!({
        "displayName": sp_name,
        "active": true,
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"],
    });
    let d = desired(
        "service_principal",
        sp_name.clone(),
        json!({"active": true}),
        Updatable::No,
    );
    let converged = ctx
        .resource(
            Some(&api),
            &account::service_principals(&api, &sp_name),
            d,
            body,
            false,
        )
        .await?;
    record(&mut result, "service_principal_id", &converged);
    let application_id = converged
        .value
        .as_ref()
        .and_then(|v| v.get("applicationId"))
        .and_then(Value::as_str)
        .filter(|_| converged.change.action != Action::Delete)
        .map(str::to_string);
    result.outputs.insert(
        "service_principal_application_id".into(),
        json!(application_id),
    );
    if ctx.mode == Mode::Destroy {
        return Ok(result);
    }
    principals.push((
        sp_name.clone(),
        converged.id.clone(),
        ctx.spec.service_principal.workspace_permission.clone(),
    ));

    // Workspace permission assignments.
    let assigned: Map<String, Value> = match &workspace_id {
        Some(ws) => {
            let list: Value = api
                .get(&api.account_path(&format!("workspaces/{ws}/permissionassignments")))
                .await
                .map_err(databricks_failure)?;
            list["permission_assignments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| {
                    let id = a
                        .pointer("/principal/principal_id")
                        .and_then(resources::id_string)?;
                    Some((id, a["permissions"].clone()))
                })
                .collect()
        }
        None => Map::new(),
    };
    for (name, id, permission) in &principals {
        let resource = format!("{name}@{}", ctx.spec.workspace.name);
        let current = id.as_ref().and_then(|id| assigned.get(id));
        let wanted = json!([permission]);
        let change = match current {
            Some(have) if crate::plan::differing_fields(&wanted, have).is_empty() => {
                Change::new(Action::None, "permission_assignment", &resource)
            }
            Some(_) => Change::new(Action::Update, "permission_assignment", &resource)
                .with_fields(vec!["permissions".into()]),
            None => Change::new(Action::Create, "permission_assignment", &resource),
        };
        if ctx.mode == Mode::Apply && change.action != Action::None {
            let (Some(ws), Some(id)) = (&workspace_id, id) else {
                return Err(Error::terminal(
                    "outputs.workspace_id is missing: run stage workspace first",
                )
                .into());
            };
            api.put::<_, Value>(
                &api.account_path(&format!(
                    "workspaces/{ws}/permissionassignments/principals/{id}"
                )),
                &json!({"permissions": [permission]}),
            )
            .await
            .map_err(databricks_failure)?;
        }
        result.changes.push(change);
    }

    // The service principal's OAuth secret, kept in Secrets Manager only.
    let info = ctx.secrets().describe(&secret_name).await?;
    let stored = match (&info, &converged.id) {
        (Some(info), Some(sp_id)) if !info.deleted => {
            match ctx.secrets().credential(&secret_name).await? {
                Credential::DatabricksSpSecret(sp) if sp.service_principal_id == *sp_id => Some(sp),
                _ => None,
            }
        }
        _ => None,
    };
    let live = match (&stored, &converged.id) {
        (Some(sp), Some(sp_id)) => {
            let list: Value = api
                .get(&api.account_path(&format!("servicePrincipals/{sp_id}/credentials/secrets")))
                .await
                .map_err(databricks_failure)?;
            list["secrets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["id"].as_str() == Some(sp.secret_id.as_str()))
        }
        _ => false,
    };
    if live {
        result.changes.push(
            Change::new(Action::None, "secret", &secret_name)
                .with_id(info.as_ref().map(|i| i.arn.clone())),
        );
        result.outputs.insert(
            "service_principal_secret_arn".into(),
            json!(info.map(|i| i.arn)),
        );
        return Ok(result);
    }
    let action = if info.as_ref().is_some_and(|i| !i.deleted) {
        Action::Update
    } else {
        Action::Create
    };
    if ctx.mode == Mode::Plan {
        result
            .changes
            .push(Change::new(action, "secret", &secret_name));
        return Ok(result);
    }
    let (Some(sp_id), Some(client_id)) = (converged.id.clone(), application_id) else {
        return Err(Error::terminal("the service principal has no id or application id").into());
    };
    let created: Value = api
        .post(
            &api.account_path(&format!("servicePrincipals/{sp_id}/credentials/secrets")),
            &json!({}),
        )
        .await
        .map_err(databricks_failure)?;
    let credential = Credential::DatabricksSpSecret(DatabricksSpSecret {
        account_id: ctx.spec.account.id.clone(),
        service_principal_id: sp_id,
        client_id,
        client_secret: lakeops_shared::Secret::new(created["secret"].as_str().unwrap_or_default()),
        secret_id: created["id"].as_str().unwrap_or_default().to_string(),
        lifetime_days: None,
        admin_secret_id: None,
    });
    let arn = ctx
        .secrets()
        .store(
            &secret_name,
            &format!(
                "OAuth secret of the lakeops {} automation service principal",
                ctx.spec.environment
            ),
            &credential,
            &ctx.spec.environment,
        )
        .await?;
    result
        .changes
        .push(Change::new(action, "secret", &secret_name).with_id(Some(arn.clone())));
    result
        .outputs
        .insert("service_principal_secret_arn".into(), json!(arn));
    Ok(result)
}

async fn pat(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    let mut result = StageResult::default();
    let Some(pat) = &ctx.spec.pat else {
        return Ok(result);
    };
    let secret_name = ctx.names.pat_secret();
    let comment = ctx.names.pat_comment();
    let info = ctx.secrets().describe(&secret_name).await?;
    let info = info.filter(|i| !i.deleted);

    // The token belongs to the automation service principal: call as it.
    let sp_secret = match ctx
        .secrets()
        .describe(&ctx.names.service_principal_secret())
        .await?
    {
        Some(i) if !i.deleted => match ctx
            .secrets()
            .credential(&ctx.names.service_principal_secret())
            .await?
        {
            Credential::DatabricksSpSecret(sp) => Some(sp),
            _ => None,
        },
        _ => None,
    };
    let api = match (ctx.output_str("deployment_name"), &sp_secret) {
        (Some(deployment), Some(sp)) => Some(ctx.connector.workspace(
            deployment,
            Credentials::OAuthM2M {
                client_id: sp.client_id.clone(),
                client_secret: sp.client_secret.clone(),
            },
        )),
        _ => None,
    };
    if api.is_none() && ctx.mode == Mode::Apply {
        return Err(Error::terminal("the workspace or the automation service principal's secret is missing: run stages workspace and identity first").into());
    }
    let tokens = workspace::tokens();
    let token = match &api {
        Some(api) => tokens.find(api, &comment, false).await?,
        None => None,
    };
    let stored = match &info {
        Some(_) => match ctx.secrets().credential(&secret_name).await? {
            Credential::DatabricksPat(p) => Some(p),
            _ => None,
        },
        None => None,
    };

    if ctx.mode == Mode::Destroy {
        if let (Some(api), Some(token)) = (&api, &token) {
            api.post::<_, Value>("/api/2.0/token/delete", &json!({"token_id": token.id}))
                .await
                .map_err(databricks_failure)?;
            result.changes.push(
                Change::new(Action::Delete, "token", &comment).with_id(Some(token.id.clone())),
            );
        }
        if let Some(info) = &info {
            ctx.secrets().delete(&secret_name).await?;
            result.changes.push(
                Change::new(Action::Delete, "secret", &secret_name).with_id(Some(info.arn.clone())),
            );
        }
        result.outputs.insert("pat_secret_arn".into(), Value::Null);
        result.outputs.insert("pat_token_id".into(), Value::Null);
        return Ok(result);
    }

    let in_sync = matches!((&token, &stored), (Some(t), Some(s)) if t.id == s.token_id);
    let mut token_id = token.as_ref().map(|t| t.id.clone());
    let mut arn = info.as_ref().map(|i| i.arn.clone());
    if in_sync {
        result
            .changes
            .push(Change::new(Action::None, "token", &comment).with_id(token_id.clone()));
    } else {
        // A token whose value is lost (no secret holds it) is replaced.
        let action = if token.is_some() || stored.is_some() {
            Action::Update
        } else {
            Action::Create
        };
        if ctx.mode == Mode::Apply {
            let api = api
                .as_ref()
                .ok_or_else(|| StageFailure::from(Error::terminal("no workspace API")))?;
            if let Some(old) = &token {
                api.post::<_, Value>("/api/2.0/token/delete", &json!({"token_id": old.id}))
                    .await
                    .map_err(databricks_failure)?;
            }
            let created: Value = api
                .post(
                    "/api/2.0/token/create",
                    &json!({"comment": comment, "lifetime_seconds": u64::from(pat.lifetime_days) * 86_400}),
                )
                .await
                .map_err(databricks_failure)?;
            let new_id = created
                .pointer("/token_info/token_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let credential = Credential::DatabricksPat(DatabricksPat {
                workspace_url: api.base_url().to_string(),
                token: lakeops_shared::Secret::new(
                    created["token_value"].as_str().unwrap_or_default(),
                ),
                token_id: new_id.clone(),
                lifetime_days: pat.lifetime_days,
                admin_secret_id: None,
                application_id: sp_secret.as_ref().map(|s| s.client_id.clone()),
            });
            arn = Some(
                ctx.secrets()
                    .store(
                        &secret_name,
                        &format!(
                            "PAT of the lakeops {} automation service principal",
                            ctx.spec.environment
                        ),
                        &credential,
                        &ctx.spec.environment,
                    )
                    .await?,
            );
            token_id = Some(new_id);
        }
        result
            .changes
            .push(Change::new(action, "token", &comment).with_id(token_id.clone()));
    }

    // Rotation, so the token never reaches its expiry.
    let function = pat
        .rotation_function_arn
        .clone()
        .or_else(|| ctx.platform.pat_rotation_function_arn.clone());
    let days = i64::from(pat.rotation_days);
    let current = ctx
        .secrets()
        .describe(&secret_name)
        .await?
        .filter(|i| !i.deleted);
    let rotating = current.as_ref().is_some_and(|i| {
        i.rotation_enabled
            && i.rotation_days == Some(days)
            && i.rotation_lambda_arn.is_some()
            && (function.is_none() || i.rotation_lambda_arn == function)
    });
    let rotation_resource = format!("{secret_name}#rotation");
    if rotating {
        result.changes.push(Change::new(
            Action::None,
            "secret_rotation",
            &rotation_resource,
        ));
    } else {
        let action = if current.as_ref().is_some_and(|i| i.rotation_enabled) {
            Action::Update
        } else {
            Action::Create
        };
        if ctx.mode == Mode::Apply {
            let Some(function) = function else {
                return Err(Error::invalid_input(
                    "pat.rotation_function_arn: required to enable rotation (or set PAT_ROTATION_FUNCTION_ARN on the function)",
                )
                .into());
            };
            ctx.secrets()
                .enable_rotation(&secret_name, &function, days)
                .await?;
        }
        result
            .changes
            .push(Change::new(action, "secret_rotation", &rotation_resource));
    }
    result.outputs.insert("pat_secret_arn".into(), json!(arn));
    result
        .outputs
        .insert("pat_token_id".into(), json!(token_id));
    Ok(result)
}

/// The single-node cluster's create body. Pure.
pub fn cluster_body(
    spec: &PlatformSpec,
    names: &Names,
    policy_id: Option<String>,
    pool_id: Option<String>,
) -> (Value, Value) {
    let cluster = &spec.compute.cluster;
    let mut compare = json!({
        "spark_version": cluster.spark_version,
        "num_workers": 0,
        "autotermination_minutes": cluster.autotermination_minutes,
    });
    match pool_id {
        Some(pool) => compare["instance_pool_id"] = json!(pool),
        None => compare["node_type_id"] = json!(cluster.node_type_id),
    }
    insert_some(&mut compare, "policy_id", policy_id);
    let mut body = compare.clone();
    body["cluster_name"] = json!(names.cluster());
    body["spark_conf"] = json!({
        "spark.databricks.cluster.profile": "singleNode",
        "spark.master": "local[*, 4]",
    });
    body["custom_tags"] =
        json!({"ResourceClass": "SingleNode", "lakeops-environment": spec.environment});
    if let Some(profile) = &spec.compute.instance_profile_arn {
        body["aws_attributes"] = json!({"instance_profile_arn": profile});
    }
    (body, compare)
}

async fn compute(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    let api = ctx.workspace_api().await?;
    if api.is_none() && ctx.mode == Mode::Apply {
        return Err(Error::terminal(
            "outputs.deployment_name is missing: run stage workspace first",
        )
        .into());
    }
    let api = api.as_ref();
    let compute = &ctx.spec.compute;
    let mut result = StageResult::default();
    let destroy = ctx.mode == Mode::Destroy;

    // Create order: profile, policy, pool, cluster. Destroy: the reverse.
    let mut steps: Vec<&str> = vec!["instance_profile", "policy", "pool", "cluster"];
    if destroy {
        steps.reverse();
    }
    let mut policy_id = None;
    let mut pool_id = None;
    if !destroy {
        policy_id = compute
            .policy
            .as_ref()
            .map(|_| KNOWN_AFTER_APPLY.to_string());
        pool_id = compute
            .instance_pool
            .as_ref()
            .map(|_| KNOWN_AFTER_APPLY.to_string());
    }
    for step in steps {
        match step {
            "instance_profile" => {
                let Some(arn) = &compute.instance_profile_arn else {
                    continue;
                };
                let d = desired("instance_profile", arn.clone(), json!({}), Updatable::No);
                let converged = ctx
                    .resource(
                        api,
                        &workspace::instance_profiles(),
                        d,
                        json!({"instance_profile_arn": arn}),
                        false,
                    )
                    .await?;
                record(&mut result, "instance_profile_arn", &converged);
            }
            "policy" => {
                let Some(policy) = &compute.policy else {
                    continue;
                };
                let definition = policy.definition.to_string();
                let body = json!({"name": ctx.names.cluster_policy(), "definition": definition});
                let d = desired(
                    "cluster_policy",
                    ctx.names.cluster_policy(),
                    json!({"definition": definition}),
                    Updatable::Yes,
                );
                let converged = ctx
                    .resource(api, &workspace::cluster_policies(), d, body, false)
                    .await?;
                record(&mut result, "cluster_policy_id", &converged);
                if converged.id.is_some() {
                    policy_id = converged.id.clone();
                }
            }
            "pool" => {
                let Some(pool) = &compute.instance_pool else {
                    continue;
                };
                let compare = json!({
                    "node_type_id": pool.node_type_id,
                    "min_idle_instances": pool.min_idle_instances,
                    "max_capacity": pool.max_capacity,
                    "idle_instance_autotermination_minutes": pool.idle_instance_autotermination_minutes,
                });
                let mut body = compare.clone();
                body["instance_pool_name"] = json!(ctx.names.instance_pool());
                let d = desired(
                    "instance_pool",
                    ctx.names.instance_pool(),
                    compare,
                    Updatable::Except(&["node_type_id"]),
                );
                let converged = ctx
                    .resource(api, &workspace::instance_pools(), d, body, false)
                    .await?;
                record(&mut result, "instance_pool_id", &converged);
                if converged.id.is_some() {
                    pool_id = converged.id.clone();
                }
            }
            _ => {
                let (body, compare) =
                    cluster_body(ctx.spec, &ctx.names, policy_id.clone(), pool_id.clone());
                let d = desired("cluster", ctx.names.cluster(), compare, Updatable::Yes);
                let converged = ctx
                    .resource(api, &workspace::clusters(), d, body, false)
                    .await?;
                record(&mut result, "cluster_id", &converged);
            }
        }
    }
    Ok(result)
}

async fn catalog(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    let api = ctx.workspace_api().await?;
    if api.is_none() && ctx.mode == Mode::Apply {
        return Err(Error::terminal(
            "outputs.deployment_name is missing: run stage workspace first",
        )
        .into());
    }
    let uc = &ctx.spec.unity_catalog;
    let mut result = StageResult::default();
    // The metastore assignment becomes visible to the workspace some time
    // after it is made: until then, retry (the state machine backs off).
    if let (Some(api), Mode::Apply) = (&api, ctx.mode) {
        let wanted = ctx.need("metastore_id", Stage::Metastore)?;
        let current: Option<Value> = api
            .get_optional("/api/2.1/unity-catalog/current-metastore-assignment")
            .await
            .map_err(databricks_failure)?;
        let visible = current.as_ref().and_then(|c| c["metastore_id"].as_str());
        if visible != Some(wanted.as_str()) {
            return Err(Error::retryable(format!(
                "the workspace does not see metastore {wanted} yet (it sees {}); retrying",
                visible.unwrap_or("none")
            ))
            .into());
        }
    }
    let api = api.as_ref();
    let catalog_name = ctx.spec.catalog_name();
    let comment = format!("{OWNER_MARK} ({})", ctx.spec.environment);
    let credential_name = ctx.names.storage_credential();

    let mut steps = vec![
        "storage_credential",
        "external_locations",
        "catalog",
        "schemas",
        "volumes",
    ];
    if ctx.mode == Mode::Destroy {
        steps.reverse();
    }
    for step in steps {
        match step {
            "storage_credential" => {
                let compare = json!({"aws_iam_role": {"role_arn": uc.storage_credential.role_arn}});
                let mut body = compare.clone();
                body["name"] = json!(credential_name);
                body["comment"] = json!(comment);
                let d = desired(
                    "storage_credential",
                    credential_name.clone(),
                    compare,
                    Updatable::Yes,
                );
                let converged = ctx
                    .resource(api, &workspace::storage_credentials(), d, body, false)
                    .await?;
                record(&mut result, "storage_credential_name", &converged);
            }
            "external_locations" => {
                let mut names = Vec::new();
                for location in &uc.external_locations {
                    let name = ctx.names.external_location(&location.name);
                    let compare = json!({"url": location.url, "credential_name": credential_name});
                    let mut body = compare.clone();
                    body["name"] = json!(name);
                    body["comment"] = json!(comment);
                    let d = desired("external_location", name.clone(), compare, Updatable::Yes);
                    let converged = ctx
                        .resource(api, &workspace::external_locations(), d, body, false)
                        .await?;
                    result.changes.push(converged.change.clone());
                    if converged.id.is_some() && converged.change.action != Action::Delete {
                        names.push(json!(name));
                    }
                }
                result
                    .outputs
                    .insert("external_locations".into(), Value::Array(names));
            }
            "catalog" => {
                let compare = json!({"storage_root": uc.catalog.storage_root});
                let body = json!({"name": catalog_name, "storage_root": uc.catalog.storage_root, "comment": comment});
                let d = desired("catalog", catalog_name.clone(), compare, Updatable::No);
                let converged = ctx
                    .resource(api, &workspace::catalogs(), d, body, false)
                    .await?;
                record(&mut result, "catalog_name", &converged);
            }
            "schemas" => {
                let mut names = Vec::new();
                for schema in &uc.schemas {
                    let body =
                        json!({"name": schema, "catalog_name": catalog_name, "comment": comment});
                    let d = desired("schema", schema.clone(), json!({}), Updatable::No);
                    let converged = ctx
                        .resource(api, &workspace::schemas(&catalog_name), d, body, false)
                        .await?;
                    result.changes.push(converged.change.clone());
                    if converged.change.action != Action::Delete {
                        names.push(json!(format!("{catalog_name}.{schema}")));
                    }
                }
                result.outputs.insert("schemas".into(), Value::Array(names));
            }
            _ => {
                let mut names = Vec::new();
                for volume in &uc.volumes {
                    let compare =
                        json!({"volume_type": "EXTERNAL", "storage_location": volume.location});
                    let mut body = compare.clone();
                    body["name"] = json!(volume.name);
                    body["catalog_name"] = json!(catalog_name);
                    body["schema_name"] = json!(volume.schema);
                    body["comment"] = json!(comment);
                    let d = desired("volume", volume.name.clone(), compare, Updatable::No);
                    let converged = ctx
                        .resource(
                            api,
                            &workspace::volumes(&catalog_name, &volume.schema),
                            d,
                            body,
                            false,
                        )
                        .await?;
                    result.changes.push(converged.change.clone());
                    if converged.change.action != Action::Delete {
                        names.push(json!(format!(
                            "{catalog_name}.{}.{}",
                            volume.schema, volume.name
                        )));
                    }
                }
                result.outputs.insert("volumes".into(), Value::Array(names));
            }
        }
    }
    if ctx.mode == Mode::Destroy {
        result.outputs.insert("catalog_name".into(), Value::Null);
    } else {
        result
            .outputs
            .insert("catalog_name".into(), json!(catalog_name));
    }
    Ok(result)
}

/// The global init script that writes `core-site.xml` for S3 client-side
/// encryption with a KMS key (Hadoop S3A `CSE-KMS`). Pure.
pub fn client_side_encryption_script(kms_key_arn: &str) -> String {
    format!(
        r#"#!/bin/bash
# Written by lakeops provision: S3 client-side encryption with KMS.
set -euo pipefail
mkdir -p /databricks/driver/conf
cat > /databricks/driver/conf/lakeops-core-site.xml <<'XML'
<?xml version="1.0"?>
<configuration>
  <property><name>fs.s3a.encryption.algorithm</name><value>CSE-KMS</value></property>
  <property><name>fs.s3a.encryption.key</name><value>{kms_key_arn}</value></property>
</configuration>
XML
cp /databricks/driver/conf/lakeops-core-site.xml /databricks/hive/conf/core-site.xml 2>/dev/null || true
"#
    )
}

async fn extras(ctx: &Ctx<'_>) -> Result<StageResult, StageFailure> {
    use base64::Engine as _;
    let api = ctx.workspace_api().await?;
    if api.is_none() && ctx.mode == Mode::Apply {
        return Err(Error::terminal(
            "outputs.deployment_name is missing: run stage workspace first",
        )
        .into());
    }
    let api = api.as_ref();
    let mut result = StageResult::default();

    if let Some(script) = &ctx.spec.init_script {
        let content = base64::engine::general_purpose::STANDARD
            .encode(client_side_encryption_script(&script.kms_key_arn));
        let body = json!({"name": ctx.names.init_script(), "script": content, "enabled": true, "position": 0});
        let d = desired(
            "global_init_script",
            ctx.names.init_script(),
            json!({"enabled": true}),
            Updatable::No,
        );
        let converged = ctx
            .resource(api, &workspace::global_init_scripts(), d, body, false)
            .await?;
        record(&mut result, "init_script_id", &converged);
    }

    let mut job_ids = Map::new();
    for job in &ctx.spec.jobs {
        let name = ctx.names.job(&job.name);
        let cluster_id = if ctx.mode == Mode::Destroy {
            KNOWN_AFTER_APPLY.to_string()
        } else {
            ctx.need("cluster_id", Stage::Compute)?
        };
        let body = json!({
            "name": name,
            "max_concurrent_runs": 1,
            "tags": {"lakeops-environment": ctx.spec.environment},
            "tasks": [{
                "task_key": "main",
                "existing_cluster_id": cluster_id,
                "notebook_task": {"notebook_path": job.notebook_path},
            }],
        });
        let d = desired("job", name.clone(), json!({}), Updatable::No);
        let converged = ctx
            .resource(api, &workspace::jobs(&name), d, body, false)
            .await?;
        result.changes.push(converged.change.clone());
        let id = converged
            .id
            .clone()
            .filter(|_| converged.change.action != Action::Delete);
        job_ids.insert(job.name.clone(), json!(id));
    }
    result
        .outputs
        .insert("job_ids".into(), Value::Object(job_ids));

    let mut repo_ids = Map::new();
    for repo in &ctx.spec.repos {
        let compare = json!({"url": repo.url, "provider": repo.provider});
        let mut body = compare.clone();
        body["path"] = json!(repo.path);
        let d = desired("repo", repo.path.clone(), compare, Updatable::No);
        let converged = ctx
            .resource(api, &workspace::repos(&repo.path), d, body, false)
            .await?;
        result.changes.push(converged.change.clone());
        let id = converged
            .id
            .clone()
            .filter(|_| converged.change.action != Action::Delete);
        repo_ids.insert(repo.path.clone(), json!(id));
    }
    result
        .outputs
        .insert("repo_ids".into(), Value::Object(repo_ids));
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::{full, minimal};

    #[test]
    fn assumed_sessions_are_renewed_before_they_expire() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let minutes = |m: u64| std::time::Duration::from_secs(m * 60);
        assert!(session_is_fresh(Some(now + minutes(60)), now));
        assert!(session_is_fresh(Some(now + minutes(6)), now));
        // Within the margin, or past it: assume again.
        assert!(!session_is_fresh(Some(now + minutes(5)), now));
        assert!(!session_is_fresh(Some(now + minutes(1)), now));
        assert!(!session_is_fresh(Some(now - minutes(1)), now));
        // Unknown expiry: never trusted.
        assert!(!session_is_fresh(None, now));
    }

    #[test]
    fn one_key_for_both_use_cases_is_registered_once() {
        let mut value = full();
        value["encryption"]["storage"]["key_arn"] =
            value["encryption"]["managed_services"]["key_arn"].clone();
        let spec = crate::spec::parse(&value).unwrap();
        let keys = key_registrations(&spec);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].2, vec!["MANAGED_SERVICES", "STORAGE"]);
        let spec = crate::spec::parse(&full()).unwrap();
        assert_eq!(key_registrations(&spec).len(), 2);
        let spec = crate::spec::parse(&minimal()).unwrap();
        assert!(key_registrations(&spec).is_empty());
    }

    #[test]
    fn workspace_body_names_every_configuration_it_uses() {
        let spec = crate::spec::parse(&full()).unwrap();
        let mut ids = Map::new();
        for key in [
            "credentials_id",
            "storage_configuration_id",
            "network_id",
            "private_access_settings_id",
            "managed_services_key_id",
            "storage_key_id",
        ] {
            ids.insert(key.into(), json!(format!("id-{key}")));
        }
        let (body, compare) = workspace_body(&spec, &ids);
        assert_eq!(body["workspace_name"], json!("lakeops-dev"));
        assert_eq!(
            compare["storage_customer_managed_key_id"],
            json!("id-storage_key_id")
        );
        assert_eq!(
            compare["private_access_settings_id"],
            json!("id-private_access_settings_id")
        );
        assert!(compare.get("workspace_name").is_none());
        // In plan, unknown ids are left out rather than compared as placeholders.
        ids.insert("network_id".into(), json!(KNOWN_AFTER_APPLY));
        let (body, _) = workspace_body(&spec, &ids);
        assert!(body.get("network_id").is_none());
    }

    #[test]
    fn single_node_cluster() {
        let spec = crate::spec::parse(&full()).unwrap();
        let (body, compare) = cluster_body(
            &spec,
            &Names::new("prod"),
            Some("p-1".into()),
            Some("pool-1".into()),
        );
        assert_eq!(body["num_workers"], json!(0));
        assert_eq!(
            body["spark_conf"]["spark.databricks.cluster.profile"],
            json!("singleNode")
        );
        assert_eq!(body["custom_tags"]["ResourceClass"], json!("SingleNode"));
        assert_eq!(compare["instance_pool_id"], json!("pool-1"));
        assert!(compare.get("node_type_id").is_none());
        assert_eq!(
            body["aws_attributes"]["instance_profile_arn"],
            json!(spec.compute.instance_profile_arn.clone().unwrap())
        );
        let (_, compare) = cluster_body(&spec, &Names::new("prod"), None, None);
        assert_eq!(compare["node_type_id"], json!("m5d.large"));
    }

    #[test]
    fn init_script_writes_the_key() {
        let script = client_side_encryption_script("arn:aws:kms:eu-west-1:1:key/k");
        assert!(script.starts_with("#!/bin/bash"));
        assert!(script.contains("<value>arn:aws:kms:eu-west-1:1:key/k</value>"));
        assert!(script.contains("CSE-KMS"));
    }
}
