#!/usr/bin/env python3
"""Cold-init, peak-RSS and package-size benchmark of the lakeops Lambda functions.

For each function it takes the deployment package that `cargo lambda build
--release --output-format zip` produced (target/lambda/<fn>/bootstrap.zip),
extracts the `bootstrap` it contains, and starts it N times against a local
Lambda Runtime API served here. One run measures:

- cold init: from just before the process is spawned to the moment its first
  `GET /2018-06-01/runtime/invocation/next` request line is read here;
- peak RSS at init: VmHWM of /proc/<pid>/status, read while that first /next
  request is held open (the process has finished init and waits for an event).

The process is then killed; no event is ever delivered. Runs of the functions
are interleaved (round robin) so that a burst of load on a shared machine
spreads over all of them instead of one. One discarded warm-up run per
function comes first (it pages the binary in).

Standard library only. See BENCHMARKS.md for what this does not measure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

NEXT_PATH = "/2018-06-01/runtime/invocation/next"

FUNCTIONS = [
    "provision",
    "catalog-setup",
    "catalog-ingest",
    "lake-grants",
    "rotate-credentials",
    "network-sleep",
]

# Targets from issue 9. Sizes are compared in decimal megabytes (10^6 bytes),
# the stricter reading of "MB".
MB = 1_000_000
COLD_INIT_TARGET_MS = 10.0
ZIP_TARGET_BYTES = {name: 6 * MB for name in FUNCTIONS} | {"catalog-ingest": 8 * MB}
RSS_TARGET_BYTES = 24 * MB

BEGIN_MARK = "<!-- bench:results:begin (written by bench/lambda_init.py; edit outside the markers) -->"
END_MARK = "<!-- bench:results:end -->"


# --------------------------------------------------------------------------
# The local Runtime API
# --------------------------------------------------------------------------


@dataclass
class Run:
    """The process being measured right now (runs are strictly sequential)."""

    pid: int = 0
    pid_known: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    next_at_ns: int = 0
    status: dict[str, int] = field(default_factory=dict)
    other_requests: list[str] = field(default_factory=list)


class RuntimeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True
    current: Run | None = None



def union_length(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by `intervals` (overlaps counted once): how long at
    least one request was being served when several ran concurrently."""
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total

def read_status(pid: int) -> dict[str, int]:
    """The memory lines of /proc/<pid>/status, in bytes."""
    wanted = {"VmHWM", "VmRSS", "RssAnon", "RssFile", "Threads"}
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in wanted:
                parts = value.split()
                number = int(parts[0])
                out[key] = number * 1024 if len(parts) > 1 and parts[1] == "kB" else number
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def parse_request(self) -> bool:
        # The earliest point at which the request line has been read: stamp it
        # before header parsing so that the server's own work counts as little
        # as possible.
        self.stamp_ns = time.perf_counter_ns()
        return super().parse_request()

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        run = self.server.current
        if self.path == NEXT_PATH and run is not None and not run.arrived.is_set():
            run.next_at_ns = self.stamp_ns
            run.pid_known.wait(timeout=5)
            try:
                run.status = read_status(run.pid)
            except OSError:
                run.status = {}
            run.arrived.set()
            # Hold the long poll open, as Lambda does between events, until the
            # harness has killed the process.
            run.release.wait(timeout=30)
            self.close_connection = True
            return
        if run is not None:
            run.other_requests.append(f"GET {self.path}")
        self.send_error(404)

    def do_POST(self) -> None:  # noqa: N802
        run = self.server.current
        if run is not None:
            run.other_requests.append(f"POST {self.path}")
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


# --------------------------------------------------------------------------
# Environments: what each function needs to finish init
# --------------------------------------------------------------------------


def dead_local_endpoint() -> str:
    """A loopback URL on which nothing listens: any AWS call at init fails fast."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def lambda_runtime_env(name: str, api: str, sandbox: Path) -> dict[str, str]:
    """What Lambda itself sets in a function's process (not the function's own
    configuration): the Runtime API address, the task root, the log format of
    template.yaml's LoggingConfig. Nothing is inherited from the harness."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        # An empty home: aws-config finds no ~/.aws/config or credentials,
        # as in Lambda. (Pointing AWS_CONFIG_FILE at a missing file instead
        # would add a WARN log line that Lambda never sees.)
        "HOME": str(sandbox),
        "LAMBDA_TASK_ROOT": str(sandbox / name),
        "LAMBDA_RUNTIME_DIR": str(sandbox / name),
        "_HANDLER": "bootstrap",
        "AWS_LAMBDA_RUNTIME_API": api,
        "AWS_LAMBDA_FUNCTION_NAME": f"lakeops-bench-{name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/lakeops-bench-{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
        # template.yaml LoggingConfig: LogFormat JSON, ApplicationLogLevel.
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
    }


