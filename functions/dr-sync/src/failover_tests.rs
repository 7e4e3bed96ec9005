//! Failover and failback, step by step as the dr-failover state machine runs them.

use serde_json::json;

use crate::failover::Mode;
use crate::failover_runner::{
    CaughtError, Failover, FailoverRequest, FailoverResponse, FailoverStep,
};
use crate::fakes::{FakeLake, FakePointer};
use crate::plan::Side;
use crate::plan_tests::{empty_secondary, primary, spec};
use crate::ports::{Job, Result};
use crate::report::Summary;
use crate::spec::DrSpec;

fn job(id: i64, name: &str, paused: bool) -> Job {
    Job {
        job_id: id,
        name: name.into(),
        trigger: "schedule".into(),
        block: json!({}),
        paused,
    }
}

fn lake() -> FakeLake {
    let lake = FakeLake::new(spec(), primary(), empty_secondary());
    *lake.primary_jobs.lock().unwrap() =
        vec![job(1, "nightly-etl", false), job(2, "hourly-kpis", false)];
    *lake.secondary_jobs.lock().unwrap() =
        vec![job(11, "nightly-etl", true), job(12, "hourly-kpis", true)];
    lake
}

fn clean() -> Summary {
    Summary {
        clean: true,
        ..Summary::default()
    }
}

/// Runs every step of a failover in order; `reverse` fails back along the reversed spec.
async fn failover(
    lake: &FakeLake,
    pointer: &FakePointer,
    mode: Mode,
    reverse: bool,
    last_sync: Option<Summary>,
) -> Result<Vec<FailoverResponse>> {
    failover_after(lake, pointer, mode, reverse, last_sync, None).await
}

/// [`failover`], with the last sync's error when it failed.
async fn failover_after(
    lake: &FakeLake,
    pointer: &FakePointer,
    mode: Mode,
    reverse: bool,
    last_sync: Option<Summary>,
    last_sync_error: Option<&str>,
) -> Result<Vec<FailoverResponse>> {
    let spec: DrSpec = if reverse {
        lake.spec.reversed()
    } else {
        lake.spec.clone()
    };
    let (p, s) = (lake.side(Side::Primary), lake.side(Side::Secondary));
    // In a failback the old secondary is the spec's primary.
    let (primary, secondary) = if reverse { (&s, &p) } else { (&p, &s) };
    let f = Failover {
        spec: &spec,
        primary,
        secondary,
        store: &lake.runs,
        pointer,
        now: "2026-12-03T13:00:00Z".into(),
    };
    let mut generation = None;
    let mut out = vec![];
    for step in [
        FailoverStep::Decide,
        FailoverStep::CancelSyncStatements,
        FailoverStep::PausePrimaryJobs,
        FailoverStep::UnpauseSecondaryJobs,
        FailoverStep::Switch,
    ] {
        let request = FailoverRequest {
            failover_step: step,
            mode,
            spec: json!("s3://specs/dr.json"),
            reverse,
            generation,
            last_sync: last_sync.clone(),
            last_sync_error: last_sync_error.map(|e| CaughtError {
                error: e.split(": ").next().unwrap_or(e).to_string(),
                cause: e.split_once(": ").map(|(_, c)| c.to_string()),
            }),
            stopped_runs: vec![],
        };
        let response = f.step(&request).await?;
        generation = response.generation;
        out.push(response);
    }
    Ok(out)
}

fn paused(lake: &FakeLake, side: Side) -> Vec<bool> {
    let jobs = match side {
        Side::Primary => lake.primary_jobs.lock().unwrap().clone(),
        Side::Secondary => lake.secondary_jobs.lock().unwrap().clone(),
    };
    jobs.iter().map(|j| j.paused).collect()
}

