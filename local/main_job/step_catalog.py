"""Main job: set up the lake (Glue, Lake Formation locations, Athena) through the
lake setup state machine, then drop sample sensor data into the layer buckets
and watch catalog-ingest catalogue it through S3 -> SNS -> SQS -> Lambda."""
from __future__ import annotations

import gzip
import io
import json
import time

from main_job.__main__ import EVENTS


def lake_spec(job) -> dict:
    """The sample spec, with the deployed names of this stack."""
    spec = json.loads((EVENTS / "lake-spec.json").read_text())
    resources = job.outputs["resources"]
    buckets = {
        "raw": "RawBucket",
        "schematized": "SchematizedBucket",
        "filtered": "FilteredBucket",
        "emergency": "EmergencyBucket",
        "curated": "CuratedBucket",
    }
    for layer in spec["layers"]:
        layer["bucket"] = resources[buckets[layer["name"]]]
        crawler = layer.get("crawler") or {}
        if "event_queue_arn" in crawler:
            # The layer's own queue (its bucket's events topic feeds it): <Layer>CrawlerEventQueueArn.
            crawler["event_queue_arn"] = job.outputs["outputs"][f"{buckets[layer['name']].removesuffix('Bucket')}CrawlerEventQueueArn"]
    spec["crawler_role_arn"] = job.outputs["outputs"]["CrawlerRoleArn"]
    results = resources["AthenaResultsBucket"]
    for workgroup in spec["athena"]["workgroups"]:
        workgroup["result_location"] = f"s3://{results}/{workgroup['profile']}/"
    return spec


def sample_objects() -> list[tuple[str, str, bytes]]:
    """(layer, key, body): sensor readings in every format catalog-ingest reads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv = "sensor_id,reading_time,temperature,humidity\ns-001,2026-11-21T06:00:00Z,21.5,40\ns-002,2026-11-21T06:00:00Z,19.25,55\n"
    jsonl = "\n".join(
        json.dumps({"sensor_id": f"s-00{i}", "battery": {"volts": 3.1 + i / 10, "low": False}, "tags": ["roof", "north"]})
        for i in range(3)
    )
    table = pa.table({"sensor_id": ["s-001", "s-002"], "vibration_hz": [50.5, 49.9], "samples": [1200, 1180]})
    parquet = io.BytesIO()
    pq.write_table(table, parquet)
    return [
        ("raw", "temperature/date=2026-11-21/hour=06/readings 0600.csv", csv.encode()),
        ("raw", "temperature/date=2026-11-21/hour=07/readings 0700.csv.gz", gzip.compress(csv.encode())),
        ("raw", "battery/date=2026-11-21/status.jsonl", jsonl.encode()),
        ("curated", "vibration/date=2026-11-21/summary.parquet", parquet.getvalue()),
        ("emergency", "alarms/date=2026-11-21/overheat.csv", b"sensor_id,temperature\ns-009,95.0\n"),
    ]


def run_setup(job) -> str:
    spec = lake_spec(job)
    config_bucket = job.resource("ConfigBucket")
    job.client("s3").put_object(Bucket=config_bucket, Key="lake/spec.json", Body=json.dumps(spec, indent=2).encode())
    job.progress(f"lake spec uploaded to s3://{config_bucket}/lake/spec.json")
    result = job.run_state_machine(
        "LakeSetupStateMachine",
        {"catalog": {"mode": "apply", "spec_uri": f"s3://{config_bucket}/lake/spec.json"}},
        "lake setup",
    )
    summary = result["catalog"]["summary"]
    for change in result["catalog"]["changes"]:
        job.progress(f"{change['action']:>9} {change['resource']:<18} {change['name']}")
    return f"catalog setup: {summary}"


def run_ingest(job) -> str:
    s3 = job.client("s3")
    glue = job.client("glue")
    buckets = {layer["name"]: layer for layer in lake_spec(job)["layers"]}
    objects = sample_objects()
    for layer, key, body in objects:
        s3.put_object(Bucket=buckets[layer]["bucket"], Key=key, Body=body)
        job.progress(f"dropped s3://{buckets[layer]['bucket']}/{key} ({len(body)} bytes)")
    expected = {(buckets[layer]["database"], key.split("/")[0]) for layer, key, _ in objects}
    started = time.time()
    found: dict = {}
    while time.time() - started < 120 and len(found) < len(expected):
        for database, table in expected - set(found):
            try:
                found[(database, table)] = glue.get_table(DatabaseName=database, Name=table)["Table"]
                job.progress(f"{database}.{table} catalogued after {time.time() - started:.1f}s")
            except glue.exceptions.EntityNotFoundException:
                pass
        time.sleep(0.5)
    missing = expected - set(found)
    if missing:
        raise RuntimeError(f"not catalogued within 120 s: {sorted(missing)}")
    print()
    for (database, name), table in sorted(found.items()):
        columns = ", ".join(f"{c['Name']} {c['Type']}" for c in table["StorageDescriptor"]["Columns"])
        keys = ", ".join(k["Name"] for k in table.get("PartitionKeys", []))
        partitions = glue.get_partitions(DatabaseName=database, TableName=name)["Partitions"]
        print(f"  {database}.{name}  ({columns})  partitioned by [{keys}]: {len(partitions)} partition(s)")
    return f"{len(objects)} objects -> {len(found)} tables in {time.time() - started:.1f}s"


STEPS = [
    ("Lake setup (catalog-setup)", "catalog-setup", run_setup),
    ("Catalogue dropped files (catalog-ingest)", "catalog-ingest", run_ingest),
]
