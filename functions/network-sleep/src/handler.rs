//! The three actions, over the network, the record store and the workspaces.

use crate::clock;
use crate::config::Settings;
use crate::eips::EipRelease;
use crate::event::{Action, GatewayReport, Outcome, Report, Request};
use crate::model::{
    slot_of, Connectivity, Gateway, GatewayState, RESTORES_TAG, SCHEDULE_TAG, SLOT_TAG,
};
use crate::network::Network;
use crate::plan::{route_actions, sleep_targets, wake_step, RouteAction, WakeStep};
use crate::record::{record_for_sleep, Phase, RestoreRecord};
use crate::savings;
use crate::store::RecordStore;
use crate::verdict::{self, Verdict};
use crate::workspaces::WorkspaceApi;
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

    pub async fn sleep(&self, request: &Request) -> Result<Report, Error> {
        let scope = &self.settings.scope;
        let continues_since = request.continues_since();
        // A continuation only finishes its execution's sleep: the Databricks
        // verdict was taken by the first pass.
        let verdict = match continues_since {
            Some(_) => Verdict::default(),
            None => verdict::check(&self.workspaces, &self.settings, clock::now_epoch_ms()).await,
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
        let mut warnings = verdict.warnings;
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
                    // Tagged at creation (the IAM policy requires it): the
                    // schedule's tag lets a later sleep release it.
                    let tags: BTreeMap<String, String> = [
                        (SLOT_TAG.to_string(), record.slot.clone()),
                        (SCHEDULE_TAG.to_string(), record.schedule.clone()),
                    ]
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
#[path = "handler_tests.rs"]
mod tests;
