"""Jobs conformance for a DR failover: schedules and their pause status, update
(partial merge), reset (full replace), list filters and cancelling all runs of a job.
A failover pauses the primary's scheduled jobs and unpauses the secondary's."""

import pytest
from databricks.sdk import errors
from databricks.sdk.service import jobs

from conftest import unique

CLUSTER = "0000-000000-abcdefgh"


def task(key: str, depends_on=()):
    return jobs.Task(
        task_key=key,
        notebook_task=jobs.NotebookTask(notebook_path=f"/Repos/lakeops/{key}"),
        existing_cluster_id=CLUSTER,
        depends_on=[jobs.TaskDependency(task_key=d) for d in depends_on] or None,
    )


def nightly(pause_status=None):
    return jobs.CronSchedule(quartz_cron_expression="0 0 2 * * ?", timezone_id="Europe/Berlin", pause_status=pause_status)


def test_schedule_defaults_to_unpaused_and_update_pauses_it(w):
    job = w.jobs.create(name=unique("failover"), tasks=[task("ingest"), task("publish", ["ingest"])], schedule=nightly(), tags={"dr": "primary"})
    got = w.jobs.get(job.job_id)
    assert got.settings.schedule.pause_status == jobs.PauseStatus.UNPAUSED
    assert got.settings.schedule.quartz_cron_expression == "0 0 2 * * ?"
    assert got.settings.schedule.timezone_id == "Europe/Berlin"

    # A partial update: only the schedule changes; tasks, tags and name are kept.
    w.jobs.update(job.job_id, new_settings=jobs.JobSettings(schedule=nightly(jobs.PauseStatus.PAUSED)))
    paused = w.jobs.get(job.job_id).settings
    assert paused.schedule.pause_status == jobs.PauseStatus.PAUSED
    assert [t.task_key for t in paused.tasks] == ["ingest", "publish"]
    assert paused.tags == {"dr": "primary"} and paused.name == got.settings.name

    # Tasks merge by task_key: one replaced, one added, the other kept.
    changed = jobs.Task(task_key="publish", notebook_task=jobs.NotebookTask(notebook_path="/Repos/lakeops/publish-v2"), existing_cluster_id=CLUSTER)
    w.jobs.update(job.job_id, new_settings=jobs.JobSettings(tasks=[changed, task("audit")]))
    tasks = {t.task_key: t for t in w.jobs.get(job.job_id).settings.tasks}
    assert set(tasks) == {"ingest", "publish", "audit"}
    assert tasks["publish"].notebook_task.notebook_path == "/Repos/lakeops/publish-v2"

    # fields_to_remove: a top-level field and a single task.
    w.jobs.update(job.job_id, fields_to_remove=["tags", "tasks/audit"])
    after = w.jobs.get(job.job_id).settings
    assert after.tags is None
    assert sorted(t.task_key for t in after.tasks) == ["ingest", "publish"]
    assert after.schedule.pause_status == jobs.PauseStatus.PAUSED
    w.jobs.delete(job.job_id)


def test_reset_replaces_every_setting(w):
    job = w.jobs.create(name=unique("secondary"), tasks=[task("ingest")], schedule=nightly(jobs.PauseStatus.PAUSED), tags={"dr": "secondary"}, max_concurrent_runs=3)
    assert w.jobs.get(job.job_id).settings.schedule.pause_status == jobs.PauseStatus.PAUSED
    name = unique("secondary-live")
    w.jobs.reset(job.job_id, new_settings=jobs.JobSettings(name=name, tasks=[task("serve")], continuous=jobs.Continuous()))
    got = w.jobs.get(job.job_id).settings
    assert got.name == name
    assert [t.task_key for t in got.tasks] == ["serve"]
    assert got.schedule is None and got.tags is None
    assert got.continuous.pause_status == jobs.PauseStatus.UNPAUSED
    # max_concurrent_runs went back to the service's default.
    assert got.max_concurrent_runs == 1
    w.jobs.update(job.job_id, new_settings=jobs.JobSettings(continuous=jobs.Continuous(pause_status=jobs.PauseStatus.PAUSED)))
    assert w.jobs.get(job.job_id).settings.continuous.pause_status == jobs.PauseStatus.PAUSED
    # The 2.1 paths answer the same (older clients and the Terraform provider use them).
    w.api_client.do("POST", "/api/2.1/jobs/update", body={"job_id": job.job_id, "new_settings": {"continuous": {"pause_status": "UNPAUSED"}}})
    got21 = w.api_client.do("GET", "/api/2.1/jobs/get", query={"job_id": job.job_id})
    assert got21["settings"]["continuous"]["pause_status"] == "UNPAUSED"
    w.api_client.do("POST", "/api/2.1/jobs/reset", body={"job_id": job.job_id, "new_settings": {"name": name}})
    assert w.jobs.get(job.job_id).settings.continuous is None
    w.jobs.delete(job.job_id)


