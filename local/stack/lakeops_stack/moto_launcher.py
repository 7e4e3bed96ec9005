"""Run moto (pinned 5.2.5) in server mode with Lambda execution handed to `cargo lambda watch`.

moto can only execute Lambda code in Docker. Every path on which moto runs a
function goes through ``LambdaFunction.invoke`` (moto/awslambda/models.py):

- the Invoke API (``LambdaResponse.invoke`` -> ``LambdaBackend.invoke``),
- Step Functions Task states (moto's ASL interpreter calls the Invoke API on
  ``localhost:$MOTO_PORT``, i.e. back into this server),
- S3 notifications (``moto.s3.notifications._invoke_awslambda``),
- Secrets Manager ``RotateSecret`` (``LambdaBackend.invoke`` per rotation step),
- EventBridge rule targets (``moto.events.notifications._invoke_lambda``).

We replace ``LambdaFunction.invoke`` with a call to :class:`LambdaRouter`.
SQS event-source mappings are taken away from moto (its in-process delivery
ignores batch windows and partial batch failures) and served by
:class:`SqsPoller` threads instead.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lakeops_stack.lambda_router import InvokeResult, LambdaRouter
from lakeops_stack.request_log import RequestLog, wrap
from lakeops_stack.sfn_patches import install_aws_sdk_task_patch

log = logging.getLogger("lakeops.moto")

PINNED_MOTO_VERSION = "5.2.5"


def header(headers: Any, name: str) -> str | None:
    """Case-insensitive header lookup that works for werkzeug headers and the plain dicts moto passes."""
    if not headers:
        return None
    getter = getattr(headers, "get", None)
    if getter is not None:
        value = getter(name)
        if value is not None:
            return value
    for key, value in dict(headers).items():
        if key.lower() == name.lower():
            return value
    return None


def install_patches(router: LambdaRouter) -> None:
    import moto

    if moto.__version__ != PINNED_MOTO_VERSION:
        raise SystemExit(
            f"the local stack patches moto {PINNED_MOTO_VERSION}, found {moto.__version__}; "
            "install local/requirements.txt into the venv"
        )

    from moto.awslambda import models as lambda_models
    from moto.core.config import default_user_config

    # Step Functions: let moto's own ASL interpreter run the state machines.
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    # With execute_state_machine the API serves `stepfunctions_parser_backends`, but CloudFormation
    # (moto/stepfunctions/models.py) creates state machines in `stepfunctions_backends`: the stack's
    # state machines would be invisible. Point the name models.py uses at the parser backends (the
    # package attribute must stay: moto's server derives the URL module from its class).
    from moto.stepfunctions import models as sfn_models
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    sfn_models.stepfunctions_backends = stepfunctions_parser_backends

    # StartExecution without a name: AWS generates a UUID; moto's parser backend names it "None",
    # so the second unnamed execution fails with ExecutionAlreadyExists.
    from moto.stepfunctions.parser import models as sfn_parser_models

    original_start_execution = sfn_parser_models.StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        if not name:
            import uuid

            name = str(uuid.uuid4())
        return original_start_execution(self, state_machine_arn, name, *args, **kwargs)

    sfn_parser_models.StepFunctionsParserBackend.start_execution = start_execution

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        if isinstance(body, bytes):
            event = body
        elif isinstance(body, str):
            event = body.encode()
        elif body is None:
            event = b"{}"
        else:
            event = json.dumps(body).encode()
        if not event.strip():
            event = b"{}"
        invocation_type = header(request_headers, "x-amz-invocation-type") or "RequestResponse"
        response_headers["x-amz-executed-version"] = str(self.version)
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            threading.Thread(
                target=_invoke_and_log, args=(router, self, event), name=f"async-{self.function_name}", daemon=True
            ).start()
            return b""
        result = _invoke_and_log(router, self, event)
        if result.failed:
            response_headers["x-amz-function-error"] = result.function_error
        if header(request_headers, "x-amz-log-type") == "Tail":
            response_headers["x-amz-log-result"] = base64.b64encode(b"").decode()
        return result.payload

    lambda_models.LambdaFunction.invoke = invoke

    # moto runs S3 and EventBridge notifications synchronously inside the PutObject / PutEvents
    # request; AWS delivers them asynchronously. Keep the caller's request fast and independent
    # of the function.
    from moto.s3 import notifications as s3_notifications

    original_s3_invoke = s3_notifications._invoke_awslambda

    def s3_invoke_async(*args: Any, **kwargs: Any) -> None:
        threading.Thread(target=original_s3_invoke, args=args, kwargs=kwargs, daemon=True).start()

    s3_notifications._invoke_awslambda = s3_invoke_async

    # S3 event keys are URL-encoded with "/" kept ("incoming/my+file.txt"); moto encodes "/" too.
    import urllib.parse

    s3_notifications.quote_plus = lambda text, *args, **kwargs: urllib.parse.quote_plus(text, safe="/")

    try:
        from moto.events import notifications as events_notifications

        original_events_invoke = events_notifications._invoke_lambda

        def events_invoke_async(*args: Any, **kwargs: Any) -> None:
            threading.Thread(target=original_events_invoke, args=args, kwargs=kwargs, daemon=True).start()

        events_notifications._invoke_lambda = events_invoke_async
    except (ImportError, AttributeError):  # pragma: no cover - layout of moto 5.2.5 is pinned
        pass

    # SQS event-source mappings: keep the mapping (API, CloudFormation) but unhook moto's
    # in-process delivery from the queue; SqsPoller serves it.
    original_create_esm = lambda_models.LambdaBackend.create_event_source_mapping

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        esm = original_create_esm(self, spec)
        if esm.event_source_arn.split(":")[2] == "sqs":
            from moto.sqs.models import sqs_backends

            for queue in sqs_backends[self.account_id][self.region_name].queues.values():
                if queue.queue_arn == esm.event_source_arn:
                    queue.lambda_event_source_mappings.pop(esm.function_arn, None)
        return esm

    lambda_models.LambdaBackend.create_event_source_mapping = create_event_source_mapping

    install_rotation_patch(router)
    install_policy_condition_patch()
    install_aws_sdk_task_patch()


def install_policy_condition_patch() -> None:
    """A policy statement conditioned on request context moto does not have does not apply.

    moto 5.2.5 evaluates S3 bucket policies without a request context (no aws:SecureTransport,
    aws:SourceArn, ...), and a condition whose key has no value passes there: every
    conditional Deny denied every request. The TLS-only bucket policy (Deny when
    aws:SecureTransport is false) refused all object requests. With the patch such a
    statement is neutral: the policy is stored and read back as written, and refuses nothing
    locally (moto cannot tell TLS from the stack's plain-HTTP endpoint anyway).
    """
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    if getattr(IAMPolicyStatement.is_action_permitted, "lakeops_patched", False):
        return
    original = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(self: Any, action: str, resource: str = "*", principal: str | None = None, incoming_condition_values: dict[str, str] | None = None) -> Any:
        conditions = self._statement.get("Condition") or {}
        keys = {key for values in conditions.values() if isinstance(values, dict) for key in values}
        if not keys <= set(incoming_condition_values or {}):
            return PermissionResult.NEUTRAL
        return original(self, action, resource, principal, incoming_condition_values)

    is_action_permitted.lakeops_patched = True  # type: ignore[attr-defined]
    IAMPolicyStatement.is_action_permitted = is_action_permitted


def install_rotation_patch(router: LambdaRouter) -> None:
    """Secrets Manager RotateSecret with a rotation function: run the steps like AWS does.

    moto 5.2.5 differs from AWS in ways a rotation function notices:
    - RotateSecret without RotationLambdaARN forgets the configured function (and then just
      relabels versions itself instead of invoking anything);
    - (moto's pre-created AWSPENDING version without a value is what AWS does too, and is kept);
    - it ignores step failures and afterwards makes the new version current itself, even when
      finishSecret never ran or failed.
    Here: the configured function is used when none is given; the steps createSecret,
    setSecret, testSecret, finishSecret (only testSecret when RotateImmediately is false) run
    in order with the ClientRequestToken, and stop at the first failure; only the function
    moves the staging labels (UpdateSecretVersionStage), as on AWS. The steps run before
    RotateSecret returns (AWS runs them asynchronously; poll either way).
    Secrets without a rotation function keep moto's behaviour.
    """
    import uuid

    from moto.secretsmanager import models as sm_models
    from moto.secretsmanager.exceptions import InvalidRequestException, ResourceNotFoundException

    original_rotate = sm_models.SecretsManagerBackend.rotate_secret

    def rotate_secret(
        self: Any,
        secret_id: str,
        client_request_token: str | None = None,
        rotation_lambda_arn: str | None = None,
        rotation_rules: dict[str, Any] | None = None,
        rotate_immediately: bool = True,
    ) -> str:
        secret = self.secrets[secret_id] if self._is_valid_identifier(secret_id) else None
        configured = getattr(secret, "rotation_lambda_arn", "") if secret is not None else ""
        function_arn = rotation_lambda_arn or configured
        if secret is None or not function_arn or secret.is_deleted():
            return original_rotate(self, secret_id, client_request_token, rotation_lambda_arn, rotation_rules, rotate_immediately)

        from moto.awslambda.utils import get_backend

        lambda_backend = get_backend(self.account_id, self.region_name)
        try:
            fn = lambda_backend.get_function(function_arn)
        except Exception:  # noqa: BLE001 - moto raises several not-found types
            raise ResourceNotFoundException(f"Resource not found for ARN '{function_arn}'.") from None
        for version_id, version in secret.versions.items():
            stages = version.get("version_stages", [])
            if "AWSPENDING" in stages and "AWSCURRENT" not in stages and version_id != client_request_token:
                raise InvalidRequestException(
                    "A previous rotation isn't complete. That rotation will be reattempted."
                )
        if rotation_rules:
            days = rotation_rules.get("AutomaticallyAfterDays")
            if days:
                secret.auto_rotate_after_days = int(days)
                secret.next_rotation_date = int(time.time()) + int(days) * 86400
        secret.rotation_lambda_arn = function_arn
        secret.rotation_enabled = True
        secret.rotation_requested = True
        token = client_request_token or str(uuid.uuid4())
        # As AWS does before it calls the function: the new version exists, staged
        # AWSPENDING, without a value (createSecret puts it); the function checks
        # that the token is such a version. A configuration test (RotateImmediately
        # false) runs testSecret on a pending copy of the current value instead.
        if token not in secret.versions:
            pending: dict[str, Any] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
            if not rotate_immediately:
                if secret.secret_string is not None:
                    pending["secret_string"] = secret.secret_string
                if secret.secret_binary is not None:
                    pending["secret_binary"] = secret.secret_binary
            secret.remove_version_stages_from_old_versions(["AWSPENDING"])
            secret.versions[token] = pending
        steps = ["createSecret", "setSecret", "testSecret", "finishSecret"] if rotate_immediately else ["testSecret"]
        for step in steps:
            event = {"Step": step, "SecretId": secret.arn, "ClientRequestToken": token, "RotationToken": str(uuid.uuid4())}
            result = _invoke_and_log(router, fn, json.dumps(event).encode())
            if result.failed:
                log.warning("rotation of %s stopped at %s: %s", secret.name, step, result.payload[:500].decode("utf-8", "replace"))
                break
        else:
            if rotate_immediately:
                secret.last_rotation_date = int(time.time())
        if not rotate_immediately and "AWSCURRENT" not in secret.versions.get(token, {}).get("version_stages", []):
            # The configuration test leaves no pending version behind.
            secret.versions.pop(token, None)
        return json.dumps({"ARN": secret.arn, "Name": secret.name, "VersionId": token})

    sm_models.SecretsManagerBackend.rotate_secret = rotate_secret

    # moto 5.2.5's UpdateSecretVersionStage moves the AWSCURRENT label but not the
    # version GetSecretValue returns when no stage is given (default_version_id), so
    # after a rotation readers kept getting the old credential. On AWS the two are one.
    original_update_stage = sm_models.SecretsManagerBackend.update_secret_version_stage

    def update_secret_version_stage(self: Any, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str) -> tuple[str, str]:
        result = original_update_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            self.secrets[secret_id].default_version_id = move_to_version_id
        return result

    sm_models.SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage


REQUEST_LOG = RequestLog()


def install_request_log(log_: RequestLog) -> None:
    """Serve /_lakeops/* and log every request (see request_log.py), around moto's own app."""
    from moto.moto_server import werkzeug_app

    import functools

    original_call = werkzeug_app.DomainDispatcherApplication.__call__

    def call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        return wrap(functools.partial(original_call, self), log_)(environ, start_response)

    werkzeug_app.DomainDispatcherApplication.__call__ = call


def _invoke_and_log(router: LambdaRouter, fn: Any, event: bytes) -> InvokeResult:
    started = time.monotonic()
    span = REQUEST_LOG.start_invocation(fn.function_name, event)
    result = router.invoke(fn.function_name, event, timeout_seconds=float(fn.timeout or 3))
    REQUEST_LOG.end_invocation(span, result.failed)
    log.info(
        "invoke %s -> %s in %.2fs",
        fn.function_name,
        "error " + result.payload[:300].decode("utf-8", "replace") if result.failed else "ok",
        time.monotonic() - started,
    )
    return result


# ---------------------------------------------------------------------------------------------
# SQS event-source mappings
# ---------------------------------------------------------------------------------------------


def sqs_record(message: Any, queue_arn: str, region: str, fifo: bool) -> dict[str, Any]:
    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": str(message.sender_id),
        "ApproximateFirstReceiveTimestamp": str(getattr(message, "approximate_first_receive_timestamp", "") or ""),
    }
    if fifo:
        attributes["MessageGroupId"] = message.group_id
        attributes["MessageDeduplicationId"] = message.deduplication_id
        if getattr(message, "sequence_number", None):
            attributes["SequenceNumber"] = str(message.sequence_number)
    message_attributes = {}
    for name, value in (message.message_attributes or {}).items():
        entry = {"dataType": value.get("DataType"), "stringListValues": [], "binaryListValues": []}
        if value.get("StringValue") is not None:
            entry["stringValue"] = value["StringValue"]
        if value.get("BinaryValue") is not None:
            binary = value["BinaryValue"]
            entry["binaryValue"] = binary if isinstance(binary, str) else base64.b64encode(binary).decode()
        message_attributes[name] = entry
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def messages_to_delete(message_ids: list[str], result: InvokeResult, report_failures: bool) -> list[str]:
    """Which messages of a processed batch Lambda deletes, following the ESM rules of AWS.

    - function error: none (they become visible again after the visibility timeout);
    - without ReportBatchItemFailures: all;
    - with it: all except those listed in batchItemFailures; an unparsable response or an
      itemIdentifier that is empty or not in the batch fails the whole batch.
    """
    if result.failed:
        return []
    if not report_failures:
        return list(message_ids)
    try:
        response = json.loads(result.payload or b"null")
    except ValueError:
        return []
    if response is None or response == "" or response == {}:
        return list(message_ids)
    if not isinstance(response, dict):
        return []
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return list(message_ids)
    if not isinstance(failures, list):
        return []
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or not identifier or identifier not in message_ids:
            return []
        failed.add(identifier)
    return [mid for mid in message_ids if mid not in failed]


class SqsPoller(threading.Thread):
    """Polls the queues of all enabled SQS event-source mappings and invokes their functions."""

    def __init__(self, router: LambdaRouter, idle_sleep: float = 0.1):
        super().__init__(name="sqs-esm-poller", daemon=True)
        self.router = router
        self.idle_sleep = idle_sleep
        self.workers: dict[str, threading.Thread] = {}

    def run(self) -> None:
        from moto.awslambda.models import lambda_backends

        while True:
            try:
                for _account, regions in list(lambda_backends.items()):
                    for _region, backend in list(regions.items()):
                        for uuid, esm in list(backend._event_source_mappings.items()):
                            if esm.event_source_arn.split(":")[2] != "sqs":
                                continue
                            worker = self.workers.get(uuid)
                            if worker is None or not worker.is_alive():
                                worker = threading.Thread(
                                    target=self.serve_mapping, args=(backend, uuid), name=f"esm-{uuid}", daemon=True
                                )
                                self.workers[uuid] = worker
                                worker.start()
            except Exception:  # noqa: BLE001 - the poller must survive anything moto does
                log.exception("sqs poller scan failed")
            time.sleep(0.5)

    def serve_mapping(self, backend: Any, uuid: str) -> None:
        from moto.sqs.models import sqs_backends

        while True:
            esm = backend._event_source_mappings.get(uuid)
            if esm is None:
                return  # mapping deleted
            if not esm.enabled:
                time.sleep(0.5)
                continue
            try:
                sqs = sqs_backends[esm.account_id][esm.region]
                queue = next((q for q in sqs.queues.values() if q.queue_arn == esm.event_source_arn), None)
                if queue is None:
                    time.sleep(0.5)
                    continue
                batch = self.collect_batch(sqs, queue, esm)
                if not batch:
                    time.sleep(self.idle_sleep)
                    continue
                fn = backend.get_function(esm.function_arn)
                records = [sqs_record(m, queue.queue_arn, esm.region, queue.fifo_queue) for m in batch]
                result = _invoke_and_log(self.router, fn, json.dumps({"Records": records}).encode())
                report = "ReportBatchItemFailures" in (esm.function_response_types or [])
                ids = [m.id for m in batch]
                delete = set(messages_to_delete(ids, result, report))
                for message in batch:
                    if message.id in delete:
                        try:
                            sqs.delete_message(queue.name, message.receipt_handle)
                        except Exception:  # noqa: BLE001 - already deleted / expired handle
                            log.debug("delete of %s failed", message.id, exc_info=True)
            except Exception:  # noqa: BLE001
                log.exception("sqs event-source mapping %s failed", uuid)
                time.sleep(1.0)

    @staticmethod
    def collect_batch(sqs: Any, queue: Any, esm: Any) -> list[Any]:
        batch_size = int(esm.batch_size or 10)
        window = float(esm.max_batch_window or 0)
        visibility = int(queue.visibility_timeout or 30)
        batch: list[Any] = []
        deadline = time.monotonic() + window
        while len(batch) < batch_size:
            got = sqs.receive_message(queue.name, min(10, batch_size - len(batch)), 0, visibility, ["All"])
            batch.extend(got)
            if not batch and not got:
                return batch  # nothing waiting: do not open a batching window
            if time.monotonic() >= deadline:
                break
            if not got:
                time.sleep(0.05)
        return batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="moto server with Lambda routed to cargo lambda watch")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lambda-port", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stdout)
    # moto's self-calls (Step Functions -> Lambda Invoke) go to http://localhost:$MOTO_PORT: this server.
    os.environ["MOTO_PORT"] = str(args.port)
    router = LambdaRouter(args.lambda_port, Path(args.state_dir) / "functions" / "routes.json")
    install_patches(router)
    install_request_log(REQUEST_LOG)
    SqsPoller(router).start()

    from moto.server import main as moto_server_main

    log.info("moto %s on 127.0.0.1:%s, lambda via cargo lambda watch on 127.0.0.1:%s", PINNED_MOTO_VERSION, args.port, args.lambda_port)
    moto_server_main(["-H", "127.0.0.1", "-p", str(args.port)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
