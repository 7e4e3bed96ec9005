#!/usr/bin/env python3
"""Time to the first event of the lakeops Lambda functions against the local stack.

Issue 9 asks, for each function, for "the time to complete a first
representative event against the local stack", over at least 10 runs, and for
the memory the function holds after it (catalog-ingest's batch: at most 64 MB).

What it does:

1. starts a private local stack (`local/stack.sh up` on free ports, its own
   state dir; `down` at the end, also on failure), or uses a running one
   (`--stack-state-dir`);
2. prepares the stack for each function (account secret, lake spec, grants
   policy, a rotated secret, a sample network with network-sleep deployed for
   it; catalog-ingest's SQS event-source mapping is disabled so that the
   stack's own copy of the function does not take the notifications);
3. for each function, runs the RELEASE `bootstrap` from
   `<lambda-dir>/<fn>/bootstrap.zip` (not the stack's cargo lambda watch) under
   the Runtime API of bench/lambda_init.py, with the environment the stack
   deployed for that function (Lambda GetFunctionConfiguration in moto, plus
   the endpoints and credentials the stack's deployer adds; checked against
   the stack's own functions/<binary>.env), delivers one event and measures:
   - init: spawn -> the first `GET .../invocation/next` request line;
   - first event: the harness writing the event -> the whole
     `POST .../invocation/<id>/response` read (an `/error` post fails the run);
   - total: spawn -> response;
   - VmHWM (peak RSS) at init and when the process asks for its next event
     (after the response), from /proc/<pid>/status;
   - the AWS calls (moto's request log) and Databricks calls (the emulator's)
     the function made.
   Every run is a fresh process. One warm-up run per case comes first and is
   discarded (it pages the binary in and converges what the event converges);
   then the cases run round robin, `--runs` rounds.

Writes every sample as JSON and, with --markdown, the block between
`<!-- bench:first-event:begin -->` and `<!-- bench:first-event:end -->` of
BENCHMARKS.md. Exits non-zero when a run fails or catalog-ingest's RSS target
is missed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The stack's tooling (boto3, the main job's pyarrow, aws-sam-translator) lives
# in the project venv: run there whatever python3 started this.
VENV = Path(os.environ.get("LAKEOPS_VENV", ROOT / ".venv")).resolve()
if Path(sys.prefix).resolve() != VENV:
    if not (VENV / "bin" / "python").exists():
        raise SystemExit(f"bench/first_event.py needs the project venv at {VENV} (./dev setup, or set LAKEOPS_VENV)")
    os.execv(str(VENV / "bin" / "python"), [str(VENV / "bin" / "python"), *sys.argv])

import argparse
import contextlib
import datetime as dt
import json
import shlex
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "local" / "stack"), str(ROOT / "local")]

import lambda_init  # noqa: E402 - the Runtime API server and process handling
from lakeops_stack.deploy import FORCED_ENV, function_base_environment  # noqa: E402
from lakeops_stack.state import StateDir  # noqa: E402

FUNCTIONS = lambda_init.FUNCTIONS
MB = lambda_init.MB
INGEST_RSS_TARGET_BYTES = 64 * MB
RUNTIME = "/2018-06-01/runtime"
NEXT_PATH = lambda_init.NEXT_PATH

BEGIN_MARK = "<!-- bench:first-event:begin (written by bench/first_event.py; edit outside the markers) -->"
END_MARK = "<!-- bench:first-event:end -->"
SECTION_TITLE = "## First event against the local stack"


def progress(message: str) -> None:
    print(f"[first-event {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The Runtime API, delivering one event
# --------------------------------------------------------------------------


@dataclass
class EventRun(lambda_init.Run):
    """One process handling one event. `arrived` (from Run) is set when the
    event has been handed over on the first /next."""

    event: bytes = b""
    request_id: str = ""
    function_arn: str = ""
    timeout_s: int = 3
    delivered_ns: int = 0
    responded: threading.Event = field(default_factory=threading.Event)
    response_ns: int = 0
    response: bytes = b""
    error: bytes | None = None
    error_type: str = ""
    idle_again: threading.Event = field(default_factory=threading.Event)
    status_after: dict[str, int] = field(default_factory=dict)


class EventHandler(lambda_init.Handler):
    """lambda_init's handler, extended to deliver the event of the run and to
    take its answer: Lambda's Runtime API for one invocation."""

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        run = self.server.current
        if self.path != NEXT_PATH or not isinstance(run, EventRun):
            super().do_GET()
            return
        if not run.arrived.is_set():
            run.next_at_ns = self.stamp_ns
            run.pid_known.wait(timeout=5)
            try:
                run.status = lambda_init.read_status(run.pid)
            except OSError:
                run.status = {}
            deadline_ms = int(time.time() * 1000) + run.timeout_s * 1000
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Lambda-Runtime-Aws-Request-Id", run.request_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline_ms))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", run.function_arn)
            self.send_header("Lambda-Runtime-Trace-Id", f"Root=1-{int(time.time()):08x}-{run.request_id.replace('-', '')[:24]};Sampled=0")
            self.send_header("Content-Length", str(len(run.event)))
            self.end_headers()
            run.delivered_ns = time.perf_counter_ns()
            self.wfile.write(run.event)
            self.wfile.flush()
            run.arrived.set()
            return
        # The next /next, after the answer: the process is idle again, as a warm
        # Lambda sandbox between events. Its memory now is what it kept.
        if run.responded.is_set() and not run.idle_again.is_set():
            try:
                run.status_after = lambda_init.read_status(run.pid)
            except OSError:
                run.status_after = {}
            run.idle_again.set()
            run.release.wait(timeout=30)
            self.close_connection = True
            return
        run.other_requests.append(f"GET {self.path} (again)")
        self.send_error(404)

    def do_POST(self) -> None:  # noqa: N802
        run = self.server.current
        if not isinstance(run, EventRun):
            super().do_POST()
            return
        body = self.read_body()
        prefix = f"{RUNTIME}/invocation/{run.request_id}/"
        if self.path == prefix + "response":
            run.response_ns = time.perf_counter_ns()
            run.response = body
        elif self.path == prefix + "error":
            run.response_ns = time.perf_counter_ns()
            run.error = body
            run.error_type = self.headers.get("Lambda-Runtime-Function-Error-Type", "")
        elif self.path == f"{RUNTIME}/init/error":
            run.error = body
            run.error_type = self.headers.get("Lambda-Runtime-Function-Error-Type", "init error")
        else:
            run.other_requests.append(f"POST {self.path}")
            self.send_error(404)
            return
        # Before the 202: once the runtime has it, its next /next may be served
        # on another connection before this thread runs again.
        run.responded.set()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "16")
        self.end_headers()
        self.wfile.write(b'{"status":"OK"}\n')
        self.wfile.flush()

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


