"""Workspace API conformance, through WorkspaceClient on a workspace's own base URL."""

import base64
import datetime
import time

import pytest
from databricks.sdk import WorkspaceClient, errors
from databricks.sdk.service import catalog, compute, jobs, pipelines, sql

from conftest import unique

WAIT = datetime.timedelta(seconds=30)


def test_current_user_is_the_service_principal(w, a):
    me = w.current_user.me()
    assert me.user_name == a.config.client_id
    assert me.active


def test_tokens_and_token_management(w, emulator, running_workspace):
    created = w.tokens.create(comment="ci", lifetime_seconds=3600)
    assert created.token_value.startswith("dapi")
    info = created.token_info
    assert info.comment == "ci" and info.expiry_time > info.creation_time
    assert info.token_id in [t.token_id for t in w.tokens.list()]

    pat = WorkspaceClient(host=emulator.workspace_host(running_workspace.deployment_name), token=created.token_value, auth_type="pat")
    assert pat.current_user.me().user_name == w.current_user.me().user_name

    managed = [t for t in w.token_management.list() if t.token_id == info.token_id]
    assert managed and managed[0].created_by_username == w.current_user.me().user_name
    assert w.token_management.get(info.token_id).token_info.workspace_id == running_workspace.workspace_id

    w.tokens.delete(info.token_id)
    assert info.token_id not in [t.token_id for t in w.tokens.list()]
    with pytest.raises(errors.PermissionDenied, match="Invalid access token"):
        pat.current_user.me()
    with pytest.raises(errors.NotFound):
        w.tokens.delete(info.token_id)

    other = w.tokens.create(comment="managed-delete")
    assert other.token_info.expiry_time == -1
    w.token_management.delete(other.token_info.token_id)
    with pytest.raises(errors.NotFound):
        w.token_management.get(other.token_info.token_id)


def test_token_expiry_and_max_lifetime(w, emulator, running_workspace):
    short = w.tokens.create(comment="short", lifetime_seconds=1)
    client = WorkspaceClient(host=emulator.workspace_host(running_workspace.deployment_name), token=short.token_value, auth_type="pat")
    time.sleep(1.2)
    with pytest.raises(errors.PermissionDenied):
        client.current_user.me()

    w.workspace_conf.set_status({"maxTokenLifetimeDays": "1"})
    assert w.workspace_conf.get_status(keys="maxTokenLifetimeDays") == {"maxTokenLifetimeDays": "1"}
    with pytest.raises(errors.InvalidParameterValue):
        w.tokens.create(comment="too long", lifetime_seconds=2 * 86400)
    ok = w.tokens.create(comment="within", lifetime_seconds=3600)
    w.tokens.delete(ok.token_info.token_id)
    w.workspace_conf.set_status({"maxTokenLifetimeDays": ""})
    assert w.workspace_conf.get_status(keys="maxTokenLifetimeDays") == {"maxTokenLifetimeDays": None}
    with pytest.raises(errors.InvalidParameterValue):
        w.workspace_conf.set_status({"noSuchSetting": "true"})


def test_clusters_state_machine(w):
    legacy = w.clusters.create(
        cluster_name=unique("single"),
        spark_version="15.4.x-scala2.12",
        node_type_id="m5.large",
        num_workers=0,
        spark_conf={"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"},
        custom_tags={"ResourceClass": "SingleNode"},
        autotermination_minutes=30,
    )
    assert w.clusters.get(legacy.cluster_id).state == compute.State.PENDING
    running = legacy.result(timeout=WAIT)
    assert running.state == compute.State.RUNNING and running.num_workers == 0

    new_form = w.clusters.create(
        cluster_name=unique("single-new"),
        spark_version="15.4.x-scala2.12",
        node_type_id="m5.large",
        kind=compute.Kind.CLASSIC_PREVIEW,
        is_single_node=True,
        data_security_mode=compute.DataSecurityMode.DATA_SECURITY_MODE_DEDICATED,
    ).result(timeout=WAIT)
    assert new_form.is_single_node and new_form.kind == compute.Kind.CLASSIC_PREVIEW

    ids = [c.cluster_id for c in w.clusters.list()]
    assert legacy.cluster_id in ids and new_form.cluster_id in ids
    with pytest.raises(errors.InvalidState):
        w.clusters.start(new_form.cluster_id)

    terminated = w.clusters.delete(legacy.cluster_id).result(timeout=WAIT)
    assert terminated.state == compute.State.TERMINATED
    assert terminated.termination_reason.code == compute.TerminationReasonCode.USER_REQUEST
    restarted = w.clusters.start(legacy.cluster_id).result(timeout=WAIT)
    assert restarted.state == compute.State.RUNNING

    for cid in (legacy.cluster_id, new_form.cluster_id):
        w.clusters.permanent_delete(cid)
        with pytest.raises(errors.InvalidParameterValue):
            w.clusters.get(cid)
    with pytest.raises(errors.InvalidParameterValue):
        w.clusters.create(cluster_name="bad", spark_version="15.4.x-scala2.12", node_type_id="m5.large", is_single_node=True)


