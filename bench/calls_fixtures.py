"""Fixtures of the call-count benchmark (bench/calls.py): the provision spec, the
grants policy of N grants with the Glue catalog it names, and the sample network of
network-sleep. The generators are pure (tested in bench/calls_count_test.py); the
functions taking boto3 clients create the fixtures in the local stack.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

# The emulator's built-in account admin (local/databricks-emulator/README.md).
EMULATOR_ACCOUNT_ID = "00000000-0000-0000-0000-000000000001"
EMULATOR_ADMIN = {
    "kind": "databricks-sp-secret",
    "account_id": EMULATOR_ACCOUNT_ID,
    "service_principal_id": "1000000000000001",
    "client_id": "00000000-0000-0000-0000-0000000000a1",
    "client_secret": "dose00000000000000000000000000000001",
    "secret_id": "bootstrap",
}

# ---------------------------------------------------------------------------------------
# provision
# ---------------------------------------------------------------------------------------


def full_spec(full_event: dict[str, Any], account_id: str, region: str, account_secret_arn: str) -> dict[str, Any]:
    """events/provision-full.json adapted to the local stack, as the whole-stack test
    (tests/tests/stack_provision.rs) adapts it: the environment's account is the stack's
    account, the stack's region and account host, our account secret, and the stack's own
    rotation function (the sample names one in another account)."""
    text = json.dumps(full_event["spec"]).replace("210987654321", account_id).replace("eu-west-1", region)
    spec = json.loads(text)
    spec["account"].pop("host", None)
    spec["account"]["credentials_secret_arn"] = account_secret_arn
    spec["aws"]["region"] = region
    spec["pat"].pop("rotation_function_arn", None)
    return spec


# ---------------------------------------------------------------------------------------
# lake-grants
# ---------------------------------------------------------------------------------------

GRANTS_DATABASES = 10
GRANTS_TABLES_PER_DATABASE = 5
GRANTS_PRINCIPALS = 10


def grants_catalog(prefix: str = "bench_grants") -> dict[str, list[str]]:
    """Database -> tables of the catalog the generated policy names (10 × 5 tables)."""
    return {
        f"{prefix}_db{d:02d}": [f"events_{t:02d}" for t in range(GRANTS_TABLES_PER_DATABASE)]
        for d in range(GRANTS_DATABASES)
    }


def grants_policy(grants: int, account_id: str, catalog: dict[str, list[str]], location_bucket: str) -> dict[str, Any]:
    """A policy of exactly ``grants`` grant entries, each a distinct (principal, resource).

    The mix is a lake's usual one: per principal, DESCRIBE on databases, SELECT on every
    table of a database (Lake Formation's table wildcard), and SELECT/DESCRIBE on single
    tables. Pairs are distinct because Lake Formation merges two grants of one principal
    on one resource (and moto 5.2.5 cannot revoke from a merged grant). No grant option
    (moto's batch APIs drop it) and no LF-tag assignment (moto's GetResourceLFTags fails
    on untagged resources): see README, lake-grants, "What moto 5.2.5 does not cover".
    """
    principals = [f"arn:aws:iam::{account_id}:role/bench-analyst-{p:02d}" for p in range(GRANTS_PRINCIPALS)]
    resources: list[tuple[dict[str, Any], list[str]]] = []
    for database, tables in catalog.items():
        resources.append(({"database": database}, ["DESCRIBE"]))
        resources.append(({"table": {"database": database, "name": "*"}}, ["SELECT"]))
        for table in tables:
            resources.append(({"table": {"database": database, "name": table}}, ["SELECT", "DESCRIBE"]))
    pairs = len(principals) * len(resources)
    if grants > pairs:
        raise ValueError(f"at most {pairs} distinct grants over this catalog, asked for {grants}")
    entries = []
    # Walk the principal × resource grid diagonally, so that every principal gets a share
    # of every kind of resource rather than one principal taking all the tables.
    for index in range(grants):
        resource, permissions = resources[index % len(resources)]
        principal = principals[(index + index // len(resources)) % len(principals)]
        entries.append({"principal": principal, "resource": resource, "permissions": permissions})
    return {
        "version": 1,
        "admins": [f"arn:aws:iam::{account_id}:role/lakeops-dev-platform-admin"],
        "lake_formation_only": True,
        "data_locations": [
            {"location": f"arn:aws:s3:::{location_bucket}", "principals": [principals[0]]},
        ],
        "grants": entries,
    }


def create_grants_catalog(glue, s3, catalog: dict[str, list[str]], location_bucket: str) -> None:
    """The Glue databases and tables the policy names, and its data location's bucket."""
    for database, tables in catalog.items():
        glue.create_database(DatabaseInput={"Name": database})
        for table in tables:
            glue.create_table(
                DatabaseName=database,
                TableInput={
                    "Name": table,
                    "TableType": "EXTERNAL_TABLE",
                    "StorageDescriptor": {
                        "Columns": [{"Name": "id", "Type": "bigint"}, {"Name": "payload", "Type": "string"}],
                        "Location": f"s3://{location_bucket}/{database}/{table}/",
                    },
                },
            )
    s3.create_bucket(Bucket=location_bucket)


# ---------------------------------------------------------------------------------------
# network-sleep
# ---------------------------------------------------------------------------------------

SCHEDULE_TAG = "lakeops:sleep-schedule"


def build_network(ec2, schedule: str, opted_in: int = 3) -> dict[str, Any]:
    """A dev VPC over three AZs: ``opted_in`` NAT gateways tagged for ``schedule``, one
    untagged gateway (never touched), one route table per gateway with 0.0.0.0/0 to it.
    The same network as the main job's (local/main_job/step_network.py)."""
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    zones = "abc"
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=f"us-east-1{zones[i % 3]}")["Subnet"]["SubnetId"]
        for i in range(max(opted_in, 1))
    ]
    gateways = []
    for i, subnet in enumerate(subnets[:opted_in]):
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        tags = [{"Key": "Name", "Value": f"bench-nat-{i}"}, {"Key": SCHEDULE_TAG, "Value": schedule}]
        gateways.append(
            ec2.create_nat_gateway(
                SubnetId=subnet, AllocationId=allocation, TagSpecifications=[{"ResourceType": "natgateway", "Tags": tags}]
            )["NatGateway"]["NatGatewayId"]
        )
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    always_on = ec2.create_nat_gateway(SubnetId=subnets[0], AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    for nat in gateways + [always_on]:
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    return {"vpc": vpc, "gateways": gateways, "always_on": always_on}


def nat_states(ec2, vpc: str) -> dict[str, int]:
    found = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NatGateways"]
    states: dict[str, int] = {}
    for gateway in found:
        states[gateway["State"]] = states.get(gateway["State"], 0) + 1
    return states