#[tokio::test]
async fn a_forced_failover_moves_jobs_and_the_pointer_and_a_rerun_finishes() {
    let (lake, pointer) = (lake(), FakePointer::default());
    let steps = failover(&lake, &pointer, Mode::Forced, false, None)
        .await
        .unwrap();
    let promoted = pointer.0.lock().unwrap().clone().unwrap();
    assert_eq!(
        (promoted.active_host.as_str(), promoted.generation),
        (lake.spec.secondary.host.as_str(), 2)
    );
    assert_eq!(paused(&lake, Side::Primary), [true, true]);
    assert_eq!(paused(&lake, Side::Secondary), [false, false]);
    assert_eq!(*lake.cancelled.lock().unwrap(), [1, 2]);
    assert_eq!(steps[2].jobs, ["nightly-etl", "hourly-kpis"]);
    // Crash after the switch, run again: nothing changes, nothing is refused.
    lake.mutations.lock().unwrap().clear();
    let again = failover(&lake, &pointer, Mode::Forced, false, None)
        .await
        .unwrap();
    assert!(again[0].already_promoted && again[4].already_promoted);
    assert_eq!(pointer.0.lock().unwrap().as_ref().unwrap().generation, 2);
    assert_eq!(*lake.mutations.lock().unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn a_planned_failover_needs_a_clean_last_sync() {
    let (lake, pointer) = (lake(), FakePointer::default());
    let dirty = Summary {
        drifted: 3,
        ..Summary::default()
    };
    let refused = failover(&lake, &pointer, Mode::Planned, false, Some(dirty))
        .await
        .unwrap_err();
    assert!(refused.message.starts_with("DR.NotInSync"), "{refused}");
    assert!(pointer.0.lock().unwrap().is_none());
    assert_eq!(
        paused(&lake, Side::Primary),
        [false, false],
        "nothing moved"
    );
    failover(&lake, &pointer, Mode::Planned, false, Some(clean()))
        .await
        .unwrap();
    assert_eq!(pointer.0.lock().unwrap().as_ref().unwrap().generation, 2);
}

/// Once the pointer is switched, the last sync of a re-run is refused (the primary
/// is no longer active): the re-run finishes instead of stopping there. Before the
/// switch, a failed last sync refuses the failover with its error.
#[tokio::test]
async fn a_planned_failover_whose_last_sync_failed() {
    let (lake, pointer) = (lake(), FakePointer::default());
    let refused = failover_after(
        &lake,
        &pointer,
        Mode::Planned,
        false,
        None,
        Some("States.TaskFailed: warehouse gone"),
    )
    .await
    .unwrap_err();
    assert!(
        refused.message.starts_with("DR.LastSyncFailed"),
        "{refused}"
    );
    assert!(refused.message.contains("warehouse gone"), "{refused}");
    assert!(pointer.0.lock().unwrap().is_none(), "nothing switched");

    failover(&lake, &pointer, Mode::Planned, false, Some(clean()))
        .await
        .unwrap();
    let rerun = failover_after(
        &lake,
        &pointer,
        Mode::Planned,
        false,
        None,
        Some("DR.PrimaryNotActive: the spec's primary is not the active workspace"),
    )
    .await
    .unwrap();
    assert!(rerun[0].already_promoted, "{rerun:?}");
    assert_eq!(
        pointer.0.lock().unwrap().as_ref().unwrap().generation,
        2,
        "switched once"
    );
}

#[tokio::test]
async fn a_forced_failover_goes_on_when_the_primary_is_down() {
    let (lake, pointer) = (lake(), FakePointer::default());
    lake.primary_down
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let steps = failover(&lake, &pointer, Mode::Forced, false, None)
        .await
        .unwrap();
    assert!(
        steps[2].errors[0].contains("primary region is impaired"),
        "{:?}",
        steps[2].errors
    );
    assert_eq!(paused(&lake, Side::Secondary), [false, false]);
    assert_eq!(
        pointer.0.lock().unwrap().as_ref().unwrap().active_host,
        lake.spec.secondary.host
    );
    // Planned is not best effort: an unreachable primary fails the step.
    let (lake, pointer) = (self::lake(), FakePointer::default());
    lake.primary_down
        .store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        failover(&lake, &pointer, Mode::Planned, false, Some(clean()))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn failback_promotes_the_old_primary_at_the_next_generation() {
    let (lake, pointer) = (lake(), FakePointer::default());
    failover(&lake, &pointer, Mode::Forced, false, None)
        .await
        .unwrap();
    // The old direction is refused for good...
    assert!(
        failover(&lake, &pointer, Mode::Forced, false, None)
            .await
            .unwrap()[0]
            .already_promoted
    );
    // ...and after a reverse sync, a planned failback returns to the primary.
    failover(&lake, &pointer, Mode::Planned, true, Some(clean()))
        .await
        .unwrap();
    let back = pointer.0.lock().unwrap().clone().unwrap();
    assert_eq!(
        (back.active_host.as_str(), back.generation),
        (lake.spec.primary.host.as_str(), 3)
    );
    assert_eq!(paused(&lake, Side::Primary), [false, false]);
    assert_eq!(paused(&lake, Side::Secondary), [true, true]);
}

#[tokio::test]
async fn only_the_jobs_that_ran_on_the_primary_are_started_on_the_secondary() {
    let (lake, pointer) = (lake(), FakePointer::default());
    // hourly-kpis was paused on purpose on the primary: it stays paused everywhere.
    lake.primary_jobs.lock().unwrap()[1].paused = true;
    failover(&lake, &pointer, Mode::Planned, false, Some(clean()))
        .await
        .unwrap();
    assert_eq!(paused(&lake, Side::Secondary), [false, true]);
}

#[tokio::test]
async fn the_statements_of_a_stopped_sync_run_are_cancelled() {
    use crate::ports::RunStore;
    let lake = lake();
    let mut state = crate::ports::RunState::default();
    let mut queue = crate::clones::CloneQueue::new(["a".to_string()]);
    queue.submitted("a".into(), Ok("st-9".into()));
    state
        .queues
        .insert(crate::plan::Stage::ManagedTables, queue);
    lake.runs.save("sync-1", &state).await.unwrap();
    let (p, s) = (lake.side(Side::Primary), lake.side(Side::Secondary));
    let pointer = FakePointer::default();
    let f = Failover {
        spec: &lake.spec,
        primary: &p,
        secondary: &s,
        store: &lake.runs,
        pointer: &pointer,
        now: "t".into(),
    };
    let request = FailoverRequest {
        failover_step: FailoverStep::CancelSyncStatements,
        mode: Mode::Forced,
        spec: json!({}),
        reverse: false,
        generation: None,
        last_sync: None,
        last_sync_error: None,
        stopped_runs: vec!["sync-1".into(), "gone".into()],
    };
    f.step(&request).await.unwrap();
    assert_eq!(*lake.mutations.lock().unwrap(), ["cancel st-9"]);
}

/// Step Functions catches a failed `startExecution.sync:2` child as States.TaskFailed
/// with the child's DescribeExecution output as the Cause: the refusal names the
/// child's own error.
#[test]
fn a_failed_last_sync_is_named_by_its_own_error() {
    let caught = CaughtError {
        error: "States.TaskFailed".into(),
        cause: Some(
            json!({"ExecutionArn": "arn:aws:states:us-east-1:123456789012:execution:dr-sync:r9", "Status": "FAILED",
                   "Error": "DR.PrimaryNotActive", "Cause": "the spec's primary is not the active workspace"})
            .to_string(),
        ),
    };
    assert_eq!(
        caught.to_string(),
        "DR.PrimaryNotActive: the spec's primary is not the active workspace"
    );
    let plain = CaughtError {
        error: "States.Timeout".into(),
        cause: Some("not JSON".into()),
    };
    assert_eq!(plain.to_string(), "States.Timeout: not JSON");
}