def function_env(name: str, api: str, sandbox: Path, endpoint: str, lake_spec: str) -> dict[str, str]:
    """A clean environment like the one Lambda gives the function (template.yaml
    Globals and the function's own Variables), with dummy credentials. Nothing
    is inherited from the harness's environment."""
    env = lambda_runtime_env(name, api, sandbox) | {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIABENCHMARKEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "bench/secret/not/a/real/key/0000000000",
        "AWS_SESSION_TOKEN": "bench-session-token",
        "AWS_ENDPOINT_URL": endpoint,
        # template.yaml Globals.
        "LAKEOPS_ENVIRONMENT": "bench",
        "DATABRICKS_ACCOUNT_HOST": "https://accounts.cloud.databricks.com",
        "DATABRICKS_WORKSPACE_HOST_TEMPLATE": "https://{deployment_name}.cloud.databricks.com",
    }
    per_function = {
        "provision": {
            "DATABRICKS_RETRY_BUDGET_SECONDS": "20",
            "PAT_ROTATION_FUNCTION_ARN": "arn:aws:lambda:us-east-1:123456789012:function:lakeops-bench-rotate-credentials",
        },
        "catalog-setup": {},
        "catalog-ingest": {
            # Deployed with LAKE_SPEC_URI (one S3 GetObject at init); inline
            # here so that init needs no server. The spec is still parsed and
            # validated at init exactly as in production.
            "LAKE_SPEC": lake_spec,
            "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:lakeops-bench-catalog-alerts",
            "TEXT_SAMPLE_BYTES": "65536",
        },
        "lake-grants": {
            "POLICY_URI": "s3://lakeops-bench-config-123456789012/lake/grants.yaml",
        },
        "rotate-credentials": {
            "IAM_KEY_CHECK_SECONDS": "60",
            "DATABRICKS_RETRY_BUDGET_SECONDS": "20",
        },
        "network-sleep": {
            "VPC_ID": "vpc-0123456789abcdef0",
            "SLEEP_SCHEDULE_NAME": "dev-nights",
            "STATE_BUCKET": "lakeops-bench-state-123456789012",
            "STATE_PREFIX": "network-sleep/",
            "WORKSPACES": json.dumps(
                [
                    {
                        "name": "dev",
                        "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:lakeops/bench/dev-pat",
                        "workspace_url": "https://dbc-12345678-abcd.cloud.databricks.com",
                    }
                ]
            ),
            "IDLE_MINUTES": "60",
            "RELEASE_EIPS": "false",
        },
    }
    env.update(per_function.get(name, {}))
    return env


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------


class InitFailed(RuntimeError):
    pass


