//! What runs in a Databricks workspace, and whether it keeps the network up.
//!
//! Pure: the handler reads a workspace's [`Activity`] through
//! [`crate::workspaces::WorkspaceApi`] and [`assess`] decides. Work that
//! needs the network, and so blocks a sleep:
//! - an active job run;
//! - a cluster that is starting, resizing or restarting, or running and
//!   active within the idle threshold (one idle past it is terminated);
//! - a SQL warehouse that is `STARTING` or `RUNNING`;
//! - a pipeline whose update is under way: `DEPLOYING`, `STARTING`,
//!   `RUNNING`, `RECOVERING` or `RESETTING`.
//!
//! Compute on its way down does not block, as a `TERMINATING` cluster does
//! not: a warehouse or pipeline that is `STOPPING` runs no more queries or
//! updates, and a refused sleep is not retried that night. An unknown state
//! (one Databricks adds later) blocks: no answer we understand is not
//! "nothing is running".

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Cluster {
    pub cluster_id: String,
    #[serde(default)]
    pub cluster_name: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub cluster_source: Option<String>,
    /// Epoch milliseconds of the last command or job on the cluster.
    #[serde(default)]
    pub last_activity_time: Option<i64>,
    #[serde(default)]
    pub last_restarted_time: Option<i64>,
    #[serde(default)]
    pub start_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RunClusterInstance {
    #[serde(default)]
    pub cluster_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Run {
    pub run_id: i64,
    #[serde(default)]
    pub run_name: Option<String>,
    #[serde(default)]
    pub job_id: Option<i64>,
    #[serde(default)]
    pub cluster_instance: Option<RunClusterInstance>,
}

/// What one workspace says about sleeping.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Assessment {
    /// Why the network must stay up; empty when it may sleep.
    pub blockers: Vec<String>,
    /// Running clusters idle past the threshold, to terminate.
    pub idle_clusters: Vec<String>,
}

/// A SQL warehouse, as `GET /api/2.0/sql/warehouses` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Warehouse {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// STARTING, RUNNING, STOPPING, STOPPED, DELETING or DELETED.
    #[serde(default)]
    pub state: Option<String>,
}

/// A pipeline, as `GET /api/2.0/pipelines` lists it (`PipelineStateInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Pipeline {
    #[serde(default)]
    pub pipeline_id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// DEPLOYING, STARTING, RUNNING, STOPPING, DELETED, RECOVERING, FAILED,
    /// RESETTING or IDLE.
    #[serde(default)]
    pub state: Option<String>,
}

/// Everything a sleep reads from one workspace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Activity {
    pub clusters: Vec<Cluster>,
    /// Active runs only.
    pub runs: Vec<Run>,
    pub warehouses: Vec<Warehouse>,
    pub pipelines: Vec<Pipeline>,
}

/// Whether a warehouse in `state` blocks a sleep: `Some(true)` it does,
/// `Some(false)` it does not, `None` the state is unknown (which blocks).
pub fn warehouse_blocks(state: &str) -> Option<bool> {
    match state {
        "STARTING" | "RUNNING" => Some(true),
        "STOPPING" | "STOPPED" | "DELETING" | "DELETED" => Some(false),
        _ => None,
    }
}

/// Like [`warehouse_blocks`], for a pipeline's state.
pub fn pipeline_blocks(state: &str) -> Option<bool> {
    match state {
        "DEPLOYING" | "STARTING" | "RUNNING" | "RECOVERING" | "RESETTING" => Some(true),
        "STOPPING" | "IDLE" | "FAILED" | "DELETED" => Some(false),
        _ => None,
    }
}

fn state_blocker(
    label: &str,
    state: Option<&str>,
    blocks: fn(&str) -> Option<bool>,
) -> Option<String> {
    let Some(state) = state else {
        return Some(format!("{label} has no state"));
    };
    match blocks(state) {
        Some(true) => Some(format!("{label} is {state}")),
        Some(false) => None,
        None => Some(format!(
            "{label} is in a state not known to lakeops ({state})"
        )),
    }
}

