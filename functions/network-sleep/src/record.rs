//! The restore record: everything needed to recreate one sleeping gateway and
//! put its routes back, written before anything is deleted.
//!
//! Store: one JSON object per gateway slot in S3,
//! `s3://{STATE_BUCKET}/{STATE_PREFIX}{vpc_id}/{schedule}/{slot}.json`.
//! Tags cannot hold it: a gateway can carry 50 tags of up to 256 characters,
//! and a deleted gateway's own tags vanish with it within the hour. The record
//! also keeps the sleep intervals of this and last month, which the savings
//! estimate reads.

use crate::clock;
use crate::model::{is_bookkeeping_tag, routes_to, Connectivity, Gateway, RouteRef, RouteTable};
use lakeops_shared::validate::Problems;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub const RECORD_FORMAT: &str = "lakeops.network-sleep.restore/v1";
/// How many past gateway ids of a slot are remembered. Routes that still
/// point at any of them are lakeops' own and may be re-pointed.
pub const LINEAGE_LIMIT: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Asleep,
    Awake,
}

/// What CreateNatGateway needs to recreate the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    pub subnet_id: String,
    pub connectivity_type: Connectivity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    /// The gateway's tags, without lakeops' bookkeeping tags and `aws:` tags.
    pub tags: BTreeMap<String, String>,
}

/// A time the slot's gateway was asleep. `to` is unset while it sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    #[serde(with = "clock::as_rfc3339")]
    pub from: i64,
    #[serde(
        default,
        with = "clock::as_optional_rfc3339",
        skip_serializing_if = "Option::is_none"
    )]
    pub to: Option<i64>,
    /// The EIP was released during this interval (its hourly charge saved too).
    #[serde(default)]
    pub eip_released: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRecord {
    pub format: String,
    pub vpc_id: String,
    pub schedule: String,
    pub slot: String,
    pub phase: Phase,
    pub gateway: GatewaySpec,
    /// Every route that pointed at the gateway when it was put to sleep.
    pub routes: BTreeSet<RouteRef>,
    /// The gateway the last sleep deleted.
    pub asleep_gateway_id: String,
    /// That gateway's network interface, which may still hold the EIP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asleep_network_interface_id: Option<String>,
    /// The gateway the last wake created (or found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awake_gateway_id: Option<String>,
    /// Past gateway ids of this slot, oldest first.
    pub lineage: Vec<String>,
    /// The EIP was released by the sleep; the wake allocates a new one.
    #[serde(default)]
    pub eip_released: bool,
    pub sleeps: Vec<Interval>,
    #[serde(with = "clock::as_rfc3339")]
    pub updated_at: i64,
}

impl RestoreRecord {
    /// Parse a stored record, naming every field that is wrong.
    pub fn parse(json: &str, key: &str) -> Result<Self, lakeops_shared::Error> {
        let record: RestoreRecord = serde_json::from_str(json).map_err(|e| {
            lakeops_shared::Error::terminal(format!("restore record {key} is malformed: {e}"))
        })?;
        let problems = record.problems();
        if !problems.is_empty() {
            return Err(lakeops_shared::Error::terminal(format!(
                "restore record {key}: {problems}"
            )));
        }
        Ok(record)
    }

    pub fn problems(&self) -> Problems {
        let mut problems = Problems::new();
        problems.check(
            self.format == RECORD_FORMAT,
            "format",
            format!("must be {RECORD_FORMAT}"),
        );
        problems.require(&self.vpc_id, "vpc_id");
        problems.require(&self.slot, "slot");
        problems.require(&self.gateway.subnet_id, "gateway.subnet_id");
        problems.require(&self.asleep_gateway_id, "asleep_gateway_id");
        if self.gateway.connectivity_type == Connectivity::Public
            && self.gateway.allocation_id.is_none()
            && !self.eip_released
        {
            problems.add("gateway.allocation_id", "is required for a public gateway");
        }
        problems
    }

