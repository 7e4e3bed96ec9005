#!/usr/bin/env python3
"""Call counts: the AWS and Databricks calls lakeops functions make, on a private local stack.

    python3 bench/calls.py [--markdown BENCHMARKS.md] [--json FILE] [--keep-stack]
                           [--scenarios provision,lake-grants,network-sleep] [--grants 200]

Starts its own local stack (local/stack.sh) on free ports with a temporary state dir,
runs the scenarios, reads the request logs of moto (/_lakeops/requests, /_lakeops/invocations)
and of the Databricks emulator (/_emulator/requests), and reports per stage the calls made
and how many of them changed something:

- provision: the provision state machine with events/provision-full.json (adapted to the
  stack): a first apply, then a re-run (target: no mutating call);
- lake-grants: a policy of 200 grants (bench/calls_fixtures.py), first run and re-run
  (target: no mutating call);
- network-sleep: 3 opted-in NAT gateways, a sleep and a wake.

Writes a JSON results file and, with --markdown, the block between
<!-- bench:calls:begin --> and <!-- bench:calls:end --> of BENCHMARKS.md. Exits 1 when a
target is missed (after writing the results), 2 when a scenario could not run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent

try:
    import boto3
    from botocore.config import Config
except ImportError:  # not in the project venv: re-run with it
    venv_python = Path(os.environ.get("LAKEOPS_VENV", ROOT / ".venv")) / "bin" / "python"
    if venv_python.exists() and Path(sys.executable).resolve() != venv_python.resolve():
        os.execv(str(venv_python), [str(venv_python), *sys.argv])
    raise

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calls_count as cc  # noqa: E402
import calls_fixtures as fx  # noqa: E402

BEGIN = "<!-- bench:calls:begin -->"
END = "<!-- bench:calls:end -->"
SCENARIOS = ("provision", "lake-grants", "network-sleep")

SECTION = f"""## Call counts

How many AWS and Databricks API calls the functions make, per stage, on a first run and
on a re-run that has nothing to do. Run with `python3 bench/calls.py --markdown BENCHMARKS.md`
(about 2 minutes when the debug builds are up to date; `--keep-stack` leaves the stack running,
`--json FILE` chooses where the raw figures go, default
`$LAKEOPS_BENCH_TARGET_DIR/bench-calls.json`).

Method:

- the harness starts a private local stack (`local/stack.sh up`, free ports, a temporary
  state dir; stopped at the end): template.yaml deployed into moto 5.2.5, every Lambda
  invocation routed to the real function binaries (`cargo lambda watch`, debug builds:
  call counts do not depend on the build profile), Databricks served by the emulator;
- the functions run as deployed: provision through `ProvisionStateMachine` (Step
  Functions, one invocation per stage, the `workspace_ready` Wait loop), lake-grants by
  Lambda `Invoke` with the event of its schedule (policy from `POLICY_URI`), network-sleep
  by Lambda `Invoke` with the inputs of its schedules, `{{"action": "sleep"}}` and
  `{{"action": "wake"}}`: one pass each, what the network-sleep state machine that the
  schedules start invokes (moto deletes and creates gateways at once, so one pass
  completes; on AWS the state machine runs more passes, each counted like this one);
- moto logs every AWS request with the client that sent it; only the functions' own
  calls (AWS SDK for Rust, client `rust-sdk`) count, not the harness's boto3 nor moto's
  Step Functions interpreter. The emulator logs every Databricks request; the harness
  makes none while a scenario runs;
- a call belongs to the innermost Lambda invocation running when it started (moto logs
  each invocation's span; all clocks are the same machine's). A stage's row adds up all
  its invocations (the `invocations` column counts them: the `workspace_ready` loop runs
  several). An invocation of another function started inside a stage (the
  rotate-credentials steps that `RotateSecret` runs before it returns) has its own row,
  `<stage> > <function>`, and is in the total;
