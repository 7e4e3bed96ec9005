"""Command line of the local stack: up, down, status, deploy, outputs, fire-schedule, logs."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from lakeops_stack.state import (
    PROCESS_NAMES,
    REPO_ROOT,
    StackError,
    StackSettings,
    StateDir,
    kill_group,
    pid_alive,
)


def progress(message: str) -> None:
    print(f"[local-stack {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# ports and health
# ---------------------------------------------------------------------------------------------


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as failure:
            if failure.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def http_answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except (urllib.error.URLError, OSError):
        return False


def lambda_answers(settings: StackSettings) -> bool:
    return http_answers(f"{settings.lambda_endpoint}/2015-03-31/functions/lakeops-health-check/invocations")


def health(settings: StackSettings) -> dict[str, bool]:
    checks = {
        "moto": http_answers(f"{settings.aws_endpoint}/"),
        # GET on the POST-only invoke route: cargo lambda watch answers 405 without starting a
        # function (GET / would start the package's default function).
        "lambda": lambda_answers(settings),
    }
    if settings.databricks_binary and settings.databricks_port is not None:
        checks["databricks"] = http_answers(f"{settings.databricks_endpoint}/_emulator/info")
    return checks


# ---------------------------------------------------------------------------------------------
# builds
# ---------------------------------------------------------------------------------------------


def cargo_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/lakeops/target"))
    cargo_bin = Path.home() / ".cargo" / "bin"
    if cargo_bin.is_dir() and str(cargo_bin) not in env.get("PATH", ""):
        env["PATH"] = f"{cargo_bin}:{env.get('PATH', '')}"
    return env


def run_cargo(args: list[str], manifest: Path, label: str) -> None:
    """Run cargo, streaming its progress lines; raise with the tail of its output on failure."""
    command = ["cargo", *args, "--manifest-path", str(manifest), "--color", "never"]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=manifest.parent, env=cargo_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-30:]
        stripped = line.strip()
        if stripped.startswith(("Compiling", "Finished", "Blocking", "error", "warning: unused")) or "Building" in stripped:
            progress(f"{label}: {stripped}")
    code = process.wait()
    if code != 0:
        raise StackError(f"{label}: `{' '.join(command)}` failed (exit {code}):\n" + "\n".join(tail))
    progress(f"{label}: done in {time.monotonic() - started:.0f}s")


def prebuild_functions(settings: StackSettings, binaries: list[str]) -> None:
    """Build each function the way `cargo run --bin X` (cargo lambda watch) will, so the first invoke is warm.

    One build per binary: building them together would unify features across packages and
    `cargo run --bin X` would then rebuild with a different feature set.
    """
    manifest = Path(settings.manifest_path)
    for index, binary in enumerate(binaries, 1):
        run_cargo(["build", "--bin", binary], manifest, f"building function {index}/{len(binaries)} {binary}")


DATABRICKS_CRATE = REPO_ROOT / "local" / "databricks-emulator"


def build_databricks_emulator() -> str | None:
    if not (DATABRICKS_CRATE / "Cargo.toml").exists():
        progress(f"Databricks emulator skipped: crate {DATABRICKS_CRATE} does not exist yet")
        return None
    run_cargo(["build", "-p", "databricks-emulator", "--bin", "databricks-emulator"], REPO_ROOT / "Cargo.toml", "building databricks-emulator")
    binary = Path(cargo_env()["CARGO_TARGET_DIR"]) / "debug" / "databricks-emulator"
    if not binary.exists():
        raise StackError(f"databricks-emulator built but {binary} is missing")
    return str(binary)


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------


def teardown(state: StateDir, quiet: bool = False) -> list[str]:
    """Stop the supervisor and every process group recorded in the state dir."""
    stopped = []
    supervisor = state.read_pid("supervisor")
    if supervisor is not None:
        if not quiet:
            progress(f"stopping supervisor (pid {supervisor})")
        try:
            os.kill(supervisor, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and pid_alive(supervisor):
            time.sleep(0.1)
        kill_group(supervisor, grace=1.0)
        stopped.append("supervisor")
    for name in state.recorded_names():
        pid = state.read_pid(name)
        if pid is not None:
            if not quiet:
                progress(f"stopping {name} (process group {pid})")
            kill_group(pid)
            stopped.append(name)
        state.pid_file(name).unlink(missing_ok=True)
    for exited in state.pids.glob("*.exited") if state.pids.is_dir() else []:
        exited.unlink(missing_ok=True)
    state.settings_file.unlink(missing_ok=True)
    return stopped


def cmd_up(args: argparse.Namespace) -> int:
    state = StateDir(args.state_dir)
    with state.lock():
        running = state.load_settings()
        if running is not None and state.read_pid("supervisor") is not None:
            requested = (args.aws_port, args.lambda_port, args.databricks_port)
            current = (running.aws_port, running.lambda_port, running.databricks_port)
            if requested != current:
                raise StackError(
                    f"a local stack is already running from {state.path} on ports aws={current[0]} lambda={current[1]} "
                    f"databricks={current[2]}; run `local/stack.sh down --state-dir {state.path}` first"
                )
            status = health(running)
            if not all(status.values()):
                raise StackError(f"a local stack is running from {state.path} but does not answer ({status}); run `down` then `up`")
            progress("the local stack is already running")
            print_endpoints(running, state)
            return 0
        stale = teardown(state, quiet=True)
        if stale:
            progress(f"cleaned up processes left by an earlier run: {', '.join(stale)}")

        settings = StackSettings(
            aws_port=args.aws_port,
            lambda_port=args.lambda_port,
            databricks_port=args.databricks_port,
            template=str(Path(args.template).resolve()),
            manifest_path=str(Path(args.manifest_path).resolve()),
            parameters=dict(args.parameter or []),
            parent_pid=args.parent_pid,
            lambda_concurrency=args.lambda_concurrency,
            started_at=time.time(),
        )
        if args.parent_pid is not None and not pid_alive(args.parent_pid):
            raise StackError(f"--parent-pid {args.parent_pid}: no such process")
        ports = {"--aws-port": settings.aws_port, "--lambda-port": settings.lambda_port}
        if settings.databricks_port is not None:
            ports["--databricks-port"] = settings.databricks_port
        if len(set(ports.values())) != len(ports):
            raise StackError(f"ports must differ: {ports}")
        busy = [f"{flag} {port}" for flag, port in ports.items() if port_in_use(port)]
        if busy:
            raise StackError(f"port(s) already in use on 127.0.0.1: {', '.join(busy)} (another stack or service); choose other ports")

        from lakeops_stack.deploy import function_specs, load_template

        specs = function_specs(load_template(Path(settings.template)))
        settings.functions = [s.binary for s in specs]
        prebuild_functions(settings, settings.functions)
        if settings.databricks_port is not None:
            settings.databricks_binary = build_databricks_emulator()
            if settings.databricks_binary is None:
                settings.databricks_port = None

        state.ensure()
        state.save_settings(settings)
        try:
            start_supervisor(state)
            wait_healthy(settings, state, timeout=args.timeout)
            run_deploy(settings, state, restart_functions=False)
        except BaseException:
            progress("start failed: stopping what was started")
            teardown(state, quiet=True)
            raise
        print_endpoints(settings, state)
        return 0


def start_supervisor(state: StateDir) -> None:
    log = open(state.log_file("supervisor"), "ab", buffering=0)
    env = dict(cargo_env())
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "lakeops_stack", "_supervise", "--state-dir", str(state.path)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    log.close()
    state.write_pid("supervisor", process.pid)
    progress(f"supervisor started (pid {process.pid}); logs in {state.logs}")


def wait_healthy(settings: StackSettings, state: StateDir, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    reported: set[str] = set()
    last_wait_report = time.monotonic()
    while True:
        status = health(settings)
        for name, ok in status.items():
            if ok and name not in reported:
                progress(f"{name} answers")
                reported.add(name)
        if all(status.values()):
            return
        for name in PROCESS_NAMES:
            exited = state.pids / f"{name}.exited"
            if exited.exists():
                raise StackError(f"{name} exited during start (status {exited.read_text().strip()}):\n{log_tail(state, name)}")
        if state.read_pid("supervisor") is None:
            raise StackError(f"the supervisor exited during start:\n{log_tail(state, 'supervisor')}")
        if time.monotonic() > deadline:
            waiting = [n for n, ok in status.items() if not ok]
            raise StackError(f"timed out after {timeout:.0f}s waiting for {', '.join(waiting)}:\n" + "\n".join(log_tail(state, n) for n in waiting))
        if time.monotonic() - last_wait_report > 5:
            progress(f"waiting for {', '.join(n for n, ok in status.items() if not ok)}")
            last_wait_report = time.monotonic()
        time.sleep(0.2)


def log_tail(state: StateDir, name: str, lines: int = 20) -> str:
    try:
        content = state.log_file(name).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"({name}: no log)"
    return f"--- {state.log_file(name)} (last {lines} lines)\n" + "\n".join(content[-lines:])


def run_deploy(settings: StackSettings, state: StateDir, restart_functions: bool) -> dict:
    from lakeops_stack.deploy import deploy

    started = time.monotonic()
    result = deploy(settings, state, progress)
    progress(f"template deployed as stack {settings.stack_name} in {time.monotonic() - started:.1f}s")
    if restart_functions:
        restart_lambda_watch(settings, state, "environments changed" if result.env_changed else "binaries rebuilt")
    return result.outputs


def restart_lambda_watch(settings: StackSettings, state: StateDir, reason: str) -> None:
    """Running function instances keep their binary and environment: restart cargo lambda watch."""
    supervisor = state.read_pid("supervisor")
    if supervisor is None:
        return
    before = state.read_pid("lambda")
    progress(f"restarting cargo lambda watch ({reason})")
    os.kill(supervisor, signal.SIGHUP)
    deadline = time.monotonic() + 60
    while True:
        current = state.read_pid("lambda")
        if current is not None and current != before and lambda_answers(settings):
            return
        if time.monotonic() > deadline:
            raise StackError(f"cargo lambda watch did not come back after the restart:\n{log_tail(state, 'lambda')}")
        time.sleep(0.2)


def print_endpoints(settings: StackSettings, state: StateDir) -> None:
    print(f"AWS (moto):          {settings.aws_endpoint}    (AWS_ENDPOINT_URL)")
    print(f"Lambda (cargo watch): {settings.lambda_endpoint}")
    print(f"Databricks emulator: {settings.databricks_endpoint or 'not started (crate missing or disabled)'}")
    print(f"Stack:               {settings.stack_name} (region {settings.region}, account {settings.account_id})")
    print(f"State and logs:      {state.path}")
    sys.stdout.flush()


def require_running(state: StateDir) -> StackSettings:
    settings = state.load_settings()
    if settings is None or state.read_pid("supervisor") is None:
        raise StackError(f"no local stack is running from {state.path}; run `local/stack.sh up` first")
    return settings


def cmd_down(args: argparse.Namespace) -> int:
    state = StateDir(args.state_dir)
    with state.lock():
        stopped = teardown(state)
    progress("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = StateDir(args.state_dir)
    settings = state.load_settings()
    processes = {name: state.read_pid(name) for name in ("supervisor", *PROCESS_NAMES)}
    report = {
        "state_dir": str(state.path),
        "running": settings is not None and processes["supervisor"] is not None,
        "processes": {name: pid for name, pid in processes.items()},
    }
    if settings is not None:
        report["ports"] = settings.ports()
        report["endpoints"] = settings.endpoints()
        report["health"] = health(settings) if report["running"] else {}
        report["parent_pid"] = settings.parent_pid
    print(json.dumps(report, indent=2))
    return 0 if report["running"] else 3


def cmd_deploy(args: argparse.Namespace) -> int:
    state = StateDir(args.state_dir)
    with state.lock():
        settings = require_running(state)
        if args.parameter:
            settings.parameters.update(dict(args.parameter))
            state.save_settings(settings)
        from lakeops_stack.deploy import function_specs, load_template

        binaries = [s.binary for s in function_specs(load_template(Path(settings.template)))]
        prebuild_functions(settings, binaries)
        run_deploy(settings, state, restart_functions=True)
    return 0


def cmd_outputs(args: argparse.Namespace) -> int:
    state = StateDir(args.state_dir)
    require_running(state)
    try:
        print(state.outputs_file.read_text(), end="")
    except FileNotFoundError:
        raise StackError("the stack has no outputs yet (deploy did not finish)") from None
    return 0


def cmd_fire_schedule(args: argparse.Namespace) -> int:
    from lakeops_stack.deploy import clients
    from lakeops_stack.schedules import fire

    state = StateDir(args.state_dir)
    settings = require_running(state)
    schedules = json.loads((state.deploy / "schedules.json").read_text())
    result = fire(clients(settings), schedules, args.name, settings.region, settings.account_id, not args.no_wait, progress)
    print(json.dumps(result, indent=2))
    failed = any(r.get("status") in ("FunctionError", "FAILED", "TIMED_OUT", "ABORTED") for r in result["results"])
    return 1 if failed else 0


def cmd_logs(args: argparse.Namespace) -> int:
    state = StateDir(args.state_dir)
    names = [args.name] if args.name else ["supervisor", *PROCESS_NAMES]
    files = [state.log_file(n) for n in names if state.log_file(n).exists()]
    if not files:
        raise StackError(f"no logs in {state.logs}")
    if args.follow:
        os.execvp("tail", ["tail", "-n", str(args.lines), "-F", *map(str, files)])
    for path in files:
        print(f"==> {path} <==")
        print("\n".join(path.read_text(errors="replace").splitlines()[-args.lines :]))
    return 0


def cmd_supervise(args: argparse.Namespace) -> int:
    from lakeops_stack.supervisor import main as supervise

    return supervise(args.state_dir)


def key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    return key, value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="local/stack.sh", description="lakeops local AWS stack (moto + cargo lambda watch + Databricks emulator)")
    sub = root.add_subparsers(dest="command", required=True, metavar="{up,down,status,deploy,outputs,fire-schedule,logs}")

    def with_state(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--state-dir", default=None, help="state dir (default $LAKEOPS_STACK_STATE_DIR or <repo>/.local-stack)")
        return p

    up = with_state(sub.add_parser("up", help="build, start, deploy; waits until everything answers"))
    up.add_argument("--aws-port", type=int, default=4566)
    up.add_argument("--lambda-port", type=int, default=9000)
    up.add_argument("--databricks-port", type=int, default=8900)
    up.add_argument("--no-databricks", dest="databricks_port", action="store_const", const=None, help="do not start the Databricks emulator")
    up.add_argument("--parent-pid", type=int, default=None, help="tear the stack down when this process exits")
    up.add_argument("--template", default=str(REPO_ROOT / "template.yaml"))
    up.add_argument("--manifest-path", default=str(REPO_ROOT / "Cargo.toml"), help="cargo workspace of the functions")
    up.add_argument("--parameter", action="append", type=key_value, metavar="KEY=VALUE", help="template parameter override")
    up.add_argument("--lambda-concurrency", type=int, default=1, help="instances per function in cargo lambda watch")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the processes to answer")
    up.set_defaults(func=cmd_up)

    with_state(sub.add_parser("down", help="stop every process of the stack")).set_defaults(func=cmd_down)
    with_state(sub.add_parser("status", help="processes, ports, health (JSON); exit 3 when stopped")).set_defaults(func=cmd_status)
    deploy_parser = with_state(sub.add_parser("deploy", help="re-deploy template.yaml into the running stack"))
    deploy_parser.add_argument("--parameter", action="append", type=key_value, metavar="KEY=VALUE")
    deploy_parser.set_defaults(func=cmd_deploy)
    with_state(sub.add_parser("outputs", help="stack outputs, physical names by logical id, endpoints (JSON)")).set_defaults(func=cmd_outputs)
    fire_parser = with_state(sub.add_parser("fire-schedule", help="invoke a schedule's target with its Input now"))
    fire_parser.add_argument("name", help="schedule name or logical id")
    fire_parser.add_argument("--no-wait", action="store_true", help="do not wait for a state machine execution to finish")
    fire_parser.set_defaults(func=cmd_fire_schedule)
    logs = with_state(sub.add_parser("logs", help="show the logs of the stack's processes"))
    logs.add_argument("name", nargs="?", choices=["supervisor", *PROCESS_NAMES])
    logs.add_argument("-n", "--lines", type=int, default=50)
    logs.add_argument("-f", "--follow", action="store_true")
    logs.set_defaults(func=cmd_logs)
    supervise = sub.add_parser("_supervise")  # internal: the long-running supervisor
    supervise.add_argument("--state-dir", required=True)
    supervise.set_defaults(func=cmd_supervise)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except StackError as failure:
        print(f"local-stack: {failure}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("local-stack: interrupted", file=sys.stderr)
        return 130
    except Exception as failure:  # noqa: BLE001 - template errors etc. get a message, not a traceback
        from lakeops_stack.cfn import TemplateError

        if isinstance(failure, TemplateError):
            print(f"local-stack: template: {failure}", file=sys.stderr)
            return 2
        raise

