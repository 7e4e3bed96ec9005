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
    account, control, count, job_pause_status, mutations_since, report_not_ok, scheduled_job, sql,
    warehouse, warehouse_named, workspace,
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
        let steps = match mode {
            Mode::Apply => Step::apply_order(),
            _ => vec![Step::Discover, Step::Report],
        };
        self.run_steps(mode, run, steps).await
    }

    /// The given steps of a run, in order (a run that crashed after its last one).
    async fn run_steps(
        &self,
        mode: Mode,
        run: &str,
        steps: Vec<Step>,
    ) -> Result<(Response, usize, usize), lakeops_shared::Error> {
        self.run_direction(mode, run, steps, false).await
    }

    /// A run along the spec, or along the reversed spec (failback): the promoted
    /// secondary is its primary, and it keeps its own runs and ledger, as the handler does.
    async fn run_direction(
        &self,
        mode: Mode,
        run: &str,
        steps: Vec<Step>,
        reverse: bool,
    ) -> Result<(Response, usize, usize), lakeops_shared::Error> {
        let spec = if reverse {
            self.spec.reversed()
        } else {
            self.spec.clone()
        };
        let (from, to) = if reverse {
            (&self.secondary, &self.primary)
        } else {
            (&self.primary, &self.secondary)
        };
        let p = DatabricksSide::new(from.clone(), None, true, true);
        let s = DatabricksSide::new(to.clone(), Some(spec.warehouse.clone()), true, true);
        let pair = if reverse {
            format!("{}/reverse", spec.name)
        } else {
            spec.name.clone()
        };
        let store = S3RunStore::new(self.s3.clone(), BUCKET, &pair);
        let pointer = SsmPointer {
            ssm: self.ssm.clone(),
            name: spec.active_workspace_parameter.clone(),
        };
        let sync = Sync {
            spec: &spec,
            primary: &p,
            secondary: &s,
            store: &store,
            pointer: &pointer,
            now: ("2026-12-03T12:00:00Z".into(), 1_800_000_000_000),
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
                    reverse,
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
        self.not_ok_at(&self.spec.name, run).await
    }

    /// [`Self::not_ok`] of the runs kept under `pair` (`<name>/reverse` for failback).
    async fn not_ok_at(&self, pair: &str, run: &str) -> Vec<Value> {
        let key = format!("dr/{pair}/runs/{run}/report.json");
        report_not_ok(&self.s3, BUCKET, &key).await
    }

    /// The mutating requests the emulator logged since `since` (statements count by their SQL).
    async fn mutations_since(&self, since: u64) -> (u64, Vec<String>) {
        mutations_since(self.emulator.url(), since).await
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
    // The clone, and the description it drops (DEEP CLONE does not copy it).
    assert_eq!(plan.changes_total, 2, "{:?}", plan.changes);
    let (since, planned) = dr.mutations_since(since).await;
    assert_eq!(planned, Vec::<String>::new(), "plan changed nothing");
    let incremental = dr.run(Mode::Apply, "r3").await.unwrap();
    assert!(
        incremental.summary.unwrap().clean,
        "{:#?}",
        dr.not_ok("r3").await
    );
    let (_, cloned) = dr.mutations_since(since).await;
    assert_eq!(cloned.len(), 2, "{cloned:?}");
    assert_eq!(
        cloned.iter().filter(|m| m.contains("CLONE")).count(),
        1,
        "only the changed table is cloned: {cloned:?}"
    );
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

    // Failback starts with a reverse sync: the old primary gets what changed on the
    // promoted side, and a second reverse run changes nothing.
    let promoted_warehouse = warehouse_named(&dr.secondary, "lakeops-dr-sync").await;
    sql(
        &dr.secondary,
        &promoted_warehouse,
        "INSERT INTO main.core.orders VALUES (7, 'written-in-dr@example.com')",
    )
    .await;
    let (reverse, _, _) = dr
        .run_direction(Mode::Apply, "back1", Step::apply_order(), true)
        .await
        .unwrap();
    let summary = reverse.summary.unwrap();
    assert!(
        summary.clean,
        "{summary:?} {:#?}",
        dr.not_ok_at("test-dr/reverse", "back1").await
    );
    let old_primary = warehouse_named(&dr.primary, "lakeops-dr-sync").await;
    assert_eq!(
        count(&dr.primary, &old_primary, "main.core.orders").await,
        3
    );
    let (since, _) = dr.mutations_since(u64::MAX).await;
    let (again, _, _) = dr
        .run_direction(Mode::Apply, "back2", Step::apply_order(), true)
        .await
        .unwrap();
    assert!(again.summary.unwrap().clean);
    let (_, done) = dr.mutations_since(since).await;
    assert_eq!(
        done,
        Vec::<String>::new(),
        "a reverse re-run changes nothing"
    );
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

/// A run that crashed after any stage is resumed by starting again; with the
/// emulator throttling (429), unavailable (503), slow and failing statements, the
/// sync converges on a later run. Nothing is duplicated and no grant is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_and_faults_converge_with_nothing_duplicated_or_lost() {
    let dr = setup().await;
    let steps = Step::apply_order();
    let managed = steps
        .iter()
        .position(|s| s.as_str() == "managed_tables")
        .unwrap();
    // Killed after its clones, before views, tags and grants.
    dr.run_steps(Mode::Apply, "crashed", steps[..=managed].to_vec())
        .await
        .unwrap();
    control(
        dr.emulator.url(),
        reqwest::Method::POST,
        "/_emulator/faults",
        Some(
            json!({"throttle_rate": 0.2, "unavailable_rate": 0.1, "retry_after_seconds": 0,
                    "latency_ms": 5, "statement_failures_next": 2}),
        ),
    )
    .await;
    let mut outcomes = vec![];
    for attempt in 0..5 {
        // A step that fails fails its execution; the next scheduled run starts again.
        let outcome = dr.run(Mode::Apply, &format!("f{attempt}")).await;
        let clean = matches!(&outcome, Ok(r) if r.summary.as_ref().is_some_and(|s| s.clean));
        outcomes.push(outcome.map(|r| r.summary).map_err(|e| e.message));
        if clean {
            break;
        }
    }
    control(
        dr.emulator.url(),
        reqwest::Method::DELETE,
        "/_emulator/faults",
        None,
    )
    .await;
    assert!(
        matches!(outcomes.last(), Some(Ok(Some(s))) if s.clean),
        "{outcomes:#?}"
    );

    let tables: Value = dr
        .secondary
        .get("/api/2.1/unity-catalog/tables?catalog_name=main&schema_name=core")
        .await
        .unwrap();
    let mut names: Vec<&str> = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["big_orders", "customers", "orders"]);
    assert_eq!(dr.count("main.core.orders").await, 2);
    let grants: Value = dr
        .secondary
        .get("/api/2.1/unity-catalog/permissions/table/main.core.orders")
        .await
        .unwrap();
    let analysts: Vec<&Value> = grants["privilege_assignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["principal"] == "analysts")
        .collect();
    assert_eq!(analysts.len(), 1, "{grants}");
    assert_eq!(analysts[0]["privileges"], json!(["SELECT"]), "{grants}");
    let share: Value = dr
        .primary
        .get("/api/2.1/unity-catalog/shares/lakeops_dr_main?include_shared_data=true")
        .await
        .unwrap();
    let objects: Vec<&str> = share["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    // Each schema once (a catalog starts with `default`).
    assert_eq!(objects, ["main.core", "main.default"], "{share}");
    let recipients: Value = dr
        .primary
        .get("/api/2.1/unity-catalog/recipients")
        .await
        .unwrap();
    assert_eq!(
        recipients["recipients"].as_array().unwrap().len(),
        1,
        "{recipients}"
    );

    let (since, _) = dr.mutations_since(u64::MAX).await;
    assert!(
        dr.run(Mode::Apply, "after")
            .await
            .unwrap()
            .summary
            .unwrap()
            .clean
    );
    let (_, done) = dr.mutations_since(since).await;
    assert_eq!(
        done,
        Vec::<String>::new(),
        "converged: a re-run changes nothing"
    );
}