/// Decide from a workspace's activity.
pub fn assess(workspace: &str, activity: &Activity, now_ms: i64, idle_minutes: u64) -> Assessment {
    let idle_ms = idle_minutes as i64 * 60_000;
    let mut assessment = Assessment::default();
    let (clusters, active_runs) = (&activity.clusters, &activity.runs);
    for run in active_runs {
        assessment.blockers.push(format!(
            "workspace {workspace}: job run {} ({}) is active",
            run.run_id,
            run.run_name.as_deref().unwrap_or("unnamed")
        ));
    }
    let run_clusters: Vec<&str> = active_runs
        .iter()
        .filter_map(|r| r.cluster_instance.as_ref()?.cluster_id.as_deref())
        .collect();
    for cluster in clusters {
        let label = format!(
            "workspace {workspace}: cluster {} ({})",
            cluster.cluster_id, cluster.cluster_name
        );
        match cluster.state.as_str() {
            "PENDING" | "RESTARTING" | "RESIZING" => assessment
                .blockers
                .push(format!("{label} is {}", cluster.state)),
            "RUNNING" => {
                if run_clusters.contains(&cluster.cluster_id.as_str()) {
                    continue; // Already blocked by its run.
                }
                let last = cluster
                    .last_activity_time
                    .or(cluster.last_restarted_time)
                    .or(cluster.start_time);
                match last {
                    Some(at) if now_ms - at >= idle_ms => assessment.idle_clusters.push(cluster.cluster_id.clone()),
                    Some(at) => assessment.blockers.push(format!(
                        "{label} is busy (last active {} min ago, idle threshold {idle_minutes} min)",
                        (now_ms - at).max(0) / 60_000
                    )),
                    None => assessment.blockers.push(format!("{label} is running and its last activity is unknown")),
                }
            }
            _ => {}
        }
    }
    for warehouse in &activity.warehouses {
        let label = format!(
            "workspace {workspace}: SQL warehouse {} ({})",
            warehouse.id, warehouse.name
        );
        assessment.blockers.extend(state_blocker(
            &label,
            warehouse.state.as_deref(),
            warehouse_blocks,
        ));
    }
    for pipeline in &activity.pipelines {
        let label = format!(
            "workspace {workspace}: pipeline {} ({})",
            pipeline.pipeline_id,
            pipeline.name.as_deref().unwrap_or("unnamed")
        );
        assessment.blockers.extend(state_blocker(
            &label,
            pipeline.state.as_deref(),
            pipeline_blocks,
        ));
    }
    assessment
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW_MS: i64 = 1_795_264_488_000;

    fn cluster(id: &str, state: &str, minutes_ago: Option<i64>) -> Cluster {
        Cluster {
            cluster_id: id.into(),
            cluster_name: format!("name-{id}"),
            state: state.into(),
            cluster_source: Some("UI".into()),
            last_activity_time: minutes_ago.map(|m| NOW_MS - m * 60_000),
            last_restarted_time: None,
            start_time: None,
        }
    }

    fn run(id: i64, cluster: Option<&str>) -> Run {
        Run {
            run_id: id,
            run_name: Some("nightly-etl".into()),
            job_id: Some(7),
            cluster_instance: cluster.map(|c| RunClusterInstance {
                cluster_id: Some(c.into()),
            }),
        }
    }

    fn activity(clusters: Vec<Cluster>, runs: Vec<Run>) -> Activity {
        Activity {
            clusters,
            runs,
            ..Activity::default()
        }
    }

    fn warehouse(id: &str, state: Option<&str>) -> Warehouse {
        Warehouse {
            id: id.into(),
            name: format!("wh-{id}"),
            state: state.map(String::from),
        }
    }

    fn pipeline(id: &str, state: Option<&str>) -> Pipeline {
        Pipeline {
            pipeline_id: id.into(),
            name: Some(format!("dlt-{id}")),
            state: state.map(String::from),
        }
    }

    #[test]
    fn starting_and_running_warehouses_block_stopping_and_stopped_ones_do_not() {
        let a = assess(
            "dev",
            &Activity {
                warehouses: [
                    "STARTING", "RUNNING", "STOPPING", "STOPPED", "DELETING", "DELETED",
                ]
                .iter()
                .map(|s| warehouse(&s.to_lowercase(), Some(*s)))
                .collect(),
                ..Activity::default()
            },
            NOW_MS,
            60,
        );
        assert_eq!(
            a.blockers,
            vec![
                "workspace dev: SQL warehouse starting (wh-starting) is STARTING",
                "workspace dev: SQL warehouse running (wh-running) is RUNNING",
            ]
        );
        assert!(a.idle_clusters.is_empty());
    }

    #[test]
    fn pipelines_with_an_update_under_way_block() {
        let states = [
            "DEPLOYING",
            "STARTING",
            "RUNNING",
            "RECOVERING",
            "RESETTING",
            "STOPPING",
            "IDLE",
            "FAILED",
            "DELETED",
        ];
        let a = assess(
            "dev",
            &Activity {
                pipelines: states.iter().map(|s| pipeline(s, Some(*s))).collect(),
                ..Activity::default()
            },
            NOW_MS,
            60,
        );
        assert_eq!(a.blockers.len(), 5, "{:?}", a.blockers);
        for (blocker, state) in a.blockers.iter().zip(&states[..5]) {
            assert_eq!(
                blocker,
                &format!("workspace dev: pipeline {state} (dlt-{state}) is {state}")
            );
        }
    }

    #[test]
    fn unknown_or_missing_states_block() {
        let a = assess(
            "dev",
            &Activity {
                warehouses: vec![warehouse("w", Some("HIBERNATING")), warehouse("x", None)],
                pipelines: vec![pipeline("p", Some("QUEUED")), pipeline("q", None)],
                ..Activity::default()
            },
            NOW_MS,
            60,
        );
        assert_eq!(a.blockers.len(), 4, "{:?}", a.blockers);
        assert!(a.blockers[0].contains("not known to lakeops (HIBERNATING)"));
        assert!(a.blockers[1].contains("warehouse x (wh-x) has no state"));
        assert!(a.blockers[2].contains("pipeline p (dlt-p)") && a.blockers[2].contains("QUEUED"));
        assert!(a.blockers[3].contains("has no state"));
    }

    #[test]
    fn list_answers_read_the_documented_fields() {
        let w: Warehouse = serde_json::from_value(serde_json::json!({
            "id": "abc", "name": "Shared", "state": "RUNNING", "cluster_size": "Small", "num_clusters": 1
        }))
        .unwrap();
        assert_eq!(
            w,
            Warehouse {
                id: "abc".into(),
                name: "Shared".into(),
                state: Some("RUNNING".into()),
            }
        );
        let p: Pipeline = serde_json::from_value(serde_json::json!({
            "pipeline_id": "p-1", "name": "ingest", "state": "IDLE", "latest_updates": []
        }))
        .unwrap();
        assert_eq!(p.state.as_deref(), Some("IDLE"));
        assert_eq!(p.name.as_deref(), Some("ingest"));
    }

    #[test]
    fn active_runs_and_busy_clusters_block_idle_ones_are_terminated() {
        let clusters = vec![
            cluster("idle", "RUNNING", Some(120)),
            cluster("busy", "RUNNING", Some(5)),
            cluster("starting", "PENDING", None),
            cluster("stopped", "TERMINATED", Some(1)),
            cluster("job", "RUNNING", Some(500)),
        ];
        let a = assess(
            "dev",
            &activity(clusters, vec![run(42, Some("job"))]),
            NOW_MS,
            60,
        );
        assert_eq!(a.idle_clusters, vec!["idle"]);
        assert_eq!(a.blockers.len(), 3, "{:?}", a.blockers);
        assert!(a.blockers[0].contains("job run 42"));
        assert!(a
            .blockers
            .iter()
            .any(|b| b.contains("busy") && b.contains("5 min")));
        assert!(a.blockers.iter().any(|b| b.contains("PENDING")));
        let quiet = assess(
            "dev",
            &activity(vec![cluster("idle", "RUNNING", Some(60))], Vec::new()),
            NOW_MS,
            60,
        );
        assert!(quiet.blockers.is_empty());
    }

    fn arb_state() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(vec![
                "STARTING",
                "RUNNING",
                "STOPPING",
                "STOPPED",
                "DELETING",
                "DELETED",
                "DEPLOYING",
                "RECOVERING",
                "RESETTING",
                "IDLE",
                "FAILED",
            ])
            .prop_map(String::from),
            "[A-Z]{1,10}",
        ]
    }

    fn arb_cluster() -> impl Strategy<Value = Cluster> {
        (0u8..6, prop::option::of(0i64..600), 0u8..8).prop_map(|(state, ago, id)| {
            let states = [
                "PENDING",
                "RUNNING",
                "RESTARTING",
                "RESIZING",
                "TERMINATING",
                "TERMINATED",
            ];
            cluster(&format!("c{id}"), states[state as usize], ago)
        })
    }

    proptest! {
        #[test]
        fn only_running_clusters_idle_past_the_threshold_are_terminated(
            clusters in proptest::collection::vec(arb_cluster(), 0..10),
            runs in proptest::collection::vec((0i64..100, prop::option::of(0u8..8)), 0..4),
            idle in 1u64..240,
        ) {
            let runs: Vec<Run> = runs.iter().map(|(id, c)| run(*id, c.map(|c| format!("c{c}")).as_deref())).collect();
            let a = assess("ws", &activity(clusters.clone(), runs.clone()), NOW_MS, idle);
            for id in &a.idle_clusters {
                let idle_and_running = clusters.iter().any(|c| {
                    &c.cluster_id == id && c.state == "RUNNING" && NOW_MS - c.last_activity_time.unwrap_or(NOW_MS) >= idle as i64 * 60_000
                });
                prop_assert!(idle_and_running, "{} is not a running idle cluster", id);
                prop_assert!(!runs.iter().any(|r| r.cluster_instance.as_ref().and_then(|i| i.cluster_id.as_deref()) == Some(id.as_str())));
            }
            // Nothing active means no blocker, and any active run means one.
            prop_assert_eq!(runs.is_empty() && clusters.iter().all(|c| c.state != "RUNNING" && !matches!(c.state.as_str(), "PENDING" | "RESTARTING" | "RESIZING")), a.blockers.is_empty() && a.idle_clusters.is_empty());
            prop_assert!(a.blockers.len() >= runs.len());
        }

        #[test]
        fn a_warehouse_or_pipeline_blocks_exactly_when_its_state_says_so(
            warehouses in proptest::collection::vec(proptest::option::of(arb_state()), 0..5),
            pipelines in proptest::collection::vec(proptest::option::of(arb_state()), 0..5),
        ) {
            let activity = Activity {
                warehouses: warehouses.iter().enumerate().map(|(i, s)| warehouse(&format!("w{i}"), s.as_deref())).collect(),
                pipelines: pipelines.iter().enumerate().map(|(i, s)| pipeline(&format!("p{i}"), s.as_deref())).collect(),
                ..Activity::default()
            };
            let a = assess("ws", &activity, NOW_MS, 60);
            let expected = warehouses.iter().filter(|s| s.as_deref().and_then(warehouse_blocks) != Some(false)).count()
                + pipelines.iter().filter(|s| s.as_deref().and_then(pipeline_blocks) != Some(false)).count();
            prop_assert_eq!(a.blockers.len(), expected);
            prop_assert!(a.idle_clusters.is_empty());
        }
    }
}
