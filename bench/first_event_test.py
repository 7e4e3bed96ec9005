"""Tests of bench/first_event.py's harness, without a stack: the Runtime API
delivering one event to a real process, and the report helpers.

    .venv/bin/python -m pytest -q bench/first_event_test.py

The processes under test here are small Python scripts that speak the Lambda
Runtime API the way a Rust runtime does (GET next, POST response or error, GET
next again).
"""

from __future__ import annotations

import sys
import textwrap
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import first_event  # noqa: E402
import lambda_init  # noqa: E402

RUNTIME_SCRIPT = """\
#!{python}
import json, os, sys, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
with urllib.request.urlopen(api + "next") as answer:
    request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
    assert answer.headers["Lambda-Runtime-Deadline-Ms"]
    assert answer.headers["Lambda-Runtime-Invoked-Function-Arn"] == "arn:aws:lambda:us-east-1:123456789012:function:f"
    event = json.loads(answer.read())
{behaviour}
"""

ANSWER = """\
body = json.dumps({"echo": event, "ok": True}).encode()
urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", data=body, method="POST")).read()
urllib.request.urlopen(api + "next")  # held open by the harness until it kills us
"""

FAIL = """\
body = json.dumps({"errorType": "Lakeops.Terminal", "errorMessage": "no"}).encode()
urllib.request.urlopen(urllib.request.Request(api + request_id + "/error", data=body, method="POST")).read()
urllib.request.urlopen(api + "next")
"""

CRASH = """\
sys.exit(3)
"""


@pytest.fixture()
def server():
    api = lambda_init.RuntimeApi(("127.0.0.1", 0), first_event.EventHandler)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    yield api
    api.shutdown()


def subject(tmp_path: Path, server, behaviour: str) -> first_event.Subject:
    script = tmp_path / "f" / "bootstrap"
    script.parent.mkdir()
    script.write_text(RUNTIME_SCRIPT.format(python=sys.executable, behaviour=textwrap.indent(behaviour, "")))
    script.chmod(0o755)
    env = lambda_init.lambda_runtime_env("f", f"127.0.0.1:{server.server_address[1]}", tmp_path)
    return first_event.Subject(
        name="f",
        binary=script,
        env=env,
        deployed_name="f",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        timeout_s=10,
    )


def test_delivers_the_event_and_times_the_answer(tmp_path, server):
    sample = first_event.measure_event(server, subject(tmp_path, server, ANSWER), {"n": 1}, tmp_path / "log", 10.0, None)
    assert sample["response"] == {"echo": {"n": 1}, "ok": True}
    assert 0 < sample["init_ms"] < sample["total_ms"]
    assert 0 < sample["event_ms"] < sample["total_ms"]
    # Peak RSS read twice: at init and once idle again after the answer.
    assert sample["vm_hwm_init"] > 0
    assert sample["vm_hwm"] >= sample["vm_hwm_init"]
    assert sample["aws_calls"] == 0 and sample["databricks_calls"] == 0


def test_an_error_answer_fails_loudly(tmp_path, server):
    with pytest.raises(first_event.EventFailed, match="Lakeops.Terminal"):
        first_event.measure_event(server, subject(tmp_path, server, FAIL), {"n": 1}, tmp_path / "log", 10.0, None)


def test_a_process_that_dies_with_the_event_fails_loudly(tmp_path, server):
    with pytest.raises(lambda_init.InitFailed, match="exited with 3 while waiting for its answer to the event"):
        first_event.measure_event(server, subject(tmp_path, server, CRASH), {"n": 1}, tmp_path / "log", 10.0, None)


def test_the_section_goes_before_what_is_not_measured_and_is_rewritten_in_place(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n## Results\n\nold\n\n## What the harness does not measure yet\n\n- x\n")
    first_event.write_section(doc, f"{first_event.BEGIN_MARK}\none\n{first_event.END_MARK}")
    first_event.write_section(doc, f"{first_event.BEGIN_MARK}\ntwo\n{first_event.END_MARK}")
    text = doc.read_text()
    assert text.count(first_event.SECTION_TITLE) == 1
    assert "one" not in text and "two" in text
    assert text.index(first_event.SECTION_TITLE) < text.index("## What the harness does not measure yet")
    assert text.index("## Results") < text.index(first_event.SECTION_TITLE)


def test_sqs_record_is_what_lambda_hands_a_function():
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "r-1",
        "Body": '{"Records": []}',
        "MD5OfBody": "d41d8cd98f00b204e9800998ecf8427e",
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "s", "Other": "x"},
    }
    record = first_event.sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
    assert record["messageId"] == "m-1" and record["receiptHandle"] == "r-1" and record["body"] == '{"Records": []}'
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(":q")
    assert record["attributes"] == {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "s"}


def test_spread_reports_median_quartiles_and_range():
    stats = first_event.spread([5.0, 1.0, 3.0, 2.0, 4.0])
    assert stats == {"median": 3.0, "p25": 2.0, "p75": 4.0, "min": 1.0, "max": 5.0}


def test_busy_ms_counts_overlapping_calls_once():
    calls = [{"start": 10.000, "end": 10.010}, {"start": 10.005, "end": 10.020}, {"start": 10.100, "end": 10.101}]
    assert first_event.busy_ms(calls) == pytest.approx(21.0)
    assert first_event.busy_ms([]) == 0.0
