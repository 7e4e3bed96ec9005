"""Tests of the catalog-ingest throughput benchmark's pure logic (bench/ingest.py): the
minimum number of Glue calls, the generated objects, the interval arithmetic of the time
split. Run: .venv/bin/python -m pytest -q bench/ingest_test.py"""
from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest  # noqa: E402


def obj(table, partition, columns=("a",)):
    return ingest.BenchObject(table, "csv", f"dt={partition}", f"{table}/dt={partition}/x.csv", tuple(columns), 0.0)


def test_minimum_counts_learning_creating_and_new_partitions_only():
    batches = [
        # t: new table (read + create), 2 new partitions (1 call); u: new table, 1 partition.
        [obj("t", 1), obj("t", 2), obj("t", 1), obj("u", 1)],
        # Nothing new anywhere: no call.
        [obj("t", 2), obj("u", 1)],
        # t: one new partition; u: a new column (1 update) and nothing else.
        [obj("t", 3), obj("u", 1, ("a", "b"))],
        # A column already added is not new again.
        [obj("u", 1, ("a", "b")), obj("u", 1, ("a",))],
    ]
    single_writer = ingest.minimum_glue_calls(batches, trust_earlier_batches=True)
    assert single_writer["by_operation"] == {"GetTable": 2, "CreateTable": 2, "UpdateTable": 1, "BatchCreatePartition": 3}
    assert single_writer["per_batch"] == [6, 0, 2, 0]
    assert single_writer["total"] == 8


def test_minimum_registers_every_partition_of_every_batch():
    # What an earlier batch registered may have been dropped by another
    # instance since: each batch confirms its partitions, one call per table.
    batches = [
        [obj("t", 1), obj("t", 2), obj("t", 1), obj("u", 1)],
        [obj("t", 2), obj("u", 1)],
        [obj("t", 3), obj("u", 1, ("a", "b"))],
        [obj("u", 1, ("a", "b")), obj("u", 1, ("a",))],
    ]
    minimum = ingest.minimum_glue_calls(batches)
    assert minimum["by_operation"] == {"GetTable": 2, "CreateTable": 2, "UpdateTable": 1, "BatchCreatePartition": 7}
    assert minimum["per_batch"] == [6, 2, 3, 1]
    assert minimum["total"] == 12


def test_minimum_folds_first_batch_columns_into_the_creation():
    minimum = ingest.minimum_glue_calls([[obj("t", 1, ("a",)), obj("t", 1, ("a", "b"))]])
    assert minimum["by_operation"]["UpdateTable"] == 0


def test_minimum_creates_partitions_a_hundred_per_call():
    batch = [obj("t", i) for i in range(250)]
    minimum = ingest.minimum_glue_calls([batch])
    assert minimum["by_operation"]["BatchCreatePartition"] == 3


def test_generated_objects_are_spread_as_documented():
    objects = ingest.generate(500, 10, seed=7, jitter=0.01)
    assert len(objects) == 500
    assert len({(o.table, o.partition) for o in objects}) == 50
    assert {o.format for o in objects} == {"csv", "jsonl", "parquet"}
    assert len({o.key for o in objects}) == 500
    assert [o.arrival for o in objects] == sorted(o.arrival for o in objects)
    # Deterministic from the seed.
    again = ingest.generate(500, 10, seed=7, jitter=0.01)
    assert [o.key for o in again] == [o.key for o in objects]
    # Parquet objects are Parquet, text objects have the columns they claim.
    for o in objects:
        if o.format == "parquet":
            assert o.data[:4] == b"PAR1" and o.data[-4:] == b"PAR1"
        elif o.format == "jsonl":
            assert set(json.loads(o.data.splitlines()[0])) == set(o.columns)
        else:
            assert o.data.splitlines()[0].decode().split(",") == list(o.columns)
    # The events table gains its new field late in the run.
    events = [o for o in objects if o.table == "events"]
    assert any("source" in o.columns for o in events) and any("source" not in o.columns for o in events)
    assert all(o.written >= 0.6 for o in events if "source" in o.columns)


def test_notifications_encode_keys_as_s3_does():
    o = ingest.BenchObject("t", "csv", "dt=1", "t/dt=1/a b+c.csv", ("a",), 0.0, data=b"a\n1\n")
    record = json.loads(ingest.notification("bucket", o, 0.0, 1))["Records"][0]
    assert record["s3"]["object"]["key"] == "t/dt%3D1/a+b%2Bc.csv"
    assert urllib.parse.unquote_plus(record["s3"]["object"]["key"]) == o.key
    payload, ids = ingest.sqs_event("bucket", [o, o], 0)
    assert len(json.loads(payload)["Records"]) == 2 and len(set(ids)) == 2


def test_union_length_merges_overlaps():
    assert ingest.lambda_init.union_length([]) == 0
    assert ingest.lambda_init.union_length([(0, 1), (2, 3)]) == 2
    assert ingest.lambda_init.union_length([(0, 2), (1, 3), (5, 6)]) == 4
    assert ingest.lambda_init.union_length([(0, 10), (1, 2)]) == 10


def test_batch_size_comes_from_the_template():
    assert ingest.template_batch_size() == 500


def test_s3_keys_from_paths():
    assert ingest.s3_key("/bucket/t/dt%3D1/a%20b.csv") == ("bucket", "t/dt=1/a b.csv")


def test_some_parquet_footers_outgrow_the_first_tail_read():
    import random
    import struct

    metrics = next(t for t in ingest.TABLES if t.format == "parquet")
    wide = ingest.encode(metrics, 1, 3000, random.Random(1), row_group=5)
    assert struct.unpack("<I", wide[-8:-4])[0] > 64 * 1024
    usual = ingest.encode(metrics, 1, 300, random.Random(1))
    assert struct.unpack("<I", usual[-8:-4])[0] < 64 * 1024
