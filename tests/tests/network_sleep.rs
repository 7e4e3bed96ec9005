//! network-sleep against moto (EC2, S3, Secrets Manager): a VPC of 3 subnets,
//! 3 opted-in NAT gateways, 1 untagged gateway and 4 route tables, plus a
//! tagged gateway in another VPC that must never be touched.

use aws_sdk_ec2::types::{DomainType, Filter, ResourceType, Tag, TagSpecification};
use lakeops_shared::settings::Env;
use lakeops_shared::Error;
use lakeops_tests::Moto;
use network_sleep::model::{RESTORES_TAG, SLOT_TAG};
use network_sleep::network::{Ec2Network, Network};
use network_sleep::record::RestoreRecord;
use network_sleep::store::{RecordStore, S3RecordStore};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

const SCHEDULE: &str = "nightly";
const BUCKET: &str = "lakeops-state";

struct Net {
    vpc_id: String,
    other_vpc_id: String,
    subnets: Vec<String>,
    /// The opted-in gateways, by subnet index.
    tagged: Vec<String>,
    untagged: String,
    other_vpc_gateway: String,
    allocations: Vec<String>,
    tables: Vec<String>,
}

fn tag_spec(kind: ResourceType, tags: &[(&str, &str)]) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .build()
}

/// An EIP with `tags` (an opted-in gateway's EIP carries the schedule tag,
/// which network-sleep needs to release it).
async fn allocate(ec2: &aws_sdk_ec2::Client, tags: &[(&str, &str)]) -> String {
    let mut call = ec2.allocate_address().domain(DomainType::Vpc);
    if !tags.is_empty() {
        call = call.tag_specifications(tag_spec(ResourceType::ElasticIp, tags));
    }
    call.send()
        .await
        .unwrap()
        .allocation_id()
        .unwrap()
        .to_string()
}

async fn nat(
    ec2: &aws_sdk_ec2::Client,
    subnet: &str,
    allocation: &str,
    tags: &[(&str, &str)],
) -> String {
    let mut call = ec2
        .create_nat_gateway()
        .subnet_id(subnet)
        .allocation_id(allocation);
    if !tags.is_empty() {
        call = call.tag_specifications(tag_spec(ResourceType::Natgateway, tags));
    }
    call.send()
        .await
        .unwrap()
        .nat_gateway()
        .unwrap()
        .nat_gateway_id()
        .unwrap()
        .to_string()
}

async fn route(ec2: &aws_sdk_ec2::Client, table: &str, cidr: &str, nat: &str) {
    ec2.create_route()
        .route_table_id(table)
        .destination_cidr_block(cidr)
        .nat_gateway_id(nat)
        .send()
        .await
        .unwrap();
}

