//! Whole-stack test of network sleep and wake: the template deployed with
//! `NetworkSleepVpcId` for a moto VPC, the sleep schedule fired, then the wake
//! schedule; each starts the REAL `NetworkSleepStateMachine` in moto's Step
//! Functions with its input, which invokes the real network-sleep function
//! through the local stack's router. Nothing is called in-process.
//!
//! moto's NAT gateways are `available` at once and deleted at once, so every
//! execution here finishes in one pass; the waiting between passes (Wait, the
//! counter, the time limit, for `waking` and `releasing`) is run by the same
//! definition with the Task replaced by a stand-in (the function's `waking`
//! and `releasing` are unit-tested with fakes).

use aws_sdk_ec2::types::{DomainType, ResourceType, Tag, TagSpecification};
use aws_sdk_sfn::types::ExecutionStatus;
use lakeops_tests::LocalStack;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SCHEDULE: &str = "nightly";

struct Execution {
    status: ExecutionStatus,
    output: Value,
    error: String,
    cause: String,
}

async fn run(sfn: &aws_sdk_sfn::Client, arn: &str, input: Value, timeout: Duration) -> Execution {
    let started = sfn
        .start_execution()
        .state_machine_arn(arn)
        .input(input.to_string())
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        let described = sfn
            .describe_execution()
            .execution_arn(started.execution_arn())
            .send()
            .await
            .unwrap();
        if *described.status() != ExecutionStatus::Running {
            return Execution {
                status: described.status().clone(),
                output: described
                    .output()
                    .map(|o| serde_json::from_str(o).unwrap())
                    .unwrap_or(Value::Null),
                error: described.error().unwrap_or_default().to_string(),
                cause: described.cause().unwrap_or_default().to_string(),
            };
        }
        assert!(
            Instant::now() < deadline,
            "{arn} still running after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct Net {
    vpc_id: String,
    /// The opted-in gateways' subnets and allocations, by index.
    subnets: Vec<String>,
    allocations: Vec<String>,
    /// One route table per gateway, 0.0.0.0/0 through it.
    tables: Vec<String>,
}

async fn build_network(ec2: &aws_sdk_ec2::Client) -> Net {
    let vpc_id = ec2
        .create_vpc()
        .cidr_block("10.52.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let mut net = Net {
        vpc_id,
        subnets: Vec::new(),
        allocations: Vec::new(),
        tables: Vec::new(),
    };
    for (i, az) in ["us-east-1a", "us-east-1b", "us-east-1c"]
        .iter()
        .enumerate()
    {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&net.vpc_id)
            .cidr_block(format!("10.52.{i}.0/24"))
            .availability_zone(*az)
            .send()
            .await
            .unwrap()
            .subnet()
            .unwrap()
            .subnet_id()
            .unwrap()
            .to_string();
        // Opted in like its gateway, so that a sleep may release it.
        let allocation = ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::ElasticIp)
                    .tags(
                        Tag::builder()
                            .key("lakeops:sleep-schedule")
                            .value(SCHEDULE)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .allocation_id()
            .unwrap()
            .to_string();
        let gateway = ec2
            .create_nat_gateway()
            .subnet_id(&subnet)
            .allocation_id(&allocation)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Natgateway)
                    .tags(
                        Tag::builder()
                            .key("lakeops:sleep-schedule")
                            .value(SCHEDULE)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .nat_gateway()
            .unwrap()
            .nat_gateway_id()
            .unwrap()
            .to_string();
        let table = ec2
            .create_route_table()
            .vpc_id(&net.vpc_id)
            .send()
            .await
            .unwrap()
            .route_table()
            .unwrap()
            .route_table_id()
            .unwrap()
            .to_string();
        ec2.create_route()
            .route_table_id(&table)
            .destination_cidr_block("0.0.0.0/0")
            .nat_gateway_id(&gateway)
            .send()
            .await
            .unwrap();
        net.subnets.push(subnet);
        net.allocations.push(allocation);
        net.tables.push(table);
    }
    net
}