- **mutating**: an AWS operation whose name is not a read (`Get*`, `List*`, `Describe*`,
  `Head*`, `BatchGet*`, `Search*`, `Query*`, `Scan*`, `Lookup*`, `Select*`, `Receive*`,
  plus `AssumeRole` and `Decrypt`, which change nothing), S3 anything but GET/HEAD; a
  Databricks request with any method but GET/HEAD, except OAuth token requests and OIDC
  discovery (`…/oidc/…/v1/token`), which authenticate and are counted apart
  (*Databricks token requests*, included in *Databricks calls*);
- targets (issues 4 and 9), checked on every run: a re-run of provision and of
  lake-grants that has nothing to change makes **no** mutating call, AWS or Databricks.
  The harness exits non-zero when one is missed.

The block below is rewritten by every run; the text around it is not.

{BEGIN}
{END}

### Reading the call counts

Written with the run of 2026-11-21 15:35 UTC (the block above has the current figures).

- **Both targets pass.** The re-runs make reads only: provision reads each resource once
  by its deterministic name and changes nothing (0 of 37 resources); lake-grants with 200
  grants plans no grant, revoke, location or settings change.
- **Where provision's AWS calls go.** Every stage starts with 2 `sts:AssumeRole` (the
  spec's `admin_role_arn` → `environment_role_arn` chain, `Ctx::new` in
  functions/provision/src/runner.rs) and 1 `secretsmanager:GetSecretValue` (the account
  admin's OAuth credentials, kept in the environment's account), whether or not the stage
  touches Secrets Manager otherwise: 45 of the re-run's 52 AWS calls. All are reads. A warm
  container could keep the assumed-role credentials (valid for an hour) and the account
  credentials across stages; that is a design choice, not done here.
- **Databricks token requests:** a few on the first apply, none on the re-run. cargo
  lambda watch keeps one warm process per function, and the Databricks connector caches
  OAuth tokens, so the figures are those of a warm Lambda container. On AWS, a stage that
  lands on a cold container asks for a token again (at most one per credential and
  stage), which the table does not show.
- **`workspace_ready`** runs twice on a first apply (the emulator's new workspace is
  `PROVISIONING` at the first check, then the Wait state waits 30 s), once on a re-run.
- **`pat > rotate-credentials`:** the pat stage enables rotation with `RotateSecret`
  (`RotateImmediately=false`, a configuration test), so Secrets Manager runs the rotation
  function's `testSecret` step only, inside the stage: reads only.
- **lake-grants:** 200 grants plus one `DATA_LOCATION_ACCESS` make 201 entries, granted
  in 11 `BatchGrantPermissions` calls of at most 20; plus one `PutDataLakeSettings` and one
  `RegisterResource`. Validation reads the catalog on every run: `glue:GetDatabase` and
  `glue:GetTables` once per database the policy names (20 of the re-run's 27 calls).
  `sts:GetCallerIdentity` is called once for the caller and once more for every listing
  of the grants (`list_grants` in functions/lake-grants/src/lake.rs looks the account id
  up again): 2 calls on a re-run, 3 on a first run; redundant reads, not changes.
- **network-sleep:** the sleep records each gateway (`s3:PutObject`) before it deletes
  it (`ec2:DeleteNatGateway`), and reads one Databricks workspace (jobs runs and clusters,
  PAT authentication, no token request). The wake's `ec2:DisassociateAddress` ×3 is an
  artefact of moto: moto 5.2.5's `DeleteNatGateway` only marks the gateway deleted and
  leaves its Elastic IP associated with the old network interface, which the wake then
  frees as documented (README, network-sleep, "Safety and faults"). On AWS the deletion
  releases the EIP, so the wake should make 9 mutating calls, not 12 (not verified on AWS).
- Not measured: Step Functions' own requests (state transitions are not API calls of the
  functions), and the retries the AWS SDK would make against throttling on AWS (moto
  does not throttle).
