//! The three actions, over the network, the record store and the workspaces.

use crate::clock;
use crate::config::Settings;
use crate::event::{Action, GatewayReport, Outcome, Report, Request};
use crate::model::{slot_of, Connectivity, Gateway, GatewayState, RESTORES_TAG, SLOT_TAG};
use crate::network::Network;
use crate::plan::{route_actions, sleep_targets, wake_step, RouteAction, WakeStep};
use crate::record::{record_for_sleep, Phase, RestoreRecord};
use crate::savings;
use crate::store::RecordStore;
use crate::workspaces::{assess, WorkspaceApi};
use lakeops_shared::telemetry::{Metrics, Unit};
use lakeops_shared::Error;
use std::collections::{BTreeMap, HashMap};

pub const FUNCTION_NAME: &str = "network-sleep";

pub struct NetworkSleep<N, S, W> {
    pub settings: Settings,
    pub network: N,
    pub store: S,
    pub workspaces: W,
}

/// The Databricks verdict before a sleep.
struct Verdict {
    blockers: Vec<String>,
    idle: Vec<(usize, String)>,
}

impl<N: Network, S: RecordStore, W: WorkspaceApi> NetworkSleep<N, S, W> {
    /// The Lambda entry point: parse, act, report, emit metrics.
    pub async fn handle(&self, event: serde_json::Value) -> Result<serde_json::Value, Error> {
        let request = Request::parse(event)?;
        let pass_started = clock::now_epoch();
        let mut report = match request.action {
            Action::Sleep => self.sleep(&request).await?,
            Action::Wake => self.wake(request.continues_since()).await?,
            Action::Status => self.status().await?,
        };
        if request.action != Action::Status {
            report.continuation_of = Some(
                request
                    .continuation_of
                    .clone()
                    .unwrap_or_else(|| clock::rfc3339(pass_started)),
            );
        }
        self.metrics(&report).emit();
        tracing::info!(action = ?report.action, outcome = ?report.outcome, asleep = report.gateways_asleep, awake = report.gateways_awake, "done");
        serde_json::to_value(&report)
            .map_err(|e| Error::terminal(format!("encoding the report: {e}")))
    }

    fn metrics(&self, report: &Report) -> Metrics {
        let mut metrics = Metrics::new(FUNCTION_NAME);
        if let Some(environment) = &self.settings.environment {
            metrics = metrics.dimension("Environment", environment);
        }
        metrics.put("GatewaysAsleep", report.gateways_asleep as f64, Unit::Count);
        metrics.put("GatewaysAwake", report.gateways_awake as f64, Unit::Count);
        metrics.put(
            "HoursSavedThisMonth",
            report.savings_this_month.hours,
            Unit::None,
        );
        metrics.put(
            "DollarsSavedThisMonth",
            report.savings_this_month.dollars,
            Unit::None,
        );
        let failures = report.gateways.iter().filter(|g| g.is_failure()).count();
        metrics.put("GatewayFailures", failures as f64, Unit::Count);
        if report.outcome == Outcome::Refused {
            metrics.put("SleepRefused", 1.0, Unit::Count);
        }
        metrics.property("action", serde_json::json!(report.action));
        metrics.property("outcome", serde_json::json!(report.outcome));
        metrics
    }

    fn report(
        &self,
        action: Action,
        outcome: Outcome,
        records: &[RestoreRecord],
        gateways: &[Gateway],
        now: i64,
    ) -> Report {
        let scope = &self.settings.scope;
        Report {
            action,
            outcome,
            continuation_of: None,
            vpc_id: scope.vpc_id.clone(),
            schedule: scope.schedule.clone(),
            refused_because: Vec::new(),
            forced_past: Vec::new(),
            terminated_clusters: Vec::new(),
            warnings: Vec::new(),
            waiting_for: Vec::new(),
            released_eips: Vec::new(),
            gateways: Vec::new(),
            skipped: Vec::new(),
            gateways_asleep: records.iter().filter(|r| r.phase == Phase::Asleep).count(),
            gateways_awake: gateways
                .iter()
                .filter(|g| scope.manages(g) && g.state.is_live())
                .count(),
            savings_this_month: savings::this_month(records, now, self.settings.prices),
        }
    }

