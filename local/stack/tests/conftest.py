"""Fixtures: a real local stack on free ports, built from tests/template.yaml and tests/fixture."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config

TESTS = Path(__file__).resolve().parent
STACK_SH = TESTS.parents[1] / "stack.sh"
TEMPLATE = TESTS / "template.yaml"
FIXTURE_MANIFEST = TESTS / "fixture" / "Cargo.toml"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stack_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("LAKEOPS_VENV", str(Path(sys.executable).resolve().parents[1]))
    return env


def run_stack(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(STACK_SH), *args], capture_output=True, text=True, env=stack_env(), timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"stack.sh {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Stack:
    state_dir: Path
    aws_port: int
    lambda_port: int
    databricks_port: int
    record_file: Path

    def args(self) -> list[str]:
        return ["--state-dir", str(self.state_dir)]

    def up_args(self) -> list[str]:
        return [
            "up",
            *self.args(),
            "--aws-port",
            str(self.aws_port),
            "--lambda-port",
            str(self.lambda_port),
            "--databricks-port",
            str(self.databricks_port),
            "--template",
            str(TEMPLATE),
            "--manifest-path",
            str(FIXTURE_MANIFEST),
            "--parameter",
            f"RecordFile={self.record_file}",
        ]

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=f"http://127.0.0.1:{self.aws_port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 1}, read_timeout=120),
        )

    def outputs(self) -> dict[str, Any]:
        return json.loads(run_stack("outputs", *self.args()).stdout)

    def records(self) -> list[dict[str, Any]]:
        if not self.record_file.exists():
            return []
        return [json.loads(line) for line in self.record_file.read_text().splitlines() if line.strip()]

    def clear_records(self) -> None:
        self.record_file.write_text("")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("stack")
    started = Stack(base / "state", free_port(), free_port(), free_port(), base / "record.jsonl")
    # --parent-pid: if pytest dies, the stack goes with it.
    run_stack(*started.up_args(), "--parent-pid", str(os.getpid()))
    try:
        yield started
    finally:
        run_stack("down", *started.args(), check=False)