class EventFailed(RuntimeError):
    pass


@dataclass
class Subject:
    """A function as measured: the release bootstrap and its deployed environment."""

    name: str
    binary: Path
    env: dict[str, str]
    deployed_name: str
    function_arn: str
    timeout_s: int


def measure_event(server: lambda_init.RuntimeApi, subject: Subject, event: Any, log: Path, init_timeout_s: float, stack: "Stack | None") -> dict:
    """Run `subject` once, as a fresh process, with `event` as its first event.
    Raises EventFailed when it answers with an error; lambda_init.InitFailed
    when it dies or hangs. With a stack, counts the calls it made there."""
    run = EventRun(
        event=json.dumps(event).encode(),
        request_id=str(uuid.uuid4()),
        function_arn=subject.function_arn,
        timeout_s=subject.timeout_s,
    )
    marks = stack.request_marks() if stack is not None else None
    with open(log, "wb") as output:
        process, started_ns = lambda_init.spawn(server, run, subject.binary, subject.env, output)
        try:
            lambda_init.wait_for(run.arrived, process, "its request for an event", subject.binary, log, init_timeout_s)
            lambda_init.wait_for(run.responded, process, "its answer to the event", subject.binary, log, subject.timeout_s + 5)
            if run.error is None:
                lambda_init.wait_for(run.idle_again, process, "its request for the next event", subject.binary, log, 10)
        finally:
            lambda_init.stop(server, run, process)
    if run.error is not None:
        raise EventFailed(
            f"{subject.name} answered the event with an error ({run.error_type}): {run.error.decode(errors='replace')[:2000]}\n"
            f"event: {run.event.decode()[:1000]}\noutput:\n{log.read_text(errors='replace')[-3000:]}"
        )
    if run.other_requests:
        raise EventFailed(f"{subject.name} made unexpected Runtime API calls: {run.other_requests}")
    aws_calls, databricks_calls = stack.requests_since(*marks) if stack is not None else ([], [])
    return {
        "init_ms": (run.next_at_ns - started_ns) / 1e6,
        "event_ms": (run.response_ns - run.delivered_ns) / 1e6,
        "total_ms": (run.response_ns - started_ns) / 1e6,
        "vm_hwm_init": run.status.get("VmHWM", 0),
        "vm_hwm": run.status_after.get("VmHWM", 0),
        "vm_rss": run.status_after.get("VmRSS", 0),
        "rss_anon": run.status_after.get("RssAnon", 0),
        "rss_file": run.status_after.get("RssFile", 0),
        "threads": run.status_after.get("Threads", 0),
        "aws_calls": len(aws_calls),
        "aws_operations": sorted({f"{c['service']}:{c['operation']}" for c in aws_calls}),
        "aws_mutating": sum(1 for c in aws_calls if c.get("mutating")),
        "databricks_calls": len(databricks_calls),
        "server_ms": busy_ms(aws_calls + databricks_calls),
        "response": json.loads(run.response or b"null"),
    }


def busy_ms(requests: list[dict]) -> float:
    """How long at least one of `requests` was being served, in ms (concurrent calls count once)."""
    return lambda_init.union_length([(r["start"], r["end"]) for r in requests]) * 1000


# --------------------------------------------------------------------------
# The local stack
# --------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for probe in sockets:
            probe.close()