    async fn check_workspaces(&self) -> Verdict {
        let now_ms = clock::now_epoch_ms();
        let mut verdict = Verdict {
            blockers: Vec::new(),
            idle: Vec::new(),
        };
        for (i, workspace) in self.settings.workspaces.iter().enumerate() {
            match self.workspaces.inspect(workspace).await {
                Ok((clusters, runs)) => {
                    let assessment = assess(
                        &workspace.name,
                        &clusters,
                        &runs,
                        now_ms,
                        self.settings.idle_minutes,
                    );
                    verdict.blockers.extend(assessment.blockers);
                    verdict
                        .idle
                        .extend(assessment.idle_clusters.into_iter().map(|c| (i, c)));
                }
                Err(error) => verdict.blockers.push(format!(
                    "workspace {} could not be checked: {error}",
                    workspace.name
                )),
            }
        }
        verdict
    }

    pub async fn sleep(&self, request: &Request) -> Result<Report, Error> {
        let scope = &self.settings.scope;
        let continues_since = request.continues_since();
        // A continuation only finishes its execution's sleep: the Databricks
        // verdict was taken by the first pass.
        let verdict = match continues_since {
            Some(_) => Verdict {
                blockers: Vec::new(),
                idle: Vec::new(),
            },
            None => self.check_workspaces().await,
        };
        if !verdict.blockers.is_empty() && !request.force {
            let now = clock::now_epoch();
            let records = self.store.list(&scope.vpc_id, &scope.schedule).await?;
            let gateways = self.network.gateways(&scope.vpc_id).await?;
            let mut report = self.report(Action::Sleep, Outcome::Refused, &records, &gateways, now);
            report.refused_because = verdict.blockers;
            tracing::warn!(reasons = ?report.refused_because, "sleep refused: work is running");
            return Ok(report);
        }
        let mut terminated = Vec::new();
        let mut warnings = Vec::new();
        for (i, cluster_id) in &verdict.idle {
            let workspace = &self.settings.workspaces[*i];
            match self.workspaces.terminate(workspace, cluster_id).await {
                Ok(()) => terminated.push(format!("{}/{cluster_id}", workspace.name)),
                Err(error) => warnings.push(format!(
                    "terminating idle cluster {cluster_id} in {}: {error}",
                    workspace.name
                )),
            }
        }

        let gateways = self.network.gateways(&scope.vpc_id).await?;
        let (mut targets, skipped) = sleep_targets(scope, &gateways);
        let mut records: BTreeMap<String, RestoreRecord> = self
            .store
            .list(&scope.vpc_id, &scope.schedule)
            .await?
            .into_iter()
            .map(|r| (r.slot.clone(), r))
            .collect();
        if let Some(since) = continues_since {
            // Only the gateways this execution set out to delete and did not:
            // a gateway woken by hand since then stays up.
            targets.retain(|gateway| {
                records.get(&slot_of(gateway)).is_some_and(|record| {
                    record.asleep_gateway_id == gateway.id
                        && asleep_since(record).is_some_and(|from| from >= since)
                })
            });
        }
        let tables = if targets.is_empty() {
            Vec::new()
        } else {
            self.network.route_tables(&scope.vpc_id).await?
        };
        let mut reports = Vec::new();
        let mut deleted = Vec::new();
        for gateway in targets {
            let now = clock::now_epoch();
            let slot = slot_of(gateway);
            let record = record_for_sleep(
                &scope.vpc_id,
                &scope.schedule,
                &slot,
                gateway,
                &tables,
                records.get(&slot),
                now,
            );
            // Recorded before anything is deleted: a crash from here on leaves
            // a record that a wake restores from.
            self.store
                .put(&record)
                .await
                .map_err(|e| e.context(format!("recording {} before deleting it", gateway.id)))?;
            let mut report = GatewayReport::new(&slot, "deleted");
            report.gateway_id = Some(gateway.id.clone());
            report.allocation_id = gateway.allocation_id.clone();
            report.routes_recorded = record.routes.iter().cloned().collect();
            match self.network.delete_gateway(&gateway.id).await {
                Ok(()) => {
                    tracing::info!(gateway = %gateway.id, slot = %slot, routes = record.routes.len(), "gateway deleted");
                    deleted.push(gateway.id.clone());
                }
                Err(error) => {
                    report.result = "failed".into();
                    report.reason = Some(error.to_string());
                }
            }
            records.insert(slot, record);
            reports.push(report);
        }

        let mut eips = EipRelease::default();
        if request.release_eips.unwrap_or(self.settings.release_eips) {
            self.release_eips(&mut records, &deleted, &mut eips).await?;
        }
        warnings.append(&mut eips.kept);

        let now = clock::now_epoch();
        let records: Vec<RestoreRecord> = records.into_values().collect();
        let gateways = self.network.gateways(&scope.vpc_id).await?;
        let outcome = sleep_outcome(&reports, &eips);
        let mut report = self.report(Action::Sleep, outcome, &records, &gateways, now);
        if request.force {
            report.forced_past = verdict.blockers;
        }
        report.terminated_clusters = terminated;
        report.warnings = warnings;
        report.waiting_for = eips.waiting_for;
        report.released_eips = eips.released;
        report.gateways = reports;
        report.skipped = skipped;
        Ok(report)
    }

