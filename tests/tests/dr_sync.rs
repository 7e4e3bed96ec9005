//! dr-sync end to end with its real adapters: two workspaces in two regions of the
//! Databricks emulator (each with its own metastore, Delta Sharing between them, SQL
//! executed on warehouses), the run store in S3 and the pointer in SSM on moto. The
//! steps run in-process, in the order and loop the state machine drives them.

use std::time::Duration;

use dr_sync::aws::{S3RunStore, SsmPointer};
use dr_sync::databricks::DatabricksSide;
use dr_sync::event::{Mode, Request, Response, Step};
use dr_sync::failover::Mode as FailoverMode;
use dr_sync::failover_runner::{Failover, FailoverRequest, FailoverStep};
use dr_sync::runner::Sync;
use dr_sync::spec::DrSpec;
use lakeops_shared::databricks::DatabricksClient;
use lakeops_tests::databricks_fixture::{
    account, control, count, job_pause_status, scheduled_job, sql, warehouse, warehouse_named,
    workspace,
};
use lakeops_tests::{DatabricksEmulator, Moto};
use serde_json::{json, Value};

const BUCKET: &str = "lakeops-test-dr-state";

struct Dr {
    emulator: DatabricksEmulator,
    _moto: Moto,
    primary: DatabricksClient,
    secondary: DatabricksClient,
    spec: DrSpec,
    s3: aws_sdk_s3::Client,
    ssm: aws_sdk_ssm::Client,
    /// The primary's own warehouse, for the test's writes there.
    primary_warehouse: String,
}

async fn setup() -> Dr {
    let statements = [
        "CREATE TABLE main.core.orders (id BIGINT, email STRING) COMMENT 'every order'",
        "INSERT INTO main.core.orders VALUES (1, 'a@example.com'), (2, 'b@example.com')",
        "CREATE TABLE main.core.customers (id BIGINT, name STRING)",
        "INSERT INTO main.core.customers VALUES (1, 'Ada')",
        "CREATE VIEW main.core.big_orders AS SELECT id FROM main.core.orders WHERE id > 1",
        "GRANT SELECT ON TABLE main.core.orders TO `analysts`",
        "ALTER TABLE main.core.orders SET TAGS ('domain' = 'sales')",
    ];
    setup_with(
        &[("main", vec!["core".to_string()])],
        statements.iter().map(|s| s.to_string()).collect(),
        2,
    )
    .await
}

/// Two workspaces in two regions, the primary's catalogs and schemas, and the
/// statements that fill them; the spec syncs every catalog given.
async fn setup_with(
    catalogs: &[(&str, Vec<String>)],
    statements: Vec<String>,
    concurrency: u32,
) -> Dr {
    let emulator = DatabricksEmulator::start_with(&[
        "--provisioning-seconds",
        "0",
        "--cluster-seconds",
        "0",
        "--statement-seconds",
        "0",
        "--warehouse-seconds",
        "0",
    ]);
    let (connector, account) = account(emulator.url()).await;
    let primary = workspace(&connector, &account, "dr-primary", "us-east-1").await;
    let secondary = workspace(&connector, &account, "dr-secondary", "us-west-2").await;

    let primary_warehouse = warehouse(&primary, "primary-etl").await;
    for (catalog, schemas) in catalogs {
        let _: Value = primary
            .post("/api/2.1/unity-catalog/catalogs", &json!({"name": catalog}))
            .await
            .unwrap();
        for schema in schemas {
            let _: Value = primary
                .post(
                    "/api/2.1/unity-catalog/schemas",
                    &json!({"name": schema, "catalog_name": catalog}),
                )
                .await
                .unwrap();
        }
    }
    for statement in &statements {
        sql(&primary, &primary_warehouse, statement).await;
    }

    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let s3 = lakeops_shared::aws::s3(&sdk);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let spec = dr_sync::spec::parse(&json!({
        "name": "test-dr",
        "primary": {"host": primary.base_url(), "region": "us-east-1", "credentials_secret_arn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:lakeops/test/p"},
        "secondary": {"host": secondary.base_url(), "region": "us-west-2", "credentials_secret_arn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:lakeops/test/s"},
        "warehouse": {"create": {"name": "lakeops-dr-sync"}},
        "sharing": {"recipient": "lakeops_dr_usw2", "share_prefix": "lakeops_dr_"},
        "catalogs": catalogs.iter().map(|(c, _)| json!({"source": c})).collect::<Vec<_>>(),
        "sync_principal": "00000000-0000-0000-0000-0000000000a1",
        "concurrency": concurrency,
        "active_workspace_parameter": "/lakeops/test/dr/active-workspace"
    }))
    .unwrap_or_else(|p| panic!("{p}"));
    Dr {
        emulator,
        ssm: lakeops_shared::aws::ssm(&sdk),
        s3,
        _moto: moto,
        primary,
        secondary,
        spec,
        primary_warehouse,
    }
}