def stack_command(state_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`local/stack.sh ARGS --state-dir DIR`, its output on stderr (stdout is for the results)."""
    command = ["bash", str(ROOT / "local" / "stack.sh"), *args, "--state-dir", str(state_dir)]
    return subprocess.run(command, check=check, text=True, stdout=sys.stderr)


class Stack:
    """A running local stack, through the main job's helpers (local/main_job)."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.measured: list[str] = []
        os.environ["LAKEOPS_STACK_STATE_DIR"] = str(state_dir)
        from main_job.__main__ import Job

        self.job = Job()
        self.settings = StateDir(str(state_dir)).load_settings()
        if self.settings is None:
            raise SystemExit(f"no local stack settings in {state_dir}")

    def reload(self) -> None:
        self.job.load()
        self.settings = StateDir(str(self.state_dir)).load_settings()

    def client(self, service: str) -> Any:
        return self.job.client(service)

    def resource(self, logical_id: str) -> str:
        return self.job.resource(logical_id)

    def deployed_name(self, binary: str) -> str:
        if not self.job.has(binary):
            raise SystemExit(f"{binary} is not deployed in the local stack")
        return self.job.functions[binary]

    def _get(self, url: str) -> Any:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.loads(answer.read())

    def request_marks(self) -> tuple[int, int | None]:
        """The sequence numbers the next AWS and Databricks requests will get."""
        aws = self._get(f"{self.settings.aws_endpoint}/_lakeops/requests?since=1000000000000")["next"]
        databricks = None
        if self.settings.databricks_endpoint:
            databricks = self._get(f"{self.settings.databricks_endpoint}/_emulator/requests?since=1000000000000")["next"]
        return aws, databricks

    def wait_for_invocations(self, function: str, timeout_s: float = 180) -> None:
        """Until no invocation of `function` by the stack is running."""
        deadline = time.monotonic() + timeout_s
        while True:
            invocations = self._get(f"{self.settings.aws_endpoint}/_lakeops/invocations?since=0")["invocations"]
            if not any(i["function"] == function and i["end"] is None for i in invocations):
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"the stack's {function} is still running after {timeout_s:.0f}s")
            time.sleep(0.5)

    def requests_since(self, aws: int, databricks: int | None) -> tuple[list[dict], list[dict]]:
        """What the function made since the marks. The harness's own AWS calls
        (boto3) are told apart by their client; none are made during a run."""
        aws_calls = [
            r for r in self._get(f"{self.settings.aws_endpoint}/_lakeops/requests?since={aws}")["requests"] if r.get("client") == "rust-sdk"
        ]
        databricks_calls = []
        if databricks is not None:
            databricks_calls = self._get(f"{self.settings.databricks_endpoint}/_emulator/requests?since={databricks}")["requests"]
        return aws_calls, databricks_calls

    def deployed_environment(self, binary: str) -> tuple[dict[str, str], dict]:
        """The environment the stack gives `binary`: its Lambda configuration in
        moto, plus what the deployer adds (deploy.py, _write_function_environments),
        checked against the file function-runner.sh sources."""
        name = self.deployed_name(binary)
        configuration = self.client("lambda").get_function_configuration(FunctionName=name)
        template_env = (configuration.get("Environment") or {}).get("Variables") or {}
        # str(): moto hands a Number parameter back as a JSON number; the
        # deployer writes it as text, as Lambda does.
        env = {**function_base_environment(self.settings), **{k: str(v) for k, v in template_env.items() if k not in FORCED_ENV}}
        env["AWS_LAMBDA_FUNCTION_NAME"] = name
        env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = str(configuration.get("Timeout", 3))
        env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(configuration.get("MemorySize", 128))
        env_file = Path(self.state_dir) / "functions" / f"{binary}.env"
        runner_env = {}
        for line in env_file.read_text().splitlines():
            if line and not line.startswith("#"):
                key, _, value = shlex.split(line)[0].partition("=")
                runner_env[key] = value
        if runner_env != env:
            differ = sorted(k for k in set(runner_env) | set(env) if runner_env.get(k) != env.get(k))
            raise SystemExit(f"{binary}: the environment read from moto differs from {env_file} in {differ}")
        return env, configuration


def function_environment(subject_name: str, api: str, sandbox: Path, deployed: dict[str, str], configuration: dict) -> dict[str, str]:
    """Lambda's own variables (lambda_init) under the function's deployed ones."""
    env = lambda_init.lambda_runtime_env(subject_name, api, sandbox) | deployed
    logging_config = configuration.get("LoggingConfig") or {}
    if logging_config.get("LogFormat"):
        env["AWS_LAMBDA_LOG_FORMAT"] = logging_config["LogFormat"]
    if logging_config.get("ApplicationLogLevel"):
        env["AWS_LAMBDA_LOG_LEVEL"] = logging_config["ApplicationLogLevel"]
    return env


# --------------------------------------------------------------------------
# The events
# --------------------------------------------------------------------------


@dataclass
class Case:
    """One representative event of one function.

    `prepare(index)` runs before each run, outside the measured time, and
    returns the event (index 0 is the warm-up); `check(response, index)` raises
    when the answer is not the success expected and returns a short summary."""

    function: str
    label: str
    description: str
    prepare: Callable[[int], Any]
    check: Callable[[Any, int], str]


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise EventFailed(message)


def provision_case(stack: Stack) -> Case:
    from main_job import step_provision

    spec = step_provision.sample_spec(stack.job)

    def check(response: Any, _index: int) -> str:
        expect(response.get("stage") == "validate" and response.get("ready") is True, f"provision validate: {response}")
        return "outputs " + ",".join(sorted(response.get("outputs", {})))

    return Case(
        "provision",
        "`validate` stage, plan",
        "`{\"stage\": \"validate\", \"mode\": \"plan\", \"spec\": <events/provision-minimal.json's spec>}` — the first "
        "invocation of a provision execution; `account.credentials_secret_arn` points at the emulator's account admin "
        "(created by the harness, as local/main_job does), a PAT block added. It reads the secret (Secrets Manager), "
        "gets an OAuth token from the emulator and looks the workspace up by name. Reads only: every run does the same work",
        lambda _index: {"stage": "validate", "mode": "plan", "spec": spec},
        check,
    )