    /// Release the EIPs of sleeping slots whose gateways are deleted (an EIP
    /// cannot be released while a deleting gateway still holds it). One look,
    /// no waiting: a gateway deleted just now (`just_deleted`) is usually still
    /// `deleting`; its EIP goes to `waiting_for`, and a later sleep run, made
    /// by the network-sleep state machine after a while, releases it.
    async fn release_eips(
        &self,
        records: &mut BTreeMap<String, RestoreRecord>,
        just_deleted: &[String],
        eips: &mut EipRelease,
    ) -> Result<(), Error> {
        let waiting_for: Vec<String> = records
            .values()
            .filter(|r| {
                r.phase == Phase::Asleep && !r.eip_released && r.gateway.allocation_id.is_some()
            })
            .map(|r| r.asleep_gateway_id.clone())
            .collect();
        if waiting_for.is_empty() {
            return Ok(());
        }
        let gateways: Vec<Gateway> = self
            .network
            .gateways(&self.settings.scope.vpc_id)
            .await?
            .into_iter()
            .filter(|g| waiting_for.contains(&g.id))
            .collect();
        for record in records
            .values_mut()
            .filter(|r| r.phase == Phase::Asleep && !r.eip_released)
        {
            let Some(allocation_id) = record.gateway.allocation_id.clone() else {
                continue;
            };
            let state = gateways
                .iter()
                .find(|g| g.id == record.asleep_gateway_id)
                .map(|g| g.state);
            match state {
                None | Some(GatewayState::Deleted) => {}
                Some(state) if still_deleting(state, &record.asleep_gateway_id, just_deleted) => {
                    eips.waiting_for.push(format!(
                        "{}: EIP {allocation_id} is released once {} is deleted (now {})",
                        record.slot,
                        record.asleep_gateway_id,
                        state.as_str()
                    ));
                    continue;
                }
                Some(state) => {
                    eips.kept.push(format!(
                        "EIP {allocation_id} kept: {} is {}, not deleted",
                        record.asleep_gateway_id,
                        state.as_str()
                    ));
                    continue;
                }
            }
            if let Some(address) = self.network.address(&allocation_id).await? {
                if let (Some(association), Some(eni)) =
                    (&address.association_id, &address.network_interface_id)
                {
                    if Some(eni) != record.asleep_network_interface_id.as_ref() {
                        eips.kept.push(format!("EIP {allocation_id} kept: it is associated with {eni}, not the sleeping gateway"));
                        continue;
                    }
                    self.network.disassociate_address(association).await?;
                }
                self.network.release_address(&allocation_id).await?;
            }
            record.eip_released = true;
            if let Some(open) = record.sleeps.iter_mut().rev().find(|i| i.to.is_none()) {
                open.eip_released = true;
            }
            self.store.put(record).await?;
            tracing::info!(allocation = %allocation_id, slot = %record.slot, "EIP released");
            eips.released.push(allocation_id);
        }
        Ok(())
    }

