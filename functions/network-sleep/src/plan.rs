//! Pure decisions: which gateways a sleep takes down, what a wake does for
//! each sleeping slot, and which routes it re-points.

use crate::model::{
    Address, Connectivity, Gateway, GatewayState, RouteRef, RouteTable, RESTORES_TAG, SCHEDULE_TAG,
};
use crate::record::{Phase, RestoreRecord};
use serde::Serialize;

/// Which network this function manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub vpc_id: String,
    pub schedule: String,
}

impl Scope {
    /// Opted in: in the configured VPC, and tagged with the configured schedule.
    /// Nothing else is ever touched.
    pub fn manages(&self, gateway: &Gateway) -> bool {
        gateway.vpc_id == self.vpc_id && gateway.tag(SCHEDULE_TAG) == Some(self.schedule.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub gateway_id: String,
    pub reason: String,
}

/// The gateways a sleep deletes (managed and available), and the managed ones
/// it leaves with the reason. Deleted and deleting gateways are history.
pub fn sleep_targets<'a>(
    scope: &Scope,
    gateways: &'a [Gateway],
) -> (Vec<&'a Gateway>, Vec<Skipped>) {
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    for gateway in gateways.iter().filter(|g| scope.manages(g)) {
        match gateway.state {
            GatewayState::Available => targets.push(gateway),
            GatewayState::Pending => skipped.push(Skipped {
                gateway_id: gateway.id.clone(),
                reason: "still pending (being created); the next sleep takes it".into(),
            }),
            GatewayState::Failed => skipped.push(Skipped {
                gateway_id: gateway.id.clone(),
                reason: format!(
                    "failed: {}",
                    gateway.failure.as_deref().unwrap_or("no reason given")
                ),
            }),
            GatewayState::Unknown => skipped.push(Skipped {
                gateway_id: gateway.id.clone(),
                reason: "in an unknown state".into(),
            }),
            GatewayState::Deleting | GatewayState::Deleted => {}
        }
    }
    targets.sort_by(|a, b| a.id.cmp(&b.id));
    (targets, skipped)
}

/// What a wake does for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WakeStep {
    /// The record says awake: nothing to do.
    AlreadyAwake,
    /// A live gateway already serves the slot (the sleep never deleted it, or
    /// an earlier wake created it): use it, and fix the routes.
    Adopt { gateway_id: String },
    /// Create the gateway. First free the EIP from the deleted gateway's
    /// interface when it is still associated there, or allocate a new EIP
    /// when the sleep released it.
    Create {
        client_token: String,
        disassociate: Option<String>,
        allocate_eip: bool,
    },
    /// It cannot be woken now; `retryable` when waiting will fix it.
    Blocked { reason: String, retryable: bool },
}