def upload_lake_spec(stack: Stack) -> str:
    """events/lake-spec.json with this stack's names, where catalog-setup's
    sample event and catalog-ingest's LAKE_SPEC_URI look for it."""
    from main_job import step_catalog

    config = stack.resource("ConfigBucket")
    stack.client("s3").put_object(Bucket=config, Key="lake/spec.json", Body=json.dumps(step_catalog.lake_spec(stack.job)).encode())
    return f"s3://{config}/lake/spec.json"


def ensure_lake(stack: Stack) -> None:
    """The layer databases that catalog-ingest and lake-grants work in. When
    catalog-setup is measured, its warm-up run creates them (it comes first in
    each round); otherwise the stack's own catalog-setup does, now."""
    uri = upload_lake_spec(stack)
    if "catalog-setup" not in stack.measured:
        progress("converging the lake with the stack's catalog-setup (Lambda Invoke)")
        stack.job.invoke("catalog-setup", {"mode": "apply", "spec_uri": uri})


def catalog_setup_case(stack: Stack) -> Case:
    uri = upload_lake_spec(stack)
    config = stack.resource("ConfigBucket")
    event = {"mode": "apply", "spec_uri": uri}

    def check(response: Any, index: int) -> str:
        expect(response.get("mode") == "apply" and isinstance(response.get("summary"), dict), f"catalog-setup: {response}")
        summary = response["summary"]
        if index > 0:
            expect(not summary.get("create") and not summary.get("update"), f"catalog-setup did not converge in the warm-up: {summary}")
        return ", ".join(f"{k} {v}" for k, v in sorted(summary.items()))

    return Case(
        "catalog-setup",
        "apply of the lake spec (converged)",
        f"`{json.dumps(event).replace(config, '<ConfigBucket>')}` (events/catalog-setup-apply.json) with "
        "events/lake-spec.json, given this stack's bucket names, at that key. The warm-up run converges the account "
        "(creates the layer databases, crawlers, Lake Formation locations, Athena workgroups); every measured run is "
        "the no-op apply that follows (reads and compares everything, changes nothing; checked)",
        lambda _index: event,
        check,
    )


def catalog_ingest_case(stack: Stack) -> Case:
    from main_job import step_catalog

    lam = stack.client("lambda")
    name = stack.deployed_name("catalog-ingest")
    window = 0
    for mapping in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]:
        if mapping.get("State") != "Disabled":
            progress(f"disabling the stack's event-source mapping {mapping['UUID']} of {name}")
            lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
            window = max(window, int(mapping.get("MaximumBatchingWindowInSeconds") or 0))
    # A batch the stack's poller is already collecting (the S3 test events of
    # the deployment start one) goes on for its batching window and is then
    # delivered to the stack's own function: let it finish, then empty the queue.
    time.sleep(window + 1)
    stack.wait_for_invocations(name)
    sqs = stack.client("sqs")
    queue_url = stack.resource("CatalogIngestQueue")
    if not queue_url.startswith("http"):
        queue_url = sqs.get_queue_url(QueueName=queue_url.rsplit(":", 1)[-1])["QueueUrl"]
    sqs.purge_queue(QueueUrl=queue_url)
    ensure_lake(stack)
    spec = step_catalog.lake_spec(stack.job)
    layers = {layer["name"]: layer for layer in spec["layers"]}
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    region = stack.job.outputs.get("region", "us-east-1")
    s3 = stack.client("s3")
    samples = step_catalog.sample_objects()
    expected: dict[int, set[tuple[str, str]]] = {}

    def prepare(index: int) -> dict:
        # A new day per run: every batch adds partitions to the tables the
        # warm-up created, as the next day's files do.
        day = (dt.date(2026, 1, 1) + dt.timedelta(days=index)).isoformat()
        wanted = set()
        for layer, key, body in samples:
            key = key.replace("date=2026-11-21", f"date={day}")
            s3.put_object(Bucket=layers[layer]["bucket"], Key=key, Body=body)
            wanted.add((layers[layer]["bucket"], key))
        expected[index] = wanted
        records: list[dict] = []
        deadline = time.monotonic() + 60
        while len(records) < len(wanted):
            expect(time.monotonic() < deadline, f"catalog-ingest: {len(records)} of {len(wanted)} S3 notifications reached the queue in 60 s")
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages", [])
            for message in got:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                body = json.loads(message["Body"])
                keys = {
                    (r["s3"]["bucket"]["name"], urllib.parse.unquote_plus(r["s3"]["object"]["key"]))
                    for r in body.get("Records", [])
                    if r.get("eventName", "").startswith("ObjectCreated")
                }
                if keys and keys <= wanted:
                    records.append(sqs_record(message, queue_arn, region))
        return {"Records": records}

    def check(response: Any, index: int) -> str:
        expect(isinstance(response, dict) and response.get("batchItemFailures") == [], f"catalog-ingest: {response}")
        return f"{len(expected[index])} objects, no batch item failures"

    return Case(
        "catalog-ingest",
        f"SQS batch of {len(samples)} S3 notifications",
        f"`{{\"Records\": [...]}}`: an SQS batch of the {len(samples)} S3 `ObjectCreated:Put` notifications that moto sent "
        "to the stack's catalog-ingest queue for the sample files of local/main_job (`sample_objects`: CSV, gzipped CSV, "
        "JSON Lines in raw, Parquet in curated, CSV in emergency), written for each run under a new "
        "`date=` partition; received from the queue by the harness (the stack's event-source mapping is disabled) and "
        "wrapped as Lambda's SQS poller does. The warm-up batch creates the tables; every measured batch reads the lake "
        "spec (S3), reads each object's sample (S3), adds partitions to the existing tables (Glue) and, for the "
        "emergency layer's file, publishes an alert (SNS). "
        "Response checked: no `batchItemFailures`",
        prepare,
        check,
    )


