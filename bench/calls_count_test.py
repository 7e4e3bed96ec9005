"""Tests of the call-count benchmark's pure logic (bench/calls_count.py, the generators of
bench/calls_fixtures.py). Run: .venv/bin/python -m pytest -q bench/calls_count_test.py"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calls_count as cc  # noqa: E402
import calls_fixtures as fx  # noqa: E402


def inv(seq, function, stage, start, end, failed=False):
    return {"seq": seq, "function": function, "stage": stage, "start": start, "end": end, "failed": failed}


def aws(start, operation, mutating, client="rust-sdk", service="secretsmanager", status=200):
    return {"start": start, "end": start + 0.01, "service": service, "operation": operation,
            "mutating": mutating, "client": client, "status": status}


def dbx(start, method, path, status=200):
    return {"start": start, "end": start + 0.01, "method": method, "path": path, "status": status}


def test_databricks_classification():
    assert cc.databricks_kind("POST", "/oidc/accounts/00000000-0000-0000-0000-000000000001/v1/token") == "auth"
    assert cc.databricks_kind("POST", "/ws/lakeops-prod/oidc/v1/token") == "auth"
    assert cc.databricks_kind("GET", "/oidc/accounts/abc/.well-known/oauth-authorization-server") == "auth"
    assert cc.databricks_kind("POST", "/api/2.0/accounts/abc/workspaces") == "mutating"
    assert cc.databricks_kind("PATCH", "/ws/x/api/2.0/permissions/clusters/1") == "mutating"
    assert cc.databricks_kind("DELETE", "/ws/x/api/2.0/token/delete") == "mutating"
    assert cc.databricks_kind("GET", "/api/2.0/accounts/abc/workspaces") == "read"
    # A path that merely mentions "token" is not authentication.
    assert cc.databricks_kind("POST", "/ws/x/api/2.0/token/create") == "mutating"


def test_databricks_operation_groups_ids():
    assert (cc.databricks_operation("get", "/api/2.0/accounts/00000000-0000-0000-0000-000000000001/workspaces/1234")
            == "GET /api/2.0/accounts/{uuid}/workspaces/{id}")
    assert (cc.databricks_operation("POST", "/ws/lakeops-prod/api/2.1/clusters/create")
            == "POST /ws/{deployment}/api/2.1/clusters/create")
    # Versions in the path are not ids.
    assert cc.databricks_operation("GET", "/api/2.1/unity-catalog/catalogs") == "GET /api/2.1/unity-catalog/catalogs"


def test_stages_sum_their_invocations_and_nested_functions_get_their_own_row():
    invocations = [
        inv(0, "provision", "validate", 10.0, 11.0),
        inv(1, "provision", "workspace_ready", 12.0, 13.0),
        inv(2, "provision", "workspace_ready", 20.0, 21.0),
        inv(3, "provision", "pat", 30.0, 40.0),
        inv(4, "rotate-credentials", "createSecret", 32.0, 33.0),
        inv(5, "rotate-credentials", "setSecret", 34.0, 35.0),
    ]
    requests = [
        aws(10.5, "GetSecretValue", False),
        aws(12.5, "GetSecretValue", False),
        aws(20.5, "GetSecretValue", False),
        aws(31.0, "CreateSecret", True),
        aws(31.5, "RotateSecret", True),  # spans the nested invocations, started before them
        aws(32.5, "PutSecretValue", True),
        aws(34.5, "GetSecretValue", False),
        aws(36.0, "DescribeSecret", False, client="other"),  # the harness: not counted
        aws(50.0, "PutObject", True, service="s3"),  # outside any invocation
    ]
    databricks = [
        dbx(10.6, "POST", "/oidc/accounts/a/v1/token"),
        dbx(12.6, "GET", "/api/2.0/accounts/a/workspaces/7"),
        dbx(20.6, "GET", "/api/2.0/accounts/a/workspaces/7"),
        dbx(34.6, "POST", "/ws/w/api/2.0/token/create"),
    ]
    t = cc.tally(invocations, requests, databricks, "provision")
    assert [r.label for r in t.rows] == [
        "validate", "workspace_ready", "pat", "pat > rotate-credentials", cc.OUTSIDE]
    ready = t.row("workspace_ready")
    assert (ready.invocations, ready.aws_calls, ready.dbx_calls, ready.dbx_mutating) == (2, 2, 2, 0)
    validate = t.row("validate")
    assert (validate.dbx_calls, validate.dbx_auth, validate.dbx_mutating) == (1, 1, 0)
    pat = t.row("pat")
    assert (pat.aws_calls, pat.aws_mutating) == (2, 2)
    assert dict(pat.mutating_operations) == {"secretsmanager:CreateSecret": 1, "secretsmanager:RotateSecret": 1}
    nested = t.row("pat > rotate-credentials")
    assert (nested.invocations, nested.aws_calls, nested.aws_mutating, nested.dbx_mutating) == (2, 2, 1, 1)
    assert dict(nested.mutating_operations) == {"secretsmanager:PutSecretValue": 1, "POST /ws/{deployment}/api/2.0/token/create": 1}
    outside = t.row(cc.OUTSIDE)
    assert (outside.invocations, outside.aws_mutating) == (0, 1)
    assert t.total.invocations == 6
    assert t.total.aws_calls == 8
    assert t.total.mutating == 5
    assert t.total.dbx_auth == 1


def test_outside_row_only_when_it_has_calls_and_runs_without_stage():
    t = cc.tally([inv(0, "lake-grants", None, 1.0, 2.0)], [aws(1.5, "ListPermissions", False, service="lakeformation")],
                 [], "lake-grants")
    assert [r.label for r in t.rows] == [cc.RUN]
    assert t.total.mutating == 0


def test_failed_and_unfinished_invocations():
    t = cc.tally([inv(0, "network-sleep", None, 1.0, None, failed=None), inv(1, "network-sleep", None, 0.0, 0.5, True)],
                 [aws(5.0, "DeleteNatGateway", True, service="ec2")], [], "network-sleep")
    row = t.row(cc.RUN)
    assert (row.invocations, row.failed_invocations, row.aws_mutating) == (2, 1, 1)
    assert "1 failed" in cc.invocations_text(row)


def test_target_passes_only_at_or_below_its_limit():
    quiet = cc.tally([inv(0, "provision", "validate", 1, 2)], [aws(1.5, "GetSecretValue", False)], [], "provision")
    busy = cc.tally([inv(0, "provision", "pat", 1, 2)], [aws(1.5, "RotateSecret", True)], [], "provision")
    target = cc.Target("no-op", "provision", "re-run")
    assert not target.passed  # not measured is not a pass
    target.check(quiet)
    assert target.passed and target.actual == 0
    target.check(busy)
    assert not target.passed and target.actual == 1
    assert "RotateSecret" in "\n".join(cc.targets_table([target]))
    assert "FAIL" in "\n".join(cc.targets_table([target]))


def test_table_has_a_row_per_stage_and_a_total():
    t = cc.tally([inv(0, "provision", "validate", 1, 2), inv(1, "provision", "workspace", 3, 4)],
                 [aws(3.5, "CreateSecret", True)], [dbx(3.6, "POST", "/api/2.0/accounts/a/workspaces")], "provision")
    lines = cc.table(t)
    assert len(lines) == 2 + 2 + 1
    assert lines[-1].startswith("| **total** | 2 | 1 (1) | 1 (1) | 0 |")
    assert "`POST /api/2.0/accounts/a/workspaces`" in lines[-1]


def test_operations_text_orders_and_truncates():
    from collections import Counter

    text = cc.operations_text(Counter({"b": 1, "a": 1, "c": 3}), limit=2)
    assert text == "`c` ×3, `a`, +1 more"
    assert cc.operations_text(Counter()) == "—"


def test_replace_block_inserts_a_section_once_then_rewrites_only_the_block():
    begin, end = "<!-- bench:calls:begin -->", "<!-- bench:calls:end -->"
    section = f"## Call counts\n\nintro\n\n{begin}\n{end}\n"
    document = "# B\n\n## Results\n\nkeep\n\n## What the harness does not measure yet\n\n- x\n"
    once = cc.replace_block(document, "figures 1\n", begin, end, section, "## What the harness does not measure yet")
    assert once.index("## Call counts") < once.index("## What the harness does not measure yet")
    assert "figures 1" in once and "keep" in once
    twice = cc.replace_block(once, "figures 2\n", begin, end, section, "## What the harness does not measure yet")
    assert "figures 1" not in twice and "figures 2" in twice
    assert twice.count("## Call counts") == 1
    assert twice.replace("figures 2", "figures 1") == once
    appended = cc.replace_block("# B\n", "f\n", begin, end, section, "## Missing")
    assert appended.endswith(f"{begin}\nf\n\n{end}\n")
    with pytest.raises(ValueError):
        cc.replace_block(f"{begin}\nno end", "f", begin, end, section, None)


def test_grants_policy_has_distinct_pairs_and_names_only_existing_tables():
    catalog = fx.grants_catalog()
    policy = fx.grants_policy(200, "123456789012", catalog, "bucket")
    grants = policy["grants"]
    assert len(grants) == 200
    pairs = {(g["principal"], json.dumps(g["resource"], sort_keys=True)) for g in grants}
    assert len(pairs) == 200
    for g in grants:
        resource = g["resource"]
        database = resource.get("database") or resource["table"]["database"]
        assert database in catalog
        if "table" in resource and resource["table"]["name"] != "*":
            assert resource["table"]["name"] in catalog[database]
    kinds = {("table" if "table" in g["resource"] and g["resource"]["table"]["name"] != "*" else
              "wildcard" if "table" in g["resource"] else "database") for g in grants}
    assert kinds == {"database", "wildcard", "table"}
    principals = {g["principal"] for g in grants}
    assert len(principals) == fx.GRANTS_PRINCIPALS
    with pytest.raises(ValueError):
        fx.grants_policy(10_000, "123456789012", catalog, "bucket")


def test_full_spec_is_adapted_to_the_stack():
    event = json.loads((fx.EVENTS / "provision-full.json").read_text())
    spec = fx.full_spec(event, "123456789012", "us-east-1", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x")
    text = json.dumps(spec)
    assert "210987654321" not in text and "eu-west-1" not in text
    assert "host" not in spec["account"]
    assert "rotation_function_arn" not in spec["pat"]
    assert spec["account"]["credentials_secret_arn"].endswith(":secret:x")


def test_other_functions_outside_the_scenario_are_background_not_total():
    invocations = [
        inv(0, "catalog-ingest", None, 0.5, 0.8),  # an SQS poller delivery before the first stage
        inv(1, "provision", "validate", 1.0, 2.0),
    ]
    requests = [aws(0.6, "GetObject", False, service="s3"), aws(0.7, "CreateTable", True, service="glue"),
                aws(1.5, "GetSecretValue", False)]
    t = cc.tally(invocations, requests, [dbx(0.65, "POST", "/oidc/accounts/a/v1/token")], "provision")
    assert [r.label for r in t.rows] == ["validate"]
    assert [r.label for r in t.background] == [f"{cc.BACKGROUND} catalog-ingest"]
    assert (t.total.invocations, t.total.aws_calls, t.total.mutating, t.total.dbx_calls) == (1, 1, 0, 0)
    assert cc.background_text(t) == ("Not counted, run by the stack meanwhile outside the scenario's invocations: "
                                     "catalog-ingest ×1 (2 AWS, 1 Databricks calls).")
    assert cc.background_text(cc.tally([], [], [], "provision")) == ""
