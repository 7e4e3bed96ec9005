"""Account API conformance: provisioning objects, workspaces, log delivery, SCIM,
OAuth secrets, permission assignments and metastores."""

import datetime

import pytest
from databricks.sdk import errors
from databricks.sdk.errors import OperationFailed
from databricks.sdk.service import billing, catalog, iam, provisioning

from conftest import REGION, ROLE_ARN, create_workspace_prerequisites, unique

WAIT = datetime.timedelta(seconds=60)


def test_credentials_crud(a):
    name = unique("cred")
    cred = a.credentials.create(
        credentials_name=name,
        aws_credentials=provisioning.CreateCredentialAwsCredentials(
            sts_role=provisioning.CreateCredentialStsRole(role_arn=ROLE_ARN)
        ),
    )
    assert cred.credentials_id and cred.credentials_name == name
    assert cred.aws_credentials.sts_role.role_arn == ROLE_ARN
    assert cred.creation_time > 0
    assert a.credentials.get(cred.credentials_id).credentials_name == name
    assert cred.credentials_id in [c.credentials_id for c in a.credentials.list()]
    a.credentials.delete(cred.credentials_id)
    with pytest.raises(errors.NotFound):
        a.credentials.get(cred.credentials_id)


def test_storage_configuration_crud(a):
    s = a.storage.create(
        storage_configuration_name=unique("storage"),
        root_bucket_info=provisioning.RootBucketInfo(bucket_name="lakeops-root"),
    )
    assert a.storage.get(s.storage_configuration_id).root_bucket_info.bucket_name == "lakeops-root"
    assert s.storage_configuration_id in [x.storage_configuration_id for x in a.storage.list()]
    a.storage.delete(s.storage_configuration_id)
    with pytest.raises(errors.ResourceDoesNotExist):
        a.storage.get(s.storage_configuration_id)


def test_network_crud(a):
    n = a.networks.create(
        network_name=unique("net"), vpc_id="vpc-1", subnet_ids=["subnet-a", "subnet-b"], security_group_ids=["sg-1"]
    )
    assert n.vpc_status == provisioning.VpcStatus.UNATTACHED
    assert n.error_messages == [] or n.error_messages is None
    got = a.networks.get(n.network_id)
    assert got.subnet_ids == ["subnet-a", "subnet-b"] and got.warning_messages in ([], None)
    assert n.network_id in [x.network_id for x in a.networks.list()]
    a.networks.delete(n.network_id)
    with pytest.raises(errors.NotFound):
        a.networks.get(n.network_id)


def test_vpc_endpoint_and_private_access_settings(a):
    ep = a.vpc_endpoints.create(vpc_endpoint_name=unique("vpce"), aws_vpc_endpoint_id="vpce-" + unique("x")[-8:], region=REGION)
    assert ep.state == "available" and ep.region == REGION
    assert ep.vpc_endpoint_id in [e.vpc_endpoint_id for e in a.vpc_endpoints.list()]
    pas = a.private_access.create(
        private_access_settings_name=unique("pas"),
        region=REGION,
        allowed_vpc_endpoint_ids=[ep.vpc_endpoint_id],
        private_access_level=provisioning.PrivateAccessLevel.ENDPOINT,
    )
    assert pas.public_access_enabled is False
    replaced = a.private_access.replace(
        pas.private_access_settings_id,
        provisioning.PrivateAccessSettings(
            private_access_settings_name="renamed", region=REGION, public_access_enabled=True
        ),
    )
    assert replaced.private_access_settings_name == "renamed" and replaced.public_access_enabled
    assert a.private_access.get(pas.private_access_settings_id).private_access_level == provisioning.PrivateAccessLevel.ACCOUNT
    assert pas.private_access_settings_id in [p.private_access_settings_id for p in a.private_access.list()]
    a.private_access.delete(pas.private_access_settings_id)
    a.vpc_endpoints.delete(ep.vpc_endpoint_id)
    with pytest.raises(errors.NotFound):
        a.vpc_endpoints.get(ep.vpc_endpoint_id)


