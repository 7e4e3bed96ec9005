"""Main job: a passive secondary region kept in step, a failover and a failback.

In the stack's Databricks emulator it sets up two workspaces in two regions, each
with its own metastore: the primary in us-west-2, the secondary in the stack's own
region (the sync runs in the secondary, pulling from the primary). The primary gets
a catalog with tables and rows, a view, an external volume, grants and tags. Then:
dr-sync is deployed (`DrSpecUri`), its state machine syncs, the report is shown, one
table changes and only it is cloned, a planned failover moves the jobs and the
active-workspace pointer, and a reverse sync and a planned failover bring it back.
Everything goes through the deployed state machines; the Databricks side is driven
with the official databricks-sdk.
"""
from __future__ import annotations

import json
import time

from main_job.step_provision import EMULATOR_ADMIN_CLIENT_ID, EMULATOR_ADMIN_CLIENT_SECRET

PAIR = "lakehouse-dr"
PRIMARY_REGION = "us-west-2"
ACCOUNT_ID = "00000000-0000-0000-0000-000000000001"
SYNC_WAREHOUSE = "lakeops-dr-sync"
PRIMARY_LOCATION = "s3://lakehouse-usw2-landing"
SECONDARY_LOCATION = "s3://lakehouse-use1-landing"
SEED = [
    "CREATE TABLE sales.core.orders (id BIGINT, customer STRING, amount DOUBLE) COMMENT 'every order'",
    "INSERT INTO sales.core.orders VALUES (1, 'ada', 9.5), (2, 'grace', 30.0), (3, 'alan', 12.25)",
    "CREATE TABLE sales.core.customers (name STRING, country STRING)",
    "INSERT INTO sales.core.customers VALUES ('ada', 'UK'), ('grace', 'US'), ('alan', 'UK')",
    "CREATE VIEW sales.core.big_orders AS SELECT id, amount FROM sales.core.orders WHERE amount > 10",
    "GRANT SELECT ON TABLE sales.core.orders TO `analysts`",
    "ALTER TABLE sales.core.orders SET TAGS ('domain' = 'sales', 'pii' = 'false')",
]


def databricks_endpoint(job) -> str:
    return job.outputs["endpoints"]["databricks"].rstrip("/")


def account(job):
    from databricks.sdk import AccountClient

    return AccountClient(
        host=databricks_endpoint(job),
        account_id=ACCOUNT_ID,
        client_id=EMULATOR_ADMIN_CLIENT_ID,
        client_secret=EMULATOR_ADMIN_CLIENT_SECRET,
    )


def workspace(job, a, deployment: str, region: str):
    """A running workspace in `region` with a metastore of that region: adopted by name."""
    from databricks.sdk import WorkspaceClient

    base = f"/api/2.0/accounts/{ACCOUNT_ID}"
    found = [w for w in a.api_client.do("GET", f"{base}/workspaces") or [] if w.get("deployment_name") == deployment]
    if found:
        ws = found[0]
    else:
        ws = a.api_client.do(
            "POST",
            f"{base}/workspaces",
            body={"workspace_name": deployment, "deployment_name": deployment, "aws_region": region, "compute_mode": "SERVERLESS"},
        )
        job.progress(f"workspace {deployment} in {region}: provisioning")
    for _ in range(600):
        if ws.get("workspace_status") == "RUNNING":
            break
        time.sleep(0.2)
        ws = a.api_client.do("GET", f"{base}/workspaces/{ws['workspace_id']}")
    # One metastore per region and account (as Databricks allows): the region's, when the
    # provision step (or an earlier run) made one already.
    listed = a.api_client.do("GET", f"{base}/metastores").get("metastores", [])
    metastore = next((m for m in listed if m.get("region") == region), None)
    if metastore is None:
        metastore = a.api_client.do(
            "POST",
            f"{base}/metastores",
            body={"metastore_info": {"name": f"{deployment}-metastore", "region": region, "storage_root": f"s3://uc-{deployment}"}},
        )["metastore_info"]
    from databricks.sdk.errors import NotFound

    try:
        assigned = a.api_client.do("GET", f"{base}/workspaces/{ws['workspace_id']}/metastore") or {}
    except NotFound:  # "has no metastore assigned"
        assigned = {}
    if not (assigned.get("metastore_assignment") or {}).get("metastore_id"):
        a.api_client.do(
            "POST",
            f"{base}/workspaces/{ws['workspace_id']}/metastores/{metastore['metastore_id']}",
            body={"metastore_assignment": {"metastore_id": metastore["metastore_id"], "default_catalog_name": "main"}},
        )
    return WorkspaceClient(
        host=f"{databricks_endpoint(job)}/ws/{deployment}",
        client_id=EMULATOR_ADMIN_CLIENT_ID,
        client_secret=EMULATOR_ADMIN_CLIENT_SECRET,
    )


