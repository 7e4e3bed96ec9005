"""The long-running supervisor of a local stack.

`up` starts it in its own session; it starts moto, cargo lambda watch and the Databricks
emulator, each in its own process group (pid files in the state dir), and:

- tears everything down on SIGTERM/SIGINT (`down`), or when --parent-pid exits;
- restarts cargo lambda watch on SIGHUP (`deploy` changed function environments; running
  function instances keep the environment they started with).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from lakeops_stack.state import PROCESS_NAMES, StackSettings, StateDir, kill_group, pid_alive

PACKAGE_DIR = Path(__file__).resolve().parent
RUNNER = PACKAGE_DIR / "function-runner.sh"


def venv_dir() -> Path:
    return Path(os.environ.get("LAKEOPS_VENV") or sys.prefix)


def host_triple() -> str:
    out = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("host:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError("rustc -vV printed no host triple")


def cargo_lambda_executable() -> str:
    candidate = venv_dir() / "bin" / "cargo-lambda"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("cargo-lambda")
    if found:
        return found
    raise RuntimeError(f"cargo-lambda not found in {venv_dir() / 'bin'} nor on PATH (pip install cargo-lambda)")


def child_commands(settings: StackSettings, state: StateDir) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """name -> (argv, extra environment, cwd) of each process of the stack."""
    python = sys.executable
    commands: dict[str, tuple[list[str], dict[str, str], str]] = {}
    pythonpath = str(PACKAGE_DIR.parent)
    commands["moto"] = (
        [
            python,
            "-m",
            "lakeops_stack.moto_launcher",
            "--port",
            str(settings.aws_port),
            "--lambda-port",
            str(settings.lambda_port),
            "--state-dir",
            str(state.path),
        ],
        {"PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"},
        str(state.path),
    )
    triple = host_triple().upper().replace("-", "_")
    manifest = Path(settings.manifest_path)
    commands["lambda"] = (
        [
            cargo_lambda_executable(),
            "lambda",
            "watch",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            str(settings.lambda_port),
            "--ignore-changes",
            "--concurrency",
            str(settings.lambda_concurrency),
            "--manifest-path",
            str(manifest),
        ],
        {
            f"CARGO_TARGET_{triple}_RUNNER": str(RUNNER),
            "LAKEOPS_STACK_FUNCTIONS_DIR": str(state.functions),
            "CARGO_TARGET_DIR": os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/lakeops/target")),
        },
        str(manifest.parent),
    )
    if settings.databricks_port is not None and settings.databricks_binary:
        commands["databricks"] = (
            [
                settings.databricks_binary,
                "--port",
                str(settings.databricks_port),
                "--state",
                str(state.path / "databricks-state.json"),
            ],
            {},
            str(state.path),
        )
    return commands


class Supervisor:
    def __init__(self, state: StateDir):
        self.state = state
        settings = state.load_settings()
        if settings is None:
            raise SystemExit(f"no stack settings in {state.settings_file}")
        self.settings = settings
        self.commands = child_commands(settings, state)
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False
        self.restart_lambda = False

    def start_child(self, name: str) -> None:
        argv, extra_env, cwd = self.commands[name]
        env = dict(os.environ)
        if name == "lambda":
            # Functions inherit this environment: the developer's AWS_PROFILE, AWS_ENDPOINT_URL_S3,
            # DATABRICKS_TOKEN... must not leak into them (their environment comes from the deployer).
            env = {k: v for k, v in env.items() if not k.startswith(("AWS_", "DATABRICKS_"))}
        env.update(extra_env)
        log = open(self.state.log_file(name), "ab", buffering=0)
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}: {' '.join(argv)}\n".encode())
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.children[name] = process
        self.state.write_pid(name, process.pid)
        print(f"started {name} (pid {process.pid})", flush=True)

    def stop_child(self, name: str) -> None:
        process = self.children.pop(name, None)
        if process is not None:
            kill_group(process.pid)
            try:
                process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        self.state.pid_file(name).unlink(missing_ok=True)

    def teardown(self) -> None:
        for name in reversed(PROCESS_NAMES):
            if name in self.children:
                print(f"stopping {name}", flush=True)
                self.stop_child(name)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        try:
            for name in PROCESS_NAMES:
                if name in self.commands:
                    self.start_child(name)
            while not self.stopping:
                parent = self.settings.parent_pid
                if parent is not None and not pid_alive(parent):
                    print(f"parent process {parent} exited: tearing the stack down", flush=True)
                    break
                if self.restart_lambda:
                    self.restart_lambda = False
                    print("restarting cargo lambda watch (function environment changed)", flush=True)
                    self.stop_child("lambda")
                    self.start_child("lambda")
                for name, process in list(self.children.items()):
                    code = process.poll()
                    if code is not None:
                        print(f"{name} exited with status {code}; see {self.state.log_file(name)}", flush=True)
                        self.children.pop(name)
                        (self.state.pids / f"{name}.exited").write_text(f"{code}\n")
                        self.state.pid_file(name).unlink(missing_ok=True)
                time.sleep(0.3)
        finally:
            self.teardown()
            self.state.pid_file("supervisor").unlink(missing_ok=True)
            print("stack stopped", flush=True)
        return 0

    def _on_stop(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def _on_hup(self, signum: int, _frame: object) -> None:
        self.restart_lambda = True


def main(state_dir: str) -> int:
    state = StateDir(state_dir)
    return Supervisor(state).run()