def test_customer_managed_keys(a):
    key = a.encryption_keys.create(
        use_cases=[provisioning.KeyUseCase.MANAGED_SERVICES, provisioning.KeyUseCase.STORAGE],
        aws_key_info=provisioning.CreateAwsKeyInfo(key_arn="arn:aws:kms:us-east-1:123456789012:key/abc", key_alias="alias/lakeops"),
    )
    assert key.aws_key_info.key_region == "us-east-1"
    assert a.encryption_keys.get(key.customer_managed_key_id).use_cases == [
        provisioning.KeyUseCase.MANAGED_SERVICES,
        provisioning.KeyUseCase.STORAGE,
    ]
    assert key.customer_managed_key_id in [k.customer_managed_key_id for k in a.encryption_keys.list()]
    a.encryption_keys.delete(key.customer_managed_key_id)
    with pytest.raises(errors.InvalidParameterValue):
        a.encryption_keys.create(use_cases=[provisioning.KeyUseCase.STORAGE], aws_key_info=provisioning.CreateAwsKeyInfo(key_arn="not-an-arn"))


def test_workspace_lifecycle(a, emulator):
    cred, storage, network = create_workspace_prerequisites(a)
    deployment = unique("wslife")
    waiter = a.workspaces.create(
        workspace_name="life",
        deployment_name=deployment,
        aws_region=REGION,
        credentials_id=cred.credentials_id,
        storage_configuration_id=storage.storage_configuration_id,
        network_id=network.network_id,
    )
    assert waiter.response.workspace_status == provisioning.WorkspaceStatus.PROVISIONING
    ws = waiter.result(timeout=WAIT)
    assert ws.workspace_status == provisioning.WorkspaceStatus.RUNNING
    assert ws.deployment_name == deployment and ws.aws_region == REGION and ws.cloud == "aws"
    assert a.networks.get(network.network_id).vpc_status == provisioning.VpcStatus.VALID
    assert ws.workspace_id in [x.workspace_id for x in a.workspaces.list()]
    with pytest.raises(errors.ResourceAlreadyExists):
        a.workspaces.create(
            workspace_name="dup", deployment_name=deployment, aws_region=REGION,
            credentials_id=cred.credentials_id, storage_configuration_id=storage.storage_configuration_id,
        )
    updated = a.workspaces.update(
        ws.workspace_id, provisioning.Workspace(custom_tags={"team": "lakeops"}), update_mask="custom_tags"
    ).result(timeout=WAIT)
    assert updated.custom_tags == {"team": "lakeops"}
    # Credentials in use cannot be deleted.
    with pytest.raises(errors.BadRequest):
        a.credentials.delete(cred.credentials_id)
    a.workspaces.delete(ws.workspace_id)
    with pytest.raises(errors.NotFound):
        a.workspaces.get(ws.workspace_id)
    assert a.networks.get(network.network_id).vpc_status == provisioning.VpcStatus.UNATTACHED


def test_workspace_fails_on_broken_network_and_recovers(a):
    cred, storage, bad_net = create_workspace_prerequisites(a, subnets=("subnet-only-one",))
    waiter = a.workspaces.create(
        workspace_name="broken", deployment_name=unique("broken"), aws_region=REGION,
        credentials_id=cred.credentials_id, storage_configuration_id=storage.storage_configuration_id,
        network_id=bad_net.network_id,
    )
    with pytest.raises(OperationFailed, match="Network validation failed"):
        waiter.result(timeout=WAIT)
    failed = a.workspaces.get(waiter.workspace_id)
    assert failed.workspace_status == provisioning.WorkspaceStatus.FAILED
    assert "subnet" in failed.workspace_status_message
    net = a.networks.get(bad_net.network_id)
    assert net.vpc_status == provisioning.VpcStatus.BROKEN
    assert net.error_messages[0].error_type == provisioning.ErrorType.SUBNET
    _, _, good_net = create_workspace_prerequisites(a)
    fixed = a.workspaces.update(
        waiter.workspace_id, provisioning.Workspace(network_id=good_net.network_id), update_mask="network_id"
    ).result(timeout=WAIT)
    assert fixed.workspace_status == provisioning.WorkspaceStatus.RUNNING
    a.workspaces.delete(waiter.workspace_id)


