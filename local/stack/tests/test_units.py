"""Unit tests of the pure parts of the local stack (no processes, no network)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

import pytest

from lakeops_stack.cfn import Resolver, TemplateError, load_yaml, references, sub_variables
from lakeops_stack.deploy import (
    FunctionSpec,
    function_specs,
    parameter_values,
    render_env_file,
    rewrite_state_machines,
    substitute_definition,
)
from lakeops_stack.lambda_router import InvokeResult, normalise_error_payload
from lakeops_stack.moto_launcher import messages_to_delete
from lakeops_stack.schedules import find_schedule
from lakeops_stack.state import StackError, StackSettings, StateDir, process_start_time

OK = InvokeResult(b"", None)


def ok(payload: object) -> InvokeResult:
    return InvokeResult(json.dumps(payload).encode(), None)


# ---- SQS partial batch failures -------------------------------------------------------------


class TestMessagesToDelete:
    ids = ["a", "b", "c"]

    def test_function_error_deletes_nothing(self) -> None:
        assert messages_to_delete(self.ids, InvokeResult(b"{}", "Unhandled"), True) == []
        assert messages_to_delete(self.ids, InvokeResult(b"{}", "Unhandled"), False) == []

    def test_without_report_all_are_deleted_whatever_the_payload(self) -> None:
        assert messages_to_delete(self.ids, ok({"batchItemFailures": [{"itemIdentifier": "a"}]}), False) == self.ids

    def test_listed_failures_are_kept(self) -> None:
        result = ok({"batchItemFailures": [{"itemIdentifier": "b"}]})
        assert messages_to_delete(self.ids, result, True) == ["a", "c"]

    @pytest.mark.parametrize("payload", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}])
    def test_empty_responses_mean_success(self, payload: object) -> None:
        assert messages_to_delete(self.ids, ok(payload), True) == self.ids

    def test_empty_body_means_success(self) -> None:
        assert messages_to_delete(self.ids, InvokeResult(b"", None), True) == self.ids

    @pytest.mark.parametrize(
        "payload",
        [
            {"batchItemFailures": [{"itemIdentifier": "zzz"}]},
            {"batchItemFailures": [{"itemIdentifier": ""}]},
            {"batchItemFailures": [{"itemIdentifier": None}]},
            {"batchItemFailures": [{}]},
            {"batchItemFailures": "a"},
            ["a"],
        ],
    )
    def test_malformed_responses_fail_the_whole_batch(self, payload: object) -> None:
        assert messages_to_delete(self.ids, ok(payload), True) == []

    def test_unparsable_payload_fails_the_whole_batch(self) -> None:
        assert messages_to_delete(self.ids, InvokeResult(b"not json", None), True) == []


# ---- error payloads ---------------------------------------------------------------------------


def test_error_payload_passes_runtime_errors_through() -> None:
    body = json.dumps({"errorType": "Lakeops.Retryable", "errorMessage": "later"}).encode()
    assert json.loads(normalise_error_payload(body)) == {"errorType": "Lakeops.Retryable", "errorMessage": "later"}


@pytest.mark.parametrize("body", [b"", b"panic!", b'{"message": "x"}', b"[1]"])
def test_error_payload_always_has_type_and_message(body: bytes) -> None:
    parsed = json.loads(normalise_error_payload(body))
    assert parsed["errorType"] == "Runtime.Unknown"
    assert isinstance(parsed["errorMessage"], str) and parsed["errorMessage"]


# ---- CloudFormation helpers ---------------------------------------------------------------------


def test_yaml_short_tags() -> None:
    doc = load_yaml(
        """