    /// One pass of the wake, never waiting: create the missing gateways, take
    /// the ones that exist, re-point the routes of those that are available,
    /// and report `waking` while any is still pending. Every step is
    /// idempotent (client tokens, `lakeops:restores` tags, the records), so
    /// the next pass, run after a while by the network-sleep state machine,
    /// goes on where this one stopped.
    /// One wake pass. `continues_since`: the start of the execution this pass
    /// continues; slots put to sleep after it (by a sleep started by hand
    /// meanwhile) are left asleep.
    pub async fn wake(&self, continues_since: Option<i64>) -> Result<Report, Error> {
        let scope = &self.settings.scope;
        let records = self.store.list(&scope.vpc_id, &scope.schedule).await?;
        let to_wake = |record: &&RestoreRecord| {
            record.phase == Phase::Asleep
                && continues_since
                    .is_none_or(|since| asleep_since(record).is_some_and(|from| from < since))
        };
        let gateways = self.network.gateways(&scope.vpc_id).await?;
        let mut reports: Vec<GatewayReport> = Vec::new();
        let mut waiting_for: Vec<String> = Vec::new();
        // (record, gateway id) of the gateways that serve a slot from now on.
        let mut coming_up: Vec<(RestoreRecord, String)> = Vec::new();
        // What CreateNatGateway answered, in case DescribeNatGateways does
        // not list a new gateway yet (EC2 is eventually consistent).
        let mut created: Vec<Gateway> = Vec::new();

        for record in records.iter().filter(to_wake) {
            let mut record = record.clone();
            let mut report = GatewayReport::new(&record.slot, "created");
            report.gateway_id = Some(record.asleep_gateway_id.clone());
            report.allocation_id = record.gateway.allocation_id.clone();
            let address = match (
                &record.gateway.connectivity_type,
                &record.gateway.allocation_id,
                record.eip_released,
            ) {
                (Connectivity::Public, Some(allocation), false) => {
                    self.network.address(allocation).await?
                }
                _ => None,
            };
            match wake_step(&record, &gateways, address.as_ref()) {
                WakeStep::AlreadyAwake => continue,
                WakeStep::Adopt { gateway_id } => {
                    report.result = "adopted".into();
                    report.new_gateway_id = Some(gateway_id.clone());
                    coming_up.push((record, gateway_id));
                }
                WakeStep::Blocked { reason, retryable } => {
                    if retryable {
                        report.result = "pending".into();
                        waiting_for.push(format!("{}: {reason}", record.slot));
                        tracing::info!(slot = %record.slot, reason = %reason, "gateway cannot be created yet");
                    } else {
                        report.result = "failed".into();
                        tracing::error!(slot = %record.slot, reason = %reason, "cannot wake gateway");
                    }
                    report.reason = Some(reason);
                }
                WakeStep::Create {
                    client_token,
                    disassociate,
                    allocate_eip,
                } => {
                    let outcome = self
                        .create(
                            &mut record,
                            &client_token,
                            disassociate.as_deref(),
                            allocate_eip,
                        )
                        .await;
                    match outcome {
                        Ok(gateway) => {
                            tracing::info!(gateway = %gateway.id, slot = %record.slot, "gateway created");
                            report.new_gateway_id = Some(gateway.id.clone());
                            coming_up.push((record.clone(), gateway.id.clone()));
                            created.push(gateway);
                        }
                        Err(error) if error.is_retryable() => {
                            // Throttled or a passing fault: the next pass creates it.
                            tracing::warn!(slot = %record.slot, error = %error, "gateway re-creation failed; the next pass retries");
                            report.result = "pending".into();
                            waiting_for.push(format!("{}: {error}", record.slot));
                            report.reason = Some(error.to_string());
                        }
                        Err(error) => {
                            tracing::error!(slot = %record.slot, error = %error, "gateway re-creation failed");
                            report.result = "failed".into();
                            report.reason = Some(error.to_string());
                        }
                    }
                    report.allocation_id = record.gateway.allocation_id.clone();
                }
            }
            reports.push(report);
        }

        // One look at the gateways coming up: NAT gateways take a minute or
        // two, and the routes can only point at an available one.
        let mut observed = if coming_up.is_empty() {
            Vec::new()
        } else {
            self.network.gateways(&scope.vpc_id).await?
        };
        for gateway in created {
            if !observed.iter().any(|g| g.id == gateway.id) {
                observed.push(gateway);
            }
        }
        let tables = if coming_up
            .iter()
            .any(|(_, id)| state_of(&observed, id) == Some(GatewayState::Available))
        {
            self.network.route_tables(&scope.vpc_id).await?
        } else {
            Vec::new()
        };
        let mut updated: HashMap<String, RestoreRecord> = HashMap::new();
        for (record, gateway_id) in coming_up {
            let report = reports
                .iter_mut()
                .find(|r| r.slot == record.slot)
                .expect("every gateway coming up has a report");
            let gateway = observed.iter().find(|g| g.id == gateway_id);
            match gateway.map(|g| g.state) {
                Some(GatewayState::Available) => {}
                Some(GatewayState::Pending) => {
                    report.result = "pending".into();
                    report.reason = Some(format!("{gateway_id} is pending"));
                    waiting_for.push(format!("{}: {gateway_id} is pending", record.slot));
                    continue;
                }
                other => {
                    let failure = gateway
                        .and_then(|g| g.failure.clone())
                        .unwrap_or_else(|| "no failure message".into());
                    report.result = "failed".into();
                    report.reason = Some(format!(
                        "{gateway_id} is {}: {failure}",
                        other.map(GatewayState::as_str).unwrap_or("gone")
                    ));
                    tracing::error!(slot = %record.slot, gateway = %gateway_id, reason = ?report.reason, "gateway did not become available");
                    continue;
                }
            }
            let actions = route_actions(&record, &gateway_id, &tables);
            let mut route_errors = Vec::new();
            for action in &actions {
                let result = match action {
                    RouteAction::Replace { route } => {
                        self.network.replace_route(route, &gateway_id).await
                    }
                    RouteAction::Create { route } => {
                        self.network.create_route(route, &gateway_id).await
                    }
                    RouteAction::AlreadyDone { .. } => Ok(()),
                    RouteAction::LeftAlone { route, reason } => {
                        tracing::warn!(table = %route.route_table_id, destination = %route.destination, reason = %reason, "route left alone");
                        Ok(())
                    }
                };
                if let Err(error) = result {
                    route_errors.push(error);
                }
            }
            report.routes = actions;
            if route_errors.is_empty() {
                let woken = record.woken(&gateway_id, clock::now_epoch());
                self.store.put(&woken).await?;
                updated.insert(woken.slot.clone(), woken);
                continue;
            }
            // The record stays asleep, so the next pass re-points the rest.
            let reason = route_errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ");
            if route_errors.iter().all(Error::is_retryable) {
                report.result = "pending".into();
                waiting_for.push(format!("{}: routes: {reason}", record.slot));
            } else {
                report.result = "failed".into();
            }
            report.reason = Some(reason);
        }

        let now = clock::now_epoch();
        let records: Vec<RestoreRecord> = records
            .into_iter()
            .map(|r| updated.remove(&r.slot).unwrap_or(r))
            .collect();
        let gateways = self.network.gateways(&scope.vpc_id).await?;
        let report = self.report(
            Action::Wake,
            wake_outcome(&reports, &waiting_for),
            &records,
            &gateways,
            now,
        );
        Ok(Report {
            gateways: reports,
            waiting_for,
            ..report
        })
    }