impl Dr {
    async fn run(&self, mode: Mode, run: &str) -> Result<Response, lakeops_shared::Error> {
        self.run_counted(mode, run).await.map(|(r, _, _)| r)
    }

    /// A run, with the Lambda invocations it took and the state transitions the
    /// dr-sync state machine would make for it (its fixed states, and per step call
    /// the Task and its Choice, plus a Wait when the step is not ready).
    async fn run_counted(
        &self,
        mode: Mode,
        run: &str,
    ) -> Result<(Response, usize, usize), lakeops_shared::Error> {
        let p = DatabricksSide::new(self.primary.clone(), None, true, true);
        let s = DatabricksSide::new(
            self.secondary.clone(),
            Some(self.spec.warehouse.clone()),
            true,
            true,
        );
        let store = S3RunStore::new(self.s3.clone(), BUCKET, &self.spec.name);
        let pointer = SsmPointer {
            ssm: self.ssm.clone(),
            name: self.spec.active_workspace_parameter.clone(),
        };
        let sync = Sync {
            spec: &self.spec,
            primary: &p,
            secondary: &s,
            store: &store,
            pointer: &pointer,
            now: ("2026-12-03T12:00:00Z".into(), 1_800_000_000_000),
        };
        let steps = match mode {
            Mode::Apply => Step::apply_order(),
            _ => vec![Step::Discover, Step::Report],
        };
        let (mut generation, mut last) = (None, None);
        // Inputs, WithDefaults, CheckInput, InFlight, OneAtATime, RunId, ByMode, Done.
        let (mut invocations, mut transitions) = (0, 8);
        for step in steps {
            for call in 0.. {
                assert!(call < 5000, "step {} never became ready", step.as_str());
                invocations += 1;
                transitions += 2;
                let request = Request {
                    step: step.as_str().into(),
                    mode,
                    spec: json!({}),
                    generation,
                    run: Some(run.into()),
                    reverse: false,
                };
                let response = sync.step(&request).await?;
                generation = response.generation;
                if response.ready {
                    last = Some(response);
                    break;
                }
                transitions += 1;
                tokio::time::sleep(Duration::from_millis(20)).await; // the state machine's Wait
            }
        }
        Ok((last.unwrap(), invocations, transitions))
    }

