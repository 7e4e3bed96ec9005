"""Integration tests: a real stack (moto + cargo lambda watch + Databricks emulator) on free ports."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import FIXTURE_MANIFEST, TEMPLATE, Stack, free_port, run_stack, stack_env
from lakeops_stack.state import group_alive

FUNCTION = "lakeops-test-echo"
ACCOUNT = "123456789012"


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


# ---- outputs -----------------------------------------------------------------------------------------


def test_outputs_name_every_resource_and_endpoint(stack: Stack) -> None:
    outputs = stack.outputs()
    assert outputs["stack_name"] == "lakeops-local"
    assert outputs["endpoints"]["aws"] == f"http://127.0.0.1:{stack.aws_port}"
    assert outputs["ports"] == {"aws": stack.aws_port, "lambda": stack.lambda_port, "databricks": stack.databricks_port}
    assert outputs["outputs"]["DataBucketName"] == "lakeops-test-data"
    assert outputs["outputs"]["EchoFunctionArn"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FUNCTION}"
    assert not any(key.startswith("LakeopsLocalRef") for key in outputs["outputs"])
    resources = outputs["resources"]
    assert resources["EchoFunction"] == FUNCTION
    assert resources["CatalogDatabase"] == "lakeops_test"
    assert resources["QueryWorkGroup"] == "lakeops-test"
    assert resources["DatabricksSecret"].startswith(f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:lakeops-test/databricks-")
    assert outputs["resource_details"]["DatabricksSecret"]["created_by"] == "sdk"
    assert outputs["resource_details"]["DataBucket"]["created_by"] == "cloudformation"
    assert outputs["functions"][FUNCTION]["binary"] == "echo-fn"
    assert outputs["unsupported"] == []


def test_sdk_created_resources_exist_in_moto(stack: Stack) -> None:
    assert stack.client("glue").get_database(Name="lakeops_test")["Database"]["Name"] == "lakeops_test"
    workgroup = stack.client("athena").get_work_group(WorkGroup="lakeops-test")["WorkGroup"]
    assert workgroup["Configuration"]["ResultConfiguration"]["OutputLocation"] == "s3://lakeops-test-data/athena/"
    secret = stack.client("secretsmanager").describe_secret(SecretId="lakeops-test/databricks")
    assert secret["Description"] == "Databricks credentials (test)"
    assert secret["RotationEnabled"] is True
    assert secret["RotationLambdaARN"].endswith(f":function:{FUNCTION}")
    schedule = stack.client("scheduler").get_schedule(Name="lakeops-test-nightly")
    assert schedule["ScheduleExpression"] == "rate(1 day)"
    assert schedule["Target"]["Input"] == '{"from":"schedule"}'
    table = stack.client("glue").get_table(DatabaseName="lakeops_test", Name="events")["Table"]
    assert table["StorageDescriptor"]["Location"] == "s3://lakeops-test-data/events/"
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{stack.outputs()['resources']['EchoFunctionRole']}"
    lake = stack.client("lakeformation")
    admins = lake.get_data_lake_settings()["DataLakeSettings"]["DataLakeAdmins"]
    assert admins == [{"DataLakePrincipalIdentifier": role_arn}]
    grants = lake.list_permissions(
        Principal={"DataLakePrincipalIdentifier": role_arn},
        Resource={"Database": {"CatalogId": ACCOUNT, "Name": "lakeops_test"}},
    )["PrincipalResourcePermissions"]
    assert [g["Permissions"] for g in grants] == [["DESCRIBE"]]
    alarm = stack.client("cloudwatch").describe_alarms(AlarmNames=["lakeops-test-echo-errors"])["MetricAlarms"][0]
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": FUNCTION}]
    # The SNS subscription (SDK-created) delivers to the queue.
    sqs = stack.client("sqs")
    inbox = sqs.get_queue_url(QueueName="lakeops-test-alarm-inbox")["QueueUrl"]
    stack.client("sns").publish(TopicArn=stack.outputs()["resources"]["AlarmTopic"], Message="ping")
    assert wait_for(lambda: sqs.receive_message(QueueUrl=inbox).get("Messages"))[0]["Body"] == "ping"
    # Resource policies (SDK-created: moto's CloudFormation lacks the types) are attached as written.
    queue_policy = json.loads(sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert queue_policy["Statement"][0]["Principal"] == {"Service": "sns.amazonaws.com"}
    topic = stack.client("sns").get_topic_attributes(TopicArn=stack.outputs()["resources"]["AlarmTopic"])["Attributes"]
    assert json.loads(topic["Policy"])["Statement"][0]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    bucket_policy = json.loads(stack.client("s3").get_bucket_policy(Bucket="lakeops-test-data")["Policy"])
    assert bucket_policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert bucket_policy["Statement"][0]["Resource"] == ["arn:aws:s3:::lakeops-test-data", "arn:aws:s3:::lakeops-test-data/*"]


def test_databricks_emulator_answers(stack: Stack) -> None:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{stack.databricks_port}/", timeout=5)
    except urllib.error.HTTPError:
        pass  # any HTTP answer is fine: it is up


# ---- Lambda Invoke ------------------------------------------------------------------------------------


def test_invoke_runs_the_function_with_its_template_environment(stack: Stack) -> None:
    response = stack.client("lambda").invoke(FunctionName=FUNCTION, Payload=b'{"hello": "world"}')
    assert "FunctionError" not in response
    body = json.loads(response["Payload"].read())
    assert body["echo"] == {"hello": "world"}
    env = body["env"]
    assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{stack.aws_port}"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == FUNCTION
    assert env["BUCKET_NAME"] == "lakeops-test-data"
    assert env["QUEUE_URL"].endswith("/lakeops-test-work")
    assert env["RECORD_FILE"] == str(stack.record_file)
    assert env["DATABRICKS_ACCOUNT_HOST"] == f"http://127.0.0.1:{stack.databricks_port}"


def test_invoke_by_arn_and_with_the_aws_cli(stack: Stack) -> None:
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{FUNCTION}"
    response = stack.client("lambda").invoke(FunctionName=arn, Payload=b"{}")
    assert json.loads(response["Payload"].read())["echo"] == {}
    aws = Path(sys.executable).parent / "aws"
    out = Path(stack.state_dir) / "cli-out.json"
    env = {**stack_env(), "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    subprocess.run(
        [str(aws), "lambda", "invoke", "--endpoint-url", f"http://127.0.0.1:{stack.aws_port}", "--function-name", FUNCTION, "--payload", '{"cli": 1}', str(out)],
        check=True,
        env=env,
        capture_output=True,
    )
    assert json.loads(out.read_text())["echo"] == {"cli": 1}


def test_function_errors_carry_type_and_message(stack: Stack) -> None:
    response = stack.client("lambda").invoke(FunctionName=FUNCTION, Payload=b'{"fail": "Lakeops.InvalidInput"}')
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read()) == {"errorType": "Lakeops.InvalidInput", "errorMessage": "asked to fail with Lakeops.InvalidInput"}


def test_async_invoke_returns_202_and_runs(stack: Stack) -> None:
    stack.clear_records()
    response = stack.client("lambda").invoke(FunctionName=FUNCTION, InvocationType="Event", Payload=b'{"async": true}')
    assert response["StatusCode"] == 202
    wait_for(lambda: {"async": True} in stack.records())


# ---- Step Functions ---------------------------------------------------------------------------------------


def run_execution(stack: Stack, payload: dict) -> dict:
    sfn = stack.client("stepfunctions")
    arn = stack.outputs()["outputs"]["RetryMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
    return wait_for(lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d, timeout=60)


def test_state_machine_retries_then_catches_on_error_type(stack: Stack) -> None:
    stack.clear_records()
    described = run_execution(stack, {"fail": "Lakeops.Retryable"})
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["outcome"] == "caught"
    assert output["error"]["Error"] == "Lakeops.Retryable"
    # Echo once, then Call: first attempt + MaxAttempts 2 retries.
    calls = [r for r in stack.records() if r.get("fail") == "Lakeops.Retryable"]
    assert len(calls) == 3
    # $$.Execution.Id reached the function unmangled through DefinitionSubstitutions.
    assert output["first"]["echo"]["execution"].startswith("arn:aws:states:us-east-1:")


def test_state_machine_fails_on_uncaught_error_type(stack: Stack) -> None:
    described = run_execution(stack, {"fail": "Lakeops.Terminal"})
    assert described["status"] == "FAILED"
    assert described["error"] == "Lakeops.Terminal"


def test_unnamed_executions_get_distinct_names(stack: Stack) -> None:
    first = run_execution(stack, {"n": 1})
    second = run_execution(stack, {"n": 2})
    assert first["status"] == second["status"] == "SUCCEEDED"
    assert first["executionArn"] != second["executionArn"]


# ---- SQS event-source mapping ----------------------------------------------------------------------------------


def test_sqs_mapping_honours_batch_size_and_partial_failures(stack: Stack) -> None:
    sqs = stack.client("sqs")
    queue = sqs.get_queue_url(QueueName="lakeops-test-work")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="lakeops-test-work-dlq")["QueueUrl"]
    stack.clear_records()
    bodies = [f"ok-{i}" for i in range(11)] + ["please fail"]
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])])

    def dead_letters() -> list[str]:
        return [m["Body"] for m in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])]

    assert wait_for(dead_letters, timeout=40) == ["please fail"]
    batches = [[r["body"] for r in e["Records"]] for e in stack.records() if "Records" in e and e["Records"][0]["eventSource"] == "aws:sqs"]
    assert max(len(b) for b in batches) <= 5  # BatchSize from the template
    delivered = [body for batch in batches for body in batch]
    # Every good message was delivered once (deleted after success); the failing one twice
    # (maxReceiveCount 2), then moto's redrive moved it to the DLQ.
    assert sorted(b for b in delivered if b.startswith("ok-")) == sorted(bodies[:-1])
    assert delivered.count("please fail") == 2
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


# ---- S3 notifications ---------------------------------------------------------------------------------------


def test_s3_notification_respects_the_prefix_filter(stack: Stack) -> None:
    s3 = stack.client("s3")
    stack.clear_records()
    s3.put_object(Bucket="lakeops-test-data", Key="other/skip.txt", Body=b"x")
    s3.put_object(Bucket="lakeops-test-data", Key="incoming/a b.txt", Body=b"x")

    def s3_keys() -> list[str]:
        return [r["s3"]["object"]["key"] for e in stack.records() for r in e.get("Records", []) if r.get("eventSource") == "aws:s3"]

    assert wait_for(s3_keys) == ["incoming/a+b.txt"]  # URL-encoded, "/" kept, as S3 sends it
    time.sleep(1)
    assert s3_keys() == ["incoming/a+b.txt"]


# ---- Secrets Manager rotation -----------------------------------------------------------------------------------


def rotation_steps(stack: Stack) -> list[tuple[str, str]]:
    return [(r["Step"], r["ClientRequestToken"]) for r in stack.records() if "Step" in r]


def test_rotate_secret_runs_the_four_steps_with_the_configured_function(stack: Stack) -> None:
    sm = stack.client("secretsmanager")
    stack.clear_records()
    token = "a" * 32 + "-rotation-ok"
    response = sm.rotate_secret(SecretId="lakeops-test/databricks", ClientRequestToken=token)
    assert response["VersionId"] == token
    assert rotation_steps(stack) == [(s, token) for s in ("createSecret", "setSecret", "testSecret", "finishSecret")]
    assert all(r["SecretId"] == response["ARN"] for r in stack.records() if "Step" in r)


def test_rotation_stops_at_the_first_failing_step(stack: Stack) -> None:
    sm = stack.client("secretsmanager")
    stack.clear_records()
    # Earlier tests may leave a rotation unfinished (the echo function does not
    # move stages); AWS refuses a new rotation while one is pending, so end it.
    versions = sm.list_secret_version_ids(SecretId="lakeops-test/databricks")["Versions"]
    for version in versions:
        if "AWSPENDING" in version.get("VersionStages", []):
            sm.update_secret_version_stage(
                SecretId="lakeops-test/databricks", VersionStage="AWSPENDING", RemoveFromVersionId=version["VersionId"]
            )
    current_before = sm.get_secret_value(SecretId="lakeops-test/databricks")["VersionId"]
    token = "fail-" + "b" * 32
    sm.rotate_secret(SecretId="lakeops-test/databricks", ClientRequestToken=token)
    assert [s for s, _ in rotation_steps(stack)] == ["createSecret", "setSecret", "testSecret"]
    # Only the function moves AWSCURRENT: it did not finish, so nothing moved.
    assert sm.get_secret_value(SecretId="lakeops-test/databricks")["VersionId"] == current_before


# ---- schedules ----------------------------------------------------------------------------------------------------


def test_fire_schedule_invokes_the_target_with_its_input(stack: Stack) -> None:
    stack.clear_records()
    result = json.loads(run_stack("fire-schedule", *stack.args(), "EchoFunctionNightly").stdout)
    assert result["schedule"] == "lakeops-test-nightly"
    assert result["results"][0]["status"] == "Succeeded"
    assert result["results"][0]["payload"]["echo"] == {"from": "schedule"}
    assert {"from": "schedule"} in stack.records()


def test_fire_schedule_of_an_events_rule(stack: Stack) -> None:
    result = json.loads(run_stack("fire-schedule", *stack.args(), "EchoFunctionHourly").stdout)
    assert result["results"][0]["payload"]["echo"] == {"from": "rule"}


def test_fire_schedule_of_a_state_machine_waits_for_the_execution(stack: Stack) -> None:
    result = json.loads(run_stack("fire-schedule", *stack.args(), "lakeops-test-retry-nightly").stdout)
    execution = result["results"][0]
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["scheduled"] is True


def test_fire_schedule_unknown_name_lists_known_ones(stack: Stack) -> None:
    result = run_stack("fire-schedule", *stack.args(), "Nope", check=False)
    assert result.returncode == 1
    assert "lakeops-test-nightly (EchoFunctionNightly)" in result.stderr


# ---- lifecycle ----------------------------------------------------------------------------------------------------


def test_up_again_is_idempotent_and_other_ports_are_refused(stack: Stack) -> None:
    again = run_stack(*stack.up_args())
    assert "already running" in again.stderr
    other = [a if a != str(stack.aws_port) else str(free_port()) for a in stack.up_args()]
    refused = run_stack(*other, check=False)
    assert refused.returncode == 1
    assert "already running" in refused.stderr and "down" in refused.stderr


def test_ports_in_use_are_refused(stack: Stack, tmp_path: Path) -> None:
    result = run_stack(
        "up", "--state-dir", str(tmp_path / "s"), "--aws-port", str(stack.aws_port), "--lambda-port", str(free_port()),
        "--no-databricks", "--template", str(TEMPLATE), "--manifest-path", str(FIXTURE_MANIFEST), check=False,
    )
    assert result.returncode == 1
    assert f"--aws-port {stack.aws_port}" in result.stderr and "in use" in result.stderr


def test_redeploy_updates_function_environments(stack: Stack, tmp_path: Path) -> None:
    def invoke_env() -> dict:
        response = stack.client("lambda").invoke(FunctionName=FUNCTION, Payload=b'{"after": "deploy"}')
        body = json.loads(response["Payload"].read())
        assert body["echo"] == {"after": "deploy"}
        return body["env"]

    other = tmp_path / "other-record.jsonl"
    result = run_stack("deploy", *stack.args(), "--parameter", f"RecordFile={other}")
    assert "restarting cargo lambda watch (environments changed)" in result.stderr
    assert invoke_env()["RECORD_FILE"] == str(other)
    assert stack.outputs()["parameters"]["RecordFile"] == str(other)
    run_stack("deploy", *stack.args(), "--parameter", f"RecordFile={stack.record_file}")
    assert invoke_env()["RECORD_FILE"] == str(stack.record_file)
    unchanged = run_stack("deploy", *stack.args())
    assert "restarting cargo lambda watch (binaries rebuilt)" in unchanged.stderr
    assert invoke_env()["RECORD_FILE"] == str(stack.record_file)


def stack_processes(state: Path) -> dict[str, int]:
    status = json.loads(run_stack("status", "--state-dir", str(state), check=False).stdout)
    return {name: pid for name, pid in status["processes"].items() if pid}


def small_stack_args(state: Path, *extra: str) -> list[str]:
    return [
        "up", "--state-dir", str(state), "--aws-port", str(free_port()), "--lambda-port", str(free_port()), "--no-databricks",
        "--template", str(TEMPLATE), "--manifest-path", str(FIXTURE_MANIFEST), *extra,
    ]


def test_parent_exit_tears_the_stack_down(tmp_path: Path, stack: Stack) -> None:
    parent = subprocess.Popen(["sleep", "600"])
    state = tmp_path / "state"
    run_stack(*small_stack_args(state, "--parent-pid", str(parent.pid), "--parameter", f"RecordFile={tmp_path / 'r'}"))
    processes = stack_processes(state)
    assert set(processes) == {"supervisor", "moto", "lambda"}
    parent.kill()
    parent.wait()
    wait_for(lambda: not any(group_alive(pid) for pid in processes.values()), timeout=30)
    assert json.loads(run_stack("status", "--state-dir", str(state), check=False).stdout)["running"] is False


def test_failed_start_leaves_nothing_running(tmp_path: Path, stack: Stack) -> None:
    state = tmp_path / "state"
    # Processes start, then the deploy rejects the parameter: up must clean up after itself.
    result = run_stack(*small_stack_args(state, "--parameter", "NotInTemplate=1"), check=False)
    assert result.returncode == 2
    assert "NotInTemplate" in result.stderr
    assert stack_processes(state) == {}
    assert not list((state / "pids").glob("*.pid"))


def test_down_leaves_no_processes(tmp_path: Path, stack: Stack) -> None:
    state = tmp_path / "state"
    run_stack(*small_stack_args(state, "--parameter", f"RecordFile={tmp_path / 'r'}"))
    processes = stack_processes(state)
    run_stack("down", "--state-dir", str(state))
    assert not any(group_alive(pid) for pid in processes.values())
    second = run_stack("down", "--state-dir", str(state))
    assert "nothing was running" in second.stderr


# ---- Request log (benchmarks) ----------------------------------------------------------------------------------


def request_log(stack: Stack, kind: str, since: int = 0) -> dict:
    url = f"http://127.0.0.1:{stack.aws_port}/_lakeops/{kind}?since={since}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_request_log_names_each_call_and_each_invocation(stack: Stack) -> None:
    start = request_log(stack, "requests")["next"]
    glue = stack.client("glue")
    glue.create_database(DatabaseInput={"Name": "request_log_probe"})
    glue.get_database(Name="request_log_probe")
    s3 = stack.client("s3")
    s3.put_object(Bucket="lakeops-test-data", Key="probe/a.csv", Body=b"a,b\n1,2\n")
    s3.get_object(Bucket="lakeops-test-data", Key="probe/a.csv", Range="bytes=0-3")
    stack.client("sqs").get_queue_url(QueueName="lakeops-test-work")
    invocations = request_log(stack, "invocations")["next"]
    stack.client("lambda").invoke(FunctionName=FUNCTION, Payload=b'{"stage": "probe"}')

    logged = request_log(stack, "requests", start)["requests"]
    calls = [(r["service"], r["operation"], r["mutating"]) for r in logged]
    assert calls[:6] == [
        ("glue", "CreateDatabase", True),
        ("glue", "GetDatabase", False),
        ("s3", "PutObject", True),
        ("s3", "GetObject", False),
        ("sqs", "GetQueueUrl", False),
        ("lambda", "Invoke", True),
    ]
    assert logged[3]["range"] == "bytes=0-3"
    assert all(r["client"] == "other" and r["status"] in (200, 206) and r["end"] >= r["start"] for r in logged[:5])
    spans = [s for s in request_log(stack, "invocations", invocations)["invocations"] if s["function"] == FUNCTION]
    assert spans and spans[0]["stage"] == "probe" and spans[0]["failed"] is False
    assert spans[0]["start"] <= spans[0]["end"]
