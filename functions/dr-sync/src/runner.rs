//! One step of a run: `discover` plans, each stage works its part of the plan (REST
//! actions in order, statements through the stage's queue), `report` reconciles. Every
//! step re-reads the active-workspace pointer first, so a run that a failover
//! overtook stops at its next step instead of writing to the promoted side.

use std::collections::BTreeMap;

use lakeops_shared::Error;

use crate::clones::{CloneQueue, StatementState};
use crate::event::{Mode, Request, Response, Step};
use crate::failover::{check_sync, ActivePointer};
use crate::inventory::Inventory;
use crate::plan::{plan, Side, Stage};
use crate::ports::{CloneRecord, PointerStore, Result, RunState, RunStore, Workspace};
use crate::report::reconcile;
use crate::spec::DrSpec;

/// Seconds the state machine waits before polling a stage's statements again. Clones
/// copy data and take minutes; the other statements are metadata and take seconds.
fn poll_interval(stage: Stage) -> u64 {
    match stage {
        Stage::ManagedTables | Stage::ExternalTables => 15,
        _ => 3,
    }
}

pub struct Sync<'a, W, S, P> {
    pub spec: &'a DrSpec,
    pub primary: &'a W,
    pub secondary: &'a W,
    pub store: &'a S,
    pub pointer: &'a P,
    /// RFC 3339 now, and epoch ms now (the lag's clock).
    pub now: (String, i64),
}

/// A refusal of the generation guard, under the name the state machine routes on.
pub fn refused(refusal: crate::failover::Refusal) -> Error {
    Error::terminal(format!("{}: {refusal}", refusal.error_name()))
}