/// (subnet, allocation, state) of the gateway each table's 0.0.0.0/0 uses.
async fn route_targets(ec2: &aws_sdk_ec2::Client, net: &Net) -> Vec<(String, String, String)> {
    let gateways = ec2
        .describe_nat_gateways()
        .send()
        .await
        .unwrap()
        .nat_gateways()
        .to_vec();
    let mut targets = Vec::new();
    for table in &net.tables {
        let tables = ec2
            .describe_route_tables()
            .route_table_ids(table)
            .send()
            .await
            .unwrap();
        let nat = tables.route_tables()[0]
            .routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
            .and_then(|r| r.nat_gateway_id())
            .unwrap_or_default()
            .to_string();
        let gateway = gateways
            .iter()
            .find(|g| g.nat_gateway_id() == Some(nat.as_str()));
        targets.push(match gateway {
            Some(g) => (
                g.subnet_id().unwrap_or_default().to_string(),
                g.nat_gateway_addresses()
                    .first()
                    .and_then(|a| a.allocation_id())
                    .unwrap_or_default()
                    .to_string(),
                g.state()
                    .map(|s| s.as_str())
                    .unwrap_or_default()
                    .to_string(),
            ),
            None => (String::new(), String::new(), format!("no gateway {nat}")),
        });
    }
    targets
}

/// The output of the execution a schedule started (fire-schedule waits for its end).
fn fired(output: &str) -> Value {
    let fired: Value = serde_json::from_str(output).unwrap_or_else(|_| panic!("{output}"));
    let result = &fired["results"][0];
    assert_eq!(result["status"], "SUCCEEDED", "{fired:#}");
    serde_json::from_str(result["output"].as_str().unwrap()).unwrap()
}