"""


def progress(message: str) -> None:
    print(f"[calls {time.strftime('%H:%M:%S')}] {message}", flush=True)


class ScenarioError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------
# the private stack
# ---------------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now, all distinct (held open together while chosen)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Stack:
    def __init__(self, state_dir: Path, keep: bool) -> None:
        self.state_dir = state_dir
        self.keep = keep
        self.outputs: dict[str, Any] = {}

    def command(self, *args: str, stream: bool = False) -> subprocess.CompletedProcess:
        command = ["bash", str(ROOT / "local" / "stack.sh"), *args, "--state-dir", str(self.state_dir)]
        if not stream:
            return subprocess.run(command, check=True, capture_output=True, text=True)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            print(f"    {line.rstrip()}", flush=True)
        code = process.wait()
        if code != 0:
            raise ScenarioError(f"local/stack.sh {args[0]} failed (exit {code}); logs in {self.state_dir}/logs")
        return subprocess.CompletedProcess(command, code)

    def up(self) -> None:
        aws, lam, dbx = free_ports(3)
        progress(f"starting a private local stack (aws :{aws}, lambda :{lam}, databricks :{dbx}, state {self.state_dir})")
        started = time.monotonic()
        args = ["up", "--aws-port", str(aws), "--lambda-port", str(lam), "--databricks-port", str(dbx)]
        if not self.keep:
            args += ["--parent-pid", str(os.getpid())]
        self.command(*args, stream=True)
        self.load()
        progress(f"stack up in {time.monotonic() - started:.0f}s")

    def load(self) -> None:
        self.outputs = json.loads(self.command("outputs").stdout)
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.region
        )
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=900)
        self._clients: dict[str, Any] = {}
        self._client = lambda service: session.client(service, endpoint_url=self.aws_url, config=config)

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self._client(service)
        return self._clients[service]

    def deploy(self, *parameters: str) -> None:
        args = ["deploy"]
        for parameter in parameters:
            args += ["--parameter", parameter]
        self.command(*args, stream=True)
        self.load()

    def down(self) -> None:
        if self.keep:
            progress(f"stack left running (--keep-stack): local/stack.sh down --state-dir {self.state_dir}")
            return
        progress("stopping the stack")
        try:
            self.command("down")
        finally:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    @property
    def region(self) -> str:
        return self.outputs.get("region", "us-east-1")

    @property
    def account_id(self) -> str:
        return self.outputs.get("account_id", "123456789012")

    @property
    def aws_url(self) -> str:
        return self.outputs["endpoints"]["aws"]

    @property
    def databricks_url(self) -> str:
        return self.outputs["endpoints"]["databricks"]

    def resource(self, logical_id: str) -> str:
        return self.outputs["resources"][logical_id]

    def function(self, binary: str) -> str:
        for name, details in self.outputs.get("functions", {}).items():
            if details.get("binary") == binary:
                return name
        raise ScenarioError(f"{binary} is not deployed")

    def invoke(self, binary: str, payload: dict) -> dict:
        response = self.client("lambda").invoke(FunctionName=self.function(binary), Payload=json.dumps(payload).encode())
        body = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise ScenarioError(f"{binary} failed: {body.get('errorType')}: {str(body.get('errorMessage'))[:500]}")
        return body

    def run_state_machine(self, logical_id: str, payload: dict, label: str, timeout: float = 900) -> Any:
        sfn = self.client("stepfunctions")
        execution = sfn.start_execution(stateMachineArn=self.resource(logical_id), input=json.dumps(payload))["executionArn"]
        seen = 0
        deadline = time.time() + timeout
        while time.time() < deadline:
            history = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
            for event in history[seen:]:
                details = event.get("stateEnteredEventDetails")
                if details and event.get("type") == "TaskStateEntered":
                    progress(f"  {label}: {details['name']}")
            seen = len(history)
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                if described["status"] != "SUCCEEDED":
                    raise ScenarioError(f"{label} {described['status']}: {described.get('error')} {described.get('cause')}")
                return json.loads(described.get("output") or "null")
            time.sleep(1)
        raise ScenarioError(f"{label} did not finish in {timeout:.0f}s")


# ---------------------------------------------------------------------------------------
# the request logs
# ---------------------------------------------------------------------------------------


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


class Logs:
    """Reads the three request logs from a mark on."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def _next(self, url: str) -> int:
        return int(get_json(f"{url}?since={2**62}")["next"])

    def mark(self) -> tuple[int, int, int]:
        aws = self.stack.aws_url
        return (
            self._next(f"{aws}/_lakeops/requests"),
            self._next(f"{aws}/_lakeops/invocations"),
            self._next(f"{self.stack.databricks_url}/_emulator/requests"),
        )

    def since(self, mark: tuple[int, int, int]) -> dict[str, list[dict]]:
        aws = self.stack.aws_url
        # Requests are logged when moto has answered: give the last ones a moment.
        time.sleep(0.5)
        return {
            "aws": get_json(f"{aws}/_lakeops/requests?since={mark[0]}")["requests"],
            "invocations": get_json(f"{aws}/_lakeops/invocations?since={mark[1]}")["invocations"],
            "databricks": get_json(f"{self.stack.databricks_url}/_emulator/requests?since={mark[2]}")["requests"],
        }


    def wait_quiet(self, quiet: float = 6.0, timeout: float = 120.0) -> None:
        """Wait until no Lambda invocation has run for ``quiet`` seconds.

        The stack runs functions on its own too: after a deploy, S3 sends test
        notifications that the SQS poller hands to catalog-ingest after its batching
        window (IngestBatchWindowSeconds, 5 s). Such an invocation is not part of a
        scenario; starting the scenario after them keeps it from overlapping one.
        """
        deadline = time.time() + timeout
        while True:
            entries = get_json(f"{self.stack.aws_url}/_lakeops/invocations?since=0")["invocations"]
            now = time.time()
            running = [e for e in entries if e.get("end") is None]
            last = max((e["end"] for e in entries if e.get("end") is not None), default=0.0)
            if not running and now - last >= quiet:
                return
            if now > deadline:
                progress(f"the stack did not fall quiet in {timeout:.0f}s ({len(running)} invocation(s) running); measuring anyway")
                return
            time.sleep(min(1.0, max(0.1, quiet - (now - last))))


