//! dr-sync and dr-failover on the local stack: the template deployed with
//! `DrSpecUri`, the REAL `DrSyncStateMachine` and `DrFailoverStateMachine` run
//! by moto's Step Functions, which invoke the real `dr-sync` function through
//! the stack's router; the spec is read from the config bucket, the
//! workspaces' credentials from Secrets Manager, the pointer from SSM, and the
//! sync schedule is disabled and enabled again through EventBridge Scheduler.
//! Both workspaces live in the stack's Databricks emulator, in two regions.
//! Nothing of dr-sync is called in-process.
//!
//! The sync runs where the stack runs (us-east-1, the secondary), pulling from a
//! primary in us-west-2. Clones are polled after a 15 s Wait and other
//! statements after 3 s, so a run that clones takes about half a minute.

use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use lakeops_shared::databricks::DatabricksClient;
use lakeops_tests::databricks_fixture::{
    account, control, count, job_pause_status, mutations_since, report_not_ok, scheduled_job, sql,
    warehouse, warehouse_named, workspace, ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET,
};
use lakeops_tests::{tail, Execution, LocalStack};
use serde_json::{json, Value};

const PAIR: &str = "stack-dr";
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

struct StackDr {
    stack: LocalStack,
    sdk: aws_config::SdkConfig,
    primary: DatabricksClient,
    secondary: DatabricksClient,
    primary_warehouse: String,
    spec: Value,
    pointer_name: String,
}

impl StackDr {
    async fn start() -> StackDr {
        let mut stack = LocalStack::start();
        let sdk = stack.sdk_config().await;
        let (connector, account) = account(&stack.databricks_url).await;
        let primary = workspace(&connector, &account, "dr-primary", "us-west-2").await;
        let secondary = workspace(&connector, &account, "dr-secondary", "us-east-1").await;
        let primary_warehouse = warehouse(&primary, "primary-etl").await;
        for path in ["catalogs", "schemas"] {
            let body = match path {
                "catalogs" => json!({"name": "main"}),
                _ => json!({"name": "core", "catalog_name": "main"}),
            };
            let _: Value = primary
                .post(&format!("/api/2.1/unity-catalog/{path}"), &body)
                .await
                .unwrap();
        }
        for statement in [
            "CREATE TABLE main.core.orders (id BIGINT, email STRING) COMMENT 'every order'",
            "INSERT INTO main.core.orders VALUES (1, 'a@example.com'), (2, 'b@example.com')",
            "CREATE TABLE main.core.customers (id BIGINT, name STRING)",
            "INSERT INTO main.core.customers VALUES (1, 'Ada')",
            "CREATE VIEW main.core.big_orders AS SELECT id FROM main.core.orders WHERE id > 1",
            "GRANT SELECT ON TABLE main.core.orders TO `analysts`",
            "ALTER TABLE main.core.orders SET TAGS ('domain' = 'sales')",
        ] {
            sql(&primary, &primary_warehouse, statement).await;
        }

        let environment = stack.outputs["parameters"]["EnvironmentName"]
            .as_str()
            .unwrap_or("dev")
            .to_string();
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        let mut arns = vec![];
        for side in ["primary", "secondary"] {
            // Both credentials live in the secondary's region, where the sync runs.
            let created = secrets
                .create_secret()
                .name(format!("lakeops/{environment}/dr/{side}-sp"))
                .secret_string(
                    json!({
                        "kind": "databricks-sp-secret",
                        "account_id": "00000000-0000-0000-0000-000000000001",
                        "service_principal_id": "1000000000000001",
                        "client_id": ADMIN_CLIENT_ID,
                        "client_secret": ADMIN_CLIENT_SECRET,
                        "secret_id": "bootstrap",
                    })
                    .to_string(),
                )
                .send()
                .await
                .unwrap();
            arns.push(created.arn().unwrap().to_string());
        }
        let pointer_name = format!("/lakeops/{environment}/dr/active-workspace");
        let spec = json!({
            "name": PAIR,
            "primary": {"host": primary.base_url(), "region": "us-west-2", "credentials_secret_arn": arns[0]},
            "secondary": {"host": secondary.base_url(), "region": "us-east-1", "credentials_secret_arn": arns[1]},
            "warehouse": {"create": {"name": "lakeops-dr-sync"}},
            "sharing": {"recipient": "lakeops_dr_use1", "share_prefix": "lakeops_dr_"},
            "catalogs": [{"source": "main"}],
            "sync_principal": ADMIN_CLIENT_ID,
            "concurrency": 4,
            "active_workspace_parameter": pointer_name,
            "failover_jobs": ["nightly-*"]
        });
        let config_bucket = stack.resource("ConfigBucket");
        let key = format!("dr/{PAIR}.json");
        lakeops_shared::aws::s3(&sdk)
            .put_object()
            .bucket(&config_bucket)
            .key(&key)
            .body(spec.to_string().into_bytes().into())
            .send()
            .await
            .unwrap();
        stack.deploy(&[("DrSpecUri", &format!("s3://{config_bucket}/{key}"))]);
        StackDr {
            stack,
            sdk,
            primary,
            secondary,
            primary_warehouse,
            spec,
            pointer_name,
        }
    }

