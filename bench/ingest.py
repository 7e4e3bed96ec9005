#!/usr/bin/env python3
"""Throughput benchmark of catalog-ingest: N objects through SQS batches into Glue.

It runs the RELEASE `bootstrap` of catalog-ingest (from `cargo lambda build
--release --x86-64 --output-format zip -p catalog-ingest`) against moto, as one
warm Lambda container, and measures (issues 5 and 9):

- objects per second;
- Glue calls, against the minimum an ingester could make for the batches
  actually delivered (target: within 10% of it);
- peak RSS while ingesting (VmHWM; target ≤ 64 MB);
- S3 reads: at most one ranged GetObject per text object, two per Parquet one;
- wall time split into time in our code and time moto spent serving the
  function's requests.

How (details and the definition of the minimum in BENCHMARKS.md, section
"catalog-ingest throughput"):

1. start the local stack's moto launcher alone (local/stack/lakeops_stack/
   moto_launcher.py, on free ports, private state dir), whose request log
   (`/_lakeops/requests`) records every AWS request it serves;
2. create what the function needs: the raw layer's bucket and Glue database of
   events/lake-spec.json, the config bucket holding the spec (the function
   reads it from `LAKE_SPEC_URI` as deployed), the alert topic;
3. generate the objects (5 tables: CSV, JSON lines and Parquet, 10 date
   partitions each) and put them into S3;
4. hand S3-notification SQS events, `IngestBatchSize` (template.yaml) messages
   per batch, in a shuffled arrival order, to the bootstrap through a local
   Lambda Runtime API (bench/lambda_init.py's handler, extended to deliver
   events), one batch after the other, as one container receives them;
5. read VmHWM/VmRSS from /proc while it runs, count Glue calls and S3 GETs
   (with their Range headers) from the request log, check the catalog.

    python3 bench/ingest.py --lambda-dir /work/target-bench/lambda --objects 10000 --markdown BENCHMARKS.md

Needs the project venv (boto3, pyarrow, moto). Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import math
import os
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lambda_init  # noqa: E402  (the local Runtime API and the Lambda-like environment)

ROOT = Path(__file__).resolve().parent.parent
MB = lambda_init.MB

# Targets (issues 5 and 9).
GLUE_MARGIN = 0.10
RSS_TARGET_BYTES = 64 * MB
MAX_READS = {"csv": 1, "jsonl": 1, "parquet": 2}

BEGIN_MARK = "<!-- bench:ingest:begin -->"
END_MARK = "<!-- bench:ingest:end -->"

ACCOUNT = "123456789012"
REGION = "us-east-1"
CONFIG_BUCKET = "lakeops-bench-config-123456789012"
SPEC_KEY = "lake/spec.json"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:lakeops-bench-catalog-ingest"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:lakeops-bench-catalog-ingest"
# template.yaml CatalogIngestFunction
FUNCTION_TIMEOUT_S = 120
FUNCTION_MEMORY_MB = 512


# --------------------------------------------------------------------------
# The objects
# --------------------------------------------------------------------------


@dataclass
class TableSpec:
    name: str
    format: str  # csv | jsonl | parquet
    # Columns of schema version 1, and those version 2 adds (written from
    # `v2_from` of the run on: a producer deployed a new field).
    columns: list[str]
    v2_columns: list[str] = field(default_factory=list)
    v2_from: float = 1.0


TABLES = [
    TableSpec("orders", "csv", ["order_id", "customer", "amount", "status", "created_at"]),
    TableSpec("clicks", "jsonl", ["user_id", "url", "ms", "ts"]),
    TableSpec("metrics", "parquet", ["host", "cpu", "mem", "ts"]),
    TableSpec("inventory", "csv", ["sku", "warehouse", "qty", "price"]),
    TableSpec("events", "jsonl", ["event_id", "kind", "payload"], ["source"], 0.6),
]
EXTENSION = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}


@dataclass
class BenchObject:
    table: str
    format: str
    partition: str
    key: str
    columns: tuple[str, ...]
    written: float  # 0..1, when the producer wrote it within the run
    arrival: float = 0.0
    data: bytes = b""


def text_rows(spec: TableSpec, version: int, rows: int, rng: random.Random) -> list[dict]:
    out = []
    for i in range(rows):
        if spec.name == "orders":
            row = {"order_id": rng.randrange(10**9), "customer": f"c{rng.randrange(10**5)}",
                   "amount": round(rng.uniform(1, 500), 2), "status": rng.choice(["new", "paid", "shipped"]),
                   "created_at": f"2026-11-{rng.randrange(1, 29):02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}:00"}
        elif spec.name == "inventory":
            row = {"sku": f"SKU-{rng.randrange(10**6):06d}", "warehouse": rng.choice(["ams", "fra", "dub"]),
                   "qty": rng.randrange(1000), "price": round(rng.uniform(0.5, 99), 2)}
        elif spec.name == "clicks":
            row = {"user_id": rng.randrange(10**7), "url": f"/p/{rng.randrange(10**4)}?ref={rng.randrange(99)}",
                   "ms": round(rng.uniform(1, 3000), 1), "ts": f"2026-11-{rng.randrange(1, 29):02d}T10:00:{i % 60:02d}Z"}
        else:  # events
            row = {"event_id": str(uuid.UUID(int=rng.getrandbits(128))), "kind": rng.choice(["login", "logout", "buy"]),
                   "payload": {"amount": rng.randrange(100), "tags": ["a", "b"][: rng.randrange(3)]}}
            if version == 2:
                row["source"] = rng.choice(["web", "ios", "android"])
        out.append(row)
    return out


def encode(spec: TableSpec, version: int, rows: int, rng: random.Random, row_group: int | None = None) -> bytes:
    if spec.format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({
            "host": [f"h{rng.randrange(200)}" for _ in range(rows)],
            "cpu": [rng.random() * 100 for _ in range(rows)],
            "mem": [rng.randrange(1 << 34) for _ in range(rows)],
            "ts": pa.array([1_790_000_000_000_000 + rng.randrange(10**12) for _ in range(rows)], pa.timestamp("us")),
        })
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="snappy", row_group_size=row_group)
        return sink.getvalue()
    records = text_rows(spec, version, rows, rng)
    if spec.format == "jsonl":
        return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
    columns = list(records[0].keys())
    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in records]
    return ("\n".join(lines) + "\n").encode()


def generate(count: int, partitions_per_table: int, seed: int, jitter: float) -> list[BenchObject]:
    """The objects, in arrival order.

    Each table's producer writes its share in time order, partition after
    partition (a backfill of `partitions_per_table` days); the notifications
    arrive interleaved across tables, each delayed by a random jitter (SQS
    standard queues do not keep order). Text objects are mostly a few KB, one
    in 40 is larger than the 64 KiB sample the function reads; one Parquet
    object in 50 has a footer larger than the function's first tail read."""
    rng = random.Random(seed)
    objects: list[BenchObject] = []
    per_table = [count // len(TABLES) + (1 if i < count % len(TABLES) else 0) for i in range(len(TABLES))]
    for spec, n in zip(TABLES, per_table):
        for j in range(n):
            day = min(j * partitions_per_table // n, partitions_per_table - 1)
            partition = f"dt=2026-11-{day + 1:02d}"
            written = (j + rng.random()) / n
            version = 2 if spec.v2_columns and written >= spec.v2_from else 1
            columns = tuple(spec.columns + (spec.v2_columns if version == 2 else []))
            if spec.format == "parquet":
                # One in 50 was written by a streaming writer in tiny row
                # groups: its footer outgrows the first 64 KiB tail read.
                small_groups = rng.randrange(50) == 0
                rows = rng.randrange(2500, 3500) if small_groups else rng.randrange(50, 500)
                data = encode(spec, version, rows, rng, row_group=5 if small_groups else None)
            else:
                large = rng.randrange(40) == 0
                rows = rng.randrange(1500, 2500) if large else rng.randrange(20, 200)
                data = encode(spec, version, rows, rng)
            key = f"{spec.name}/{partition}/part-{j:05d}-{rng.getrandbits(32):08x}.{EXTENSION[spec.format]}"
            objects.append(BenchObject(spec.name, spec.format, partition, key, columns, written,
                                       written + rng.gauss(0, jitter), data))
    objects.sort(key=lambda o: o.arrival)
    return objects


def notification(bucket: str, obj: BenchObject, when: float, sequence: int) -> str:
    """An S3 event notification as S3 puts it on SQS (key form-encoded, `/` kept)."""
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDABENCHPRODUCER"},
        "requestParameters": {"sourceIPAddress": "10.0.0.1"},
        "responseElements": {"x-amz-request-id": f"{sequence:016X}", "x-amz-id-2": "bench"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "catalog-ingest",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3BENCH"}, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": urllib.parse.quote_plus(obj.key, safe="/"), "size": len(obj.data),
                          "eTag": hashlib.md5(obj.data).hexdigest(), "sequencer": f"{sequence:016X}"}},
    }]})


