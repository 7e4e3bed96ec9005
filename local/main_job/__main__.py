#!/usr/bin/env python3
"""The main job: run every lakeops function end to end on the local stack.

Started by `./dev demo` after `local/stack.sh up`. It reads the deployed stack's
outputs, drives each function through the path it has in AWS (Step Functions,
S3 -> SNS -> SQS, Lambda invoke, Secrets Manager rotation, EventBridge Scheduler), shows
progress, and ends with a summary. A function that is not in the template yet is
reported as "not built yet".
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent.parent
EVENTS = ROOT / "events"


def stack(*args: str) -> subprocess.CompletedProcess:
    """Run `local/stack.sh ARGS` on the stack this job was started against."""
    state_dir = os.environ.get("LAKEOPS_STACK_STATE_DIR")
    extra = ["--state-dir", state_dir] if state_dir else []
    return subprocess.run(
        ["bash", str(ROOT / "local" / "stack.sh"), *args, *extra],
        check=True,
        capture_output=True,
        text=True,
    )


class Job:
    def __init__(self) -> None:
        self.load()

    def load(self) -> None:
        """(Re)read the deployed stack: after a redeploy, names may have changed."""
        self.outputs = json.loads(stack("outputs").stdout)
        endpoint = self.outputs["endpoints"]["aws"]
        self.session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=self.outputs.get("region", "us-east-1"),
        )
        self.config = Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=900)
        self.endpoint = endpoint
        self.summary = getattr(self, "summary", [])
        self.functions = {
            details.get("binary"): name for name, details in self.outputs.get("functions", {}).items()
        }

    def client(self, service: str):
        return self.session.client(service, endpoint_url=self.endpoint, config=self.config)

    def resource(self, logical_id: str) -> str:
        return self.outputs["resources"][logical_id]

    def has(self, binary: str) -> bool:
        return binary in self.functions

    def progress(self, message: str) -> None:
        print(f"  .. {message}", flush=True)

    def invoke(self, binary: str, payload: dict) -> dict:
        name = self.functions[binary]
        response = self.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload).encode())
        body = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise RuntimeError(f"{binary} failed: {body.get('errorType')}: {body.get('errorMessage')}")
        return body

    def run_state_machine(self, logical_id: str, payload: dict, label: str) -> dict:
        sfn = self.client("stepfunctions")
        arn = self.resource(logical_id)
        execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
        seen = 0
        deadline = time.time() + 900
        while time.time() < deadline:
            history = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
            for event in history[seen:]:
                details = event.get("stateEnteredEventDetails")
                if details:
                    self.progress(f"{label}: {details['name']}")
            seen = len(history)
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                if described["status"] != "SUCCEEDED":
                    raise RuntimeError(
                        f"{label} {described['status']}: {described.get('error')} {described.get('cause')}"
                    )
                return json.loads(described.get("output") or "null")
            time.sleep(1)
        raise RuntimeError(f"{label} did not finish in 15 minutes")

    def step(self, title: str, binary: str, run) -> None:
        print(f"\n== {title}", flush=True)
        if binary is not None and not self.has(binary):
            print(f"  {binary}: not built yet (no such function in template.yaml)")
            self.summary.append((title, "not built yet", ""))
            return
        started = time.time()
        try:
            detail = run()
            self.summary.append((title, "ok", f"{time.time() - started:.1f}s  {detail}"))
        except Exception as error:  # noqa: BLE001 - the job reports every step's failure
            print(f"  FAILED: {error}")
            self.summary.append((title, "FAILED", str(error)[:200]))


def main() -> int:
    job = Job()
    from main_job import steps  # one module per function, in the order a platform is built

    for title, binary, run in steps.ALL:
        job.step(title, binary, lambda run=run: run(job))
    print("\n== Summary")
    width = max(len(t) for t, _, _ in job.summary)
    for title, status, detail in job.summary:
        print(f"  {title.ljust(width)}  {status:<14} {detail}")
    failed = [s for s in job.summary if s[1] == "FAILED"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
