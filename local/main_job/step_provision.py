"""Main job step: provision a Databricks workspace with the provision state machine.

Stores the account admin's OAuth credentials in Secrets Manager (the emulator's
admin service principal, as local/databricks-emulator/README.md documents it),
then runs `ProvisionStateMachine` with `apply` on a spec adapted from
events/provision-minimal.json, and shows what it created.
"""
from __future__ import annotations

import json

ACCOUNT_SECRET = "lakeops/dev/databricks/account-sp"
# The emulator's built-in account admin (local/databricks-emulator/README.md).
EMULATOR_ADMIN_CLIENT_ID = "00000000-0000-0000-0000-0000000000a1"
EMULATOR_ADMIN_CLIENT_SECRET = "dose00000000000000000000000000000001"
EMULATOR_ADMIN_SCIM_ID = "1000000000000001"


def account_secret_arn(job) -> str:
    """The account admin secret's ARN, created on first use (idempotent)."""
    secrets = job.client("secretsmanager")
    account_id = job.outputs.get("databricks", {}).get("account_id") or "00000000-0000-0000-0000-000000000001"
    value = json.dumps(
        {
            "kind": "databricks-sp-secret",
            "account_id": account_id,
            "service_principal_id": EMULATOR_ADMIN_SCIM_ID,
            "client_id": EMULATOR_ADMIN_CLIENT_ID,
            "client_secret": EMULATOR_ADMIN_CLIENT_SECRET,
            "secret_id": "bootstrap",
        }
    )
    try:
        return secrets.describe_secret(SecretId=ACCOUNT_SECRET)["ARN"]
    except secrets.exceptions.ResourceNotFoundException:
        job.progress(f"storing the account admin's OAuth credentials in {ACCOUNT_SECRET}")
        return secrets.create_secret(Name=ACCOUNT_SECRET, SecretString=value)["ARN"]


def sample_spec(job) -> dict:
    from main_job.__main__ import EVENTS

    spec = json.loads((EVENTS / "provision-minimal.json").read_text())["spec"]
    spec["account"]["credentials_secret_arn"] = account_secret_arn(job)
    spec["pat"] = {"lifetime_days": 90, "rotation_days": 30}
    return spec


def run(job) -> str:
    spec = sample_spec(job)
    result = job.run_state_machine("ProvisionStateMachine", {"mode": "apply", "spec": spec}, "provision apply")
    # The state machine runs its environments in a Map, so its output is one result per environment.
    if isinstance(result, list):
        (result,) = result
    created = [c for c in result.get("changes", []) if c.get("action") != "none"]
    print(f"  workspace: {result['workspace_url']}")
    print(f"  catalog:   {result['catalog']}")
    print(f"  schemas:   {', '.join(result['schemas'])}")
    for change in result.get("changes", []):
        print(f"    {change['action']:<7} {change['resource']}")
    return f"{result['workspace_url']}, catalog {result['catalog']}, {len(created)} change(s)"


STEPS = [("Provision a Databricks workspace", "provision", run)]
