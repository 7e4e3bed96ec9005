//! In-memory network, store and workspaces for unit tests of the handler
//! flow (the integration tests run against moto).

use crate::config::Settings;
use crate::handler::NetworkSleep;
use crate::model::SCHEDULE_TAG;
use crate::model::{
    Address, Connectivity, Destination, Gateway, GatewayState, Route, RouteRef, RouteTable,
};
use crate::network::Network;
use crate::plan::Scope;
use crate::record::{GatewaySpec, RestoreRecord};
use crate::savings::Prices;
use crate::store::RecordStore;
use crate::workspaces::{Activity, Cluster, Pipeline, Run, Warehouse, WorkspaceApi, WorkspaceRef};
use lakeops_shared::Error;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct FakeNetwork {
    pub gateways: Mutex<Vec<Gateway>>,
    pub tables: Mutex<Vec<RouteTable>>,
    pub addresses: Mutex<Vec<Address>>,
    /// Subnets where a created gateway ends `failed`, with the failure.
    pub failing_subnets: Mutex<BTreeMap<String, String>>,
    /// Like AWS (unlike moto): created gateways start `pending` and deleted
    /// ones stay `deleting` (holding their EIP) until [`FakeNetwork::settle`].
    pub slow: Mutex<bool>,
    pub next_id: Mutex<u32>,
}

impl FakeNetwork {
    fn id(&self, prefix: &str) -> String {
        let mut n = self.next_id.lock().unwrap();
        *n += 1;
        format!("{prefix}-{n:04}")
    }

    /// A tagged gateway with an EIP and a route table pointing at it.
    pub fn add_gateway(&self, subnet: &str, tags: &[(&str, &str)]) -> String {
        let id = self.id("nat");
        let allocation = self.id("eipalloc");
        let eni = self.id("eni");
        // Opted in like its gateway: users who opt a gateway in tag its EIP too.
        let eip_tags = tags
            .iter()
            .filter(|(k, _)| *k == SCHEDULE_TAG)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.addresses.lock().unwrap().push(Address {
            allocation_id: allocation.clone(),
            public_ip: Some("203.0.113.1".into()),
            association_id: Some(self.id("eipassoc")),
            network_interface_id: Some(eni.clone()),
            tags: eip_tags,
        });
        self.gateways.lock().unwrap().push(Gateway {
            id: id.clone(),
            vpc_id: "vpc-1".into(),
            subnet_id: subnet.into(),
            state: GatewayState::Available,
            connectivity: Connectivity::Public,
            allocation_id: Some(allocation),
            network_interface_id: Some(eni),
            private_ip: Some("10.0.0.9".into()),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            created_at: Some(0),
            failure: None,
        });
        let table = self.id("rtb");
        self.tables.lock().unwrap().push(RouteTable {
            id: table,
            vpc_id: "vpc-1".into(),
            routes: vec![Route {
                destination: Destination::Ipv4Cidr("0.0.0.0/0".into()),
                nat_gateway_id: Some(id.clone()),
                other_target: None,
            }],
        });
        id
    }

    /// What AWS does a minute or two later: pending gateways become
    /// available, deleting ones deleted (and their EIPs free).
    pub fn settle(&self) {
        let mut gateways = self.gateways.lock().unwrap();
        for gateway in gateways.iter_mut() {
            match gateway.state {
                GatewayState::Pending => gateway.state = GatewayState::Available,
                GatewayState::Deleting => {
                    gateway.state = GatewayState::Deleted;
                    self.free_addresses_of(gateway);
                }
                _ => {}
            }
        }
    }

    fn free_addresses_of(&self, gateway: &Gateway) {
        for address in self.addresses.lock().unwrap().iter_mut() {
            if address.network_interface_id == gateway.network_interface_id {
                address.association_id = None;
                address.network_interface_id = None;
            }
        }
    }

    /// The EIP as it is now, if it exists.
    pub fn address_now(&self, allocation_id: &str) -> Option<Address> {
        self.addresses
            .lock()
            .unwrap()
            .iter()
            .find(|a| a.allocation_id == allocation_id)
            .cloned()
    }