    /// Free or allocate the EIP as planned, then create the gateway.
    async fn create(
        &self,
        record: &mut RestoreRecord,
        client_token: &str,
        disassociate: Option<&str>,
        allocate_eip: bool,
    ) -> Result<Gateway, Error> {
        if let Some(association) = disassociate {
            self.network.disassociate_address(association).await?;
        }
        if allocate_eip {
            // A re-run finds the EIP that an interrupted run allocated.
            let existing = self
                .network
                .addresses_tagged(SLOT_TAG, &record.slot)
                .await?;
            let allocation_id = match existing.into_iter().find(|a| a.association_id.is_none()) {
                Some(free) => free.allocation_id,
                None => {
                    let tags: BTreeMap<String, String> =
                        [(SLOT_TAG.to_string(), record.slot.clone())]
                            .into_iter()
                            .collect();
                    self.network.allocate_address(&tags).await?
                }
            };
            record.gateway.allocation_id = Some(allocation_id);
            record.eip_released = false;
            record.updated_at = clock::now_epoch();
            self.store.put(record).await?;
        }
        let mut tags = record.gateway.tags.clone();
        tags.insert(SLOT_TAG.to_string(), record.slot.clone());
        tags.insert(RESTORES_TAG.to_string(), record.asleep_gateway_id.clone());
        let allocation = match record.gateway.connectivity_type {
            Connectivity::Public => record.gateway.allocation_id.as_deref(),
            Connectivity::Private => None,
        };
        self.network
            .create_gateway(&record.gateway, allocation, client_token, &tags)
            .await
    }

    pub async fn status(&self) -> Result<Report, Error> {
        let scope = &self.settings.scope;
        let now = clock::now_epoch();
        let records = self.store.list(&scope.vpc_id, &scope.schedule).await?;
        let gateways = self.network.gateways(&scope.vpc_id).await?;
        let mut report = self.report(Action::Status, Outcome::Status, &records, &gateways, now);
        for record in records.iter().filter(|r| r.phase == Phase::Asleep) {
            let mut entry = GatewayReport::new(&record.slot, "asleep");
            entry.gateway_id = Some(record.asleep_gateway_id.clone());
            entry.allocation_id = record.gateway.allocation_id.clone();
            entry.routes_recorded = record.routes.iter().cloned().collect();
            entry.reason = record
                .open_interval()
                .map(|i| format!("asleep since {}", clock::rfc3339(i.from)));
            report.gateways.push(entry);
        }
        for gateway in gateways
            .iter()
            .filter(|g| scope.manages(g) && g.state.is_live())
        {
            let mut entry = GatewayReport::new(&slot_of(gateway), "awake");
            entry.new_gateway_id = Some(gateway.id.clone());
            entry.allocation_id = gateway.allocation_id.clone();
            entry.reason = Some(format!("state {}", gateway.state.as_str()));
            report.gateways.push(entry);
        }
        Ok(report)
    }
}

