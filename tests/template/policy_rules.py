"""Rules for the IAM in template.yaml that moto cannot check (it does not
enforce IAM). Each rule takes the loaded template and returns its violations,
one readable line each; an empty list means the rule holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

from cfn import Renderer, iam_match, mentions

# Actions allowed on `Resource: "*"`: AWS documents no resource type for them
# (Service Authorization Reference, "Resource types" column empty), so a
# narrower Resource would deny them. Each with where that is documented.
RESOURCE_STAR_ALLOWED = {
    # Step Functions' logging to CloudWatch Logs (vended logs) needs these on
    # "*" ("IAM policies for logging to CloudWatch Logs", Step Functions guide).
    **{f"logs:{a}": "CloudWatch Logs delivery for Step Functions takes no resource ARN" for a in (
        "CreateLogDelivery", "GetLogDelivery", "UpdateLogDelivery", "DeleteLogDelivery",
        "ListLogDeliveries", "PutResourcePolicy", "DescribeResourcePolicies", "DescribeLogGroups")},
    # X-Ray has no resource-level permissions for trace submission and sampling.
    **{f"xray:{a}": "X-Ray trace and sampling actions have no resource types" for a in (
        "PutTraceSegments", "PutTelemetryRecords", "GetSamplingRules", "GetSamplingTargets")},
    # EC2 Describe* actions do not support resource-level permissions.
    **{f"ec2:{a}": "EC2 Describe* actions have no resource types" for a in (
        "DescribeNatGateways", "DescribeRouteTables", "DescribeAddresses")},
    "athena:ListWorkGroups": "Athena ListWorkGroups has no resource types",
    # Lake Formation has no resource types at all; what these may touch is
    # bounded in code (catalog-setup: own layer buckets; lake-grants: admin
    # lists keep the function itself) and by Lake Formation's own permissions.
    **{f"lakeformation:{a}": "Lake Formation actions have no resource types (bounded in code)" for a in (
        "GetDataLakeSettings", "PutDataLakeSettings", "ListPermissions", "BatchGrantPermissions",
        "BatchRevokePermissions", "ListLFTags", "CreateLFTag", "UpdateLFTag", "GetResourceLFTags",
        "AddLFTagsToResource", "RemoveLFTagsFromResource", "ListResources", "RegisterResource",
        "DescribeResource", "UpdateResource", "DeregisterResource")},
}

# AWS managed policies a role may use: only the narrow ones SAM attaches itself.
MANAGED_POLICIES_ALLOWED = {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess", "AWSXRayDaemonWriteAccess"}

EIP_TAG_KEY = "aws:ResourceTag/lakeops:sleep-schedule"
EIP_SCHEDULE_PARAMETER = "NetworkSleepScheduleName"
ASSUMABLE_ROLES_FUNCTION = "ProvisionFunction"


@dataclass
class Statement:
    owner: str  # logical id of the resource that holds the policy
    kind: str  # "identity", "resource" or "trust"
    body: dict

    def where(self) -> str:
        sid = self.body.get("Sid")
        return f"{self.owner}{'/' + sid if sid else ''}"

    def actions(self) -> list[str]:
        action = self.body.get("Action", [])
        return [action] if isinstance(action, str) else list(action)

    def resources(self) -> list[Any]:
        resource = self.body.get("Resource", [])
        return resource if isinstance(resource, list) else [resource]


def _statements_of(document: Any) -> list[dict]:
    if not isinstance(document, dict):
        return []
    statements = document.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _sam_policies(properties: dict) -> list[Any]:
    policies = properties.get("Policies", [])
    return policies if isinstance(policies, list) else [policies]


def statements(template: dict) -> Iterator[Statement]:
    """Every policy statement of the template: identity policies of roles,
    users and SAM functions and state machines, role trust policies, and
    resource policies (queues, topics, buckets, secrets)."""
    for logical, resource in template.get("Resources", {}).items():
        kind = resource.get("Type")
        props = resource.get("Properties", {})
        if kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for policy in _sam_policies(props):
                if isinstance(policy, dict) and "Statement" in policy:
                    for body in _statements_of(policy):
                        yield Statement(logical, "identity", body)
            for body in _statements_of(props.get("AssumeRolePolicyDocument")):
                yield Statement(logical, "trust", body)
        elif kind == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for body in _statements_of(policy.get("PolicyDocument")):
                    yield Statement(logical, "identity", body)
            for body in _statements_of(props.get("AssumeRolePolicyDocument")):
                yield Statement(logical, "trust", body)
        elif kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            for body in _statements_of(props.get("PolicyDocument")):
                yield Statement(logical, "identity", body)
        elif kind in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy"):
            for body in _statements_of(props.get("PolicyDocument")):
                yield Statement(logical, "resource", body)
        elif kind == "AWS::SecretsManager::ResourcePolicy":
            for body in _statements_of(props.get("ResourcePolicy")):
                yield Statement(logical, "resource", body)


def _allows(statement: Statement) -> bool:
    return statement.body.get("Effect") == "Allow"


def _has_action(statement: Statement, action: str) -> bool:
    return any(iam_match(a.lower(), action.lower()) for a in statement.actions())


def no_wildcard_actions(template: dict) -> list[str]:
    """No allowed `Action: "*"` or `service:*`, and no NotAction (which allows everything
    else). A Deny may use `s3:*`: the TLS-only bucket policies deny every action."""
    out = []
    for s in statements(template):
        if not _allows(s):
            continue
        if "NotAction" in s.body:
            out.append(f"{s.where()}: Allow with NotAction")
        for action in s.actions():
            if action == "*" or action.endswith(":*"):
                out.append(f"{s.where()}: Action {action!r}")
    return out


def resource_star_only_where_documented(template: dict) -> list[str]:
    """An identity policy uses `Resource: "*"` only for actions that have no resource types."""
    out = []
    for s in statements(template):
        if s.kind != "identity" or not _allows(s):
            continue
        if "NotResource" in s.body:
            out.append(f"{s.where()}: Allow with NotResource")
        if "*" in s.resources():
            for action in s.actions():
                if action not in RESOURCE_STAR_ALLOWED:
                    out.append(f"{s.where()}: {action} on Resource '*' (it has resource types: scope it)")
    return out


def _leaves(value: Any) -> Iterator[Any]:
    """The single values of a Resource or Condition element (each list item, each condition value)."""
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict) and not any(k == "Ref" or k.startswith("Fn::") for k in value):
        for item in value.values():
            yield from _leaves(item)
    else:
        yield value


def other_environments(template: dict, environment: str = "dev") -> list[str]:
    """Names of other environments that EnvironmentName's AllowedPattern accepts
    and that extend `environment` (dev-eu, dev_eu, deveu, dev2...)."""
    pattern = template["Parameters"]["EnvironmentName"].get("AllowedPattern", ".*")
    candidates = [environment + suffix for suffix in ("-eu", "_eu", "eu", "-2", "2", ".eu")]
    return [c for c in candidates if re.fullmatch(pattern, c)]


def _as_name(rendered: str) -> str:
    return rendered.replace("*", "x").replace("?", "x")


def env_patterns_are_not_prefixes(template: dict, environment: str = "dev") -> list[str]:
    """A wildcard pattern built from EnvironmentName (`lakeops-${EnvironmentName}-*`)
    must not match the names of another environment whose name extends this one.
    Names are tried as S3 writes them and as Glue writes them ('-' as '_')."""
    this = Renderer(template, environment)
    out = []
    for s in statements(template):
        for element in ("Resource", "Condition"):
            for leaf in _leaves(s.body.get(element, [])):
                if not mentions(leaf, "EnvironmentName"):
                    continue
                pattern = this.render(leaf)
                if not isinstance(pattern, str) or not any(c in pattern for c in "*?"):
                    continue
                for other in other_environments(template, environment):
                    for spelling in {other, other.replace("-", "_"), other.replace("_", "-")}:
                        name = _as_name(Renderer(template, spelling).render(leaf))
                        if iam_match(pattern, name):
                            out.append(f"{s.where()}: {pattern} also matches {name} (environment {other!r})")
    return out


def secrets_are_scoped_to_the_environment(template: dict, environment: str = "dev") -> list[str]:
    """Identity policies reach only this environment's secrets, lakeops/<env>/..."""
    r = Renderer(template, environment)
    prefix = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:lakeops/{environment}/"
    out = []
    for s in statements(template):
        if s.kind != "identity" or not _allows(s):
            continue
        if not any(a.lower().startswith("secretsmanager:") for a in s.actions()):
            continue
        for resource in s.resources():
            rendered = r.render(resource)
            for arn in rendered if isinstance(rendered, list) else [rendered]:
                if not arn.startswith(prefix):
                    out.append(f"{s.where()}: {arn} is not under {prefix}")
    return out