def test_cluster_policies_pools_profiles(w):
    definition = '{"spark_version": {"type": "fixed", "value": "15.4.x-scala2.12"}}'
    name = unique("policy")
    policy = w.cluster_policies.create(name=name, definition=definition, max_clusters_per_user=2)
    assert w.cluster_policies.get(policy.policy_id).definition == definition
    with pytest.raises(errors.ResourceAlreadyExists):
        w.cluster_policies.create(name=name, definition=definition)
    w.cluster_policies.edit(policy.policy_id, name=name, definition=definition, description="edited")
    assert w.cluster_policies.get(policy.policy_id).description == "edited"
    assert policy.policy_id in [p.policy_id for p in w.cluster_policies.list()]
    w.cluster_policies.delete(policy.policy_id)
    with pytest.raises(errors.NotFound):
        w.cluster_policies.get(policy.policy_id)

    pool = w.instance_pools.create(instance_pool_name=unique("pool"), node_type_id="m5.large", min_idle_instances=1, max_capacity=4)
    got = w.instance_pools.get(pool.instance_pool_id)
    assert got.state == compute.InstancePoolState.ACTIVE and got.max_capacity == 4
    w.instance_pools.edit(pool.instance_pool_id, instance_pool_name="renamed", node_type_id="m5.large", max_capacity=8)
    assert w.instance_pools.get(pool.instance_pool_id).max_capacity == 8
    assert pool.instance_pool_id in [p.instance_pool_id for p in w.instance_pools.list()]
    w.instance_pools.delete(pool.instance_pool_id)
    assert pool.instance_pool_id not in [p.instance_pool_id for p in w.instance_pools.list()]

    arn = "arn:aws:iam::123456789012:instance-profile/lakeops"
    w.instance_profiles.add(arn, iam_role_arn="arn:aws:iam::123456789012:role/lakeops")
    assert arn in [p.instance_profile_arn for p in w.instance_profiles.list()]
    with pytest.raises(errors.ResourceAlreadyExists):
        w.instance_profiles.add(arn)
    with pytest.raises(errors.InvalidParameterValue):
        w.instance_profiles.add("arn:aws:iam::123456789012:role/not-a-profile")
    w.instance_profiles.remove(arn)
    assert arn not in [p.instance_profile_arn for p in w.instance_profiles.list()]


def test_global_init_scripts(w):
    script = base64.b64encode(b"#!/bin/bash\necho hello\n").decode()
    first = w.global_init_scripts.create(name="first", script=script, enabled=True)
    second = w.global_init_scripts.create(name="second", script=script, position=0)
    got = w.global_init_scripts.get(first.script_id)
    assert got.script == script and got.enabled and got.position == 1
    listed = {s.script_id: s for s in w.global_init_scripts.list()}
    assert listed[second.script_id].position == 0 and getattr(listed[first.script_id], "script", None) is None
    w.global_init_scripts.update(first.script_id, name="renamed", script=script, enabled=False)
    assert w.global_init_scripts.get(first.script_id).name == "renamed"
    for s in (first, second):
        w.global_init_scripts.delete(s.script_id)
    with pytest.raises(errors.NotFound):
        w.global_init_scripts.get(first.script_id)