    /// Remove the EIP's tags, as for an EIP the user did not opt in.
    pub fn untag_address(&self, allocation_id: &str) {
        for address in self.addresses.lock().unwrap().iter_mut() {
            if address.allocation_id == allocation_id {
                address.tags.clear();
            }
        }
    }

    pub fn live(&self) -> Vec<Gateway> {
        self.gateways
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.state.is_live())
            .cloned()
            .collect()
    }

    fn set_route(&self, route: &RouteRef, gateway_id: &str, must_exist: bool) -> Result<(), Error> {
        let mut tables = self.tables.lock().unwrap();
        let table = tables
            .iter_mut()
            .find(|t| t.id == route.route_table_id)
            .ok_or_else(|| Error::terminal("InvalidRouteTableID.NotFound"))?;
        match table
            .routes
            .iter_mut()
            .find(|r| r.destination == route.destination)
        {
            Some(r) => r.nat_gateway_id = Some(gateway_id.into()),
            None if must_exist => {
                return Err(Error::invalid_input("InvalidParameterValue: no such route"))
            }
            None => table.routes.push(Route {
                destination: route.destination.clone(),
                nat_gateway_id: Some(gateway_id.into()),
                other_target: None,
            }),
        }
        Ok(())
    }
}

impl Network for FakeNetwork {
    async fn gateways(&self, vpc_id: &str) -> Result<Vec<Gateway>, Error> {
        Ok(self
            .gateways
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.vpc_id == vpc_id)
            .cloned()
            .collect())
    }

    async fn route_tables(&self, vpc_id: &str) -> Result<Vec<RouteTable>, Error> {
        Ok(self
            .tables
            .lock()
            .unwrap()
            .iter()
            .filter(|t| t.vpc_id == vpc_id)
            .cloned()
            .collect())
    }

    async fn address(&self, allocation_id: &str) -> Result<Option<Address>, Error> {
        Ok(self
            .addresses
            .lock()
            .unwrap()
            .iter()
            .find(|a| a.allocation_id == allocation_id)
            .cloned())
    }

    async fn addresses_tagged(&self, _key: &str, _value: &str) -> Result<Vec<Address>, Error> {
        Ok(Vec::new())
    }

    async fn delete_gateway(&self, gateway_id: &str) -> Result<(), Error> {
        let mut gateways = self.gateways.lock().unwrap();
        let gateway = gateways
            .iter_mut()
            .find(|g| g.id == gateway_id)
            .ok_or_else(|| Error::terminal("NatGatewayNotFound"))?;
        // Like AWS: the EIP is released from the interface with the gateway.
        if *self.slow.lock().unwrap() {
            gateway.state = GatewayState::Deleting;
        } else {
            gateway.state = GatewayState::Deleted;
            self.free_addresses_of(gateway);
        }
        Ok(())
    }

    async fn create_gateway(
        &self,
        spec: &GatewaySpec,
        allocation_id: Option<&str>,
        _client_token: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Gateway, Error> {
        let id = self.id("nat");
        let eni = self.id("eni");
        let failure = self
            .failing_subnets
            .lock()
            .unwrap()
            .get(&spec.subnet_id)
            .cloned();
        if failure.is_none() {
            let mut addresses = self.addresses.lock().unwrap();
            let address = addresses
                .iter_mut()
                .find(|a| Some(a.allocation_id.as_str()) == allocation_id)
                .ok_or_else(|| Error::terminal("InvalidAllocationID.NotFound"))?;
            address.association_id = Some(format!("eipassoc-{id}"));
            address.network_interface_id = Some(eni.clone());
        }
        let gateway = Gateway {
            id,
            vpc_id: "vpc-1".into(),
            subnet_id: spec.subnet_id.clone(),
            state: if failure.is_some() {
                GatewayState::Failed
            } else if *self.slow.lock().unwrap() {
                GatewayState::Pending
            } else {
                GatewayState::Available
            },
            connectivity: spec.connectivity_type,
            allocation_id: allocation_id.map(String::from),
            network_interface_id: Some(eni),
            private_ip: None,
            tags: tags.clone(),
            created_at: Some(crate::clock::now_epoch()),
            failure,
        };
        self.gateways.lock().unwrap().push(gateway.clone());
        Ok(gateway)
    }

    async fn disassociate_address(&self, association_id: &str) -> Result<(), Error> {
        for address in self.addresses.lock().unwrap().iter_mut() {
            if address.association_id.as_deref() == Some(association_id) {
                address.association_id = None;
                address.network_interface_id = None;
            }
        }
        Ok(())
    }

    async fn allocate_address(&self, tags: &BTreeMap<String, String>) -> Result<String, Error> {
        let allocation = self.id("eipalloc");
        self.addresses.lock().unwrap().push(Address {
            allocation_id: allocation.clone(),
            public_ip: None,
            association_id: None,
            network_interface_id: None,
            tags: tags.clone(),
        });
        Ok(allocation)
    }

    async fn release_address(&self, allocation_id: &str) -> Result<(), Error> {
        self.addresses
            .lock()
            .unwrap()
            .retain(|a| a.allocation_id != allocation_id);
        Ok(())
    }

    async fn replace_route(&self, route: &RouteRef, gateway_id: &str) -> Result<(), Error> {
        self.set_route(route, gateway_id, true)
    }

    async fn create_route(&self, route: &RouteRef, gateway_id: &str) -> Result<(), Error> {
        self.set_route(route, gateway_id, false)
    }
}