async fn build_network(ec2: &aws_sdk_ec2::Client) -> Net {
    let vpc_id = ec2
        .create_vpc()
        .cidr_block("10.20.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let mut subnets = Vec::new();
    for (i, az) in ["us-east-1a", "us-east-1b", "us-east-1c"]
        .iter()
        .enumerate()
    {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.20.{i}.0/24"))
            .availability_zone(*az)
            .send()
            .await
            .unwrap();
        subnets.push(subnet.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let mut allocations = Vec::new();
    let mut tagged = Vec::new();
    for (i, subnet) in subnets.iter().enumerate() {
        let allocation = allocate(ec2, &[("lakeops:sleep-schedule", SCHEDULE)]).await;
        let name = format!("dev-nat-{i}");
        tagged.push(
            nat(
                ec2,
                subnet,
                &allocation,
                &[
                    ("lakeops:sleep-schedule", SCHEDULE),
                    ("Name", &name),
                    ("team", "data"),
                ],
            )
            .await,
        );
        allocations.push(allocation);
    }
    let untagged_eip = allocate(ec2, &[]).await;
    let untagged = nat(ec2, &subnets[0], &untagged_eip, &[("Name", "shared-nat")]).await;
    let mut tables = Vec::new();
    for _ in 0..4 {
        tables.push(
            ec2.create_route_table()
                .vpc_id(&vpc_id)
                .send()
                .await
                .unwrap()
                .route_table()
                .unwrap()
                .route_table_id()
                .unwrap()
                .to_string(),
        );
    }
    // One private route table per AZ, a second destination on the first, and
    // a fourth table that only uses the untagged gateway.
    route(ec2, &tables[0], "0.0.0.0/0", &tagged[0]).await;
    route(ec2, &tables[0], "172.16.0.0/12", &tagged[0]).await;
    route(ec2, &tables[1], "0.0.0.0/0", &tagged[1]).await;
    route(ec2, &tables[2], "0.0.0.0/0", &tagged[2]).await;
    route(ec2, &tables[3], "0.0.0.0/0", &untagged).await;

    // Another VPC with a gateway tagged for the same schedule.
    let other_vpc_id = ec2
        .create_vpc()
        .cidr_block("10.30.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let other_subnet = ec2
        .create_subnet()
        .vpc_id(&other_vpc_id)
        .cidr_block("10.30.0.0/24")
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_string();
    let other_eip = allocate(ec2, &[("lakeops:sleep-schedule", SCHEDULE)]).await;
    let other_vpc_gateway = nat(
        ec2,
        &other_subnet,
        &other_eip,
        &[("lakeops:sleep-schedule", SCHEDULE)],
    )
    .await;
    Net {
        vpc_id,
        other_vpc_id,
        subnets,
        tagged,
        untagged,
        other_vpc_gateway,
        allocations,
        tables,
    }
}

struct Fixture {
    _moto: Moto,
    sdk: aws_config::SdkConfig,
    ec2: aws_sdk_ec2::Client,
    s3: aws_sdk_s3::Client,
    net: Net,
}

async fn fixture() -> Fixture {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let ec2 = lakeops_shared::aws::ec2(&sdk);
    let s3 = lakeops_shared::aws::s3(&sdk);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let net = build_network(&ec2).await;
    Fixture {
        _moto: moto,
        sdk,
        ec2,
        s3,
        net,
    }
}

impl Fixture {
    fn env(&self, extra: &[(&str, &str)]) -> Env {
        let mut vars: HashMap<String, String> = [
            ("VPC_ID", self.net.vpc_id.as_str()),
            ("SLEEP_SCHEDULE_NAME", SCHEDULE),
            ("STATE_BUCKET", BUCKET),
            // These tests are about the network; the ones about Databricks
            // work set WORKSPACES, which is checked whatever this says.
            ("SLEEP_WITHOUT_WORKSPACE_CHECK", "true"),
            ("DATABRICKS_RETRY_BUDGET_SECONDS", "1"),
            ("DATABRICKS_REQUEST_TIMEOUT_SECONDS", "2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        Env::from_map(vars)
    }

    fn app(&self, extra: &[(&str, &str)]) -> network_sleep::App {
        let mut env = self.env(extra);
        let app = network_sleep::build(&mut env, &self.sdk).unwrap();
        env.finish().unwrap();
        app
    }

    fn network(&self) -> Ec2Network {
        Ec2Network {
            client: self.ec2.clone(),
        }
    }

    fn store(&self) -> S3RecordStore {
        S3RecordStore {
            client: self.s3.clone(),
            bucket: BUCKET.into(),
            prefix: "network-sleep/".into(),
        }
    }

    /// (subnet, allocation, user tags) of every live gateway of the VPC, and
    /// each route table's routes as destination -> slot ("subnet/allocation").
    async fn topology(
        &self,
    ) -> (
        Vec<(String, String, BTreeMap<String, String>)>,
        BTreeMap<String, BTreeMap<String, String>>,
    ) {
        let gateways = self.network().gateways(&self.net.vpc_id).await.unwrap();
        let live: Vec<_> = gateways.iter().filter(|g| g.state.is_live()).collect();
        let mut shape: Vec<_> = live
            .iter()
            .map(|g| {
                let tags = g
                    .tags
                    .iter()
                    .filter(|(k, _)| k.as_str() != SLOT_TAG && k.as_str() != RESTORES_TAG)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                (
                    g.subnet_id.clone(),
                    g.allocation_id.clone().unwrap_or_default(),
                    tags,
                )
            })
            .collect();
        shape.sort();
        let slot_of = |nat: &str| -> String {
            gateways
                .iter()
                .find(|g| g.id == nat)
                .map(|g| {
                    format!(
                        "{}/{}/{}",
                        g.subnet_id,
                        g.allocation_id.clone().unwrap_or_default(),
                        g.state.as_str()
                    )
                })
                .unwrap_or_else(|| format!("missing {nat}"))
        };
        let mut routes = BTreeMap::new();
        for table in self.network().route_tables(&self.net.vpc_id).await.unwrap() {
            let entries: BTreeMap<String, String> = table
                .routes
                .iter()
                .filter_map(|r| {
                    Some((
                        r.destination.to_string(),
                        slot_of(r.nat_gateway_id.as_deref()?),
                    ))
                })
                .collect();
            routes.insert(table.id, entries);
        }
        (shape, routes)
    }

    async fn live_tagged(&self) -> Vec<network_sleep::model::Gateway> {
        self.network()
            .gateways(&self.net.vpc_id)
            .await
            .unwrap()
            .into_iter()
            .filter(|g| g.state.is_live() && g.tag("lakeops:sleep-schedule") == Some(SCHEDULE))
            .collect()
    }

    async fn state_of(&self, nat: &str) -> String {
        let out = self
            .ec2
            .describe_nat_gateways()
            .nat_gateway_ids(nat)
            .send()
            .await
            .unwrap();
        out.nat_gateways()[0].state().unwrap().as_str().to_string()
    }

    async fn records(&self) -> Vec<RestoreRecord> {
        self.store().list(&self.net.vpc_id, SCHEDULE).await.unwrap()
    }
}

fn gateways_with(report: &Value, result: &str) -> usize {
    report["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["result"] == result)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleep_and_wake_restore_the_same_topology_and_repeat_harmlessly() {
    let f = fixture().await;
    let app = f.app(&[]);
    let (shape_before, routes_before) = f.topology().await;
    assert_eq!(shape_before.len(), 4);

    let status = app.handle(json!({"action": "status"})).await.unwrap();
    assert_eq!(status["gateways_awake"], 3, "{status:#}");
    assert_eq!(status["gateways_asleep"], 0);

    // Sleep: exactly the three tagged gateways of this VPC go.
    let report = app.handle(json!({"action": "sleep"})).await.unwrap();
    assert_eq!(report["outcome"], "slept", "{report:#}");
    assert_eq!(gateways_with(&report, "deleted"), 3, "{report:#}");
    for nat in &f.net.tagged {
        assert_eq!(f.state_of(nat).await, "deleted");
    }
    assert_eq!(f.state_of(&f.net.untagged).await, "available");
    assert_eq!(f.state_of(&f.net.other_vpc_gateway).await, "available");
    assert_eq!(report["gateways_asleep"], 3);
    assert_eq!(report["gateways_awake"], 0);

    // The routes are recorded, each with its table and destination.
    let records = f.records().await;
    assert_eq!(records.len(), 3);
    let mut recorded: Vec<(String, String)> = records
        .iter()
        .flat_map(|r| {
            r.routes
                .iter()
                .map(|rr| (rr.route_table_id.clone(), rr.destination.to_string()))
        })
        .collect();
    recorded.sort();
    let mut expected = vec![
        (f.net.tables[0].clone(), "0.0.0.0/0".to_string()),
        (f.net.tables[0].clone(), "172.16.0.0/12".to_string()),
        (f.net.tables[1].clone(), "0.0.0.0/0".to_string()),
        (f.net.tables[2].clone(), "0.0.0.0/0".to_string()),
    ];
    expected.sort();
    assert_eq!(recorded, expected);
    for record in &records {
        let i = f
            .net
            .subnets
            .iter()
            .position(|s| s == &record.gateway.subnet_id)
            .unwrap();
        assert_eq!(
            record.gateway.allocation_id.as_deref(),
            Some(f.net.allocations[i].as_str())
        );
        assert_eq!(record.gateway.tags["Name"], format!("dev-nat-{i}"));
        assert_eq!(record.asleep_gateway_id, f.net.tagged[i]);
    }
    // The EIPs are kept.
    for allocation in &f.net.allocations {
        assert!(f.network().address(allocation).await.unwrap().is_some());
    }

    // Sleeping twice is harmless.
    let again = app.handle(json!({"action": "sleep"})).await.unwrap();
    assert_eq!(again["outcome"], "nothing_to_do", "{again:#}");
    assert_eq!(f.records().await, records);

    // Wake: the same topology, with the same EIPs, and working routes.
    // One pass, no waiting: moto's new gateways are available at once.
    let woke = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "woke", "{woke:#}");
    assert_eq!(gateways_with(&woke, "created"), 3, "{woke:#}");
    assert!(woke.get("waiting_for").is_none(), "{woke:#}");
    let (shape_after, routes_after) = f.topology().await;
    assert_eq!(shape_after, shape_before);
    assert_eq!(
        routes_after, routes_before,
        "every route points at the gateway of the same subnet and EIP, available"
    );
    let live = f.live_tagged().await;
    assert_eq!(live.len(), 3);
    for gateway in &live {
        assert!(!f.net.tagged.contains(&gateway.id), "a new gateway");
        let address = f
            .network()
            .address(gateway.allocation_id.as_deref().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            address.network_interface_id, gateway.network_interface_id,
            "the EIP is on the new gateway"
        );
    }
    assert_eq!(f.state_of(&f.net.untagged).await, "available");

    // Waking twice is harmless: no second set of gateways.
    let again = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(again["outcome"], "nothing_to_do", "{again:#}");
    assert_eq!(f.live_tagged().await.len(), 3);
    assert_eq!(
        f.topology().await,
        (shape_before.clone(), routes_before.clone())
    );

    // A second night works on the gateways the first wake created.
    let report = app.handle(json!({"action": "sleep"})).await.unwrap();
    assert_eq!(gateways_with(&report, "deleted"), 3, "{report:#}");
    let woke = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "woke", "{woke:#}");
    assert_eq!(f.topology().await, (shape_before, routes_before));

    let status = app.handle(json!({"action": "status"})).await.unwrap();
    assert_eq!(status["gateways_awake"], 3);
    assert_eq!(status["gateways_asleep"], 0);
    assert!(status["savings_this_month"]["hours"].as_f64().unwrap() >= 0.0);
    assert!(status["savings_this_month"]["month_start"]
        .as_str()
        .unwrap()
        .ends_with("T00:00:00Z"));
    // The other VPC was never touched.
    assert_eq!(f.state_of(&f.net.other_vpc_gateway).await, "available");
    let _ = &f.net.other_vpc_id;
}

/// A record store that fails (like a crash) after a number of writes.
struct CrashingStore {
    inner: S3RecordStore,
    writes_left: AtomicUsize,
}

impl RecordStore for CrashingStore {
    async fn list(&self, vpc_id: &str, schedule: &str) -> Result<Vec<RestoreRecord>, Error> {
        self.inner.list(vpc_id, schedule).await
    }

    async fn put(&self, record: &RestoreRecord) -> Result<(), Error> {
        if self
            .writes_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err(Error::terminal("injected crash"));
        }
        self.inner.put(record).await
    }
}

fn crashing(
    app: network_sleep::App,
    writes: usize,
) -> network_sleep::NetworkSleep<
    Ec2Network,
    CrashingStore,
    network_sleep::workspaces::DatabricksWorkspaces,
> {
    network_sleep::NetworkSleep {
        settings: app.settings,
        network: app.network,
        store: CrashingStore {
            inner: app.store,
            writes_left: AtomicUsize::new(writes),
        },
        workspaces: app.workspaces,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_sleep_and_a_crashed_wake_are_finished_by_running_again() {
    let f = fixture().await;
    let topology_before = f.topology().await;

    // The sleep crashes when recording the third gateway: two are gone.
    let error = crashing(f.app(&[]), 2)
        .handle(json!({"action": "sleep"}))
        .await
        .unwrap_err();
    assert!(error.message.contains("injected crash"), "{error:?}");
    let deleted = {
        let mut n = 0;
        for nat in &f.net.tagged {
            if f.state_of(nat).await == "deleted" {
                n += 1;
            }
        }
        n
    };
    assert_eq!(deleted, 2);

    // A wake restores what was slept.
    let woke = f.app(&[]).handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "woke", "{woke:#}");
    assert_eq!(f.topology().await, topology_before);

    // A full sleep, then a wake that crashes after bringing one slot back.
    f.app(&[]).handle(json!({"action": "sleep"})).await.unwrap();
    let error = crashing(f.app(&[]), 1)
        .handle(json!({"action": "wake"}))
        .await
        .unwrap_err();
    assert!(error.message.contains("injected crash"), "{error:?}");
    assert_eq!(
        f.live_tagged().await.len(),
        3,
        "all three were created before the crash"
    );

    // Running it again finds the gateways the crashed wake created.
    let woke = f.app(&[]).handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "woke", "{woke:#}");
    assert_eq!(gateways_with(&woke, "adopted"), 2, "{woke:#}");
    assert_eq!(f.live_tagged().await.len(), 3, "no duplicates");
    assert_eq!(f.topology().await, topology_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_cannot_be_recreated_is_reported_and_the_others_wake() {
    let f = fixture().await;
    let app = f.app(&[]);
    app.handle(json!({"action": "sleep"})).await.unwrap();

    // Someone puts the second EIP on an interface of their own overnight.
    let eni = f
        .ec2
        .create_network_interface()
        .subnet_id(&f.net.subnets[1])
        .send()
        .await
        .unwrap()
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_string();
    // The deleted gateway's interface may still hold it (moto keeps it).
    if let Some(address) = f.network().address(&f.net.allocations[1]).await.unwrap() {
        if let Some(association) = address.association_id {
            f.network()
                .disassociate_address(&association)
                .await
                .unwrap();
        }
    }
    f.ec2
        .associate_address()
        .allocation_id(&f.net.allocations[1])
        .network_interface_id(&eni)
        .send()
        .await
        .unwrap();

    let woke = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "partial", "{woke:#}");
    let failed: Vec<&Value> = woke["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["result"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{woke:#}");
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&eni) && reason.contains(&f.net.allocations[1]),
        "{reason}"
    );
    assert_eq!(gateways_with(&woke, "created"), 2);
    assert_eq!(f.live_tagged().await.len(), 2);

    // Freed, the next wake finishes the job.
    let address = f
        .network()
        .address(&f.net.allocations[1])
        .await
        .unwrap()
        .unwrap();
    f.network()
        .disassociate_address(address.association_id.as_deref().unwrap())
        .await
        .unwrap();
    let woke = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "woke", "{woke:#}");
    assert_eq!(f.live_tagged().await.len(), 3);
    let (_, routes) = f.topology().await;
    assert!(
        routes
            .values()
            .flat_map(|r| r.values())
            .all(|slot| slot.ends_with("/available")),
        "{routes:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_eips_are_replaced_on_wake() {
    let f = fixture().await;
    let app = f.app(&[]);
    let slept = app
        .handle(json!({"action": "sleep", "release_eips": true}))
        .await
        .unwrap();
    // moto deletes gateways at once: one pass releases every EIP, nothing
    // waits (on AWS this pass reports `releasing`, see the unit tests).
    assert_eq!(slept["outcome"], "slept", "{slept:#}");
    assert!(slept.get("waiting_for").is_none(), "{slept:#}");
    let released = slept["released_eips"].to_string();
    for allocation in &f.net.allocations {
        assert!(
            f.network().address(allocation).await.unwrap().is_none(),
            "{allocation} released"
        );
        assert!(released.contains(allocation.as_str()), "{slept:#}");
    }
    assert!(f.records().await.iter().all(|r| r.eip_released));
    let again = app
        .handle(json!({"action": "sleep", "release_eips": true}))
        .await
        .unwrap();
    assert_eq!(again["outcome"], "nothing_to_do", "{again:#}");

    let woke = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "woke", "{woke:#}");
    let live = f.live_tagged().await;
    assert_eq!(live.len(), 3);
    for gateway in &live {
        let allocation = gateway.allocation_id.as_deref().unwrap();
        assert!(
            !f.net.allocations.iter().any(|a| a == allocation),
            "a new EIP"
        );
        let tagged = f
            .ec2
            .describe_addresses()
            .filters(
                Filter::builder()
                    .name("tag:lakeops:slot")
                    .values(gateway.tag("lakeops:slot").unwrap())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(tagged.addresses().len(), 1);
    }
    let (_, routes) = f.topology().await;
    let nat_routes: usize = routes.values().map(|r| r.len()).sum();
    assert_eq!(nat_routes, 5);
    assert!(
        routes
            .values()
            .flat_map(|r| r.values())
            .all(|slot| slot.ends_with("/available")),
        "{routes:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_that_cannot_be_checked_refuses_the_sleep_unless_forced() {
    let f = fixture().await;
    let secrets = lakeops_shared::aws::secretsmanager(&f.sdk);
    // A workspace nobody answers at: "no answer" must not mean "nothing runs".
    let dead_url = format!("http://127.0.0.1:{}", lakeops_tests::free_port());
    let secret = secrets
        .create_secret()
        .name("lakeops/dev/workspace")
        .secret_string(json!({"kind": "databricks-pat", "workspace_url": dead_url, "token": "dapi-never-logged", "token_id": "t1", "lifetime_days": 90}).to_string())
        .send()
        .await
        .unwrap();
    let workspaces = json!([{"name": "dev", "secret_arn": secret.arn().unwrap()}]).to_string();
    let app = f.app(&[("WORKSPACES", &workspaces)]);

    let refused = app.handle(json!({"action": "sleep"})).await.unwrap();
    assert_eq!(refused["outcome"], "refused", "{refused:#}");
    let reasons = refused["refused_because"].to_string();
    assert!(
        reasons.contains("dev") && reasons.contains("could not be checked"),
        "{reasons}"
    );
    assert!(!refused.to_string().contains("dapi-never-logged"));
    assert_eq!(f.live_tagged().await.len(), 3, "nothing was touched");
    assert!(f.records().await.is_empty());

    let forced = app
        .handle(json!({"action": "sleep", "force": true}))
        .await
        .unwrap();
    assert_eq!(forced["outcome"], "slept", "{forced:#}");
    assert_eq!(f.live_tagged().await.len(), 0);
    assert!(forced["forced_past"]
        .to_string()
        .contains("could not be checked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_rejected_before_anything_is_touched() {
    let f = fixture().await;
    let app = f.app(&[]);
    for event in [
        json!({}),
        json!({"action": "nap"}),
        json!({"action": "sleep", "forced": true}),
        json!({"action": "wake", "force": true}),
    ] {
        let error = app.handle(event.clone()).await.unwrap_err();
        assert_eq!(error.error_name(), "Lakeops.InvalidInput", "{event}");
    }
    assert_eq!(f.live_tagged().await.len(), 3);
}

mod with_the_emulator {
    use super::*;
    use lakeops_shared::databricks::{Credentials, DatabricksConnector, DatabricksSettings};
    use lakeops_shared::Secret;
    use lakeops_tests::DatabricksEmulator;
    use std::time::Duration;

    const ADMIN_SECRET: &str = "dose00000000000000000000000000000001";

    /// A running workspace `dev-net` in the emulator, and its base URL.
    async fn workspace(emulator: &DatabricksEmulator) -> (DatabricksConnector, Value, String) {
        let info: Value = reqwest::get(format!("{}/_emulator/info", emulator.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let vars: HashMap<String, String> = [
            (
                "DATABRICKS_ACCOUNT_HOST".to_string(),
                info["account_host"].as_str().unwrap().to_string(),
            ),
            (
                "DATABRICKS_WORKSPACE_HOST_TEMPLATE".to_string(),
                info["workspace_host_template"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
        ]
        .into_iter()
        .collect();
        let connector =
            DatabricksConnector::new(DatabricksSettings::read(&mut Env::from_map(vars))).unwrap();
        let admin = || Credentials::OAuthM2M {
            client_id: info["admin_client_id"].as_str().unwrap().to_string(),
            client_secret: Secret::new(ADMIN_SECRET),
        };
        let account = connector.account(info["account_id"].as_str().unwrap(), admin());
        let created: Value = account
            .post(
                &account.account_path("workspaces"),
                &json!({"workspace_name": "dev", "deployment_name": "dev-net", "aws_region": "us-east-1", "compute_mode": "SERVERLESS"}),
            )
            .await
            .unwrap();
        let id = created["workspace_id"].as_i64().unwrap();
        for _ in 0..100 {
            let ws: Value = account
                .get(&account.account_path(&format!("workspaces/{id}")))
                .await
                .unwrap();
            if ws["workspace_status"] == "RUNNING" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let url = connector.settings().workspace_url("dev-net");
        (connector, info, url)
    }

    /// `WORKSPACES` naming the emulator's workspace at `url`, with the admin's
    /// OAuth secret stored in Secrets Manager.
    async fn workspaces_setting(f: &Fixture, info: &Value, url: &str) -> String {
        let secret = lakeops_shared::aws::secretsmanager(&f.sdk)
            .create_secret()
            .name("lakeops/dev/databricks-dev")
            .secret_string(
                json!({
                    "kind": "databricks-sp-secret",
                    "account_id": info["account_id"],
                    "service_principal_id": "1",
                    "client_id": info["admin_client_id"],
                    "client_secret": ADMIN_SECRET,
                    "secret_id": "s-1",
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        json!([{"name": "dev", "secret_arn": secret.arn().unwrap(), "workspace_url": url}])
            .to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_sql_warehouse_or_pipeline_on_a_later_page_refuses_the_sleep() {
        let f = fixture().await;
        // Warehouses settle at once; pipeline updates stay STARTING, stops STOPPING.
        let emulator = DatabricksEmulator::start_with(&[
            "--provisioning-seconds",
            "0",
            "--cluster-seconds",
            "0",
            "--run-seconds",
            "600",
        ]);
        let (connector, info, url) = workspace(&emulator).await;
        let ws = connector.workspace_at(
            &url,
            Credentials::OAuthM2M {
                client_id: info["admin_client_id"].as_str().unwrap().to_string(),
                client_secret: Secret::new(ADMIN_SECRET),
            },
        );
        // More than one page of each (network-sleep asks for 100 a page);
        // only the last warehouse and the pipeline listed last are busy.
        let mut warehouses = Vec::new();
        for i in 0..101 {
            let created: Value = ws
                .post(
                    "/api/2.0/sql/warehouses",
                    &json!({"name": format!("wh-{i}"), "cluster_size": "2X-Small"}),
                )
                .await
                .unwrap();
            warehouses.push(created["id"].as_str().unwrap().to_string());
        }
        let busy_warehouse = warehouses.pop().unwrap();
        for id in &warehouses {
            let _: Value = ws
                .post(&format!("/api/2.0/sql/warehouses/{id}/stop"), &json!({}))
                .await
                .unwrap();
        }
        let mut pipelines = Vec::new();
        for i in 0..101 {
            let created: Value = ws
                .post("/api/2.0/pipelines", &json!({"name": format!("dlt-{i}")}))
                .await
                .unwrap();
            pipelines.push(created["pipeline_id"].as_str().unwrap().to_string());
        }
        pipelines.sort(); // the list's order
        let busy_pipeline = pipelines.last().unwrap().clone();
        let _: Value = ws
            .post(
                &format!("/api/2.0/pipelines/{busy_pipeline}/updates"),
                &json!({}),
            )
            .await
            .unwrap();

        let busy_name = pipeline_name(&ws, &busy_pipeline).await;

        let workspaces = workspaces_setting(&f, &info, &url).await;
        let app = f.app(&[("WORKSPACES", &workspaces)]);
        let refused = app.handle(json!({"action": "sleep"})).await.unwrap();
        assert_eq!(refused["outcome"], "refused", "{refused:#}");
        assert_eq!(
            refused["refused_because"],
            json!([
                format!("workspace dev: SQL warehouse {busy_warehouse} (wh-100) is RUNNING"),
                format!("workspace dev: pipeline {busy_pipeline} ({busy_name}) is STARTING"),
            ]),
            "{refused:#}"
        );
        assert_eq!(f.live_tagged().await.len(), 3, "nothing was touched");

        // Stopped, and stopping: neither holds the network up any more.
        let _: Value = ws
            .post(
                &format!("/api/2.0/sql/warehouses/{busy_warehouse}/stop"),
                &json!({}),
            )
            .await
            .unwrap();
        let _: Value = ws
            .post(
                &format!("/api/2.0/pipelines/{busy_pipeline}/stop"),
                &json!({}),
            )
            .await
            .unwrap();
        let slept = app.handle(json!({"action": "sleep"})).await.unwrap();
        assert_eq!(slept["outcome"], "slept", "{slept:#}");
        assert_eq!(f.live_tagged().await.len(), 0);
    }

    async fn pipeline_name(
        ws: &lakeops_shared::databricks::DatabricksClient,
        pipeline_id: &str,
    ) -> String {
        let got: Value = ws
            .get(&format!("/api/2.0/pipelines/{pipeline_id}"))
            .await
            .unwrap();
        got["name"].as_str().unwrap().to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sleep_is_refused_while_a_job_runs_and_goes_ahead_with_force() {
        let f = fixture().await;
        let emulator = DatabricksEmulator::start_with(&[
            "--provisioning-seconds",
            "0",
            "--cluster-seconds",
            "0",
            "--run-seconds",
            "600",
        ]);
        let (connector, info, url) = workspace(&emulator).await;
        let ws = connector.workspace_at(
            &url,
            Credentials::OAuthM2M {
                client_id: info["admin_client_id"].as_str().unwrap().to_string(),
                client_secret: Secret::new(ADMIN_SECRET),
            },
        );
        let job: Value = ws
            .post("/api/2.1/jobs/create", &json!({"name": "nightly-etl"}))
            .await
            .unwrap();
        let run: Value = ws
            .post("/api/2.1/jobs/run-now", &json!({"job_id": job["job_id"]}))
            .await
            .unwrap();
        let cluster: Value = ws
            .post(
                "/api/2.1/clusters/create",
                &json!({"cluster_name": "adhoc", "spark_version": "15.4.x-scala2.12", "node_type_id": "m5d.large", "num_workers": 0}),
            )
            .await
            .unwrap();
        let cluster_id = cluster["cluster_id"].as_str().unwrap().to_string();

        let workspaces = workspaces_setting(&f, &info, &url).await;
        // Every running cluster counts as idle: the job alone must hold the network up.
        let app = f.app(&[("WORKSPACES", &workspaces), ("IDLE_MINUTES", "0")]);

        let refused = app.handle(json!({"action": "sleep"})).await.unwrap();
        assert_eq!(refused["outcome"], "refused", "{refused:#}");
        let reasons = refused["refused_because"].to_string();
        assert!(
            reasons.contains(&format!("job run {}", run["run_id"])),
            "{reasons}"
        );
        assert_eq!(f.live_tagged().await.len(), 3, "nothing was touched");
        let state: Value = ws
            .get_query(
                "/api/2.1/clusters/get",
                &[("cluster_id", cluster_id.clone())],
            )
            .await
            .unwrap();
        assert_eq!(
            state["state"], "RUNNING",
            "no cluster is terminated by a refused sleep"
        );
        assert!(!refused.to_string().contains(ADMIN_SECRET));

        let forced = app
            .handle(json!({"action": "sleep", "force": true}))
            .await
            .unwrap();
        assert_eq!(forced["outcome"], "slept", "{forced:#}");
        assert_eq!(f.live_tagged().await.len(), 0);
        assert_eq!(
            forced["terminated_clusters"],
            json!([format!("dev/{cluster_id}")]),
            "{forced:#}"
        );
        let state: Value = ws
            .get_query(
                "/api/2.1/clusters/get",
                &[("cluster_id", cluster_id.clone())],
            )
            .await
            .unwrap();
        assert!(
            matches!(state["state"].as_str(), Some("TERMINATING" | "TERMINATED")),
            "{state:#}"
        );

        // Awake again; once the run is over, the next sleep needs no force.
        app.handle(json!({"action": "wake"})).await.unwrap();
        let _: Value = ws
            .post(
                "/api/2.1/jobs/runs/cancel",
                &json!({"run_id": run["run_id"]}),
            )
            .await
            .unwrap();
        let mut slept = Value::Null;
        for _ in 0..50 {
            slept = app.handle(json!({"action": "sleep"})).await.unwrap();
            if slept["outcome"] != "refused" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(slept["outcome"], "slept", "{slept:#}");
        assert_eq!(f.live_tagged().await.len(), 0);
    }
}
