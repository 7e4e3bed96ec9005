"""Static checks of the project's template.yaml that checkov has no rule for.

checkov (`./dev test`, local/checkov.sh) does not check that a function's log group exists with a
retention, that state machines log, that every bucket refuses plain HTTP, or that both consumers
of a layer's S3 events get them (S3 refuses overlapping notification configurations). These do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lakeops_stack.cfn import load_yaml
from lakeops_stack.sam_translate import translate_file

TEMPLATE_PATH = Path(__file__).resolve().parents[3] / "template.yaml"
TEMPLATE = load_yaml(TEMPLATE_PATH.read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
LAYERS = ["Raw", "Schematized", "Filtered", "Emergency", "Curated"]


def of_type(kind: str) -> dict[str, Any]:
    return {lid: r for lid, r in RESOURCES.items() if r["Type"] == kind}


def ref(value: Any) -> str:
    assert isinstance(value, dict) and list(value) == ["Ref"], value
    return value["Ref"]


def sub(value: Any) -> str:
    assert isinstance(value, dict) and list(value) == ["Fn::Sub"] and isinstance(value["Fn::Sub"], str), value
    return value["Fn::Sub"]


@pytest.mark.parametrize("function_id", sorted(of_type("AWS::Serverless::Function")))
def test_every_function_logs_to_its_own_group_with_retention(function_id: str) -> None:
    function = RESOURCES[function_id]
    name = sub(function["Properties"]["FunctionName"])
    group_id = ref(function["Properties"]["LoggingConfig"]["LogGroup"])
    group = RESOURCES[group_id]
    assert group["Type"] == "AWS::Logs::LogGroup"
    # The name Lambda writes to, so nothing else creates it without a retention.
    assert sub(group["Properties"]["LogGroupName"]) == f"/aws/lambda/{name}"
    assert group["Properties"]["RetentionInDays"] > 0
    assert group.get("Condition") == function.get("Condition")


@pytest.mark.parametrize("machine_id", sorted(of_type("AWS::Serverless::StateMachine")))
def test_every_state_machine_logs_to_a_group_with_retention(machine_id: str) -> None:
    machine = RESOURCES[machine_id]
    logging = machine["Properties"]["Logging"]
    assert logging["Level"] in ("ALL", "ERROR", "FATAL")
    (destination,) = logging["Destinations"]
    group_id, attribute = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"]
    group = RESOURCES[group_id]
    assert (group["Type"], attribute) == ("AWS::Logs::LogGroup", "Arn")
    assert sub(group["Properties"]["LogGroupName"]).startswith("/aws/vendedlogs/states/")
    assert group["Properties"]["RetentionInDays"] > 0
    assert group.get("Condition") == machine.get("Condition")


@pytest.mark.parametrize("bucket_id", sorted(of_type("AWS::S3::Bucket")))
def test_every_bucket_refuses_plain_http(bucket_id: str) -> None:
    policies = [r for r in of_type("AWS::S3::BucketPolicy").values() if ref(r["Properties"]["Bucket"]) == bucket_id]
    assert len(policies) == 1, f"{bucket_id} has {len(policies)} bucket policies"
    (policy,) = policies
    assert policy.get("Condition") == RESOURCES[bucket_id].get("Condition")
    deny = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny, f"{bucket_id}: no Deny statement"
    statement = deny[0]
    assert statement["Principal"] == "*" and statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [{"Fn::GetAtt": [bucket_id, "Arn"]}, {"Fn::Sub": f"${{{bucket_id}.Arn}}/*"}]


@pytest.mark.parametrize("bucket_id", ["RawBucket", "EmergencyBucket"])
def test_source_layers_are_versioned_and_old_versions_expire(bucket_id: str) -> None:
    props = RESOURCES[bucket_id]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert any("NoncurrentVersionExpiration" in rule for rule in props["LifecycleConfiguration"]["Rules"])


def subscriptions_of(topic_id: str) -> dict[str, dict[str, Any]]:
    """Queue logical id -> subscription properties, for the sqs subscriptions of a topic."""
    found = {}
    for sub_resource in of_type("AWS::SNS::Subscription").values():
        props = sub_resource["Properties"]
        if ref(props["TopicArn"]) == topic_id and props["Protocol"] == "sqs":
            queue_id, attribute = props["Endpoint"]["Fn::GetAtt"]
            assert attribute == "Arn"
            found[queue_id] = props
    return found


def queue_allows_topic(queue_id: str, topic_id: str) -> bool:
    for policy in of_type("AWS::SQS::QueuePolicy").values():
        if {"Ref": queue_id} not in policy["Properties"]["Queues"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            sources = statement.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn")
            sources = sources if isinstance(sources, list) else [sources]
            if statement["Principal"] == {"Service": "sns.amazonaws.com"} and {"Ref": topic_id} in sources:
                return True
    return False


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_events_reach_catalog_ingest_and_the_layer_crawler(layer: str) -> None:
    bucket = RESOURCES[f"{layer}Bucket"]
    notifications = bucket["Properties"]["NotificationConfiguration"]
    # S3 refuses two configurations with overlapping event types and prefixes: one
    # destination (the layer's topic) per event type, no queue configuration beside it.
    assert set(notifications) == {"TopicConfigurations"}
    events = [c["Event"] for c in notifications["TopicConfigurations"]]
    assert sorted(events) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    topic_id = {ref(c["Topic"]) for c in notifications["TopicConfigurations"]}.pop()
    assert RESOURCES[topic_id]["Type"] == "AWS::SNS::Topic"
    # S3 checks the topic policy when the notification is configured.
    assert f"{layer}EventsTopicPolicy" in (bucket.get("DependsOn") or [])
    topic_policy = RESOURCES[f"{layer}EventsTopicPolicy"]["Properties"]
    assert topic_policy["Topics"] == [{"Ref": topic_id}]
    (statement,) = topic_policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"} and statement["Action"] == "sns:Publish"
    bucket_name = sub(bucket["Properties"]["BucketName"])
    assert sub(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == f"arn:${{AWS::Partition}}:s3:::{bucket_name}"

    crawler_queue = f"{layer}CrawlerEventQueue"
    subscribed = subscriptions_of(topic_id)
    assert set(subscribed) == {"CatalogIngestQueue", crawler_queue}
    for queue_id, props in subscribed.items():
        # Raw delivery: the SQS body is the S3 notification, as both consumers parse it.
        assert props["RawMessageDelivery"] is True
        assert "FilterPolicy" not in props
        assert queue_allows_topic(queue_id, topic_id), f"{queue_id} does not admit {topic_id}"
    assert TEMPLATE["Outputs"][f"{crawler_queue}Arn"]["Value"] == {"Fn::GetAtt": [crawler_queue, "Arn"]}


def test_no_queue_is_left_without_a_producer() -> None:
    producers = set()
    for props in (r["Properties"] for r in of_type("AWS::SNS::Subscription").values()):
        if props["Protocol"] == "sqs":
            producers.add(props["Endpoint"]["Fn::GetAtt"][0])
    dead_letter_queues = {"CatalogIngestDLQ", "LakeGrantsDeadLetterQueue", "NetworkSleepDeadLetterQueue", "DrSyncDeadLetterQueue"}
    for queue_id in of_type("AWS::SQS::Queue"):
        assert queue_id in producers | dead_letter_queues, f"nothing sends messages to {queue_id}"


def test_the_offline_translation_keeps_the_checkov_skips() -> None:
    # local/checkov.sh scans this translation too; the skips written on SAM resources must
    # reach the resources SAM generates, or that scan would report what template.yaml skips.
    translated = translate_file(TEMPLATE_PATH)["Resources"]
    function = translated["CatalogIngestFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    skipped = {s["id"] for s in function["Metadata"]["checkov"]["skip"]}
    assert {"CKV_AWS_116", "CKV_AWS_117"} <= skipped
    assert function["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": "CatalogIngestLogGroup"}
    assert function["Properties"]["LoggingConfig"]["LogFormat"] == "JSON"  # merged with Globals
