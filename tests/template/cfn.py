"""template.yaml as data: a YAML loader for CloudFormation's short-form
intrinsics, and a renderer that resolves the intrinsics a policy uses into the
strings IAM would see, for a chosen environment name.

Rendering is an approximation of CloudFormation, good for policies: parameters
take their defaults (or an override), pseudo parameters fixed sample values,
`!GetAtt X.Arn` / `!Ref X` of a resource the ARN or name built from its own name
property. What it cannot resolve it raises on, so a rule never checks a guess.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]

PARTITION = "aws"
REGION = "us-east-1"
ACCOUNT = "123456789012"

_SHORT_FORMS = [
    "Ref", "Condition", "Sub", "GetAtt", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
    "FindInMap", "Base64", "Cidr", "ImportValue", "GetAZs", "Transform",
]


class TemplateLoader(yaml.SafeLoader):
    """SafeLoader that reads `!Sub x` as `{"Fn::Sub": x}` (and `!Ref x` as `{"Ref": x}`)."""


def _intrinsic(name: str):
    key = name if name in ("Ref", "Condition") else f"Fn::{name}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


for _name in _SHORT_FORMS:
    TemplateLoader.add_constructor(f"!{_name}", _intrinsic(_name))


def template_path() -> Path:
    """template.yaml, or the file named by LAKEOPS_TEMPLATE (to run the rules on another version)."""
    return Path(os.environ.get("LAKEOPS_TEMPLATE", REPO / "template.yaml"))


def load(path: Path | None = None) -> dict:
    return yaml.load((path or template_path()).read_text(), Loader=TemplateLoader)


class Unresolved(Exception):
    """An intrinsic the renderer does not know how to resolve."""


# How `!GetAtt X.Arn` and `!Ref X` of a resource render, from its name property.
_ARNS = {
    "AWS::S3::Bucket": ("BucketName", "arn:{p}:s3:::{n}", "{n}"),
    "AWS::SQS::Queue": ("QueueName", "arn:{p}:sqs:{r}:{a}:{n}", "https://sqs.{r}.amazonaws.com/{a}/{n}"),
    "AWS::SNS::Topic": ("TopicName", "arn:{p}:sns:{r}:{a}:{n}", "arn:{p}:sns:{r}:{a}:{n}"),
    "AWS::IAM::Role": ("RoleName", "arn:{p}:iam::{a}:role/{n}", "{n}"),
    "AWS::IAM::User": ("UserName", "arn:{p}:iam::{a}:user/{n}", "{n}"),
    "AWS::Serverless::Function": ("FunctionName", "arn:{p}:lambda:{r}:{a}:function:{n}", "{n}"),
    "AWS::Serverless::StateMachine": ("Name", "arn:{p}:states:{r}:{a}:stateMachine:{n}", "arn:{p}:states:{r}:{a}:stateMachine:{n}"),
    "AWS::SecretsManager::Secret": ("Name", "arn:{p}:secretsmanager:{r}:{a}:secret:{n}-AbCdEf", "arn:{p}:secretsmanager:{r}:{a}:secret:{n}-AbCdEf"),
    "AWS::Logs::LogGroup": ("LogGroupName", "arn:{p}:logs:{r}:{a}:log-group:{n}:*", "{n}"),
}


class Renderer:
    """Resolves intrinsics for one environment name (and optional parameter overrides)."""

    def __init__(self, template: dict, environment: str = "dev", parameters: dict | None = None):
        self.template = template
        self.parameters = {"EnvironmentName": environment, **(parameters or {})}

    def parameter(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        spec = self.template.get("Parameters", {}).get(name)
        if spec is None:
            raise Unresolved(f"parameter {name}")
        default = spec.get("Default", "")
        if spec.get("Type") == "CommaDelimitedList":
            return [item.strip() for item in str(default).split(",")]
        return str(default)

    def _resource(self, logical: str, attribute: str | None) -> str:
        resource = self.template["Resources"].get(logical)
        if resource is None:
            raise Unresolved(f"resource {logical}")
        kind = resource["Type"]
        if kind not in _ARNS:
            raise Unresolved(f"{kind} {logical}")
        prop, arn, ref = _ARNS[kind]
        name = self.render(resource.get("Properties", {}).get(prop, f"{logical}-generated"))
        shape = {"Arn": arn, None: ref}.get(attribute)
        if attribute == "QueueName" and kind == "AWS::SQS::Queue":
            shape = "{n}"
        if shape is None:
            raise Unresolved(f"{logical}.{attribute}")
        return shape.format(p=PARTITION, r=REGION, a=ACCOUNT, n=name)

    def ref(self, name: str) -> Any:
        pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": "amazonaws.com"}
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}) or name in self.parameters:
            return self.parameter(name)
        return self._resource(name, None)

    def _sub(self, text: str, variables: dict) -> str:
        def replace(match: re.Match) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(self.render(variables[expr]))
            if "." in expr and not expr.startswith("AWS::"):
                logical, attribute = expr.split(".", 1)
                return self._resource(logical, attribute)
            value = self.ref(expr)
            if isinstance(value, list):
                raise Unresolved(f"list parameter {expr} in !Sub")
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def render(self, value: Any) -> Any:
        """The value with every intrinsic resolved (lists and dicts recursively)."""
        if isinstance(value, list):
            out: list = []
            for item in value:
                rendered = self.render(item)
                # A list parameter (CommaDelimitedList) spliced into a list.
                if isinstance(item, dict) and "Ref" in item and isinstance(rendered, list):
                    out.extend(rendered)
                else:
                    out.append(rendered)
            return out
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self._resource(arg[0], arg[1])
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self._sub(arg[0], arg[1])
                return self._sub(arg, {})
            if key == "Fn::Join":
                parts = self.render(arg[1])
                return arg[0].join(str(p) for p in parts)
            if key.startswith("Fn::"):
                raise Unresolved(key)
        return {k: self.render(v) for k, v in value.items()}


def mentions(value: Any, name: str) -> bool:
    """Whether an unrendered value refers to parameter or resource `name` (in !Ref, !Sub or !GetAtt)."""
    if isinstance(value, list):
        return any(mentions(v, name) for v in value)
    if isinstance(value, dict):
        if value.get("Ref") == name:
            return True
        sub = value.get("Fn::Sub")
        if sub is not None:
            text = sub[0] if isinstance(sub, list) else sub
            if re.search(r"\$\{" + re.escape(name) + r"[}.]", text):
                return True
        return any(mentions(v, name) for v in value.values())
    return False


def iam_match(pattern: str, value: str) -> bool:
    """IAM's wildcard match (`*` any run of characters, `?` one), case-sensitive as for ARNs."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None