class Measure:
    """Runs one measured step: marks the logs, runs it, tallies what the function did."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.logs = Logs(stack)
        self.results: list[dict[str, Any]] = []

    def run(self, scenario: str, run: str, root_function: str, body: Callable[[], str]) -> cc.Tally:
        self.logs.wait_quiet()
        progress(f"{scenario}: {run}")
        mark = self.logs.mark()
        started = time.time()
        detail = body()
        elapsed = time.time() - started
        logs = self.logs.since(mark)
        unfinished = [i for i in logs["invocations"] if i.get("end") is None]
        if unfinished:
            raise ScenarioError(f"{scenario} {run}: invocations still running after the run: {unfinished}")
        # The log names deployed functions (lakeops-dev-provision); rows use the binaries.
        binaries = {name: d.get("binary", name) for name, d in self.stack.outputs.get("functions", {}).items()}
        invocations = [{**i, "function": binaries.get(i["function"], i["function"])} for i in logs["invocations"]]
        counted = cc.tally(invocations, logs["aws"], logs["databricks"], root_function)
        for line in cc.table(counted):
            print(f"    {line}")
        if counted.background:
            print(f"    {cc.background_text(counted)}")
        progress(f"{scenario}: {run} done in {elapsed:.1f}s — {detail}")
        self.results.append(
            {
                "scenario": scenario,
                "run": run,
                "function": root_function,
                "seconds": round(elapsed, 2),
                "detail": detail,
                "tally": counted.as_json(),
                "other_client_aws_requests": sum(1 for r in logs["aws"] if r.get("client") != cc.FUNCTION_CLIENT),
                # What the tally was computed from, to audit it: the functions' AWS requests,
                # every Databricks request and every invocation of the window.
                "raw": {
                    "invocations": invocations,
                    "aws": [r for r in logs["aws"] if r.get("client") == cc.FUNCTION_CLIENT],
                    "databricks": logs["databricks"],
                },
            }
        )
        self.results[-1]["_tally"] = counted
        return counted


# ---------------------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------------------


def account_secret(stack: Stack) -> str:
    secrets = stack.client("secretsmanager")
    return secrets.create_secret(Name="lakeops/prod/databricks/account-sp", SecretString=json.dumps(fx.EMULATOR_ADMIN))["ARN"]


def provision_changes(output: Any) -> tuple[int, int]:
    """(changes other than none, all changes) of a provision execution's output."""
    results = output if isinstance(output, list) else [output]
    changes = [c for r in results for c in r.get("changes", [])]
    return sum(1 for c in changes if c.get("action") != "none"), len(changes)