def sqs_record(message: dict, queue_arn: str, region: str) -> dict:
    """An SQS message (ReceiveMessage) as Lambda's poller hands it to a function."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            key: attributes[key]
            for key in ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
            if key in attributes
        },
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def lake_grants_case(stack: Stack) -> Case:
    from main_job import step_grants

    ensure_lake(stack)
    env, _ = stack.deployed_environment("lake-grants")
    bucket, _, key = env["POLICY_URI"].removeprefix("s3://").partition("/")
    stack.client("s3").put_object(Bucket=bucket, Key=key, Body=step_grants.policy(stack.job).encode())
    event = {"mode": "apply", "trigger": "provisioning"}

    def check(response: Any, index: int) -> str:
        expect(isinstance(response, dict) and isinstance(response.get("plan"), dict), f"lake-grants: {response}")
        plan = response["plan"]
        if index > 0:
            expect(not plan.get("grants") and not plan.get("revokes"), f"lake-grants did not converge in the warm-up: {step_grants.counts(response)}")
        return step_grants.counts(response)

    return Case(
        "lake-grants",
        "apply of the policy (converged)",
        "`{\"mode\": \"apply\", \"trigger\": \"provisioning\"}` (the reconcile of the provisioning trigger, policy read from "
        "`POLICY_URI`): events/lake-grants-policy.yaml with this stack's account, uploaded there. The warm-up run "
        "applies it (data lake settings, LF-tags, location registrations, grants on the catalog-setup databases); every "
        "measured run is the reconcile that follows: it reads the settings, tags, locations, catalog and permissions and "
        "finds nothing to grant or revoke (checked)",
        lambda _index: event,
        check,
    )


def rotate_credentials_case(stack: Stack) -> Case:
    from main_job import step_rotation

    secrets = stack.client("secretsmanager")
    arn = stack.resource("EdgeDeviceKeySecret")
    drop_pending(secrets, arn)  # left by an earlier run on a reused stack
    # A secret rotated once through the stack (its own rotate-credentials),
    # as in local/main_job; then a pending copy of its current key to test.
    step_rotation.rotate(stack.job, arn, lambda value: value.get("access_key_id", "?"))
    current = secrets.get_secret_value(SecretId=arn)["SecretString"]
    token = str(uuid.uuid4())
    secrets.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=current, VersionStages=["AWSPENDING"])
    event = {"Step": "testSecret", "SecretId": arn, "ClientRequestToken": token}

    def check(response: Any, _index: int) -> str:
        expect(isinstance(response, dict) and response.get("outcome") == "tested", f"rotate-credentials: {response}")
        return f"outcome {response['outcome']} ({response.get('kind')})"

    return Case(
        "rotate-credentials",
        "`testSecret` of the edge-device IAM key",
        "`{\"Step\": \"testSecret\", \"SecretId\": <EdgeDeviceKeySecret ARN>, \"ClientRequestToken\": <token>}` "
        "(events/rotate-credentials-iam-testSecret.json): the template's edge-device access-key secret, rotated once "
        "through the stack (RotateSecret), then given an `AWSPENDING` version holding a copy of its current key (what "
        "RotateSecret with RotateImmediately=false tests). It describes the secret, reads the pending value and "
        "signs STS GetCallerIdentity with that key. Reads only: every run does the same work",
        lambda _index: event,
        check,
    )


def drop_pending(secrets: Any, arn: str) -> None:
    """Take the AWSPENDING label off a version that is not current (AWS refuses
    a new rotation while one is pending)."""
    for version in secrets.list_secret_version_ids(SecretId=arn)["Versions"]:
        stages = version.get("VersionStages", [])
        if "AWSPENDING" in stages and "AWSCURRENT" not in stages:
            secrets.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=version["VersionId"])


def deploy_network_sleep(stack: Stack) -> None:
    """network-sleep is deployed only with a VPC (NetworkSleepVpcId): build the
    main job's sample network and redeploy the stack for it. Done before any
    other preparation: a redeploy restarts the stack's functions and configures
    the secrets' rotation again."""
    from main_job import step_network

    name = stack.job.functions.get("network-sleep")
    if name is None:
        network = step_network.build_sample_network(stack.job)
        progress(f"sample network {network['vpc']} built; deploying network-sleep for it (NetworkSleepVpcId)")
        stack_command(stack.state_dir, "deploy", "--parameter", f"NetworkSleepVpcId={network['vpc']}")
        stack.reload()
    else:
        progress("network-sleep is already deployed")