    /// The report's lines that are not ok, for assertion messages.
    async fn not_ok(&self, run: &str) -> Vec<Value> {
        let key = format!("dr/{}/runs/{run}/report.json", self.spec.name);
        let object = self
            .s3
            .get_object()
            .bucket(BUCKET)
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

    /// The mutating requests the emulator logged since `since` (statements count by their SQL).
    async fn mutations_since(&self, since: u64) -> (u64, Vec<String>) {
        let log = control(
            self.emulator.url(),
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

    async fn count(&self, table: &str) -> i64 {
        let w = warehouse_named(&self.secondary, "lakeops-dr-sync").await;
        count(&self.secondary, &w, table).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_region_is_synced_incrementally_and_a_rerun_changes_nothing() {
    let dr = setup().await;
    let first = dr.run(Mode::Apply, "r1").await.unwrap();
    let summary = first.summary.unwrap();
    assert!(summary.clean, "{summary:?} {:#?}", dr.not_ok("r1").await);
    assert_eq!(dr.count("main.core.orders").await, 2);
    assert_eq!(dr.count("main.core.big_orders").await, 1);
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
    let again = dr.run(Mode::Apply, "r2").await.unwrap();
    assert!(again.summary.unwrap().clean);
    let (since, done) = dr.mutations_since(since).await;
    assert_eq!(done, Vec::<String>::new());

    // One table changes on the primary: only it is cloned.
    sql(
        &dr.primary,
        &dr.primary_warehouse,
        "INSERT INTO main.core.orders VALUES (3, 'c@example.com')",
    )
    .await;
    let (since, _) = dr.mutations_since(since).await;
    let plan = dr.run(Mode::Plan, "p1").await.unwrap();
    assert_eq!(plan.changes_total, 1, "{:?}", plan.changes);
    let (since, planned) = dr.mutations_since(since).await;
    assert_eq!(planned, Vec::<String>::new(), "plan changed nothing");
    dr.run(Mode::Apply, "r3").await.unwrap();
    let (_, cloned) = dr.mutations_since(since).await;
    assert_eq!(cloned.len(), 1, "{cloned:?}");
    assert_eq!(dr.count("main.core.orders").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_clone_fails_alone_and_converges_on_the_next_run() {
    let dr = setup().await;
    control(dr.emulator.url(), reqwest::Method::POST, "/_emulator/faults", Some(json!({"statement_fail_contains": "DEEP CLONE `lakeops_dr_main`.`core`.`customers`", "statement_failures_next": 1}))).await;
    let first = dr.run(Mode::Apply, "r1").await.unwrap().summary.unwrap();
    assert_eq!(first.failed, 1, "{first:?}");
    assert_eq!(
        dr.count("main.core.orders").await,
        2,
        "the other tables went on"
    );
    control(
        dr.emulator.url(),
        reqwest::Method::DELETE,
        "/_emulator/faults",
        None,
    )
    .await;
    assert!(
        dr.run(Mode::Apply, "r2")
            .await
            .unwrap()
            .summary
            .unwrap()
            .clean
    );
    assert_eq!(dr.count("main.core.customers").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_moves_the_jobs_and_the_pointer_and_stops_the_old_direction() {
    let dr = setup().await;
    dr.run(Mode::Apply, "r1").await.unwrap();
    let primary_job = scheduled_job(&dr.primary, "nightly-etl", "UNPAUSED").await;
    let secondary_job = scheduled_job(&dr.secondary, "nightly-etl", "PAUSED").await;
    let p = DatabricksSide::new(dr.primary.clone(), None, true, true);
    let s = DatabricksSide::new(
        dr.secondary.clone(),
        Some(dr.spec.warehouse.clone()),
        true,
        true,
    );
    let pointer = SsmPointer {
        ssm: dr.ssm.clone(),
        name: dr.spec.active_workspace_parameter.clone(),
    };
    let store = S3RunStore::new(dr.s3.clone(), BUCKET, &dr.spec.name);
    let failover = Failover {
        spec: &dr.spec,
        primary: &p,
        secondary: &s,
        store: &store,
        pointer: &pointer,
        now: "2026-12-03T13:00:00Z".into(),
    };
    let mut generation = None;
    for step in [
        FailoverStep::Decide,
        FailoverStep::CancelSyncStatements,
        FailoverStep::PausePrimaryJobs,
        FailoverStep::UnpauseSecondaryJobs,
        FailoverStep::Switch,
    ] {
        let r = failover
            .step(&FailoverRequest {
                failover_step: step,
                mode: FailoverMode::Forced,
                spec: json!({}),
                reverse: false,
                generation,
                last_sync: None,
                last_sync_error: None,
                stopped_runs: vec![],
            })
            .await
            .unwrap();
        generation = r.generation;
    }
    assert_eq!(job_pause_status(&dr.primary, primary_job).await, "PAUSED");
    assert_eq!(
        job_pause_status(&dr.secondary, secondary_job).await,
        "UNPAUSED"
    );
    let refused = dr.run(Mode::Apply, "r2").await.unwrap_err();
    assert!(refused.message.contains("DR.PrimaryNotActive"), "{refused}");
}

/// The benchmark of BENCHMARKS.md ("dr-sync"): 1,000 tables in 20 schemas of 2
/// catalogs; the first sync and a no-op re-run. Run by hand:
/// `cargo test --release -p lakeops-tests --test dr_sync -- --ignored --nocapture benchmark`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: minutes, and it prints its measurements"]
async fn benchmark_1000_tables_in_20_schemas_of_2_catalogs() {
    let catalogs: Vec<(&str, Vec<String>)> = ["sales", "ops"]
        .iter()
        .map(|c| (*c, (0..10).map(|s| format!("s{s:02}")).collect()))
        .collect();
    let mut statements = vec![];
    for (c, schemas) in &catalogs {
        for s in schemas {
            for t in 0..50 {
                statements.push(format!(
                    "CREATE TABLE {c}.{s}.t{t:02} (id BIGINT, v STRING)"
                ));
                statements.push(format!("INSERT INTO {c}.{s}.t{t:02} VALUES ({t}, 'x')"));
            }
        }
    }
    let started = std::time::Instant::now();
    let dr = setup_with(&catalogs, statements, 8).await;
    eprintln!(
        "seeded 1000 tables in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let log = |since: u64| {
        let url = format!("{}/_emulator/requests?since={since}", dr.emulator.url());
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let mut rows = vec![];
    let mut since = log(u64::MAX).await["next"].as_u64().unwrap();
    for (label, run) in [("first sync", "b1"), ("no-op re-run", "b2")] {
        let t = std::time::Instant::now();
        let (response, invocations, transitions) = dr.run_counted(Mode::Apply, run).await.unwrap();
        let wall = t.elapsed().as_secs_f64();
        let entries = log(since).await;
        since = entries["next"].as_u64().unwrap();
        let requests = entries["requests"].as_array().unwrap();
        let mutating = requests.iter().filter(|r| r["mutating"] == true).count();
        let clones = requests
            .iter()
            .filter(|r| {
                r["statement_kind"]
                    .as_str()
                    .is_some_and(|k| k.contains("CLONE"))
            })
            .count();
        let summary = response.summary.unwrap();
        assert!(summary.clean, "{label}: {summary:?}");
        rows.push(format!(
            "| {label} | {wall:.1} s | {invocations} | {transitions} | {} | {mutating} | {clones} |",
            requests.len()
        ));
    }
    println!("| run | wall time | Lambda invocations | state transitions | Databricks calls | mutating calls | clones |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
