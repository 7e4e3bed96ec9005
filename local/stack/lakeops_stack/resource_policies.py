"""Resource policies that moto's CloudFormation cannot create, applied by SDK calls.

AWS::S3::BucketPolicy, AWS::SQS::QueuePolicy and AWS::SNS::TopicPolicy attach one policy
document to existing resources (a bucket; one or more queues or topics). moto stores the
documents (it does not enforce them); applying them keeps the local stack's resources
what CloudFormation would make, so a test can read them back.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from lakeops_stack.cfn import TemplateError


def _document(logical_id: str, props: dict[str, Any]) -> str:
    document = props.get("PolicyDocument")
    if document is None:
        raise TemplateError(f"Resources.{logical_id}.Properties.PolicyDocument is required")
    return document if isinstance(document, str) else json.dumps(document)


def _targets(logical_id: str, props: dict[str, Any], key: str) -> list[str]:
    targets = props.get(key)
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise TemplateError(f"Resources.{logical_id}.Properties.{key} must be a non-empty list")
    return targets


def put_bucket_policy(client: Callable[[str], Any], logical_id: str, props: dict[str, Any]) -> str:
    """Returns the Ref of the policy: the bucket name, as CloudFormation does."""
    bucket = props.get("Bucket")
    if not isinstance(bucket, str) or not bucket:
        raise TemplateError(f"Resources.{logical_id}.Properties.Bucket is required")
    client("s3").put_bucket_policy(Bucket=bucket, Policy=_document(logical_id, props))
    return bucket


def set_queue_policies(client: Callable[[str], Any], logical_id: str, props: dict[str, Any]) -> list[str]:
    """`Queues` are queue URLs (the Ref of AWS::SQS::Queue); returns them."""
    document = _document(logical_id, props)
    queues = _targets(logical_id, props, "Queues")
    for url in queues:
        client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": document})
    return queues


def set_topic_policies(client: Callable[[str], Any], logical_id: str, props: dict[str, Any]) -> list[str]:
    """`Topics` are topic ARNs (the Ref of AWS::SNS::Topic); returns them."""
    document = _document(logical_id, props)
    topics = _targets(logical_id, props, "Topics")
    for arn in topics:
        client("sns").set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=document)
    return topics
