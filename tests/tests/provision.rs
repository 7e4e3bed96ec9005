//! provision, stage by stage, in-process, against the Databricks emulator and
//! moto (Secrets Manager, S3, Lambda for the rotation function). The test
//! plays the state machine's part: it calls the stages in order, waits when a
//! stage says so, and retries what the state machine would retry.

use lakeops_shared::credentials::{Credential, DatabricksSpSecret};
use lakeops_shared::databricks::{DatabricksConnector, DatabricksSettings};
use lakeops_shared::settings::Env;
use lakeops_shared::Secret;
use lakeops_tests::{DatabricksEmulator, Moto};
use provision::stages::{destroy_order, Stage, APPLY_ORDER};
use provision::Platform;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

const ADMIN_CLIENT_ID: &str = "00000000-0000-0000-0000-0000000000a1";
const ADMIN_CLIENT_SECRET: &str = "dose0000000000000000000000000000000a";
const ACCOUNT_SECRET: &str = "lakeops/dev/databricks/account-sp";

struct Stack {
    _moto: Moto,
    emulator: DatabricksEmulator,
    platform: Platform,
    sdk: aws_config::SdkConfig,
    http: reqwest::Client,
    account_secret_arn: String,
    rotation_function_arn: String,
}

impl Stack {
    async fn start() -> Stack {
        let moto = Moto::start();
        let emulator = DatabricksEmulator::start_with(&[
            "--provisioning-seconds",
            "1",
            "--cluster-seconds",
            "1",
            "--client-id",
            ADMIN_CLIENT_ID,
            "--client-secret",
            ADMIN_CLIENT_SECRET,
        ]);
        let http = reqwest::Client::new();
        let info: Value = http
            .get(format!("{}/_emulator/info", emulator.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sdk = moto.sdk_config().await;

        // The account admin's OAuth credentials live in Secrets Manager.
        let secrets = lakeops_shared::aws::secretsmanager(&sdk);
        let admin = Credential::DatabricksSpSecret(DatabricksSpSecret {
            account_id: info["account_id"].as_str().unwrap().to_string(),
            service_principal_id: "1000000000000001".into(),
            client_id: ADMIN_CLIENT_ID.into(),
            client_secret: Secret::new(ADMIN_CLIENT_SECRET),
            secret_id: "bootstrap".into(),
            lifetime_days: None,
            admin_secret_id: None,
        });
        let created = secrets
            .create_secret()
            .name(ACCOUNT_SECRET)
            .secret_string(admin.to_secret_string().expose())
            .send()
            .await
            .unwrap();
        let account_secret_arn = created.arn().unwrap().to_string();

        // A rotation function for the PAT: moto records the rotation
        // configuration; it does not run the function (no Docker).
        http.post(format!("{}/moto-api/config", moto.url()))
            .json(&json!({"lambda": {"use_docker": false}}))
            .send()
            .await
            .unwrap();
        let iam = lakeops_shared::aws::iam(&sdk);
        let role = iam
            .create_role()
            .role_name("lakeops-dev-rotation")
            .assume_role_policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        let lambda = aws_sdk_lambda::Client::new(&sdk);
        // The smallest valid zip archive: an empty end-of-central-directory record.
        let mut empty_zip = b"PK\x05\x06".to_vec();
        empty_zip.extend([0u8; 18]);
        let function = lambda
            .create_function()
            .function_name("lakeops-dev-rotate-credentials")
            .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
            .handler("bootstrap")
            .role(role.role().unwrap().arn())
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_sdk_lambda::primitives::Blob::new(empty_zip))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let rotation_function_arn = function.function_arn().unwrap().to_string();

        let env = Env::from_map(
            [
                (
                    "DATABRICKS_ACCOUNT_HOST".to_string(),
                    info["account_host"].as_str().unwrap().to_string(),
                ),
                (
                    "DATABRICKS_WORKSPACE_HOST_TEMPLATE".to_string(),
                    info["workspace_host_template"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                ),
                ("LAKEOPS_ENVIRONMENT".to_string(), "dev".to_string()),
                (
                    "DATABRICKS_RETRY_BUDGET_SECONDS".to_string(),
                    "10".to_string(),
                ),
                (
                    "PAT_ROTATION_FUNCTION_ARN".to_string(),
                    rotation_function_arn.clone(),
                ),
            ]
            .into_iter()
            .collect(),
        );
        let platform = provision::platform_from_env(&sdk, env).await.unwrap();
        Stack {
            _moto: moto,
            emulator,
            platform,
            sdk,
            http,
            account_secret_arn,
            rotation_function_arn,
        }
    }

    async fn emulator_state(&self) -> Value {
        self.http
            .get(format!("{}/_emulator/state", self.emulator.url()))
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
            .post(format!("{}/_emulator/faults", self.emulator.url()))
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

    /// A spec with every workspace-level feature (PrivateLink and CMK too).
    fn spec(&self) -> Value {
        json!({
            "environment": "dev",
            "account": {"id": "00000000-0000-0000-0000-000000000001", "credentials_secret_arn": self.account_secret_arn},
            "aws": {"region": "us-east-1", "cross_account_role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-cross-account"},
            "storage": {"root_bucket": "lakeops-dev-root"},
            "network": {
                "vpc_id": "vpc-0a1b2c3d4e5f60718",
                "subnet_ids": ["subnet-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60719"],
                "security_group_ids": ["sg-0a1b2c3d4e5f60718"],
                "private_link": {"rest_vpc_endpoint_id": "vpce-0a1b2c3d4e5f60718", "relay_vpc_endpoint_id": "vpce-0a1b2c3d4e5f60719"}
            },
            "encryption": {
                "managed_services": {"key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"},
                "storage": {"key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-666666666666"}
            },
            "workspace": {"name": "lakeops-dev", "pricing_tier": "ENTERPRISE", "deployment_name": "lakeops-dev"},
            "log_delivery": {"bucket": "lakeops-logs", "role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-logs"},
            "groups": [{"name": "DE", "workspace_permission": "USER"}, {"name": "ADMIN", "workspace_permission": "ADMIN"}],
            "pat": {"lifetime_days": 90, "rotation_days": 30},
            "compute": {
                "cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "m5d.large"},
                "policy": {"definition": {"spark_version": {"type": "fixed", "value": "15.4.x-scala2.12"}}},
                "instance_pool": {"node_type_id": "m5d.large", "max_capacity": 2}
            },
            "unity_catalog": {
                "metastore": {"storage_root": "s3://lakeops-dev-metastore/root"},
                "storage_credential": {"role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-uc"},
                "external_locations": [{"name": "raw_landing", "url": "s3://lakeops-dev-raw/landing"}],
                "catalog": {"storage_root": "s3://lakeops-dev-catalog/managed"},
                "volumes": [{"name": "landing", "schema": "raw", "location": "s3://lakeops-dev-raw/landing/files"}]
            },
            "jobs": [{"name": "sample", "notebook_path": "/Shared/sample"}],
            "repos": [{"url": "https://github.com/example/etl.git", "provider": "gitHub", "path": "/Repos/lakeops/etl"}],
            "init_script": {"kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-777777777777"}
        })
    }

    async fn invoke(
        &self,
        stage: Stage,
        mode: &str,
        spec: &Value,
        outputs: &Map<String, Value>,
    ) -> Result<Value, provision::event::StageFailure> {
        let event =
            json!({"stage": stage.as_str(), "mode": mode, "spec": spec, "outputs": outputs});
        provision::handle(&self.platform, event)
            .await
            .map(|r| serde_json::to_value(r).unwrap())
    }

    /// Run every stage of a mode as the state machine does: wait while a
    /// stage is not ready, retry retryable failures with a bounded budget.
    async fn run(&self, mode: &str, spec: &Value) -> Run {
        let stages: Vec<Stage> = if mode == "destroy" {
            destroy_order()
        } else {
            APPLY_ORDER.to_vec()
        };
        let mut outputs = Map::new();
        let mut changes = Vec::new();
        let mut responses = Vec::new();
        let mut retries = 0;
        for stage in stages {
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                match self.invoke(stage, mode, spec, &outputs).await {
                    Ok(response) => {
                        outputs = response["outputs"].as_object().unwrap().clone();
                        changes.extend(response["changes"].as_array().unwrap().iter().cloned());
                        let ready = response["ready"].as_bool().unwrap();
                        responses.push(response);
                        if ready {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(failure) if failure.is_retryable() && Instant::now() < deadline => {
                        retries += 1;
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    Err(failure) => panic!("{mode} failed: {failure}"),
                }
            }
        }
        Run {
            outputs,
            changes,
            responses,
            retries,
        }
    }
}

struct Run {
    outputs: Map<String, Value>,
    changes: Vec<Value>,
    responses: Vec<Value>,
    retries: u32,
}

impl Run {
    fn actions(&self, action: &str) -> Vec<String> {
        self.changes
            .iter()
            .filter(|c| c["action"] == action)
            .map(|c| c["resource"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The resources whose counts prove "created once": name → count in the emulator.
fn count(state: &Value, collection: &str, field: &str, name: &str) -> usize {
    match &state[collection] {
        Value::Object(items) => items.values().filter(|v| v[field] == name).count(),
        _ => 0,
    }
}

fn ours(state: &Value) -> Vec<(String, usize)> {
    [
        ("credentials", "credentials_name", "lakeops-dev-credentials"),
        (
            "credentials",
            "credentials_name",
            "lakeops-dev-log-credentials",
        ),
        (
            "storage_configurations",
            "storage_configuration_name",
            "lakeops-dev-storage",
        ),
        ("networks", "network_name", "lakeops-dev-network"),
        (
            "vpc_endpoints",
            "vpc_endpoint_name",
            "lakeops-dev-vpce-rest",
        ),
        (
            "private_access_settings",
            "private_access_settings_name",
            "lakeops-dev-private-access",
        ),
        ("metastores", "name", "lakeops-dev-metastore"),
        ("groups", "displayName", "lakeops-dev-DE"),
        (
            "service_principals",
            "displayName",
            "lakeops-dev-automation",
        ),
    ]
    .iter()
    .map(|(c, f, n)| (n.to_string(), count(state, c, f, n)))
    .collect()
}

fn workspace_count(state: &Value) -> usize {
    state["workspaces"]
        .as_object()
        .map(|w| {
            w.values()
                .filter(|r| r["info"]["workspace_name"] == "lakeops-dev")
                .count()
        })
        .unwrap_or(0)
}

async fn secret_value(stack: &Stack, name: &str) -> Option<String> {
    lakeops_shared::aws::secretsmanager(&stack.sdk)
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.secret_string().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_apply_converge_destroy() {
    let stack = Stack::start().await;
    let spec = stack.spec();

    // plan on an empty account: every resource is listed, nothing changes.
    let before = stack.emulator_state().await;
    let plan = stack.run("plan", &spec).await;
    assert!(
        plan.actions("update").is_empty() && plan.actions("delete").is_empty(),
        "{:?}",
        plan.changes
    );
    let planned = plan.actions("create");
    for resource in [
        "credentials/lakeops-dev-credentials",
        "storage_configuration/lakeops-dev-storage",
        "vpc_endpoint/lakeops-dev-vpce-rest",
        "private_access_settings/lakeops-dev-private-access",
        "network/lakeops-dev-network",
        "workspace/lakeops-dev",
        "log_delivery/lakeops-dev-audit-logs",
        "metastore/lakeops-dev-metastore",
        "metastore_assignment/lakeops-dev",
        "group/lakeops-dev-DE",
        "service_principal/lakeops-dev-automation",
        "secret/lakeops/dev/databricks/automation-sp",
        "token/lakeops-dev-pat",
        "cluster_policy/lakeops-dev-policy",
        "instance_pool/lakeops-dev-pool",
        "cluster/lakeops-dev-single-node",
        "storage_credential/lakeops_dev_credential",
        "external_location/lakeops_dev_raw_landing",
        "catalog/dev",
        "schema/sandbox",
        "schema/raw",
        "volume/landing",
        "global_init_script/lakeops-dev-cse-core-site",
        "job/lakeops-dev-sample",
        "repo//Repos/lakeops/etl",
    ] {
        assert!(
            planned.iter().any(|r| r == resource),
            "plan lacks {resource}: {planned:?}"
        );
    }
    let mut after = stack.emulator_state().await;
    // Reading authenticates, which issues OAuth tokens; nothing else may differ.
    after["oauth_tokens"] = before["oauth_tokens"].clone();
    assert_eq!(before, after, "plan changed the account");
    assert!(secret_value(&stack, "lakeops/dev/databricks/automation-sp")
        .await
        .is_none());

    // apply creates everything, once.
    let apply = stack.run("apply", &spec).await;
    assert!(apply.actions("update").is_empty(), "{:?}", apply.changes);
    assert!(
        apply.actions("create").len() >= planned.len(),
        "{:?}",
        apply.changes
    );
    let state = stack.emulator_state().await;
    for (name, n) in ours(&state) {
        assert_eq!(n, 1, "{name}");
    }
    assert_eq!(workspace_count(&state), 1);
    let workspace_url = apply.outputs["workspace_url"].as_str().unwrap();
    assert!(workspace_url.ends_with("/lakeops-dev"), "{workspace_url}");
    assert_eq!(apply.outputs["catalog_name"], json!("dev"));
    assert_eq!(apply.outputs["schemas"], json!(["dev.sandbox", "dev.raw"]));
    assert_eq!(apply.outputs["volumes"], json!(["dev.raw.landing"]));

    // Secrets in Secrets Manager, rotation on, never in any output.
    let sp_secret = secret_value(&stack, "lakeops/dev/databricks/automation-sp")
        .await
        .unwrap();
    let pat_secret = secret_value(&stack, "lakeops/dev/databricks/pat")
        .await
        .unwrap();
    let sp = match Credential::parse(&sp_secret).unwrap() {
        Credential::DatabricksSpSecret(sp) => sp,
        other => panic!("unexpected {}", other.kind()),
    };
    let pat = match Credential::parse(&pat_secret).unwrap() {
        Credential::DatabricksPat(p) => p,
        other => panic!("unexpected {}", other.kind()),
    };
    assert_eq!(
        pat.token_id,
        apply.outputs["pat_token_id"].as_str().unwrap()
    );
    let described = lakeops_shared::aws::secretsmanager(&stack.sdk)
        .describe_secret()
        .secret_id("lakeops/dev/databricks/pat")
        .send()
        .await
        .unwrap();
    assert_eq!(described.rotation_enabled(), Some(true));
    assert_eq!(
        described.rotation_lambda_arn(),
        Some(stack.rotation_function_arn.as_str())
    );
    let everything = serde_json::to_string(&(&plan.responses, &apply.responses)).unwrap();
    for value in [
        sp.client_secret.expose(),
        pat.token.expose(),
        ADMIN_CLIENT_SECRET,
    ] {
        assert!(
            !everything.contains(value),
            "a secret value reached an output"
        );
    }

    // The PAT works on the workspace.
    let connector = DatabricksConnector::new(DatabricksSettings::read(&mut Env::from_map(
        Default::default(),
    )))
    .unwrap();
    let client = connector.workspace_at(
        workspace_url,
        lakeops_shared::databricks::Credentials::Pat(pat.token.clone()),
    );
    let me: Value = client.get("/api/2.0/preview/scim/v2/Me").await.unwrap();
    assert_eq!(me["displayName"], json!("lakeops-dev-automation"));

    // A second apply changes nothing.
    let again = stack.run("apply", &spec).await;
    let changed: Vec<&Value> = again
        .changes
        .iter()
        .filter(|c| c["action"] != "none")
        .collect();
    assert!(changed.is_empty(), "second apply changed {changed:?}");
    assert_eq!(again.outputs["workspace_id"], apply.outputs["workspace_id"]);

    // destroy removes what lakeops created.
    let destroy = stack.run("destroy", &spec).await;
    let deleted = destroy.actions("delete");
    for resource in [
        "repo//Repos/lakeops/etl",
        "job/lakeops-dev-sample",
        "volume/landing",
        "schema/raw",
        "catalog/dev",
        "storage_credential/lakeops_dev_credential",
        "cluster/lakeops-dev-single-node",
        "instance_pool/lakeops-dev-pool",
        "token/lakeops-dev-pat",
        "secret/lakeops/dev/databricks/pat",
        "secret/lakeops/dev/databricks/automation-sp",
        "service_principal/lakeops-dev-automation",
        "metastore/lakeops-dev-metastore",
        "log_delivery/lakeops-dev-audit-logs",
        "workspace/lakeops-dev",
        "network/lakeops-dev-network",
        "credentials/lakeops-dev-credentials",
    ] {
        assert!(
            deleted.iter().any(|r| r == resource),
            "destroy did not delete {resource}: {deleted:?}"
        );
    }
    let state = stack.emulator_state().await;
    for (name, n) in ours(&state) {
        assert_eq!(n, 0, "{name} survived destroy");
    }
    assert_eq!(workspace_count(&state), 0);
    assert_eq!(
        state["metastore_data"],
        json!({}),
        "Unity Catalog objects survived destroy"
    );
    assert!(secret_value(&stack, "lakeops/dev/databricks/pat")
        .await
        .is_none());
    // Log delivery cannot be deleted: destroy disabled it.
    let disabled = state["log_delivery"]
        .as_object()
        .unwrap()
        .values()
        .all(|c| c["status"] == "DISABLED");
    assert!(disabled, "{}", state["log_delivery"]);
}

/// The deployment (LAKEOPS_ENVIRONMENT=dev) may reach only lakeops/dev/...
/// secrets (template.yaml): a spec for another environment without the role
/// that reaches its secrets would be denied in a real account, so it is
/// refused before any call, naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_environment_without_its_role_is_refused_up_front() {
    let stack = Stack::start().await;
    let mut spec = stack.spec();
    spec["environment"] = json!("qa");
    spec["workspace"]["name"] = json!("lakeops-qa");
    let before = stack.emulator_state().await;
    let failure = stack
        .invoke(Stage::Validate, "plan", &spec, &Map::new())
        .await
        .unwrap_err();
    assert_eq!(failure.name, "Lakeops.InvalidInput");
    assert!(
        failure.message.contains("aws.environment_role_arn"),
        "{}",
        failure.message
    );
    assert_eq!(before, stack.emulator_state().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_fails_before_anything_is_created() {
    let stack = Stack::start().await;
    let mut spec = stack.spec();
    spec["environment"] = json!("Dev!");
    spec["network"]["subnet_ids"] = json!(["subnet-0a1b2c3d4e5f60718"]);
    spec["workspace"]["pricing_tier"] = json!("STANDARD");
    spec["unity_catalog"]["volumes"][0]["schema"] = json!("gold");
    let before = stack.emulator_state().await;
    for stage in [Stage::Validate, Stage::Credentials, Stage::Workspace] {
        let failure = stack
            .invoke(stage, "apply", &spec, &Map::new())
            .await
            .unwrap_err();
        assert_eq!(failure.name, "Lakeops.InvalidInput");
        for path in [
            "environment",
            "network.subnet_ids",
            "workspace.pricing_tier",
            "unity_catalog.volumes[0].schema",
        ] {
            assert!(
                failure.message.contains(path),
                "{path} missing from {}",
                failure.message
            );
        }
        assert!(
            failure.message.starts_with(&format!("stage {stage}:")),
            "{}",
            failure.message
        );
    }
    assert_eq!(before, stack.emulator_state().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_retried_and_each_resource_is_created_once() {
    let stack = Stack::start().await;
    let spec = stack.spec();
    stack
        .faults(json!({
            "throttle_rate": 0.15,
            "unavailable_rate": 0.1,
            "retry_after_seconds": 0,
            "credential_validation_failures": 3,
            "credential_failure_format": "alternate"
        }))
        .await;
    let apply = stack.run("apply", &spec).await;
    let faults: Value = stack
        .http
        .get(format!("{}/_emulator/faults", stack.emulator.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        faults["counters"]["credential_failures"],
        json!(3),
        "{faults}"
    );
    assert!(
        apply.retries >= 3,
        "credential validation failures must surface as retryable"
    );
    stack.faults(json!({})).await;
    let state = stack.emulator_state().await;
    for (name, n) in ours(&state) {
        assert_eq!(n, 1, "{name}");
    }
    assert_eq!(workspace_count(&state), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_created_by_a_killed_stage_is_adopted() {
    let stack = Stack::start().await;
    let mut spec = stack.spec();
    // Secrets are read through the admin role, then the environment's role.
    spec["aws"]["admin_role_arn"] =
        json!("arn:aws:iam::123456789012:role/lakeops/organization-admin");
    spec["aws"]["environment_role_arn"] =
        json!("arn:aws:iam::123456789012:role/lakeops/provisioner");
    // The stage created the credentials and died before it returned.
    let connector = &stack.platform.databricks;
    let admin = connector.account(
        "00000000-0000-0000-0000-000000000001",
        lakeops_shared::databricks::Credentials::OAuthM2M {
            client_id: ADMIN_CLIENT_ID.into(),
            client_secret: Secret::new(ADMIN_CLIENT_SECRET),
        },
    );
    let created: Value = admin
        .post(
            &admin.account_path("credentials"),
            &json!({"credentials_name": "lakeops-dev-credentials", "aws_credentials": {"sts_role": {"role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-cross-account"}}}),
        )
        .await
        .unwrap();
    let response = stack
        .invoke(Stage::Credentials, "apply", &spec, &Map::new())
        .await
        .unwrap();
    assert_eq!(response["changes"][0]["action"], json!("none"));
    assert_eq!(
        response["outputs"]["credentials_id"],
        created["credentials_id"]
    );
    let state = stack.emulator_state().await;
    assert_eq!(
        count(
            &state,
            "credentials",
            "credentials_name",
            "lakeops-dev-credentials"
        ),
        1
    );

    // A credential that differs from the spec is drift: reported, left alone.
    let mut other = spec.clone();
    other["aws"]["cross_account_role_arn"] = json!("arn:aws:iam::123456789012:role/another");
    let response = stack
        .invoke(Stage::Credentials, "apply", &other, &Map::new())
        .await
        .unwrap();
    assert_eq!(response["changes"][0]["action"], json!("none"));
    assert_eq!(
        response["changes"][0]["fields"],
        json!(["aws_credentials.sts_role.role_arn"])
    );
    assert!(response["changes"][0]["note"]
        .as_str()
        .unwrap()
        .starts_with("drift"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_leaves_an_adopted_metastore_alone() {
    let stack = Stack::start().await;
    let admin = stack.platform.databricks.account(
        "00000000-0000-0000-0000-000000000001",
        lakeops_shared::databricks::Credentials::OAuthM2M {
            client_id: ADMIN_CLIENT_ID.into(),
            client_secret: Secret::new(ADMIN_CLIENT_SECRET),
        },
    );
    let shared: Value = admin
        .post(
            &admin.account_path("metastores"),
            &json!({"metastore_info": {"name": "shared-us-east-1", "region": "us-east-1"}}),
        )
        .await
        .unwrap();
    let metastore_id = shared["metastore_info"]["metastore_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut spec = stack.spec();
    spec["unity_catalog"]["metastore"] = json!({"existing_id": metastore_id});
    spec.as_object_mut().unwrap().remove("pat");

    let apply = stack.run("apply", &spec).await;
    assert_eq!(apply.outputs["metastore_id"], json!(metastore_id));
    let adopted = apply
        .changes
        .iter()
        .find(|c| c["resource"] == format!("metastore/{metastore_id}"))
        .unwrap();
    assert_eq!(adopted["note"], json!("adopted"));

    let plan = stack.run("plan", &spec).await;
    let changed: Vec<&Value> = plan
        .changes
        .iter()
        .filter(|c| c["action"] != "none")
        .collect();
    assert!(changed.is_empty(), "plan after apply: {changed:?}");

    stack.run("destroy", &spec).await;
    let state = stack.emulator_state().await;
    assert!(
        state["metastores"].get(&metastore_id).is_some(),
        "the adopted metastore was deleted"
    );
    assert_eq!(workspace_count(&state), 0);
    // What lakeops created inside it is gone.
    let catalogs = &state["metastore_data"][&metastore_id]["catalogs"];
    assert!(catalogs.get("dev").is_none(), "{catalogs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_difference_the_api_can_update_is_updated() {
    let stack = Stack::start().await;
    let spec = stack.spec();
    let first = stack
        .invoke(Stage::PrivateLink, "apply", &spec, &Map::new())
        .await
        .unwrap();
    let actions: Vec<&Value> = first["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["action"])
        .collect();
    assert_eq!(actions, vec!["create", "create", "create"]);

    let mut changed = spec.clone();
    changed["network"]["private_link"]["public_access_enabled"] = json!(true);
    let plan = stack
        .invoke(Stage::PrivateLink, "plan", &changed, &Map::new())
        .await
        .unwrap();
    assert_eq!(plan["changes"][2]["action"], json!("update"));
    assert_eq!(
        plan["changes"][2]["fields"],
        json!(["public_access_enabled"])
    );
    let state = stack.emulator_state().await;
    let pas = state["private_access_settings"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert_eq!(
        pas["public_access_enabled"],
        json!(false),
        "plan must not change anything"
    );

    let update = stack
        .invoke(Stage::PrivateLink, "apply", &changed, &Map::new())
        .await
        .unwrap();
    assert_eq!(update["changes"][2]["action"], json!("update"));
    assert_eq!(
        update["outputs"]["private_access_settings_id"],
        first["outputs"]["private_access_settings_id"]
    );
    let state = stack.emulator_state().await;
    let all = state["private_access_settings"].as_object().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        all.values().next().unwrap()["public_access_enabled"],
        json!(true)
    );
    let again = stack
        .invoke(Stage::PrivateLink, "apply", &changed, &Map::new())
        .await
        .unwrap();
    assert!(
        again["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["action"] == "none"),
        "{again}"
    );
}