/// Decide the wake of `record`, given the gateways of the VPC and the EIP
/// (`None` when the allocation does not exist).
pub fn wake_step(
    record: &RestoreRecord,
    gateways: &[Gateway],
    address: Option<&Address>,
) -> WakeStep {
    if record.phase == Phase::Awake {
        return WakeStep::AlreadyAwake;
    }
    let old = gateways.iter().find(|g| g.id == record.asleep_gateway_id);
    if let Some(old) = old.filter(|g| g.state.is_live()) {
        return WakeStep::Adopt {
            gateway_id: old.id.clone(),
        };
    }
    let restorations: Vec<&Gateway> = gateways
        .iter()
        .filter(|g| {
            g.vpc_id == record.vpc_id
                && g.tag(RESTORES_TAG) == Some(record.asleep_gateway_id.as_str())
        })
        .collect();
    let mut live: Vec<&&Gateway> = restorations.iter().filter(|g| g.state.is_live()).collect();
    // Prefer an available gateway, then the oldest, so re-runs agree.
    live.sort_by_key(|g| {
        (
            g.state != GatewayState::Available,
            g.created_at,
            g.id.clone(),
        )
    });
    if let Some(found) = live.first() {
        return WakeStep::Adopt {
            gateway_id: found.id.clone(),
        };
    }
    if old.is_some_and(|g| g.state == GatewayState::Deleting) {
        return WakeStep::Blocked {
            reason: format!(
                "{} is still deleting; its EIP is not free yet",
                record.asleep_gateway_id
            ),
            retryable: true,
        };
    }
    // Each failed attempt gets its own token: EC2 answers a repeated token
    // with the gateway it created the first time, failed or not.
    let client_token = format!(
        "lakeops-{}-{}",
        record.asleep_gateway_id,
        restorations.len()
    );
    if record.gateway.connectivity_type == Connectivity::Private {
        return WakeStep::Create {
            client_token,
            disassociate: None,
            allocate_eip: false,
        };
    }
    if record.eip_released {
        return WakeStep::Create {
            client_token,
            disassociate: None,
            allocate_eip: true,
        };
    }
    let allocation_id = record.gateway.allocation_id.as_deref().unwrap_or_default();
    let Some(address) = address else {
        return WakeStep::Blocked {
            reason: format!(
                "Elastic IP {allocation_id} no longer exists (released outside lakeops?)"
            ),
            retryable: false,
        };
    };
    let mut disassociate = None;
    if let Some(eni) = address.network_interface_id.as_deref() {
        // Interfaces of our own dead gateways may still hold the EIP for a
        // while after the deletion.
        let ours = record.asleep_network_interface_id.as_deref() == Some(eni)
            || restorations
                .iter()
                .chain(old.iter())
                .any(|g| !g.state.is_live() && g.network_interface_id.as_deref() == Some(eni));
        if !ours {
            return WakeStep::Blocked {
                reason: format!(
                    "Elastic IP {allocation_id} ({}) is associated with {eni}, which is not the sleeping gateway's; free it and wake again",
                    address.public_ip.as_deref().unwrap_or("?")
                ),
                retryable: false,
            };
        }
        if !address.is_opted_in(&record.schedule) {
            // The deleted gateway's interface lets go of the EIP by itself;
            // network-sleep may only disassociate EIPs opted in by the tag.
            return WakeStep::Blocked {
                reason: format!(
                    "Elastic IP {allocation_id} is still associated with {eni}, the interface of a deleted gateway; \
                     EC2 frees it shortly (network-sleep disassociates only EIPs tagged {SCHEDULE_TAG}={})",
                    record.schedule
                ),
                retryable: true,
            };
        }
        disassociate = address.association_id.clone();
    }
    WakeStep::Create {
        client_token,
        disassociate,
        allocate_eip: false,
    }
}

/// What a wake does to one recorded route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RouteAction {
    Replace { route: RouteRef },
    Create { route: RouteRef },
    AlreadyDone { route: RouteRef },
    LeftAlone { route: RouteRef, reason: String },
}

impl RouteAction {
    pub fn route(&self) -> &RouteRef {
        match self {
            RouteAction::Replace { route }
            | RouteAction::Create { route }
            | RouteAction::AlreadyDone { route }
            | RouteAction::LeftAlone { route, .. } => route,
        }
    }
}