def _source_is_own_resource(body: dict) -> bool:
    """aws:SourceArn compared for equality with a resource of this template (a Ref or
    GetAtt): as narrow as aws:SourceAccount, which AWS's confused-deputy guidance
    accepts instead of it (e.g. an SNS topic delivering to an SQS queue)."""
    for operator in ("ArnEquals", "StringEquals"):
        value = body.get("Condition", {}).get(operator, {}).get("aws:SourceArn")
        values = value if isinstance(value, list) else [value]
        if values and all(isinstance(v, dict) and ({"Ref"} == set(v) or {"Fn::GetAtt"} == set(v)) for v in values):
            return True
    return False


def service_principals_name_the_source_account(template: dict) -> list[str]:
    """Every trust or resource policy that allows an AWS service, and every Lambda
    permission for one, carries aws:SourceAccount (confused-deputy prevention)."""
    out = []
    for s in statements(template):
        if s.kind == "identity" or not _allows(s):
            continue
        principal = s.body.get("Principal", {})
        if not (isinstance(principal, dict) and "Service" in principal):
            continue
        keys = {k for operator in s.body.get("Condition", {}).values() for k in operator}
        if "aws:SourceAccount" not in keys and not _source_is_own_resource(s.body):
            out.append(f"{s.where()}: service principal {principal['Service']} without aws:SourceAccount")
    for logical, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Lambda::Permission":
            props = resource.get("Properties", {})
            if str(props.get("Principal", "")).endswith(".amazonaws.com") and "SourceAccount" not in props:
                out.append(f"{logical}: Lambda permission for {props['Principal']} without SourceAccount")
    return out


