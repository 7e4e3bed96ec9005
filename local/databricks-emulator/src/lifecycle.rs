//! Time-based state machines, computed from timestamps when read.
//!
//! Nothing ticks in the background: a record stores when its current phase started,
//! and the status a client sees is a pure function of that, the configured delay and
//! the current time. This keeps tests fast (small delays) and makes persisted state
//! resume correctly after a restart.

use serde::{Deserialize, Serialize};

/// How a workspace's provisioning ends once the delay has passed; decided when
/// provisioning starts, from the validity of its network and credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProvisioningOutcome {
    Running,
    Failed { message: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceProvisioning {
    pub started_ms: i64,
    pub outcome: ProvisioningOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceStatus {
    pub status: &'static str,
    pub message: String,
}

pub fn workspace_status(p: &WorkspaceProvisioning, now_ms: i64, delay_ms: i64) -> WorkspaceStatus {
    if now_ms - p.started_ms < delay_ms {
        return WorkspaceStatus {
            status: "PROVISIONING",
            message: "Workspace resources are being set up.".to_string(),
        };
    }
    match &p.outcome {
        ProvisioningOutcome::Running => WorkspaceStatus {
            status: "RUNNING",
            message: "Workspace is running.".to_string(),
        },
        ProvisioningOutcome::Failed { message } => WorkspaceStatus {
            status: "FAILED",
            message: message.clone(),
        },
    }
}

/// The phase a cluster was last put in by a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterPhaseKind {
    /// Created, started or restarted: PENDING, then RUNNING.
    Starting,
    /// Terminated by request: TERMINATING, then TERMINATED.
    Terminating,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterPhase {
    pub kind: ClusterPhaseKind,
    pub since_ms: i64,
}

pub fn cluster_state(phase: ClusterPhase, now_ms: i64, delay_ms: i64) -> &'static str {
    let settled = now_ms - phase.since_ms >= delay_ms;
    match (phase.kind, settled) {
        (ClusterPhaseKind::Starting, false) => "PENDING",
        (ClusterPhaseKind::Starting, true) => "RUNNING",
        (ClusterPhaseKind::Terminating, false) => "TERMINATING",
        (ClusterPhaseKind::Terminating, true) => "TERMINATED",
    }
}

/// When the current phase settles (for `start_time`/`terminated_time` style fields).
pub fn cluster_settled_at(phase: ClusterPhase, delay_ms: i64) -> i64 {
    phase.since_ms + delay_ms
}

/// A job run: queued for one delay, running for another, then it succeeds unless it
/// was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunPhase {
    pub started_ms: i64,
    pub cancelled_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunState {
    pub life_cycle_state: &'static str,
    pub result_state: Option<&'static str>,
    pub end_ms: Option<i64>,
}

impl RunState {
    pub fn is_active(&self) -> bool {
        !matches!(
            self.life_cycle_state,
            "TERMINATED" | "SKIPPED" | "INTERNAL_ERROR"
        )
    }
}

pub fn run_state(phase: RunPhase, now_ms: i64, delay_ms: i64) -> RunState {
    let natural_end = phase.started_ms + 2 * delay_ms;
    match phase.cancelled_ms {
        Some(c) if c < natural_end => RunState {
            life_cycle_state: "TERMINATED",
            result_state: Some("CANCELED"),
            end_ms: Some(c),
        },
        _ if now_ms >= natural_end => RunState {
            life_cycle_state: "TERMINATED",
            result_state: Some("SUCCESS"),
            end_ms: Some(natural_end),
        },
        _ if now_ms - phase.started_ms >= delay_ms => RunState {
            life_cycle_state: "RUNNING",
            result_state: None,
            end_ms: None,
        },
        _ => RunState {
            life_cycle_state: "PENDING",
            result_state: None,
            end_ms: None,
        },
    }
}

/// The phase a SQL warehouse was last put in by a request; each settles after
/// the cluster delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WarehousePhaseKind {
    /// Created or started: STARTING, then RUNNING.
    Starting,
    /// Stopped by request: STOPPING, then STOPPED.
    Stopping,
    /// Deleted by request: DELETING, then DELETED.
    Deleting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarehousePhase {
    pub kind: WarehousePhaseKind,
    pub since_ms: i64,
}

pub fn warehouse_state(phase: WarehousePhase, now_ms: i64, delay_ms: i64) -> &'static str {
    let settled = now_ms - phase.since_ms >= delay_ms;
    match (phase.kind, settled) {
        (WarehousePhaseKind::Starting, false) => "STARTING",
        (WarehousePhaseKind::Starting, true) => "RUNNING",
        (WarehousePhaseKind::Stopping, false) => "STOPPING",
        (WarehousePhaseKind::Stopping, true) => "STOPPED",
        (WarehousePhaseKind::Deleting, false) => "DELETING",
        (WarehousePhaseKind::Deleting, true) => "DELETED",
    }
}