def sqs_event(bucket: str, batch: list[BenchObject], first_sequence: int) -> tuple[bytes, list[str]]:
    now = time.time()
    records = []
    for i, obj in enumerate(batch):
        body = notification(bucket, obj, now, first_sequence + i)
        records.append({
            "messageId": str(uuid.uuid4()),
            "receiptHandle": f"bench-{first_sequence + i}",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(now * 1000)),
                           "SenderId": "AIDABENCHS3", "ApproximateFirstReceiveTimestamp": str(int(now * 1000))},
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
            "eventSource": "aws:sqs", "eventSourceARN": QUEUE_ARN, "awsRegion": REGION,
        })
    return json.dumps({"Records": records}).encode(), [r["messageId"] for r in records]


# --------------------------------------------------------------------------
# The minimum number of Glue calls
# --------------------------------------------------------------------------


def minimum_glue_calls(batches: list[list[BenchObject]], trust_earlier_batches: bool = False) -> dict:
    """The fewest Glue calls a correct ingester could make for these batches,
    in this order, starting with an empty catalog it knows nothing of (see
    BENCHMARKS.md): per table, 1 read (does it exist?) and 1 CreateTable; per
    batch and table, 1 UpdateTable if the batch brings columns the table does
    not have yet, and ceil(partitions / 100) BatchCreatePartition for the
    distinct partitions of the batch — all of them, because another instance
    may have dropped (as catalog-ingest does with an emptied partition) what
    an earlier batch registered, and only a call can tell.

    `trust_earlier_batches` gives the lower bound of a single writer that no
    one else changes: only the partitions no earlier batch registered."""
    columns: dict[str, set[str]] = {}
    partitions: set[tuple[str, str]] = set()
    calls = {"GetTable": 0, "CreateTable": 0, "UpdateTable": 0, "BatchCreatePartition": 0}
    per_batch = []
    for batch in batches:
        here = {"GetTable": 0, "CreateTable": 0, "UpdateTable": 0, "BatchCreatePartition": 0}
        by_table: dict[str, list[BenchObject]] = {}
        for obj in batch:
            by_table.setdefault(obj.table, []).append(obj)
        for table, objs in by_table.items():
            seen = set().union(*(o.columns for o in objs))
            if table not in columns:
                here["GetTable"] += 1
                here["CreateTable"] += 1
                columns[table] = seen
            elif not seen <= columns[table]:
                here["UpdateTable"] += 1
                columns[table] |= seen
            in_batch = {(table, o.partition) for o in objs}
            to_register = in_batch - partitions if trust_earlier_batches else in_batch
            here["BatchCreatePartition"] += math.ceil(len(to_register) / 100)
            partitions |= in_batch
        for k, v in here.items():
            calls[k] += v
        per_batch.append(sum(here.values()))
    return {"by_operation": calls, "total": sum(calls.values()), "per_batch": per_batch}


