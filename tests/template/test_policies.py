"""Static test of the IAM in template.yaml: moto does not enforce IAM, so these
rules are what keeps the policies working and least-privilege in a real
account. `LAKEOPS_TEMPLATE=path` runs them on another version of the template.

Run: `$LAKEOPS_VENV/bin/python -m pytest -q tests/template` (part of `./dev test`).
"""

import copy

import pytest

import cfn
import policy_rules as rules


@pytest.fixture(scope="module")
def template():
    return cfn.load()


@pytest.mark.parametrize("rule", rules.RULES, ids=lambda r: r.__name__)
def test_template_follows(rule, template):
    assert rule(template) == []


# ---------------------------------------------------------------------------
# The rules themselves: each catches what it is for (a rule that cannot fail
# proves nothing), on small templates.
# ---------------------------------------------------------------------------

BASE = {
    "Parameters": {
        "EnvironmentName": {"Type": "String", "Default": "dev", "AllowedPattern": "^[a-z][a-z0-9]{1,15}$"},
        "NetworkSleepScheduleName": {"Type": "String", "Default": "nightly"},
        "Roles": {"Type": "CommaDelimitedList", "Default": "arn:aws:iam::*:role/lakeops/*"},
    },
    "Resources": {},
}


def function(*statements, logical="ProvisionFunction", extra=None):
    template = copy.deepcopy(BASE)
    props = {"FunctionName": {"Fn::Sub": "lakeops-${EnvironmentName}-x"}, "Policies": [{"Statement": list(statements)}]}
    props["Policies"] += extra or []
    template["Resources"][logical] = {"Type": "AWS::Serverless::Function", "Properties": props}
    return template


def allow(action, resource, **more):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


ASSUME = allow("sts:AssumeRole", {"Ref": "Roles"})


def test_loader_reads_short_form_intrinsics():
    text = "A: !Sub x-${EnvironmentName}\nB: !GetAtt Role.Arn\nC: !Ref P\nD: !If [c, !Ref a, !Ref b]\n"
    loaded = __import__("yaml").load(text, Loader=cfn.TemplateLoader)
    assert loaded == {
        "A": {"Fn::Sub": "x-${EnvironmentName}"},
        "B": {"Fn::GetAtt": ["Role", "Arn"]},
        "C": {"Ref": "P"},
        "D": {"Fn::If": ["c", {"Ref": "a"}, {"Ref": "b"}]},
    }


def test_renderer_resolves_names_and_refuses_what_it_does_not_know():
    template = function(ASSUME)
    r = cfn.Renderer(template, "qa")
    assert r.render({"Fn::Sub": "arn:${AWS::Partition}:s3:::lakeops-${EnvironmentName}-*"}) == "arn:aws:s3:::lakeops-qa-*"
    assert r.render({"Fn::GetAtt": ["ProvisionFunction", "Arn"]}) == "arn:aws:lambda:us-east-1:123456789012:function:lakeops-qa-x"
    assert r.render([{"Ref": "Roles"}]) == ["arn:aws:iam::*:role/lakeops/*"]
    with pytest.raises(cfn.Unresolved):
        r.render({"Fn::Select": [0, ["a"]]})


def test_iam_wildcards():
    assert cfn.iam_match("lakeops-dev-*", "lakeops-dev-eu-raw")
    assert not cfn.iam_match("lakeops-dev-*", "lakeops-deveu-raw")
    assert cfn.iam_match("pat-??????", "pat-AbCdEf") and not cfn.iam_match("pat-??????", "pat-AbCdE")
    assert not cfn.iam_match("a.b", "axb")


def test_wildcard_actions_are_caught():
    assert rules.no_wildcard_actions(function(ASSUME, allow("s3:*", "arn:aws:s3:::b/*")))
    assert rules.no_wildcard_actions(function(ASSUME, allow("*", "*")))
    assert rules.no_wildcard_actions(function(ASSUME, {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}))
    assert rules.no_wildcard_actions(function(ASSUME, allow("s3:GetObject", "arn:aws:s3:::b/*"))) == []
    # A Deny may name every action (the TLS-only bucket policies).
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*", "Principal": "*"}
    assert rules.no_wildcard_actions(function(ASSUME, deny)) == []


def test_resource_star_is_only_for_actions_without_resource_types():
    assert rules.resource_star_only_where_documented(function(ASSUME, allow("s3:GetObject", "*")))
    assert rules.resource_star_only_where_documented(function(ASSUME, allow(["ec2:DescribeAddresses"], "*"))) == []