    /// Whether a route that now points at `gateway_id` is one of ours.
    pub fn knows_gateway(&self, gateway_id: &str) -> bool {
        self.asleep_gateway_id == gateway_id
            || self.awake_gateway_id.as_deref() == Some(gateway_id)
            || self.lineage.iter().any(|g| g == gateway_id)
    }

    pub fn open_interval(&self) -> Option<&Interval> {
        self.sleeps.iter().rev().find(|i| i.to.is_none())
    }

    /// Mark the record awake with `gateway_id`, closing the open interval.
    pub fn woken(mut self, gateway_id: &str, now: i64) -> Self {
        for interval in self.sleeps.iter_mut().filter(|i| i.to.is_none()) {
            interval.to = Some(now.max(interval.from));
        }
        self.phase = Phase::Awake;
        self.awake_gateway_id = Some(gateway_id.to_string());
        push_lineage(&mut self.lineage, gateway_id);
        self.eip_released = false;
        self.updated_at = now;
        self
    }
}

fn push_lineage(lineage: &mut Vec<String>, gateway_id: &str) {
    lineage.retain(|g| g != gateway_id);
    lineage.push(gateway_id.to_string());
    if lineage.len() > LINEAGE_LIMIT {
        let excess = lineage.len() - LINEAGE_LIMIT;
        lineage.drain(..excess);
    }
}

/// Keep the intervals that may still count: this month and last month.
pub fn prune_intervals(sleeps: &mut Vec<Interval>, now: i64) {
    let keep_from = clock::previous_month_start(now);
    sleeps.retain(|i| i.to.is_none_or(|to| to >= keep_from));
}