def test_workspace_fails_on_invalid_credentials(a):
    cred, storage, network = create_workspace_prerequisites(a, role_arn="arn:aws:iam::42:role/typo")
    waiter = a.workspaces.create(
        workspace_name="badcred", deployment_name=unique("badcred"), aws_region=REGION,
        credentials_id=cred.credentials_id, storage_configuration_id=storage.storage_configuration_id,
    )
    with pytest.raises(OperationFailed, match="Credentials validation failed"):
        waiter.result(timeout=WAIT)
    a.workspaces.delete(waiter.workspace_id)


def test_workspace_rejects_unknown_references(a):
    with pytest.raises(errors.InvalidParameterValue):
        a.workspaces.create(
            workspace_name="x", aws_region=REGION, credentials_id="00000000-dead-beef-0000-000000000000",
            storage_configuration_id="00000000-dead-beef-0000-000000000000",
        )


def test_log_delivery(a):
    cred, storage, _ = create_workspace_prerequisites(a)
    wrapped = a.log_delivery.create(
        billing.CreateLogDeliveryConfigurationParams(
            config_name=unique("audit"),
            log_type=billing.LogType.AUDIT_LOGS,
            output_format=billing.OutputFormat.JSON,
            credentials_id=cred.credentials_id,
            storage_configuration_id=storage.storage_configuration_id,
            delivery_path_prefix="audit",
        )
    )
    conf = wrapped.log_delivery_configuration
    assert conf.status == billing.LogDeliveryConfigStatus.ENABLED
    assert conf.log_delivery_status.status == billing.DeliveryStatus.CREATED
    got = a.log_delivery.get(conf.config_id).log_delivery_configuration
    assert got.delivery_path_prefix == "audit"
    assert conf.config_id in [c.config_id for c in a.log_delivery.list(credentials_id=cred.credentials_id)]
    a.log_delivery.patch_status(conf.config_id, billing.LogDeliveryConfigStatus.DISABLED)
    assert a.log_delivery.get(conf.config_id).log_delivery_configuration.status == billing.LogDeliveryConfigStatus.DISABLED
    assert conf.config_id not in [c.config_id for c in a.log_delivery.list(status=billing.LogDeliveryConfigStatus.ENABLED)]
    with pytest.raises(errors.InvalidParameterValue):
        a.log_delivery.create(
            billing.CreateLogDeliveryConfigurationParams(
                log_type=billing.LogType.BILLABLE_USAGE, output_format=billing.OutputFormat.JSON,
                credentials_id=cred.credentials_id, storage_configuration_id=storage.storage_configuration_id,
            )
        )


def test_scim_service_principals_and_groups(a):
    sp = a.service_principals.create(display_name=unique("sp"), active=True)
    assert sp.id and sp.application_id and sp.active
    assert a.service_principals.get(sp.id).display_name == sp.display_name
    found = list(a.service_principals.list(filter=f'applicationId eq "{sp.application_id}"'))
    assert [x.id for x in found] == [sp.id]
    a.service_principals.patch(
        sp.id,
        operations=[iam.Patch(op=iam.PatchOp.REPLACE, path="displayName", value="patched-sp")],
        schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
    )
    assert a.service_principals.get(sp.id).display_name == "patched-sp"
    a.service_principals.update(sp.id, display_name="renamed-sp", active=False)
    got = a.service_principals.get(sp.id)
    assert got.display_name == "renamed-sp" and got.active is False
    # A patch without a value is rejected (SCIM requires one for add/replace).
    with pytest.raises(errors.BadRequest):
        a.service_principals.patch(
            sp.id,
            operations=[iam.Patch(op=iam.PatchOp.REPLACE, path="active")],
            schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
        )

    name = unique("grp")
    g = a.groups.create(display_name=name, members=[iam.ComplexValue(value=sp.id)])
    assert [m.value for m in g.members] == [sp.id]
    with pytest.raises(errors.ResourceConflict):
        a.groups.create(display_name=name)
    assert [x.id for x in a.groups.list(filter=f'displayName eq "{name}"')] == [g.id]
    a.groups.patch(
        g.id,
        operations=[iam.Patch(op=iam.PatchOp.REMOVE, path=f'members[value eq "{sp.id}"]')],
        schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
    )
    assert not a.groups.get(g.id).members
    a.groups.patch(
        g.id,
        operations=[
            iam.Patch(op=iam.PatchOp.ADD, path="members", value=[{"value": sp.id}]),
            iam.Patch(op=iam.PatchOp.REPLACE, path="displayName", value=name + "-x"),
        ],
        schemas=[iam.PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP],
    )
    got = a.groups.get(g.id)
    assert got.display_name == name + "-x" and [m.value for m in got.members] == [sp.id]
    a.groups.update(g.id, display_name=name + "-y", members=[])
    assert a.groups.get(g.id).display_name == name + "-y"
    a.groups.delete(g.id)
    with pytest.raises(errors.NotFound):
        a.groups.get(g.id)
    a.service_principals.delete(sp.id)
    with pytest.raises(errors.NotFound):
        a.service_principals.get(sp.id)


