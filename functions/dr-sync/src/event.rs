//! The contract between the `dr-sync` state machine and the function, the same as
//! provision's: one idempotent step per invocation, `ready`/`wait_seconds` for the
//! state machine's Wait/Choice loop.
//!
//! Request: `{"step", "mode": "plan"|"apply"|"reconcile", "spec": {...} | "s3://...",
//! "generation": N | null, "run": "<run id>" | null}`. `discover` reads both sides,
//! plans, and stores the plan under the run id; each stage then works from that plan,
//! and `report` reconciles and writes the report. The plan and the queues of a
//! 1,000-table sync do not fit a Step Functions payload (256 KiB), so they live in the
//! run's S3 objects and the payload carries counts, a sample of changes and the URIs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plan::{Change, Stage};
use crate::report::Summary;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Reads both sides and says what apply would do; no mutating call or statement.
    Plan,
    /// Converges the secondary.
    #[default]
    Apply,
    /// Reads both sides and writes the reconciliation report only.
    Reconcile,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Plan => "plan",
            Mode::Apply => "apply",
            Mode::Reconcile => "reconcile",
        }
    }
}

/// One invocation's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Discover,
    Run(Stage),
    Report,
}

impl Step {
    /// Every step of an apply, in order.
    pub fn apply_order() -> Vec<Step> {
        std::iter::once(Step::Discover)
            .chain(Stage::ALL.iter().map(|s| Step::Run(*s)))
            .chain(std::iter::once(Step::Report))
            .collect()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Discover => "discover",
            Step::Report => "report",
            Step::Run(stage) => stage.as_str(),
        }
    }

    pub fn parse(text: &str) -> Option<Step> {
        Step::apply_order().into_iter().find(|s| s.as_str() == text)
    }
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Storage => "storage",
            Stage::Catalogs => "catalogs",
            Stage::Sharing => "sharing",
            Stage::ManagedTables => "managed_tables",
            Stage::ExternalTables => "external_tables",
            Stage::Views => "views",
            Stage::Volumes => "volumes",
            Stage::Functions => "functions",
            Stage::TagsComments => "tags_comments",
            Stage::Grants => "grants",
            Stage::Deletes => "deletes",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub step: String,
    #[serde(default)]
    pub mode: Mode,
    /// The DR spec, or an `s3://bucket/key` URI of it.
    pub spec: Value,
    /// The failover generation this run was started at (from the active-workspace
    /// pointer, read by `discover` when absent). A run whose generation is no longer
    /// current is refused at its next step.
    #[serde(default)]
    pub generation: Option<u64>,
    /// The run id (the execution name), under which the plan and queues are stored.
    #[serde(default)]
    pub run: Option<String>,
    /// Failback's reverse sync: from the promoted secondary back into the old primary,
    /// along the reversed spec (`DrSpec::reversed`).
    #[serde(default)]
    pub reverse: bool,
}

/// A change as the execution shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeSummary {
    pub stage: Stage,
    pub kind: String,
    pub object: String,
    pub description: String,
}

/// Changes included in a response; the rest are in the plan object.
pub const CHANGES_IN_PAYLOAD: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub step: String,
    pub mode: Mode,
    pub spec: Value,
    pub generation: Option<u64>,
    pub run: Option<String>,
    pub reverse: bool,
    /// This step's changes, described (at most `CHANGES_IN_PAYLOAD`; `changes_total`
    /// counts all). Their statements stay in the plan object: a view's SQL is
    /// unbounded, a Step Functions payload is not (256 KiB).
    pub changes: Vec<ChangeSummary>,
    pub changes_total: usize,
    /// `s3://` URI of the full plan, and of the report once `report` ran.
    pub plan_uri: Option<String>,
    pub report_uri: Option<String>,
    /// Set by `report`.
    pub summary: Option<Summary>,
    /// False while the state machine must wait and call the step again.
    pub ready: bool,
    pub wait_seconds: u64,
}

impl Response {
    /// A response carrying the request's identity forward.
    pub fn to(request: &Request) -> Response {
        Response {
            step: request.step.clone(),
            mode: request.mode,
            spec: request.spec.clone(),
            generation: request.generation,
            run: request.run.clone(),
            reverse: request.reverse,
            changes: vec![],
            changes_total: 0,
            plan_uri: None,
            report_uri: None,
            summary: None,
            ready: true,
            wait_seconds: 0,
        }
    }

    pub fn with_changes(mut self, changes: &[Change]) -> Response {
        self.changes_total = changes.len();
        self.changes = changes
            .iter()
            .take(CHANGES_IN_PAYLOAD)
            .map(|c| ChangeSummary {
                stage: c.stage,
                kind: c.kind.clone(),
                object: c.object.clone(),
                description: c.description.clone(),
            })
            .collect();
        self
    }
}

/// The `errorType`s of the guard's refusals (`failover::Refusal::error_name`), which a
/// failed execution's error shows.
pub mod errors {
    pub const REFUSALS: [&str; 4] = [
        "DR.StaleGeneration",
        "DR.PrimaryNotActive",
        "DR.OtherPair",
        "DR.NotInSync",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_parse_back_from_their_names() {
        for step in Step::apply_order() {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert_eq!(Step::parse("nope"), None);
        assert_eq!(Step::apply_order().len(), Stage::ALL.len() + 2);
    }

    #[test]
    fn a_request_needs_a_step_and_a_spec_and_refuses_unknown_fields() {
        let r: Request =
            serde_json::from_value(json!({"step": "discover", "spec": "s3://b/k"})).unwrap();
        assert_eq!(r.mode, Mode::Apply);
        assert!(serde_json::from_value::<Request>(json!({"step": "discover"})).is_err());
        assert!(
            serde_json::from_value::<Request>(json!({"step": "x", "spec": {}, "extra": 1}))
                .is_err()
        );
        assert!(serde_json::from_value::<Request>(
            json!({"step": "x", "spec": {}, "mode": "destroy"})
        )
        .is_err());
    }
}

#[cfg(test)]
mod sample_tests {
    use super::*;

    fn sample(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn the_samples_in_events_parse() {
        let spec = crate::spec::parse(&sample("dr-spec.json")).unwrap();
        assert_eq!(spec.catalogs.len(), 2);
        for name in ["dr-sync-discover.json", "dr-sync-report.json"] {
            let r: Request = serde_json::from_value(sample(name)).unwrap();
            assert!(Step::parse(&r.step).is_some(), "{name}");
        }
        // The schedule's input is a state machine input, not a step request.
        let input = sample("dr-sync-aws-scheduler-apply.json");
        assert_eq!(input["mode"], "apply");
        assert!(serde_json::from_value::<Request>(input).is_err());
    }
}