def test_jobs_and_runs(w):
    job = w.jobs.create(
        name=unique("job"),
        tasks=[jobs.Task(task_key="main", notebook_task=jobs.NotebookTask(notebook_path="/Repos/x/main"), existing_cluster_id="0000-000000-abcdefgh")],
    )
    got = w.jobs.get(job.job_id)
    assert got.settings.tasks[0].task_key == "main"
    assert job.job_id in [j.job_id for j in w.jobs.list()]
    run = w.jobs.run_now(job.job_id).response
    active = [r.run_id for r in w.jobs.list_runs(job_id=job.job_id, active_only=True)]
    assert run.run_id in active
    assert w.jobs.get_run(run.run_id).state.life_cycle_state in (jobs.RunLifeCycleState.PENDING, jobs.RunLifeCycleState.RUNNING)
    w.jobs.cancel_run(run.run_id)
    assert run.run_id not in [r.run_id for r in w.jobs.list_runs(job_id=job.job_id, active_only=True)]
    finished = w.jobs.get_run(run.run_id)
    assert finished.state.result_state == jobs.RunResultState.CANCELED
    w.jobs.delete(job.job_id)
    with pytest.raises(errors.InvalidParameterValue):
        w.jobs.get(job.job_id)


def test_repos(w):
    repo = w.repos.create(url="https://github.com/example/lakeops.git", provider="gitHub")
    assert repo.path.endswith("/lakeops") and repo.branch == "main"
    with pytest.raises(errors.ResourceAlreadyExists):
        w.repos.create(url="https://github.com/example/lakeops.git", provider="gitHub", path=repo.path)
    w.repos.update(repo.id, branch="release")
    assert w.repos.get(repo.id).branch == "release"
    assert repo.id in [r.id for r in w.repos.list(path_prefix="/Repos")]
    w.repos.delete(repo.id)
    with pytest.raises(errors.NotFound):
        w.repos.get(repo.id)


def test_secret_scopes_and_secrets(w):
    scope = unique("scope")
    w.secrets.create_scope(scope)
    with pytest.raises(errors.ResourceAlreadyExists):
        w.secrets.create_scope(scope)
    assert scope in [s.name for s in w.secrets.list_scopes()]
    w.secrets.put_secret(scope, "db-password", string_value="s3cret")
    assert [s.key for s in w.secrets.list_secrets(scope)] == ["db-password"]
    assert base64.b64decode(w.secrets.get_secret(scope, "db-password").value) == b"s3cret"
    w.secrets.delete_secret(scope, "db-password")
    assert w.secrets.list_secrets(scope) == []
    w.secrets.delete_scope(scope)
    with pytest.raises(errors.NotFound):
        w.secrets.list_secrets(scope)