def _managed_policy_name(policy: Any, renderer: Renderer) -> str | None:
    text = renderer.render(policy)
    if not isinstance(text, str):
        return None
    match = re.fullmatch(r"arn:[^:]+:iam::aws:policy/(?:.*/)?([^/]+)", text)
    if match:
        return match.group(1)
    return text if re.fullmatch(r"[A-Za-z0-9]+", text) else None


def no_broad_managed_policies(template: dict) -> list[str]:
    """Roles use no AWS managed policy but the narrow ones SAM attaches (basic
    execution, X-Ray writes): e.g. AWSGlueServiceRole grants glue:* on "*"."""
    r = Renderer(template)
    out = []
    for logical, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        candidates = list(props.get("ManagedPolicyArns", []))
        if resource.get("Type", "").startswith("AWS::Serverless::"):
            candidates += [p for p in _sam_policies(props) if not isinstance(p, dict) or "Fn::Sub" in p]
        for policy in candidates:
            name = _managed_policy_name(policy, r)
            if name is not None and name not in MANAGED_POLICIES_ALLOWED:
                out.append(f"{logical}: AWS managed policy {name} is broader than needed (write an inline policy)")
    return out


def provision_assumes_only_scoped_roles(template: dict) -> list[str]:
    """provision may sts:AssumeRole (its specs' role chains) on role ARNs with a
    fixed path or name prefix, never "*"; no other identity policy may."""
    r = Renderer(template)
    out, found = [], False
    for s in statements(template):
        if s.kind != "identity" or not _allows(s) or not _has_action(s, "sts:AssumeRole"):
            continue
        if s.owner != ASSUMABLE_ROLES_FUNCTION:
            out.append(f"{s.where()}: sts:AssumeRole outside {ASSUMABLE_ROLES_FUNCTION}")
            continue
        found = True
        rendered = r.render(s.body.get("Resource", []))
        for arn in rendered if isinstance(rendered, list) else [rendered]:
            if not re.fullmatch(r"arn:aws[a-z-]*:iam::(\d{12}|\*):role/[^*?]+.*", arn):
                out.append(f"{s.where()}: sts:AssumeRole on {arn!r} (needs a fixed role path or name prefix)")
    if not found:
        out.append(f"{ASSUMABLE_ROLES_FUNCTION}: no sts:AssumeRole, yet it assumes its specs' role chains")
    return out


def eip_release_needs_the_schedule_tag(template: dict) -> list[str]:
    """Releasing or disassociating an Elastic IP is allowed only for EIPs tagged
    lakeops:sleep-schedule = NetworkSleepScheduleName."""
    out = []
    for s in statements(template):
        if s.kind != "identity" or not _allows(s):
            continue
        for action in ("ec2:ReleaseAddress", "ec2:DisassociateAddress"):
            if not _has_action(s, action):
                continue
            value = s.body.get("Condition", {}).get("StringEquals", {}).get(EIP_TAG_KEY)
            if value is None or not mentions(value, EIP_SCHEDULE_PARAMETER):
                out.append(f"{s.where()}: {action} without StringEquals {EIP_TAG_KEY} = !Ref {EIP_SCHEDULE_PARAMETER}")
    return out


def pass_role_names_the_service(template: dict) -> list[str]:
    """iam:PassRole always carries an iam:PassedToService condition."""
    out = []
    for s in statements(template):
        if s.kind != "identity" or not _allows(s) or not _has_action(s, "iam:PassRole"):
            continue
        keys = {k for operator in s.body.get("Condition", {}).values() for k in operator}
        if "iam:PassedToService" not in keys:
            out.append(f"{s.where()}: iam:PassRole without iam:PassedToService")
    return out


RULES = [
    no_wildcard_actions,
    resource_star_only_where_documented,
    env_patterns_are_not_prefixes,
    secrets_are_scoped_to_the_environment,
    service_principals_name_the_source_account,
    no_broad_managed_policies,
    provision_assumes_only_scoped_roles,
    eip_release_needs_the_schedule_tag,
    pass_role_names_the_service,
]