A: !Ref Bucket
B: !GetAtt Fn.Arn
C: !Sub "x-${Env}"
D: !Join [",", [a, !Ref X]]
E: 2010-09-09
"""
    )
    assert doc == {
        "A": {"Ref": "Bucket"},
        "B": {"Fn::GetAtt": ["Fn", "Arn"]},
        "C": {"Fn::Sub": "x-${Env}"},
        "D": {"Fn::Join": [",", ["a", {"Ref": "X"}]]},
        "E": "2010-09-09",
    }


def test_unknown_yaml_tag_is_an_error() -> None:
    with pytest.raises(TemplateError, match="!Bogus"):
        load_yaml("A: !Bogus x\n")


def test_sub_variables_skip_literals() -> None:
    assert sub_variables("${A}-${B.Arn}-${!Literal}") == ["A", "B.Arn"]


def test_references_cover_ref_getatt_and_sub() -> None:
    found = references({"x": [{"Ref": "A"}, {"Fn::GetAtt": "B.Arn"}, {"Fn::Sub": ["${C}/${v}", {"v": {"Ref": "D"}}]}]})
    assert found == {("Ref", "A"), ("GetAtt", "B", "Arn"), ("Ref", "C"), ("Ref", "D")}


def resolver(extra: dict[str, object] | None = None) -> Resolver:
    resources = {("Ref", "Bucket"): "my-bucket", ("GetAtt", "Fn", "Arn"): "arn:fn"}

    def lookup(kind: str, logical_id: str, attribute: str | None) -> object:
        key = (kind, logical_id) if kind == "Ref" else (kind, logical_id, attribute)
        return resources[key]

    return Resolver(
        {"Env": "dev", "AWS::Region": "us-east-1", **(extra or {})},
        lookup,
        conditions={"IsDev": {"Fn::Equals": [{"Ref": "Env"}, "dev"]}},
        mappings={"M": {"dev": {"size": 3}}},
    )


def test_resolver_intrinsics() -> None:
    r = resolver()
    assert r.resolve({"Fn::Sub": "${Bucket}/${Fn.Arn}/${Env}/${!Keep}"}) == "my-bucket/arn:fn/dev/${Keep}"
    assert r.resolve({"Fn::Sub": ["${a}-${Env}", {"a": {"Ref": "Bucket"}}]}) == "my-bucket-dev"
    assert r.resolve({"Fn::Join": ["-", ["a", {"Ref": "Env"}]]}) == "a-dev"
    assert r.resolve({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}) == "y"
    assert r.resolve({"Fn::If": ["IsDev", "yes", "no"]}) == "yes"
    assert r.resolve({"Fn::FindInMap": ["M", {"Ref": "Env"}, "size"]}) == 3
    assert r.resolve({"a": {"Ref": "AWS::NoValue"}, "b": 1}) == {"b": 1}
    assert r.resolve([1, {"Fn::If": ["IsDev", {"Ref": "AWS::NoValue"}, 2]}]) == [1]


def test_resolver_names_undefined_conditions_and_maps() -> None:
    with pytest.raises(TemplateError, match="Conditions.Nope"):
        resolver().resolve({"Fn::If": ["Nope", 1, 2]})
    with pytest.raises(TemplateError, match="Mappings.M.prod.size"):
        resolver().resolve({"Fn::FindInMap": ["M", "prod", "size"]})


# ---- state machines ---------------------------------------------------------------------------------


def test_definition_substitution_keeps_asl_dollars() -> None:
    definition = json.dumps({"States": {"T": {"Resource": "${Fn}", "Parameters": {"id.$": "$$.Execution.Id", "x.$": "$.x", "u": "${Other}"}}}})
    result = substitute_definition(definition, {"Fn": {"Fn::GetAtt": ["F", "Arn"]}})
    assert result["Fn::Join"][0] == ""
    parts = result["Fn::Join"][1]
    assert {"Fn::GetAtt": ["F", "Arn"]} in parts
    text = "".join(p if isinstance(p, str) else "ARN" for p in parts)
    assert json.loads(text)["States"]["T"]["Parameters"] == {"id.$": "$$.Execution.Id", "x.$": "$.x", "u": "${Other}"}
    assert json.loads(text)["States"]["T"]["Resource"] == "ARN"


def test_literal_substitutions_give_a_string() -> None:
    assert substitute_definition('{"a": "${X}"}', {"X": "v"}) == '{"a": "v"}'


def test_rewrite_state_machine_removes_substitutions() -> None:
    cfn = {
        "Resources": {
            "M": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"DefinitionString": {"Fn::Join": ["\n", ['{"a":', '"${X}"}']]}, "DefinitionSubstitutions": {"X": {"Ref": "Q"}}},
            }
        }
    }
    rewrite_state_machines(cfn)
    props = cfn["Resources"]["M"]["Properties"]
    assert "DefinitionSubstitutions" not in props
    assert props["DefinitionString"] == {"Fn::Join": ["", ['{"a":\n"', {"Ref": "Q"}, '"}']]}


# ---- template requirements ----------------------------------------------------------------------------


def test_functions_need_cargo_lambda_metadata() -> None:
    template = {"Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": {}}}}
    with pytest.raises(TemplateError, match=r"Resources\.F: .*BuildProperties\.Binary"):
        function_specs(template)
    template["Resources"]["F"]["Metadata"] = {"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": "catalog-setup"}}
    assert function_specs(template) == [FunctionSpec("F", "catalog-setup")]


def test_parameters_defaults_overrides_and_unknown() -> None:
    template = {"Parameters": {"EnvironmentName": {"Type": "String", "Default": "dev"}, "DatabricksAccountHost": {"Type": "String"}}}
    settings = StackSettings(databricks_port=8911)
    assert parameter_values(template, settings) == {"EnvironmentName": "dev", "DatabricksAccountHost": "http://127.0.0.1:8911"}
    settings.parameters = {"EnvironmentName": "x"}
    assert parameter_values(template, settings)["EnvironmentName"] == "x"
    settings.parameters = {"Nope": "1"}
    with pytest.raises(TemplateError, match="Nope"):
        parameter_values(template, settings)
    with pytest.raises(TemplateError, match="Parameters.Required"):
        parameter_values({"Parameters": {"Required": {"Type": "String"}}}, StackSettings())


def test_env_file_round_trips_through_sh(tmp_path) -> None:
    env = {"PLAIN": "x", "SPACES": "a b", "QUOTES": "it's \"q\"", "DOLLAR": "$HOME `id`", "NEWLINE": "a\nb"}
    path = tmp_path / "f.env"
    path.write_text(render_env_file(env))
    names = " ".join(f'"${k}"' for k in env)
    out = subprocess.run(["sh", "-c", f"set -a; . {shlex.quote(str(path))}; printf '%s\\0' {names}"], capture_output=True, check=True)
    assert out.stdout.split(b"\0")[:-1] == [v.encode() for v in env.values()]


def test_env_file_rejects_bad_names() -> None:
    with pytest.raises(TemplateError):
        render_env_file({"BAD-NAME": "x"})


# ---- schedules / state ----------------------------------------------------------------------------------


def test_find_schedule_by_name_or_logical_id() -> None:
    schedules = {"lakeops-dev-nightly": {"logical_id": "Nightly", "kind": "scheduler"}}
    assert find_schedule(schedules, "Nightly")[0] == "lakeops-dev-nightly"
    assert find_schedule(schedules, "lakeops-dev-nightly")[0] == "lakeops-dev-nightly"
    with pytest.raises(StackError, match="lakeops-dev-nightly \\(Nightly\\)"):
        find_schedule(schedules, "nope")


def test_pid_files_ignore_reused_pids(tmp_path) -> None:
    state = StateDir(tmp_path)
    state.ensure()
    state.write_pid("me", os.getpid())
    assert state.read_pid("me") == os.getpid()
    # Same pid, different start time: a reused pid must not be treated as ours.
    state.pid_file("me").write_text(f"{os.getpid()} {process_start_time(os.getpid()) + 1}\n")
    assert state.read_pid("me") is None
    state.pid_file("me").write_text("999999999 1\n")
    assert state.read_pid("me") is None


# ---- request log ---------------------------------------------------------------------------------------


def _environ(method: str, path: str, service: str, query: str = "", **headers: str) -> dict:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=x",
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper()] = value
    return environ


@pytest.mark.parametrize(
    ("environ", "body", "expected"),
    [
        (_environ("POST", "/", "glue", X_AMZ_TARGET="AWSGlue.BatchCreatePartition"), None, ("glue", "BatchCreatePartition")),
        (_environ("POST", "/", "ec2"), b"Action=DescribeNatGateways&Version=2016-11-15", ("ec2", "DescribeNatGateways")),
        (_environ("GET", "/", "iam", "Action=ListAccessKeys&UserName=x"), None, ("iam", "ListAccessKeys")),
        (_environ("GET", "/bucket/a/b.csv", "s3"), None, ("s3", "GetObject")),
        (_environ("GET", "/bucket", "s3", "list-type=2&prefix=a/"), None, ("s3", "ListObjectsV2")),
        (_environ("HEAD", "/bucket/k", "s3"), None, ("s3", "HeadObject")),
        (_environ("PUT", "/bucket/k", "s3", X_AMZ_COPY_SOURCE="/b/o"), None, ("s3", "CopyObject")),
        (_environ("POST", "/bucket", "s3", "delete="), None, ("s3", "DeleteObjects")),
        (_environ("POST", "/GrantPermissions", "lakeformation"), None, ("lakeformation", "GrantPermissions")),
        (_environ("GET", "/2015-03-31/functions/f", "lambda"), None, ("lambda", "GET /2015-03-31/functions/f")),
    ],
)
def test_request_log_names_the_operation(environ: dict, body: bytes | None, expected: tuple[str, str]) -> None:
    from lakeops_stack.request_log import describe

    assert describe(environ, body) == expected


def test_request_log_classifies_reads_and_writes() -> None:
    from lakeops_stack.request_log import is_mutating

    for read in ("GetTable", "BatchGetPartition", "ListObjectsV2", "DescribeNatGateways", "SearchTables", "ReceiveMessage"):
        assert not is_mutating(read, "POST"), read
    for write in ("CreateTable", "BatchCreatePartition", "UpdateTable", "BatchGrantPermissions", "DeleteNatGateway", "Publish"):
        assert is_mutating(write, "POST"), write
    assert is_mutating("POST /x", "POST") and not is_mutating("GET /x", "GET")


class RecordingClients:
    """An in-memory stand-in for the boto3 clients the policy creators call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []

    def __call__(self, service: str):
        recorder = self

        class Client:
            def __getattr__(self, operation: str):
                return lambda **kwargs: recorder.calls.append((service, operation, kwargs))

        return Client()