def network_sleep_cases(stack: Stack) -> list[Case]:
    name = stack.deployed_name("network-sleep")
    vpc = stack.client("lambda").get_function_configuration(FunctionName=name)["Environment"]["Variables"]["VPC_ID"]

    def check_outcome(*allowed: str) -> Callable[[Any, int], str]:
        def check(response: Any, index: int) -> str:
            outcome = response.get("outcome") if isinstance(response, dict) else None
            # The warm-up may find the network in either state (a reused stack).
            ok = outcome in allowed or (index == 0 and outcome == "nothing_to_do")
            expect(ok, f"network-sleep: outcome {outcome!r}, expected {allowed}: {json.dumps(response)[:1500]}")
            gateways = response.get("gateways") or []
            return f"outcome {outcome}, {len(gateways)} gateway(s)"

        return check

    common = (
        f"network-sleep deployed by the stack for the sample network of local/main_job (`build_sample_network`: VPC {vpc}, "
        "3 NAT gateways tagged for the `nightly` schedule, 1 untagged, 4 route tables; `WORKSPACES` = `[]`, the "
        "template default, so no Databricks check)"
    )
    return [
        Case(
            "network-sleep",
            "`status`",
            f"`{{\"action\": \"status\"}}`: {common}. Reads the gateways and the restore records (S3) and "
            "estimates the savings. Reads only",
            lambda _index: {"action": "status"},
            check_outcome("status"),
        ),
        Case(
            "network-sleep",
            "`sleep` (3 gateways)",
            "`{\"action\": \"sleep\"}`, the input of the sleep schedule, invoked directly: one pass, as the network-sleep "
            "state machine runs it; records each of the 3 opted-in gateways in S3, deletes them, leaves blackhole "
            "routes (EIPs kept, the default, so nothing waits for the deletion). Outcome `slept` checked",
            lambda _index: {"action": "sleep"},
            check_outcome("slept"),
        ),
        Case(
            "network-sleep",
            "`wake` (3 gateways)",
            "`{\"action\": \"wake\"}`, right after each sleep, invoked directly: one pass, never waiting; recreates the 3 "
            "gateways with their EIPs and tags, looks once at their state and re-points the routes of those `available` "
            "(moto's are available at once, so one pass completes; on AWS the first pass answers `waking` and the "
            "network-sleep state machine runs the next ones). Outcome `woke` checked",
            lambda _index: {"action": "wake"},
            check_outcome("woke"),
        ),
    ]


CASE_BUILDERS: dict[str, Callable[[Stack], list[Case]]] = {
    "provision": lambda stack: [provision_case(stack)],
    "catalog-setup": lambda stack: [catalog_setup_case(stack)],
    "catalog-ingest": lambda stack: [catalog_ingest_case(stack)],
    "lake-grants": lambda stack: [lake_grants_case(stack)],
    "rotate-credentials": lambda stack: [rotate_credentials_case(stack)],
    "network-sleep": network_sleep_cases,
}


# --------------------------------------------------------------------------
# Statistics and reporting
# --------------------------------------------------------------------------


def spread(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "p25": lambda_init.quantile(values, 0.25),
        "p75": lambda_init.quantile(values, 0.75),
        "min": min(values),
        "max": max(values),
    }


def summarise(samples: list[dict]) -> dict:
    return {
        "runs": len(samples),
        "init_ms": spread([s["init_ms"] for s in samples]),
        "event_ms": spread([s["event_ms"] for s in samples]),
        "total_ms": spread([s["total_ms"] for s in samples]),
        "vm_hwm": spread([s["vm_hwm"] for s in samples]),
        "vm_hwm_init": spread([s["vm_hwm_init"] for s in samples]),
        "aws_calls": spread([s["aws_calls"] for s in samples]),
        "databricks_calls": spread([s["databricks_calls"] for s in samples]),
        "server_ms": spread([s["server_ms"] for s in samples]),
        "threads": max(s["threads"] for s in samples),
    }


def ms(stats: dict) -> str:
    return f"{stats['median']:.1f} | {stats['p25']:.1f}–{stats['p75']:.1f} | {stats['min']:.1f}–{stats['max']:.1f}"


def calls(stats: dict) -> str:
    if stats["min"] == stats["max"]:
        return f"{stats['median']:.0f}"
    return f"{stats['median']:.0f} ({stats['min']:.0f}–{stats['max']:.0f})"


