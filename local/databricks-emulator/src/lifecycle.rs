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
/// its delay (the warehouse delay, or a fault's override recorded when the phase
/// began).
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
    /// The phase's own delay, when it was set by a fault (absent in older state files
    /// and when the configured delay applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<i64>,
}

/// When the warehouse's current phase settles.
pub fn warehouse_settled_at(phase: WarehousePhase, default_delay_ms: i64) -> i64 {
    phase.since_ms + phase.delay_ms.unwrap_or(default_delay_ms)
}

pub fn warehouse_state(phase: WarehousePhase, now_ms: i64, delay_ms: i64) -> &'static str {
    let settled = now_ms >= warehouse_settled_at(phase, delay_ms);
    match (phase.kind, settled) {
        (WarehousePhaseKind::Starting, false) => "STARTING",
        (WarehousePhaseKind::Starting, true) => "RUNNING",
        (WarehousePhaseKind::Stopping, false) => "STOPPING",
        (WarehousePhaseKind::Stopping, true) => "STOPPED",
        (WarehousePhaseKind::Deleting, false) => "DELETING",
        (WarehousePhaseKind::Deleting, true) => "DELETED",
    }
}

/// A SQL statement's timeline: PENDING until its warehouse runs, RUNNING for its run
/// time, then finished (SUCCEEDED or FAILED, decided when its effects are applied),
/// unless it was cancelled before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementPhase {
    pub submitted_ms: i64,
    /// When the warehouse is (or was) RUNNING for it.
    pub running_ms: i64,
    pub run_ms: i64,
    pub canceled_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementProgress {
    Pending,
    Running,
    /// Its run ended at `finished_ms`: its effects are due.
    Finished {
        finished_ms: i64,
    },
    Canceled {
        canceled_ms: i64,
    },
}

impl StatementPhase {
    pub fn finish_ms(&self) -> i64 {
        self.running_ms.max(self.submitted_ms) + self.run_ms
    }
}

pub fn statement_progress(p: StatementPhase, now_ms: i64) -> StatementProgress {
    let finish = p.finish_ms();
    match p.canceled_ms {
        Some(c) if c < finish => return StatementProgress::Canceled { canceled_ms: c },
        _ => {}
    }
    if now_ms >= finish {
        StatementProgress::Finished {
            finished_ms: finish,
        }
    } else if now_ms >= p.running_ms {
        StatementProgress::Running
    } else {
        StatementProgress::Pending
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
        let phase = |kind, since_ms| WarehousePhase {
            kind,
            since_ms,
            delay_ms: None,
        };
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

    #[test]
    fn a_statement_waits_for_its_warehouse_then_runs_then_finishes() {
        let p = StatementPhase {
            submitted_ms: 100,
            running_ms: 1100,
            run_ms: 500,
            canceled_ms: None,
        };
        assert_eq!(statement_progress(p, 100), StatementProgress::Pending);
        assert_eq!(statement_progress(p, 1099), StatementProgress::Pending);
        assert_eq!(statement_progress(p, 1100), StatementProgress::Running);
        assert_eq!(
            statement_progress(p, 1600),
            StatementProgress::Finished { finished_ms: 1600 }
        );
        let cancelled = StatementPhase {
            canceled_ms: Some(1200),
            ..p
        };
        assert_eq!(
            statement_progress(cancelled, 5000),
            StatementProgress::Canceled { canceled_ms: 1200 }
        );
        // A cancel after the end changes nothing.
        let late = StatementPhase {
            canceled_ms: Some(1600),
            ..p
        };
        assert!(matches!(
            statement_progress(late, 5000),
            StatementProgress::Finished { .. }
        ));
    }

    #[test]
    fn a_warehouse_phase_keeps_its_own_delay() {
        let phase = WarehousePhase {
            kind: WarehousePhaseKind::Starting,
            since_ms: 0,
            delay_ms: Some(5000),
        };
        assert_eq!(warehouse_state(phase, 4999, 100), "STARTING");
        assert_eq!(warehouse_state(phase, 5000, 100), "RUNNING");
        assert_eq!(
            warehouse_settled_at(
                WarehousePhase {
                    delay_ms: None,
                    ..phase
                },
                100
            ),
            100
        );
    }

    proptest! {
        #[test]
        fn statements_progress_monotonically(run in 0i64..10_000, wait in 0i64..10_000, a in 0i64..50_000, b in 0i64..50_000) {
            let p = StatementPhase { submitted_ms: 0, running_ms: wait, run_ms: run, canceled_ms: None };
            let rank = |s: StatementProgress| match s { StatementProgress::Pending => 0, StatementProgress::Running => 1, _ => 2 };
            prop_assert!(rank(statement_progress(p, a.min(b))) <= rank(statement_progress(p, a.max(b))));
        }

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
