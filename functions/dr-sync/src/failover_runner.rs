//! The steps of a failover that the function runs (the `dr-failover` state machine
//! runs the last sync, disables the sync schedule and stops the sync runs in flight
//! itself): decide; cancel the statements those runs left on the warehouse; pause the
//! old primary's jobs and cancel their runs; unpause, on the new primary, the jobs that
//! ran on the old one; switch the pointer last. Each step can run twice; a re-run after
//! the switch finishes instead of refusing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use lakeops_shared::Error;

use crate::failover::{decide, ActivePointer, Decision, LastSync, Mode};
use crate::mapping::glob_matches;
use crate::ports::{Job, PointerStore, Result, RunStore, Workspace};
use crate::report::Summary;
use crate::runner::refused;
use crate::spec::DrSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverStep {
    Decide,
    CancelSyncStatements,
    PausePrimaryJobs,
    UnpauseSecondaryJobs,
    Switch,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverRequest {
    pub failover_step: FailoverStep,
    pub mode: Mode,
    pub spec: Value,
    /// Failback: fail over along the reversed spec (the old primary is promoted back).
    #[serde(default)]
    pub reverse: bool,
    /// The generation `decide` saw; every later step carries it.
    #[serde(default)]
    pub generation: Option<u64>,
    /// The summary of the last sync (planned mode), from the sync execution's output.
    #[serde(default)]
    pub last_sync: Option<Summary>,
    /// The last sync's error when it failed (planned mode), as a Catch records it.
    #[serde(default)]
    pub last_sync_error: Option<CaughtError>,
    /// The dr-sync runs (execution names) that the state machine stopped.
    #[serde(default)]
    pub stopped_runs: Vec<String>,
}

/// An error as a Step Functions Catch records it in the state's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

impl std::fmt::Display for CaughtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A failed `startExecution.sync:2` child is caught as States.TaskFailed whose
        // Cause is the child's DescribeExecution output: its own Error and Cause say why.
        let child = self
            .cause
            .as_deref()
            .and_then(|c| serde_json::from_str::<Value>(c).ok())
            .filter(|v| v.get("Error").is_some_and(Value::is_string));
        match (child, &self.cause) {
            (Some(child), _) => write!(
                f,
                "{}: {}",
                child["Error"].as_str().unwrap_or_default(),
                child["Cause"].as_str().unwrap_or_default()
            ),
            (None, Some(cause)) => write!(f, "{}: {cause}", self.error),
            (None, None) => f.write_str(&self.error),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailoverResponse {
    pub failover_step: FailoverStep,
    pub mode: Mode,
    pub spec: Value,
    pub reverse: bool,
    pub generation: Option<u64>,
    /// The pointer after this failover (set by `decide`, written by `switch`).
    pub promoted: Option<ActivePointer>,
    /// True when `decide` found the failover already done (a re-run).
    pub already_promoted: bool,
    /// Jobs this step paused or unpaused, by name.
    pub jobs: Vec<String>,
    /// What failed without failing the step (forced mode is best effort on the primary).
    pub errors: Vec<String>,
}

pub struct Failover<'a, W, S, P> {
    pub spec: &'a DrSpec,
    pub primary: &'a W,
    pub secondary: &'a W,
    /// The sync's run store: the stopped runs' statements, and the jobs the failover
    /// paused (so that only those are unpaused, also on a re-run).
    pub store: &'a S,
    pub pointer: &'a P,
    pub now: String,
}

impl<W: Workspace, S: RunStore, P: PointerStore> Failover<'_, W, S, P> {
    pub async fn step(&self, request: &FailoverRequest) -> Result<FailoverResponse> {
        let mut response = FailoverResponse {
            failover_step: request.failover_step,
            mode: request.mode,
            spec: request.spec.clone(),
            reverse: request.reverse,
            generation: request.generation,
            promoted: None,
            already_promoted: false,
            jobs: vec![],
            errors: vec![],
        };
        let pointer = self
            .pointer
            .read()
            .await?
            .unwrap_or_else(|| ActivePointer::initial(self.spec, &self.now));
        let last_sync_error = request.last_sync_error.as_ref().map(ToString::to_string);
        let last_sync = match (&request.last_sync, &last_sync_error) {
            (Some(s), _) => LastSync::Report {
                missing: s.missing,
                drifted: s.drifted,
                failed: s.failed,
            },
            (None, Some(error)) => LastSync::Failed(error),
            (None, None) => LastSync::Absent,
        };
        // Every step re-decides: a failover that another one overtook stops, and the
        // pointer's generation proves which side each step acts for.
        let decision = decide(
            &pointer,
            self.spec,
            request.mode,
            request.generation,
            last_sync,
            &self.now,
        )
        .map_err(refused)?;
        match request.failover_step {
            FailoverStep::Decide => {
                match decision {
                    Decision::Promote { pointer: next } => {
                        response.generation = Some(pointer.generation);
                        response.promoted = Some(next);
                    }
                    Decision::AlreadyPromoted { pointer } => {
                        response.generation = Some(pointer.generation - 1);
                        response.promoted = Some(pointer);
                        response.already_promoted = true;
                    }
                }
                Ok(response)
            }
            FailoverStep::CancelSyncStatements => {
                // A sync run stopped mid-stage leaves its statements running on the
                // warehouse; none may write into the side being promoted.
                for run in &request.stopped_runs {
                    let Some(state) = self.store.load(run).await? else {
                        continue;
                    };
                    for id in state.queues.values().flat_map(|q| q.in_flight.values()) {
                        if let Err(e) = self.secondary.cancel_statement(id).await {
                            response
                                .errors
                                .push(format!("statement {id} of run {run}: {}", e.message));
                        }
                    }
                }
                if !response.errors.is_empty() {
                    return Err(Error::retryable(format!(
                        "could not cancel: {}",
                        response.errors.join("; ")
                    )));
                }
                Ok(response)
            }
            FailoverStep::PausePrimaryJobs => {
                // Forced: the primary may be unreachable; what cannot be paused is reported.
                let best_effort = request.mode == Mode::Forced;
                let generation = request.generation.unwrap_or(pointer.generation);
                let mut record = self
                    .store
                    .load_failover_jobs(generation)
                    .await?
                    .unwrap_or_default();
                match self
                    .set_jobs(self.primary, true, best_effort, &mut response)
                    .await
                {
                    Err(e) if best_effort => {
                        response.errors.push(format!("primary jobs: {}", e.message))
                    }
                    Err(e) => return Err(e),
                    Ok(()) => record.primary_answered = true,
                }
                // Union with what an earlier try paused: a re-run finds them paused already.
                for name in &response.jobs {
                    if !record.names.contains(name) {
                        record.names.push(name.clone());
                    }
                }
                self.store.save_failover_jobs(generation, &record).await?;
                Ok(response)
            }
            FailoverStep::UnpauseSecondaryJobs => {
                let generation = request.generation.unwrap_or(pointer.generation);
                let record = self
                    .store
                    .load_failover_jobs(generation)
                    .await?
                    .unwrap_or_default();
                // The jobs that ran on the old primary; all matching ones when it did not
                // answer (a forced failover cannot know, and a promoted side must run).
                let only = record.primary_answered.then_some(record.names);
                self.set_jobs_named(self.secondary, only.as_deref(), &mut response)
                    .await?;
                Ok(response)
            }
            FailoverStep::Switch => {
                match decision {
                    Decision::Promote { pointer: next } => {
                        self.pointer.write(&next).await?;
                        response.promoted = Some(next);
                    }
                    Decision::AlreadyPromoted { pointer } => {
                        response.already_promoted = true;
                        response.promoted = Some(pointer);
                    }
                }
                Ok(response)
            }
        }
    }

    /// Unpauses the matching jobs of a side whose names are in `only` (all when None).
    async fn set_jobs_named(
        &self,
        side: &W,
        only: Option<&[String]>,
        response: &mut FailoverResponse,
    ) -> Result<()> {
        let jobs: Vec<Job> = side
            .triggered_jobs()
            .await?
            .into_iter()
            .filter(|j| {
                self.spec
                    .failover_jobs
                    .iter()
                    .any(|p| glob_matches(p, &j.name))
            })
            .filter(|j| only.is_none_or(|names| names.contains(&j.name)))
            .collect();
        for job in jobs.iter().filter(|j| j.paused) {
            match side.set_job_paused(job, false).await {
                Ok(()) => response.jobs.push(job.name.clone()),
                Err(e) => response
                    .errors
                    .push(format!("job {} ({}): {}", job.name, job.job_id, e.message)),
            }
        }
        if !response.errors.is_empty() {
            return Err(Error::retryable(format!(
                "could not unpause: {}",
                response.errors.join("; ")
            )));
        }
        Ok(())
    }

    /// Pauses (or unpauses) the matching jobs of one side. Unless `best_effort`, a job
    /// left as it was fails the step (retried: the step is idempotent), so that a
    /// planned failover never leaves both sides running the same jobs.
    async fn set_jobs(
        &self,
        side: &W,
        paused: bool,
        best_effort: bool,
        response: &mut FailoverResponse,
    ) -> Result<()> {
        let jobs: Vec<Job> = side
            .triggered_jobs()
            .await?
            .into_iter()
            .filter(|j| {
                self.spec
                    .failover_jobs
                    .iter()
                    .any(|p| glob_matches(p, &j.name))
            })
            .collect();
        for job in jobs {
            if job.paused != paused {
                if let Err(e) = side.set_job_paused(&job, paused).await {
                    response
                        .errors
                        .push(format!("job {} ({}): {}", job.name, job.job_id, e.message));
                    continue;
                }
                response.jobs.push(job.name.clone());
            }
            if paused {
                if let Err(e) = side.cancel_job_runs(job.job_id).await {
                    response.errors.push(format!(
                        "runs of job {} ({}): {}",
                        job.name, job.job_id, e.message
                    ));
                }
            }
        }
        if !best_effort && !response.errors.is_empty() {
            let what = if paused { "pause" } else { "unpause" };
            return Err(Error::retryable(format!(
                "could not {what}: {}",
                response.errors.join("; ")
            )));
        }
        Ok(())
    }
}