def scenario_provision(stack: Stack, measure: Measure, context: dict[str, Any]) -> None:
    event = json.loads((fx.EVENTS / "provision-full.json").read_text())
    spec = fx.full_spec(event, stack.account_id, stack.region, account_secret(stack))
    context["provision_environment"] = spec["environment"]

    def apply(label: str) -> Callable[[], str]:
        def body() -> str:
            output = stack.run_state_machine("ProvisionStateMachine", {"mode": "apply", "spec": spec}, label)
            changed, total = provision_changes(output)
            context.setdefault("provision_outputs", []).append(output)
            return f"{changed} of {total} resources changed"

        return body

    measure.run("provision", "first apply", "provision", apply("first apply"))
    measure.run("provision", "re-run (nothing to change)", "provision", apply("re-run"))
    _, total = provision_changes(context["provision_outputs"][-1])
    changed, _ = provision_changes(context["provision_outputs"][-1])
    if changed:
        raise ScenarioError(f"provision re-run reported {changed} of {total} changes: the spec did not converge")


def scenario_lake_grants(stack: Stack, measure: Measure, context: dict[str, Any], grants: int) -> None:
    catalog = fx.grants_catalog()
    bucket = f"bench-grants-location-{stack.account_id}"
    fx.create_grants_catalog(stack.client("glue"), stack.client("s3"), catalog, bucket)
    policy = fx.grants_policy(grants, stack.account_id, catalog, bucket)
    key = stack.outputs.get("parameters", {}).get("LakeGrantsPolicyKey", "lake-grants/policy.yaml")
    stack.client("s3").put_object(Bucket=stack.resource("ConfigBucket"), Key=key, Body=json.dumps(policy, indent=1).encode())
    progress(f"lake-grants: policy of {len(policy['grants'])} grants over {len(catalog)} databases, "
             f"{sum(map(len, catalog.values()))} tables, 1 data location, at s3://{stack.resource('ConfigBucket')}/{key}")
    event = json.loads((fx.EVENTS / "lake-grants-aws-scheduler-daily.json").read_text())

    def apply() -> str:
        report = stack.invoke("lake-grants", event)
        if report.get("failures"):
            raise ScenarioError(f"lake-grants failures: {json.dumps(report['failures'])[:500]}")
        plan = report["plan"]
        context.setdefault("grants_reports", []).append(report)
        return (f"{len(plan['grants'])} grant(s), {len(plan['revokes'])} revoke(s), "
                f"{len(plan['register_locations'])} location(s) planned; drifted grants {report.get('drifted_grants')}")

    measure.run("lake-grants", f"first run ({grants} grants)", "lake-grants", apply)
    measure.run("lake-grants", "re-run (nothing to change)", "lake-grants", apply)