def run_sql(w, warehouse_id: str, statement: str) -> list:
    """A statement run to its end; its rows."""
    answer = w.statement_execution.execute_statement(statement=statement, warehouse_id=warehouse_id, wait_timeout="30s")
    while answer.status.state.value in ("PENDING", "RUNNING"):
        time.sleep(0.2)
        answer = w.statement_execution.get_statement(answer.statement_id)
    if answer.status.state.value != "SUCCEEDED":
        raise RuntimeError(f"{statement}: {answer.status.state.value} {answer.status.error}")
    return (answer.result.data_array if answer.result else None) or []


def warehouse_id(w, name: str) -> str:
    found = [wh for wh in w.warehouses.list() if wh.name == name]
    if found:
        return found[0].id
    return w.warehouses.create(name=name, cluster_size="2X-Small", auto_stop_mins=10).response.id


def seed_primary(job, w) -> str:
    """The primary's lake: a catalog, tables with rows, a view, an external volume,
    a grant and tags. Returns the primary's own warehouse."""
    from databricks.sdk.service import catalog

    etl = warehouse_id(w, "primary-etl")
    if "sales" in {c.name for c in w.catalogs.list()}:
        return etl
    w.catalogs.create("sales", comment="the sales domain")
    w.schemas.create("core", "sales")
    w.storage_credentials.create(
        "lakehouse_external", aws_iam_role=catalog.AwsIamRoleRequest(role_arn="arn:aws:iam::123456789012:role/uc-usw2")
    )
    w.external_locations.create("lakehouse_landing", PRIMARY_LOCATION, "lakehouse_external")
    for statement in SEED:
        run_sql(w, etl, statement)
    w.volumes.create(
        catalog_name="sales",
        schema_name="core",
        name="landing",
        volume_type=catalog.VolumeType.EXTERNAL,
        storage_location=f"{PRIMARY_LOCATION}/volumes/landing",
    )
    job.progress("primary: sales.core.orders (3 rows), customers (3 rows), view big_orders, external volume landing, a grant and tags")
    return etl


def store_secrets(job) -> list[str]:
    """Both workspaces' credentials, in the secondary's region (where the sync runs)."""
    secrets = job.client("secretsmanager")
    environment = job.outputs.get("parameters", {}).get("EnvironmentName", "dev")
    value = json.dumps(
        {
            "kind": "databricks-sp-secret",
            "account_id": ACCOUNT_ID,
            "service_principal_id": "1000000000000001",
            "client_id": EMULATOR_ADMIN_CLIENT_ID,
            "client_secret": EMULATOR_ADMIN_CLIENT_SECRET,
            "secret_id": "bootstrap",
        }
    )
    arns = []
    for side in ("primary", "secondary"):
        name = f"lakeops/{environment}/dr/{side}-sp"
        try:
            arns.append(secrets.describe_secret(SecretId=name)["ARN"])
        except secrets.exceptions.ResourceNotFoundException:
            arns.append(secrets.create_secret(Name=name, SecretString=value)["ARN"])
    return arns


def deploy_dr(job, primary, secondary) -> str:
    """The DR spec in the config bucket, and the stack redeployed with `DrSpecUri`."""
    from main_job.__main__ import stack

    environment = job.outputs.get("parameters", {}).get("EnvironmentName", "dev")
    primary_arn, secondary_arn = store_secrets(job)
    spec = {
        "name": PAIR,
        "primary": {"host": primary.config.host, "region": PRIMARY_REGION, "credentials_secret_arn": primary_arn},
        "secondary": {"host": secondary.config.host, "region": job.outputs.get("region", "us-east-1"), "credentials_secret_arn": secondary_arn},
        "warehouse": {"create": {"name": SYNC_WAREHOUSE, "cluster_size": "Small", "auto_stop_mins": 10}},
        "sharing": {"recipient": "lakeops_dr_use1", "share_prefix": "lakeops_dr_"},
        "catalogs": [{"source": "sales"}],
        "locations": [{"primary": PRIMARY_LOCATION, "secondary": SECONDARY_LOCATION}],
        "storage_credentials": [{"primary": "lakehouse_external", "secondary_role_arn": "arn:aws:iam::123456789012:role/uc-use1"}],
        "sync_principal": EMULATOR_ADMIN_CLIENT_ID,
        "concurrency": 8,
        "rpo_seconds": 3600,
        "active_workspace_parameter": f"/lakeops/{environment}/dr/active-workspace",
        "failover_jobs": ["nightly-*"],
    }
    bucket = job.resource("ConfigBucket")
    key = f"dr/{PAIR}.json"
    job.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(spec, indent=2).encode())
    job.progress(f"deploying dr-sync and dr-failover (template parameter DrSpecUri=s3://{bucket}/{key})")
    stack("deploy", "--parameter", f"DrSpecUri=s3://{bucket}/{key}")
    job.load()
    if not job.has("dr-sync"):
        raise RuntimeError("dr-sync is not deployed after setting DrSpecUri")
    return spec["active_workspace_parameter"]