# --------------------------------------------------------------------------
# The local Runtime API, delivering events
# --------------------------------------------------------------------------


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    handed_at: float = 0.0  # epoch seconds, when /next answered
    done_at: float = 0.0
    outcome: str = ""  # response | error
    body: bytes = b""
    done: threading.Event = field(default_factory=threading.Event)


class DeliveringApi(lambda_init.RuntimeApi):
    offers: "queue.Queue[Invocation | None]"
    by_id: dict[str, Invocation]
    init_error: bytes | None = None
    init_done_at: float = 0.0


class DeliveringHandler(lambda_init.Handler):
    """lambda_init's Runtime API handler, which only ever holds /next open,
    extended to hand out events and take responses, as Lambda does."""

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        server: DeliveringApi = self.server  # type: ignore[assignment]
        if self.path != lambda_init.NEXT_PATH:
            self.reply(404)
            return
        if not server.init_done_at:
            server.init_done_at = time.time()
        invocation = server.offers.get()
        if invocation is None:
            # The run is over: hold the poll open until the process is killed.
            time.sleep(3600)
            return
        invocation.handed_at = time.time()
        self.reply(200, invocation.payload, {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(int((time.time() + FUNCTION_TIMEOUT_S) * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
            "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{invocation.request_id.replace('-', '')[:24]};Sampled=0",
        })

    def do_POST(self) -> None:  # noqa: N802
        server: DeliveringApi = self.server  # type: ignore[assignment]
        now = time.time()
        body = self.read_body()
        parts = self.path.split("/")
        # /2018-06-01/runtime/invocation/{id}/response|error, /2018-06-01/runtime/init/error
        if self.path.endswith("/init/error"):
            server.init_error = body or b"init error"
            self.reply(202, b"{}")
            return
        if len(parts) == 6 and parts[3] == "invocation" and parts[5] in ("response", "error"):
            invocation = server.by_id.get(parts[4])
            if invocation is None:
                self.reply(400, b'{"errorMessage": "unknown request id"}')
                return
            invocation.done_at = now
            invocation.outcome = parts[5]
            invocation.body = body
            self.reply(202, b'{"status": "OK"}')
            invocation.done.set()
            return
        self.reply(404)


# --------------------------------------------------------------------------
# moto, through the local stack's launcher
# --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto(state_dir: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "local" / "stack") + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "lakeops_stack.moto_launcher", "--port", str(port),
         # No function is deployed: nothing is ever routed to this port.
         "--lambda-port", str(lambda_init.dead_local_endpoint().rsplit(":", 1)[1]),
         "--state-dir", str(state_dir)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the moto launcher exited with {process.returncode}:\n" + log_path.read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(f"{endpoint}/_lakeops/requests?since=999999999", timeout=1) as answer:
                json.load(answer)
                return process, endpoint
        except (OSError, ValueError):
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the moto launcher did not answer /_lakeops/requests within 60 s (is the request log in moto_launcher.py?)")


def request_log(endpoint: str, since: int = 0) -> tuple[int, list[dict]]:
    with urllib.request.urlopen(f"{endpoint}/_lakeops/requests?since={since}", timeout=30) as answer:
        payload = json.load(answer)
    return payload["next"], payload["requests"]


def reset_log(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/_lakeops/requests/reset", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=10).close()


def clients(endpoint: str):
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=16)
    return {name: session.client(name, endpoint_url=endpoint, config=config) for name in ("s3", "glue", "sns")}


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------


class MemoryWatch(threading.Thread):
    def __init__(self, pid: int, every_s: float = 0.01):
        super().__init__(daemon=True)
        self.pid = pid
        self.every_s = every_s
        self.stop = threading.Event()
        self.max_rss = 0
        self.hwm = 0

    def sample(self) -> None:
        try:
            status = lambda_init.read_status(self.pid)
        except OSError:
            return
        self.max_rss = max(self.max_rss, status.get("VmRSS", 0))
        self.hwm = max(self.hwm, status.get("VmHWM", 0))

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            self.sample()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def template_batch_size() -> int:
    text = (ROOT / "template.yaml").read_text()
    match = re.search(r"^  IngestBatchSize:\n(?:    .*\n)*?    Default: (\d+)", text, re.M)
    if not match:
        raise SystemExit("template.yaml: IngestBatchSize has no Default")
    return int(match.group(1))


def s3_key(path: str) -> tuple[str, str]:
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, urllib.parse.unquote(key)


def check_catalog(glue, database: str, objects: list[BenchObject]) -> list[str]:
    """What the catalog lacks or has wrong after the run (empty when right)."""
    problems = []
    expected: dict[str, tuple[set[str], set[str]]] = {}
    for obj in objects:
        cols, parts = expected.setdefault(obj.table, (set(), set()))
        cols.update(obj.columns)
        parts.add(obj.partition.split("=", 1)[1])
    for table, (cols, parts) in sorted(expected.items()):
        try:
            got = glue.get_table(DatabaseName=database, Name=table)["Table"]
        except glue.exceptions.EntityNotFoundException:
            problems.append(f"table {table} is missing")
            continue
        names = {c["Name"] for c in got["StorageDescriptor"]["Columns"]}
        if names != cols:
            problems.append(f"table {table}: columns {sorted(names)}, expected {sorted(cols)}")
        values = set()
        for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table):
            values.update(p["Values"][0] for p in page["Partitions"])
        if values != parts:
            problems.append(f"table {table}: {len(values)} partitions, expected {len(parts)}")
    return problems


def run(args: argparse.Namespace) -> dict:
    spec = json.loads(args.lake_spec.read_text())
    raw = next(layer for layer in spec["layers"] if layer["name"] == "raw")
    bucket, database = raw["bucket"], raw["database"]
    batch_size = args.batch_size or template_batch_size()

    sandbox = Path(tempfile.mkdtemp(prefix="lakeops-bench-ingest-"))
    moto = None
    process = None
    server = None
    try:
        print(f"==> generating {args.objects} objects ({len(TABLES)} tables x {args.partitions} partitions)", file=sys.stderr)
        t = time.monotonic()
        objects = generate(args.objects, args.partitions, args.seed, args.jitter)
        print(f"    {sum(len(o.data) for o in objects) / MB:.1f} MB in {time.monotonic() - t:.1f} s", file=sys.stderr)

        print("==> starting the moto launcher (local/stack) on a free port", file=sys.stderr)
        (sandbox / "moto").mkdir()
        moto, endpoint = start_moto(sandbox / "moto", sandbox / "moto.log")
        aws = clients(endpoint)
        aws["s3"].create_bucket(Bucket=bucket)
        aws["s3"].create_bucket(Bucket=CONFIG_BUCKET)
        aws["s3"].put_object(Bucket=CONFIG_BUCKET, Key=SPEC_KEY, Body=json.dumps(spec).encode())
        aws["glue"].create_database(DatabaseInput={"Name": database})
        topic = aws["sns"].create_topic(Name="lakeops-bench-catalog-alerts")["TopicArn"]

        print(f"==> putting {len(objects)} objects into s3://{bucket}", file=sys.stderr)
        t = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            for done, _ in enumerate(pool.map(lambda o: aws["s3"].put_object(Bucket=bucket, Key=o.key, Body=o.data), objects), 1):
                if done % 1000 == 0:
                    print(f"    {done}/{len(objects)}", file=sys.stderr, end="\r")
        print(f"    done in {time.monotonic() - t:.1f} s" + " " * 20, file=sys.stderr)
        reset_log(endpoint)

        batches = [objects[i:i + batch_size] for i in range(0, len(objects), batch_size)]
        invocations = []
        sequence = 0
        for batch in batches:
            payload, _ = sqs_event(bucket, batch, sequence)
            sequence += len(batch)
            invocations.append(Invocation(str(uuid.uuid4()), payload))

        zip_path = args.lambda_dir / "catalog-ingest" / "bootstrap.zip"
        if not zip_path.exists():
            raise SystemExit(f"{zip_path} is missing: cargo lambda build --release --x86-64 --output-format zip -p catalog-ingest")
        binary = lambda_init.extract_bootstrap(zip_path, sandbox / "catalog-ingest")

        server = DeliveringApi(("127.0.0.1", 0), DeliveringHandler)
        server.offers = queue.Queue()
        server.by_id = {i.request_id: i for i in invocations}
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env = lambda_init.function_env("catalog-ingest", f"127.0.0.1:{server.server_address[1]}", sandbox, endpoint, "")
        # As deployed (template.yaml): the spec is read from S3 on the first batch.
        del env["LAKE_SPEC"]
        env["LAKE_SPEC_URI"] = f"s3://{CONFIG_BUCKET}/{SPEC_KEY}"
        env["ALERT_TOPIC_ARN"] = topic
        env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(FUNCTION_MEMORY_MB)
        env["AWS_LAMBDA_FUNCTION_NAME"] = "lakeops-bench-catalog-ingest"
        if args.cache_ttl is not None:
            env["CATALOG_CACHE_TTL_SECONDS"] = str(args.cache_ttl)

        print(f"==> {len(batches)} batches of up to {batch_size} to the release bootstrap ({zip_path})", file=sys.stderr)
        log_path = sandbox / "function.log"
        with open(log_path, "wb") as output:
            process = subprocess.Popen([str(binary)], env=env, cwd=env["LAMBDA_TASK_ROOT"], stdin=subprocess.DEVNULL,
                                       stdout=output, stderr=subprocess.STDOUT)
        watch = MemoryWatch(process.pid)
        watch.start()
        deadline = time.monotonic() + 30
        while not server.init_done_at:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("catalog-ingest did not start:\n" + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.005)
        watch.sample()
        hwm_after_init = watch.hwm
        cpu_at_init = cpu_seconds(process.pid)

        failures = 0
        hwm_per_batch = []
        for index, invocation in enumerate(invocations):
            server.offers.put(invocation)
            while not invocation.done.wait(0.05):
                if process.poll() is not None:
                    raise SystemExit(f"catalog-ingest exited with {process.returncode} in batch {index}:\n"
                                     + log_path.read_text(errors="replace")[-3000:])
                if time.time() - (invocation.handed_at or time.time()) > FUNCTION_TIMEOUT_S:
                    raise SystemExit(f"batch {index} ran past the function timeout of {FUNCTION_TIMEOUT_S} s")
            watch.sample()
            hwm_per_batch.append(watch.hwm)
            if invocation.outcome != "response":
                raise SystemExit(f"batch {index} failed as a whole: {invocation.body[:2000]!r}")
            failed = json.loads(invocation.body or b"{}").get("batchItemFailures") or []
            failures += len(failed)
            print(f"    batch {index + 1}/{len(invocations)}: {len(batches[index])} objects in "
                  f"{invocation.done_at - invocation.handed_at:.2f} s, {len(failed)} failed, VmHWM {watch.hwm / MB:.1f} MB",
                  file=sys.stderr)
        watch.stop.set()
        watch.sample()
        cpu_used = cpu_seconds(process.pid) - cpu_at_init
        server.offers.put(None)

        _, requests = request_log(endpoint)
        theirs = [r for r in requests if r["client"] == "rust-sdk"]
        catalog_problems = check_catalog(aws["glue"], database, objects)
        if failures:
            catalog_problems.append(f"{failures} messages were reported as batch item failures")
        return measure(args, objects, batches, invocations, theirs, hwm_after_init, hwm_per_batch, watch,
                       catalog_problems, batch_size, log_path, cpu_used)
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        if server is not None:
            server.shutdown()
        if moto is not None and moto.poll() is None:
            os.killpg(moto.pid, signal.SIGTERM)
            try:
                moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(moto.pid, signal.SIGKILL)
                moto.wait()
        if args.keep:
            print(f"kept {sandbox}", file=sys.stderr)
        else:
            shutil.rmtree(sandbox, ignore_errors=True)


def measure(args, objects, batches, invocations, requests, hwm_after_init, hwm_per_batch, watch,
            catalog_problems, batch_size, log_path, cpu_used) -> dict:
    formats = {o.key: o.format for o in objects}
    windows = [(i.handed_at, i.done_at) for i in invocations]

    def batch_of(request: dict) -> int | None:
        for index, (start, end) in enumerate(windows):
            if start <= request["start"] <= end:
                return index
        return None

    glue_ops: dict[str, int] = {}
    glue_per_batch = [0] * len(batches)
    outside = []
    reads: dict[str, list[str | None]] = {}
    other_gets = []
    s3_ops: dict[str, int] = {}
    emulator_per_batch: list[list[tuple[float, float]]] = [[] for _ in batches]
    for request in requests:
        index = batch_of(request)
        if index is None:
            outside.append(f"{request['service']}:{request['operation']}")
        else:
            emulator_per_batch[index].append((max(request["start"], windows[index][0]), min(request["end"], windows[index][1])))
        if request["service"] == "glue":
            glue_ops[request["operation"]] = glue_ops.get(request["operation"], 0) + 1
            if index is not None:
                glue_per_batch[index] += 1
        elif request["service"] == "s3":
            s3_ops[request["operation"]] = s3_ops.get(request["operation"], 0) + 1
            if request["operation"] == "GetObject":
                _, key = s3_key(request["path"])
                if key in formats:
                    reads.setdefault(key, []).append(request["range"])
                else:
                    other_gets.append(f"{request['path']} ({request['range']})")

    minimum = minimum_glue_calls(batches)
    single_writer = minimum_glue_calls(batches, trust_earlier_batches=True)
    glue_total = sum(glue_ops.values())
    served_ms: dict[str, list[float]] = {}
    for request in requests:
        served_ms.setdefault(f"{request['service']}:{request['operation']}", []).append(
            (request["end"] - request["start"]) * 1000)
    moto_ms = {
        op: {"count": len(v), "median": lambda_init.quantile(v, 0.5), "p90": lambda_init.quantile(v, 0.9)}
        for op, v in sorted(served_ms.items())
    }
    read_stats = {}
    for fmt in MAX_READS:
        counts = [len(reads.get(o.key, [])) for o in objects if o.format == fmt]
        ranged = all(r is not None for o in objects if o.format == fmt for r in reads.get(o.key, []))
        read_stats[fmt] = {
            "objects": len(counts),
            "reads": sum(counts),
            "max_per_object": max(counts, default=0),
            "unread": sum(1 for c in counts if c == 0),
            "all_ranged": ranged,
            "over_limit": sum(1 for c in counts if c > MAX_READS[fmt]),
        }
    batch_wall = [end - start for start, end in windows]
    emulator = [lambda_init.union_length(spans) for spans in emulator_per_batch]
    first, last = windows[0][0], windows[-1][1]
    delivery_wall = last - first
    in_function = sum(batch_wall)
    waiting = sum(emulator)
    results = {
        "when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "objects": len(objects),
        "bytes": sum(len(o.data) for o in objects),
        "tables": len(TABLES),
        "partitions": len({(o.table, o.partition) for o in objects}),
        "by_format": {fmt: sum(1 for o in objects if o.format == fmt) for fmt in MAX_READS},
        "batch_size": batch_size,
        "batches": len(batches),
        "seed": args.seed,
        "jitter": args.jitter,
        "cache_ttl": args.cache_ttl,
        "wall_s": delivery_wall,
        "in_function_s": in_function,
        "emulator_s": waiting,
        "our_code_s": in_function - waiting,
        "function_cpu_s": cpu_used,
        "between_batches_s": delivery_wall - in_function,
        "objects_per_s": len(objects) / delivery_wall,
        "objects_per_function_s": len(objects) / in_function,
        "batch_s": batch_wall,
        "batch_emulator_s": emulator,
        "glue": {"total": glue_total, "by_operation": glue_ops, "per_batch": glue_per_batch},
        "minimum": minimum,
        "single_writer_bound": single_writer,
        "moto_ms": moto_ms,
        "glue_ratio": glue_total / minimum["total"] if minimum["total"] else float("inf"),
        "s3": {"by_operation": s3_ops, "reads": read_stats, "other_gets": other_gets},
        "requests_outside_batches": outside,
        "rss": {"vm_hwm_after_init": hwm_after_init, "vm_hwm": watch.hwm, "vm_rss_max": watch.max_rss,
                "vm_hwm_per_batch": hwm_per_batch},
        "catalog_problems": catalog_problems,
        "machine": lambda_init.machine(),
        "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
        "function_log_tail": log_path.read_text(errors="replace")[-2000:],
    }
    results["checks"] = {
        f"Glue calls ≤ minimum + {GLUE_MARGIN:.0%}": glue_total <= minimum["total"] * (1 + GLUE_MARGIN),
        "peak RSS ≤ 64 MB": watch.hwm <= RSS_TARGET_BYTES,
        "≤ 1 ranged read per text object": all(
            read_stats[f]["max_per_object"] <= 1 and read_stats[f]["all_ranged"] for f in ("csv", "jsonl")),
        "≤ 2 ranged reads per Parquet object": read_stats["parquet"]["max_per_object"] <= 2 and read_stats["parquet"]["all_ranged"],
        "every object read and cataloged": not catalog_problems and all(
            s["unread"] == 0 for s in read_stats.values()),
    }
    return results


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def render(r: dict) -> str:
    m = r["machine"]
    g = r["glue"]
    mins = r["minimum"]
    ops = sorted(set(g["by_operation"]) | {k for k, v in mins["by_operation"].items() if v})
    op_rows = [f"| {op} | {g['by_operation'].get(op, 0)} | {mins['by_operation'].get(op, 0)} |" for op in ops]
    reads = r["s3"]["reads"]
    read_rows = [
        f"| {fmt} | {s['objects']} | {s['reads']} | {s['max_per_object']} | {MAX_READS[fmt]} | "
        f"{'yes' if s['all_ranged'] else '**no**'} |"
        for fmt, s in reads.items()
    ]
    checks = [f"| {name} | {verdict(ok)} |" for name, ok in r["checks"].items()]
    batches_with_glue = sum(1 for c in g["per_batch"] if c)
    lines = [
        BEGIN_MARK,
        "",
        f"Measured {r['when']}: {r['objects']} objects ({r['by_format']['csv']} CSV, {r['by_format']['jsonl']} JSON lines, "
        f"{r['by_format']['parquet']} Parquet; {r['bytes'] / MB:.1f} MB) in {r['partitions']} partitions of {r['tables']} tables, "
        f"{r['batches']} batches of up to {r['batch_size']} messages, one warm container, seed {r['seed']}"
        + (f", CATALOG_CACHE_TTL_SECONDS={r['cache_ttl']}" if r["cache_ttl"] is not None else "") + ". "
        f"Load average after: {' '.join(r['loadavg_after'])}.",
        "",
        "| target | result |",
        "|---|:-:|",
        *checks,
        "",
        f"- **throughput**: {r['objects_per_s']:.0f} objects/s over {r['wall_s']:.2f} s of delivery "
        f"({r['objects_per_function_s']:.0f} objects/s of function time)",
        f"- **time**: {r['in_function_s']:.2f} s in the function: {r['emulator_s']:.2f} s with at least one request in moto "
        f"({r['emulator_s'] / r['in_function_s']:.0%}), {r['our_code_s']:.2f} s with none, i.e. only our code running "
        f"({r['our_code_s'] / r['in_function_s']:.0%}); the function process used {r['function_cpu_s']:.2f} s of CPU "
        f"({r['function_cpu_s'] / r['in_function_s']:.0%} of its wall time, user + system); "
        f"{r['between_batches_s']:.2f} s in the harness between batches",
        f"- **Glue calls**: {g['total']} against a minimum of {mins['total']} "
        f"({(r['glue_ratio'] - 1) * 100:+.1f}%); {batches_with_glue} of {r['batches']} batches made any. "
        f"The bound of a single writer that no one else changes (trusting what earlier batches registered, "
        f"which catalog-ingest cannot: see *The minimum number of Glue calls*) would be {r['single_writer_bound']['total']}",
        f"- **peak RSS** (VmHWM): {r['rss']['vm_hwm'] / MB:.2f} MB "
        f"(after init: {r['rss']['vm_hwm_after_init'] / MB:.2f} MB; largest VmRSS sampled every 10 ms: {r['rss']['vm_rss_max'] / MB:.2f} MB)",
        f"- **S3 requests of the function**: {', '.join(f'{k} {v}' for k, v in sorted(r['s3']['by_operation'].items()))} "
        f"(of which not a lake object: {len(r['s3']['other_gets'])}, the lake spec)",
        "- **moto's time per request** (median / p90, ms, as its request log records them): "
        + "; ".join(f"{op} {v['median']:.1f} / {v['p90']:.1f}" for op, v in r["moto_ms"].items()),
        "",
        "| Glue operation | calls | minimum |",
        "|---|--:|--:|",
        *op_rows,
        f"| **total** | **{g['total']}** | **{mins['total']}** |",
        "",
        "| format | objects | ranged GETs | most per object | allowed | all with `Range` |",
        "|---|--:|--:|--:|--:|:-:|",
        *read_rows,
        "",
        f"Glue calls per batch: {' '.join(str(c) for c in g['per_batch'])} (minimum: {' '.join(str(c) for c in mins['per_batch'])}).",
        f"Seconds per batch: {' '.join(f'{s:.2f}' for s in r['batch_s'])}.",
        "",
        f"Machine: {m['cpu']}, `nproc` = {m['nproc']}; {m['kernel']}; {m['rustc']}; source `{m['source']}`.",
        "",
        f"Reproduce: `python3 bench/ingest.py --lambda-dir <target>/lambda --objects {r['objects']} --seed {r['seed']}"
        + (f" --cache-ttl {r['cache_ttl']}" if r["cache_ttl"] is not None else "") + "`.",
        "",
        END_MARK,
    ]
    if r["catalog_problems"]:
        lines.insert(-2, "Catalog problems: " + "; ".join(r["catalog_problems"]))
        lines.insert(-2, "")
    return "\n".join(lines)


def write_markdown(path: Path, block: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN_MARK in text and END_MARK in text:
        head = text.split(BEGIN_MARK, 1)[0]
        tail = text.split(END_MARK, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n## catalog-ingest throughput\n\n" + block + "\n"
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lambda-dir", type=Path, required=True, help="target/lambda of cargo lambda build --release")
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=10, help="partitions per table (5 tables)")
    parser.add_argument("--batch-size", type=int, help="default: IngestBatchSize of template.yaml")
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--jitter", type=float, default=0.01,
                        help="spread of the arrival order, as a fraction of the run (standard deviation)")
    parser.add_argument("--cache-ttl", type=int,
                        help="CATALOG_CACHE_TTL_SECONDS of the function (default: its own, 300; 0 = no cache)")
    parser.add_argument("--lake-spec", type=Path, default=ROOT / "events/lake-spec.json")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", type=Path, help="rewrite the catalog-ingest block of this file (BENCHMARKS.md)")
    parser.add_argument("--keep", action="store_true", help="keep the sandbox (function and moto logs)")
    args = parser.parse_args()
    if args.objects < len(TABLES) * args.partitions:
        parser.error(f"--objects must be at least {len(TABLES) * args.partitions}")
    try:
        import boto3  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as missing:
        raise SystemExit(f"{missing}: run with the project venv (.venv/bin/python) or through ./dev bench")

    results = run(args)
    block = render(results)
    print(block)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    if args.markdown:
        write_markdown(args.markdown, block)
        print(f"\nwrote {args.markdown}", file=sys.stderr)
    missed = [name for name, ok in results["checks"].items() if not ok]
    if missed:
        print("targets missed: " + "; ".join(missed), file=sys.stderr)
        for problem in results["catalog_problems"]:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("all targets met", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
