//! Whole-stack tests of provisioning and credential rotation: the REAL
//! `ProvisionStateMachine` runs in moto's Step Functions, which invokes the
//! real `provision` function through the local stack's router; Databricks is
//! the emulator; `RotateSecret` makes moto invoke the real rotate-credentials
//! function. Nothing is called in-process.
//!
//! Timing: the emulator provisions a workspace in 2 s, but the function's
//! `workspace_ready` stage answers "wait 30 s" while a workspace is
//! PROVISIONING (the ASL's Wait state reads `$.wait_seconds`), so every apply
//! that creates a workspace takes at least ~30 s.

use aws_sdk_secretsmanager::Client as SecretsClient;
use aws_sdk_sfn::types::ExecutionStatus;
use lakeops_tests::{tail, Execution, LocalStack};
use serde_json::{json, Value};
use std::time::Duration;

const ADMIN_CLIENT_ID: &str = "00000000-0000-0000-0000-0000000000a1";
const ADMIN_CLIENT_SECRET: &str = "dose00000000000000000000000000000001";
const ACCOUNT_ID: &str = "00000000-0000-0000-0000-000000000001";
const ACCOUNT_SECRET: &str = "lakeops/dev/databricks/account-sp";
const PAT_SECRET: &str = "lakeops/dev/databricks/pat";
const EDGE_KEY_SECRET: &str = "lakeops/dev/edge-devices/access-key";

struct Harness {
    stack: LocalStack,
    sdk: aws_config::SdkConfig,
    http: reqwest::Client,
    account_secret_arn: String,
}

impl Harness {
    async fn start() -> Harness {
        let stack = LocalStack::start();
        let sdk = stack.sdk_config().await;
        let secrets = SecretsClient::new(&sdk);
        // The account admin's OAuth credentials: the emulator's admin service principal.
        let admin = json!({
            "kind": "databricks-sp-secret",
            "account_id": ACCOUNT_ID,
            "service_principal_id": "1000000000000001",
            "client_id": ADMIN_CLIENT_ID,
            "client_secret": ADMIN_CLIENT_SECRET,
            "secret_id": "bootstrap",
        });
        let created = secrets
            .create_secret()
            .name(ACCOUNT_SECRET)
            .secret_string(admin.to_string())
            .send()
            .await
            .unwrap();
        Harness {
            stack,
            sdk,
            http: reqwest::Client::new(),
            account_secret_arn: created.arn().unwrap().to_string(),
        }
    }

    fn secrets(&self) -> SecretsClient {
        SecretsClient::new(&self.sdk)
    }