/// What a sleep did with the EIPs it was asked to release.
#[derive(Debug, Default)]
struct EipRelease {
    released: Vec<String>,
    /// `<slot>: <reason>` of the EIPs whose gateway is still deleting.
    waiting_for: Vec<String>,
    /// EIPs kept for a reason that waiting does not fix (warnings).
    kept: Vec<String>,
}

/// Whether a sleeping gateway's EIP waits for its deletion to finish: it is
/// `deleting`, or it was deleted by this very run and DescribeNatGateways,
/// eventually consistent, does not say so yet. A gateway that is live for any
/// other reason (its deletion failed) or `failed` is no matter of waiting.
fn still_deleting(state: GatewayState, gateway_id: &str, just_deleted: &[String]) -> bool {
    state == GatewayState::Deleting
        || (state.is_live() && just_deleted.iter().any(|id| id == gateway_id))
}

/// The outcome of one sleep run: `releasing` while an EIP it was asked to
/// release waits for its gateway to be deleted (even when another gateway
/// failed: the failure is reported by the run that has nothing left to wait
/// for, as the failed gateway is a target again), then `partial` if a gateway
/// could not be deleted, `slept` if this run deleted gateways or released EIPs,
/// else `nothing_to_do`.
fn sleep_outcome(reports: &[GatewayReport], eips: &EipRelease) -> Outcome {
    if !eips.waiting_for.is_empty() {
        Outcome::Releasing
    } else if reports.iter().any(GatewayReport::is_failure) {
        Outcome::Partial
    } else if reports.is_empty() && eips.released.is_empty() {
        Outcome::NothingToDo
    } else {
        Outcome::Slept
    }
}

/// When the slot's current sleep began; `None` while it is awake.
fn asleep_since(record: &RestoreRecord) -> Option<i64> {
    if record.phase != Phase::Asleep {
        return None;
    }
    record
        .sleeps
        .iter()
        .rev()
        .find(|interval| interval.to.is_none())
        .map(|interval| interval.from)
}

fn state_of(gateways: &[Gateway], id: &str) -> Option<GatewayState> {
    gateways.iter().find(|g| g.id == id).map(|g| g.state)
}

/// The outcome of one wake pass: still `waking` while anything waits (even
/// when another slot failed for good: the failure is reported once the rest
/// is done), then `partial` if a slot failed, else `woke`.
fn wake_outcome(reports: &[GatewayReport], waiting_for: &[String]) -> Outcome {
    if !waiting_for.is_empty() {
        Outcome::Waking
    } else if reports.is_empty() {
        Outcome::NothingToDo
    } else if reports.iter().any(GatewayReport::is_failure) {
        Outcome::Partial
    } else {
        Outcome::Woke
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{FakeNetwork, FakeStore, FakeWorkspaces};
    use crate::model::SCHEDULE_TAG;
    use crate::plan::Scope;
    use crate::savings::Prices;
    use crate::workspaces::{Cluster, Run, WorkspaceRef};
    use serde_json::json;

    fn app() -> NetworkSleep<FakeNetwork, FakeStore, FakeWorkspaces> {
        let network = FakeNetwork::default();
        for subnet in ["subnet-a", "subnet-b", "subnet-c"] {
            network.add_gateway(subnet, &[(SCHEDULE_TAG, "nightly"), ("Name", subnet)]);
        }
        network.add_gateway("subnet-a", &[("Name", "shared")]);
        NetworkSleep {
            settings: Settings {
                scope: Scope {
                    vpc_id: "vpc-1".into(),
                    schedule: "nightly".into(),
                },
                state_bucket: "b".into(),
                state_prefix: "network-sleep/".into(),
                workspaces: vec![WorkspaceRef {
                    name: "dev".into(),
                    secret_arn: "arn:secret".into(),
                    workspace_url: None,
                }],
                idle_minutes: 60,
                prices: Prices::default(),
                release_eips: false,
                environment: Some("test".into()),
            },
            network,
            store: FakeStore::default(),
            workspaces: FakeWorkspaces::default(),
        }
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
}
