//! What the function sees of the network: NAT gateways, route tables and
//! Elastic IPs, reduced to the fields that sleeping and waking depend on.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The opt-in tag: a gateway is managed when this tag's value is the
/// configured schedule name.
pub const SCHEDULE_TAG: &str = "lakeops:sleep-schedule";
/// The stable identity of a gateway across sleep cycles (its id changes every
/// time it is recreated). Set on every gateway that a wake creates.
pub const SLOT_TAG: &str = "lakeops:slot";
/// On a gateway created by a wake: the id of the gateway it replaces. A re-run
/// of the wake finds it by this tag instead of creating another.
pub const RESTORES_TAG: &str = "lakeops:restores";

/// Tags that are lakeops' own bookkeeping, not part of the gateway's identity.
pub fn is_bookkeeping_tag(key: &str) -> bool {
    key == SLOT_TAG || key == RESTORES_TAG || key.starts_with("aws:")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayState {
    Pending,
    Available,
    Deleting,
    Deleted,
    Failed,
    Unknown,
}

impl GatewayState {
    pub fn parse(state: &str) -> Self {
        match state {
            "pending" => Self::Pending,
            "available" => Self::Available,
            "deleting" => Self::Deleting,
            "deleted" => Self::Deleted,
            "failed" => Self::Failed,
            _ => Self::Unknown,
        }
    }

    /// Pending or available: a gateway that exists (and costs money).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Pending | Self::Available)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Available => "available",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Connectivity {
    Public,
    Private,
}

impl Connectivity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }
}

/// A NAT gateway as DescribeNatGateways shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    pub id: String,
    pub vpc_id: String,
    pub subnet_id: String,
    pub state: GatewayState,
    pub connectivity: Connectivity,
    /// The Elastic IP of a public gateway (its primary address).
    pub allocation_id: Option<String>,
    /// The gateway's own network interface, which holds the EIP association.
    pub network_interface_id: Option<String>,
    pub private_ip: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Creation time, epoch seconds.
    pub created_at: Option<i64>,
    /// `FailureCode: FailureMessage` of a failed gateway.
    pub failure: Option<String>,
}

impl Gateway {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// Where a route sends traffic for. Exactly one of the three kinds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    Ipv4Cidr(String),
    Ipv6Cidr(String),
    PrefixList(String),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Ipv4Cidr(c) | Destination::Ipv6Cidr(c) | Destination::PrefixList(c) => {
                f.write_str(c)
            }
        }
    }
}

/// One route of one route table, by its identity (table and destination).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RouteRef {
    pub route_table_id: String,
    pub destination: Destination,
}

/// A route as DescribeRouteTables shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: Destination,
    /// Set when the route targets a NAT gateway (also a deleted one: a
    /// blackhole route keeps the id of the gateway it lost).
    pub nat_gateway_id: Option<String>,
    /// Any other target (internet gateway, transit gateway, interface...).
    pub other_target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub routes: Vec<Route>,
}

/// An Elastic IP and its association, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub allocation_id: String,
    pub public_ip: Option<String>,
    pub association_id: Option<String>,
    pub network_interface_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

impl Address {
    /// Whether the EIP is opted in to `schedule` (tagged
    /// `lakeops:sleep-schedule=<schedule>`): the only EIPs network-sleep may
    /// disassociate or release, as its IAM policy says too. The ones it
    /// allocates carry the tag from their creation.
    pub fn is_opted_in(&self, schedule: &str) -> bool {
        self.tags.get(SCHEDULE_TAG).map(String::as_str) == Some(schedule)
    }
}

/// The routes of `tables` in `vpc_id` that send traffic to `gateway_id`.
pub fn routes_to(gateway_id: &str, vpc_id: &str, tables: &[RouteTable]) -> Vec<RouteRef> {
    let mut found: Vec<RouteRef> = tables
        .iter()
        .filter(|t| t.vpc_id == vpc_id)
        .flat_map(|t| {
            t.routes
                .iter()
                .filter(|r| r.nat_gateway_id.as_deref() == Some(gateway_id))
                .map(|r| RouteRef {
                    route_table_id: t.id.clone(),
                    destination: r.destination.clone(),
                })
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Whether a string may be a slot (it is used in an S3 key and a tag value).
pub fn is_valid_slot(slot: &str) -> bool {
    !slot.is_empty()
        && slot.len() <= 128
        && slot
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The stable identity of a gateway: its `lakeops:slot` tag, or, on a gateway
/// lakeops has not recreated yet, its subnet and its EIP allocation (or its
/// private IP for a private gateway). Recreated gateways keep subnet and
/// allocation, so the derived slot is stable too; the tag keeps it stable
/// when the EIP is released and a new one allocated.
pub fn slot_of(gateway: &Gateway) -> String {
    if let Some(tagged) = gateway.tag(SLOT_TAG) {
        if is_valid_slot(tagged) {
            return tagged.to_string();
        }
    }
    let second = gateway
        .allocation_id
        .as_deref()
        .or(gateway.private_ip.as_deref())
        .unwrap_or("private");
    let slot: String = format!("{}.{}", gateway.subnet_id, second)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    slot
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn gateway(id: &str) -> Gateway {
        Gateway {
            id: id.into(),
            vpc_id: "vpc-1".into(),
            subnet_id: "subnet-a".into(),
            state: GatewayState::Available,
            connectivity: Connectivity::Public,
            allocation_id: Some("eipalloc-1".into()),
            network_interface_id: Some("eni-1".into()),
            private_ip: Some("10.0.0.5".into()),
            tags: BTreeMap::new(),
            created_at: Some(0),
            failure: None,
        }
    }

    #[test]
    fn slot_prefers_the_tag_and_falls_back_to_subnet_and_allocation() {
        let mut gw = gateway("nat-1");
        assert_eq!(slot_of(&gw), "subnet-a.eipalloc-1");
        gw.tags
            .insert(SLOT_TAG.into(), "subnet-a.eipalloc-0".into());
        assert_eq!(slot_of(&gw), "subnet-a.eipalloc-0");
        gw.tags.insert(SLOT_TAG.into(), "bad/slot".into());
        assert_eq!(slot_of(&gw), "subnet-a.eipalloc-1");
        gw.allocation_id = None;
        gw.connectivity = Connectivity::Private;
        assert_eq!(slot_of(&gw), "subnet-a.10.0.0.5");
    }

    #[test]
    fn routes_to_finds_only_this_gateway_in_this_vpc() {
        let route = |d: &str, nat: Option<&str>| Route {
            destination: Destination::Ipv4Cidr(d.into()),
            nat_gateway_id: nat.map(String::from),
            other_target: None,
        };
        let tables = vec![
            RouteTable {
                id: "rtb-1".into(),
                vpc_id: "vpc-1".into(),
                routes: vec![
                    route("0.0.0.0/0", Some("nat-1")),
                    route("10.9.0.0/16", Some("nat-2")),
                ],
            },
            RouteTable {
                id: "rtb-2".into(),
                vpc_id: "vpc-other".into(),
                routes: vec![route("0.0.0.0/0", Some("nat-1"))],
            },
        ];
        let found = routes_to("nat-1", "vpc-1", &tables);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].route_table_id, "rtb-1");
    }

    #[test]
    fn bookkeeping_tags() {
        assert!(is_bookkeeping_tag(SLOT_TAG));
        assert!(is_bookkeeping_tag("aws:cloudformation:stack-name"));
        assert!(!is_bookkeeping_tag(SCHEDULE_TAG));
        assert!(!is_bookkeeping_tag("Name"));
    }
}