def test_resource_policies_attach_the_document_to_every_target() -> None:
    from lakeops_stack.resource_policies import put_bucket_policy, set_queue_policies, set_topic_policies

    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*"}]}
    clients = RecordingClients()
    assert put_bucket_policy(clients, "P", {"Bucket": "b", "PolicyDocument": document}) == "b"
    set_queue_policies(clients, "Q", {"Queues": ["http://q1", "http://q2"], "PolicyDocument": document})
    set_topic_policies(clients, "T", {"Topics": ["arn:aws:sns:us-east-1:1:t"], "PolicyDocument": document})
    text = json.dumps(document)
    assert clients.calls == [
        ("s3", "put_bucket_policy", {"Bucket": "b", "Policy": text}),
        ("sqs", "set_queue_attributes", {"QueueUrl": "http://q1", "Attributes": {"Policy": text}}),
        ("sqs", "set_queue_attributes", {"QueueUrl": "http://q2", "Attributes": {"Policy": text}}),
        ("sns", "set_topic_attributes", {"TopicArn": "arn:aws:sns:us-east-1:1:t", "AttributeName": "Policy", "AttributeValue": text}),
    ]


def test_resource_policies_name_the_missing_field() -> None:
    from lakeops_stack.resource_policies import put_bucket_policy, set_queue_policies

    with pytest.raises(TemplateError, match=r"Resources\.P\.Properties\.PolicyDocument"):
        put_bucket_policy(RecordingClients(), "P", {"Bucket": "b"})
    with pytest.raises(TemplateError, match=r"Resources\.Q\.Properties\.Queues"):
        set_queue_policies(RecordingClients(), "Q", {"Queues": [], "PolicyDocument": {}})


def test_a_statement_conditioned_on_missing_context_does_not_apply() -> None:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    from lakeops_stack.moto_launcher import install_policy_condition_patch

    tls_only = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }]})
    allow_from_topic = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
        "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:t"}},
    }]})
    install_policy_condition_patch()
    install_policy_condition_patch()  # idempotent
    assert IAMPolicy(tls_only).is_action_permitted("s3:PutObject", "arn:aws:s3:::b/k") == PermissionResult.NEUTRAL
    assert IAMPolicy(allow_from_topic).is_action_permitted("s3:GetObject", "arn:aws:s3:::b/k") == PermissionResult.NEUTRAL
    # With the context it names, the statement is evaluated as moto does.
    insecure = {"aws:SecureTransport": "false"}
    assert IAMPolicy(tls_only).is_action_permitted("s3:PutObject", "arn:aws:s3:::b/k", None, insecure) == PermissionResult.DENIED
    unconditional = json.dumps({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]})
    assert IAMPolicy(unconditional).is_action_permitted("s3:PutObject", "arn:aws:s3:::b/k") == PermissionResult.DENIED