def test_trigger_pause_status_and_list_filters(w):
    name = unique("Trigger-Job")
    job = w.jobs.create(
        name=name,
        tasks=[task("ingest")],
        trigger=jobs.TriggerSettings(file_arrival=jobs.FileArrivalTriggerConfiguration(url="s3://lakeops-landing/in/")),
    )
    other = w.jobs.create(name=unique("other"), tasks=[task("ingest")])
    # The name filter is exact but case insensitive.
    found = list(w.jobs.list(name=name.lower()))
    assert [j.job_id for j in found] == [job.job_id]
    assert found[0].settings.trigger.pause_status == jobs.PauseStatus.UNPAUSED
    assert not found[0].settings.tasks
    expanded = list(w.jobs.list(name=name, expand_tasks=True))
    assert [t.task_key for t in expanded[0].settings.tasks] == ["ingest"]
    # Paging with page_token: the SDK follows next_page_token; every job once.
    paged = [j.job_id for j in w.jobs.list(limit=1)]
    assert len(paged) == len(set(paged)) and {job.job_id, other.job_id} <= set(paged)
    first = w.api_client.do("GET", "/api/2.2/jobs/list", query={"limit": 1})
    second = w.api_client.do("GET", "/api/2.2/jobs/list", query={"limit": 1, "page_token": first["next_page_token"]})
    assert second["prev_page_token"] == "0" and second["jobs"][0]["job_id"] != first["jobs"][0]["job_id"]
    for j in (job, other):
        w.jobs.delete(j.job_id)


def test_settings_are_validated_as_the_service_does(w):
    with pytest.raises(errors.InvalidParameterValue, match="Invalid quartz_cron_expression"):
        w.jobs.create(name=unique("bad"), schedule=jobs.CronSchedule(quartz_cron_expression="0 2 * * *", timezone_id="UTC"))
    with pytest.raises(errors.InvalidParameterValue, match="timezone_id"):
        w.jobs.create(name=unique("bad"), schedule=jobs.CronSchedule(quartz_cron_expression="0 0 2 * * ?", timezone_id="Mars/Olympus"))
    with pytest.raises(errors.InvalidParameterValue, match="Only one of schedule, continuous and trigger"):
        w.jobs.create(name=unique("bad"), schedule=nightly(), continuous=jobs.Continuous())
    with pytest.raises(errors.InvalidParameterValue, match="pause_status"):
        w.api_client.do("POST", "/api/2.2/jobs/create", body={"name": "bad", "continuous": {"pause_status": "STOPPED"}})
    job = w.jobs.create(name=unique("valid"), schedule=nightly())
    # An update is validated as a whole: adding continuous next to the schedule fails
    # and leaves the job as it was.
    with pytest.raises(errors.InvalidParameterValue):
        w.jobs.update(job.job_id, new_settings=jobs.JobSettings(continuous=jobs.Continuous()))
    assert w.jobs.get(job.job_id).settings.continuous is None
    with pytest.raises(errors.InvalidParameterValue):
        w.api_client.do("POST", "/api/2.2/jobs/reset", body={"job_id": job.job_id})
    w.jobs.delete(job.job_id)
    with pytest.raises(errors.InvalidParameterValue, match="does not exist"):
        w.jobs.update(job.job_id, new_settings=jobs.JobSettings(name="x"))
    with pytest.raises(errors.InvalidParameterValue, match="does not exist"):
        w.jobs.reset(job.job_id, new_settings=jobs.JobSettings(name="x"))


def test_cancel_all_runs_cancels_only_that_jobs_active_runs(w):
    primary = w.jobs.create(name=unique("primary"), tasks=[task("ingest")], max_concurrent_runs=5)
    bystander = w.jobs.create(name=unique("bystander"), tasks=[task("ingest")])
    runs = [w.jobs.run_now(primary.job_id).response.run_id for _ in range(3)]
    kept = w.jobs.run_now(bystander.job_id).response.run_id
    w.jobs.cancel_all_runs(job_id=primary.job_id)
    assert [r.run_id for r in w.jobs.list_runs(job_id=primary.job_id, active_only=True)] == []
    for run_id in runs:
        state = w.jobs.get_run(run_id).state
        assert state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED
        assert state.result_state == jobs.RunResultState.CANCELED
    assert w.jobs.get_run(kept).state.life_cycle_state in (jobs.RunLifeCycleState.PENDING, jobs.RunLifeCycleState.RUNNING)
    # The emulator never queues runs, so all_queued_runs alone leaves running ones alone.
    w.jobs.cancel_all_runs(all_queued_runs=True)
    assert w.jobs.get_run(kept).state.result_state != jobs.RunResultState.CANCELED
    with pytest.raises(errors.InvalidParameterValue):
        w.jobs.cancel_all_runs()
    w.jobs.cancel_run(kept)
    for j in (primary, bystander):
        w.jobs.delete(j.job_id)
    with pytest.raises(errors.InvalidParameterValue, match="does not exist"):
        w.jobs.cancel_all_runs(job_id=primary.job_id)