/// Point each recorded route at `gateway_id`: replace it when it still points
/// at one of the slot's past gateways (a blackhole), create it when it is
/// gone, and leave it alone when someone pointed it elsewhere meanwhile.
pub fn route_actions(
    record: &RestoreRecord,
    gateway_id: &str,
    tables: &[RouteTable],
) -> Vec<RouteAction> {
    record
        .routes
        .iter()
        .map(|route| {
            let route = route.clone();
            let Some(table) = tables
                .iter()
                .find(|t| t.id == route.route_table_id && t.vpc_id == record.vpc_id)
            else {
                return RouteAction::LeftAlone {
                    reason: format!(
                        "route table {} no longer exists in {}",
                        route.route_table_id, record.vpc_id
                    ),
                    route,
                };
            };
            match table
                .routes
                .iter()
                .find(|r| r.destination == route.destination)
            {
                None => RouteAction::Create { route },
                Some(current) => match current.nat_gateway_id.as_deref() {
                    Some(nat) if nat == gateway_id => RouteAction::AlreadyDone { route },
                    Some(nat) if record.knows_gateway(nat) => RouteAction::Replace { route },
                    other => RouteAction::LeftAlone {
                        reason: format!(
                            "now points at {}; changed while asleep",
                            other
                                .or(current.other_target.as_deref())
                                .unwrap_or("another target")
                        ),
                        route,
                    },
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Destination, Route, SLOT_TAG};
    use crate::record::record_for_sleep;
    use crate::record::tests::{gateway, table};
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    const NOW: i64 = 1_795_264_488;

    fn scope() -> Scope {
        Scope {
            vpc_id: "vpc-1".into(),
            schedule: "nightly".into(),
        }
    }

    fn address(eni: Option<&str>) -> Address {
        Address {
            allocation_id: "eipalloc-1".into(),
            public_ip: Some("198.51.100.7".into()),
            association_id: eni.map(|_| "eipassoc-1".to_string()),
            network_interface_id: eni.map(String::from),
            tags: [(SCHEDULE_TAG.to_string(), "nightly".to_string())]
                .into_iter()
                .collect(),
        }
    }

    fn asleep_record() -> RestoreRecord {
        record_for_sleep(
            "vpc-1",
            "nightly",
            "s",
            &gateway("nat-1", 0),
            &[table("rtb-1", &[("0.0.0.0/0", Some("nat-1"))])],
            None,
            NOW,
        )
    }

    fn dead(mut g: Gateway) -> Gateway {
        g.state = GatewayState::Deleted;
        g
    }

    fn restoring(id: &str, state: GatewayState) -> Gateway {
        let mut g = gateway(id, NOW);
        g.state = state;
        g.tags.insert(RESTORES_TAG.into(), "nat-1".into());
        g
    }

    #[test]
    fn sleep_takes_only_available_opted_in_gateways_of_the_vpc() {
        let mut untagged = gateway("nat-u", 0);
        untagged.tags.clear();
        let mut other_vpc = gateway("nat-o", 0);
        other_vpc.vpc_id = "vpc-2".into();
        let mut other_schedule = gateway("nat-s", 0);
        other_schedule
            .tags
            .insert(SCHEDULE_TAG.into(), "weekend".into());
        let mut pending = gateway("nat-p", 0);
        pending.state = GatewayState::Pending;
        let gateways = vec![
            gateway("nat-b", 0),
            untagged,
            other_vpc,
            other_schedule,
            pending,
            dead(gateway("nat-d", 0)),
            gateway("nat-a", 0),
        ];
        let (targets, skipped) = sleep_targets(&scope(), &gateways);
        let ids: Vec<&str> = targets.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, vec!["nat-a", "nat-b"]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].gateway_id, "nat-p");
    }

    #[test]
    fn wake_creates_after_freeing_the_eip_left_on_the_dead_gateways_interface() {
        let record = asleep_record();
        let gateways = vec![dead(gateway("nat-1", 0))];
        let step = wake_step(&record, &gateways, Some(&address(Some("eni-nat-1"))));
        assert_eq!(
            step,
            WakeStep::Create {
                client_token: "lakeops-nat-1-0".into(),
                disassociate: Some("eipassoc-1".into()),
                allocate_eip: false
            }
        );
        assert!(matches!(
            wake_step(&record, &gateways, Some(&address(None))),
            WakeStep::Create {
                disassociate: None,
                ..
            }
        ));
    }

    #[test]
    fn wake_waits_for_ec2_to_free_an_eip_that_is_not_opted_in() {
        let record = asleep_record();
        let gateways = vec![dead(gateway("nat-1", 0))];
        for tags in [
            BTreeMap::new(),
            [(SCHEDULE_TAG.to_string(), "weekend".to_string())].into(),
        ] {
            let address = Address {
                tags,
                ..address(Some("eni-nat-1"))
            };
            match wake_step(&record, &gateways, Some(&address)) {
                WakeStep::Blocked { reason, retryable } => {
                    assert!(retryable, "EC2 frees it when the interface goes");
                    assert!(
                        reason.contains("lakeops:sleep-schedule=nightly"),
                        "{reason}"
                    );
                }
                other => panic!("never disassociates an EIP that is not opted in: {other:?}"),
            }
        }
    }

    #[test]
    fn wake_adopts_instead_of_creating_twice() {
        let record = asleep_record();
        let gateways = vec![
            dead(gateway("nat-1", 0)),
            restoring("nat-2", GatewayState::Pending),
        ];
        assert_eq!(
            wake_step(&record, &gateways, Some(&address(None))),
            WakeStep::Adopt {
                gateway_id: "nat-2".into()
            }
        );
        // The sleep crashed before deleting: the old gateway is still up.
        assert_eq!(
            wake_step(&record, &[gateway("nat-1", 0)], None),
            WakeStep::Adopt {
                gateway_id: "nat-1".into()
            }
        );
        let awake = record.woken("nat-2", NOW + 10);
        assert_eq!(wake_step(&awake, &[], None), WakeStep::AlreadyAwake);
    }

    #[test]
    fn a_failed_attempt_gets_a_new_token_and_frees_its_interface() {
        let record = asleep_record();
        let mut failed = restoring("nat-2", GatewayState::Failed);
        failed.network_interface_id = Some("eni-nat-2".into());
        let gateways = vec![dead(gateway("nat-1", 0)), failed];
        assert_eq!(
            wake_step(&record, &gateways, Some(&address(Some("eni-nat-2")))),
            WakeStep::Create {
                client_token: "lakeops-nat-1-1".into(),
                disassociate: Some("eipassoc-1".into()),
                allocate_eip: false
            }
        );
    }

    #[test]
    fn wake_is_blocked_when_the_eip_is_taken_or_gone_or_the_old_gateway_still_deletes() {
        let record = asleep_record();
        let gateways = vec![dead(gateway("nat-1", 0))];
        match wake_step(&record, &gateways, Some(&address(Some("eni-someone-else")))) {
            WakeStep::Blocked { reason, retryable } => {
                assert!(!retryable);
                assert!(
                    reason.contains("eni-someone-else") && reason.contains("eipalloc-1"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            wake_step(&record, &gateways, None),
            WakeStep::Blocked {
                retryable: false,
                ..
            }
        ));
        let mut deleting = gateway("nat-1", 0);
        deleting.state = GatewayState::Deleting;
        assert!(matches!(
            wake_step(&record, &[deleting], Some(&address(Some("eni-nat-1")))),
            WakeStep::Blocked {
                retryable: true,
                ..
            }
        ));
    }

    #[test]
    fn released_eips_and_private_gateways() {
        let mut record = asleep_record();
        record.eip_released = true;
        assert!(matches!(
            wake_step(&record, &[], None),
            WakeStep::Create {
                allocate_eip: true,
                ..
            }
        ));
        record.eip_released = false;
        record.gateway.connectivity_type = Connectivity::Private;
        record.gateway.allocation_id = None;
        assert!(matches!(
            wake_step(&record, &[], None),
            WakeStep::Create {
                allocate_eip: false,
                disassociate: None,
                ..
            }
        ));
    }

    #[test]
    fn routes_are_replaced_created_kept_or_left_alone() {
        let mut record = asleep_record();
        let rr = |t: &str, d: &str| crate::model::RouteRef {
            route_table_id: t.into(),
            destination: Destination::Ipv4Cidr(d.into()),
        };
        record.routes = [
            rr("rtb-1", "0.0.0.0/0"),
            rr("rtb-2", "0.0.0.0/0"),
            rr("rtb-3", "0.0.0.0/0"),
            rr("rtb-4", "0.0.0.0/0"),
            rr("rtb-gone", "0.0.0.0/0"),
        ]
        .into_iter()
        .collect();
        let mut tgw = table("rtb-4", &[]);
        tgw.routes.push(Route {
            destination: Destination::Ipv4Cidr("0.0.0.0/0".into()),
            nat_gateway_id: None,
            other_target: Some("tgw-1".into()),
        });
        let tables = vec![
            table("rtb-1", &[("0.0.0.0/0", Some("nat-1"))]),
            table("rtb-2", &[]),
            table("rtb-3", &[("0.0.0.0/0", Some("nat-9"))]),
            tgw,
        ];
        let actions = route_actions(&record, "nat-9", &tables);
        assert!(matches!(&actions[0], RouteAction::Replace { .. }));
        assert!(matches!(&actions[1], RouteAction::Create { .. }));
        assert!(matches!(&actions[2], RouteAction::AlreadyDone { .. }));
        assert!(
            matches!(&actions[3], RouteAction::LeftAlone { reason, .. } if reason.contains("tgw-1"))
        );
        assert!(
            matches!(&actions[4], RouteAction::LeftAlone { reason, .. } if reason.contains("no longer exists"))
        );
    }

    fn arb_gateway() -> impl Strategy<Value = Gateway> {
        (0u8..6, 0u8..3, 0u8..3, 0u8..6).prop_map(|(id, vpc, tag, state)| {
            let mut g = gateway(&format!("nat-{id}"), 0);
            g.vpc_id = ["vpc-1", "vpc-2", "vpc-3"][vpc as usize].into();
            match tag {
                0 => {
                    g.tags.remove(SCHEDULE_TAG);
                }
                1 => {
                    g.tags.insert(SCHEDULE_TAG.into(), "other".into());
                }
                _ => {}
            }
            g.tags.remove(SLOT_TAG);
            g.state = [
                GatewayState::Pending,
                GatewayState::Available,
                GatewayState::Deleting,
                GatewayState::Deleted,
                GatewayState::Failed,
                GatewayState::Unknown,
            ][state as usize];
            g
        })
    }

    proptest! {
        #[test]
        fn sleep_never_targets_an_unmanaged_or_unavailable_gateway(gateways in proptest::collection::vec(arb_gateway(), 0..12)) {
            let (targets, skipped) = sleep_targets(&scope(), &gateways);
            for t in &targets {
                prop_assert_eq!(t.vpc_id.as_str(), "vpc-1");
                prop_assert_eq!(t.tag(SCHEDULE_TAG), Some("nightly"));
                prop_assert_eq!(t.state, GatewayState::Available);
            }
            let managed_available = gateways.iter().filter(|g| scope().manages(g) && g.state == GatewayState::Available).count();
            prop_assert_eq!(targets.len(), managed_available);
            for s in &skipped {
                prop_assert!(gateways.iter().any(|g| g.id == s.gateway_id && scope().manages(g)));
            }
        }

        #[test]
        fn routes_recorded_then_restored_point_at_the_new_gateway(
            layout in proptest::collection::vec((0u8..4, 0u8..3, 0u8..3), 0..16)
        ) {
            // Route tables rtb-0..3, destinations, and which gateway each route targets.
            let cidrs = ["0.0.0.0/0", "10.8.0.0/16", "192.168.0.0/16"];
            let gateways = ["nat-1", "nat-x", "nat-y"];
            let mut tables: Vec<RouteTable> = (0..4).map(|i| table(&format!("rtb-{i}"), &[])).collect();
            for (t, d, g) in layout {
                let table = &mut tables[t as usize];
                if table.routes.iter().all(|r| r.destination != Destination::Ipv4Cidr(cidrs[d as usize].into())) {
                    table.routes.push(Route { destination: Destination::Ipv4Cidr(cidrs[d as usize].into()), nat_gateway_id: Some(gateways[g as usize].into()), other_target: None });
                }
            }
            let record = record_for_sleep("vpc-1", "nightly", "s", &gateway("nat-1", 0), &tables, None, NOW);
            let expected: BTreeSet<_> = crate::model::routes_to("nat-1", "vpc-1", &tables).into_iter().collect();
            prop_assert_eq!(&record.routes, &expected);
            // Blackholes stay in place over the night: every recorded route is replaced.
            let actions = route_actions(&record, "nat-new", &tables);
            prop_assert_eq!(actions.len(), expected.len());
            prop_assert!(actions.iter().all(|a| matches!(a, RouteAction::Replace { .. })), "{:?}", actions);
            // Applying them makes a second wake a no-op.
            for table in tables.iter_mut() {
                for route in table.routes.iter_mut() {
                    if route.nat_gateway_id.as_deref() == Some("nat-1") {
                        route.nat_gateway_id = Some("nat-new".into());
                    }
                }
            }
            let again = route_actions(&record, "nat-new", &tables);
            prop_assert!(again.iter().all(|a| matches!(a, RouteAction::AlreadyDone { .. })), "{:?}", again);
        }
    }
}
