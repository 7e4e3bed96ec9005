"""Deploy template.yaml into moto.

1. Read the SAM template. Functions built with ``BuildMethod: rust-cargolambda`` map to the
   cargo binary ``Metadata.BuildProperties.Binary``; their CodeUri becomes a placeholder zip
   in a deployment bucket (the code really runs in cargo lambda watch). State machine
   ``DefinitionUri`` files are inlined (SAM keeps DefinitionSubstitutions).
2. Translate with aws-sam-translator into CloudFormation.
3. Rewrite what moto's CloudFormation gets wrong: state machine DefinitionSubstitutions
   (ignored by moto) become an Fn::Join around the substituted values.
4. Split resources: the types moto's CloudFormation supports go into stack ``lakeops-local``;
   the others (SecretsManager, Scheduler, Glue, LakeFormation, Athena, ...) are created with
   SDK calls, with Ref/Fn::Sub/Fn::GetAtt resolved against parameters, SDK-created resources
   and the stack (via synthetic stack outputs for the values they need).
5. S3 bucket NotificationConfiguration (ignored by moto's CloudFormation) is applied by SDK.
6. Write functions/routes.json and functions/<binary>.env, deploy/outputs.json, deploy/schedules.json.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import shlex
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from lakeops_stack.cfn import Resolver, TemplateError, load_yaml, referenced_resources, references, sub_variables
from lakeops_stack.resource_policies import put_bucket_policy, set_queue_policies, set_topic_policies
from lakeops_stack.state import DATABRICKS_ACCOUNT_ID, StackSettings, StateDir, write_json_atomic, write_text_atomic

DEPLOY_BUCKET = "lakeops-local-deployment"
PLACEHOLDER_KEY = "placeholder/bootstrap.zip"
SYNTHETIC_OUTPUT_PREFIX = "LakeopsLocalRef"

# Template parameters the local stack fills in when the template declares them.
def local_parameter_defaults(settings: StackSettings) -> dict[str, str]:
    values = {"DatabricksAccountId": DATABRICKS_ACCOUNT_ID}
    if settings.databricks_endpoint:
        values["DatabricksAccountHost"] = settings.databricks_endpoint
        # The emulator serves workspace APIs under /ws/{deployment_name} (local/databricks-emulator/README.md).
        values["DatabricksWorkspaceHostTemplate"] = settings.databricks_endpoint + "/ws/{deployment_name}"
    return values


Progress = Callable[[str], None]


def clients(settings: StackSettings) -> Callable[[str], Any]:
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=settings.region
    )
    config = Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=300, connect_timeout=5)
    cache: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in cache:
            cache[service] = session.client(service, endpoint_url=settings.aws_endpoint, config=config)
        return cache[service]

    return client


# ---------------------------------------------------------------------------------------------
# 1. SAM template -> functions, preprocessing
# ---------------------------------------------------------------------------------------------


@dataclass
class FunctionSpec:
    logical_id: str
    binary: str


def load_template(path: Path) -> dict[str, Any]:
    try:
        template = load_yaml(path.read_text())
    except FileNotFoundError:
        raise TemplateError(f"template {path} does not exist") from None
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{path}: no Resources section")
    return template


def function_specs(template: dict[str, Any]) -> list[FunctionSpec]:
    """The Rust functions of a SAM template and their cargo binaries."""
    specs = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            continue
        metadata = resource.get("Metadata") or {}
        binary = (metadata.get("BuildProperties") or {}).get("Binary")
        if metadata.get("BuildMethod") != "rust-cargolambda" or not isinstance(binary, str) or not binary:
            raise TemplateError(
                f"Resources.{logical_id}: the local stack runs functions with cargo lambda watch and needs "
                "Metadata.BuildMethod: rust-cargolambda and Metadata.BuildProperties.Binary: <cargo bin name>"
            )
        specs.append(FunctionSpec(logical_id, binary))
    return specs


def prepare_sam(template: dict[str, Any], template_dir: Path) -> dict[str, Any]:
    sam = copy.deepcopy(template)
    code = {"Bucket": DEPLOY_BUCKET, "Key": PLACEHOLDER_KEY}
    globals_function = (sam.get("Globals") or {}).get("Function")
    if isinstance(globals_function, dict) and "CodeUri" in globals_function:
        globals_function["CodeUri"] = code
    for logical_id, resource in sam["Resources"].items():
        kind = resource.get("Type")
        props = resource.setdefault("Properties", {})
        if kind == "AWS::Serverless::Function":
            props["CodeUri"] = dict(code)
            props.pop("InlineCode", None)
        elif kind == "AWS::Lambda::Function":
            props["Code"] = {"S3Bucket": DEPLOY_BUCKET, "S3Key": PLACEHOLDER_KEY}
        elif kind == "AWS::Serverless::StateMachine":
            uri = props.get("DefinitionUri")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                definition_path = (template_dir / uri).resolve()
                try:
                    text = definition_path.read_text()
                except FileNotFoundError:
                    raise TemplateError(f"Resources.{logical_id}.Properties.DefinitionUri: {definition_path} does not exist") from None
                props["Definition"] = json.loads(text) if definition_path.suffix == ".json" else load_yaml(text)
                del props["DefinitionUri"]
            elif uri is not None:
                raise TemplateError(f"Resources.{logical_id}.Properties.DefinitionUri must be a local file for the local stack")
    return sam


class _MotoPolicyLoader:
    """SAM's managed-policy name -> ARN map, served from moto's IAM (it knows the AWS managed policies)."""

    def __init__(self, iam: Any):
        self.iam = iam
        self._map: dict[str, str] | None = None

    def load(self) -> dict[str, str]:
        if self._map is None:
            result: dict[str, str] = {}
            for page in self.iam.get_paginator("list_policies").paginate(Scope="AWS"):
                result.update((p["PolicyName"], p["Arn"]) for p in page["Policies"])
            self._map = result
        return self._map


def translate(sam: dict[str, Any], parameters: dict[str, Any], iam: Any | None, region: str) -> dict[str, Any]:
    """SAM -> CloudFormation. Without `iam` (offline: lakeops_stack.sam_translate), policies that name
    AWS managed policies are left as written."""
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

    # Same steps as samtranslator.translator.transform.transform, but with a boto session that
    # knows the region (SAM reads pseudo parameters from it; no AWS call is made).
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=region)
    policies = _MotoPolicyLoader(iam)
    try:
        to_py27_compatible_template(sam, parameters)
        translator = Translator(None, Parser(), boto_session=session)
        policy_map = policies.load if iam is not None else dict
        translated = translator.translate(sam, parameter_values=dict(parameters), get_managed_policy_map=policy_map)
        return undo_mark_unicode_str_in_template(translated)
    except InvalidDocumentException as failure:
        messages = "; ".join(str(cause) for cause in failure.causes)
        raise TemplateError(f"aws-sam-translator rejected the template: {messages}") from None


# ---------------------------------------------------------------------------------------------
# 3. State machine definitions: apply DefinitionSubstitutions ourselves
# ---------------------------------------------------------------------------------------------


def _literal_string(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and list(value) == ["Fn::Join"]:
        separator, parts = value["Fn::Join"]
        if isinstance(separator, str) and all(isinstance(p, str) for p in parts):
            return separator.join(parts)
    return None


def substitute_definition(definition: str, substitutions: dict[str, Any]) -> Any:
    """Turn `${Name}` placeholders into an Fn::Join of literal pieces and the substitution values.

    moto's CloudFormation ignores DefinitionSubstitutions, and its Fn::Sub would mangle ASL
    (`$$.Execution.Id` becomes `$.Execution.Id`), so no Fn::Sub here: Fn::Join only.
    """
    pieces: list[Any] = []
    cursor = 0
    for match in re.finditer(r"\$\{([^}]*)\}", definition):
        name = match.group(1)
        if name not in substitutions:
            continue
        pieces.append(definition[cursor : match.start()])
        pieces.append(substitutions[name])
        cursor = match.end()
    pieces.append(definition[cursor:])
    pieces = [p for p in pieces if p != ""]
    if all(isinstance(p, str) for p in pieces):
        return "".join(pieces)
    return {"Fn::Join": ["", pieces]}


def rewrite_state_machines(cfn: dict[str, Any]) -> None:
    for logical_id, resource in cfn["Resources"].items():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        props = resource.get("Properties", {})
        substitutions = props.pop("DefinitionSubstitutions", None)
        if "Definition" in props and "DefinitionString" not in props:
            props["DefinitionString"] = json.dumps(props.pop("Definition"))
        if not substitutions:
            continue
        definition = _literal_string(props.get("DefinitionString"))
        if definition is None:
            raise TemplateError(f"Resources.{logical_id}: DefinitionString is not a literal; cannot apply DefinitionSubstitutions")
        props["DefinitionString"] = substitute_definition(definition, substitutions)


# ---------------------------------------------------------------------------------------------
# 4. moto CloudFormation coverage
# ---------------------------------------------------------------------------------------------


def moto_supported_types(types: set[str]) -> set[str]:
    """Which resource types moto's CloudFormation can create (read from moto itself)."""
    import logging

    from moto.cloudformation import parsing

    logging.getLogger("moto").setLevel(logging.ERROR)  # it warns for every type it lacks
    supported = set()
    for kind in types:
        try:
            if parsing.resource_class_from_type(kind) is not None:
                supported.add(kind)
        except Exception:  # noqa: BLE001
            pass
    return supported


