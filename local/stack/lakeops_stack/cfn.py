"""CloudFormation template helpers: YAML with short-form tags, reference analysis, intrinsic resolution.

Used for the resources moto's CloudFormation cannot create (created by SDK calls instead):
their properties are resolved here against parameters, pseudo parameters, and the
Ref/GetAtt values of the other resources.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Callable

import yaml

INTRINSIC_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "Join": "Fn::Join",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Not": "Fn::Not",
    "FindInMap": "Fn::FindInMap",
    "GetAZs": "Fn::GetAZs",
    "Base64": "Fn::Base64",
    "ImportValue": "Fn::ImportValue",
    "Cidr": "Fn::Cidr",
    "ToJsonString": "Fn::ToJsonString",
    "Length": "Fn::Length",
}


class TemplateError(Exception):
    """The template cannot be deployed locally; the message names the resource/field."""


class _CfnLoader(yaml.SafeLoader):
    pass


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    name = INTRINSIC_TAGS.get(tag_suffix)
    if name is None:
        raise TemplateError(f"unknown YAML tag !{tag_suffix} at line {node.start_mark.line + 1}")
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)
# Template dates like 2010-09-09 must stay strings.
_CfnLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in _CfnLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def sub_variables(template: str) -> list[str]:
    """Names referenced by an Fn::Sub string (`${Name}`, `${Res.Attr}`), excluding `${!Literal}`."""
    return [m.group(1).strip() for m in SUB_VARIABLE.finditer(template)]


def references(value: Any) -> set[tuple[str, ...]]:
    """All ('Ref', id) and ('GetAtt', id, attr) references inside a template fragment."""
    found: set[tuple[str, ...]] = set()

    def walk(node: Any, local_names: frozenset[str] = frozenset()) -> None:
        if isinstance(node, dict):
            if len(node) == 1:
                (key, arg), = node.items()
                if key == "Ref" and isinstance(arg, str):
                    found.add(("Ref", arg))
                    return
                if key == "Fn::GetAtt":
                    parts = arg.split(".", 1) if isinstance(arg, str) else arg
                    if isinstance(parts, list) and len(parts) == 2 and isinstance(parts[0], str):
                        found.add(("GetAtt", parts[0], parts[1] if isinstance(parts[1], str) else json.dumps(parts[1])))
                        return
                if key == "Fn::Sub":
                    if isinstance(arg, str):
                        text, variables = arg, {}
                    else:
                        text, variables = arg[0], (arg[1] if len(arg) > 1 else {})
                        walk(variables)
                    for name in sub_variables(text):
                        if name in variables:
                            continue
                        if "." in name:
                            res, attr = name.split(".", 1)
                            found.add(("GetAtt", res, attr))
                        else:
                            found.add(("Ref", name))
                    return
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(value)
    return found


def referenced_resources(value: Any, resource_ids: set[str]) -> set[str]:
    return {ref[1] for ref in references(value) if ref[1] in resource_ids}


NO_VALUE = object()


class Resolver:
    """Evaluates intrinsic functions.

    `lookup(kind, logical_id, attribute)` answers Ref/GetAtt for resources;
    parameters and pseudo parameters are given as a dict.
    """

    def __init__(
        self,
        parameters: dict[str, Any],
        lookup: Callable[[str, str, str | None], Any],
        conditions: dict[str, Any] | None = None,
        mappings: dict[str, Any] | None = None,
    ):
        self.parameters = parameters
        self.lookup = lookup
        self.condition_defs = conditions or {}
        self.mappings = mappings or {}
        self._condition_values: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._condition_values:
            if name not in self.condition_defs:
                raise TemplateError(f"Conditions.{name} is not defined")
            self._condition_values[name] = bool(self.resolve(self.condition_defs[name]))
        return self._condition_values[name]

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        return self.lookup("Ref", name, None)

    def resolve(self, node: Any) -> Any:
        value = self._resolve(node)
        return None if value is NO_VALUE else value

    def _resolve(self, node: Any) -> Any:  # noqa: C901 - one branch per intrinsic
        if isinstance(node, list):
            return [v for v in (self._resolve(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                return self.ref(arg)
            if key == "Fn::GetAtt":
                parts = arg.split(".", 1) if isinstance(arg, str) else [self._resolve(a) for a in arg]
                return self.lookup("GetAtt", parts[0], parts[1])
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    text, variables = arg, {}
                else:
                    text = arg[0]
                    variables = {k: self._resolve(v) for k, v in (arg[1] if len(arg) > 1 else {}).items()}

                def replace(match: re.Match[str]) -> str:
                    name = match.group(1).strip()
                    if name in variables:
                        return str(variables[name])
                    if "." in name and name not in self.parameters:
                        res, attr = name.split(".", 1)
                        return str(self.lookup("GetAtt", res, attr))
                    return str(self.ref(name))

                substituted = SUB_VARIABLE.sub(replace, text)
                return substituted.replace("${!", "${")
            if key == "Fn::Join":
                separator, items = arg
                return str(self._resolve(separator)).join(str(x) for x in self._resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self._resolve(items)[int(self._resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self._resolve(text)).split(str(self._resolve(separator)))
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self._resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (self._resolve(x) for x in arg)
                return str(left) == str(right)
            if key == "Fn::And":
                return all(self._resolve(x) for x in arg)
            if key == "Fn::Or":
                return any(self._resolve(x) for x in arg)
            if key == "Fn::Not":
                return not self._resolve(arg[0])
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::FindInMap":
                name, top, second = (self._resolve(x) for x in arg[:3])
                try:
                    return self.mappings[name][top][second]
                except KeyError:
                    raise TemplateError(f"Fn::FindInMap: Mappings.{name}.{top}.{second} does not exist") from None
            if key == "Fn::Base64":
                return base64.b64encode(str(self._resolve(arg)).encode()).decode()
            if key == "Fn::GetAZs":
                region = self._resolve(arg) or self.parameters.get("AWS::Region")
                return [f"{region}a", f"{region}b", f"{region}c"]
            if key == "Fn::ToJsonString":
                return json.dumps(self._resolve(arg), separators=(",", ":"))
            if key == "Fn::Length":
                return len(self._resolve(arg))
            if key == "Fn::ImportValue":
                raise TemplateError("Fn::ImportValue is not supported by the local stack")
        result = {}
        for key, value in node.items():
            resolved = self._resolve(value)
            if resolved is not NO_VALUE:
                result[key] = resolved
        return result
