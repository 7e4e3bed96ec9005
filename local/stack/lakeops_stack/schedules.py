"""`fire-schedule`: run a schedule's target now, with its Input, as EventBridge Scheduler would."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from lakeops_stack.state import StackError

Progress = Callable[[str], None]


def find_schedule(schedules: dict[str, Any], wanted: str) -> tuple[str, dict[str, Any]]:
    if wanted in schedules:
        return wanted, schedules[wanted]
    matches = [(name, s) for name, s in schedules.items() if s.get("logical_id") == wanted or name.split("|")[-1] == wanted]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(f"{name} ({s.get('logical_id')})" for name, s in sorted(schedules.items())) or "none"
    raise StackError(f"no schedule named {wanted!r} in the deployed template; known schedules: {known}")


def scheduled_event(name: str, arn: str, region: str, account: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn],
        "detail": {},
    }


def fire(client: Callable[[str], Any], schedules: dict[str, Any], wanted: str, region: str, account: str, wait: bool, progress: Progress) -> dict[str, Any]:
    name, schedule = find_schedule(schedules, wanted)
    targets: list[dict[str, Any]]
    if schedule["kind"] == "scheduler":
        target = schedule["target"]
        # Scheduler sends Input verbatim; without Input the payload is "{}" for Lambda/SFN.
        targets = [{"Arn": target["Arn"], "Input": target.get("Input")}]
    else:
        targets = []
        for target in schedule.get("targets", []):
            payload = target.get("Input")
            if payload is None:
                payload = json.dumps(scheduled_event(name, target["Arn"], region, account))
            targets.append({"Arn": target["Arn"], "Input": payload})
    results = []
    for target in targets:
        results.append(fire_target(client, target["Arn"], target.get("Input") or "{}", wait, progress))
    return {"schedule": name, "logical_id": schedule.get("logical_id"), "results": results}


def fire_target(client: Callable[[str], Any], arn: str, payload: str, wait: bool, progress: Progress) -> dict[str, Any]:
    service = arn.split(":")[2]
    if service == "lambda":
        progress(f"invoking {arn}")
        response = client("lambda").invoke(FunctionName=arn, Payload=payload.encode())
        body = response["Payload"].read().decode()
        result = {"target": arn, "status": "FunctionError" if response.get("FunctionError") else "Succeeded"}
        try:
            result["payload"] = json.loads(body)
        except ValueError:
            result["payload"] = body
        return result
    if service == "states":
        sfn = client("stepfunctions")
        execution = sfn.start_execution(stateMachineArn=arn, input=payload)["executionArn"]
        progress(f"started execution {execution}")
        result: dict[str, Any] = {"target": arn, "executionArn": execution}
        if wait:
            started = time.monotonic()
            last_report = 0.0
            while True:
                described = sfn.describe_execution(executionArn=execution)
                if described["status"] != "RUNNING":
                    break
                if time.monotonic() - last_report > 5:
                    progress(f"execution running for {time.monotonic() - started:.0f}s")
                    last_report = time.monotonic()
                time.sleep(0.5)
            result["status"] = described["status"]
            for key in ("output", "error", "cause"):
                if described.get(key) is not None:
                    result[key] = described[key]
        return result
    if service == "sqs":
        sqs = client("sqs")
        parts = arn.split(":")
        url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=payload)
        return {"target": arn, "status": "Sent"}
    raise StackError(f"fire-schedule does not support targets of service {service!r} ({arn})")
