"""Main job: apply the sample Lake Formation grants policy and print the
permissions table."""
from __future__ import annotations

from main_job.__main__ import EVENTS


def policy(job) -> str:
    """The sample policy, aimed at this stack's databases and buckets."""
    text = (EVENTS / "lake-grants-policy.yaml").read_text()
    return text.replace("123456789012", job.outputs.get("account_id", "123456789012"))


def counts(report: dict) -> str:
    plan = report["plan"]
    return (
        f"{len(plan['grants'])} grant(s), {len(plan['revokes'])} revoke(s), "
        f"{len(plan['register_locations'])} location(s), {len(plan['lf_tags'])} LF-tag change(s)"
    )


def run(job) -> str:
    config_bucket = job.resource("ConfigBucket")
    job.client("s3").put_object(Bucket=config_bucket, Key="lake-grants/policy.yaml", Body=policy(job).encode())
    job.progress(f"policy uploaded to s3://{config_bucket}/lake-grants/policy.yaml")
    job.progress(f"plan: {counts(job.invoke('lake-grants', {'mode': 'plan'}))}")
    applied = job.invoke("lake-grants", {"mode": "apply", "trigger": "provisioning"})
    job.progress(f"apply: {counts(applied)}")
    again = job.invoke("lake-grants", {"mode": "plan"})
    job.progress(f"plan after apply: {counts(again)} (drifted grants: {again['drifted_grants']})")
    print()
    print(f"  {'principal':<52} {'resource':<46} permissions")
    for row in applied["permissions"]:
        grantable = f" (grantable: {','.join(row['grantable'])})" if row["grantable"] else ""
        print(f"  {row['principal']:<52} {row['resource']:<46} {','.join(row['permissions'])}{grantable}")
    return f"{len(applied['permissions'])} permissions of managed principals in place"


STEPS = [("Lake Formation grants (lake-grants)", "lake-grants", run)]
