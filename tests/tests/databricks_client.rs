//! The shared Databricks client against the Databricks emulator: both hosts,
//! both kinds of auth, the error shapes, and retries under injected faults.

use lakeops_shared::databricks::{Credentials, DatabricksConnector, DatabricksSettings};
use lakeops_shared::retry::RetryPolicy;
use lakeops_shared::settings::Env;
use lakeops_shared::Secret;
use lakeops_tests::DatabricksEmulator;
use serde_json::{json, Value};
use std::time::Duration;

const ACCOUNT_ID: &str = "00000000-0000-0000-0000-000000000001";
const ADMIN_CLIENT_ID: &str = "00000000-0000-0000-0000-0000000000a1";
const ADMIN_SECRET: &str = "dose00000000000000000000000000000001";

fn connector(emulator: &DatabricksEmulator, budget: Duration) -> DatabricksConnector {
    let mut env = Env::from_map(
        [
            (
                "DATABRICKS_ACCOUNT_HOST".to_string(),
                emulator.url().to_string(),
            ),
            (
                "DATABRICKS_WORKSPACE_HOST_TEMPLATE".to_string(),
                format!("{}/ws/{{deployment_name}}", emulator.url()),
            ),
        ]
        .into_iter()
        .collect(),
    );
    let mut settings = DatabricksSettings::read(&mut env);
    env.finish().unwrap();
    settings.retry = RetryPolicy {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
        budget,
        max_attempts: 20,
    };
    DatabricksConnector::new(settings).unwrap()
}

fn admin() -> Credentials {
    Credentials::OAuthM2M {
        client_id: ADMIN_CLIENT_ID.to_string(),
        client_secret: Secret::new(ADMIN_SECRET),
    }
}

