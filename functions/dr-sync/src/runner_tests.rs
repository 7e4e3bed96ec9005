//! Whole runs, step by step as the state machine drives them, against the fakes.

use serde_json::json;

use crate::event::{Mode, Request, Response, Step};
use crate::failover::{decide, Decision, LastSync};
use crate::fakes::{FakeLake, FakePointer, FakeStore};
use crate::plan::Side;
use crate::plan_tests::{empty_secondary, primary, spec};
use crate::ports::Result;
use crate::runner::Sync;

struct Harness {
    lake: FakeLake,
    store: FakeStore,
    pointer: FakePointer,
}

fn harness() -> Harness {
    Harness {
        lake: FakeLake::new(spec(), primary(), empty_secondary()),
        store: FakeStore::default(),
        pointer: FakePointer::default(),
    }
}

/// Runs every step of a mode as the state machine does (loop while not ready), and
/// returns the last response.
async fn run(h: &Harness, mode: Mode, run: &str, mut generation: Option<u64>) -> Result<Response> {
    let (p, s) = (h.lake.side(Side::Primary), h.lake.side(Side::Secondary));
    let sync = Sync {
        spec: &h.lake.spec,
        primary: &p,
        secondary: &s,
        store: &h.store,
        pointer: &h.pointer,
        now: ("2026-12-03T12:00:00Z".into(), 10_000_000),
    };
    let steps = match mode {
        Mode::Apply => Step::apply_order(),
        _ => vec![Step::Discover, Step::Report],
    };
    let mut last = None;
    for step in steps {
        for call in 0.. {
            assert!(call < 100, "step {} never became ready", step.as_str());
            let request = Request {
                step: step.as_str().into(),
                mode,
                spec: json!("s3://specs/dr.json"),
                generation,
                run: Some(run.into()),
                reverse: false,
            };
            let response = sync.step(&request).await?;
            generation = response.generation;
            if step == Step::Discover {
                h.lake.expect(&h.store.states.lock().unwrap()[run].plan);
            }
            if response.ready {
                last = Some(response);
                break;
            }
            assert!(response.wait_seconds > 0);
        }
    }
    Ok(last.unwrap())
}

fn mutations(h: &Harness) -> Vec<String> {
    std::mem::take(&mut *h.lake.mutations.lock().unwrap())
}

#[tokio::test]
async fn an_apply_converges_and_a_rerun_makes_no_mutating_call() {
    let h = harness();
    let first = run(&h, Mode::Apply, "r1", None).await.unwrap();
    let summary = first.summary.unwrap();
    assert!(
        summary.clean,
        "{summary:?} {:#?}",
        h.store.reports.lock().unwrap()["r1"].lines
    );
    assert!(mutations(&h).len() > 20);
    assert_eq!(h.pointer.0.lock().unwrap().as_ref().unwrap().generation, 1);
    let again = run(&h, Mode::Apply, "r2", None).await.unwrap();
    assert!(again.summary.unwrap().clean);
    assert_eq!(mutations(&h), Vec::<String>::new());
    assert_eq!(h.store.states.lock().unwrap()["r2"].plan.changes.len(), 0);
}

#[tokio::test]
async fn plan_mode_reads_only_and_says_what_apply_would_do() {
    let h = harness();
    let planned = run(&h, Mode::Plan, "p1", None).await.unwrap();
    assert_eq!(mutations(&h), Vec::<String>::new());
    assert!(
        h.pointer.0.lock().unwrap().is_none(),
        "plan wrote the pointer"
    );
    assert!(planned.changes_total > 20);
    assert!(!planned.summary.unwrap().clean);
    let reconciled = run(&h, Mode::Reconcile, "c1", None).await.unwrap();
    assert_eq!(mutations(&h), Vec::<String>::new());
    assert!(reconciled.summary.unwrap().missing > 0);
}