# ---------------------------------------------------------------------------------------------
# SDK creators for types moto's CloudFormation lacks
# ---------------------------------------------------------------------------------------------


@dataclass
class SdkResource:
    logical_id: str
    type: str
    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)


def _tags_list(tags: Any) -> list[dict[str, str]]:
    if isinstance(tags, dict):
        return [{"Key": k, "Value": str(v)} for k, v in tags.items()]
    return list(tags or [])


def _tags_dict(tags: Any) -> dict[str, str]:
    if isinstance(tags, list):
        return {t["Key"]: str(t["Value"]) for t in tags}
    return {k: str(v) for k, v in (tags or {}).items()}


def _generated_name(stack_name: str, logical_id: str) -> str:
    digest = hashlib.sha1(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    return f"{stack_name}-{logical_id}-{digest}"


class SdkCreators:
    def __init__(self, client: Callable[[str], Any], settings: StackSettings, progress: Progress):
        self.client = client
        self.settings = settings
        self.progress = progress
        self.schedules: dict[str, dict[str, Any]] = {}

    def create(self, logical_id: str, kind: str, props: dict[str, Any]) -> SdkResource:
        method = getattr(self, "create_" + kind.replace("AWS::", "").replace("::", "_"), None)
        if method is None:
            raise NotImplementedError(kind)
        return method(logical_id, props)

    # ---- Secrets Manager ------------------------------------------------------------------
    def create_SecretsManager_Secret(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        sm = self.client("secretsmanager")
        name = props.get("Name") or _generated_name(self.settings.stack_name, logical_id)
        try:
            arn = sm.describe_secret(SecretId=name)["ARN"]
            update = {k: props[k] for k in ("Description", "KmsKeyId") if k in props}
            if update:
                sm.update_secret(SecretId=arn, **update)
        except sm.exceptions.ResourceNotFoundException:
            kwargs: dict[str, Any] = {"Name": name}
            if "Description" in props:
                kwargs["Description"] = props["Description"]
            if "KmsKeyId" in props:
                kwargs["KmsKeyId"] = props["KmsKeyId"]
            if props.get("Tags"):
                kwargs["Tags"] = _tags_list(props["Tags"])
            if "SecretString" in props:
                kwargs["SecretString"] = props["SecretString"]
            elif "GenerateSecretString" in props:
                kwargs["SecretString"] = self._generate_secret_string(props["GenerateSecretString"])
            arn = sm.create_secret(**kwargs)["ARN"]
        return SdkResource(logical_id, "AWS::SecretsManager::Secret", arn, {"Id": arn})

    def _generate_secret_string(self, spec: dict[str, Any]) -> str:
        options = {
            k: spec[k]
            for k in (
                "PasswordLength",
                "ExcludeCharacters",
                "ExcludeNumbers",
                "ExcludePunctuation",
                "ExcludeUppercase",
                "ExcludeLowercase",
                "IncludeSpace",
                "RequireEachIncludedType",
            )
            if k in spec
        }
        password = self.client("secretsmanager").get_random_password(**options)["RandomPassword"]
        template = spec.get("SecretStringTemplate")
        key = spec.get("GenerateStringKey")
        if template and key:
            value = json.loads(template)
            value[key] = password
            return json.dumps(value)
        return password

    def create_SecretsManager_RotationSchedule(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        if props.get("HostedRotationLambda"):
            raise TemplateError(f"Resources.{logical_id}: HostedRotationLambda is not supported locally; use RotationLambdaARN")
        sm = self.client("secretsmanager")
        secret_id = props["SecretId"]
        kwargs: dict[str, Any] = {"SecretId": secret_id}
        if props.get("RotationLambdaARN"):
            kwargs["RotationLambdaARN"] = props["RotationLambdaARN"]
        rules = props.get("RotationRules") or {}
        if rules:
            kwargs["RotationRules"] = {k: v for k, v in rules.items() if k in ("AutomaticallyAfterDays", "Duration", "ScheduleExpression")}
        rotate_now = props.get("RotateImmediatelyOnUpdate", True)
        rotate_now = rotate_now if isinstance(rotate_now, bool) else str(rotate_now).lower() == "true"
        described = sm.describe_secret(SecretId=secret_id)
        already = described.get("RotationEnabled") and described.get("RotationLambdaARN") == kwargs.get("RotationLambdaARN")
        if not already:
            kwargs["RotateImmediately"] = rotate_now
            self.progress(
                f"configuring rotation of {described['Name']} "
                f"({'rotating now' if rotate_now else 'testSecret only'}, as RotateImmediatelyOnUpdate says)"
            )
            try:
                sm.rotate_secret(**kwargs)
            except ClientError as failure:
                self.progress(f"WARNING: RotateSecret for {described['Name']} failed: {failure}")
        return SdkResource(logical_id, "AWS::SecretsManager::RotationSchedule", described["ARN"])

    # ---- EventBridge Scheduler ------------------------------------------------------------
    def create_Scheduler_ScheduleGroup(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        scheduler = self.client("scheduler")
        name = props.get("Name") or _generated_name(self.settings.stack_name, logical_id)
        try:
            arn = scheduler.get_schedule_group(Name=name)["Arn"]
        except scheduler.exceptions.ResourceNotFoundException:
            kwargs: dict[str, Any] = {"Name": name}
            if props.get("Tags"):
                kwargs["Tags"] = _tags_list(props["Tags"])
            arn = scheduler.create_schedule_group(**kwargs)["ScheduleGroupArn"]
        return SdkResource(logical_id, "AWS::Scheduler::ScheduleGroup", name, {"Arn": arn})

    def create_Scheduler_Schedule(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        scheduler = self.client("scheduler")
        name = props.get("Name") or _generated_name(self.settings.stack_name, logical_id)[:64]
        group = props.get("GroupName", "default")
        kwargs = {
            k: props[k]
            for k in (
                "Description",
                "ScheduleExpression",
                "ScheduleExpressionTimezone",
                "StartDate",
                "EndDate",
                "State",
                "FlexibleTimeWindow",
                "Target",
                "KmsKeyArn",
            )
            if k in props
        }
        kwargs.setdefault("FlexibleTimeWindow", {"Mode": "OFF"})
        try:
            scheduler.get_schedule(Name=name, GroupName=group)
            arn = scheduler.update_schedule(Name=name, GroupName=group, **kwargs)["ScheduleArn"]
        except scheduler.exceptions.ResourceNotFoundException:
            arn = scheduler.create_schedule(Name=name, GroupName=group, **kwargs)["ScheduleArn"]
        self.schedules[name] = {
            "logical_id": logical_id,
            "kind": "scheduler",
            "group": group,
            "expression": props.get("ScheduleExpression"),
            "state": props.get("State", "ENABLED"),
            "target": props.get("Target", {}),
        }
        return SdkResource(logical_id, "AWS::Scheduler::Schedule", name, {"Arn": arn})

    # ---- Glue -------------------------------------------------------------------------------
    def create_Glue_Database(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        glue = self.client("glue")
        database_input = dict(props.get("DatabaseInput") or {})
        name = database_input.get("Name") or props.get("DatabaseName") or _generated_name(self.settings.stack_name, logical_id).lower()
        database_input["Name"] = name
        kwargs: dict[str, Any] = {"DatabaseInput": database_input}
        if props.get("CatalogId"):
            kwargs["CatalogId"] = props["CatalogId"]
        try:
            glue.create_database(**kwargs)
        except glue.exceptions.AlreadyExistsException:
            glue.update_database(Name=name, **kwargs)
        return SdkResource(logical_id, "AWS::Glue::Database", name)

    def create_Glue_Table(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        glue = self.client("glue")
        table_input = dict(props["TableInput"])
        table_input.setdefault("Name", _generated_name(self.settings.stack_name, logical_id).lower())
        kwargs: dict[str, Any] = {"DatabaseName": props["DatabaseName"], "TableInput": table_input}
        if props.get("CatalogId"):
            kwargs["CatalogId"] = props["CatalogId"]
        try:
            glue.create_table(**kwargs)
        except glue.exceptions.AlreadyExistsException:
            glue.update_table(**kwargs)
        return SdkResource(logical_id, "AWS::Glue::Table", table_input["Name"])

    # ---- Lake Formation ----------------------------------------------------------------------
    def create_LakeFormation_DataLakeSettings(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        lf = self.client("lakeformation")
        current = lf.get_data_lake_settings().get("DataLakeSettings", {})
        admins = props.get("Admins")
        if isinstance(admins, dict):  # a "Ref"-resolved list may arrive as {DataLakePrincipalIdentifier}
            admins = [admins]
        if admins is not None:
            current["DataLakeAdmins"] = admins
        for key in ("CreateDatabaseDefaultPermissions", "CreateTableDefaultPermissions", "TrustedResourceOwners", "AllowExternalDataFiltering", "ExternalDataFilteringAllowList", "AuthorizedSessionTagValueList", "Parameters"):
            if key in props:
                current[key] = props[key]
        lf.put_data_lake_settings(DataLakeSettings=current)
        return SdkResource(logical_id, "AWS::LakeFormation::DataLakeSettings", f"{self.settings.account_id}-datalakesettings")

    def create_LakeFormation_Resource(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        lf = self.client("lakeformation")
        kwargs = {"ResourceArn": props["ResourceArn"], "UseServiceLinkedRole": bool(props.get("UseServiceLinkedRole", False))}
        if props.get("RoleArn"):
            kwargs["RoleArn"] = props["RoleArn"]
        try:
            lf.register_resource(**kwargs)
        except lf.exceptions.AlreadyExistsException:
            pass
        return SdkResource(logical_id, "AWS::LakeFormation::Resource", props["ResourceArn"])

    def create_LakeFormation_PrincipalPermissions(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        lf = self.client("lakeformation")
        kwargs = {
            "Principal": props["Principal"],
            "Resource": props["Resource"],
            "Permissions": props["Permissions"],
            "PermissionsWithGrantOption": props.get("PermissionsWithGrantOption", []),
        }
        if props.get("Catalog"):
            kwargs["CatalogId"] = props["Catalog"]
        lf.grant_permissions(**kwargs)
        return SdkResource(logical_id, "AWS::LakeFormation::PrincipalPermissions", f"{logical_id}-grant")

    def create_LakeFormation_Permissions(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        lf = self.client("lakeformation")
        resource = props["Resource"]
        converted: dict[str, Any] = {}
        if "DatabaseResource" in resource:
            converted["Database"] = resource["DatabaseResource"]
        if "TableResource" in resource:
            table = dict(resource["TableResource"])
            if "TableWildcard" in table:
                table["TableWildcard"] = {}
            converted["Table"] = table
        if "DataLocationResource" in resource:
            location = resource["DataLocationResource"]
            converted["DataLocation"] = {"ResourceArn": location.get("S3Resource") or location.get("ResourceArn")}
        if "TableWithColumnsResource" in resource:
            converted["TableWithColumns"] = resource["TableWithColumnsResource"]
        lf.grant_permissions(
            Principal=props["DataLakePrincipal"],
            Resource=converted,
            Permissions=props.get("Permissions", []),
            PermissionsWithGrantOption=props.get("PermissionsWithGrantOption", []),
        )
        return SdkResource(logical_id, "AWS::LakeFormation::Permissions", f"{logical_id}-grant")

    def create_LakeFormation_Tag(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        lf = self.client("lakeformation")
        kwargs = {"TagKey": props["TagKey"], "TagValues": props["TagValues"]}
        if props.get("CatalogId"):
            kwargs["CatalogId"] = props["CatalogId"]
        try:
            lf.create_lf_tag(**kwargs)
        except ClientError as failure:
            if failure.response["Error"]["Code"] not in ("AlreadyExistsException", "EntityNotFoundException"):
                raise
        return SdkResource(logical_id, "AWS::LakeFormation::Tag", props["TagKey"])

    def create_LakeFormation_TagAssociation(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        lf = self.client("lakeformation")
        resource = props["Resource"]
        converted: dict[str, Any] = {}
        if "Database" in resource:
            converted["Database"] = resource["Database"]
        if "Table" in resource:
            table = dict(resource["Table"])
            if "TableWildcard" in table:
                table["TableWildcard"] = {}
            converted["Table"] = table
        if "TableWithColumns" in resource:
            converted["TableWithColumns"] = resource["TableWithColumns"]
        lf.add_lf_tags_to_resource(Resource=converted, LFTags=props["LFTags"])
        return SdkResource(logical_id, "AWS::LakeFormation::TagAssociation", f"{logical_id}-tags")

    # ---- Athena --------------------------------------------------------------------------------
    def create_Athena_WorkGroup(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        athena = self.client("athena")
        name = props["Name"]
        try:
            exists = bool(athena.get_work_group(WorkGroup=name).get("WorkGroup"))  # moto answers {} when missing
        except ClientError:
            exists = False
        if not exists:
            kwargs: dict[str, Any] = {"Name": name}
            for key in ("Description", "Configuration"):
                if key in props:
                    kwargs[key] = props[key]
            if "WorkGroupConfiguration" in props:
                kwargs["Configuration"] = props["WorkGroupConfiguration"]
            if props.get("Tags"):
                kwargs["Tags"] = _tags_list(props["Tags"])
            athena.create_work_group(**kwargs)
        return SdkResource(logical_id, "AWS::Athena::WorkGroup", name)

    # ---- SNS subscriptions (moto's CloudFormation only knows topics) ---------------------------
    def create_SNS_Subscription(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        sns = self.client("sns")
        attributes = {}
        for key in ("FilterPolicy", "RedrivePolicy", "DeliveryPolicy"):
            if key in props:
                attributes[key] = props[key] if isinstance(props[key], str) else json.dumps(props[key])
        if "RawMessageDelivery" in props:
            attributes["RawMessageDelivery"] = str(props["RawMessageDelivery"]).lower()
        arn = sns.subscribe(
            TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props.get("Endpoint", ""), Attributes=attributes, ReturnSubscriptionArn=True
        )["SubscriptionArn"]
        return SdkResource(logical_id, "AWS::SNS::Subscription", arn)

    # ---- resource policies (lakeops_stack.resource_policies) -------------------------------------
    def create_S3_BucketPolicy(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        return SdkResource(logical_id, "AWS::S3::BucketPolicy", put_bucket_policy(self.client, logical_id, props))

    def create_SQS_QueuePolicy(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        set_queue_policies(self.client, logical_id, props)
        return SdkResource(logical_id, "AWS::SQS::QueuePolicy", _generated_name(self.settings.stack_name, logical_id))

    def create_SNS_TopicPolicy(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        set_topic_policies(self.client, logical_id, props)
        return SdkResource(logical_id, "AWS::SNS::TopicPolicy", _generated_name(self.settings.stack_name, logical_id))

    # ---- CloudWatch alarms ----------------------------------------------------------------------
    def create_CloudWatch_Alarm(self, logical_id: str, props: dict[str, Any]) -> SdkResource:
        cloudwatch = self.client("cloudwatch")
        name = props.get("AlarmName") or _generated_name(self.settings.stack_name, logical_id)
        kwargs = {k: v for k, v in props.items() if k != "AlarmName"}
        # A `Ref` to a Number parameter resolves to a string, which CloudFormation converts
        # to the property's type; the API call needs the number.
        for key in ("Threshold",):
            if isinstance(kwargs.get(key), str):
                kwargs[key] = float(kwargs[key])
        for key in ("EvaluationPeriods", "DatapointsToAlarm", "Period"):
            if isinstance(kwargs.get(key), str):
                kwargs[key] = int(kwargs[key])
        cloudwatch.put_metric_alarm(AlarmName=name, **kwargs)
        arn = f"arn:aws:cloudwatch:{self.settings.region}:{self.settings.account_id}:alarm:{name}"
        return SdkResource(logical_id, "AWS::CloudWatch::Alarm", name, {"Arn": arn})


# ---------------------------------------------------------------------------------------------
# The deployment
# ---------------------------------------------------------------------------------------------


@dataclass
class DeployResult:
    outputs: dict[str, Any]
    env_changed: bool


def placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "bootstrap",
            "#!/bin/sh\necho 'lakeops local stack: this function runs in cargo lambda watch, not from this zip' >&2\nexit 1\n",
        )
    return buffer.getvalue()


def pseudo_parameters(settings: StackSettings) -> dict[str, str]:
    return {
        "AWS::Region": settings.region,
        "AWS::AccountId": settings.account_id,
        "AWS::Partition": "aws",
        "AWS::StackName": settings.stack_name,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackId": f"arn:aws:cloudformation:{settings.region}:{settings.account_id}:stack/{settings.stack_name}/local",
    }


def parameter_values(template: dict[str, Any], settings: StackSettings) -> dict[str, str]:
    declared = template.get("Parameters") or {}
    values: dict[str, str] = {}
    defaults = local_parameter_defaults(settings)
    for name, spec in declared.items():
        if name in settings.parameters:
            values[name] = settings.parameters[name]
        elif name in defaults:
            values[name] = defaults[name]
        elif "Default" in spec:
            default = spec["Default"]
            values[name] = ",".join(default) if isinstance(default, list) else str(default)
        else:
            raise TemplateError(f"Parameters.{name} has no Default; pass --parameter {name}=VALUE")
    unknown = set(settings.parameters) - set(declared)
    if unknown:
        raise TemplateError(f"--parameter {', '.join(sorted(unknown))}: not declared in the template's Parameters")
    return values


def deploy(settings: StackSettings, state: StateDir, progress: Progress) -> DeployResult:
    client = clients(settings)
    template_path = Path(settings.template)
    template = load_template(template_path)
    functions = function_specs(template)
    params = parameter_values(template, settings)
    pseudo = pseudo_parameters(settings)

    progress("uploading the placeholder function package")
    s3 = client("s3")
    try:
        s3.head_bucket(Bucket=DEPLOY_BUCKET)
    except ClientError:
        s3.create_bucket(Bucket=DEPLOY_BUCKET)
    s3.put_object(Bucket=DEPLOY_BUCKET, Key=PLACEHOLDER_KEY, Body=placeholder_zip())

    progress("translating the SAM template (aws-sam-translator)")
    sam = prepare_sam(template, template_path.parent)
    cfn = translate(sam, {**params, **pseudo}, client("iam"), settings.region)
    rewrite_state_machines(cfn)
    write_json_atomic(state.deploy / "translated.json", cfn)

    resources: dict[str, Any] = cfn["Resources"]
    kinds = {r["Type"] for r in resources.values()}
    supported = moto_supported_types(kinds)
    sdk_ids = {lid for lid, r in resources.items() if r["Type"] not in supported}
    stack_ids = set(resources) - sdk_ids
    resolver_params = {**params, **pseudo}

    conditions_resolver = Resolver(resolver_params, lambda *a: None, cfn.get("Conditions"), cfn.get("Mappings"))

    def enabled(logical_id: str) -> bool:
        condition = resources[logical_id].get("Condition")
        return condition is None or conditions_resolver.condition(condition)

    # Order SDK resources: "pre" ones depend only on parameters and other pre ones.
    pre: list[str] = []
    remaining = [lid for lid in resources if lid in sdk_ids and enabled(lid)]
    skipped = [lid for lid in resources if lid in sdk_ids and not enabled(lid)]
    changed = True
    while changed:
        changed = False
        for lid in list(remaining):
            deps = referenced_resources(resources[lid].get("Properties", {}), set(resources)) | set(_depends_on(resources[lid]))
            if deps <= set(pre):
                pre.append(lid)
                remaining.remove(lid)
                changed = True
    post = _topological(remaining, resources)

    creators = SdkCreators(client, settings, progress)
    sdk_created: dict[str, SdkResource] = {}
    unsupported: list[dict[str, str]] = []

    def sdk_lookup(kind: str, logical_id: str, attribute: str | None) -> Any:
        if logical_id in sdk_created:
            created = sdk_created[logical_id]
            if kind == "Ref":
                return created.ref
            if attribute in created.attributes:
                return created.attributes[attribute]
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute}: attribute not available locally for {created.type}")
        raise KeyError((kind, logical_id, attribute))

    def create_sdk(lid: str, lookup: Callable[[str, str, str | None], Any]) -> None:
        resource = resources[lid]
        resolver = Resolver(resolver_params, lookup, cfn.get("Conditions"), cfn.get("Mappings"))
        props = resolver.resolve(resource.get("Properties", {})) or {}
        progress(f"creating {resource['Type']} {lid} (SDK)")
        try:
            sdk_created[lid] = creators.create(lid, resource["Type"], props)
        except NotImplementedError:
            unsupported.append({"logical_id": lid, "type": resource["Type"]})
            progress(f"WARNING: {resource['Type']} {lid} is not supported by moto or the local stack; skipped")

    for lid in pre:
        create_sdk(lid, sdk_lookup)

    # Stack template: supported resources only; references to pre-created SDK resources become literals.
    stack_resources = {lid: copy.deepcopy(resources[lid]) for lid in resources if lid in stack_ids}
    literal_resolver = Resolver(resolver_params, sdk_lookup, cfn.get("Conditions"), cfn.get("Mappings"))
    for lid, resource in stack_resources.items():
        needed = referenced_resources(resource, sdk_ids)
        bad = needed - set(pre)
        if bad:
            raise TemplateError(
                f"Resources.{lid} references {', '.join(sorted(bad))}, which the local stack must create after the "
                "CloudFormation stack (they depend on stack resources); break the cycle in the template"
            )
        if needed:
            resource["Properties"] = _replace_refs(resource.get("Properties", {}), set(needed), literal_resolver)
        if resource["Type"] == "AWS::S3::Bucket":
            # moto's CloudFormation ignores it; applied by SDK after the stack (_apply_bucket_notifications).
            resource.get("Properties", {}).pop("NotificationConfiguration", None)
        depends = [d for d in _depends_on(resource) if d not in sdk_ids]
        if "DependsOn" in resource:
            resource["DependsOn"] = depends
            if not depends:
                del resource["DependsOn"]
    outputs = {k: v for k, v in (cfn.get("Outputs") or {}).items()}
    # Synthetic outputs: the stack values post-stack SDK resources and Outputs need.
    needed_refs: set[tuple[str, ...]] = set()
    for lid in post:
        needed_refs |= {ref for ref in references(resources[lid].get("Properties", {})) if ref[1] in stack_ids}
    needed_refs |= {ref for ref in references(outputs) if ref[1] in stack_ids}
    for lid, resource in resources.items():
        if resource["Type"] == "AWS::S3::Bucket" and lid in stack_ids:
            needed_refs |= {r for r in references(resource.get("Properties", {}).get("NotificationConfiguration", {})) if r[1] in stack_ids}
    synthetic: dict[str, tuple[str, ...]] = {}
    stack_outputs: dict[str, Any] = {}
    for index, ref in enumerate(sorted(needed_refs)):
        key = f"{SYNTHETIC_OUTPUT_PREFIX}{index}"
        synthetic[key] = ref
        stack_outputs[key] = {"Value": {"Ref": ref[1]} if ref[0] == "Ref" else {"Fn::GetAtt": [ref[1], ref[2]]}}
    stack_template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": cfn.get("Parameters", {}),
        "Conditions": cfn.get("Conditions", {}),
        "Mappings": cfn.get("Mappings", {}),
        "Resources": stack_resources,
        "Outputs": stack_outputs,
    }
    for key in ("Conditions", "Mappings", "Parameters"):
        if not stack_template[key]:
            del stack_template[key]
    write_json_atomic(state.deploy / "stack-template.json", stack_template)

    stack_id = _create_or_update_stack(client("cloudformation"), settings, stack_template, params, progress)
    described = client("cloudformation").describe_stacks(StackName=stack_id)["Stacks"][0]
    raw_outputs = {o["OutputKey"]: o.get("OutputValue") for o in described.get("Outputs", [])}
    ref_values = {synthetic[k]: v for k, v in raw_outputs.items() if k in synthetic}
    # moto lists a resource whose Condition is false as an entry without a
    # LogicalResourceId (its parsed resource is None): skip those.
    stack_physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId")
        for r in client("cloudformation").describe_stack_resources(StackName=stack_id)["StackResources"]
        if r.get("LogicalResourceId")
    }

    def full_lookup(kind: str, logical_id: str, attribute: str | None) -> Any:
        if logical_id in sdk_created:
            return sdk_lookup(kind, logical_id, attribute)
        key = ("Ref", logical_id) if kind == "Ref" else ("GetAtt", logical_id, attribute)
        if key in ref_values:
            return ref_values[key]
        if kind == "Ref" and logical_id in stack_physical:
            return stack_physical[logical_id]
        if logical_id in resources and not enabled(logical_id):
            raise TemplateError(f"{logical_id} is referenced but its Condition is false")
        raise TemplateError(f"cannot resolve {kind} {logical_id}{'.' + attribute if attribute else ''}")

    # Routes and environments first: post-stack resources may invoke functions (rotation schedules).
    # A function whose Condition is false is not deployed: no route, no environment.
    functions = [f for f in functions if f.logical_id not in resources or enabled(f.logical_id)]
    env_changed = _write_function_environments(client, settings, state, functions, stack_physical, progress)

    for lid in post:
        create_sdk(lid, full_lookup)

    resolver = Resolver(resolver_params, full_lookup, cfn.get("Conditions"), cfn.get("Mappings"))
    _apply_bucket_notifications(client, resources, stack_ids, stack_physical, resolver, progress)

    # Template outputs, resolved.
    template_outputs: dict[str, Any] = {}
    for key, spec in outputs.items():
        if spec.get("Condition") and not resolver.condition(spec["Condition"]):
            continue
        template_outputs[key] = resolver.resolve(spec.get("Value"))

    # Schedules from EventBridge rules created by the stack (SAM `Schedule` events).
    schedules = dict(creators.schedules)
    for lid, resource in resources.items():
        if resource["Type"] == "AWS::Events::Rule" and lid in stack_physical:
            props = resource.get("Properties", {})
            if props.get("ScheduleExpression"):
                rule_name = stack_physical[lid]
                targets = client("events").list_targets_by_rule(Rule=rule_name.split("|")[-1]).get("Targets", [])
                schedules[rule_name] = {
                    "logical_id": lid,
                    "kind": "events-rule",
                    "expression": props.get("ScheduleExpression"),
                    "state": props.get("State", "ENABLED"),
                    "targets": targets,
                }
    write_json_atomic(state.deploy / "schedules.json", schedules)

    physical = {**stack_physical, **{lid: r.ref for lid, r in sdk_created.items()}}
    details = {}
    for lid, resource in resources.items():
        if lid in physical:
            details[lid] = {
                "type": resource["Type"],
                "physical_id": physical[lid],
                "created_by": "sdk" if lid in sdk_created else "cloudformation",
            }
    result = {
        "stack_name": settings.stack_name,
        "stack_id": stack_id,
        "region": settings.region,
        "account_id": settings.account_id,
        "endpoints": settings.endpoints(),
        "ports": settings.ports(),
        "parameters": params,
        "outputs": template_outputs,
        "resources": physical,
        "resource_details": details,
        "functions": json.loads((state.functions / "routes.json").read_text())["functions"],
        "databricks": _databricks_info(settings),
        "schedules": {name: {"logical_id": s["logical_id"], "kind": s["kind"], "expression": s.get("expression")} for name, s in schedules.items()},
        "skipped_by_condition": skipped,
        "unsupported": unsupported,
        "state_dir": str(state.path),
    }
    write_json_atomic(state.outputs_file, result)
    return DeployResult(result, env_changed)


def _databricks_info(settings: StackSettings) -> dict[str, Any] | None:
    """Account host, account id and workspace host template, as the emulator reports them."""
    if not settings.databricks_endpoint or not settings.databricks_binary:
        return None
    import urllib.request

    try:
        with urllib.request.urlopen(f"{settings.databricks_endpoint}/_emulator/info", timeout=5) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return {"account_host": settings.databricks_endpoint, "account_id": DATABRICKS_ACCOUNT_ID}


def _depends_on(resource: dict[str, Any]) -> list[str]:
    depends = resource.get("DependsOn") or []
    return [depends] if isinstance(depends, str) else list(depends)


def _topological(ids: list[str], resources: dict[str, Any]) -> list[str]:
    ordered: list[str] = []
    pending = list(ids)
    while pending:
        progressed = False
        for lid in list(pending):
            deps = (referenced_resources(resources[lid].get("Properties", {}), set(pending)) | set(_depends_on(resources[lid]))) & set(pending)
            deps.discard(lid)
            if not deps:
                ordered.append(lid)
                pending.remove(lid)
                progressed = True
        if not progressed:
            raise TemplateError(f"circular references between {', '.join(sorted(pending))}")
    return ordered


def _replace_refs(node: Any, targets: set[str], resolver: Resolver) -> Any:
    """Replace Ref/GetAtt/Fn::Sub parts that point at `targets` with their literal values."""
    if isinstance(node, list):
        return [_replace_refs(x, targets, resolver) for x in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (key, arg), = node.items()
        if key == "Ref" and arg in targets:
            return resolver.resolve(node)
        if key == "Fn::GetAtt":
            parts = arg.split(".", 1) if isinstance(arg, str) else arg
            if parts[0] in targets:
                return resolver.resolve(node)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], dict(arg[1]) if len(arg) > 1 else {})
            for name in sub_variables(text):
                base = name.split(".", 1)[0]
                if base in targets and name not in variables:
                    value = resolver.resolve({"Ref": base} if "." not in name else {"Fn::GetAtt": name.split(".", 1)})
                    text = text.replace("${" + name + "}", str(value))
            variables = {k: _replace_refs(v, targets, resolver) for k, v in variables.items()}
            return {"Fn::Sub": [text, variables] if variables else text}
    return {k: _replace_refs(v, targets, resolver) for k, v in node.items()}


def _create_or_update_stack(cfn_client: Any, settings: StackSettings, template: dict[str, Any], params: dict[str, str], progress: Progress) -> str:
    body = json.dumps(template)
    parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items() if k in (template.get("Parameters") or {})]
    capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    try:
        existing = cfn_client.describe_stacks(StackName=settings.stack_name)["Stacks"][0]
        if existing["StackStatus"].endswith("_FAILED") or existing["StackStatus"] == "ROLLBACK_COMPLETE":
            progress(f"stack {settings.stack_name} is {existing['StackStatus']}: deleting it before creating it again")
            cfn_client.delete_stack(StackName=settings.stack_name)
            existing = None
    except ClientError:
        existing = None
    if existing is None:
        progress(f"creating CloudFormation stack {settings.stack_name} ({len(template['Resources'])} resources)")
        stack_id = cfn_client.create_stack(StackName=settings.stack_name, TemplateBody=body, Parameters=parameters, Capabilities=capabilities)["StackId"]
    else:
        progress(f"updating CloudFormation stack {settings.stack_name}")
        stack_id = existing["StackId"]
        try:
            cfn_client.update_stack(StackName=settings.stack_name, TemplateBody=body, Parameters=parameters, Capabilities=capabilities)
        except ClientError as failure:
            if "No updates are to be performed" not in str(failure):
                raise
            progress("stack unchanged")
    deadline = time.monotonic() + 300
    while True:
        status = cfn_client.describe_stacks(StackName=stack_id)["Stacks"][0]
        state = status["StackStatus"]
        if state.endswith("_COMPLETE") and "ROLLBACK" not in state:
            return stack_id
        if state.endswith("_FAILED") or "ROLLBACK" in state:
            events = cfn_client.describe_stack_events(StackName=stack_id)["StackEvents"]
            reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events if e.get("ResourceStatusReason")][:5]
            raise TemplateError(f"stack {settings.stack_name} is {state}: {'; '.join(reasons) or status.get('StackStatusReason')}")
        if time.monotonic() > deadline:
            raise TemplateError(f"stack {settings.stack_name} still {state} after 300s")
        time.sleep(0.5)


def _apply_bucket_notifications(client: Callable[[str], Any], resources: dict[str, Any], stack_ids: set[str], physical: dict[str, str], resolver: Resolver, progress: Progress) -> None:
    """moto's CloudFormation ignores AWS::S3::Bucket NotificationConfiguration: apply it by SDK."""
    for lid, resource in resources.items():
        if resource["Type"] != "AWS::S3::Bucket" or lid not in stack_ids:
            continue
        config = resource.get("Properties", {}).get("NotificationConfiguration")
        if not config:
            continue
        config = resolver.resolve(config)
        api: dict[str, Any] = {}

        def convert_filter(entry: dict[str, Any]) -> dict[str, Any] | None:
            rules = ((entry.get("Filter") or {}).get("S3Key") or {}).get("Rules")
            return {"Key": {"FilterRules": rules}} if rules else None

        for kind, api_key, arn_key, target_key in (
            ("LambdaConfigurations", "LambdaFunctionConfigurations", "LambdaFunctionArn", "Function"),
            ("QueueConfigurations", "QueueConfigurations", "QueueArn", "Queue"),
            ("TopicConfigurations", "TopicConfigurations", "TopicArn", "Topic"),
        ):
            entries = []
            for entry in config.get(kind, []):
                converted = {arn_key: entry[target_key], "Events": [entry["Event"]]}
                filter_ = convert_filter(entry)
                if filter_:
                    converted["Filter"] = filter_
                entries.append(converted)
            if entries:
                api[api_key] = entries
        if (config.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled"):
            api["EventBridgeConfiguration"] = {}
        progress(f"applying S3 notifications of {lid} ({physical[lid]})")
        client("s3").put_bucket_notification_configuration(Bucket=physical[lid], NotificationConfiguration=api)


def function_base_environment(settings: StackSettings) -> dict[str, str]:
    """What every function gets besides its template Environment."""
    env = {
        "AWS_ENDPOINT_URL": settings.aws_endpoint,
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_SESSION_TOKEN": "test",
        "LAKEOPS_LOCAL_STACK": "1",
    }
    if settings.databricks_endpoint:
        env["DATABRICKS_ACCOUNT_HOST"] = settings.databricks_endpoint
        env["DATABRICKS_ACCOUNT_ID"] = DATABRICKS_ACCOUNT_ID
        env["DATABRICKS_WORKSPACE_HOST_TEMPLATE"] = settings.databricks_endpoint + "/ws/{deployment_name}"
    return env


# Set by the stack; a template value must not redirect functions away from the local endpoints.
FORCED_ENV = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def render_env_file(env: dict[str, str]) -> str:
    lines = ["# generated by the lakeops local stack deployer; sourced by function-runner.sh"]
    for key in sorted(env):
        if not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise TemplateError(f"environment variable name {key!r} is not valid")
        lines.append(f"{key}={shlex.quote(str(env[key]))}")
    return "\n".join(lines) + "\n"


def _write_function_environments(client: Callable[[str], Any], settings: StackSettings, state: StateDir, functions: list[FunctionSpec], physical: dict[str, str], progress: Progress) -> bool:
    lam = client("lambda")
    routes: dict[str, dict[str, Any]] = {}
    by_binary: dict[str, str] = {}
    changed = False
    base = function_base_environment(settings)
    for spec in functions:
        name = physical.get(spec.logical_id)
        if name is None:
            raise TemplateError(f"Resources.{spec.logical_id}: the function was not created by the stack")
        if spec.binary in by_binary:
            raise TemplateError(
                f"Resources.{spec.logical_id} and {by_binary[spec.binary]} both use binary {spec.binary!r}; "
                "cargo lambda watch runs one process per binary, so each function needs its own binary locally"
            )
        by_binary[spec.binary] = spec.logical_id
        configuration = lam.get_function_configuration(FunctionName=name)
        template_env = (configuration.get("Environment") or {}).get("Variables") or {}
        env = {**base, **{k: v for k, v in template_env.items() if k not in FORCED_ENV}}
        env["AWS_LAMBDA_FUNCTION_NAME"] = name
        env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = str(configuration.get("Timeout", 3))
        env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(configuration.get("MemorySize", 128))
        text = render_env_file(env)
        path = state.functions / f"{spec.binary}.env"
        if not path.exists() or path.read_text() != text:
            changed = changed or path.exists()
            write_text_atomic(path, text)
        routes[name] = {"binary": spec.binary, "logical_id": spec.logical_id, "timeout": configuration.get("Timeout", 3)}
    write_json_atomic(state.functions / "routes.json", {"functions": routes})
    progress(f"{len(routes)} function(s) routed to cargo lambda watch: {', '.join(sorted(r['binary'] for r in routes.values())) or '-'}")
    return changed
