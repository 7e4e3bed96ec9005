"""The state directory: settings of the running stack, pid files, logs, deploy artefacts.

Layout (default /work/main/.local-stack, or --state-dir):

    stack.json               settings of the running stack (ports, template, parameters)
    lock                     flock held while up/down/deploy change the stack
    pids/<name>.pid          "<pid> <start-time>" of each process group leader
    logs/<name>.log          output of each process
    functions/routes.json    deployed function name -> cargo binary (read by the moto launcher)
    functions/<binary>.env   environment of each function (read by the function runner)
    deploy/                  translated template, outputs.json, schedules.json
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_STATE_DIR = REPO_ROOT / ".local-stack"
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DATABRICKS_ACCOUNT_ID = "00000000-0000-0000-0000-000000000001"
STACK_NAME = "lakeops-local"

# Process names, in start order. Stopped in reverse order.
PROCESS_NAMES = ("moto", "lambda", "databricks")


@dataclass
class StackSettings:
    aws_port: int = 4566
    lambda_port: int = 9000
    databricks_port: int | None = 8900
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    stack_name: str = STACK_NAME
    template: str = str(REPO_ROOT / "template.yaml")
    manifest_path: str = str(REPO_ROOT / "Cargo.toml")
    parameters: dict[str, str] = field(default_factory=dict)
    parent_pid: int | None = None
    lambda_concurrency: int = 1
    databricks_binary: str | None = None
    functions: list[str] = field(default_factory=list)
    started_at: float = 0.0

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    @property
    def lambda_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.lambda_port}"

    @property
    def databricks_endpoint(self) -> str | None:
        if self.databricks_port is None:
            return None
        return f"http://127.0.0.1:{self.databricks_port}"

    def ports(self) -> dict[str, int | None]:
        return {"aws": self.aws_port, "lambda": self.lambda_port, "databricks": self.databricks_port}

    def endpoints(self) -> dict[str, str | None]:
        return {"aws": self.aws_endpoint, "lambda": self.lambda_endpoint, "databricks": self.databricks_endpoint}


class StateDir:
    def __init__(self, path: Path | str | None = None):
        chosen = path or os.environ.get("LAKEOPS_STACK_STATE_DIR") or DEFAULT_STATE_DIR
        self.path = Path(chosen).resolve()

    # ---- layout -------------------------------------------------------------
    @property
    def settings_file(self) -> Path:
        return self.path / "stack.json"

    @property
    def pids(self) -> Path:
        return self.path / "pids"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def functions(self) -> Path:
        return self.path / "functions"

    @property
    def deploy(self) -> Path:
        return self.path / "deploy"

    @property
    def outputs_file(self) -> Path:
        return self.deploy / "outputs.json"

    def ensure(self) -> None:
        for directory in (self.path, self.pids, self.logs, self.functions, self.deploy):
            directory.mkdir(parents=True, exist_ok=True)

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    # ---- settings -------------------------------------------------------------
    def save_settings(self, settings: StackSettings) -> None:
        write_json_atomic(self.settings_file, asdict(settings))

    def load_settings(self) -> StackSettings | None:
        try:
            raw = json.loads(self.settings_file.read_text())
        except FileNotFoundError:
            return None
        known = {k: v for k, v in raw.items() if k in StackSettings.__dataclass_fields__}
        return StackSettings(**known)

    # ---- locking --------------------------------------------------------------
    @contextmanager
    def lock(self, timeout: float = 120.0) -> Iterator[None]:
        """Serialise commands that change the stack (two `up`s racing each other)."""
        self.ensure()
        with open(self.path / "lock", "w") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StackError(
                            f"another local-stack command holds {self.path / 'lock'} for more than {timeout:.0f}s"
                        ) from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---- pid files -------------------------------------------------------------
    def write_pid(self, name: str, pid: int) -> None:
        self.pids.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.pid_file(name), f"{pid} {process_start_time(pid) or 0}\n")

    def read_pid(self, name: str) -> int | None:
        """The pid recorded for `name`, only if that very process is still alive (not a reused pid)."""
        try:
            text = self.pid_file(name).read_text().split()
        except FileNotFoundError:
            return None
        try:
            pid, started = int(text[0]), int(text[1])
        except (IndexError, ValueError):
            return None
        current = process_start_time(pid)
        if current is None or (started and current != started):
            return None
        return pid

    def recorded_names(self) -> list[str]:
        if not self.pids.is_dir():
            return []
        return sorted(p.stem for p in self.pids.glob("*.pid"))


class StackError(Exception):
    """A failure with a message meant for the user (no traceback)."""


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json_atomic(path: Path, value: object) -> None:
    write_text_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def process_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live process, None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Field 2 (comm) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def pid_alive(pid: int) -> bool:
    return process_start_time(pid) is not None


def kill_group(pgid: int, grace: float = 5.0) -> None:
    """SIGTERM a whole process group, then SIGKILL whatever is left after `grace` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and group_alive(pgid):
        time.sleep(0.05)


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process is still in process group `pgid`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False