impl<W: Workspace, S: RunStore, P: PointerStore> Sync<'_, W, S, P> {
    pub async fn step(&self, request: &Request) -> Result<Response> {
        let step = Step::parse(&request.step).ok_or_else(|| {
            Error::invalid_input(format!("step: `{}` is not a step of dr-sync", request.step))
        })?;
        let run = request.run.clone().ok_or_else(|| {
            Error::invalid_input(
                "run: is required (the state machine sets it to the execution name)",
            )
        })?;
        let pointer = self.guard(request).await?;
        let mut response = Response::to(request);
        response.generation = Some(pointer.generation);
        match step {
            Step::Discover => self.discover(&run, pointer.generation, response).await,
            Step::Run(stage) => {
                if request.mode != Mode::Apply {
                    return Err(Error::invalid_input(format!(
                        "mode: {} never runs stage {}",
                        request.mode.as_str(),
                        stage.as_str()
                    )));
                }
                self.run_stage(stage, &run, pointer.generation, response)
                    .await
            }
            Step::Report => self.report(request.mode, &run, response).await,
        }
    }

    /// The pointer, written as the spec's primary on a pair's first apply; the run's
    /// generation must be current and the spec's primary active.
    async fn guard(&self, request: &Request) -> Result<ActivePointer> {
        let pointer = match self.pointer.read().await? {
            Some(p) => p,
            None => {
                let p = ActivePointer::initial(self.spec, &self.now.0);
                if request.mode == Mode::Apply {
                    self.pointer.write(&p).await?;
                }
                p
            }
        };
        check_sync(&pointer, self.spec, request.generation).map_err(refused)?;
        Ok(pointer)
    }

    async fn inventories(&self) -> Result<(Inventory, Inventory)> {
        let sources: Vec<String> = self
            .spec
            .catalogs
            .iter()
            .map(|c| c.source.to_lowercase())
            .collect();
        let mut targets: Vec<String> = self
            .spec
            .catalogs
            .iter()
            .map(|c| c.target_name().to_lowercase())
            .collect();
        targets.extend(sources.iter().map(|c| self.spec.share_name(c)));
        let (primary, secondary, ledger) = tokio::join!(
            self.primary.inventory(&sources),
            self.secondary.inventory(&targets),
            self.store.load_ledger()
        );
        let (primary, mut secondary, ledger) = (primary?, secondary?, ledger?);
        // The ledger says which source version each secondary table's last clone read.
        for (name, table) in secondary.tables.iter_mut() {
            if table.cloned_source_version.is_some() {
                continue;
            }
            if let Some(record) = ledger.get(&name.to_string()) {
                if record.target_version.is_some() && record.target_version == table.version {
                    table.cloned_source_version = record.source_version;
                }
            }
        }
        Ok((primary, secondary))
    }

    async fn discover(
        &self,
        run: &str,
        generation: u64,
        mut response: Response,
    ) -> Result<Response> {
        let (primary, secondary) = self.inventories().await?;
        let plan = plan(self.spec, &primary, &secondary);
        response = response.with_changes(&plan.changes);
        let state = RunState {
            generation,
            plan,
            ..RunState::default()
        };
        self.store.save(run, &state).await?;
        response.plan_uri = Some(self.store.state_uri(run));
        Ok(response)
    }

    async fn run_stage(
        &self,
        stage: Stage,
        run: &str,
        generation: u64,
        mut response: Response,
    ) -> Result<Response> {
        let mut state = self.store.load(run).await?.ok_or_else(|| {
            Error::terminal(format!(
                "run {run} has no state: a run starts with discover"
            ))
        })?;
        if state.generation != generation {
            return Err(refused(crate::failover::Refusal::StaleGeneration {
                carried: state.generation,
                current: generation,
            }));
        }
        let indexes: Vec<usize> = (0..state.plan.changes.len())
            .filter(|i| state.plan.changes[*i].stage == stage)
            .collect();
        response = response.with_changes(
            &indexes
                .iter()
                .map(|i| state.plan.changes[*i].clone())
                .collect::<Vec<_>>(),
        );
        for &i in &indexes {
            let change = state.plan.changes[i].clone();
            if change.action.statement().is_some() || state.applied.contains(&i) {
                continue;
            }
            let side = match change.action.side() {
                Side::Primary => self.primary,
                Side::Secondary => self.secondary,
            };
            match side.apply(&change.action).await {
                Ok(()) => {}
                // Transient: the state machine retries the whole step; what is done stays done.
                Err(e) if e.is_retryable() => {
                    self.store.save(run, &state).await?;
                    return Err(e);
                }
                Err(e) => {
                    state
                        .failures
                        .insert(change.object.clone(), e.message.clone());
                }
            }
            state.applied.insert(i);
        }
        let done = self.advance_queue(run, stage, &indexes, &mut state).await?;
        self.store.save(run, &state).await?;
        response.ready = done;
        response.wait_seconds = if done { 0 } else { poll_interval(stage) };
        Ok(response)
    }

    /// Polls the stage's statements in flight, settles them, submits more. The state
    /// is saved right after submitting, so a crash loses no statement id (a lost id
    /// would be submitted twice on the retry).
    async fn advance_queue(
        &self,
        run: &str,
        stage: Stage,
        indexes: &[usize],
        state: &mut RunState,
    ) -> Result<bool> {
        let statements: Vec<usize> = indexes
            .iter()
            .copied()
            .filter(|i| state.plan.changes[*i].action.statement().is_some())
            .collect();
        if statements.is_empty() {
            return Ok(true);
        }
        let changes = state.plan.changes.clone();
        let mut queue = state
            .queues
            .remove(&stage)
            .unwrap_or_else(|| new_queue(&changes, &statements));
        let states = self.poll_in_flight(&queue).await;
        let step = queue.step(&states, self.spec.concurrency as usize);
        for key in step.submit {
            let Some((statement, schema)) = key
                .parse::<usize>()
                .ok()
                .and_then(|i| changes.get(i))
                .and_then(|c| c.action.statement())
            else {
                continue;
            };
            match self.secondary.submit(statement, schema).await {
                // Put it back: the next call submits it again.
                Err(e) if e.is_retryable() => queue.pending.push_front(key),
                submitted => queue.submitted(key, submitted.map_err(|e| e.message)),
            }
        }
        state.queues.insert(stage, queue.clone());
        self.store.save(run, state).await?;
        self.record_successes(&queue, &changes, state).await?;
        for (key, error) in &queue.failed {
            if let Some(change) = key.parse::<usize>().ok().and_then(|i| changes.get(i)) {
                state
                    .failures
                    .entry(change.object.clone())
                    .or_insert_with(|| error.clone());
            }
        }
        Ok(queue.pending.is_empty() && queue.in_flight.is_empty())
    }

    /// The states of the statements in flight. A poll that fails transiently leaves its
    /// statement in flight for the next call; one that fails for good (the statement
    /// is gone: Databricks keeps them for hours, not for ever) fails that statement only.
    async fn poll_in_flight(&self, queue: &CloneQueue) -> BTreeMap<String, StatementState> {
        let mut states = BTreeMap::new();
        for id in queue.in_flight.values() {
            match self.secondary.poll(id).await {
                Ok(s) => {
                    states.insert(id.clone(), s);
                }
                Err(e) if e.is_retryable() => {}
                Err(e) => {
                    states.insert(id.clone(), StatementState::Failed { error: e.message });
                }
            }
        }
        states
    }

    /// Writes the clone ledger for the clones that succeeded since the last call, and
    /// refreshes the replica's version after a comment or tag statement on a cloned
    /// table (a comment is a Delta commit: without the refresh, the next run would see
    /// a version the ledger does not know and clone the table again).
    async fn record_successes(
        &self,
        queue: &CloneQueue,
        changes: &[crate::plan::Change],
        state: &mut RunState,
    ) -> Result<()> {
        let newly_done: Vec<String> = queue
            .succeeded
            .iter()
            .filter(|k| !state.recorded.contains(*k))
            .cloned()
            .collect();
        if newly_done.is_empty() {
            return Ok(());
        }
        let mut ledger = self.store.load_ledger().await?;
        let mut changed = false;
        for key in newly_done {
            let Some(change) = key.parse::<usize>().ok().and_then(|i| changes.get(i)) else {
                continue;
            };
            match &change.action {
                crate::plan::Action::Clone {
                    target,
                    source_version,
                    ..
                } => {
                    let target_version = self.secondary.table_version(target).await?;
                    ledger.insert(
                        target.clone(),
                        CloneRecord {
                            source_version: *source_version,
                            target_version,
                        },
                    );
                    changed = true;
                }
                _ if matches!(change.kind.as_str(), "comment" | "tags") => {
                    let table: String = change
                        .object
                        .split('.')
                        .take(3)
                        .collect::<Vec<_>>()
                        .join(".");
                    if let Some(record) = ledger.get_mut(&table) {
                        record.target_version = self.secondary.table_version(&table).await?;
                        changed = true;
                    }
                }
                _ => {}
            }
            state.recorded.insert(key);
        }
        if changed {
            self.store.save_ledger(&ledger).await?;
        }
        Ok(())
    }

    async fn report(&self, mode: Mode, run: &str, mut response: Response) -> Result<Response> {
        let mut failures = match mode {
            Mode::Apply => self
                .store
                .load(run)
                .await?
                .map(|s| s.failures)
                .unwrap_or_default(),
            _ => BTreeMap::new(),
        };
        let (primary, secondary) = self.inventories().await?;
        let planned = plan(self.spec, &primary, &secondary);
        // What cannot be planned (a location outside every mapping, a view in a cycle,
        // a missing source catalog) is failed too: a report is clean only when nothing is.
        for skip in planned.skipped.iter().filter(|s| s.failed) {
            failures
                .entry(skip.object.clone())
                .or_insert_with(|| skip.reason.clone());
        }
        let report = reconcile(self.spec, &primary, &secondary, &failures, self.now.1);
        response.report_uri = Some(self.store.put_report(run, &report).await?);
        // The execution's output comes from this last step: it names the run's plan too.
        response.plan_uri = Some(self.store.state_uri(run));
        if mode != Mode::Apply {
            response = response.with_changes(&planned.changes);
        }
        response.summary = Some(report.summary);
        Ok(response)
    }
}

/// A stage's queue, keyed by change index; a change waits for the changes of this
/// stage it names in `after`.
fn new_queue(changes: &[crate::plan::Change], statements: &[usize]) -> CloneQueue {
    let key_of: BTreeMap<&str, usize> = statements
        .iter()
        .map(|i| (changes[*i].object.as_str(), *i))
        .collect();
    let after = statements
        .iter()
        .map(|i| {
            let deps = changes[*i]
                .after
                .iter()
                .filter_map(|o| key_of.get(o.as_str()))
                .map(|d| d.to_string())
                .collect();
            (i.to_string(), deps)
        })
        .collect();
    CloneQueue::ordered(statements.iter().map(|i| i.to_string()), after)
}