    async fn execute(&self, state_machine: &str, input: Value) -> Execution {
        self.stack.execute(state_machine, &input, RUN_TIMEOUT).await
    }

    /// A dr-sync run that must succeed; its output (status, summary, report_uri, ...).
    async fn sync(&self, input: Value) -> Value {
        let execution = self.execute("DrSyncStateMachine", input.clone()).await;
        assert_eq!(
            execution.status,
            ExecutionStatus::Succeeded,
            "dr-sync {input}: {} {}\nlambda logs:\n{}",
            execution.error,
            execution.cause,
            tail(&self.stack.lambda_logs(), 8000)
        );
        assert_eq!(
            execution.output["status"], "SUCCEEDED",
            "{}",
            execution.output
        );
        execution.output
    }

    async fn failover(&self, input: Value) -> Value {
        let execution = self.execute("DrFailoverStateMachine", input.clone()).await;
        assert_eq!(
            execution.status,
            ExecutionStatus::Succeeded,
            "dr-failover {input}: {} {}\nlambda logs:\n{}",
            execution.error,
            execution.cause,
            tail(&self.stack.lambda_logs(), 8000)
        );
        execution.output
    }

    /// The report's lines that are not ok.
    async fn not_ok(&self, output: &Value) -> Vec<Value> {
        let uri = output["report_uri"].as_str().unwrap();
        let (bucket, key) = uri.strip_prefix("s3://").unwrap().split_once('/').unwrap();
        report_not_ok(&lakeops_shared::aws::s3(&self.sdk), bucket, key).await
    }

    /// The mutating requests the emulator logged since `since`, and the next cursor.
    async fn mutations_since(&self, since: u64) -> (u64, Vec<String>) {
        mutations_since(&self.stack.databricks_url, since).await
    }

    async fn replica_count(&self, table: &str) -> i64 {
        let w = warehouse_named(&self.secondary, "lakeops-dr-sync").await;
        count(&self.secondary, &w, table).await
    }

    async fn replica_exists(&self, table: &str) -> bool {
        let answer: Value = self
            .secondary
            .get(&format!("/api/2.1/unity-catalog/tables/{table}/exists"))
            .await
            .unwrap();
        answer["table_exists"] == true
    }

    async fn pointer(&self) -> Value {
        let got = lakeops_shared::aws::ssm(&self.sdk)
            .get_parameter()
            .name(&self.pointer_name)
            .send()
            .await
            .unwrap();
        serde_json::from_str(got.parameter().unwrap().value().unwrap()).unwrap()
    }

