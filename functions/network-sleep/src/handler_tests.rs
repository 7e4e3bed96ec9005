//! The handler flow over the fakes: sleeps, wakes and status.

use super::*;
use crate::eips::still_deleting;
use crate::fakes::{FakeNetwork, FakeStore, FakeWorkspaces};
use crate::workspaces::{Cluster, Run};
use serde_json::json;

fn app() -> NetworkSleep<FakeNetwork, FakeStore, FakeWorkspaces> {
    crate::fakes::app()
}

fn cluster(id: &str, minutes_idle: i64) -> Cluster {
    Cluster {
        cluster_id: id.into(),
        cluster_name: id.into(),
        state: "RUNNING".into(),
        cluster_source: Some("UI".into()),
        last_activity_time: Some((clock::now_epoch() - minutes_idle * 60) * 1000),
        last_restarted_time: None,
        start_time: None,
    }
}

#[tokio::test]
async fn a_running_job_refuses_the_sleep_and_force_overrides_it() {
    let app = app();
    app.workspaces.runs.lock().unwrap().push(Run {
        run_id: 42,
        run_name: Some("nightly-etl".into()),
        job_id: Some(1),
        cluster_instance: None,
    });
    app.workspaces
        .clusters
        .lock()
        .unwrap()
        .extend([cluster("idle", 180), cluster("busy", 2)]);
    let refused = app.handle(json!({"action": "sleep"})).await.unwrap();
    assert_eq!(refused["outcome"], "refused");
    let reasons = refused["refused_because"].to_string();
    assert!(
        reasons.contains("job run 42") && reasons.contains("busy"),
        "{reasons}"
    );
    assert_eq!(app.network.live().len(), 4, "nothing deleted");
    assert!(
        app.workspaces.terminated.lock().unwrap().is_empty(),
        "nothing terminated when refused"
    );
    assert!(app.store.records.lock().unwrap().is_empty());

    let forced = app
        .handle(json!({"action": "sleep", "force": true}))
        .await
        .unwrap();
    assert_eq!(forced["outcome"], "slept", "{forced:#}");
    assert_eq!(
        *app.workspaces.terminated.lock().unwrap(),
        vec!["idle"],
        "only the idle cluster"
    );
    assert_eq!(
        app.network.live().len(),
        1,
        "only the untagged gateway stays"
    );
    assert_eq!(app.network.live()[0].tag("Name"), Some("shared"));
}

#[tokio::test]
async fn quiet_workspaces_let_it_sleep_and_idle_clusters_are_terminated() {
    let app = app();
    app.workspaces
        .clusters
        .lock()
        .unwrap()
        .push(cluster("idle", 61));
    let slept = app.handle(json!({"action": "sleep"})).await.unwrap();
    assert_eq!(slept["outcome"], "slept", "{slept:#}");
    assert_eq!(slept["terminated_clusters"], json!(["dev/idle"]));
    assert_eq!(slept["gateways_asleep"], 3);
}

#[tokio::test]
async fn a_gateway_that_ends_failed_is_reported_and_the_others_wake() {
    let app = app();
    app.handle(json!({"action": "sleep"})).await.unwrap();
    app.network.failing_subnets.lock().unwrap().insert(
        "subnet-b".into(),
        "Gateway.NotAttached: Elastic IP address [eipalloc-x] is already associated".into(),
    );
    let woke = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "partial", "{woke:#}");
    let failed: Vec<_> = woke["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["result"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("already associated"),
        "{woke:#}"
    );
    assert_eq!(
        app.network.live().len(),
        3,
        "two woke, plus the untagged one"
    );

    // Once the cause is gone, a new attempt (with a new client token) wakes it.
    app.network.failing_subnets.lock().unwrap().clear();
    let woke = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "woke", "{woke:#}");
    assert_eq!(app.network.live().len(), 4);
    let tables = app.network.tables.lock().unwrap().clone();
    let live = app.network.live();
    for table in tables {
        for route in table.routes {
            let target = route.nat_gateway_id.unwrap();
            assert!(live.iter().any(|g| g.id == target), "{target} is live");
        }
    }
}

fn routes_point_at_live_gateways(app: &NetworkSleep<FakeNetwork, FakeStore, FakeWorkspaces>) {
    let live = app.network.live();
    for table in app.network.tables.lock().unwrap().iter() {
        for route in &table.routes {
            let target = route.nat_gateway_id.as_deref().unwrap();
            assert!(live.iter().any(|g| g.id == target), "{target} is live");
        }
    }
}

