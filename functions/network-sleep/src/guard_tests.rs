//! The sleep's guard, through the handler and the fakes: no workspace to
//! check, and SQL warehouses and pipelines as running work.

use crate::fakes::app;
use crate::workspaces::{Pipeline, Warehouse};
use serde_json::json;

#[tokio::test]
async fn with_no_workspace_configured_the_sleep_is_refused_and_names_the_setting() {
    let mut app = app();
    app.settings.workspaces.clear();
    let refused = app.handle(json!({"action": "sleep"})).await.unwrap();
    assert_eq!(refused["outcome"], "refused", "{refused:#}");
    let reason = refused["refused_because"][0].as_str().unwrap();
    assert!(reason.contains("SLEEP_WITHOUT_WORKSPACE_CHECK"), "{reason}");
    assert!(reason.contains("NetworkSleepWorkspaces"), "{reason}");
    assert_eq!(app.network.live().len(), 4, "nothing deleted");
    assert!(app.store.records.lock().unwrap().is_empty());

    // force is the one-off override, and says what it went past.
    let forced = app
        .handle(json!({"action": "sleep", "force": true}))
        .await
        .unwrap();
    assert_eq!(forced["outcome"], "slept", "{forced:#}");
    assert!(forced["forced_past"][0]
        .as_str()
        .unwrap()
        .contains("SLEEP_WITHOUT_WORKSPACE_CHECK"));
}

#[tokio::test]
async fn with_the_check_knowingly_off_it_sleeps_and_says_so() {
    let mut app = app();
    app.settings.workspaces.clear();
    app.settings.sleep_without_workspace_check = true;
    let slept = app.handle(json!({"action": "sleep"})).await.unwrap();
    assert_eq!(slept["outcome"], "slept", "{slept:#}");
    assert_eq!(
        app.network.live().len(),
        1,
        "only the untagged gateway stays"
    );
    let warnings = slept["warnings"].to_string();
    assert!(
        warnings.contains("SLEEP_WITHOUT_WORKSPACE_CHECK=true"),
        "{warnings}"
    );
    assert!(app.workspaces.inspected.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_flag_never_skips_the_check_of_configured_workspaces() {
    let mut app = app();
    app.settings.sleep_without_workspace_check = true;
    app.workspaces.warehouses.lock().unwrap().push(Warehouse {
        id: "wh1".into(),
        name: "bi".into(),
        state: Some("RUNNING".into()),
    });
    let refused = app.handle(json!({"action": "sleep"})).await.unwrap();
    assert_eq!(refused["outcome"], "refused", "{refused:#}");
    assert_eq!(*app.workspaces.inspected.lock().unwrap(), vec!["dev"]);
}

#[tokio::test]
async fn a_running_warehouse_or_pipeline_refuses_the_sleep_stopped_ones_do_not() {
    let app = app();
    app.workspaces.warehouses.lock().unwrap().extend([
        Warehouse {
            id: "wh-up".into(),
            name: "bi".into(),
            state: Some("STARTING".into()),
        },
        Warehouse {
            id: "wh-down".into(),
            name: "old".into(),
            state: Some("STOPPED".into()),
        },
    ]);
    app.workspaces.pipelines.lock().unwrap().extend([
        Pipeline {
            pipeline_id: "p-run".into(),
            name: Some("ingest".into()),
            state: Some("RUNNING".into()),
        },
        Pipeline {
            pipeline_id: "p-idle".into(),
            name: Some("nightly".into()),
            state: Some("IDLE".into()),
        },
    ]);
    let refused = app.handle(json!({"action": "sleep"})).await.unwrap();
    assert_eq!(refused["outcome"], "refused", "{refused:#}");
    let reasons: Vec<&str> = refused["refused_because"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    assert_eq!(
        reasons,
        vec![
            "workspace dev: SQL warehouse wh-up (bi) is STARTING",
            "workspace dev: pipeline p-run (ingest) is RUNNING",
        ]
    );
    assert_eq!(app.network.live().len(), 4, "nothing deleted");

    for warehouse in app.workspaces.warehouses.lock().unwrap().iter_mut() {
        warehouse.state = Some("STOPPED".into());
    }
    for pipeline in app.workspaces.pipelines.lock().unwrap().iter_mut() {
        pipeline.state = Some("IDLE".into());
    }
    let slept = app.handle(json!({"action": "sleep"})).await.unwrap();
    assert_eq!(slept["outcome"], "slept", "{slept:#}");
}