/// The record to write before `gateway` is deleted.
///
/// With an earlier record of the same slot still asleep (a wake that crashed
/// after creating this gateway, or a sleep that crashed before deleting it),
/// the routes are the union of both, so no route is forgotten; its open
/// interval is closed when this gateway came up (or dropped, when it is this
/// very gateway), so the savings are not overstated.
pub fn record_for_sleep(
    vpc_id: &str,
    schedule: &str,
    slot: &str,
    gateway: &Gateway,
    tables: &[RouteTable],
    existing: Option<&RestoreRecord>,
    now: i64,
) -> RestoreRecord {
    let current: BTreeSet<RouteRef> = routes_to(&gateway.id, vpc_id, tables).into_iter().collect();
    let tags: BTreeMap<String, String> = gateway
        .tags
        .iter()
        .filter(|(k, _)| !is_bookkeeping_tag(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut routes = current;
    let mut lineage = Vec::new();
    let mut sleeps = Vec::new();
    if let Some(existing) = existing {
        lineage = existing.lineage.clone();
        sleeps = existing.sleeps.clone();
        if existing.phase == Phase::Asleep {
            routes.extend(existing.routes.iter().cloned());
            if existing.asleep_gateway_id == gateway.id {
                sleeps.retain(|i| i.to.is_some());
            } else {
                let came_up = gateway.created_at.unwrap_or(now).min(now);
                for interval in sleeps.iter_mut().filter(|i| i.to.is_none()) {
                    interval.to = Some(came_up.max(interval.from));
                }
            }
        }
    }
    push_lineage(&mut lineage, &gateway.id);
    sleeps.push(Interval {
        from: now,
        to: None,
        eip_released: false,
    });
    prune_intervals(&mut sleeps, now);
    RestoreRecord {
        format: RECORD_FORMAT.to_string(),
        vpc_id: vpc_id.to_string(),
        schedule: schedule.to_string(),
        slot: slot.to_string(),
        phase: Phase::Asleep,
        gateway: GatewaySpec {
            subnet_id: gateway.subnet_id.clone(),
            connectivity_type: gateway.connectivity,
            allocation_id: gateway.allocation_id.clone(),
            private_ip: gateway.private_ip.clone(),
            tags,
        },
        routes,
        asleep_gateway_id: gateway.id.clone(),
        asleep_network_interface_id: gateway.network_interface_id.clone(),
        awake_gateway_id: None,
        lineage,
        eip_released: false,
        sleeps,
        updated_at: now,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Destination, GatewayState, Route, SCHEDULE_TAG, SLOT_TAG};
    use proptest::prelude::*;

    pub fn gateway(id: &str, created_at: i64) -> Gateway {
        Gateway {
            id: id.into(),
            vpc_id: "vpc-1".into(),
            subnet_id: "subnet-a".into(),
            state: GatewayState::Available,
            connectivity: Connectivity::Public,
            allocation_id: Some("eipalloc-1".into()),
            network_interface_id: Some(format!("eni-{id}")),
            private_ip: Some("10.0.0.5".into()),
            tags: [
                (SCHEDULE_TAG.to_string(), "nightly".to_string()),
                ("Name".to_string(), "nat-a".to_string()),
                (SLOT_TAG.to_string(), "subnet-a.eipalloc-1".to_string()),
                (
                    "aws:cloudformation:stack-name".to_string(),
                    "net".to_string(),
                ),
            ]
            .into_iter()
            .collect(),
            created_at: Some(created_at),
            failure: None,
        }
    }

    pub fn table(id: &str, routes: &[(&str, Option<&str>)]) -> RouteTable {
        RouteTable {
            id: id.into(),
            vpc_id: "vpc-1".into(),
            routes: routes
                .iter()
                .map(|(d, nat)| Route {
                    destination: Destination::Ipv4Cidr(d.to_string()),
                    nat_gateway_id: nat.map(String::from),
                    other_target: None,
                })
                .collect(),
        }
    }

    fn rr(table: &str, cidr: &str) -> RouteRef {
        RouteRef {
            route_table_id: table.into(),
            destination: Destination::Ipv4Cidr(cidr.into()),
        }
    }

    const NOW: i64 = 1_795_264_488;

    #[test]
    fn first_sleep_records_spec_routes_and_opens_an_interval() {
        let gw = gateway("nat-1", NOW - 86_400);
        let tables = vec![
            table("rtb-1", &[("0.0.0.0/0", Some("nat-1"))]),
            table(
                "rtb-2",
                &[("0.0.0.0/0", Some("nat-2")), ("10.8.0.0/16", Some("nat-1"))],
            ),
        ];
        let record = record_for_sleep(
            "vpc-1",
            "nightly",
            "subnet-a.eipalloc-1",
            &gw,
            &tables,
            None,
            NOW,
        );
        assert_eq!(record.phase, Phase::Asleep);
        assert_eq!(
            record.routes,
            [rr("rtb-1", "0.0.0.0/0"), rr("rtb-2", "10.8.0.0/16")]
                .into_iter()
                .collect()
        );
        assert_eq!(record.gateway.allocation_id.as_deref(), Some("eipalloc-1"));
        assert_eq!(
            record.gateway.tags.len(),
            2,
            "bookkeeping and aws: tags are dropped"
        );
        assert_eq!(record.gateway.tags[SCHEDULE_TAG], "nightly");
        assert_eq!(
            record.sleeps,
            vec![Interval {
                from: NOW,
                to: None,
                eip_released: false
            }]
        );
        assert_eq!(record.lineage, vec!["nat-1"]);
        assert!(record.problems().is_empty());
        let text = serde_json::to_string_pretty(&record).unwrap();
        assert_eq!(RestoreRecord::parse(&text, "k").unwrap(), record);
    }

    #[test]
    fn resleeping_after_a_crashed_wake_keeps_every_route_and_closes_at_creation() {
        let first = record_for_sleep(
            "vpc-1",
            "nightly",
            "s",
            &gateway("nat-1", 0),
            &[
                table("rtb-1", &[("0.0.0.0/0", Some("nat-1"))]),
                table("rtb-2", &[("0.0.0.0/0", Some("nat-1"))]),
            ],
            None,
            NOW - 36_000,
        );
        // The wake created nat-2 and re-pointed only rtb-1, then crashed.
        let tables = vec![
            table("rtb-1", &[("0.0.0.0/0", Some("nat-2"))]),
            table("rtb-2", &[("0.0.0.0/0", Some("nat-1"))]),
        ];
        let second = record_for_sleep(
            "vpc-1",
            "nightly",
            "s",
            &gateway("nat-2", NOW - 3_600),
            &tables,
            Some(&first),
            NOW,
        );
        assert_eq!(second.routes.len(), 2);
        assert_eq!(second.asleep_gateway_id, "nat-2");
        assert!(second.knows_gateway("nat-1"));
        assert_eq!(second.sleeps[0].to, Some(NOW - 3_600));
        assert_eq!(second.sleeps[1].to, None);
    }

    #[test]
    fn resleeping_the_same_gateway_after_a_crash_restarts_the_interval() {
        let gw = gateway("nat-1", 0);
        let tables = vec![table("rtb-1", &[("0.0.0.0/0", Some("nat-1"))])];
        let first = record_for_sleep("vpc-1", "nightly", "s", &gw, &tables, None, NOW - 60);
        let second = record_for_sleep("vpc-1", "nightly", "s", &gw, &tables, Some(&first), NOW);
        assert_eq!(
            second.sleeps,
            vec![Interval {
                from: NOW,
                to: None,
                eip_released: false
            }]
        );
        assert_eq!(second.lineage, vec!["nat-1"]);
    }

    #[test]
    fn malformed_records_name_the_field() {
        let mut record = record_for_sleep(
            "vpc-1",
            "nightly",
            "s",
            &gateway("nat-1", 0),
            &[],
            None,
            NOW,
        );
        record.gateway.allocation_id = None;
        record.format = "v0".into();
        let text = serde_json::to_string(&record).unwrap();
        let error = RestoreRecord::parse(&text, "network-sleep/vpc-1/nightly/s.json")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("gateway.allocation_id") && error.contains("format"),
            "{error}"
        );
        let error = RestoreRecord::parse("{\"format\":1}", "k")
            .unwrap_err()
            .to_string();
        assert!(error.contains("malformed"), "{error}");
    }

    proptest! {
        #[test]
        fn lineage_is_bounded_unique_and_ends_with_the_newest(ids in proptest::collection::vec(0u8..20, 0..40)) {
            let mut lineage = Vec::new();
            for id in &ids {
                push_lineage(&mut lineage, &format!("nat-{id}"));
            }
            prop_assert!(lineage.len() <= LINEAGE_LIMIT);
            let unique: BTreeSet<_> = lineage.iter().collect();
            prop_assert_eq!(unique.len(), lineage.len());
            if let Some(last) = ids.last() {
                prop_assert_eq!(lineage.last().unwrap(), &format!("nat-{last}"));
            }
        }

        #[test]
        fn sleep_then_wake_cycles_keep_intervals_ordered_and_closed(steps in proptest::collection::vec((1i64..50_000, 1i64..50_000), 1..30)) {
            let mut now = NOW - 40 * 86_400;
            let mut record: Option<RestoreRecord> = None;
            let mut generation = 0;
            for (awake_for, asleep_for) in steps {
                now += awake_for;
                let gw = gateway(&format!("nat-{generation}"), now - awake_for);
                let slept = record_for_sleep("vpc-1", "nightly", "s", &gw, &[table("rtb-1", &[("0.0.0.0/0", Some(&gw.id))])], record.as_ref(), now);
                prop_assert_eq!(slept.sleeps.iter().filter(|i| i.to.is_none()).count(), 1);
                now += asleep_for;
                generation += 1;
                let woke = slept.woken(&format!("nat-{generation}"), now);
                prop_assert!(woke.open_interval().is_none());
                for pair in woke.sleeps.windows(2) {
                    prop_assert!(pair[0].to.unwrap() <= pair[1].from);
                }
                for i in &woke.sleeps {
                    prop_assert!(i.from <= i.to.unwrap());
                    prop_assert!(i.to.unwrap() >= clock::previous_month_start(now));
                }
                record = Some(woke);
            }
        }
    }
}
