//! The walkthrough of functions/network-sleep/README.md: build the sample network in moto (a VPC of 3
//! subnets, 3 opted-in NAT gateways, 1 untagged gateway, 4 route tables),
//! sleep it, wake it, and print the reports and the saving estimate.
//!
//! `AWS_ENDPOINT_URL=http://127.0.0.1:4566 cargo run -p network-sleep --example sample_network`

use aws_sdk_ec2::types::{DomainType, ResourceType, Tag, TagSpecification};
use lakeops_shared::settings::Env;
use network_sleep::savings::{monthly_plan, Prices};
use serde_json::json;

const SCHEDULE: &str = "nightly";

async fn nat(
    ec2: &aws_sdk_ec2::Client,
    subnet: &str,
    tags: &[(&str, &str)],
) -> Result<String, Box<dyn std::error::Error>> {
    let allocation = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .send()
        .await?;
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::Natgateway)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .build();
    let created = ec2
        .create_nat_gateway()
        .subnet_id(subnet)
        .set_allocation_id(allocation.allocation_id().map(String::from))
        .tag_specifications(tags)
        .send()
        .await?;
    Ok(created
        .nat_gateway()
        .and_then(|n| n.nat_gateway_id())
        .unwrap_or_default()
        .to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    let sdk = lakeops_shared::aws::sdk_config_for_emulator(&endpoint).await;
    let ec2 = lakeops_shared::aws::ec2(&sdk);
    let s3 = lakeops_shared::aws::s3(&sdk);
    let bucket = "lakeops-dev-network-sleep";
    if s3.head_bucket().bucket(bucket).send().await.is_err() {
        s3.create_bucket().bucket(bucket).send().await?;
    }

    let vpc = ec2.create_vpc().cidr_block("10.20.0.0/16").send().await?;
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_string();
    let mut gateways = Vec::new();
    let mut first_subnet = String::new();
    for (i, az) in ["a", "b", "c"].iter().enumerate() {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.20.{i}.0/24"))
            .availability_zone(format!("us-east-1{az}"))
            .send()
            .await?;
        let subnet_id = subnet
            .subnet()
            .and_then(|s| s.subnet_id())
            .unwrap_or_default()
            .to_string();
        if i == 0 {
            first_subnet = subnet_id.clone();
        }
        gateways.push(
            nat(
                &ec2,
                &subnet_id,
                &[
                    ("lakeops:sleep-schedule", SCHEDULE),
                    ("Name", &format!("dev-nat-{az}")),
                ],
            )
            .await?,
        );
    }
    gateways.push(nat(&ec2, &first_subnet, &[("Name", "shared-nat")]).await?);
    for gateway in &gateways {
        let table = ec2.create_route_table().vpc_id(&vpc_id).send().await?;
        let table_id = table
            .route_table()
            .and_then(|t| t.route_table_id())
            .unwrap_or_default();
        ec2.create_route()
            .route_table_id(table_id)
            .destination_cidr_block("0.0.0.0/0")
            .nat_gateway_id(gateway)
            .send()
            .await?;
    }
    println!("sample network: {vpc_id}, gateways {gateways:?} (the last one untagged)");

    let vars = [
        ("VPC_ID", vpc_id.as_str()),
        ("SLEEP_SCHEDULE_NAME", SCHEDULE),
        ("STATE_BUCKET", bucket),
    ];
    let mut env = Env::from_map(
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let app = network_sleep::build(&mut env, &sdk)?;
    env.finish()?;

    for action in ["status", "sleep", "status", "wake", "status"] {
        let report = app.handle(json!({ "action": action })).await?;
        println!("\n== {action}: {}", report["outcome"]);
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    let monthly = monthly_plan(3, 10.0, 5, Prices::default());
    println!("\nSaving estimate: sleeping 3 gateways 21:00-07:00 on weekdays and all weekend saves about ${monthly:.2} a month (of ${:.2}).", 3.0 * 720.0 * 0.045);
    Ok(())
}