def test_scim_paging_returns_empty_page_past_the_end(a):
    names = [unique("page") for _ in range(3)]
    ids = [a.groups.create(display_name=n).id for n in names]
    all_ids = [g.id for g in a.groups.list()]
    assert set(ids) <= set(all_ids)
    # The SDK pages with startIndex/count until it receives an empty page.
    paged = [g.id for g in a.groups.list(count=1)]
    assert paged == all_ids
    raw = a.api_client.do(
        "GET", f"/api/2.0/accounts/{a.config.account_id}/scim/v2/Groups", query={"startIndex": len(all_ids) + 5, "count": 10}
    )
    assert raw["Resources"] == [] and raw["totalResults"] == len(all_ids)
    for i in ids:
        a.groups.delete(i)


def test_service_principal_secrets_quota(a):
    sp = a.service_principals.create(display_name=unique("sp-secrets"))
    created = [a.service_principal_secrets.create(sp.id, lifetime="3600s") for _ in range(5)]
    assert all(c.secret and c.status == "ACTIVE" and c.expire_time for c in created)
    with pytest.raises(errors.DatabricksError) as e:
        a.service_principal_secrets.create(sp.id)
    assert e.value.error_code == "QUOTA_EXCEEDED"
    listed = list(a.service_principal_secrets.list(sp.id))
    assert {s.id for s in listed} == {c.id for c in created}
    assert all(getattr(s, "secret", None) is None for s in listed)
    a.service_principal_secrets.delete(sp.id, created[0].id)
    assert len(list(a.service_principal_secrets.list(sp.id))) == 4
    a.service_principals.delete(sp.id)


def test_metastore_crud(a, running_workspace):
    mid = running_workspace.metastore_id
    got = a.metastores.get(mid).metastore_info
    assert got.region == REGION and got.metastore_id == mid
    assert mid in [m.metastore_id for m in a.metastores.list()]
    a.metastores.update(mid, metastore_info=catalog.UpdateAccountsMetastore(delta_sharing_scope=catalog.DeltaSharingScopeEnum.INTERNAL_AND_EXTERNAL))
    assert a.metastores.get(mid).metastore_info.delta_sharing_scope == catalog.DeltaSharingScopeEnum.INTERNAL_AND_EXTERNAL
    assignment = a.metastore_assignments.get(running_workspace.workspace_id).metastore_assignment
    assert assignment.metastore_id == mid and assignment.default_catalog_name == "main"
    assert running_workspace.workspace_id in list(a.metastore_assignments.list(mid))
    with pytest.raises(errors.ResourceAlreadyExists):
        a.metastores.create(metastore_info=catalog.CreateAccountsMetastore(name="second", region=REGION))
    other = a.metastores.create(metastore_info=catalog.CreateAccountsMetastore(name="eu", region="eu-west-1")).metastore_info
    with pytest.raises(errors.InvalidParameterValue):
        a.metastore_assignments.create(workspace_id=running_workspace.workspace_id, metastore_id=other.metastore_id)
    a.metastores.delete(other.metastore_id)
    with pytest.raises(errors.NotFound):
        a.metastores.get(other.metastore_id)