def show_report(job, output: dict) -> None:
    summary = output["summary"]
    print(
        f"  report: {summary['ok']} ok, {summary['missing']} missing, {summary['drifted']} drifted, "
        f"{summary['failed']} failed, {summary['extra']} extra; lag {summary['replication_lag_seconds']} s; "
        f"clean: {summary['clean']}"
    )
    bucket, key = output["report_uri"][len("s3://") :].split("/", 1)
    report = json.loads(job.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    for line in report["lines"]:
        versions = ""
        if line.get("source_version") is not None:
            versions = f"v{line['source_version']} -> v{line.get('target_version')}"
        rows = ""
        if line.get("source_rows") is not None:
            rows = f"rows {line['source_rows']} / {line.get('target_rows')}"
        print(f"    {line['status']:<8} {line['kind']:<16} {line.get('target') or line.get('source'):<34} {versions:<10} {rows}")


def pointer(job, name: str) -> dict:
    return json.loads(job.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])


def nightly_job(w, pause_status: str) -> int:
    """The demo's scheduled job on one side, adopted by name on a re-run (the emulator
    keeps its state in the stack's state dir), with its schedule set to `pause_status`."""
    name = "nightly-orders"
    schedule = {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "UTC", "pause_status": pause_status}
    found = w.api_client.do("GET", "/api/2.2/jobs/list", query={"name": name}).get("jobs", [])
    if found:
        job_id = found[0]["job_id"]
        w.api_client.do("POST", "/api/2.2/jobs/update", body={"job_id": job_id, "new_settings": {"schedule": schedule}})
        return job_id
    return w.api_client.do(
        "POST",
        "/api/2.2/jobs/create",
        body={"name": name, "schedule": schedule, "tasks": [{"task_key": "load", "notebook_task": {"notebook_path": "/etl/orders"}}]},
    )["job_id"]


def failover_and_back(job, primary, secondary, pointer_name: str) -> None:
    primary_job = nightly_job(primary, "UNPAUSED")
    secondary_job = nightly_job(secondary, "PAUSED")

    def paused(w, job_id) -> str:
        return w.api_client.do("GET", "/api/2.2/jobs/get", query={"job_id": job_id})["settings"]["schedule"]["pause_status"]

    job.progress("planned failover: a last sync, then jobs, schedule and pointer")
    out = job.run_state_machine("DrFailoverStateMachine", {"mode": "planned"}, "dr-failover")
    now = pointer(job, pointer_name)
    print(f"  failed over: active {now['active_host']} ({now['active_region']}), generation {now['generation']}")
    print(f"  nightly-orders: primary {paused(primary, primary_job)}, secondary {paused(secondary, secondary_job)}; moved {out.get('jobs_unpaused')}")

    job.progress("failback: a reverse sync from the new primary, then a planned failover back")
    reverse = job.run_state_machine("DrSyncStateMachine", {"mode": "apply", "reverse": True}, "dr-sync reverse")
    print(f"  reverse sync clean: {reverse['summary']['clean']}")
    job.run_state_machine("DrFailoverStateMachine", {"mode": "planned", "reverse": True}, "dr-failover back")
    now = pointer(job, pointer_name)
    print(f"  failed back: active {now['active_host']} ({now['active_region']}), generation {now['generation']}")
    print(f"  nightly-orders: primary {paused(primary, primary_job)}, secondary {paused(secondary, secondary_job)}")


def run(job) -> str:
    a = account(job)
    secondary_region = job.outputs.get("region", "us-east-1")
    primary = workspace(job, a, "dr-primary", PRIMARY_REGION)
    secondary = workspace(job, a, "dr-secondary", secondary_region)
    job.progress(f"primary workspace {primary.config.host} ({PRIMARY_REGION}), secondary {secondary.config.host} ({secondary_region})")
    etl = seed_primary(job, primary)
    pointer_name = deploy_dr(job, primary, secondary)

    first = job.run_state_machine("DrSyncStateMachine", {"mode": "apply"}, "dr-sync")
    show_report(job, first)
    sync = warehouse_id(secondary, SYNC_WAREHOUSE)
    rows = run_sql(secondary, sync, "SELECT COUNT(*) FROM sales.core.orders")
    print(f"  secondary sales.core.orders: {rows[0][0]} rows")

    run_sql(primary, etl, "INSERT INTO sales.core.orders VALUES (4, 'edsger', 42.0)")
    job.progress("one table changed on the primary: a plan, then an incremental sync")
    plan = job.run_state_machine("DrSyncStateMachine", {"mode": "plan"}, "dr-sync plan")
    bucket, key = plan["plan_uri"][len("s3://") :].split("/", 1)
    planned = json.loads(job.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    for change in planned["plan"]["changes"]:
        print(f"    plan: {change['description']}")
    second = job.run_state_machine("DrSyncStateMachine", {"mode": "apply"}, "dr-sync")
    show_report(job, second)

    failover_and_back(job, primary, secondary, pointer_name)
    clean = first["summary"]["clean"] and second["summary"]["clean"]
    return f"synced {first['summary']['ok']} objects to the secondary (clean: {clean}), failed over and back"


STEPS = [("Disaster recovery: sync, failover, failback", None, run)]