def terminate_clusters(stack: Stack, pat_secret_arn: str) -> int:
    """Stop the clusters of the provisioned workspace, as their autotermination does
    before a night: a running cluster that was active within IDLE_MINUTES refuses a sleep.
    Done before the measured runs, with the PAT that provision stored."""
    value = json.loads(stack.client("secretsmanager").get_secret_value(SecretId=pat_secret_arn)["SecretString"])
    base = value["workspace_url"].rstrip("/")
    headers = {"Authorization": f"Bearer {value['token']}", "Content-Type": "application/json"}

    def call(method: str, path: str, body: dict | None = None) -> Any:
        request = urllib.request.Request(
            f"{base}{path}", method=method, headers=headers, data=None if body is None else json.dumps(body).encode()
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    clusters = call("GET", "/api/2.1/clusters/list").get("clusters", [])
    running = [c["cluster_id"] for c in clusters if c.get("state") in ("PENDING", "RUNNING", "RESIZING", "RESTARTING")]
    for cluster in running:
        call("POST", "/api/2.1/clusters/delete", {"cluster_id": cluster})
    deadline = time.time() + 60
    while running and time.time() < deadline:
        states = {c["cluster_id"]: c.get("state") for c in call("GET", "/api/2.1/clusters/list").get("clusters", [])}
        if all(states.get(c) == "TERMINATED" for c in running):
            break
        time.sleep(0.5)
    return len(running)


def scenario_network_sleep(stack: Stack, measure: Measure, context: dict[str, Any]) -> None:
    schedule = stack.outputs.get("parameters", {}).get("NetworkSleepScheduleName", "nightly")
    network = fx.build_network(stack.client("ec2"), schedule, opted_in=3)
    workspaces: list[str] = []
    environment = context.get("provision_environment")
    if environment:
        pat = stack.client("secretsmanager").describe_secret(SecretId=f"lakeops/{environment}/databricks/pat")["ARN"]
        workspaces = [pat]
        stopped = terminate_clusters(stack, pat)
        progress(f"network-sleep: {stopped} cluster(s) of the provisioned workspace terminated (a night after autotermination)")
    else:
        progress("network-sleep: provision did not run, so no Databricks workspace is checked (WORKSPACES=[])")
    progress(f"network-sleep: sample network {network['vpc']} (3 opted-in NAT gateways, 1 untagged, 4 route tables); "
             f"redeploying with NetworkSleepVpcId and NetworkSleepWorkspaces")
    stack.deploy(f"NetworkSleepVpcId={network['vpc']}", f"NetworkSleepWorkspaces={json.dumps(workspaces)}")
    context["network_workspaces"] = len(workspaces)
    ec2 = stack.client("ec2")

    def action(name: str, expected: str) -> Callable[[], str]:
        def body() -> str:
            report = stack.invoke("network-sleep", {"action": name})
            if report.get("outcome") != expected:
                raise ScenarioError(f"network-sleep {name}: outcome {report.get('outcome')}, expected {expected}: "
                                    f"{json.dumps(report)[:800]}")
            return f"outcome {report['outcome']}; NAT gateways in the VPC by state: {fx.nat_states(ec2, network['vpc'])}"

        return body

    measure.run("network-sleep", "sleep (3 NAT gateways)", "network-sleep", action("sleep", "slept"))
    measure.run("network-sleep", "wake (3 NAT gateways)", "network-sleep", action("wake", "woke"))


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------


def tree_version() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def markdown(results: list[dict[str, Any]], targets: list[cc.Target], meta: dict[str, Any], errors: list[str]) -> str:
    lines = [
        f"Measured {meta['finished']} on the local stack (moto 5.2.5, Databricks emulator), "
        f"source tree `{meta['tree']}`, {meta['seconds']:.0f} s in all.",
        "",
        "Targets:",
        "",
        *cc.targets_table(targets),
        "",
    ]
    for error in errors:
        lines += [f"**Not measured:** {error}", ""]
    titles = {
        "provision": "provision — `ProvisionStateMachine`, events/provision-full.json adapted to the stack "
        "(PrivateLink, CMK, log delivery, UC, PAT with rotation, jobs, repos, init script)",
        "lake-grants": "lake-grants — a policy of {grants} grants (10 principals; 10 databases, 50 tables; "
        "database, table-wildcard and table grants), 1 data location; scheduled event, policy from S3",
        "network-sleep": "network-sleep — 3 opted-in NAT gateways (1 untagged gateway left alone, 4 route tables), "
        "{workspaces} Databricks workspace(s) checked",
    }
    scenario = None
    for result in results:
        if result["scenario"] != scenario:
            scenario = result["scenario"]
            lines += [f"### {titles[scenario].format(**meta)}", ""]
        lines += [f"**{result['run']}** ({result['seconds']:.1f} s; {result['detail']}):", ""]
        lines += cc.table(result["_tally"])
        lines.append("")
        if result["_tally"].background:
            lines += [cc.background_text(result["_tally"]), ""]
        total = result["_tally"].total
        lines += [f"All AWS operations: {cc.operations_text(total.aws_operations, limit=20)}.", ""]
    lines += [
        "*AWS calls*: requests of the functions' AWS SDK only; *(mutating)*: how many of them "
        "changed something; *Databricks token requests* are counted in *Databricks calls* but "
        "never as mutating. Raw figures, with every operation: the JSON results file.",
        "",
        "Reproduce: `python3 bench/calls.py --markdown BENCHMARKS.md`.",
    ]
    return "\n".join(lines) + "\n"


def default_json_path() -> Path:
    target = os.environ.get("LAKEOPS_BENCH_TARGET_DIR") or (os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")) + "-bench"
    return Path(target) / "bench-calls.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", type=Path, help="rewrite the call-count block of this file (BENCHMARKS.md)")
    parser.add_argument("--json", type=Path, default=None, help=f"results file (default {default_json_path()})")
    parser.add_argument("--keep-stack", action="store_true", help="leave the stack running at the end")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of " + ",".join(SCENARIOS))
    parser.add_argument("--grants", type=int, default=200, help="grants in the lake-grants policy (default 200)")
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}")

    started = time.time()
    state_dir = Path(tempfile.mkdtemp(prefix="lakeops-bench-calls-"))
    stack = Stack(state_dir, keep=args.keep_stack)
    measure = Measure(stack)
    context: dict[str, Any] = {}
    errors: list[str] = []
    try:
        stack.up()
        for name in SCENARIOS:
            if name not in scenarios:
                continue
            progress(f"== scenario {name}")
            try:
                if name == "provision":
                    scenario_provision(stack, measure, context)
                elif name == "lake-grants":
                    scenario_lake_grants(stack, measure, context, args.grants)
                else:
                    scenario_network_sleep(stack, measure, context)
            except (ScenarioError, KeyError, ValueError, OSError) as error:  # report and go on with the others
                message = f"{name}: {type(error).__name__}: {error}"
                progress(f"FAILED {message}")
                errors.append(message)
    except ScenarioError as error:
        errors.append(str(error))
        progress(f"FAILED {error}")
    finally:
        stack.down()

    targets = [
        cc.Target("provision re-run makes no mutating call", "provision", "re-run (nothing to change)"),
        cc.Target("lake-grants re-run makes no mutating call", "lake-grants", "re-run (nothing to change)"),
    ]
    for target in targets:
        for result in measure.results:
            if result["scenario"] == target.scenario and result["run"] == target.run:
                target.check(result["_tally"])
    targets = [t for t in targets if t.scenario in scenarios]

    meta = {
        "finished": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "tree": tree_version(),
        "seconds": time.time() - started,
        "grants": args.grants,
        "workspaces": context.get("network_workspaces", 0),
    }
    path = args.json or default_json_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                **meta,
                "errors": errors,
                "targets": [t.as_json() for t in targets],
                "results": [{k: v for k, v in r.items() if not k.startswith("_")} for r in measure.results],
            },
            indent=2,
        )
    )
    progress(f"raw results in {path}")
    if args.markdown:
        document = args.markdown.read_text()
        block = markdown(measure.results, targets, meta, errors)
        args.markdown.write_text(cc.replace_block(document, block, BEGIN, END, SECTION, "## What the harness does not measure yet"))
        progress(f"{args.markdown} updated (block between the bench:calls markers)")

    print()
    for line in cc.targets_table(targets):
        print(line)
    if errors:
        progress(f"{len(errors)} scenario(s) could not be measured")
        return 2
    missed = [t for t in targets if not t.passed]
    if missed:
        progress(f"target(s) missed: {', '.join(t.name for t in missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
