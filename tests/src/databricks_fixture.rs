//! Databricks fixtures on the emulator, shared by the tests that need a workspace
//! with its metastore, a warehouse and SQL: the account admin's credentials, the
//! emulator's control API, workspaces in a region, and statements run to their end.

use std::time::Duration;

use lakeops_shared::databricks::{
    Credentials, DatabricksClient, DatabricksConnector, DatabricksSettings,
};
use lakeops_shared::settings::Env;
use lakeops_shared::Secret;
use serde_json::{json, Value};

/// The emulator's account admin service principal (its defaults, local/databricks-emulator).
pub const ADMIN_CLIENT_ID: &str = "00000000-0000-0000-0000-0000000000a1";
pub const ADMIN_CLIENT_SECRET: &str = "dose00000000000000000000000000000001";

pub fn admin() -> Credentials {
    Credentials::OAuthM2M {
        client_id: ADMIN_CLIENT_ID.into(),
        client_secret: Secret::new(ADMIN_CLIENT_SECRET),
    }
}

/// A call to the emulator's own API (`/_emulator/...`) at `base_url`; the body as JSON, or null.
pub async fn control(
    base_url: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let client = reqwest::Client::new();
    let mut req = client.request(method, format!("{base_url}{path}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The connector and the account client of the emulator at `base_url`, as its
/// `/_emulator/info` describes them.
pub async fn account(base_url: &str) -> (DatabricksConnector, DatabricksClient) {
    let info = control(base_url, reqwest::Method::GET, "/_emulator/info", None).await;
    let vars = [
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
    ]
    .into_iter()
    .collect();
    let connector =
        DatabricksConnector::new(DatabricksSettings::read(&mut Env::from_map(vars))).unwrap();
    let account = connector.account(info["account_id"].as_str().unwrap(), admin());
    (connector, account)
}

/// A workspace in `region` with that region's metastore assigned.
pub async fn workspace(
    connector: &DatabricksConnector,
    account: &DatabricksClient,
    deployment: &str,
    region: &str,
) -> DatabricksClient {
    let created: Value = account
        .post(&account.account_path("workspaces"), &json!({"workspace_name": deployment, "deployment_name": deployment, "aws_region": region, "compute_mode": "SERVERLESS"}))
        .await
        .unwrap();
    let id = created["workspace_id"].as_i64().unwrap();
    for _ in 0..400 {
        let ws: Value = account
            .get(&account.account_path(&format!("workspaces/{id}")))
            .await
            .unwrap();
        if ws["workspace_status"] == "RUNNING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metastore: Value = account
        .post(&account.account_path("metastores"), &json!({"metastore_info": {"name": format!("metastore-{region}"), "region": region, "storage_root": format!("s3://uc-{region}")}}))
        .await
        .unwrap();
    let mid = metastore["metastore_info"]["metastore_id"]
        .as_str()
        .unwrap()
        .to_string();
    let _: Value = account
        .post(
            &account.account_path(&format!("workspaces/{id}/metastores/{mid}")),
            &json!({"metastore_assignment": {"metastore_id": mid, "default_catalog_name": "main"}}),
        )
        .await
        .unwrap();
    connector.workspace(deployment, admin())
}

/// Runs a statement to its end and returns its rows.
pub async fn sql(client: &DatabricksClient, warehouse: &str, statement: &str) -> Vec<Vec<Value>> {
    let mut answer: Value = client
        .post(
            "/api/2.0/sql/statements",
            &json!({"statement": statement, "warehouse_id": warehouse, "wait_timeout": "30s"}),
        )
        .await
        .unwrap();
    for _ in 0..1000 {
        match answer["status"]["state"].as_str() {
            Some("SUCCEEDED") => {
                return answer["result"]["data_array"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| r.as_array().cloned().unwrap_or_default())
                    .collect()
            }
            Some("FAILED") | Some("CANCELED") | Some("CLOSED") => panic!("{statement}: {answer}"),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        answer = client
            .get(&format!(
                "/api/2.0/sql/statements/{}",
                answer["statement_id"].as_str().unwrap()
            ))
            .await
            .unwrap();
    }
    panic!("{statement} never finished");
}

/// A new SQL warehouse's id.
pub async fn warehouse(client: &DatabricksClient, name: &str) -> String {
    let w: Value = client
        .post(
            "/api/2.0/sql/warehouses",
            &json!({"name": name, "cluster_size": "2X-Small", "auto_stop_mins": 0}),
        )
        .await
        .unwrap();
    w["id"].as_str().unwrap().to_string()
}

/// The id of the warehouse named `name`.
pub async fn warehouse_named(client: &DatabricksClient, name: &str) -> String {
    let list: Value = client.get("/api/2.0/sql/warehouses").await.unwrap();
    list["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .unwrap_or_else(|| panic!("no warehouse {name}: {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `SELECT COUNT(*)` of a table or view.
pub async fn count(client: &DatabricksClient, warehouse: &str, table: &str) -> i64 {
    let rows = sql(client, warehouse, &format!("SELECT COUNT(*) FROM {table}")).await;
    rows[0][0].as_str().unwrap().parse().unwrap()
}

/// A job with a schedule in `pause_status`; its id.
pub async fn scheduled_job(client: &DatabricksClient, name: &str, pause_status: &str) -> i64 {
    let created: Value = client
        .post("/api/2.2/jobs/create", &json!({"name": name, "schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "UTC", "pause_status": pause_status},
               "tasks": [{"task_key": "t", "notebook_task": {"notebook_path": "/etl"}}]}))
        .await
        .unwrap();
    created["job_id"].as_i64().unwrap()
}

/// A job's schedule `pause_status`.
pub async fn job_pause_status(client: &DatabricksClient, id: i64) -> String {
    let j: Value = client
        .get(&format!("/api/2.2/jobs/get?job_id={id}"))
        .await
        .unwrap();
    j["settings"]["schedule"]["pause_status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The mutating requests the emulator at `base_url` logged since `since` (`METHOD path
/// statement-kind`; a statement counts by its SQL), and the next cursor. An OAuth token
/// request is a POST that changes nothing: a process that restarts fetches a new one.
pub async fn mutations_since(base_url: &str, since: u64) -> (u64, Vec<String>) {
    let log = control(
        base_url,
        reqwest::Method::GET,
        &format!("/_emulator/requests?since={since}"),
        None,
    )
    .await;
    let list = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["mutating"] == true)
        .filter(|r| !r["path"].as_str().unwrap_or_default().contains("/oidc/"))
        .map(|r| {
            format!(
                "{} {} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap(),
                r["statement_kind"].as_str().unwrap_or("")
            )
        })
        .collect();
    (log["next"].as_u64().unwrap(), list)
}

/// The lines of a dr-sync report in S3 (`s3://bucket/key`) whose status is not `ok`.
pub async fn report_not_ok(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<Value> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let report: Value =
        serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["status"] != "ok")
        .cloned()
        .collect()
}
