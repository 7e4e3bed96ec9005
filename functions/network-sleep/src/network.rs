//! The network behind a small trait: the EC2 adapter here, a fault-injecting
//! wrapper in the integration tests.

use crate::model::{
    Address, Connectivity, Destination, Gateway, GatewayState, Route, RouteRef, RouteTable,
};
use crate::record::GatewaySpec;
use aws_sdk_ec2::types::{
    ConnectivityType, DomainType, Filter, ResourceType, Tag, TagSpecification,
};
use lakeops_shared::aws::{aws_error, error_code};
use lakeops_shared::Error;
use std::collections::BTreeMap;

/// What the function does to EC2.
#[allow(async_fn_in_trait)]
pub trait Network {
    /// Every NAT gateway of the VPC, in any state.
    async fn gateways(&self, vpc_id: &str) -> Result<Vec<Gateway>, Error>;
    async fn route_tables(&self, vpc_id: &str) -> Result<Vec<RouteTable>, Error>;
    /// The EIP, or `None` when the allocation does not exist.
    async fn address(&self, allocation_id: &str) -> Result<Option<Address>, Error>;
    /// EIPs tagged with `key=value`.
    async fn addresses_tagged(&self, key: &str, value: &str) -> Result<Vec<Address>, Error>;
    async fn delete_gateway(&self, gateway_id: &str) -> Result<(), Error>;
    async fn create_gateway(
        &self,
        spec: &GatewaySpec,
        allocation_id: Option<&str>,
        client_token: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Gateway, Error>;
    async fn disassociate_address(&self, association_id: &str) -> Result<(), Error>;
    async fn allocate_address(&self, tags: &BTreeMap<String, String>) -> Result<String, Error>;
    async fn release_address(&self, allocation_id: &str) -> Result<(), Error>;
    async fn replace_route(&self, route: &RouteRef, gateway_id: &str) -> Result<(), Error>;
    async fn create_route(&self, route: &RouteRef, gateway_id: &str) -> Result<(), Error>;
}

/// The EC2 API.
#[derive(Clone)]
pub struct Ec2Network {
    pub client: aws_sdk_ec2::Client,
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn gateway_of(nat: &aws_sdk_ec2::types::NatGateway) -> Gateway {
    let addresses = nat.nat_gateway_addresses();
    let primary = addresses
        .iter()
        .find(|a| a.is_primary() == Some(true))
        .or_else(|| addresses.first());
    let failure = match (nat.failure_code(), nat.failure_message()) {
        (None, None) => None,
        (code, message) => Some(format!(
            "{}: {}",
            code.unwrap_or("Unknown"),
            message.unwrap_or_default()
        )),
    };
    Gateway {
        id: nat.nat_gateway_id().unwrap_or_default().to_string(),
        vpc_id: nat.vpc_id().unwrap_or_default().to_string(),
        subnet_id: nat.subnet_id().unwrap_or_default().to_string(),
        state: GatewayState::parse(nat.state().map(|s| s.as_str()).unwrap_or_default()),
        connectivity: match nat.connectivity_type().map(|c| c.as_str()) {
            Some("private") => Connectivity::Private,
            _ => Connectivity::Public,
        },
        allocation_id: primary.and_then(|a| a.allocation_id()).map(String::from),
        network_interface_id: primary
            .and_then(|a| a.network_interface_id())
            .map(String::from),
        private_ip: primary.and_then(|a| a.private_ip()).map(String::from),
        tags: tags_of(nat.tags()),
        created_at: nat.create_time().map(|t| t.secs()),
        failure,
    }
}

fn destination_of(route: &aws_sdk_ec2::types::Route) -> Option<Destination> {
    if let Some(cidr) = route.destination_cidr_block() {
        Some(Destination::Ipv4Cidr(cidr.to_string()))
    } else if let Some(cidr) = route.destination_ipv6_cidr_block() {
        Some(Destination::Ipv6Cidr(cidr.to_string()))
    } else {
        route
            .destination_prefix_list_id()
            .map(|p| Destination::PrefixList(p.to_string()))
    }
}

/// An id the API sent, or `None` when it sent nothing or an empty string
/// (moto answers `""` for the interface of a disassociated EIP).
fn present(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(String::from)
}

fn address_of(a: &aws_sdk_ec2::types::Address) -> Address {
    Address {
        allocation_id: a.allocation_id().unwrap_or_default().to_string(),
        public_ip: present(a.public_ip()),
        association_id: present(a.association_id()),
        network_interface_id: present(a.network_interface_id()),
        tags: tags_of(a.tags()),
    }
}

impl Network for Ec2Network {
    async fn gateways(&self, vpc_id: &str) -> Result<Vec<Gateway>, Error> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_nat_gateways()
                .filter(filter("vpc-id", vpc_id))
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| aws_error("DescribeNatGateways", e))?;
            found.extend(page.nat_gateways().iter().map(gateway_of));
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(next) if Some(next) != token.as_deref() => token = Some(next.to_string()),
                _ => break,
            }
        }
        // Also filtered here: only this VPC, whatever the API did with the filter.
        found.retain(|g| g.vpc_id == vpc_id);
        Ok(found)
    }

    async fn route_tables(&self, vpc_id: &str) -> Result<Vec<RouteTable>, Error> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_route_tables()
                .filters(filter("vpc-id", vpc_id))
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| aws_error("DescribeRouteTables", e))?;
            for table in page.route_tables() {
                found.push(RouteTable {
                    id: table.route_table_id().unwrap_or_default().to_string(),
                    vpc_id: table.vpc_id().unwrap_or_default().to_string(),
                    routes: table
                        .routes()
                        .iter()
                        .filter_map(|r| {
                            Some(Route {
                                destination: destination_of(r)?,
                                nat_gateway_id: present(r.nat_gateway_id()),
                                other_target: r
                                    .gateway_id()
                                    .or(r.transit_gateway_id())
                                    .or(r.network_interface_id())
                                    .or(r.vpc_peering_connection_id())
                                    .or(r.instance_id())
                                    .or(r.egress_only_internet_gateway_id())
                                    .map(String::from),
                            })
                        })
                        .collect(),
                });
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(next) if Some(next) != token.as_deref() => token = Some(next.to_string()),
                _ => break,
            }
        }
        found.retain(|t| t.vpc_id == vpc_id);
        Ok(found)
    }

    async fn address(&self, allocation_id: &str) -> Result<Option<Address>, Error> {
        match self
            .client
            .describe_addresses()
            .allocation_ids(allocation_id)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .addresses()
                .iter()
                .find(|a| a.allocation_id() == Some(allocation_id))
                .map(address_of)),
            Err(e) if error_code(&e).is_some_and(|c| c.contains("NotFound")) => Ok(None),
            Err(e) => Err(aws_error(format!("DescribeAddresses {allocation_id}"), e)),
        }
    }

    async fn addresses_tagged(&self, key: &str, value: &str) -> Result<Vec<Address>, Error> {
        let out = self
            .client
            .describe_addresses()
            .filters(filter(&format!("tag:{key}"), value))
            .send()
            .await
            .map_err(|e| aws_error("DescribeAddresses by tag", e))?;
        Ok(out.addresses().iter().map(address_of).collect())
    }

    async fn delete_gateway(&self, gateway_id: &str) -> Result<(), Error> {
        match self
            .client
            .delete_nat_gateway()
            .nat_gateway_id(gateway_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e).is_some_and(|c| c.contains("NotFound")) => Ok(()),
            Err(e) => Err(aws_error(format!("DeleteNatGateway {gateway_id}"), e)),
        }
    }

    async fn create_gateway(
        &self,
        spec: &GatewaySpec,
        allocation_id: Option<&str>,
        client_token: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Gateway, Error> {
        let out = self
            .client
            .create_nat_gateway()
            .subnet_id(&spec.subnet_id)
            .set_allocation_id(allocation_id.map(String::from))
            .connectivity_type(ConnectivityType::from(spec.connectivity_type.as_str()))
            .client_token(client_token)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Natgateway)
                    .set_tags(Some(sdk_tags(tags)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws_error(format!("CreateNatGateway in {}", spec.subnet_id), e))?;
        out.nat_gateway()
            .map(gateway_of)
            .ok_or_else(|| Error::terminal("CreateNatGateway answered without a gateway"))
    }

    async fn disassociate_address(&self, association_id: &str) -> Result<(), Error> {
        match self
            .client
            .disassociate_address()
            .association_id(association_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e).is_some_and(|c| c.contains("NotFound")) => Ok(()),
            Err(e) => Err(aws_error(
                format!("DisassociateAddress {association_id}"),
                e,
            )),
        }
    }

    async fn allocate_address(&self, tags: &BTreeMap<String, String>) -> Result<String, Error> {
        let out = self
            .client
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::ElasticIp)
                    .set_tags(Some(sdk_tags(tags)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws_error("AllocateAddress", e))?;
        out.allocation_id()
            .map(String::from)
            .ok_or_else(|| Error::terminal("AllocateAddress answered without an allocation id"))
    }

    async fn release_address(&self, allocation_id: &str) -> Result<(), Error> {
        match self
            .client
            .release_address()
            .allocation_id(allocation_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e).is_some_and(|c| c.contains("NotFound")) => Ok(()),
            Err(e) => Err(aws_error(format!("ReleaseAddress {allocation_id}"), e)),
        }
    }

    async fn replace_route(&self, route: &RouteRef, gateway_id: &str) -> Result<(), Error> {
        let call = self
            .client
            .replace_route()
            .route_table_id(&route.route_table_id)
            .nat_gateway_id(gateway_id);
        let call = match &route.destination {
            Destination::Ipv4Cidr(c) => call.destination_cidr_block(c),
            Destination::Ipv6Cidr(c) => call.destination_ipv6_cidr_block(c),
            Destination::PrefixList(p) => call.destination_prefix_list_id(p),
        };
        call.send().await.map(|_| ()).map_err(|e| {
            aws_error(
                format!(
                    "ReplaceRoute {} {}",
                    route.route_table_id, route.destination
                ),
                e,
            )
        })
    }

    async fn create_route(&self, route: &RouteRef, gateway_id: &str) -> Result<(), Error> {
        let call = self
            .client
            .create_route()
            .route_table_id(&route.route_table_id)
            .nat_gateway_id(gateway_id);
        let call = match &route.destination {
            Destination::Ipv4Cidr(c) => call.destination_cidr_block(c),
            Destination::Ipv6Cidr(c) => call.destination_ipv6_cidr_block(c),
            Destination::PrefixList(p) => call.destination_prefix_list_id(p),
        };
        call.send().await.map(|_| ()).map_err(|e| {
            aws_error(
                format!("CreateRoute {} {}", route.route_table_id, route.destination),
                e,
            )
        })
    }
}