    /// A spec adapted from events/provision-minimal.json, with a PAT.
    fn minimal_spec(&self) -> Value {
        let mut spec: Value = serde_json::from_str(
            &std::fs::read_to_string(
                lakeops_tests::repo_root().join("events/provision-minimal.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let spec = spec["spec"].take();
        let mut spec = spec;
        spec["account"]["credentials_secret_arn"] = json!(self.account_secret_arn);
        spec["pat"] = json!({"lifetime_days": 90, "rotation_days": 30});
        spec
    }

    async fn emulator_state(&self) -> Value {
        self.http
            .get(format!("{}/_emulator/state", self.stack.databricks_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn faults(&self, config: Value) {
        let response = self
            .http
            .post(format!("{}/_emulator/faults", self.stack.databricks_url))
            .json(&config)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
    }

    /// Run the provision state machine to its end.
    async fn run(&self, mode: &str, spec: &Value, timeout: Duration) -> Execution {
        self.stack
            .execute(
                "ProvisionStateMachine",
                &json!({"mode": mode, "spec": spec}),
                timeout,
            )
            .await
    }

    async fn run_ok(&self, mode: &str, spec: &Value, timeout: Duration) -> Value {
        let execution = self.run(mode, spec, timeout).await;
        assert_eq!(
            execution.status,
            ExecutionStatus::Succeeded,
            "{mode} failed: {} {}\nlambda logs:\n{}",
            execution.error,
            execution.cause,
            tail(&self.stack.lambda_logs(), 8000)
        );
        // The state machine runs its environments in a Map: one result per environment.
        match execution.output {
            Value::Array(mut results) if results.len() == 1 => results.remove(0),
            other => panic!("{mode}: expected one environment's result, got {other}"),
        }
    }

    /// Stage names of AWSCURRENT / AWSPREVIOUS / AWSPENDING by version id.
    async fn version_stages(&self, secret_id: &str) -> Vec<(String, Vec<String>)> {
        let versions = self
            .secrets()
            .list_secret_version_ids()
            .secret_id(secret_id)
            .include_deprecated(true)
            .send()
            .await
            .unwrap();
        let mut out: Vec<(String, Vec<String>)> = versions
            .versions()
            .iter()
            .map(|v| {
                (
                    v.version_id().unwrap().to_string(),
                    v.version_stages().to_vec(),
                )
            })
            .collect();
        out.sort();
        out
    }

    async fn current_value(&self, secret_id: &str) -> (String, Value) {
        let value = self
            .secrets()
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .unwrap();
        (
            value.version_id().unwrap().to_string(),
            serde_json::from_str(value.secret_string().unwrap()).unwrap(),
        )
    }
}

fn changes(output: &Value) -> Vec<(String, String)> {
    output["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes in {output}"))
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_string(),
                c["resource"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn resources_of_kind(changes: &[(String, String)], kind: &str) -> usize {
    changes
        .iter()
        .filter(|(_, r)| r.starts_with(&format!("{kind}/")))
        .count()
}

/// The emulator's state without what reading creates (OAuth access tokens).
fn resources_only(mut state: Value) -> Value {
    let map = state.as_object_mut().unwrap();
    map.remove("oauth_tokens");
    map.remove("fault_counters");
    state
}

/// Names of the emulator's resources that provisioning creates, each with how often it is there.
fn named_counts(state: &Value) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    fn walk(prefix: &str, value: &Value, counts: &mut std::collections::BTreeMap<String, usize>) {
        match value {
            Value::Object(map) => {
                for key in [
                    "workspace_name",
                    "credentials_name",
                    "storage_configuration_name",
                    "network_name",
                    "config_name",
                    "displayName",
                    "cluster_name",
                    "policy_name",
                    "instance_pool_name",
                    "comment",
                    "full_name",
                ] {
                    if let Some(Value::String(name)) = map.get(key) {
                        if name.contains("lakeops") || name.starts_with("dev") {
                            *counts.entry(format!("{prefix}{key}={name}")).or_insert(0) += 1;
                        }
                    }
                }
                for (key, v) in map {
                    // A cluster repeats its name in the `spec` it was created with.
                    if key != "spec" && matches!(v, Value::Object(_) | Value::Array(_)) {
                        walk(prefix, v, counts);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(prefix, v, counts)),
            _ => {}
        }
    }
    walk("", state, &mut counts);
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_apply_reapply_destroy_through_the_state_machine() {
    let h = Harness::start().await;
    let spec = h.minimal_spec();
    let empty = resources_only(h.emulator_state().await);

    // plan on an empty account: every resource is a create, nothing changes.
    let plan = h.run_ok("plan", &spec, Duration::from_secs(180)).await;
    let planned = changes(&plan);
    assert!(!planned.is_empty());
    assert!(
        planned.iter().all(|(action, _)| action == "create"),
        "{planned:?}"
    );
    for kind in [
        "credentials",
        "storage_configuration",
        "network",
        "workspace",
        "metastore",
        "catalog",
        "schema",
    ] {
        assert!(
            resources_of_kind(&planned, kind) >= 1,
            "plan lists no {kind}: {planned:?}"
        );
    }
    assert_eq!(
        resources_only(h.emulator_state().await),
        empty,
        "plan changed the account"
    );

    // apply creates everything.
    let applied = h.run_ok("apply", &spec, Duration::from_secs(300)).await;
    assert_eq!(applied["status"], "SUCCEEDED");
    let created = changes(&applied);
    assert!(
        created.iter().all(|(action, _)| action == "create"),
        "{created:?}"
    );
    for (_, resource) in &planned {
        assert!(
            created.iter().any(|(_, r)| r == resource),
            "apply did not create {resource}: {created:?}"
        );
    }
    let workspace_url = applied["workspace_url"].as_str().unwrap();
    assert!(
        workspace_url.starts_with(&format!("{}/ws/", h.stack.databricks_url)),
        "{applied}"
    );
    assert_eq!(applied["catalog"], "dev");
    assert_eq!(applied["schemas"], json!(["dev.sandbox", "dev.raw"]));
    let state = h.emulator_state().await;
    let counts = named_counts(&state);
    for name in [
        "workspace_name=lakeops-dev",
        "credentials_name=lakeops-dev-credentials",
        "storage_configuration_name=lakeops-dev-storage",
        "network_name=lakeops-dev-network",
        "full_name=dev.sandbox",
        "full_name=dev.raw",
    ] {
        assert_eq!(counts.get(name), Some(&1), "{name} in {counts:?}");
    }
    let secrets = h.secrets();
    for secret in ["lakeops/dev/databricks/automation-sp", PAT_SECRET] {
        let described = secrets
            .describe_secret()
            .secret_id(secret)
            .send()
            .await
            .unwrap();
        assert!(described.deleted_date().is_none());
    }
    let (_, pat) = h.current_value(PAT_SECRET).await;
    assert_eq!(pat["kind"], "databricks-pat");
    let pat_described = secrets
        .describe_secret()
        .secret_id(PAT_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(pat_described.rotation_enabled(), Some(true));
    assert_eq!(
        pat_described.rotation_lambda_arn().unwrap(),
        h.stack.outputs["outputs"]["RotateCredentialsFunctionArn"]
            .as_str()
            .unwrap_or_else(|| pat_described.rotation_lambda_arn().unwrap())
    );

    // A second apply changes nothing.
    let again = h.run_ok("apply", &spec, Duration::from_secs(180)).await;
    let second = changes(&again);
    assert!(
        second.iter().all(|(action, _)| action == "none"),
        "{second:?}"
    );
    assert_eq!(named_counts(&h.emulator_state().await), counts);

    // destroy removes what apply created.
    let destroyed = h.run_ok("destroy", &spec, Duration::from_secs(300)).await;
    assert_eq!(destroyed["status"], "SUCCEEDED");
    let after = named_counts(&h.emulator_state().await);
    for name in [
        "workspace_name=lakeops-dev",
        "credentials_name=lakeops-dev-credentials",
        "storage_configuration_name=lakeops-dev-storage",
        "network_name=lakeops-dev-network",
        "full_name=dev.sandbox",
    ] {
        assert_eq!(
            after.get(name),
            None,
            "{name} left after destroy: {after:?}"
        );
    }
    for secret in ["lakeops/dev/databricks/automation-sp", PAT_SECRET] {
        let described = secrets
            .describe_secret()
            .secret_id(secret)
            .send()
            .await
            .unwrap();
        assert!(
            described.deleted_date().is_some(),
            "{secret} not scheduled for deletion"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_with_injected_faults_creates_each_resource_once() {
    let h = Harness::start().await;
    let spec = h.minimal_spec();
    // One failed credential validation costs one Step Functions retry of
    // 0-15 s (IntervalSeconds 15, full jitter); throttling and outages are
    // absorbed by the client's retries or the state machine's 5 s retries.
    h.faults(json!({
        "throttle_rate": 0.15,
        "unavailable_rate": 0.1,
        "retry_after_seconds": 1,
        "credential_validation_failures": 1,
    }))
    .await;
    let applied = h.run_ok("apply", &spec, Duration::from_secs(600)).await;
    let created = changes(&applied);
    let faults: Value = h
        .http
        .get(format!("{}/_emulator/faults", h.stack.databricks_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults["counters"]["credential_failures"], 1, "{faults}");
    assert!(
        faults["counters"]["throttled"].as_u64().unwrap() > 0,
        "{faults}"
    );
    h.faults(json!({})).await;
    let counts = named_counts(&h.emulator_state().await);
    for name in [
        "workspace_name=lakeops-dev",
        "credentials_name=lakeops-dev-credentials",
        "storage_configuration_name=lakeops-dev-storage",
        "network_name=lakeops-dev-network",
        "full_name=dev.sandbox",
        "full_name=dev.raw",
    ] {
        assert_eq!(
            counts.get(name),
            Some(&1),
            "{name} in {counts:?} after {created:?}"
        );
    }
    assert!(
        counts
            .iter()
            .filter(|(name, _)| !name.starts_with("comment=managed by lakeops"))
            .all(|(_, n)| *n == 1),
        "duplicates: {counts:?}\n{}",
        h.stack
            .lambda_logs()
            .lines()
            .filter(|l| l.contains("cluster")
                || l.contains("compute")
                || l.contains("ERROR")
                || l.contains("WARN"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // And the faulted apply converged: a clean apply has nothing to do.
    let again = h.run_ok("apply", &spec, Duration::from_secs(180)).await;
    assert!(
        changes(&again).iter().all(|(action, _)| action == "none"),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_the_pat_created_by_apply() {
    let h = Harness::start().await;
    let spec = h.minimal_spec();
    let applied = h.run_ok("apply", &spec, Duration::from_secs(300)).await;
    let workspace_url = applied["workspace_url"].as_str().unwrap().to_string();
    let (old_version, old) = h.current_value(PAT_SECRET).await;
    let old_token = old["token"].as_str().unwrap().to_string();

    h.secrets()
        .rotate_secret()
        .secret_id(PAT_SECRET)
        .send()
        .await
        .unwrap();

    let stages = h.version_stages(PAT_SECRET).await;
    let (new_version, new) = h.current_value(PAT_SECRET).await;
    assert_ne!(new_version, old_version, "{stages:?}");
    let stage_of = |id: &str| {
        stages
            .iter()
            .find(|(v, _)| v == id)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        stage_of(&new_version),
        vec!["AWSCURRENT".to_string()],
        "{stages:?}"
    );
    assert_eq!(
        stage_of(&old_version),
        vec!["AWSPREVIOUS".to_string()],
        "{stages:?}"
    );
    assert!(
        !stages
            .iter()
            .any(|(_, s)| s.iter().any(|s| s == "AWSPENDING")),
        "{stages:?}"
    );
    let new_token = new["token"].as_str().unwrap().to_string();
    assert_ne!(new_token, old_token);

    let tokens_with = |token: String| {
        let http = h.http.clone();
        let url = format!("{workspace_url}/api/2.0/token/list");
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert!(
        tokens_with(new_token).await.is_success(),
        "the new PAT does not authenticate"
    );
    assert_eq!(
        tokens_with(old_token).await.as_u16(),
        403,
        "the old PAT was not revoked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_the_edge_device_key_through_secrets_manager() {
    let h = Harness::start().await;
    let secret_id = h.stack.resource("EdgeDeviceKeySecret");
    let user = h.stack.resource("EdgeDeviceUser");
    assert!(secret_id.contains(EDGE_KEY_SECRET), "{secret_id}");
    let (old_version, old) = h.current_value(&secret_id).await;
    assert_eq!(old["kind"], "iam-access-key", "{}", old["kind"]);
    let old_key = old["access_key_id"].as_str().unwrap().to_string();

    h.secrets()
        .rotate_secret()
        .secret_id(&secret_id)
        .send()
        .await
        .unwrap();

    let stages = h.version_stages(&secret_id).await;
    let (new_version, new) = h.current_value(&secret_id).await;
    assert_ne!(new_version, old_version, "{stages:?}");
    let stage_of = |id: &str| {
        stages
            .iter()
            .find(|(v, _)| v == id)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        stage_of(&new_version),
        vec!["AWSCURRENT".to_string()],
        "{stages:?}"
    );
    assert_eq!(
        stage_of(&old_version),
        vec!["AWSPREVIOUS".to_string()],
        "{stages:?}"
    );
    let new_key = new["access_key_id"].as_str().unwrap().to_string();
    assert_ne!(new_key, old_key);
    assert_eq!(new["user_name"], json!(user));

    // The new key authenticates as the edge-device user.
    let credentials = aws_sdk_sts::config::Credentials::new(
        new_key.clone(),
        new["secret_access_key"].as_str().unwrap().to_string(),
        None,
        None,
        "rotated",
    );
    let sts_config = aws_sdk_sts::config::Builder::from(&h.sdk)
        .credentials_provider(credentials)
        .build();
    let identity = aws_sdk_sts::Client::from_conf(sts_config)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert!(
        identity
            .arn()
            .unwrap()
            .ends_with(&format!("user/lakeops/dev/{user}"))
            || identity.arn().unwrap().ends_with(&format!("/{user}")),
        "{identity:?}"
    );

    // The previous key is deactivated, the new one active.
    let iam = aws_sdk_iam::Client::new(&h.sdk);
    let keys = iam
        .list_access_keys()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    let status_of = |id: &str| {
        keys.access_key_metadata()
            .iter()
            .find(|k| k.access_key_id() == Some(id))
            .and_then(|k| k.status().map(|s| s.as_str().to_string()))
    };
    assert_eq!(status_of(&new_key).as_deref(), Some("Active"));
    assert_eq!(status_of(&old_key).as_deref(), Some("Inactive"));
}

/// events/provision-full.json (PrivateLink, CMK, log delivery, external
/// locations, volumes, jobs, repos, init script, assumed roles) adapted to the
/// stack: our account secret, the stack's region, and the stack's rotation
/// function (the spec's names a function in another account).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_and_destroy_the_full_spec() {
    let h = Harness::start().await;
    let event: Value = serde_json::from_str(
        &std::fs::read_to_string(lakeops_tests::repo_root().join("events/provision-full.json"))
            .unwrap(),
    )
    .unwrap();
    // Its roles are in the environment's account (secrets are read there after
    // AssumeRole): moto's default account plays that account here.
    let mut spec: Value = serde_json::from_str(
        &event["spec"]
            .to_string()
            .replace("210987654321", "123456789012"),
    )
    .unwrap();
    spec["account"].as_object_mut().unwrap().remove("host");
    spec["account"]["credentials_secret_arn"] = json!(h.account_secret_arn);
    spec["aws"]["region"] = json!("us-east-1");
    spec["pat"]
        .as_object_mut()
        .unwrap()
        .remove("rotation_function_arn");
    for key in ["managed_services", "storage"] {
        let arn = spec["encryption"][key]["key_arn"]
            .as_str()
            .unwrap()
            .replace("eu-west-1", "us-east-1");
        spec["encryption"][key]["key_arn"] = json!(arn);
    }
    let arn = spec["init_script"]["kms_key_arn"]
        .as_str()
        .unwrap()
        .replace("eu-west-1", "us-east-1");
    spec["init_script"]["kms_key_arn"] = json!(arn);

    let applied = h.run_ok("apply", &spec, Duration::from_secs(400)).await;
    let created = changes(&applied);
    assert!(
        created.iter().all(|(action, _)| action == "create"),
        "{created:?}"
    );
    for kind in [
        "vpc_endpoint",
        "private_access_settings",
        "customer_managed_key",
        "log_delivery",
        "external_location",
        "volume",
        "job",
        "repo",
        "global_init_script",
        "instance_pool",
        "cluster_policy",
    ] {
        assert!(
            resources_of_kind(&created, kind) >= 1,
            "apply created no {kind}: {created:?}"
        );
    }
    assert_eq!(applied["catalog"], "prod");
    let counts = named_counts(&h.emulator_state().await);
    assert_eq!(
        counts.get("workspace_name=lakeops-prod"),
        Some(&1),
        "{counts:?}"
    );

    let again = h.run_ok("apply", &spec, Duration::from_secs(300)).await;
    assert!(
        changes(&again).iter().all(|(action, _)| action == "none"),
        "{again}"
    );

    h.run_ok("destroy", &spec, Duration::from_secs(400)).await;
    let after = named_counts(&h.emulator_state().await);
    assert_eq!(after.get("workspace_name=lakeops-prod"), None, "{after:?}");
    assert_eq!(after.get("full_name=prod.raw"), None, "{after:?}");
}
