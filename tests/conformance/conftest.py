"""Fixtures for the Databricks emulator conformance suite.

The suite talks to the emulator only through the official `databricks-sdk`
(AccountClient and WorkspaceClient, OAuth M2M and PATs). The `/_emulator/*`
control endpoints are not part of the Databricks API; they are called with the
standard library.

The emulator is taken from DATABRICKS_EMULATOR_URL when set (local/conformance.sh
sets it); otherwise the fixture starts DATABRICKS_EMULATOR_BIN (or the binary on
PATH) on a free port and stops it at the end.
"""

import json
import os
import shutil
import subprocess
import urllib.request
import uuid

import pytest
from databricks.sdk import AccountClient, WorkspaceClient
from databricks.sdk.service import provisioning

ACCOUNT_ID = os.environ.get("DATABRICKS_EMULATOR_ACCOUNT_ID", "00000000-0000-0000-0000-000000000001")
CLIENT_ID = os.environ.get("DATABRICKS_EMULATOR_CLIENT_ID", "00000000-0000-0000-0000-0000000000a1")
CLIENT_SECRET = os.environ.get("DATABRICKS_EMULATOR_CLIENT_SECRET", "dose00000000000000000000000000000001")
REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/lakeops-cross-account"


class Emulator:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.info = self.control("GET", "/_emulator/info")

    def control(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def workspace_host(self, deployment_name: str) -> str:
        return self.info["workspace_host_template"].replace("{deployment_name}", deployment_name)

    def set_faults(self, **config):
        return self.control("POST", "/_emulator/faults", config)

    def clear_faults(self):
        return self.control("DELETE", "/_emulator/faults")


@pytest.fixture(scope="session")
def emulator():
    # The SDK reads DATABRICKS_* variables and ~/.databrickscfg; keep the suite
    # independent of the developer's configuration.
    saved = {k: v for k, v in os.environ.items() if k.startswith("DATABRICKS_") and not k.startswith("DATABRICKS_EMULATOR")}
    for k in saved:
        del os.environ[k]
    os.environ["DATABRICKS_CONFIG_FILE"] = os.devnull
    url = os.environ.get("DATABRICKS_EMULATOR_URL")
    proc = None
    if not url:
        binary = os.environ.get("DATABRICKS_EMULATOR_BIN") or shutil.which("databricks-emulator")
        if not binary:
            pytest.exit("set DATABRICKS_EMULATOR_URL or DATABRICKS_EMULATOR_BIN (see local/conformance.sh)", 2)
        proc = subprocess.Popen(
            [binary, "--port", "0", "--provisioning-seconds", "1", "--cluster-seconds", "1", "--run-seconds", "1"],
            stdout=subprocess.PIPE,
            text=True,
        )
        first = proc.stdout.readline().strip()
        url = first.rsplit(" ", 1)[-1]
    try:
        yield Emulator(url)
    finally:
        os.environ.update(saved)
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def a(emulator) -> AccountClient:
    return AccountClient(
        host=emulator.url,
        account_id=ACCOUNT_ID,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        auth_type="oauth-m2m",
    )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_workspace_prerequisites(a: AccountClient, *, subnets=("subnet-0a1", "subnet-0b2"), role_arn=ROLE_ARN):
    cred = a.credentials.create(
        credentials_name=unique("cred"),
        aws_credentials=provisioning.CreateCredentialAwsCredentials(
            sts_role=provisioning.CreateCredentialStsRole(role_arn=role_arn)
        ),
    )
    storage = a.storage.create(
        storage_configuration_name=unique("storage"),
        root_bucket_info=provisioning.RootBucketInfo(bucket_name=unique("root-bucket")),
    )
    network = a.networks.create(
        network_name=unique("net"),
        vpc_id="vpc-0123456789",
        subnet_ids=list(subnets),
        security_group_ids=["sg-0123456789"],
    )
    return cred, storage, network


@pytest.fixture(scope="session")
def running_workspace(a, emulator):
    """A RUNNING workspace (waited for with the SDK's own waiter) with a metastore."""
    cred, storage, network = create_workspace_prerequisites(a)
    ws = a.workspaces.create(
        workspace_name=unique("lakeops"),
        deployment_name=unique("lakeops"),
        aws_region=REGION,
        credentials_id=cred.credentials_id,
        storage_configuration_id=storage.storage_configuration_id,
        network_id=network.network_id,
        pricing_tier=provisioning.PricingTier.ENTERPRISE,
    ).result(timeout=__import__("datetime").timedelta(seconds=60))
    assert ws.workspace_status == provisioning.WorkspaceStatus.RUNNING
    from databricks.sdk.service import catalog

    existing = [m for m in a.metastores.list() if m.region == REGION]
    if existing:
        metastore_id = existing[0].metastore_id
    else:
        metastore_id = a.metastores.create(
            metastore_info=catalog.CreateAccountsMetastore(name="lakeops-metastore", region=REGION, storage_root="s3://lakeops-metastore")
        ).metastore_info.metastore_id
    a.metastore_assignments.create(
        workspace_id=ws.workspace_id,
        metastore_id=metastore_id,
        metastore_assignment=catalog.CreateMetastoreAssignment(metastore_id=metastore_id, workspace_id=ws.workspace_id, default_catalog_name="main"),
    )
    ws.metastore_id = metastore_id
    return ws


@pytest.fixture(scope="session")
def w(emulator, running_workspace) -> WorkspaceClient:
    """Workspace client authenticated with OAuth M2M as the account admin (the
    workspace creator, hence a workspace admin)."""
    return WorkspaceClient(
        host=emulator.workspace_host(running_workspace.deployment_name),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        auth_type="oauth-m2m",
    )


SECONDARY_REGION = "us-west-2"


@pytest.fixture(scope="session")
def secondary_workspace(a, emulator):
    """A RUNNING workspace in a second region (us-west-2) with that region's own
    metastore, set up through the account API as a user would: workspace, metastore in
    the same region, assignment. `global_metastore_id` is on the returned object."""
    import datetime

    from databricks.sdk.service import catalog

    cred, storage, network = create_workspace_prerequisites(a)
    ws = a.workspaces.create(
        workspace_name=unique("lakeops-west"),
        deployment_name=unique("lakeops-west"),
        aws_region=SECONDARY_REGION,
        credentials_id=cred.credentials_id,
        storage_configuration_id=storage.storage_configuration_id,
        network_id=network.network_id,
        pricing_tier=provisioning.PricingTier.ENTERPRISE,
    ).result(timeout=datetime.timedelta(seconds=60))
    assert ws.workspace_status == provisioning.WorkspaceStatus.RUNNING
    existing = [m for m in a.metastores.list() if m.region == SECONDARY_REGION]
    if existing:
        metastore = existing[0]
    else:
        metastore = a.metastores.create(
            metastore_info=catalog.CreateAccountsMetastore(
                name="lakeops-metastore-west", region=SECONDARY_REGION, storage_root="s3://lakeops-metastore-west"
            )
        ).metastore_info
    a.metastore_assignments.create(
        workspace_id=ws.workspace_id,
        metastore_id=metastore.metastore_id,
        metastore_assignment=catalog.CreateMetastoreAssignment(
            metastore_id=metastore.metastore_id, workspace_id=ws.workspace_id, default_catalog_name="main"
        ),
    )
    ws.metastore_id = metastore.metastore_id
    ws.global_metastore_id = metastore.global_metastore_id
    return ws


@pytest.fixture(scope="session")
def w2(emulator, secondary_workspace) -> WorkspaceClient:
    """Workspace client of the secondary-region workspace (OAuth M2M, account admin)."""
    return WorkspaceClient(
        host=emulator.workspace_host(secondary_workspace.deployment_name),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        auth_type="oauth-m2m",
    )