def spawn(server: RuntimeApi, run: Run, binary: Path, env: dict[str, str], output) -> tuple[subprocess.Popen, int]:
    """Start `binary` as the process of `run`; return it and the clock reading
    (perf_counter_ns) taken just before the spawn."""
    # The run is registered before the spawn: a fast process may ask for its
    # event before Popen has even returned.
    server.current = run
    started_ns = time.perf_counter_ns()
    process = subprocess.Popen(
        [str(binary)],
        env=env,
        cwd=env["LAMBDA_TASK_ROOT"],
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    run.pid = process.pid
    run.pid_known.set()
    return process, started_ns


def wait_for(signal_: threading.Event, process: subprocess.Popen, what: str, binary: Path, log: Path, timeout_s: float) -> None:
    """Wait until `signal_` is set; fail loudly, with the tail of the process's
    output, if it exits or `timeout_s` passes first. `what` names the awaited
    step ("its request for an event")."""
    deadline = time.monotonic() + timeout_s
    while not signal_.wait(timeout=0.05):
        if process.poll() is not None:
            raise InitFailed(
                f"{binary.parent.name} exited with {process.returncode} while waiting for {what}:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        if time.monotonic() > deadline:
            raise InitFailed(
                f"{binary.parent.name}: timed out after {timeout_s}s waiting for {what}:\n"
                + log.read_text(errors="replace")[-4000:]
            )


def stop(server: RuntimeApi, run: Run, process: subprocess.Popen) -> None:
    """Kill the process and let go of the /next request it holds open."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait()
    run.release.set()
    server.current = None


def measure_once(server: RuntimeApi, binary: Path, env: dict[str, str], log: Path, timeout_s: float) -> dict:
    with open(log, "wb") as output:
        run = Run()
        process, started_ns = spawn(server, run, binary, env, output)
        try:
            wait_for(run.arrived, process, "its request for an event", binary, log, timeout_s)
        finally:
            stop(server, run, process)
    if run.other_requests:
        raise InitFailed(f"{binary.parent.name} made unexpected Runtime API calls: {run.other_requests}")
    return {
        "init_ms": (run.next_at_ns - started_ns) / 1e6,
        "vm_hwm": run.status.get("VmHWM", 0),
        "vm_rss": run.status.get("VmRSS", 0),
        "rss_anon": run.status.get("RssAnon", 0),
        "rss_file": run.status.get("RssFile", 0),
        "threads": run.status.get("Threads", 0),
    }


def extract_bootstrap(zip_path: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        if "bootstrap" not in names:
            raise SystemExit(f"{zip_path} has no `bootstrap` (it has {names})")
        archive.extract("bootstrap", into)
    binary = into / "bootstrap"
    binary.chmod(0o755)
    return binary


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarise(samples: list[dict]) -> dict:
    init = [s["init_ms"] for s in samples]
    hwm = [s["vm_hwm"] for s in samples]
    return {
        "runs": len(samples),
        "init_ms_median": statistics.median(init),
        "init_ms_p25": quantile(init, 0.25),
        "init_ms_p75": quantile(init, 0.75),
        "init_ms_min": min(init),
        "init_ms_max": max(init),
        "vm_hwm_median": statistics.median(hwm),
        "vm_hwm_max": max(hwm),
        "rss_anon_median": statistics.median(s["rss_anon"] for s in samples),
        "rss_file_median": statistics.median(s["rss_file"] for s in samples),
        "threads": max(s["threads"] for s in samples),
    }


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def sh(command: str) -> str:
    try:
        return subprocess.run(command, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine() -> dict:
    cpu = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": sh("nproc"),
        "cpu": cpu,
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "memory": sh("free -h | awk '/^Mem:/ {print $2\" total, \"$7\" available\"}'"),
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
        "niceness": os.getpriority(os.PRIO_PROCESS, 0),
        "rustc": sh("rustc --version"),
        "source": sh("git -C '%s' describe --always --dirty 2>/dev/null" % Path(__file__).resolve().parent.parent),
        "cargo_lambda": sh("cargo lambda --version 2>/dev/null || cargo-lambda lambda --version"),
    }


def mb(value: float) -> str:
    return f"{value / MB:.2f}"


def verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def render(results: dict) -> str:
    rows = []
    checks = []
    for name in results["functions"]:
        f = results["functions"][name]
        s = f["summary"]
        init_ok = s["init_ms_median"] <= COLD_INIT_TARGET_MS
        zip_ok = f["zip_bytes"] <= ZIP_TARGET_BYTES[name]
        rss_ok = s["vm_hwm_max"] <= RSS_TARGET_BYTES
        checks.append((name, init_ok, zip_ok, rss_ok))
        rows.append(
            f"| {name} | {s['init_ms_median']:.2f} | {s['init_ms_p25']:.2f}–{s['init_ms_p75']:.2f} "
            f"| {s['init_ms_min']:.2f}–{s['init_ms_max']:.2f} | {s['init_ms_median'] - results['floor']['init_ms_median']:.2f} "
            f"| {mb(s['vm_hwm_median'])} | {mb(s['vm_hwm_max'])} | {mb(f['zip_bytes'])} | {mb(f['binary_bytes'])} "
            f"| {verdict(init_ok)} | {verdict(zip_ok)} | {verdict(rss_ok)} |"
        )
    fl = results["floor"]
    m = results["machine"]
    lines = [
        BEGIN_MARK,
        "",
        f"Measured {results['when']} with {results['runs']} runs per function "
        f"(interleaved; 1 warm-up run each, discarded). Load average before the runs: "
        f"{' '.join(m['loadavg_before'])}; after: {' '.join(results['loadavg_after'])}.",
        "",
        "| function | cold init median (ms) | p25–p75 (ms) | min–max (ms) | median minus floor (ms) "
        "| peak RSS median (MB) | peak RSS max (MB) | zip (MB) | bootstrap (MB) "
        "| init ≤ 10 ms | zip ≤ 6 MB (8 MB ingest) | RSS ≤ 24 MB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|:-:|:-:|:-:|",
        *rows,
        f"| *harness floor* (bench/floor.rs) | {fl['init_ms_median']:.2f} | {fl['init_ms_p25']:.2f}–{fl['init_ms_p75']:.2f} "
        f"| {fl['init_ms_min']:.2f}–{fl['init_ms_max']:.2f} | 0 | {mb(fl['vm_hwm_median'])} | {mb(fl['vm_hwm_max'])} | | | | | |",
        "",
        "MB = 10^6 bytes. Cold init passes on the median, RSS on the worst run, zip on the file size of "
        "`target/lambda/<fn>/bootstrap.zip`.",
        "",
        "Machine:",
        "",
        f"- CPU: {m['cpu']}, `nproc` = {m['nproc']}",
        f"- memory (`free -h`): {m['memory']}",
        f"- kernel: {m['kernel']}",
        f"- harness niceness: {m['niceness']} (processes under test inherit it)",
        f"- {m['rustc']}; {m['cargo_lambda']}",
        f"- source tree at measuring time: `{m['source']}` (with `--skip-build`, the packages may be older than it)",
        "",
        "Reproduce: `./dev bench` (builds with `cargo lambda build --release --x86-64 --output-format zip`, "
        f"then `python3 bench/lambda_init.py --runs {results['runs']}`).",
        "",
        END_MARK,
    ]
    return "\n".join(lines), checks


def write_markdown(path: Path, block: str, begin: str = BEGIN_MARK, end: str = END_MARK) -> None:
    """Replace the block between `begin` and `end` (markers included in
    `block`), or append it when the file has none."""
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        head = text.split(begin, 1)[0]
        tail = text.split(end, 1)[1]
        text = head + block + tail
    else:
        text = (text.rstrip() + "\n\n" if text else "# Benchmarks\n\n") + block + "\n"
    path.write_text(text)


# --------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lambda-dir", type=Path, required=True, help="target/lambda of cargo lambda build")
    parser.add_argument("--floor", type=Path, help="the bench/floor.rs binary (harness overhead reference)")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--functions", default=",".join(FUNCTIONS))
    parser.add_argument("--lake-spec", type=Path, default=Path(__file__).resolve().parent.parent / "events/lake-spec.json")
    parser.add_argument("--markdown", type=Path, help="rewrite the results block of this file (BENCHMARKS.md)")
    parser.add_argument("--json", type=Path, help="write every sample here")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a function may take to init")
    args = parser.parse_args()
    if args.runs < 10:
        parser.error("--runs must be at least 10")
    names = [n.strip() for n in args.functions.split(",") if n.strip()]
    unknown = [n for n in names if n not in FUNCTIONS]
    if unknown:
        parser.error(f"unknown functions {unknown}; known: {FUNCTIONS}")

    lake_spec = json.dumps(json.loads(args.lake_spec.read_text()))
    sandbox = Path(tempfile.mkdtemp(prefix="lakeops-bench-"))
    server = RuntimeApi(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = f"127.0.0.1:{server.server_address[1]}"
    endpoint = dead_local_endpoint()

    try:
        subjects: dict[str, tuple[Path, dict[str, str]]] = {}
        results: dict = {"functions": {}, "runs": args.runs, "machine": machine()}
        for name in names:
            zip_path = args.lambda_dir / name / "bootstrap.zip"
            if not zip_path.exists():
                raise SystemExit(f"{zip_path} is missing: build with cargo lambda build --release --output-format zip")
            binary = extract_bootstrap(zip_path, sandbox / name)
            subjects[name] = (binary, function_env(name, api, sandbox, endpoint, lake_spec))
            results["functions"][name] = {
                "zip_bytes": zip_path.stat().st_size,
                "binary_bytes": binary.stat().st_size,
                "samples": [],
            }
        if args.floor:
            floor_dir = sandbox / "floor"
            floor_dir.mkdir()
            shutil.copy2(args.floor, floor_dir / "bootstrap")
            subjects["floor"] = (floor_dir / "bootstrap", function_env("floor", api, sandbox, endpoint, lake_spec))

        samples: dict[str, list[dict]] = {name: [] for name in subjects}
        log = sandbox / "output.log"
        for round_index in range(args.runs + 1):
            for name, (binary, env) in subjects.items():
                sample = measure_once(server, binary, env, log, args.timeout)
                if round_index > 0:  # round 0 is the warm-up
                    samples[name].append(sample)
            print(f"round {round_index}/{args.runs} done", file=sys.stderr, end="\r")
        print(file=sys.stderr)

        for name in names:
            results["functions"][name]["samples"] = samples[name]
            results["functions"][name]["summary"] = summarise(samples[name])
        results["floor"] = summarise(samples["floor"]) if "floor" in samples else summarise([{"init_ms": 0.0, "vm_hwm": 0, "vm_rss": 0, "rss_anon": 0, "rss_file": 0, "threads": 0}])
        results["when"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        results["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]

        block, checks = render(results)
        print(block)
        if args.markdown:
            write_markdown(args.markdown, block)
            print(f"\nwrote {args.markdown}", file=sys.stderr)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2))
        missed = [
            f"{name}: {what}"
            for name, init_ok, zip_ok, rss_ok in checks
            for what, ok in (("cold init", init_ok), ("zip size", zip_ok), ("peak RSS", rss_ok))
            if not ok
        ]
        if missed:
            print("targets missed: " + "; ".join(missed), file=sys.stderr)
            return 1
        print("all targets met", file=sys.stderr)
        return 0
    finally:
        server.shutdown()
        shutil.rmtree(sandbox, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