def render(results: dict) -> tuple[str, list[str]]:
    rows = []
    missed = []
    events = []
    for case in results["cases"]:
        s = case["summary"]
        rss = f"{lambda_init.mb(s['vm_hwm']['median'])} ({lambda_init.mb(s['vm_hwm']['max'])})"
        if case["function"] == "catalog-ingest":
            ok = s["vm_hwm"]["max"] <= INGEST_RSS_TARGET_BYTES
            rss += " — ≤ 64 MB: " + lambda_init.verdict(ok)
            if not ok:
                missed.append(f"catalog-ingest peak RSS {lambda_init.mb(s['vm_hwm']['max'])} MB > 64 MB")
        rows.append(
            f"| {case['function']} | {case['label']} | {ms(s['init_ms'])} | {ms(s['event_ms'])} | {ms(s['total_ms'])} "
            f"| {s['server_ms']['median']:.1f} | {lambda_init.mb(s['vm_hwm_init']['median'])} | {rss} "
            f"| {calls(s['aws_calls'])} | {calls(s['databricks_calls'])} |"
        )
        events.append(
            f"- **{case['function']} — {case['label']}**: {case['description']}. Measured runs: {case['result_note']}; "
            f"AWS operations: {', '.join(case['aws_operations']) or 'none'}."
        )
        warm = case["warmup"]
        events.append(
            f"  Warm-up run (discarded): init {warm['init_ms']:.1f} ms, first event {warm['event_ms']:.1f} ms, "
            f"{warm['aws_calls']} AWS / {warm['databricks_calls']} Databricks calls ({warm['note']})."
        )
    m = results["machine"]
    lines = [
        BEGIN_MARK,
        "",
        f"Measured {results['when']}: {results['runs']} runs per event (interleaved round robin, after 1 discarded "
        f"warm-up run each). Load average before: {' '.join(m['loadavg_before'])}; after: {' '.join(results['loadavg_after'])}.",
        "",
        "| function | event | init median (ms) | p25–p75 | min–max | first event median (ms) | p25–p75 | min–max "
        "| total median (ms) | p25–p75 | min–max | of the first event, in the servers: median (ms) "
        "| peak RSS at init (MB) | peak RSS after the event, median (max) (MB) | AWS calls | Databricks calls |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *rows,
        "",
        "MB = 10^6 bytes. Target (issue 9): catalog-ingest at most 64 MB while it handles its batch, checked on the "
        "worst run of the batch above (5 small objects: a first event, not a throughput batch). The other functions "
        "have no target after the event; read their figures against the 24 MB init target of *Results*.",
        "",
        "**How** (`bench/first_event.py`):",
        "",
        "- a private local stack (`local/stack.sh up` on free ports, own state dir, torn down at the end): moto 5.2.5 "
        "for AWS, the Databricks emulator (debug build) for Databricks, both on loopback;",
        "- the process under test is the **release** `bootstrap` from `target/lambda/<fn>/bootstrap.zip` "
        "(`cargo lambda build --release --x86-64 --output-format zip`), not the stack's cargo lambda watch, started by "
        "bench/lambda_init.py's Runtime API and process handling with **the environment the stack deployed for "
        "that function**: its Lambda configuration read from moto (GetFunctionConfiguration: the template's "
        "variables resolved to this stack's names) plus what the stack's deployer adds (`AWS_ENDPOINT_URL` = moto, "
        "the emulator's Databricks hosts, dummy credentials, `AWS_LAMBDA_FUNCTION_*`) — checked equal to the "
        "`functions/<binary>.env` that the stack's function-runner.sh uses — under Lambda's own variables "
        "(Runtime API address, JSON log format);",
        "- each run is a **fresh process** that gets exactly one event: *init* = spawn → its first "
        "`GET /runtime/invocation/next`; *first event* = the harness writing the event → the whole "
        "`POST /runtime/invocation/<id>/response` read; *total* = spawn → response. A response posted to `/error`, "
        "or an answer that is not the success expected (checked per event, below), fails the benchmark;",
        "- *peak RSS after the event* = `VmHWM` of `/proc/<pid>/status` when the process asks for its next event "
        "(the peak over init and the event); *at init* = the same while the first `/next` is held open;",
        "- *AWS calls* = requests of the AWS SDK for Rust in moto's request log (`/_lakeops/requests`) during the run; "
        "*Databricks calls* = the emulator's request log (`/_emulator/requests`); *in the servers* = how long at "
        "least one of those calls was being answered (the union of their logged start–end intervals; the logs time "
        "the server's handler, so HTTP parsing and loopback are on the function's side of the split);",
        "- preparation (uploads, S3 puts, queue reads) happens between runs, outside the measured times. moto is a "
        "Python server and shares the 2 cores with the function; on AWS the calls cross the network (and the first "
        "ones set up TLS), so these figures are not Lambda durations — they compare functions and commits on one "
        "machine, and *first event minus in the servers* is the part the function itself spends (its code, the SDK, "
        "signing, connections, waiting for the CPU).",
        "",
        "**Events** (exactly what each row measured):",
        "",
        *events,
        "",
        "Machine:",
        "",
        f"- CPU: {m['cpu']}, `nproc` = {m['nproc']}; memory (`free -h`): {m['memory']}; kernel: {m['kernel']}",
        f"- harness niceness: {m['niceness']} (the processes under test inherit it, and so does a stack the harness "
        f"starts: {'its own' if results['own_stack'] else 'not here, a running stack was used'})",
        f"- {'; '.join(x for x in (m['rustc'], m['cargo_lambda']) if x)}; packages (zip files) written {results['packages_built']}",
        f"- source tree at measuring time: `{m['source']}` (the packages may be older than it)",
        "",
        f"Reproduce: `python3 bench/first_event.py --lambda-dir <target>/lambda --runs {results['runs']} --markdown BENCHMARKS.md`.",
        "",
        END_MARK,
    ]
    return "\n".join(lines), missed


def write_section(path: Path, block: str) -> None:
    """Rewrite the block; on first use, add the section before "What the harness
    does not measure yet" (or at the end)."""
    text = path.read_text() if path.exists() else ""
    if BEGIN_MARK not in text or END_MARK not in text:
        section = f"{SECTION_TITLE}\n\nThe block below is rewritten by every `bench/first_event.py` run; the text around it is not.\n\n{BEGIN_MARK}\n{END_MARK}\n\n"
        anchor = "## What the harness does not measure yet"
        text = text.replace(anchor, section + anchor, 1) if anchor in text else text.rstrip() + "\n\n" + section
        path.write_text(text)
    lambda_init.write_markdown(path, block, BEGIN_MARK, END_MARK)