def test_unity_catalog(w, running_workspace):
    current = w.metastores.current()
    assert current.metastore_id == running_workspace.metastore_id and current.workspace_id == running_workspace.workspace_id

    cred_name = unique("cred")
    cred = w.storage_credentials.create(cred_name, aws_iam_role=catalog.AwsIamRoleRequest(role_arn="arn:aws:iam::123456789012:role/uc"))
    assert cred.aws_iam_role.unity_catalog_iam_arn and cred.aws_iam_role.external_id
    assert cred_name in [c.name for c in w.storage_credentials.list()]
    bucket = "s3://" + unique("bucket")
    loc = w.external_locations.create(unique("loc"), bucket + "/data", cred_name)
    assert loc.credential_id == cred.id
    with pytest.raises(errors.InvalidParameterValue):
        w.external_locations.create(unique("loc"), bucket + "/data/nested", cred_name)
    assert loc.name in [l.name for l in w.external_locations.list()]

    cat_name = unique("cat").replace("-", "_")
    cat = w.catalogs.create(cat_name, comment="lakeops")
    assert cat.catalog_type == catalog.CatalogType.MANAGED_CATALOG and cat.owner
    with pytest.raises(errors.ResourceAlreadyExists):
        w.catalogs.create(cat_name)
    schema = w.schemas.create("bronze", cat_name)
    assert schema.full_name == f"{cat_name}.bronze"
    assert {"default", "information_schema", "bronze"} <= {s.name for s in w.schemas.list(cat_name)}
    managed = w.volumes.create(cat_name, "bronze", "raw", catalog.VolumeType.MANAGED)
    external = w.volumes.create(cat_name, "bronze", "landing", catalog.VolumeType.EXTERNAL, storage_location=bucket + "/data/landing")
    assert w.volumes.read(f"{cat_name}.bronze.raw").volume_id == managed.volume_id
    assert {v.name for v in w.volumes.list(cat_name, "bronze")} == {"raw", "landing"}
    with pytest.raises(errors.BadRequest):
        w.volumes.create(cat_name, "bronze", "nowhere", catalog.VolumeType.EXTERNAL, storage_location="s3://unknown/x")

    w.grants.update(
        "catalog",
        cat_name,
        changes=[catalog.PermissionsChange(principal="data-engineers", add=[catalog.Privilege.USE_CATALOG, catalog.Privilege.CREATE_SCHEMA])],
    )
    perms = w.grants.get("catalog", cat_name)
    assert {p.principal: set(p.privileges) for p in perms.privilege_assignments} == {
        "data-engineers": {catalog.Privilege.USE_CATALOG, catalog.Privilege.CREATE_SCHEMA}
    }
    w.grants.update("catalog", cat_name, changes=[catalog.PermissionsChange(principal="data-engineers", remove=[catalog.Privilege.CREATE_SCHEMA])])
    assert w.grants.get("catalog", cat_name).privilege_assignments[0].privileges == [catalog.Privilege.USE_CATALOG]
    w.grants.update("external_location", loc.name, changes=[catalog.PermissionsChange(principal="etl", add=[catalog.Privilege.READ_FILES])])
    assert w.grants.get("external_location", loc.name, principal="etl").privilege_assignments[0].principal == "etl"

    with pytest.raises(errors.BadRequest):
        w.catalogs.delete(cat_name)
    w.volumes.delete(external.full_name)
    w.volumes.delete(managed.full_name)
    w.schemas.delete(schema.full_name)
    w.catalogs.delete(cat_name)
    with pytest.raises(errors.NotFound):
        w.catalogs.get(cat_name)
    w.external_locations.delete(loc.name)
    w.storage_credentials.delete(cred_name)
    with pytest.raises(errors.NotFound):
        w.storage_credentials.get(cred_name)


def test_sql_statement_is_recorded(w, emulator):
    # A statement needs a warehouse that exists (the stub accepted any id).
    wh = w.warehouses.create(name=unique("wh"), cluster_size="2X-Small").result(timeout=WAIT)
    resp = w.statement_execution.execute_statement(statement="SELECT 1", warehouse_id=wh.id, wait_timeout="10s")
    assert resp.status.state == sql.StatementState.SUCCEEDED
    assert resp.manifest.total_row_count == 1 and resp.result.data_array == [["1"]]
    assert w.statement_execution.get_statement(resp.statement_id).status.state == sql.StatementState.SUCCEEDED
    dump = emulator.control("GET", "/_emulator/state")
    statements = [s for d in dump["workspace_data"].values() for s in d["sql_statements"].values()]
    assert any(s["statement_id"] == resp.statement_id and s["statement"] == "SELECT 1" for s in statements)
    w.warehouses.delete(wh.id)