#[tokio::test]
async fn a_wake_never_waits_it_reports_waking_until_the_gateways_are_available() {
    let app = app();
    app.handle(json!({"action": "sleep"})).await.unwrap();
    // From here on, gateways take their time, as in AWS.
    *app.network.slow.lock().unwrap() = true;
    let routes_asleep = app.network.tables.lock().unwrap().clone();

    let first = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(first["outcome"], "waking", "{first:#}");
    assert_eq!(gateways_with(&first, "pending"), 3, "{first:#}");
    assert_eq!(first["waiting_for"].as_array().unwrap().len(), 3);
    assert_eq!(first["gateways_asleep"], 3, "records stay asleep");
    assert_eq!(
        *app.network.tables.lock().unwrap(),
        routes_asleep,
        "no route points at a pending gateway"
    );
    let emf = app.metrics(&app.wake(None).await.unwrap()).to_emf(0);
    assert_eq!(emf["GatewayFailures"], 0.0, "pending is no failure");

    // Another pass while they are still pending creates nothing new.
    let second = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(second["outcome"], "waking", "{second:#}");
    assert_eq!(
        app.network.live().len(),
        4,
        "three pending plus the untagged one"
    );

    app.network.settle();
    let done = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(done["outcome"], "woke", "{done:#}");
    assert_eq!(gateways_with(&done, "adopted"), 3, "{done:#}");
    assert!(done.get("waiting_for").is_none(), "{done:#}");
    assert_eq!(done["gateways_asleep"], 0);
    assert_eq!(app.network.live().len(), 4, "no duplicates");
    routes_point_at_live_gateways(&app);

    let again = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(again["outcome"], "nothing_to_do", "{again:#}");
}

#[tokio::test]
async fn a_wake_right_after_the_sleep_waits_for_the_old_gateways_to_be_deleted() {
    let app = app();
    *app.network.slow.lock().unwrap() = true;
    let slept = app
        .handle(json!({"action": "sleep", "release_eips": true}))
        .await
        .unwrap();
    assert_eq!(slept["outcome"], "releasing", "{slept:#}");
    let waiting_for = slept["waiting_for"].to_string();
    assert_eq!(
        slept["waiting_for"].as_array().unwrap().len(),
        3,
        "EIPs of deleting gateways wait: {waiting_for}"
    );
    assert!(waiting_for.contains("now deleting"), "{waiting_for}");
    assert!(slept.get("warnings").is_none(), "{slept:#}");

    let woke = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "waking", "{woke:#}");
    assert!(
        woke["waiting_for"].to_string().contains("still deleting"),
        "{woke:#}"
    );
    assert_eq!(app.network.live().len(), 1, "nothing created yet");

    // Deleted at last: the next pass creates them, with their old EIPs.
    app.network.settle();
    let woke = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "waking", "{woke:#}");
    assert_eq!(gateways_with(&woke, "pending"), 3, "{woke:#}");
    app.network.settle();
    let woke = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "woke", "{woke:#}");
    routes_point_at_live_gateways(&app);
}

#[tokio::test]
async fn a_sleep_releasing_eips_reports_releasing_until_the_gateways_are_deleted() {
    let app = app();
    *app.network.slow.lock().unwrap() = true;
    let addresses = app.network.addresses.lock().unwrap().len();
    let first = app
        .handle(json!({"action": "sleep", "release_eips": true}))
        .await
        .unwrap();
    assert_eq!(first["outcome"], "releasing", "{first:#}");
    assert_eq!(gateways_with(&first, "deleted"), 3, "{first:#}");
    assert_eq!(first["gateways_asleep"], 3);
    assert!(first.get("released_eips").is_none(), "{first:#}");
    assert_eq!(app.network.addresses.lock().unwrap().len(), addresses);

    // Still deleting: another pass deletes nothing and releases nothing.
    let second = app
        .handle(json!({"action": "sleep", "release_eips": true}))
        .await
        .unwrap();
    assert_eq!(second["outcome"], "releasing", "{second:#}");
    assert!(second["gateways"].as_array().unwrap().is_empty());
    assert_eq!(app.network.addresses.lock().unwrap().len(), addresses);

    app.network.settle();
    let done = app
        .handle(json!({"action": "sleep", "release_eips": true}))
        .await
        .unwrap();
    assert_eq!(done["outcome"], "slept", "{done:#}");
    assert_eq!(done["released_eips"].as_array().unwrap().len(), 3);
    assert!(done.get("waiting_for").is_none(), "{done:#}");
    assert!(done.get("warnings").is_none(), "{done:#}");
    assert_eq!(
        app.network.addresses.lock().unwrap().len(),
        addresses - 3,
        "the three EIPs of the slept gateways are released"
    );

    let again = app
        .handle(json!({"action": "sleep", "release_eips": true}))
        .await
        .unwrap();
    assert_eq!(again["outcome"], "nothing_to_do", "{again:#}");
}

/// The start of an execution that began a minute ago.
fn execution_started_a_minute_ago() -> String {
    crate::clock::rfc3339(crate::clock::now_epoch() - 60)
}