def test_configuration_names_are_unique_in_the_account(a):
    """Credential, storage and network configuration names are unique per account,
    as in Databricks ("Credential configuration name … already exists in this
    account"); the same name may be reused once the first one is deleted, and other
    kinds of configuration may share it."""
    aws = provisioning.CreateCredentialAwsCredentials(sts_role=provisioning.CreateCredentialStsRole(role_arn=ROLE_ARN))
    name = unique("dup")
    cred = a.credentials.create(credentials_name=name, aws_credentials=aws)
    with pytest.raises(errors.ResourceAlreadyExists, match=f"Credential configuration name {name} already exists in this account"):
        a.credentials.create(credentials_name=name, aws_credentials=aws)
    assert [c.credentials_id for c in a.credentials.list() if c.credentials_name == name] == [cred.credentials_id]

    bucket = provisioning.RootBucketInfo(bucket_name=unique("root"))
    storage = a.storage.create(storage_configuration_name=name, root_bucket_info=bucket)
    with pytest.raises(errors.ResourceAlreadyExists, match=f"Storage configuration name {name} already exists"):
        a.storage.create(storage_configuration_name=name, root_bucket_info=bucket)

    net = dict(vpc_id="vpc-1", subnet_ids=["subnet-a", "subnet-b"], security_group_ids=["sg-1"])
    network = a.networks.create(network_name=name, **net)
    with pytest.raises(errors.ResourceAlreadyExists, match=f"Network configuration name {name} already exists"):
        a.networks.create(network_name=name, **net)
    assert [n.network_id for n in a.networks.list() if n.network_name == name] == [network.network_id]

    a.credentials.delete(cred.credentials_id)
    again = a.credentials.create(credentials_name=name, aws_credentials=aws)
    assert again.credentials_id != cred.credentials_id
    for delete, obj_id in (
        (a.credentials.delete, again.credentials_id),
        (a.storage.delete, storage.storage_configuration_id),
        (a.networks.delete, network.network_id),
    ):
        delete(obj_id)


def test_log_delivery_refuses_duplicates_and_enforces_per_workspace_limits(a):
    """Databricks refuses a second enabled log delivery configuration with the same
    settings (the name aside), and lets one workspace appear in the filter of at most
    two enabled configurations per log type; re-enabling is checked the same way."""
    cred, storage, _ = create_workspace_prerequisites(a)
    workspace_id = int(unique("1")[-8:], 16)

    def audit(prefix):
        return billing.CreateLogDeliveryConfigurationParams(
            config_name=unique("audit"),
            log_type=billing.LogType.AUDIT_LOGS,
            output_format=billing.OutputFormat.JSON,
            credentials_id=cred.credentials_id,
            storage_configuration_id=storage.storage_configuration_id,
            delivery_path_prefix=prefix,
            workspace_ids_filter=[workspace_id],
        )

    first = a.log_delivery.create(audit("one")).log_delivery_configuration
    with pytest.raises(errors.ResourceAlreadyExists):
        a.log_delivery.create(audit("one"))
    second = a.log_delivery.create(audit("two")).log_delivery_configuration
    with pytest.raises(errors.DatabricksError) as e:
        a.log_delivery.create(audit("three"))
    assert e.value.error_code == "QUOTA_EXCEEDED"
    a.log_delivery.patch_status(second.config_id, billing.LogDeliveryConfigStatus.DISABLED)
    third = a.log_delivery.create(audit("three")).log_delivery_configuration
    with pytest.raises(errors.DatabricksError) as e:
        a.log_delivery.patch_status(second.config_id, billing.LogDeliveryConfigStatus.ENABLED)
    assert e.value.error_code == "QUOTA_EXCEEDED"
    assert a.log_delivery.get(second.config_id).log_delivery_configuration.status == billing.LogDeliveryConfigStatus.DISABLED
    for conf in (first, third):
        a.log_delivery.patch_status(conf.config_id, billing.LogDeliveryConfigStatus.DISABLED)
