//! rotate-credentials against moto (Secrets Manager, IAM, STS) and the
//! Databricks emulator: full rotations of every kind with each step run
//! twice, rotations interrupted and retried from the start, bad input that
//! changes nothing, and the logs of it all searched for every secret value.
//!
//! The test plays Secrets Manager's part in a rotation: `RotateSecret` stages
//! the new version `AWSPENDING` (moto does that, then fails to invoke a Lambda
//! it does not have, which leaves exactly the state the real service hands the
//! function), then the test calls the handler for each step.

use aws_sdk_secretsmanager::types::RotationRulesType;
use lakeops_shared::credentials::Credential;
use lakeops_shared::databricks::{Credentials, DatabricksClient, DatabricksConnector};
use lakeops_shared::settings::Env;
use lakeops_shared::Error;
use lakeops_tests::{DatabricksEmulator, Moto};
use rotate_credentials::{Rotator, Settings};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ACCOUNT_ID: &str = "00000000-0000-0000-0000-000000000001";
const ADMIN_SP_ID: &str = "1000000000000001";
const ADMIN_CLIENT_ID: &str = "00000000-0000-0000-0000-0000000000a1";
const ADMIN_CLIENT_SECRET: &str = "dose00000000000000000000000000000001";
const ROTATION_LAMBDA: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:lakeops-test-rotate-credentials";
const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

/// A ClientRequestToken (Secrets Manager wants 32 to 64 characters).
fn version(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Every log line of a test, captured to be searched for secret values.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Capture every log line of this thread at TRACE, for every target.
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (logs.clone(), tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The logs must be there (so the search below means something) and must
    /// hold none of the secret values.
    fn assert_free_of(&self, secrets: &[String], expected_line: &str) {
        let text = self.text();
        assert!(
            text.contains(expected_line),
            "the capture missed the handler's logs"
        );
        for secret in secrets {
            assert!(
                secret.len() >= 8,
                "a secret too short to search for: {}",
                secret.len()
            );
            assert!(
                !text.contains(secret.as_str()),
                "a secret value appears in the logs"
            );
        }
    }
}

struct Rig {
    moto: Moto,
    emulator: Option<DatabricksEmulator>,
    sm: aws_sdk_secretsmanager::Client,
    iam: aws_sdk_iam::Client,
    rotator: Rotator,
    connector: Option<DatabricksConnector>,
}

impl Rig {
    async fn start(with_databricks: bool) -> Rig {
        let moto = Moto::start();
        let emulator = with_databricks
            .then(|| DatabricksEmulator::start_with(&["--provisioning-seconds", "0"]));
        let sdk = moto.sdk_config().await;
        let mut vars: HashMap<String, String> = HashMap::from([
            ("IAM_KEY_CHECK_SECONDS".into(), "10".into()),
            ("DATABRICKS_RETRY_BUDGET_SECONDS".into(), "2".into()),
        ]);
        if let Some(emulator) = &emulator {
            vars.insert("DATABRICKS_ACCOUNT_HOST".into(), emulator.url().into());
            vars.insert(
                "DATABRICKS_WORKSPACE_HOST_TEMPLATE".into(),
                format!("{}/ws/{{deployment_name}}", emulator.url()),
            );
        }
        let mut env = Env::from_map(vars);
        let settings = Settings::read(&mut env);
        env.finish().unwrap();
        let connector =
            with_databricks.then(|| DatabricksConnector::new(settings.databricks.clone()).unwrap());
        Rig {
            sm: lakeops_shared::aws::secretsmanager(&sdk),
            iam: lakeops_shared::aws::iam(&sdk),
            rotator: Rotator::new(&sdk, settings).unwrap(),
            moto,
            emulator,
            connector,
        }
    }

    fn emulator_url(&self) -> &str {
        self.emulator.as_ref().unwrap().url()
    }

    fn connector(&self) -> &DatabricksConnector {
        self.connector.as_ref().unwrap()
    }

    fn admin(&self) -> DatabricksClient {
        self.connector().account(
            ACCOUNT_ID,
            Credentials::OAuthM2M {
                client_id: ADMIN_CLIENT_ID.into(),
                client_secret: lakeops_shared::Secret::new(ADMIN_CLIENT_SECRET),
            },
        )
    }

    async fn create_secret(&self, name: &str, value: &Value) {
        self.sm
            .create_secret()
            .name(name)
            .secret_string(value.to_string())
            .send()
            .await
            .unwrap();
    }

    /// What Secrets Manager does before it calls the function: stage a new
    /// version `AWSPENDING`, without a value, and turn rotation on.
    async fn start_rotation(&self, name: &str, token: &str) {
        let error = self
            .sm
            .rotate_secret()
            .secret_id(name)
            .client_request_token(token)
            .rotation_lambda_arn(ROTATION_LAMBDA)
            .rotation_rules(
                RotationRulesType::builder()
                    .automatically_after_days(30)
                    .build(),
            )
            .send()
            .await
            .expect_err("moto has no Lambda to invoke");
        assert!(
            format!("{error:?}").contains("ResourceNotFoundException"),
            "{error:?}"
        );
        let described = self
            .sm
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .unwrap();
        assert_eq!(described.rotation_enabled(), Some(true));
        assert_eq!(
            self.stages(name).await[token],
            vec!["AWSPENDING".to_string()]
        );
    }

    async fn step(&self, name: &str, token: &str, step: &str) -> Result<Value, Error> {
        self.rotator
            .handle(json!({"Step": step, "SecretId": name, "ClientRequestToken": token}))
            .await
    }

    /// Every step, each run twice in a row, as Secrets Manager may.
    async fn run_steps_twice(&self, name: &str, token: &str) -> Vec<Value> {
        let mut summaries = Vec::new();
        for step in STEPS {
            for _ in 0..2 {
                let summary = self
                    .step(name, token, step)
                    .await
                    .unwrap_or_else(|e| panic!("{step} of {name}: {e}"));
                summaries.push(summary);
            }
        }
        summaries
    }

    async fn stages(&self, name: &str) -> BTreeMap<String, Vec<String>> {
        let described = self
            .sm
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .unwrap();
        described
            .version_ids_to_stages()
            .unwrap()
            .iter()
            .filter(|(_, stages)| !stages.is_empty())
            .map(|(id, stages)| (id.clone(), stages.clone()))
            .collect()
    }

    /// The end state of every rotation: the new version alone is current,
    /// exactly one version is previous, and nothing is pending.
    async fn assert_rotated_to(&self, name: &str, token: &str) {
        let stages = self.stages(name).await;
        assert_eq!(stages[token], vec!["AWSCURRENT".to_string()], "{stages:?}");
        let previous = stages
            .values()
            .filter(|s| s.iter().any(|x| x == "AWSPREVIOUS"))
            .count();
        assert_eq!(previous, 1, "{stages:?}");
        assert!(
            !stages.values().flatten().any(|s| s == "AWSPENDING"),
            "{stages:?}"
        );
    }

    async fn value(&self, name: &str, stage: &str) -> Credential {
        let out = self
            .sm
            .get_secret_value()
            .secret_id(name)
            .version_stage(stage)
            .send()
            .await
            .unwrap();
        Credential::parse(out.secret_string().unwrap()).unwrap()
    }

    async fn value_of_version(&self, name: &str, token: &str) -> Option<String> {
        self.sm
            .get_secret_value()
            .secret_id(name)
            .version_id(token)
            .send()
            .await
            .ok()
            .and_then(|o| o.secret_string().map(String::from))
    }

    async fn set_faults(&self, faults: Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/_emulator/faults", self.emulator_url()))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{:?}",
            response.text().await
        );
    }
}