#[tokio::test]
async fn a_later_sleep_pass_does_not_undo_a_wake_started_by_hand_meanwhile() {
    let app = app();
    let started = execution_started_a_minute_ago();
    *app.network.slow.lock().unwrap() = true;
    let first = app
        .handle(json!({"action": "sleep", "release_eips": true}))
        .await
        .unwrap();
    assert_eq!(first["outcome"], "releasing", "{first:#}");
    // The first pass says what later passes continue: its own start.
    let since = crate::clock::parse_rfc3339(first["continuation_of"].as_str().unwrap());
    assert!(
        since.is_some_and(|t| (t - crate::clock::now_epoch()).abs() < 5),
        "{first:#}"
    );
    // Someone wakes the network by hand while the sleep execution waits.
    app.network.settle();
    app.handle(json!({"action": "wake"})).await.unwrap();
    app.network.settle();
    let woke = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "woke", "{woke:#}");
    let live = app.network.live().len();
    // The sleep execution's next pass finishes only its own work.
    let next = app
        .handle(json!({"action": "sleep", "release_eips": true, "continuation_of": started}))
        .await
        .unwrap();
    assert_eq!(next["outcome"], "nothing_to_do", "{next:#}");
    assert_eq!(next["continuation_of"], started.as_str(), "echoed");
    assert_eq!(app.network.live().len(), live, "the woken gateways stay up");
    // A sleep of its own (no continuation) would put them to sleep.
    let fresh = app.handle(json!({"action": "sleep"})).await.unwrap();
    assert_eq!(gateways_with(&fresh, "deleted"), 3, "{fresh:#}");
}

#[tokio::test]
async fn a_later_wake_pass_leaves_slots_put_to_sleep_after_it_started() {
    let app = app();
    let started = execution_started_a_minute_ago();
    // Its first pass ran; then a sleep started by hand put the slots to
    // sleep again (after the wake execution started).
    app.handle(json!({"action": "sleep"})).await.unwrap();
    let next = app
        .handle(json!({"action": "wake", "continuation_of": started}))
        .await
        .unwrap();
    assert_eq!(next["outcome"], "nothing_to_do", "{next:#}");
    assert_eq!(next["gateways_asleep"], 3, "{next:#}");
    assert_eq!(app.network.live().len(), 1, "only the untagged gateway");
    // Slots asleep since before the execution started are woken.
    let started_after_the_sleep = crate::clock::rfc3339(crate::clock::now_epoch() + 60);
    let next = app
        .handle(json!({"action": "wake", "continuation_of": started_after_the_sleep}))
        .await
        .unwrap();
    assert_eq!(next["outcome"], "woke", "{next:#}");
}

#[test]
fn a_continuation_must_be_a_time() {
    let error = Request::parse(json!({"action": "wake", "continuation_of": "yesterday"}))
        .unwrap_err()
        .to_string();
    assert!(error.contains("continuation_of"), "{error}");
}

#[tokio::test]
async fn a_sleep_that_keeps_its_eips_does_not_wait_for_the_deletion() {
    let app = app();
    *app.network.slow.lock().unwrap() = true;
    let slept = app.handle(json!({"action": "sleep"})).await.unwrap();
    assert_eq!(slept["outcome"], "slept", "{slept:#}");
    assert!(slept.get("waiting_for").is_none(), "{slept:#}");
}

#[test]
fn a_sleep_waiting_for_eips_reports_a_failed_gateway_once_nothing_waits() {
    let mut failed = GatewayReport::new("slot-b", "failed");
    failed.reason = Some("DependencyViolation".into());
    let reports = vec![GatewayReport::new("slot-a", "deleted"), failed];
    let waiting = EipRelease {
        waiting_for: vec!["slot-a: EIP eipalloc-1 ...".into()],
        ..EipRelease::default()
    };
    assert_eq!(sleep_outcome(&reports, &waiting), Outcome::Releasing);
    assert_eq!(
        sleep_outcome(&reports, &EipRelease::default()),
        Outcome::Partial
    );
    let released = EipRelease {
        released: vec!["eipalloc-1".into()],
        ..EipRelease::default()
    };
    assert_eq!(sleep_outcome(&[], &released), Outcome::Slept);
    assert_eq!(
        sleep_outcome(&[], &EipRelease::default()),
        Outcome::NothingToDo
    );
    assert!(still_deleting(GatewayState::Deleting, "nat-1", &[]));
    assert!(still_deleting(
        GatewayState::Available,
        "nat-1",
        &["nat-1".into()]
    ));
    assert!(!still_deleting(GatewayState::Available, "nat-1", &[]));
    assert!(!still_deleting(
        GatewayState::Failed,
        "nat-1",
        &["nat-1".into()]
    ));
}

fn gateways_with(report: &serde_json::Value, result: &str) -> usize {
    report["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["result"] == result)
        .count()
}

#[tokio::test]
async fn status_reports_asleep_and_awake_slots_and_savings() {
    let app = app();
    app.handle(json!({"action": "sleep", "force": true}))
        .await
        .unwrap();
    let status = app.handle(json!({"action": "status"})).await.unwrap();
    assert_eq!(status["gateways_asleep"], 3);
    assert_eq!(status["gateways_awake"], 0);
    let asleep = status["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["result"] == "asleep")
        .count();
    assert_eq!(asleep, 3);
    let metrics = app.metrics(&app.status().await.unwrap());
    let emf = metrics.to_emf(0);
    assert_eq!(emf["GatewaysAsleep"], 3.0);
    assert_eq!(emf["Environment"], "test");
    assert!(emf.get("DollarsSavedThisMonth").is_some());
}
