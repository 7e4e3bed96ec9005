//! The events the function takes, and the report it returns.

use crate::model::RouteRef;
use crate::plan::{RouteAction, Skipped};
use crate::savings::Savings;
use lakeops_shared::Error;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Sleep,
    Wake,
    Status,
}

/// `{"action": "sleep" | "wake" | "status", "force"?: bool, "release_eips"?: bool}`.
///
/// The action is required and is the only thing that decides what happens:
/// the time of day never turns a wake or a status into a sleep.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub action: Action,
    /// Sleep even though Databricks work is running (or cannot be checked).
    #[serde(default)]
    pub force: bool,
    /// Release the EIPs on sleep (overrides `RELEASE_EIPS`).
    #[serde(default)]
    pub release_eips: Option<bool>,
    /// Set by the network-sleep state machine on every pass after its first:
    /// the start of its first pass (RFC 3339), as that pass reported it. Such a pass only finishes what its
    /// execution started, so that a sleep and a wake that overlap (one started
    /// by hand) cannot undo each other: a sleep no longer checks Databricks nor
    /// deletes gateways other than those its own first pass failed to delete;
    /// a wake leaves alone the slots put to sleep after it started.
    #[serde(default)]
    pub continuation_of: Option<String>,
}

impl Request {
    pub fn parse(event: serde_json::Value) -> Result<Self, Error> {
        let request: Request = serde_json::from_value(event)
            .map_err(|e| Error::invalid_input(format!("event: {e}")))?;
        if request.action != Action::Sleep && (request.force || request.release_eips.is_some()) {
            return Err(Error::invalid_input(
                "event: force and release_eips apply to the sleep action only",
            ));
        }
        if let Some(started) = &request.continuation_of {
            if crate::clock::parse_rfc3339(started).is_none() {
                return Err(Error::invalid_input(format!(
                    "event: continuation_of must be an RFC 3339 time (the execution's start), got {started:?}"
                )));
            }
        }
        Ok(request)
    }

    /// The start of the execution this pass continues, as epoch seconds.
    pub fn continues_since(&self) -> Option<i64> {
        self.continuation_of
            .as_deref()
            .and_then(crate::clock::parse_rfc3339)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Sleep: gateways were deleted (or, on a later run, the EIPs that an
    /// earlier run kept were released).
    Slept,
    /// Sleep with `release_eips`: the gateways are deleted, but some are still
    /// `deleting` and hold their EIPs; see `waiting_for`. Not an error: run the
    /// sleep again after a while (the network-sleep state machine does) and it
    /// releases them.
    Releasing,
    /// Sleep: work is running; nothing was touched.
    Refused,
    /// Wake: every sleeping gateway is back with its routes.
    Woke,
    /// Wake: some gateways are still coming up (or their old gateway is still
    /// deleting); see `waiting_for`. Not an error: run the wake again after a
    /// while (the network-sleep state machine does) and it goes on from there.
    Waking,
    /// Some gateways could not be slept or woken; see `gateways`.
    Partial,
    /// Nothing was asleep (wake) or nothing was awake (sleep).
    NothingToDo,
    Status,
}

/// What happened to one gateway slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayReport {
    pub slot: String,
    /// The gateway that was put to sleep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<String>,
    /// The gateway that serves the slot after a wake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_gateway_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocation_id: Option<String>,
    /// deleted | created | adopted | failed | pending | awake | asleep
    /// (`pending`: not done yet, but waiting fixes it; a later wake goes on)
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes_recorded: Vec<RouteRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteAction>,
}

impl GatewayReport {
    pub fn new(slot: &str, result: &str) -> Self {
        Self {
            slot: slot.to_string(),
            gateway_id: None,
            new_gateway_id: None,
            allocation_id: None,
            result: result.to_string(),
            reason: None,
            routes_recorded: Vec::new(),
            routes: Vec::new(),
        }
    }

    /// Failed for good (until someone fixes the cause). `pending` is not a
    /// failure: gateways are pending for a minute or two on every wake.
    pub fn is_failure(&self) -> bool {
        self.result == "failed"
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub action: Action,
    pub outcome: Outcome,
    /// Sleep and wake: what a later pass of the same run passes as its
    /// `continuation_of` — the one this pass was given, or, on a first pass,
    /// the time it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation_of: Option<String>,
    pub vpc_id: String,
    pub schedule: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused_because: Vec<String>,
    /// Blockers that `force` overrode.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forced_past: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub terminated_clusters: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the outcome `waking` (wake) or `releasing` (sleep) waits for, one
    /// `<slot>: <reason>` each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
    /// Sleep: the allocation ids of the EIPs released by this run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub released_eips: Vec<String>,
    pub gateways: Vec<GatewayReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    pub gateways_asleep: usize,
    pub gateways_awake: usize,
    pub savings_this_month: Savings,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_action_is_required_and_typos_are_named() {
        assert!(
            Request::parse(json!({"action": "sleep", "force": true}))
                .unwrap()
                .force
        );
        assert_eq!(
            Request::parse(json!({"action": "wake"})).unwrap().action,
            Action::Wake
        );
        let error = Request::parse(json!({})).unwrap_err();
        assert_eq!(error.error_name(), "Lakeops.InvalidInput");
        assert!(error.message.contains("action"), "{}", error.message);
        assert!(Request::parse(json!({"action": "sleep", "forced": true}))
            .unwrap_err()
            .message
            .contains("forced"));
        assert!(Request::parse(json!({"action": "nap"}))
            .unwrap_err()
            .message
            .contains("nap"));
        assert!(Request::parse(json!({"action": "wake", "force": true})).is_err());
    }
}