def test_an_environment_prefix_that_another_environment_extends_is_caught():
    statement = allow("s3:GetObject", {"Fn::Sub": "arn:aws:s3:::lakeops-${EnvironmentName}-*"})
    glue = allow("glue:GetTable", {"Fn::Sub": "arn:aws:glue:us-east-1:1:database/lakeops_${EnvironmentName}_*"})
    template = function(ASSUME, statement, glue)
    assert rules.env_patterns_are_not_prefixes(template) == []
    template["Parameters"]["EnvironmentName"]["AllowedPattern"] = "^[a-z][a-z0-9-]{1,15}$"
    found = rules.env_patterns_are_not_prefixes(template)
    assert any("lakeops-dev-eu" in f for f in found), found
    assert any("lakeops_dev_eu" in f for f in found), found


def test_secrets_of_other_environments_are_caught():
    mine = allow("secretsmanager:GetSecretValue", {"Fn::Sub": "arn:aws:secretsmanager:us-east-1:123456789012:secret:lakeops/${EnvironmentName}/*"})
    everyone = allow("secretsmanager:GetSecretValue", {"Fn::Sub": "arn:aws:secretsmanager:us-east-1:123456789012:secret:lakeops/*"})
    assert rules.secrets_are_scoped_to_the_environment(function(ASSUME, mine)) == []
    assert rules.secrets_are_scoped_to_the_environment(function(ASSUME, everyone))


def role(trust_condition=None, managed=None):
    template = copy.deepcopy(BASE)
    trust = {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}
    if trust_condition:
        trust["Condition"] = trust_condition
    props = {"RoleName": "r", "AssumeRolePolicyDocument": {"Statement": [trust]}}
    if managed:
        props["ManagedPolicyArns"] = managed
    template["Resources"]["Role"] = {"Type": "AWS::IAM::Role", "Properties": props}
    return template


def test_service_trust_without_source_account_is_caught():
    assert rules.service_principals_name_the_source_account(role())
    assert rules.service_principals_name_the_source_account(role({"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}})) == []
    template = role({"StringEquals": {"aws:SourceAccount": "1"}})
    template["Resources"]["Perm"] = {"Type": "AWS::Lambda::Permission", "Properties": {"Principal": "secretsmanager.amazonaws.com"}}
    assert rules.service_principals_name_the_source_account(template)
    # aws:SourceArn equal to one of the template's own resources is as narrow...
    own = role({"ArnEquals": {"aws:SourceArn": {"Ref": "Topic"}}})
    assert rules.service_principals_name_the_source_account(own) == []
    # ...but a pattern of ARNs is not.
    pattern = role({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:*:lakeops-*"}})
    assert rules.service_principals_name_the_source_account(pattern)
    written_out = role({"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:t"}})
    assert rules.service_principals_name_the_source_account(written_out)


def test_broad_managed_policies_are_caught():
    glue = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSGlueServiceRole"}
    assert rules.no_broad_managed_policies(role(managed=[glue]))
    assert rules.no_broad_managed_policies(function(ASSUME, extra=["AmazonS3FullAccess"]))
    assert rules.no_broad_managed_policies(function(ASSUME, extra=["AWSLambdaBasicExecutionRole"])) == []


def test_assume_role_must_exist_scoped_and_only_in_provision():
    assert rules.provision_assumes_only_scoped_roles(function(ASSUME)) == []
    assert rules.provision_assumes_only_scoped_roles(function(allow("s3:GetObject", "arn:aws:s3:::b/*")))
    assert rules.provision_assumes_only_scoped_roles(function(allow("sts:AssumeRole", "*")))
    assert rules.provision_assumes_only_scoped_roles(function(allow("sts:AssumeRole", "arn:aws:iam::*:role/*")))
    assert rules.provision_assumes_only_scoped_roles(function(allow("sts:AssumeRole", "arn:aws:iam::1:role/x"), logical="Other"))


def test_eip_release_without_the_schedule_tag_is_caught():
    arn = "arn:aws:ec2:us-east-1:1:elastic-ip/*"
    tagged = {"StringEquals": {rules.EIP_TAG_KEY: {"Ref": "NetworkSleepScheduleName"}}}
    assert rules.eip_release_needs_the_schedule_tag(function(ASSUME, allow(["ec2:ReleaseAddress"], arn))) != []
    assert rules.eip_release_needs_the_schedule_tag(function(ASSUME, allow(["ec2:*"], arn)))
    assert rules.eip_release_needs_the_schedule_tag(function(ASSUME, allow(["ec2:ReleaseAddress", "ec2:DisassociateAddress"], arn, Condition=tagged))) == []


def test_pass_role_without_the_service_is_caught():
    arn = "arn:aws:iam::1:role/lakeops-dev-crawler"
    assert rules.pass_role_names_the_service(function(ASSUME, allow("iam:PassRole", arn)))
    scoped = {"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}}
    assert rules.pass_role_names_the_service(function(ASSUME, allow("iam:PassRole", arn, Condition=scoped))) == []