// ------------------------------------------------------------------ Databricks PAT

/// A RUNNING workspace created by the emulator's admin, who is its admin.
async fn workspace(rig: &Rig, deployment: &str) -> (i64, String) {
    let admin = rig.admin();
    let credentials: Value = admin
        .post(
            &admin.account_path("credentials"),
            &json!({"credentials_name": deployment, "aws_credentials": {"sts_role": {"role_arn": "arn:aws:iam::123456789012:role/databricks"}}}),
        )
        .await
        .unwrap();
    let storage: Value = admin
        .post(
            &admin.account_path("storage-configurations"),
            &json!({"storage_configuration_name": deployment, "root_bucket_info": {"bucket_name": "lakeops-root"}}),
        )
        .await
        .unwrap();
    let workspace: Value = admin
        .post(
            &admin.account_path("workspaces"),
            &json!({
                "workspace_name": deployment,
                "deployment_name": deployment,
                "aws_region": "us-east-1",
                "credentials_id": credentials["credentials_id"],
                "storage_configuration_id": storage["storage_configuration_id"],
            }),
        )
        .await
        .unwrap();
    let id = workspace["workspace_id"].as_i64().unwrap();
    for _ in 0..50 {
        let status: Value = admin
            .get(&admin.account_path(&format!("workspaces/{id}")))
            .await
            .unwrap();
        if status["workspace_status"] == "RUNNING" {
            return (id, format!("{}/ws/{deployment}", rig.emulator_url()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("workspace {deployment} did not start");
}

fn pat_client(rig: &Rig, workspace_url: &str, token: &str) -> DatabricksClient {
    rig.connector().workspace_at(
        workspace_url,
        Credentials::Pat(lakeops_shared::Secret::new(token)),
    )
}

/// The ids of the tokens a token's owner has, as that token sees them.
async fn own_token_ids(rig: &Rig, workspace_url: &str, token: &str) -> Result<Vec<String>, String> {
    let list: Value = pat_client(rig, workspace_url, token)
        .get("/api/2.0/token/list")
        .await
        .map_err(|e| e.to_string())?;
    Ok(list["token_infos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token_id"].as_str().unwrap().to_string())
        .collect())
}

#[tokio::test]
async fn databricks_pat_rotations_interrupted_and_repeated() {
    let (logs, _guard) = Logs::capture();
    let rig = Rig::start(true).await;
    let (_, workspace_url) = workspace(&rig, "lakeops-rot").await;
    let admin_ws = rig.connector().workspace_at(
        &workspace_url,
        Credentials::OAuthM2M {
            client_id: ADMIN_CLIENT_ID.into(),
            client_secret: lakeops_shared::Secret::new(ADMIN_CLIENT_SECRET),
        },
    );
    // Provisioning's token, in the shared format.
    let first: Value = admin_ws
        .post(
            "/api/2.0/token/create",
            &json!({"comment": "provisioned by lakeops", "lifetime_seconds": 90 * 86_400}),
        )
        .await
        .unwrap();
    let first_token = first["token_value"].as_str().unwrap().to_string();
    let first_id = first["token_info"]["token_id"]
        .as_str()
        .unwrap()
        .to_string();
    let name = "lakeops/test/databricks-pat";
    rig.create_secret(
        name,
        &json!({"kind": "databricks-pat", "workspace_url": workspace_url, "token": first_token, "token_id": first_id, "lifetime_days": 90}),
    )
    .await;
    let mut seen = vec![first_token.clone()];

    // 1. A full rotation, every step twice.
    rig.start_rotation(name, &version(1)).await;
    let summaries = rig.run_steps_twice(name, &version(1)).await;
    assert_eq!(summaries[0]["outcome"], "created");
    assert_eq!(
        summaries[1]["outcome"], "nothing-to-do",
        "a second createSecret creates nothing"
    );
    assert_eq!(summaries[7]["outcome"], "already-finished");
    rig.assert_rotated_to(name, &version(1)).await;
    let Credential::DatabricksPat(second) = rig.value(name, "AWSCURRENT").await else {
        panic!()
    };
    seen.push(second.token.expose().to_string());
    assert_ne!(second.token_id, first_id);
    assert_eq!(
        own_token_ids(&rig, &workspace_url, second.token.expose())
            .await
            .unwrap(),
        vec![second.token_id.clone()]
    );
    let old = own_token_ids(&rig, &workspace_url, &first_token)
        .await
        .unwrap_err();
    assert!(
        old.contains("403"),
        "the old token must stop working: {old}"
    );

    // 2. createSecret crashed after Databricks issued the token and before
    // Secrets Manager stored it: the token exists, labelled with the version.
    rig.start_rotation(name, &version(2)).await;
    let orphan: Value = pat_client(&rig, &workspace_url, second.token.expose())
        .post(
            "/api/2.0/token/create",
            &json!({"comment": format!("lakeops-rotation:{}", version(2)), "lifetime_seconds": 3600}),
        )
        .await
        .unwrap();
    seen.push(orphan["token_value"].as_str().unwrap().to_string());
    assert_eq!(
        own_token_ids(&rig, &workspace_url, second.token.expose())
            .await
            .unwrap()
            .len(),
        2
    );
    rig.run_steps_twice(name, &version(2)).await;
    rig.assert_rotated_to(name, &version(2)).await;
    let Credential::DatabricksPat(third) = rig.value(name, "AWSCURRENT").await else {
        panic!()
    };
    seen.push(third.token.expose().to_string());
    assert_eq!(
        own_token_ids(&rig, &workspace_url, third.token.expose())
            .await
            .unwrap(),
        vec![third.token_id.clone()],
        "neither the orphan nor the previous token is left"
    );

    // 3. finishSecret interrupted after the new version became current, while
    // revoking the old token; Secrets Manager retries from the start.
    rig.start_rotation(name, &version(3)).await;
    for step in &STEPS[..3] {
        rig.step(name, &version(3), step).await.unwrap();
    }
    rig.set_faults(
        json!({"unavailable_next": 50, "retry_after_seconds": 0, "path_contains": "/token/delete"}),
    )
    .await;
    let error = rig
        .step(name, &version(3), "finishSecret")
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    rig.set_faults(json!({})).await;
    let Credential::DatabricksPat(fourth) = rig.value(name, "AWSCURRENT").await else {
        panic!()
    };
    seen.push(fourth.token.expose().to_string());
    assert_eq!(
        own_token_ids(&rig, &workspace_url, fourth.token.expose())
            .await
            .unwrap()
            .len(),
        2
    );
    rig.run_steps_twice(name, &version(3)).await;
    rig.assert_rotated_to(name, &version(3)).await;
    assert_eq!(
        own_token_ids(&rig, &workspace_url, fourth.token.expose())
            .await
            .unwrap(),
        vec![fourth.token_id.clone()]
    );
    assert!(own_token_ids(&rig, &workspace_url, third.token.expose())
        .await
        .is_err());

    // 4. testSecret failing (the workspace is unavailable) stops the rotation
    // before anything is promoted; the retry from the start completes it.
    rig.start_rotation(name, &version(4)).await;
    rig.step(name, &version(4), "createSecret").await.unwrap();
    rig.step(name, &version(4), "setSecret").await.unwrap();
    rig.set_faults(
        json!({"unavailable_next": 50, "retry_after_seconds": 0, "path_contains": "/token/list"}),
    )
    .await;
    assert!(rig.step(name, &version(4), "testSecret").await.is_err());
    rig.set_faults(json!({})).await;
    assert_eq!(
        rig.stages(name).await[&version(3)],
        vec!["AWSCURRENT".to_string()]
    );
    rig.run_steps_twice(name, &version(4)).await;
    rig.assert_rotated_to(name, &version(4)).await;
    let Credential::DatabricksPat(fifth) = rig.value(name, "AWSCURRENT").await else {
        panic!()
    };
    seen.push(fifth.token.expose().to_string());
    assert_eq!(
        own_token_ids(&rig, &workspace_url, fifth.token.expose())
            .await
            .unwrap(),
        vec![fifth.token_id.clone()]
    );

    logs.assert_free_of(&seen, "stored the new credential as AWSPENDING");
}

fn admin_secret_value() -> Value {
    json!({"kind": "databricks-sp-secret", "account_id": ACCOUNT_ID, "service_principal_id": ADMIN_SP_ID,
           "client_id": ADMIN_CLIENT_ID, "client_secret": ADMIN_CLIENT_SECRET, "secret_id": "bootstrap"})
}

fn admin_on_workspace(rig: &Rig, workspace_url: &str) -> DatabricksClient {
    rig.connector().workspace_at(
        workspace_url,
        Credentials::OAuthM2M {
            client_id: ADMIN_CLIENT_ID.into(),
            client_secret: lakeops_shared::Secret::new(ADMIN_CLIENT_SECRET),
        },
    )
}

/// The live tokens of one principal, as a workspace admin sees them.
async fn tokens_owned_by(rig: &Rig, workspace_url: &str, principal_id: &str) -> Vec<String> {
    let list: Value = admin_on_workspace(rig, workspace_url)
        .get("/api/2.0/token-management/tokens")
        .await
        .unwrap();
    list["token_infos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["owner_id"].to_string().trim_matches('"') == principal_id)
        .map(|t| t["token_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn databricks_pat_of_a_service_principal_rotated_by_a_workspace_admin() {
    let (logs, _guard) = Logs::capture();
    let rig = Rig::start(true).await;
    let (workspace_id, workspace_url) = workspace(&rig, "lakeops-obo").await;
    let admin = rig.admin();
    let sp: Value = admin
        .post(
            &admin.account_path("scim/v2/ServicePrincipals"),
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"], "displayName": "lakeops-jobs"}),
        )
        .await
        .unwrap();
    let sp_id = sp["id"].as_str().unwrap().to_string();
    let application_id = sp["applicationId"].as_str().unwrap().to_string();
    let _: Value = admin
        .put(
            &admin.account_path(&format!(
                "workspaces/{workspace_id}/permissionassignments/principals/{sp_id}"
            )),
            &json!({"permissions": ["USER"]}),
        )
        .await
        .unwrap();
    let admin_ws = admin_on_workspace(&rig, &workspace_url);
    let first: Value = admin_ws
        .post(
            "/api/2.0/token-management/on-behalf-of/tokens",
            &json!({"application_id": application_id, "lifetime_seconds": 30 * 86_400, "comment": "provisioned by lakeops"}),
        )
        .await
        .unwrap();
    let first_token = first["token_value"].as_str().unwrap().to_string();
    let first_id = first["token_info"]["token_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The admin's own token on the workspace: never touched by the rotation.
    let unrelated: Value = admin_ws
        .post(
            "/api/2.0/token/create",
            &json!({"comment": "lakeops-rotation:someone-else", "lifetime_seconds": 3600}),
        )
        .await
        .unwrap();
    let unrelated_id = unrelated["token_info"]["token_id"]
        .as_str()
        .unwrap()
        .to_string();

    let admin_name = "lakeops/test/databricks-admin";
    rig.create_secret(admin_name, &admin_secret_value()).await;
    let name = "lakeops/test/databricks-pat-obo";
    rig.create_secret(
        name,
        &json!({"kind": "databricks-pat", "workspace_url": workspace_url, "token": first_token, "token_id": first_id,
                "lifetime_days": 30, "admin_secret_id": admin_name, "application_id": application_id}),
    )
    .await;
    let mut seen = vec![first_token.clone(), ADMIN_CLIENT_SECRET.to_string()];

    // The token was revoked (or expired) before its rotation: the admin
    // credential still rotates it.
    admin_ws
        .delete(&format!("/api/2.0/token-management/tokens/{first_id}"))
        .await
        .unwrap();
    rig.start_rotation(name, &version(1)).await;
    rig.run_steps_twice(name, &version(1)).await;
    rig.assert_rotated_to(name, &version(1)).await;
    let Credential::DatabricksPat(second) = rig.value(name, "AWSCURRENT").await else {
        panic!()
    };
    seen.push(second.token.expose().to_string());
    assert_eq!(
        tokens_owned_by(&rig, &workspace_url, &sp_id).await,
        vec![second.token_id.clone()]
    );
    assert_eq!(
        own_token_ids(&rig, &workspace_url, second.token.expose())
            .await
            .unwrap(),
        vec![second.token_id.clone()]
    );

    // A second rotation revokes the first rotated token.
    rig.start_rotation(name, &version(2)).await;
    rig.run_steps_twice(name, &version(2)).await;
    rig.assert_rotated_to(name, &version(2)).await;
    let Credential::DatabricksPat(third) = rig.value(name, "AWSCURRENT").await else {
        panic!()
    };
    seen.push(third.token.expose().to_string());
    assert_eq!(
        tokens_owned_by(&rig, &workspace_url, &sp_id).await,
        vec![third.token_id.clone()]
    );
    assert!(own_token_ids(&rig, &workspace_url, second.token.expose())
        .await
        .is_err());
    assert!(
        tokens_owned_by(&rig, &workspace_url, ADMIN_SP_ID)
            .await
            .contains(&unrelated_id),
        "another principal's token is left alone"
    );

    logs.assert_free_of(&seen, "stored the new credential as AWSPENDING");
}

// ------------------------------------------------------------------ Databricks SP secret

async fn sp_secret_ids(rig: &Rig, sp_id: &str) -> Vec<String> {
    let admin = rig.admin();
    let list: Value = admin
        .get(&admin.account_path(&format!("servicePrincipals/{sp_id}/credentials/secrets")))
        .await
        .unwrap();
    list["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

async fn new_sp_secret(rig: &Rig, sp_id: &str) -> (String, String) {
    let admin = rig.admin();
    let created: Value = admin
        .post(
            &admin.account_path(&format!("servicePrincipals/{sp_id}/credentials/secrets")),
            &json!({}),
        )
        .await
        .unwrap();
    (
        created["id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

async fn exchange(rig: &Rig, client_id: &str, secret: &str) -> Result<(), String> {
    rig.connector()
        .account(
            ACCOUNT_ID,
            Credentials::OAuthM2M {
                client_id: client_id.into(),
                client_secret: lakeops_shared::Secret::new(secret),
            },
        )
        .verify_credentials()
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn databricks_sp_secret_rotations_with_a_full_principal() {
    let (logs, _guard) = Logs::capture();
    let rig = Rig::start(true).await;
    let admin = rig.admin();
    let admin_name = "lakeops/test/databricks-admin";
    rig.create_secret(admin_name, &admin_secret_value()).await;
    let sp: Value = admin
        .post(
            &admin.account_path("scim/v2/ServicePrincipals"),
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"], "displayName": "lakeops-etl"}),
        )
        .await
        .unwrap();
    let sp_id = sp["id"].as_str().unwrap().to_string();
    let client_id = sp["applicationId"].as_str().unwrap().to_string();

    // Four secrets someone made by hand, the oldest a second before the rest,
    // then the current one: the principal is full (5).
    let (oldest, oldest_value) = new_sp_secret(&rig, &sp_id).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut by_hand = Vec::new();
    for _ in 0..3 {
        by_hand.push(new_sp_secret(&rig, &sp_id).await.0);
    }
    let (first_id, first_secret) = new_sp_secret(&rig, &sp_id).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let name = "lakeops/test/databricks-sp";
    rig.create_secret(
        name,
        &json!({"kind": "databricks-sp-secret", "account_id": ACCOUNT_ID, "service_principal_id": sp_id,
                "client_id": client_id, "client_secret": first_secret, "secret_id": first_id,
                "lifetime_days": 365, "admin_secret_id": admin_name}),
    )
    .await;
    assert_eq!(sp_secret_ids(&rig, &sp_id).await.len(), 5);
    let mut seen = vec![
        ADMIN_CLIENT_SECRET.to_string(),
        first_secret.clone(),
        oldest_value,
    ];

    // 1. A full rotation, every step twice: the oldest unused secret makes
    // room, the previous one is deleted after finish.
    rig.start_rotation(name, &version(1)).await;
    let summaries = rig.run_steps_twice(name, &version(1)).await;
    assert_eq!(summaries[0]["removed"], json!([oldest]));
    rig.assert_rotated_to(name, &version(1)).await;
    let Credential::DatabricksSpSecret(second) = rig.value(name, "AWSCURRENT").await else {
        panic!()
    };
    seen.push(second.client_secret.expose().to_string());
    assert_eq!(second.lifetime_days, Some(365));
    exchange(&rig, &client_id, second.client_secret.expose())
        .await
        .unwrap();
    assert!(
        exchange(&rig, &client_id, &first_secret).await.is_err(),
        "the old secret must stop working"
    );
    let mut expected: Vec<String> = by_hand
        .iter()
        .cloned()
        .chain([second.secret_id.clone()])
        .collect();
    let mut ids = sp_secret_ids(&rig, &sp_id).await;
    expected.sort();
    ids.sort();
    assert_eq!(ids, expected);

    // 2. createSecret crashed after Databricks issued a secret (later than the
    // current version was stored) and before Secrets Manager kept it.
    rig.start_rotation(name, &version(2)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (orphan, orphan_value) = new_sp_secret(&rig, &sp_id).await;
    seen.push(orphan_value);
    rig.run_steps_twice(name, &version(2)).await;
    rig.assert_rotated_to(name, &version(2)).await;
    let Credential::DatabricksSpSecret(third) = rig.value(name, "AWSCURRENT").await else {
        panic!()
    };
    seen.push(third.client_secret.expose().to_string());
    let ids = sp_secret_ids(&rig, &sp_id).await;
    assert!(
        !ids.contains(&orphan) && !ids.contains(&second.secret_id),
        "{ids:?}"
    );
    assert_eq!(
        ids.len(),
        4,
        "the three by hand and the current one: {ids:?}"
    );
    exchange(&rig, &client_id, third.client_secret.expose())
        .await
        .unwrap();
    assert!(exchange(&rig, &client_id, second.client_secret.expose())
        .await
        .is_err());

    logs.assert_free_of(&seen, "stored the new credential as AWSPENDING");
}

// ------------------------------------------------------------------ IAM access key

async fn keys(rig: &Rig, user: &str) -> BTreeMap<String, String> {
    let out = rig
        .iam
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .unwrap();
    out.access_key_metadata()
        .iter()
        .map(|k| {
            (
                k.access_key_id().unwrap().to_string(),
                k.status().unwrap().as_str().to_string(),
            )
        })
        .collect()
}

async fn caller_arn(rig: &Rig, id: &str, secret: &str) -> String {
    let sdk = rig.moto.sdk_config().await;
    let config = aws_sdk_sts::config::Builder::from(&sdk)
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            id, secret, None, None, "test",
        ))
        .build();
    let out = aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    out.arn().unwrap().to_string()
}

#[tokio::test]
async fn iam_access_key_rotations_keep_two_keys() {
    let (logs, _guard) = Logs::capture();
    let rig = Rig::start(false).await;
    let user = "lakeops-edge-device";
    rig.iam.create_user().user_name(user).send().await.unwrap();
    let created = rig
        .iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .unwrap();
    let first = created.access_key().unwrap();
    let (first_id, first_secret) = (
        first.access_key_id().to_string(),
        first.secret_access_key().to_string(),
    );
    let name = "lakeops/test/edge-key";
    rig.create_secret(
        name,
        &json!({"kind": "iam-access-key", "user_name": user, "access_key_id": first_id, "secret_access_key": first_secret}),
    )
    .await;
    let mut seen = vec![first_secret.clone()];

    // 1. A full rotation, every step twice: new key active, old inactive.
    rig.start_rotation(name, &version(1)).await;
    rig.run_steps_twice(name, &version(1)).await;
    rig.assert_rotated_to(name, &version(1)).await;
    let Credential::IamAccessKey(second) = rig.value(name, "AWSCURRENT").await else {
        panic!()
    };
    seen.push(second.secret_access_key.expose().to_string());
    let now = keys(&rig, user).await;
    assert_eq!(now.len(), 2);
    assert_eq!(now[&second.access_key_id], "Active");
    assert_eq!(now[&first_id], "Inactive");
    assert!(caller_arn(
        &rig,
        &second.access_key_id,
        second.secret_access_key.expose()
    )
    .await
    .ends_with(&format!(":user/{user}")));

    // 2. createSecret crashed after deleting the previous key and creating a
    // new one, before Secrets Manager stored it; retried from the start.
    rig.start_rotation(name, &version(2)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    rig.iam
        .delete_access_key()
        .user_name(user)
        .access_key_id(&first_id)
        .send()
        .await
        .unwrap();
    let orphan = rig
        .iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .unwrap();
    let orphan = orphan.access_key().unwrap();
    seen.push(orphan.secret_access_key().to_string());
    let orphan_id = orphan.access_key_id().to_string();
    rig.run_steps_twice(name, &version(2)).await;
    rig.assert_rotated_to(name, &version(2)).await;
    let Credential::IamAccessKey(third) = rig.value(name, "AWSCURRENT").await else {
        panic!()
    };
    seen.push(third.secret_access_key.expose().to_string());
    let now = keys(&rig, user).await;
    assert_eq!(
        now,
        BTreeMap::from([
            (third.access_key_id.clone(), "Active".to_string()),
            (second.access_key_id.clone(), "Inactive".to_string()),
        ]),
        "orphan {orphan_id} must be gone"
    );

    // 3. A plain third rotation deletes the key deactivated by the second
    // (its grace period is over) — the first old key no longer authenticates.
    rig.start_rotation(name, &version(3)).await;
    rig.run_steps_twice(name, &version(3)).await;
    rig.assert_rotated_to(name, &version(3)).await;
    let Credential::IamAccessKey(fourth) = rig.value(name, "AWSCURRENT").await else {
        panic!()
    };
    seen.push(fourth.secret_access_key.expose().to_string());
    let now = keys(&rig, user).await;
    assert_eq!(now.len(), 2);
    assert!(!now.contains_key(&second.access_key_id));
    assert_eq!(now[&third.access_key_id], "Inactive");
    // moto answers GetCallerIdentity for an unknown key as a default identity,
    // not as the user: a deleted key no longer is the user.
    assert!(!caller_arn(
        &rig,
        &second.access_key_id,
        second.secret_access_key.expose()
    )
    .await
    .ends_with(&format!(":user/{user}")));

    logs.assert_free_of(&seen, "stored the new credential as AWSPENDING");
}

// ------------------------------------------------------------------ bad input

#[tokio::test]
async fn bad_input_fails_clearly_and_changes_nothing() {
    let rig = Rig::start(false).await;
    let user = "lakeops-edge-bad";
    rig.iam.create_user().user_name(user).send().await.unwrap();
    let key = rig
        .iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap();
    let good = json!({"kind": "iam-access-key", "user_name": user, "access_key_id": key.access_key_id(), "secret_access_key": key.secret_access_key()});

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "lakeops/test/unknown-kind",
            json!({"kind": "github-token", "token": "ghp_0123456789abcdef"}),
            "unknown kind `github-token`",
        ),
        (
            "lakeops/test/missing",
            json!({"kind": "iam-access-key", "user_name": user, "secret_access_key": "abcdefgh12345678"}),
            "access_key_id: is required",
        ),
        (
            "lakeops/test/not-json",
            json!("ghp_0123456789abcdef"),
            "not a JSON object",
        ),
    ];
    for (name, value, expected) in cases {
        rig.create_secret(name, &value).await;
        rig.start_rotation(name, &version(1)).await;
        let error = rig
            .step(name, &version(1), "createSecret")
            .await
            .unwrap_err();
        assert_eq!(error.error_name(), "Lakeops.InvalidInput", "{error}");
        assert!(error.message.contains(expected), "{name}: {error}");
        assert!(
            !error.message.contains("ghp_0123456789abcdef")
                && !error.message.contains("abcdefgh12345678")
        );
        assert_eq!(
            rig.value_of_version(name, &version(1)).await,
            None,
            "nothing stored for {name}"
        );
    }

    // A token that is not a pending version, and a secret without rotation.
    let name = "lakeops/test/good";
    rig.create_secret(name, &good).await;
    let error = rig
        .step(name, &version(9), "createSecret")
        .await
        .unwrap_err();
    assert!(error.message.contains("rotation is not enabled"), "{error}");
    rig.start_rotation(name, &version(1)).await;
    let error = rig
        .step(name, &version(7), "createSecret")
        .await
        .unwrap_err();
    assert!(
        error.message.contains("is not a version of this secret"),
        "{error}"
    );
    let current = rig
        .stages(name)
        .await
        .into_iter()
        .find(|(_, s)| s.contains(&"AWSCURRENT".to_string()))
        .unwrap()
        .0;
    let error = rig.step(name, &current, "testSecret").await;
    assert_eq!(
        error.unwrap()["outcome"],
        "nothing-to-do",
        "a current version needs nothing"
    );
    let error = rig.step(name, &version(1), "testSecret").await.unwrap_err();
    assert!(
        error.message.contains("createSecret must run first"),
        "{error}"
    );
    let error = rig
        .rotator
        .handle(json!({"Step": "rotateSecret", "SecretId": name}))
        .await
        .unwrap_err();
    assert!(
        error.message.contains("Step: unknown step")
            && error.message.contains("ClientRequestToken: is required"),
        "{error}"
    );

    // Nothing was issued by any of it.
    assert_eq!(keys(&rig, user).await.len(), 1);
}

#[tokio::test]
async fn databricks_sp_secret_of_an_account_admin_rotates_itself() {
    let (logs, _guard) = Logs::capture();
    let rig = Rig::start(true).await;
    let admin = rig.admin();
    let sp: Value = admin
        .post(
            &admin.account_path("scim/v2/ServicePrincipals"),
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"],
                    "displayName": "lakeops-automation", "roles": [{"value": "account_admin"}]}),
        )
        .await
        .unwrap();
    let sp_id = sp["id"].as_str().unwrap().to_string();
    let client_id = sp["applicationId"].as_str().unwrap().to_string();
    let (first_id, first_secret) = new_sp_secret(&rig, &sp_id).await;
    let name = "lakeops/test/databricks-automation-sp";
    rig.create_secret(
        name,
        &json!({"kind": "databricks-sp-secret", "account_id": ACCOUNT_ID, "service_principal_id": sp_id,
                "client_id": client_id, "client_secret": first_secret, "secret_id": first_id}),
    )
    .await;
    let mut seen = vec![first_secret.clone()];
    for n in 1..=2 {
        rig.start_rotation(name, &version(n)).await;
        rig.run_steps_twice(name, &version(n)).await;
        rig.assert_rotated_to(name, &version(n)).await;
        let Credential::DatabricksSpSecret(current) = rig.value(name, "AWSCURRENT").await else {
            panic!()
        };
        seen.push(current.client_secret.expose().to_string());
        assert_eq!(
            sp_secret_ids(&rig, &sp_id).await,
            vec![current.secret_id.clone()]
        );
        exchange(&rig, &client_id, current.client_secret.expose())
            .await
            .unwrap();
        assert!(exchange(&rig, &client_id, &seen[seen.len() - 2])
            .await
            .is_err());
    }
    logs.assert_free_of(&seen, "stored the new credential as AWSPENDING");
}

/// Databricks answers a create without the new credential's value or id: the
/// step fails naming the field, nothing is stored as AWSPENDING, and the
/// credential made without a usable answer is removed (at once when its id
/// is known, else by the next createSecret's cleanup).
#[tokio::test]
async fn a_create_answer_without_the_credential_fails_the_step_and_stores_nothing() {
    let rig = Rig::start(true).await;
    let (_, workspace_url) = workspace(&rig, "lakeops-answers").await;
    let admin_ws = rig.connector().workspace_at(
        &workspace_url,
        Credentials::OAuthM2M {
            client_id: ADMIN_CLIENT_ID.into(),
            client_secret: lakeops_shared::Secret::new(ADMIN_CLIENT_SECRET),
        },
    );
    let first: Value = admin_ws
        .post(
            "/api/2.0/token/create",
            &json!({"comment": "provisioned", "lifetime_seconds": 86_400}),
        )
        .await
        .unwrap();
    let token = first["token_value"].as_str().unwrap().to_string();
    let token_id = first["token_info"]["token_id"]
        .as_str()
        .unwrap()
        .to_string();
    let name = "lakeops/test/databricks-pat-answers";
    rig.create_secret(
        name,
        &json!({"kind": "databricks-pat", "workspace_url": workspace_url, "token": token, "token_id": token_id, "lifetime_days": 1}),
    )
    .await;
    rig.start_rotation(name, &version(1)).await;
    let own = || own_token_ids(&rig, &workspace_url, &token);

    for (omitted, named) in [
        ("token_value", "`token_value`"),
        ("token_info.token_id", "`token_info.token_id`"),
    ] {
        rig.set_faults(
            json!({"omit_response_fields": [omitted], "path_contains": "/token/create"}),
        )
        .await;
        let error = rig
            .step(name, &version(1), "createSecret")
            .await
            .unwrap_err();
        rig.set_faults(json!({})).await;
        assert!(error.message.contains(named), "{error}");
        assert!(!error.is_retryable(), "{error}");
        assert_eq!(
            rig.value_of_version(name, &version(1)).await,
            None,
            "nothing stored"
        );
    }
    // The token without a value was revoked; the one without an id is an
    // orphan named after the version, which the next createSecret removes.
    assert_eq!(own().await.unwrap().len(), 2);
    let created = rig.step(name, &version(1), "createSecret").await.unwrap();
    assert_eq!(created["outcome"], "created");
    assert_eq!(
        created["removed"].as_array().unwrap().len(),
        1,
        "{created:#}"
    );
    let ids = own().await.unwrap();
    assert_eq!(ids.len(), 2, "the current token and the new one: {ids:?}");

    // An OAuth secret answered without `secret` is deleted at once.
    let admin = rig.admin();
    let sp: Value = admin
        .post(
            &admin.account_path("scim/v2/ServicePrincipals"),
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"],
                    "displayName": "lakeops-answers", "roles": [{"value": "account_admin"}]}),
        )
        .await
        .unwrap();
    let sp_id = sp["id"].as_str().unwrap().to_string();
    let (first_id, first_secret) = new_sp_secret(&rig, &sp_id).await;
    let sp_name = "lakeops/test/databricks-sp-answers";
    rig.create_secret(
        sp_name,
        &json!({"kind": "databricks-sp-secret", "account_id": ACCOUNT_ID, "service_principal_id": sp_id,
                "client_id": sp["applicationId"], "client_secret": first_secret, "secret_id": first_id}),
    )
    .await;
    rig.start_rotation(sp_name, &version(1)).await;
    rig.set_faults(
        json!({"omit_response_fields": ["secret"], "path_contains": "/credentials/secrets"}),
    )
    .await;
    let error = rig
        .step(sp_name, &version(1), "createSecret")
        .await
        .unwrap_err();
    rig.set_faults(json!({})).await;
    assert!(error.message.contains("`secret`"), "{error}");
    assert!(error.message.contains("was deleted"), "{error}");
    assert_eq!(rig.value_of_version(sp_name, &version(1)).await, None);
    assert_eq!(sp_secret_ids(&rig, &sp_id).await, vec![first_id]);
}
