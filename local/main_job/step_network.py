"""Main job: put a sample network to sleep and wake it again, through the
deployed EventBridge Scheduler schedules: each starts the network-sleep state
machine with its input ({"action": "sleep"} or {"action": "wake"}), which runs
the function's passes until the sleep or the wake is done."""
from __future__ import annotations

import json

SCHEDULE_TAG = "lakeops:sleep-schedule"


def build_sample_network(job) -> dict:
    """A dev VPC over three AZs: 3 opted-in NAT gateways (and their EIPs), 1 that is not, 4 route tables."""
    ec2 = job.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": "lakeops-demo"}])
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
        for i, az in enumerate("abc")
    ]
    gateways = []
    for i, subnet in enumerate(subnets):
        # The EIP is tagged too: network-sleep may disassociate only tagged EIPs (its IAM
        # policy requires the tag), and without that the wake cannot reuse an EIP that
        # the deleted gateway's interface still holds.
        allocation = ec2.allocate_address(
            Domain="vpc",
            TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": [{"Key": SCHEDULE_TAG, "Value": "nightly"}]}],
        )["AllocationId"]
        tags = [{"Key": "Name", "Value": f"lakeops-demo-nat-{i}"}, {"Key": SCHEDULE_TAG, "Value": "nightly"}]
        nat = ec2.create_nat_gateway(
            SubnetId=subnet,
            AllocationId=allocation,
            TagSpecifications=[{"ResourceType": "natgateway", "Tags": tags}],
        )["NatGateway"]["NatGatewayId"]
        gateways.append(nat)
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    always_on = ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    for i, nat in enumerate(gateways + [always_on]):
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    return {"vpc": vpc, "gateways": gateways, "always_on": always_on}


def nat_states(job, vpc: str) -> dict:
    ec2 = job.client("ec2")
    found = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NatGateways"]
    states: dict = {}
    for gateway in found:
        states[gateway["State"]] = states.get(gateway["State"], 0) + 1
    return states


def fire(schedule: str) -> dict:
    """Fire a schedule and wait for the execution it starts; its output is the last report."""
    from main_job.__main__ import stack

    fired = json.loads(stack("fire-schedule", schedule).stdout)["results"][0]
    if fired.get("status") != "SUCCEEDED":
        raise RuntimeError(f"{schedule}: execution {fired.get('status')}: {fired.get('error')}: {fired.get('cause')}")
    return json.loads(fired["output"])


def run(job) -> str:
    network = build_sample_network(job)
    job.progress(f"sample network {network['vpc']}: 3 opted-in NAT gateways, 1 always on, 4 route tables")
    job.progress(
        "deploying network-sleep for this VPC (template parameters NetworkSleepVpcId, and "
        "NetworkSleepWithoutWorkspaceCheck=true: the sample VPC runs no Databricks compute)"
    )
    from main_job.__main__ import stack

    stack(
        "deploy",
        "--parameter",
        f"NetworkSleepVpcId={network['vpc']}",
        "--parameter",
        "NetworkSleepWithoutWorkspaceCheck=true",
    )
    job.load()
    if not job.has("network-sleep"):
        raise RuntimeError("network-sleep is not deployed after setting NetworkSleepVpcId")
    sleep_schedule = job.resource("NetworkSleepSchedule")
    wake_schedule = job.resource("NetworkWakeSchedule")

    job.progress(f"firing the sleep schedule {sleep_schedule} (starts the network-sleep state machine)")
    slept = fire(sleep_schedule)
    job.progress(f"sleep {slept['outcome']} in {slept['passes']} pass(es); after sleep: {nat_states(job, network['vpc'])}")
    status = job.invoke("network-sleep", {"action": "status"})
    job.progress(f"status: {status['gateways_asleep']} asleep, {status['gateways_awake']} awake")

    job.progress(f"firing the wake schedule {wake_schedule} (starts the network-sleep state machine)")
    woke = fire(wake_schedule)
    job.progress(f"wake {woke['outcome']} in {woke['passes']} pass(es); after wake: {nat_states(job, network['vpc'])}")
    status = job.invoke("network-sleep", {"action": "status"})
    job.progress(f"status: {status['gateways_asleep']} asleep, {status['gateways_awake']} awake")
    savings = status["savings_this_month"]
    # A demo night lasts seconds; the estimate for a real month follows the schedule.
    gateways = len(network["gateways"])
    nightly_hours = 10 * 5 + 48  # 21:00-07:00 on weekdays, plus the weekend
    monthly = gateways * nightly_hours * 52 / 12 * 0.045
    print(f"  saved so far this month: {savings['hours']:.4f} gateway-hours, ${savings['dollars']:.4f}")
    print(f"  with the default schedule (sleep 21:00, wake 07:00, MON-FRI): about ${monthly:.2f} a month for {gateways} gateways")
    return f"slept and woke {gateways} gateways; about ${monthly:.2f}/month saved on schedule"


STEPS = [("Network sleep and wake", None, run)]