/// What a pipeline was last asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PipelinePhaseKind {
    /// Created, or its update ended: IDLE.
    Idle,
    /// An update started: STARTING for one delay, then RUNNING; a triggered
    /// (not continuous) update completes after a second delay, and the
    /// pipeline is IDLE again.
    Update { continuous: bool },
    /// Stopped by request: STOPPING, then IDLE.
    Stopping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelinePhase {
    pub kind: PipelinePhaseKind,
    pub since_ms: i64,
}

/// The pipeline's state and its latest update's state (`None` before any update).
pub fn pipeline_state(
    phase: PipelinePhase,
    now_ms: i64,
    delay_ms: i64,
) -> (&'static str, Option<&'static str>) {
    let elapsed = now_ms - phase.since_ms;
    match phase.kind {
        PipelinePhaseKind::Idle => ("IDLE", None),
        PipelinePhaseKind::Update { .. } if elapsed < delay_ms => {
            ("STARTING", Some("INITIALIZING"))
        }
        PipelinePhaseKind::Update { continuous: false } if elapsed >= 2 * delay_ms => {
            ("IDLE", Some("COMPLETED"))
        }
        PipelinePhaseKind::Update { .. } => ("RUNNING", Some("RUNNING")),
        PipelinePhaseKind::Stopping if elapsed < delay_ms => ("STOPPING", Some("STOPPING")),
        PipelinePhaseKind::Stopping => ("IDLE", Some("CANCELED")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn workspace_provisions_then_runs_or_fails() {
        let ok = WorkspaceProvisioning {
            started_ms: 1000,
            outcome: ProvisioningOutcome::Running,
        };
        assert_eq!(workspace_status(&ok, 1000, 500).status, "PROVISIONING");
        assert_eq!(workspace_status(&ok, 1499, 500).status, "PROVISIONING");
        assert_eq!(workspace_status(&ok, 1500, 500).status, "RUNNING");
        let bad = WorkspaceProvisioning {
            started_ms: 1000,
            outcome: ProvisioningOutcome::Failed {
                message: "network broken".into(),
            },
        };
        let s = workspace_status(&bad, 2000, 500);
        assert_eq!(s.status, "FAILED");
        assert_eq!(s.message, "network broken");
    }

    #[test]
    fn cluster_goes_pending_running_terminating_terminated() {
        let start = ClusterPhase {
            kind: ClusterPhaseKind::Starting,
            since_ms: 0,
        };
        assert_eq!(cluster_state(start, 10, 100), "PENDING");
        assert_eq!(cluster_state(start, 100, 100), "RUNNING");
        let stop = ClusterPhase {
            kind: ClusterPhaseKind::Terminating,
            since_ms: 200,
        };
        assert_eq!(cluster_state(stop, 250, 100), "TERMINATING");
        assert_eq!(cluster_state(stop, 300, 100), "TERMINATED");
    }

    #[test]
    fn cancelled_run_ends_cancelled_unless_already_finished() {
        let cancelled = RunPhase {
            started_ms: 0,
            cancelled_ms: Some(50),
        };
        let s = run_state(cancelled, 60, 100);
        assert_eq!(s.result_state, Some("CANCELED"));
        assert!(!s.is_active());
        let late_cancel = RunPhase {
            started_ms: 0,
            cancelled_ms: Some(500),
        };
        assert_eq!(
            run_state(late_cancel, 600, 100).result_state,
            Some("SUCCESS")
        );
    }

    #[test]
    fn warehouse_starts_runs_stops_and_is_deleted() {
        let phase = |kind, since_ms| WarehousePhase { kind, since_ms };
        assert_eq!(
            warehouse_state(phase(WarehousePhaseKind::Starting, 0), 50, 100),
            "STARTING"
        );
        assert_eq!(
            warehouse_state(phase(WarehousePhaseKind::Starting, 0), 100, 100),
            "RUNNING"
        );
        assert_eq!(
            warehouse_state(phase(WarehousePhaseKind::Stopping, 0), 99, 100),
            "STOPPING"
        );
        assert_eq!(
            warehouse_state(phase(WarehousePhaseKind::Stopping, 0), 100, 100),
            "STOPPED"
        );
        assert_eq!(
            warehouse_state(phase(WarehousePhaseKind::Deleting, 0), 1, 100),
            "DELETING"
        );
        assert_eq!(
            warehouse_state(phase(WarehousePhaseKind::Deleting, 0), 200, 100),
            "DELETED"
        );
    }

    #[test]
    fn pipeline_updates_start_run_and_end_or_are_stopped() {
        let phase = |kind| PipelinePhase { kind, since_ms: 0 };
        let triggered = phase(PipelinePhaseKind::Update { continuous: false });
        assert_eq!(
            pipeline_state(phase(PipelinePhaseKind::Idle), 5, 100),
            ("IDLE", None)
        );
        assert_eq!(pipeline_state(triggered, 50, 100).0, "STARTING");
        assert_eq!(pipeline_state(triggered, 150, 100).0, "RUNNING");
        assert_eq!(
            pipeline_state(triggered, 200, 100),
            ("IDLE", Some("COMPLETED"))
        );
        let continuous = phase(PipelinePhaseKind::Update { continuous: true });
        assert_eq!(pipeline_state(continuous, 1_000_000, 100).0, "RUNNING");
        let stopping = phase(PipelinePhaseKind::Stopping);
        assert_eq!(pipeline_state(stopping, 10, 100).0, "STOPPING");
        assert_eq!(
            pipeline_state(stopping, 100, 100),
            ("IDLE", Some("CANCELED"))
        );
    }

    proptest! {
        #[test]
        fn run_states_progress_monotonically(start in 0i64..1_000_000, delay in 0i64..10_000, a in 0i64..50_000, b in 0i64..50_000) {
            let phase = RunPhase { started_ms: start, cancelled_ms: None };
            let rank = |s: &str| match s { "PENDING" => 0, "RUNNING" => 1, _ => 2 };
            let (t1, t2) = (start + a.min(b), start + a.max(b));
            prop_assert!(rank(run_state(phase, t1, delay).life_cycle_state) <= rank(run_state(phase, t2, delay).life_cycle_state));
        }

        #[test]
        fn cluster_state_settles_exactly_at_delay(since in 0i64..1_000_000, delay in 0i64..100_000) {
            let phase = ClusterPhase { kind: ClusterPhaseKind::Starting, since_ms: since };
            prop_assert_eq!(cluster_state(phase, cluster_settled_at(phase, delay), delay), "RUNNING");
            if delay > 0 {
                prop_assert_eq!(cluster_state(phase, cluster_settled_at(phase, delay) - 1, delay), "PENDING");
            }
        }
    }
}