def test_sql_warehouses_states_and_paging(w):
    names = [unique("wh") for _ in range(3)]
    created = [w.warehouses.create(name=n, cluster_size="2X-Small", auto_stop_mins=10) for n in names]
    assert w.warehouses.get(created[0].id).state == sql.State.STARTING
    running = created[0].result(timeout=WAIT)
    assert running.state == sql.State.RUNNING and running.name == names[0]
    assert running.cluster_size == "2X-Small" and running.num_clusters == 1
    for waiter in created[1:]:
        waiter.result(timeout=WAIT)
    # One warehouse a page: the SDK follows next_page_token to the end.
    listed = {wh.id: wh for wh in w.warehouses.list(page_size=1)}
    assert all(c.id in listed for c in created)
    assert listed[created[1].id].state == sql.State.RUNNING

    stopping = w.warehouses.stop(created[0].id)
    assert w.warehouses.get(created[0].id).state == sql.State.STOPPING
    assert stopping.result(timeout=WAIT).state == sql.State.STOPPED
    w.warehouses.stop(created[0].id)  # idempotent
    assert w.warehouses.start(created[0].id).result(timeout=WAIT).state == sql.State.RUNNING

    with pytest.raises(errors.ResourceAlreadyExists):
        w.warehouses.create(name=names[1], cluster_size="Small")
    with pytest.raises(errors.InvalidParameterValue):
        w.warehouses.create(name=unique("wh"), cluster_size="Huge")
    with pytest.raises(errors.InvalidParameterValue):
        w.warehouses.create(name=unique("wh"))

    for c in created:
        w.warehouses.delete(c.id)
    assert w.warehouses.get(created[0].id).state == sql.State.DELETING
    with pytest.raises(errors.InvalidState):
        w.warehouses.start(created[0].id)
    time.sleep(1.2)
    assert w.warehouses.get(created[0].id).state == sql.State.DELETED
    remaining = {wh.id for wh in w.warehouses.list()}
    assert not remaining & {c.id for c in created}
    with pytest.raises(errors.NotFound):
        w.warehouses.get("0123456789abcdef")


def wait_for_pipeline_state(w, pipeline_id, state):
    deadline = time.time() + WAIT.total_seconds()
    while time.time() < deadline:
        got = w.pipelines.get(pipeline_id)
        if got.state == state:
            return got
        time.sleep(0.2)
    raise AssertionError(f"pipeline {pipeline_id} never reached {state}")


def test_pipelines_states_and_paging(w):
    triggered = w.pipelines.create(name=unique("dlt"), catalog="main", schema="bronze")
    continuous = w.pipelines.create(name=unique("dlt-stream"), continuous=True)
    extra = [w.pipelines.create(name=unique("dlt-page")) for _ in range(2)]
    ids = [triggered.pipeline_id, continuous.pipeline_id] + [p.pipeline_id for p in extra]
    got = w.pipelines.get(triggered.pipeline_id)
    assert got.state == pipelines.PipelineState.IDLE and got.spec.catalog == "main"
    assert not got.latest_updates

    update = w.pipelines.start_update(triggered.pipeline_id)
    got = w.pipelines.get(triggered.pipeline_id)
    assert got.state == pipelines.PipelineState.STARTING
    assert got.latest_updates[0].update_id == update.update_id
    done = w.pipelines.wait_get_pipeline_idle(triggered.pipeline_id, timeout=WAIT)
    assert done.latest_updates[0].state == pipelines.UpdateStateInfoState.COMPLETED

    w.pipelines.start_update(continuous.pipeline_id)
    wait_for_pipeline_state(w, continuous.pipeline_id, pipelines.PipelineState.RUNNING)
    with pytest.raises(errors.InvalidState):
        w.pipelines.start_update(continuous.pipeline_id)
    # One pipeline a page; `statuses` of every page, through the SDK's paging.
    listed = {p.pipeline_id: p for p in w.pipelines.list_pipelines(max_results=1)}
    assert all(i in listed for i in ids)
    assert listed[continuous.pipeline_id].state == pipelines.PipelineState.RUNNING
    with pytest.raises(errors.InvalidParameterValue):
        list(w.pipelines.list_pipelines(max_results=101))

    stopping = w.pipelines.stop(continuous.pipeline_id)
    assert w.pipelines.get(continuous.pipeline_id).state == pipelines.PipelineState.STOPPING
    stopped = stopping.result(timeout=WAIT)
    assert stopped.state == pipelines.PipelineState.IDLE
    assert stopped.latest_updates[0].state == pipelines.UpdateStateInfoState.CANCELED
    w.pipelines.stop(continuous.pipeline_id)  # no active update: a no-op

    for i in ids:
        w.pipelines.delete(i)
    with pytest.raises(errors.NotFound):
        w.pipelines.get(triggered.pipeline_id)
    assert not {p.pipeline_id for p in w.pipelines.list_pipelines()} & set(ids)