# --------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lambda-dir", type=Path, required=True, help="target/lambda of cargo lambda build --release --output-format zip")
    parser.add_argument("--runs", type=int, default=10, help="measured runs per event (at least 10)")
    parser.add_argument("--functions", default=",".join(FUNCTIONS))
    parser.add_argument("--markdown", type=Path, help="rewrite the first-event block of this file (BENCHMARKS.md)")
    parser.add_argument("--json", type=Path, help="write every sample here (default: <lambda-dir>/../first-event-results.json)")
    parser.add_argument("--stack-state-dir", type=Path, help="use the local stack running from this state dir (changed, not stopped)")
    parser.add_argument("--keep-stack", action="store_true", help="do not stop the stack this run started")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a function may take to init")
    args = parser.parse_args()
    if args.runs < 10:
        parser.error("--runs must be at least 10")
    names = [n.strip() for n in args.functions.split(",") if n.strip()]
    unknown = [n for n in names if n not in FUNCTIONS]
    if unknown:
        parser.error(f"unknown functions {unknown}; known: {FUNCTIONS}")
    json_path = args.json or args.lambda_dir.resolve().parent / "first-event-results.json"
    zips = {name: args.lambda_dir / name / "bootstrap.zip" for name in names}
    missing = [str(z) for z in zips.values() if not z.exists()]
    if missing:
        raise SystemExit(f"missing {missing}: build with cargo lambda build --release --x86-64 --output-format zip")

    sandbox = Path(tempfile.mkdtemp(prefix="lakeops-first-event-"))
    owned_state: Path | None = None
    server: lambda_init.RuntimeApi | None = None
    try:
        if args.stack_state_dir:
            state_dir = args.stack_state_dir.resolve()
        else:
            owned_state = state_dir = sandbox / "stack"
            aws_port, lambda_port, databricks_port = free_ports(3)
            progress(f"starting a local stack in {state_dir} (aws {aws_port}, lambda {lambda_port}, databricks {databricks_port})")
            started = time.monotonic()
            up = ["up", "--aws-port", str(aws_port), "--lambda-port", str(lambda_port), "--databricks-port", str(databricks_port)]
            if not args.keep_stack:
                up += ["--parent-pid", str(os.getpid())]  # gone with this process, even if it is killed
            stack_command(state_dir, *up)
            progress(f"stack up in {time.monotonic() - started:.0f}s")
        server = lambda_init.RuntimeApi(("127.0.0.1", 0), EventHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        api = f"127.0.0.1:{server.server_address[1]}"
        stack = Stack(state_dir)
        results: dict = {"runs": args.runs, "machine": lambda_init.machine(), "cases": [], "own_stack": owned_state is not None}
        results["packages_built"] = ", ".join(
            sorted({dt.datetime.fromtimestamp(z.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") for z in zips.values()})
        )
        stack.measured = names
        if "network-sleep" in names:
            with contextlib.redirect_stdout(sys.stderr):
                deploy_network_sleep(stack)
        cases: list[Case] = []
        for name in names:
            progress(f"preparing {name}")
            # The main job's helpers print their progress: keep stdout for the results.
            with contextlib.redirect_stdout(sys.stderr):
                cases.extend(CASE_BUILDERS[name](stack))
        subjects: dict[str, Subject] = {}
        for name in names:
            deployed, configuration = stack.deployed_environment(name)
            binary = lambda_init.extract_bootstrap(zips[name], sandbox / name)
            subjects[name] = Subject(
                name=name,
                binary=binary,
                env=function_environment(name, api, sandbox, deployed, configuration),
                deployed_name=deployed["AWS_LAMBDA_FUNCTION_NAME"],
                function_arn=configuration["FunctionArn"],
                timeout_s=int(configuration.get("Timeout", 3)),
            )
            results.setdefault("environments", {})[name] = sorted(
                k for k in subjects[name].env if not k.startswith("AWS_SECRET") and k != "AWS_SESSION_TOKEN"
            )

        log = sandbox / "output.log"
        samples: list[list[dict]] = [[] for _ in cases]
        warmups: list[dict] = [{} for _ in cases]
        for round_index in range(args.runs + 1):
            for position, case in enumerate(cases):
                event = case.prepare(round_index)
                sample = measure_event(server, subjects[case.function], event, log, args.timeout, stack)
                sample["note"] = case.check(sample["response"], round_index)
                sample["response"] = json.dumps(sample["response"])[:400]
                if round_index == 0:
                    warmups[position] = sample
                else:
                    samples[position].append(sample)
                progress(
                    f"{'warm-up' if round_index == 0 else f'run {round_index}/{args.runs}'} {case.function} {case.label}: "
                    f"init {sample['init_ms']:.1f} ms, event {sample['event_ms']:.1f} ms, "
                    f"RSS {lambda_init.mb(sample['vm_hwm'])} MB, {sample['aws_calls']} AWS + {sample['databricks_calls']} Databricks calls — {sample['note']}"
                )

        for position, case in enumerate(cases):
            notes = sorted({s["note"] for s in samples[position]})
            results["cases"].append(
                {
                    "function": case.function,
                    "label": case.label,
                    "description": case.description,
                    "aws_operations": sorted({op for s in samples[position] for op in s["aws_operations"]}),
                    "result_note": "; ".join(notes),
                    "warmup": warmups[position],
                    "samples": samples[position],
                    "summary": summarise(samples[position]),
                }
            )
        results["when"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        results["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
        block, missed = render(results)
        print(block)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2))
        progress(f"wrote {json_path}")
        if args.markdown:
            write_section(args.markdown, block)
            progress(f"wrote {args.markdown}")
        if missed:
            progress("targets missed: " + "; ".join(missed))
            return 1
        return 0
    finally:
        if server is not None:
            server.shutdown()
        if owned_state is not None and not args.keep_stack:
            progress("stopping the local stack")
            if stack_command(owned_state, "down", check=False).returncode != 0:
                progress(f"`local/stack.sh down --state-dir {owned_state}` failed: check for processes left behind")
        elif owned_state is not None:
            progress(f"the local stack keeps running: local/stack.sh down --state-dir {owned_state}")
        if not args.keep_stack:
            shutil.rmtree(sandbox, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