#[tokio::test]
async fn a_failed_clone_fails_only_its_table_and_the_next_run_retries_it() {
    let h = harness();
    *h.lake.fail_containing.lock().unwrap() =
        Some("DEEP CLONE `lakeops_dr_sales`.`core`.`fact`".into());
    let first = run(&h, Mode::Apply, "r1", None).await.unwrap();
    let summary = first.summary.unwrap();
    assert_eq!(summary.failed, 1, "{summary:?}");
    let report = h.store.reports.lock().unwrap()["r1"].clone();
    let failed: Vec<&str> = report
        .lines
        .iter()
        .filter(|l| {
            l.error.is_some() && l.kind == "table" && l.status == crate::report::Status::Failed
        })
        .map(|l| l.target.as_str())
        .collect();
    assert_eq!(failed, ["sales_dr.core.fact"]);
    assert!(h
        .lake
        .secondary
        .lock()
        .unwrap()
        .tables
        .contains_key(&crate::mapping::FullName::parse("main.core.orders").unwrap()));
    *h.lake.fail_containing.lock().unwrap() = None;
    mutations(&h);
    let second = run(&h, Mode::Apply, "r2", None).await.unwrap();
    assert!(second.summary.unwrap().clean);
    let retried = mutations(&h);
    assert!(
        retried
            .iter()
            .any(|m| m.contains("DEEP CLONE `lakeops_dr_sales`.`core`.`fact`")),
        "{retried:#?}"
    );
    assert!(
        !retried
            .iter()
            .any(|m| m.contains("DEEP CLONE `lakeops_dr_main`")),
        "{retried:#?}"
    );
}

#[tokio::test]
async fn a_run_overtaken_by_a_failover_is_refused_and_writes_nothing() {
    let h = harness();
    run(&h, Mode::Apply, "r1", None).await.unwrap();
    let pointer = h.pointer.0.lock().unwrap().clone().unwrap();
    let Decision::Promote { pointer: promoted } = decide(
        &pointer,
        &h.lake.spec,
        crate::failover::Mode::Forced,
        Some(1),
        LastSync::Absent,
        "t",
    )
    .unwrap() else {
        panic!()
    };
    *h.pointer.0.lock().unwrap() = Some(promoted);
    mutations(&h);
    let stale = run(&h, Mode::Apply, "r2", Some(1)).await.unwrap_err();
    assert!(stale.message.starts_with("DR.StaleGeneration"), "{stale}");
    let wrong_way = run(&h, Mode::Apply, "r3", None).await.unwrap_err();
    assert!(
        wrong_way.message.starts_with("DR.PrimaryNotActive"),
        "{wrong_way}"
    );
    assert_eq!(mutations(&h), Vec::<String>::new());
}

#[tokio::test]
async fn without_clone_history_the_ledger_keeps_reruns_free_and_catches_writes_to_the_replica() {
    let h = harness();
    h.lake
        .rest_only
        .store(true, std::sync::atomic::Ordering::Relaxed);
    run(&h, Mode::Apply, "r1", None).await.unwrap();
    assert!(h
        .store
        .ledger
        .lock()
        .unwrap()
        .contains_key("main.core.orders"));
    mutations(&h);
    let again = run(&h, Mode::Apply, "r2", None).await.unwrap();
    assert!(again.summary.unwrap().clean);
    assert_eq!(mutations(&h), Vec::<String>::new());
    // Someone writes to the replica: its version moves past the ledger's, and it is re-cloned.
    let orders = crate::mapping::FullName::parse("main.core.orders").unwrap();
    *h.lake
        .secondary
        .lock()
        .unwrap()
        .tables
        .get_mut(&orders)
        .unwrap()
        .version
        .as_mut()
        .unwrap() += 1;
    run(&h, Mode::Apply, "r3", None).await.unwrap();
    let done = mutations(&h);
    // The re-clone, and the description it drops (DEEP CLONE does not copy it).
    assert_eq!(done.len(), 2, "{done:#?}");
    assert!(done[0].contains("DEEP CLONE `lakeops_dr_main`.`core`.`orders`"));
    assert!(done[1].contains("COMMENT ON TABLE `main`.`core`.`orders`"));
}