/// Whether moto still knows these allocation ids.
async fn allocated(ec2: &aws_sdk_ec2::Client, allocations: &[&String]) -> Vec<bool> {
    let addresses = ec2.describe_addresses().send().await.unwrap();
    allocations
        .iter()
        .map(|a| {
            addresses
                .addresses()
                .iter()
                .any(|x| x.allocation_id() == Some(a.as_str()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedules_run_the_state_machine_that_sleeps_and_restores_the_network() {
    let mut stack = LocalStack::start();
    let sdk = stack.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let net = build_network(&ec2).await;
    stack.deploy(&[
        ("NetworkSleepVpcId", net.vpc_id.as_str()),
        // No Databricks workspace in this test: sleeping without the check is
        // what it means to do.
        ("NetworkSleepWithoutWorkspaceCheck", "true"),
        ("NetworkSleepPollSeconds", "10"),
        ("NetworkSleepMaxWaitSeconds", "5"),
    ]);
    let awake: Vec<(String, String, String)> = net
        .subnets
        .iter()
        .zip(&net.allocations)
        .map(|(s, a)| (s.clone(), a.clone(), "available".to_string()))
        .collect();
    assert_eq!(route_targets(&ec2, &net).await, awake);

    let slept = fired(&stack.fire_schedule("NetworkSleepSchedule"));
    assert_eq!(slept["action"], "sleep", "{slept:#}");
    assert_eq!(slept["outcome"], "slept", "{slept:#}");
    assert_eq!(slept["passes"], 1, "{slept:#}");
    assert_eq!(slept["report"]["gateways"].as_array().unwrap().len(), 3);
    let asleep = route_targets(&ec2, &net).await;
    assert!(
        asleep.iter().all(|(_, _, state)| state == "deleted"),
        "blackhole routes to the deleted gateways: {asleep:?}"
    );

    let woke = fired(&stack.fire_schedule("NetworkWakeSchedule"));
    assert_eq!(woke["action"], "wake", "{woke:#}");
    assert_eq!(woke["outcome"], "woke", "{woke:#}");
    assert_eq!(woke["passes"], 1, "moto's gateways are available at once");
    assert_eq!(woke["report"]["gateways"].as_array().unwrap().len(), 3);
    assert_eq!(
        route_targets(&ec2, &net).await,
        awake,
        "same subnets, same EIPs, routes back"
    );

    // By hand, as functions/network-sleep/README.md says: nothing asleep, nothing to do.
    let machine = stack.resource("NetworkSleepStateMachine");
    let wake = json!({"action": "wake"});
    let again = run(&sfn, &machine, wake.clone(), Duration::from_secs(120)).await;
    assert_eq!(again.status, ExecutionStatus::Succeeded, "{}", again.cause);
    assert_eq!(again.output["outcome"], "nothing_to_do");

    // A bad input is the function's error, with its name in the cause.
    let bad = run(
        &sfn,
        &machine,
        json!({"action": "wake", "force": true}),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(bad.status, ExecutionStatus::Failed, "{:#}", bad.output);
    assert_eq!(bad.error, "Lakeops.NetworkSleepFailed");
    assert!(bad.cause.contains("Lakeops.InvalidInput"), "{}", bad.cause);

    // An EIP released outside lakeops while the network sleeps: the others
    // wake, and the execution fails with the reason.
    let slept = fired(&stack.fire_schedule("NetworkSleepSchedule"));
    assert_eq!(slept["outcome"], "slept", "{slept:#}");
    let lost = &net.allocations[1];
    let addresses = ec2
        .describe_addresses()
        .allocation_ids(lost)
        .send()
        .await
        .unwrap();
    if let Some(association) = addresses.addresses()[0].association_id() {
        ec2.disassociate_address()
            .association_id(association)
            .send()
            .await
            .unwrap();
    }
    ec2.release_address()
        .allocation_id(lost)
        .send()
        .await
        .unwrap();
    let partial = run(&sfn, &machine, wake.clone(), Duration::from_secs(120)).await;
    assert_eq!(
        partial.status,
        ExecutionStatus::Failed,
        "{:#}",
        partial.output
    );
    assert_eq!(partial.error, "Lakeops.NetworkSleepPartial");
    assert!(
        partial.cause.contains("the wake failed for some gateways")
            && partial.cause.contains(lost.as_str())
            && partial.cause.contains("no longer exists"),
        "{}",
        partial.cause
    );
    let targets = route_targets(&ec2, &net).await;
    assert_eq!(targets[0], awake[0]);
    assert_eq!(targets[2], awake[2]);
    assert_eq!(targets[1].2, "deleted", "{targets:?}");

    // A sleep by hand that releases the EIPs: the input goes to the function.
    // moto deletes gateways at once, so one pass releases them.
    let kept = [&net.allocations[0], &net.allocations[2]];
    assert_eq!(allocated(&ec2, &kept).await, [true, true]);
    let released = run(
        &sfn,
        &machine,
        json!({"action": "sleep", "release_eips": true}),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(
        released.status,
        ExecutionStatus::Succeeded,
        "{}",
        released.cause
    );
    assert_eq!(released.output["outcome"], "slept", "{:#}", released.output);
    assert_eq!(released.output["passes"], 1, "{:#}", released.output);
    let report = &released.output["report"];
    for allocation in kept {
        assert!(
            report["released_eips"]
                .to_string()
                .contains(allocation.as_str()),
            "{report:#}"
        );
    }
    assert_eq!(allocated(&ec2, &kept).await, [false, false]);
    // The wake brings them all back, on new EIPs.
    let woke = run(&sfn, &machine, wake, Duration::from_secs(120)).await;
    assert_eq!(woke.status, ExecutionStatus::Succeeded, "{}", woke.cause);
    assert_eq!(woke.output["outcome"], "woke", "{:#}", woke.output);
    let targets = route_targets(&ec2, &net).await;
    for (i, (subnet, allocation, state)) in targets.iter().enumerate() {
        assert_eq!(subnet, &net.subnets[i]);
        assert_eq!(state, "available", "{targets:?}");
        assert!(
            !allocation.is_empty() && allocation != &net.allocations[i],
            "{targets:?}"
        );
    }
}

/// The loop itself: the deployed definition, with the Task replaced by a
/// stand-in that answers `not_done` for its first two passes, then `done`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_machine_runs_passes_until_done_within_its_budget() {
    let stack = LocalStack::start();
    let sfn = aws_sdk_sfn::Client::new(&stack.sdk_config().await);
    let text = std::fs::read_to_string(
        lakeops_tests::repo_root().join("statemachines/network-sleep.asl.json"),
    )
    .unwrap();
    let looping = |max_wait: &str, not_done: &str, done: &str| -> String {
        let mut definition: Value = serde_json::from_str(
            &text
                .replace("${PollSeconds}", "1")
                .replace("${MaxWaitSeconds}", max_wait),
        )
        .unwrap();
        let states = definition["States"].as_object_mut().unwrap();
        // The stand-in computes the payload the real Task sends (its
        // Parameters), and reports it back from the last pass.
        let payload = states["Run"]["Parameters"]["Payload.$"].clone();
        states.insert(
            "Run".into(),
            json!({
                "Type": "Pass",
                "Parameters": {"payload.$": payload},
                "ResultPath": "$.sent",
                "Next": "StandInChoice"
            }),
        );
        states.insert(
            "StandInChoice".into(),
            json!({
                "Type": "Choice",
                "Choices": [{"Variable": "$.loop.passes", "NumericLessThan": 2, "Next": "StandInNotDone"}],
                "Default": "StandInDone"
            }),
        );
        for (name, outcome) in [("StandInNotDone", not_done), ("StandInDone", done)] {
            states.insert(
                name.into(),
                json!({
                    "Type": "Pass",
                    "Parameters": {"outcome": outcome, "report": {"outcome": outcome, "continuation_of": "2026-11-21T21:00:00Z", "waiting_for": ["slot-1: nat-1 is pending"], "payload.$": "$.sent.payload"}},
                    "ResultPath": "$.run",
                    "Next": "CountPass"
                }),
            );
        }
        definition.to_string()
    };
    // (max wait, action, outcome of the first two passes, outcome after)
    let cases = [
        ("10", "wake", "waking", "woke"),
        ("10", "sleep", "releasing", "slept"),
        ("1", "sleep", "releasing", "slept"),
        ("1", "wake", "waking", "woke"),
        ("10", "sleep", "refused", "slept"),
    ];
    for (i, (max_wait, action, not_done, done)) in cases.into_iter().enumerate() {
        let created = sfn
            .create_state_machine()
            .name(format!("network-sleep-loop-{i}"))
            .role_arn("arn:aws:iam::123456789012:role/network-sleep-loop")
            .definition(looping(max_wait, not_done, done))
            .send()
            .await
            .unwrap();
        let execution = run(
            &sfn,
            created.state_machine_arn(),
            json!({"action": action}),
            Duration::from_secs(60),
        )
        .await;
        let case = format!(
            "case {i} ({max_wait} s, {action}, {not_done}): {}",
            execution.cause
        );
        if not_done == "refused" {
            // Refused is no failure, and no reason to try again.
            assert_eq!(execution.status, ExecutionStatus::Succeeded, "{case}");
            assert_eq!(execution.output["outcome"], "refused", "{case}");
            // The first pass is the request as given.
            assert_eq!(
                execution.output["report"]["payload"],
                json!({"action": action}),
                "{case}"
            );
            assert_eq!(execution.output["passes"], 1, "{case}");
            assert_eq!(execution.output["waited_seconds"], 0, "{case}");
        } else if max_wait == "10" {
            assert_eq!(execution.status, ExecutionStatus::Succeeded, "{case}");
            assert_eq!(execution.output["action"], action, "{case}");
            assert_eq!(execution.output["outcome"], done, "{case}");
            assert_eq!(execution.output["passes"], 3, "{case}");
            assert_eq!(execution.output["waited_seconds"], 2, "{case}");
            assert_eq!(execution.output["report"]["outcome"], done, "{case}");
            // Passes after the first say which execution they continue.
            let sent = &execution.output["report"]["payload"];
            assert_eq!(sent["action"], action, "{case}: {sent}");
            assert!(
                sent["continuation_of"]
                    .as_str()
                    .is_some_and(|t| t.contains('T')),
                "{case}: {sent}"
            );
        } else {
            assert_eq!(execution.status, ExecutionStatus::Failed, "{case}");
            assert_eq!(execution.error, "Lakeops.NetworkSleepTimedOut", "{case}");
            assert!(
                execution.cause.contains(&format!(
                    "the {action} is still {not_done} after 1 s (2 passes)"
                )) && execution.cause.contains("nat-1 is pending"),
                "{case}"
            );
        }
    }
}