#[derive(Default)]
pub struct FakeStore {
    pub records: Mutex<BTreeMap<String, RestoreRecord>>,
}

impl RecordStore for FakeStore {
    async fn list(&self, vpc_id: &str, schedule: &str) -> Result<Vec<RestoreRecord>, Error> {
        Ok(self
            .records
            .lock()
            .unwrap()
            .values()
            .filter(|r| r.vpc_id == vpc_id && r.schedule == schedule)
            .cloned()
            .collect())
    }

    async fn put(&self, record: &RestoreRecord) -> Result<(), Error> {
        self.records
            .lock()
            .unwrap()
            .insert(record.slot.clone(), record.clone());
        Ok(())
    }
}

#[derive(Default)]
pub struct FakeWorkspaces {
    pub clusters: Mutex<Vec<Cluster>>,
    pub runs: Mutex<Vec<Run>>,
    pub warehouses: Mutex<Vec<Warehouse>>,
    pub pipelines: Mutex<Vec<Pipeline>>,
    pub terminated: Mutex<Vec<String>>,
    /// Workspaces inspected, by name.
    pub inspected: Mutex<Vec<String>>,
}

impl WorkspaceApi for FakeWorkspaces {
    async fn inspect(&self, workspace: &WorkspaceRef) -> Result<Activity, Error> {
        self.inspected.lock().unwrap().push(workspace.name.clone());
        Ok(Activity {
            clusters: self.clusters.lock().unwrap().clone(),
            runs: self.runs.lock().unwrap().clone(),
            warehouses: self.warehouses.lock().unwrap().clone(),
            pipelines: self.pipelines.lock().unwrap().clone(),
        })
    }

    async fn terminate(&self, _workspace: &WorkspaceRef, cluster_id: &str) -> Result<(), Error> {
        self.terminated.lock().unwrap().push(cluster_id.to_string());
        for cluster in self
            .clusters
            .lock()
            .unwrap()
            .iter_mut()
            .filter(|c| c.cluster_id == cluster_id)
        {
            cluster.state = "TERMINATING".into();
        }
        Ok(())
    }
}

pub type App = NetworkSleep<FakeNetwork, FakeStore, FakeWorkspaces>;

/// A handler over the fakes: three gateways opted in to the `nightly`
/// schedule and one that is not, and one workspace (`dev`) to check.
pub fn app() -> App {
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
            sleep_without_workspace_check: false,
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
