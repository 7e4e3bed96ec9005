//! Releasing the Elastic IPs of sleeping gateways, when asked to.
//!
//! Only EIPs opted in to the schedule (tagged `lakeops:sleep-schedule=<name>`,
//! as every EIP network-sleep allocates is) are disassociated or released;
//! the IAM policy allows nothing else. Another EIP is kept, with a warning
//! that says how to opt it in: tagging it from here would need a `CreateTags`
//! on any EIP, which would let the function release any EIP after all.

use crate::handler::NetworkSleep;
use crate::model::{Gateway, GatewayState, SCHEDULE_TAG};
use crate::network::Network;
use crate::record::{Phase, RestoreRecord};
use crate::store::RecordStore;
use crate::workspaces::WorkspaceApi;
use lakeops_shared::Error;
use std::collections::BTreeMap;

impl<N: Network, S: RecordStore, W: WorkspaceApi> NetworkSleep<N, S, W> {
    /// Release the EIPs of sleeping slots whose gateways are deleted (an EIP
    /// cannot be released while a deleting gateway still holds it). One look,
    /// no waiting: a gateway deleted just now (`just_deleted`) is usually still
    /// `deleting`; its EIP goes to `waiting_for`, and a later sleep run, made
    /// by the network-sleep state machine after a while, releases it.
    pub(crate) async fn release_eips(
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
                if !address.is_opted_in(&self.settings.scope.schedule) {
                    eips.kept.push(format!(
                        "EIP {allocation_id} kept: it is not tagged {SCHEDULE_TAG}={} (network-sleep releases \
                         only the EIPs it allocated or that are tagged so; tag it to have it released)",
                        self.settings.scope.schedule
                    ));
                    continue;
                }
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
}

/// What a sleep did with the EIPs it was asked to release.
#[derive(Debug, Default)]
pub struct EipRelease {
    pub released: Vec<String>,
    /// `<slot>: <reason>` of the EIPs whose gateway is still deleting.
    pub waiting_for: Vec<String>,
    /// EIPs kept for a reason that waiting does not fix (warnings).
    pub kept: Vec<String>,
}

/// Whether a sleeping gateway's EIP waits for its deletion to finish: it is
/// `deleting`, or it was deleted by this very run and DescribeNatGateways,
/// eventually consistent, does not say so yet. A gateway that is live for any
/// other reason (its deletion failed) or `failed` is no matter of waiting.
pub(crate) fn still_deleting(
    state: GatewayState,
    gateway_id: &str,
    just_deleted: &[String],
) -> bool {
    state == GatewayState::Deleting
        || (state.is_live() && just_deleted.iter().any(|id| id == gateway_id))
}