    /// The sync schedule's state in EventBridge Scheduler, read with boto3 from the
    /// project's venv (the tests do not build the scheduler SDK for one call).
    async fn schedule_state(&self) -> String {
        let environment = self.stack.outputs["parameters"]["EnvironmentName"]
            .as_str()
            .unwrap_or("dev");
        let script = format!(
            "import boto3; print(boto3.client('scheduler', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test').get_schedule(Name='lakeops-{environment}-dr-sync')['State'])",
            self.stack.aws_url
        );
        let output = std::process::Command::new(lakeops_tests::venv().join("bin").join("python"))
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

fn summary(output: &Value) -> &Value {
    &output["summary"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dr_sync_and_failover_through_the_deployed_state_machines() {
    let dr = StackDr::start().await;

    // Apply: everything reaches the secondary.
    let first = dr.sync(json!({"mode": "apply"})).await;
    assert_eq!(
        summary(&first)["clean"],
        true,
        "{:#?}",
        dr.not_ok(&first).await
    );
    assert_eq!(dr.replica_count("main.core.orders").await, 2);
    assert_eq!(dr.replica_count("main.core.big_orders").await, 1);
    let grants: Value = dr
        .secondary
        .get("/api/2.1/unity-catalog/permissions/table/main.core.orders")
        .await
        .unwrap();
    assert!(grants.to_string().contains("analysts"), "{grants}");
    let tags: Value = dr
        .secondary
        .get("/api/2.1/unity-catalog/entity-tag-assignments/tables/main.core.orders/tags")
        .await
        .unwrap();
    assert!(tags.to_string().contains("sales"), "{tags}");

    // A no-op re-run: not one mutating call or statement on either side.
    let (since, _) = dr.mutations_since(u64::MAX).await;
    let again = dr.sync(json!({"mode": "apply"})).await;
    assert_eq!(summary(&again)["clean"], true);
    let (since, done) = dr.mutations_since(since).await;
    assert_eq!(done, Vec::<String>::new(), "a no-op re-run");

    // One table changes on the primary: a plan says so and changes nothing; apply
    // clones only it.
    sql(
        &dr.primary,
        &dr.primary_warehouse,
        "INSERT INTO main.core.orders VALUES (3, 'c@example.com')",
    )
    .await;
    let (since, _) = dr.mutations_since(since).await;
    let execution = dr
        .execute("DrSyncStateMachine", json!({"mode": "plan"}))
        .await;
    assert_eq!(
        execution.status,
        ExecutionStatus::Succeeded,
        "{execution:?}"
    );
    let (since, planned) = dr.mutations_since(since).await;
    assert_eq!(planned, Vec::<String>::new(), "a plan changes nothing");
    let plan_uri = execution.output["plan_uri"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(plan_uri.starts_with("s3://"), "{}", execution.output);
    let incremental = dr.sync(json!({"mode": "apply"})).await;
    assert_eq!(
        summary(&incremental)["clean"],
        true,
        "{:#?}",
        dr.not_ok(&incremental).await
    );
    // The clone, and the table's description, which DEEP CLONE does not copy.
    let (_, cloned) = dr.mutations_since(since).await;
    assert_eq!(cloned.len(), 2, "{cloned:?}");
    assert_eq!(
        cloned.iter().filter(|m| m.contains("CLONE")).count(),
        1,
        "only the changed table is cloned: {cloned:?}"
    );
    assert_eq!(dr.replica_count("main.core.orders").await, 3);

    // Drift on the secondary (a dropped view, a revoked grant) is repaired.
    let w = warehouse_named(&dr.secondary, "lakeops-dr-sync").await;
    sql(&dr.secondary, &w, "DROP VIEW main.core.big_orders").await;
    sql(
        &dr.secondary,
        &w,
        "REVOKE SELECT ON TABLE main.core.orders FROM `analysts`",
    )
    .await;
    let reconciled = dr.sync(json!({"mode": "reconcile"})).await;
    assert_eq!(summary(&reconciled)["clean"], false, "{reconciled}");
    let repaired = dr.sync(json!({"mode": "apply"})).await;
    assert_eq!(
        summary(&repaired)["clean"],
        true,
        "{:#?}",
        dr.not_ok(&repaired).await
    );
    assert_eq!(dr.replica_count("main.core.big_orders").await, 2);
    let grants: Value = dr
        .secondary
        .get("/api/2.1/unity-catalog/permissions/table/main.core.orders")
        .await
        .unwrap();
    assert!(grants.to_string().contains("analysts"), "{grants}");

    // A clone that fails fails alone, and converges on the next run.
    sql(
        &dr.primary,
        &dr.primary_warehouse,
        "INSERT INTO main.core.customers VALUES (2, 'Grace')",
    )
    .await;
    sql(
        &dr.primary,
        &dr.primary_warehouse,
        "INSERT INTO main.core.orders VALUES (4, 'd@example.com')",
    )
    .await;
    control(&dr.stack.databricks_url, reqwest::Method::POST, "/_emulator/faults", Some(json!({"statement_fail_contains": "DEEP CLONE `lakeops_dr_main`.`core`.`customers`", "statement_failures_next": 1}))).await;
    let failed = dr.sync(json!({"mode": "apply"})).await;
    assert_eq!(summary(&failed)["failed"], 1, "{failed}");
    assert_eq!(
        dr.replica_count("main.core.orders").await,
        4,
        "the other tables went on"
    );
    assert_eq!(dr.replica_count("main.core.customers").await, 1);
    control(
        &dr.stack.databricks_url,
        reqwest::Method::DELETE,
        "/_emulator/faults",
        None,
    )
    .await;
    let converged = dr.sync(json!({"mode": "apply"})).await;
    assert_eq!(
        summary(&converged)["clean"],
        true,
        "{:#?}",
        dr.not_ok(&converged).await
    );
    assert_eq!(dr.replica_count("main.core.customers").await, 2);

    // Deletes: reported as extra, dropped only with propagate_deletes.
    sql(
        &dr.primary,
        &dr.primary_warehouse,
        "DROP TABLE main.core.customers",
    )
    .await;
    let kept = dr.sync(json!({"mode": "apply"})).await;
    let extra: Vec<Value> = dr
        .not_ok(&kept)
        .await
        .into_iter()
        .filter(|l| l["status"] == "extra")
        .collect();
    assert_eq!(extra.len(), 1, "{extra:?}");
    assert!(
        extra[0].to_string().contains("main.core.customers"),
        "{extra:?}"
    );
    assert!(
        dr.replica_exists("main.core.customers").await,
        "kept by default"
    );
    let mut propagating = dr.spec.clone();
    propagating["propagate_deletes"] = json!(true);
    let dropped = dr.sync(json!({"mode": "apply", "spec": propagating})).await;
    assert_eq!(
        summary(&dropped)["clean"],
        true,
        "{:#?}",
        dr.not_ok(&dropped).await
    );
    assert!(
        !dr.replica_exists("main.core.customers").await,
        "dropped when asked"
    );

    failover_and_back(&dr).await;
}

/// A planned failover moves the jobs and the pointer and disables the schedule; the
/// old direction is refused; a re-run finishes; failback returns it all.
async fn failover_and_back(dr: &StackDr) {
    let primary_job = scheduled_job(&dr.primary, "nightly-etl", "UNPAUSED").await;
    let secondary_job = scheduled_job(&dr.secondary, "nightly-etl", "PAUSED").await;
    let out = dr.failover(json!({"mode": "planned"})).await;
    assert_eq!(out["status"], "SUCCEEDED", "{out}");
    assert_eq!(job_pause_status(&dr.primary, primary_job).await, "PAUSED");
    assert_eq!(
        job_pause_status(&dr.secondary, secondary_job).await,
        "UNPAUSED"
    );
    let pointer = dr.pointer().await;
    assert_eq!(pointer["active_host"], dr.secondary.base_url(), "{pointer}");
    assert_eq!(pointer["generation"], 2, "{pointer}");
    assert_eq!(dr.schedule_state().await, "DISABLED");

    // The old direction would overwrite the promoted side: refused.
    let refused = dr
        .execute("DrSyncStateMachine", json!({"mode": "apply"}))
        .await;
    assert_eq!(refused.status, ExecutionStatus::Failed, "{refused:?}");
    assert!(
        format!("{} {}", refused.error, refused.cause).contains("DR.PrimaryNotActive"),
        "{refused:?}"
    );
    // A re-run of the failover finishes (its last sync is refused the same way).
    let rerun = dr.failover(json!({"mode": "planned"})).await;
    assert_eq!(rerun["status"], "SUCCEEDED", "{rerun}");
    assert_eq!(dr.pointer().await["generation"], 2, "switched once");

    // Failback: a reverse sync, then a planned failover back.
    let reverse = dr.sync(json!({"mode": "apply", "reverse": true})).await;
    assert_eq!(
        summary(&reverse)["clean"],
        true,
        "{:#?}",
        dr.not_ok(&reverse).await
    );
    let back = dr
        .failover(json!({"mode": "planned", "reverse": true}))
        .await;
    assert_eq!(back["status"], "SUCCEEDED", "{back}");
    let pointer = dr.pointer().await;
    assert_eq!(pointer["active_host"], dr.primary.base_url(), "{pointer}");
    assert_eq!(pointer["generation"], 3, "{pointer}");
    assert_eq!(job_pause_status(&dr.primary, primary_job).await, "UNPAUSED");
    assert_eq!(
        job_pause_status(&dr.secondary, secondary_job).await,
        "PAUSED"
    );
    assert_eq!(dr.schedule_state().await, "ENABLED");
    let resumed = dr.sync(json!({"mode": "apply"})).await;
    assert_eq!(
        summary(&resumed)["clean"],
        true,
        "{:#?}",
        dr.not_ok(&resumed).await
    );
}