async fn set_faults(emulator: &DatabricksEmulator, faults: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}/_emulator/faults", emulator.url()))
        .json(&faults)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn fault_counters(emulator: &DatabricksEmulator) -> Value {
    let state: Value = reqwest::get(format!("{}/_emulator/faults", emulator.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state["counters"].clone()
}

/// Create credentials, storage and network, then a workspace, and wait for it
/// to run by polling (as a Step Functions loop would, here in the test).
async fn running_workspace(
    client: &lakeops_shared::databricks::DatabricksClient,
    name: &str,
) -> Value {
    let credentials: Value = client
        .post(
            &client.account_path("credentials"),
            &json!({"credentials_name": format!("{name}-cred"), "aws_credentials": {"sts_role": {"role_arn": "arn:aws:iam::123456789012:role/databricks-cross-account"}}}),
        )
        .await
        .unwrap();
    let storage: Value = client
        .post(
            &client.account_path("storage-configurations"),
            &json!({"storage_configuration_name": format!("{name}-storage"), "root_bucket_info": {"bucket_name": format!("{name}-root")}}),
        )
        .await
        .unwrap();
    let workspace: Value = client
        .post(
            &client.account_path("workspaces"),
            &json!({
                "workspace_name": name,
                "deployment_name": name,
                "aws_region": "us-east-1",
                "credentials_id": credentials["credentials_id"],
                "storage_configuration_id": storage["storage_configuration_id"],
            }),
        )
        .await
        .unwrap();
    let id = workspace["workspace_id"].as_i64().unwrap();
    for _ in 0..100 {
        let current: Value = client
            .get(&client.account_path(&format!("workspaces/{id}")))
            .await
            .unwrap();
        if current["workspace_status"] == "RUNNING" {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("workspace {name} did not reach RUNNING");
}

#[tokio::test]
async fn account_and_workspace_hosts_with_oauth_and_pat() {
    let emulator = DatabricksEmulator::start_with(&["--provisioning-seconds", "1"]);
    let connector = connector(&emulator, Duration::from_secs(10));
    let account = connector.account(ACCOUNT_ID, admin());

    // Bare-array list of the provisioning API.
    let credentials: Vec<Value> = account
        .get(&account.account_path("credentials"))
        .await
        .unwrap();
    assert!(credentials.is_empty());

    let workspace = running_workspace(&account, "lakeops-test").await;
    assert_eq!(workspace["deployment_name"], "lakeops-test");

    // The creator is workspace admin: the same OAuth principal reaches the
    // workspace through the host template, with a workspace-level token.
    let ws = connector.workspace("lakeops-test", admin());
    assert_eq!(ws.base_url(), format!("{}/ws/lakeops-test", emulator.url()));
    let me: Value = ws.get("/api/2.0/preview/scim/v2/Me").await.unwrap();
    assert!(
        me["userName"]
            .as_str()
            .or(me["applicationId"].as_str())
            .is_some(),
        "{me}"
    );

    // A PAT made through OAuth works as a bearer token on its workspace.
    let created: Value = ws
        .post(
            "/api/2.0/token/create",
            &json!({"comment": "client test", "lifetime_seconds": 3600}),
        )
        .await
        .unwrap();
    let pat = Secret::new(created["token_value"].as_str().unwrap());
    let token_id = created["token_info"]["token_id"]
        .as_str()
        .unwrap()
        .to_string();
    let with_pat = connector.workspace("lakeops-test", Credentials::Pat(pat.clone()));
    let tokens: Value = with_pat.get("/api/2.0/token/list").await.unwrap();
    assert!(tokens["token_infos"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["token_id"] == token_id.as_str()));

    // Revoked: the PAT now gets the real 403 with a numeric error code.
    ws.post::<_, Value>("/api/2.0/token/delete", &json!({"token_id": token_id}))
        .await
        .unwrap();
    let error = with_pat
        .get::<Value>("/api/2.0/token/list")
        .await
        .unwrap_err();
    assert_eq!(error.status, 403, "{error}");
    assert!(!error.is_transient());
    assert!(
        !error.to_string().contains(pat.expose()),
        "no token in errors"
    );

    // Real error shapes: 404 RESOURCE_DOES_NOT_EXIST is recognised.
    let missing = account
        .get_optional::<Value>(
            &account.account_path("credentials/00000000-0000-0000-0000-00000000dead"),
        )
        .await
        .unwrap();
    assert!(missing.is_none());
}

#[tokio::test]
async fn wrong_oauth_secret_is_a_terminal_error_without_the_secret() {
    let emulator = DatabricksEmulator::start();
    let connector = connector(&emulator, Duration::from_secs(5));
    let account = connector.account(
        ACCOUNT_ID,
        Credentials::OAuthM2M {
            client_id: ADMIN_CLIENT_ID.to_string(),
            client_secret: Secret::new("definitely-wrong-secret-value"),
        },
    );
    let error = account
        .get::<Value>(&account.account_path("workspaces"))
        .await
        .unwrap_err();
    assert!(!error.is_transient(), "{error}");
    assert!(!error.to_string().contains("definitely-wrong-secret-value"));
    let lakeops: lakeops_shared::Error = error.into();
    assert_eq!(lakeops.error_name(), "Lakeops.Terminal");
}

#[tokio::test]
async fn retries_429_and_503_honouring_retry_after() {
    let emulator = DatabricksEmulator::start();
    let connector = connector(&emulator, Duration::from_secs(20));
    let account = connector.account(ACCOUNT_ID, admin());
    set_faults(
        &emulator,
        json!({"throttle_next": 2, "unavailable_next": 1, "retry_after_seconds": 1}),
    )
    .await;
    let started = std::time::Instant::now();
    let workspaces: Vec<Value> = account
        .get(&account.account_path("workspaces"))
        .await
        .unwrap();
    assert!(workspaces.is_empty());
    let counters = fault_counters(&emulator).await;
    assert_eq!(counters["throttled"], 2, "{counters}");
    assert_eq!(counters["unavailable"], 1, "{counters}");
    // Three faulted answers, each asking for one second.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "Retry-After was not honoured: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn gives_up_as_retryable_when_the_budget_runs_out() {
    let emulator = DatabricksEmulator::start();
    let connector = connector(&emulator, Duration::from_secs(2));
    let account = connector.account(ACCOUNT_ID, admin());
    set_faults(
        &emulator,
        json!({"throttle_rate": 1.0, "retry_after_seconds": 1}),
    )
    .await;
    let error = account
        .get::<Value>(&account.account_path("workspaces"))
        .await
        .unwrap_err();
    assert_eq!(error.status, 429);
    assert_eq!(error.error_code.as_deref(), Some("REQUEST_LIMIT_EXCEEDED"));
    let lakeops: lakeops_shared::Error = error.into();
    assert_eq!(lakeops.error_name(), "Lakeops.Retryable");
}

#[tokio::test]
async fn credential_validation_failures_in_json_and_plain_text() {
    let emulator = DatabricksEmulator::start();
    let connector = connector(&emulator, Duration::from_secs(5));
    let account = connector.account(ACCOUNT_ID, admin());
    set_faults(
        &emulator,
        json!({"credential_validation_failures": 2, "credential_failure_format": "alternate"}),
    )
    .await;
    let body = json!({"credentials_name": "c", "aws_credentials": {"sts_role": {"role_arn": "arn:aws:iam::123456789012:role/x"}}});
    let mut messages = Vec::new();
    for _ in 0..2 {
        let error = account
            .post::<_, Value>(&account.account_path("credentials"), &body)
            .await
            .unwrap_err();
        assert_eq!(error.status, 400);
        assert!(
            error
                .message
                .contains("Failed credential validation checks"),
            "{error}"
        );
        messages.push(error);
    }
    // One JSON body, one text/plain body: both parsed into a message.
    assert!(messages
        .iter()
        .any(|e| e.error_code.as_deref() == Some("MALFORMED_REQUEST")));
    let created: Value = account
        .post(&account.account_path("credentials"), &body)
        .await
        .unwrap();
    assert!(created["credentials_id"].is_string());
}

#[tokio::test]
async fn unreachable_host_is_retryable() {
    let mut env = Env::from_map(
        [(
            "DATABRICKS_ACCOUNT_HOST".to_string(),
            format!("http://127.0.0.1:{}", lakeops_tests::free_port()),
        )]
        .into_iter()
        .collect(),
    );
    let mut settings = DatabricksSettings::read(&mut env);
    settings.retry = RetryPolicy {
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        budget: Duration::from_millis(500),
        max_attempts: 3,
    };
    let connector = DatabricksConnector::new(settings).unwrap();
    let account = connector.account(ACCOUNT_ID, admin());
    let error = account
        .get::<Value>(&account.account_path("workspaces"))
        .await
        .unwrap_err();
    assert_eq!(error.status, 0);
    assert!(error.is_transient());
}
