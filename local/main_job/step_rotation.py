"""Main job step: rotate credentials through Secrets Manager's RotateSecret.

Secrets Manager (moto) invokes the rotate-credentials function for its four
steps; the step shows each secret's version stages before and after. It
rotates the workspace PAT that the provision step created, then the
edge-device IAM access key that template.yaml deploys.
"""
from __future__ import annotations

import json

PAT_SECRET = "lakeops/dev/databricks/pat"


def stages(job, secret_id: str) -> dict[str, list[str]]:
    versions = job.client("secretsmanager").list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)
    return {v["VersionId"]: sorted(v.get("VersionStages", [])) for v in versions["Versions"]}


def show(label: str, by_version: dict[str, list[str]]) -> None:
    print(f"  {label}:")
    for version, names in sorted(by_version.items(), key=lambda item: item[1]):
        print(f"    {version}  {', '.join(names) or '(no stage)'}")


def rotate(job, secret_id: str, identity) -> str:
    """Rotate one secret; return a one-line description of the new credential."""
    secrets = job.client("secretsmanager")
    before = stages(job, secret_id)
    show(f"{secret_id} before", before)
    old_current = next(v for v, names in before.items() if "AWSCURRENT" in names)
    job.progress(f"RotateSecret {secret_id} (createSecret, setSecret, testSecret, finishSecret)")
    secrets.rotate_secret(SecretId=secret_id)
    after = stages(job, secret_id)
    show(f"{secret_id} after", after)
    new_current = next(v for v, names in after.items() if "AWSCURRENT" in names)
    if new_current == old_current:
        raise RuntimeError(f"{secret_id}: AWSCURRENT did not move")
    if "AWSPREVIOUS" not in after.get(old_current, []):
        raise RuntimeError(f"{secret_id}: the previous version is not AWSPREVIOUS")
    value = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    return identity(value)


def pat_identity(value: dict) -> str:
    # Ids only: the token itself never leaves Secrets Manager.
    return f"token id {value.get('token_id')}"


def key_identity_for(job):
    def key_identity(value: dict) -> str:
        import boto3

        sts = boto3.client(
            "sts",
            endpoint_url=job.endpoint,
            region_name=job.outputs.get("region", "us-east-1"),
            aws_access_key_id=value["access_key_id"],
            aws_secret_access_key=value["secret_access_key"],
        )
        arn = sts.get_caller_identity()["Arn"]
        print(f"  the new key authenticates as {arn}")
        return f"key {value['access_key_id']} ({arn.rsplit('/', 1)[-1]})"

    return key_identity


def run(job) -> str:
    details = []
    secrets = job.client("secretsmanager")
    try:
        secrets.describe_secret(SecretId=PAT_SECRET)
        details.append("PAT: " + rotate(job, PAT_SECRET, pat_identity))
    except secrets.exceptions.ResourceNotFoundException:
        print(f"  {PAT_SECRET}: not there (the provision step did not run), skipped")
    edge = job.outputs["resources"].get("EdgeDeviceKeySecret")
    if edge:
        details.append("edge key: " + rotate(job, edge, key_identity_for(job)))
    return "; ".join(details)


STEPS = [("Rotate credentials (workspace PAT, edge-device key)", "rotate-credentials", run)]
