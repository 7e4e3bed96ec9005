//! The calls the sync makes, behind small traits: the two workspaces, the run store
//! (S3) and the active-workspace pointer (SSM). The Databricks and AWS adapters
//! implement them; tests use the in-memory fakes (`fakes`).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use lakeops_shared::Error;
use serde::{Deserialize, Serialize};

use crate::clones::{CloneQueue, StatementState};
use crate::failover::ActivePointer;
use crate::inventory::Inventory;
use crate::plan::{Action, Plan, Stage};
use crate::report::Report;

pub type Result<T> = std::result::Result<T, Error>;

/// One workspace. Every method is one API call, one paged listing or one statement;
/// retries of transient faults live in the client, below this trait.
pub trait Workspace: Send + Sync {
    /// What the named catalogs hold, with storage credentials, external locations and
    /// sharing. Read-only.
    fn inventory(&self, catalogs: &[String]) -> impl Future<Output = Result<Inventory>> + Send;
    /// Runs one REST action. An object that already exists as wanted is success, so a
    /// re-run after a crash converges.
    fn apply(&self, action: &Action) -> impl Future<Output = Result<()>> + Send;
    /// Submits a statement on the sync's SQL warehouse with `wait_timeout=0s`.
    fn submit(
        &self,
        statement: &str,
        schema: Option<&str>,
    ) -> impl Future<Output = Result<String>> + Send;
    fn poll(&self, statement_id: &str) -> impl Future<Output = Result<StatementState>> + Send;
    /// A table's current Delta version (None when it has none, or does not exist).
    fn table_version(&self, full_name: &str) -> impl Future<Output = Result<Option<i64>>> + Send;
    /// The workspace's jobs with a schedule, continuous run or trigger.
    fn triggered_jobs(&self) -> impl Future<Output = Result<Vec<Job>>> + Send;
    /// Pauses or unpauses a job's schedule, continuous run or trigger.
    fn set_job_paused(&self, job: &Job, paused: bool) -> impl Future<Output = Result<()>> + Send;
    /// Cancels the job's active runs.
    fn cancel_job_runs(&self, job_id: i64) -> impl Future<Output = Result<()>> + Send;
    /// Cancels a statement (one already finished is not an error).
    fn cancel_statement(&self, statement_id: &str) -> impl Future<Output = Result<()>> + Send;
}

/// A job that runs by itself: what a failover pauses and unpauses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: i64,
    pub name: String,
    /// `schedule`, `continuous` or `trigger`.
    pub trigger: String,
    /// That settings block as the API returned it: an update replaces the whole
    /// block, so a pause writes it back with only `pause_status` changed.
    pub block: serde_json::Value,
    pub paused: bool,
}

/// Where a run keeps its plan and queues, and writes its report.
pub trait RunStore: Send + Sync {
    fn load(&self, run: &str) -> impl Future<Output = Result<Option<RunState>>> + Send;
    fn save(&self, run: &str, state: &RunState) -> impl Future<Output = Result<()>> + Send;
    /// Writes the report of a run (and the pair's latest report); returns its URI.
    fn put_report(&self, run: &str, report: &Report)
        -> impl Future<Output = Result<String>> + Send;
    /// The URI of a run's state object (which holds the plan).
    fn state_uri(&self, run: &str) -> String;
    /// The clones that succeeded, across runs.
    fn load_ledger(&self) -> impl Future<Output = Result<CloneLedger>> + Send;
    fn save_ledger(&self, ledger: &CloneLedger) -> impl Future<Output = Result<()>> + Send;
    /// The jobs a failover from `generation` paused on the old primary.
    fn load_failover_jobs(
        &self,
        generation: u64,
    ) -> impl Future<Output = Result<Option<FailoverJobs>>> + Send;
    fn save_failover_jobs(
        &self,
        generation: u64,
        jobs: &FailoverJobs,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// What the pause step of a failover found, for the unpause step (and its re-runs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverJobs {
    /// Whether the old primary answered; if not, the new one unpauses every matching job.
    pub primary_answered: bool,
    /// The jobs that ran there and were paused.
    pub names: Vec<String>,
}

/// What each secondary table was cloned from: a table is in step when its current
/// version is still the one its last clone left (nobody wrote to it since) and the
/// source is still at the version that clone read. Unity Catalog keeps no link from a
/// clone to its source version that a REST read returns, so the sync keeps one.
pub type CloneLedger = BTreeMap<String, CloneRecord>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneRecord {
    /// The source version the plan saw; the clone read it or a later one, so a
    /// changed source is never missed (at worst a table is cloned once more).
    pub source_version: Option<i64>,
    /// The target's version right after the clone.
    pub target_version: Option<i64>,
}

/// The active-workspace pointer.
pub trait PointerStore: Send + Sync {
    fn read(&self) -> impl Future<Output = Result<Option<ActivePointer>>> + Send;
    fn write(&self, pointer: &ActivePointer) -> impl Future<Output = Result<()>> + Send;
}

/// What a run carries between its steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub generation: u64,
    pub plan: Plan,
    /// Indexes (into `plan.changes`) of the REST actions already done.
    #[serde(default)]
    pub applied: BTreeSet<usize>,
    /// The statement queue of each stage that has statements, keyed by change index.
    #[serde(default)]
    pub queues: BTreeMap<Stage, CloneQueue>,
    /// object -> error, for the report.
    #[serde(default)]
    pub failures: BTreeMap<String, String>,
    /// Queue keys whose success is in the clone ledger already.
    #[serde(default)]
    pub recorded: BTreeSet<String>,
}
