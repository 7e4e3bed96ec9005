"""Authentication rules and fault injection."""

import datetime

import pytest
from databricks.sdk import AccountClient, WorkspaceClient, errors
from databricks.sdk.core import Config
from databricks.sdk.credentials_provider import CredentialsStrategy
from databricks.sdk.service import iam, provisioning

from conftest import ACCOUNT_ID, ROLE_ARN, create_workspace_prerequisites, unique

WAIT = datetime.timedelta(seconds=60)


class NoCredentials(CredentialsStrategy):
    def auth_type(self) -> str:
        return "none"

    def __call__(self, cfg):
        return lambda: {}


def test_missing_token_is_unauthenticated(emulator, running_workspace):
    cfg = Config(host=emulator.workspace_host(running_workspace.deployment_name), credentials_strategy=NoCredentials())
    with pytest.raises(errors.Unauthenticated):
        WorkspaceClient(config=cfg).current_user.me()


def test_unknown_token_is_rejected(emulator, running_workspace):
    client = WorkspaceClient(host=emulator.workspace_host(running_workspace.deployment_name), token="dapi" + "0" * 32, auth_type="pat")
    with pytest.raises(errors.PermissionDenied, match="Invalid access token"):
        client.clusters.list().__next__()


def test_wrong_client_secret_fails_token_exchange(emulator, a):
    bad = AccountClient(host=emulator.url, account_id=ACCOUNT_ID, client_id=a.config.client_id, client_secret="wrong", auth_type="oauth-m2m")
    with pytest.raises(Exception, match="invalid_client"):
        list(bad.workspaces.list())


def test_service_principal_needs_assignment_and_pats_are_workspace_scoped(a, emulator, running_workspace, w):
    sp = a.service_principals.create(display_name=unique("etl-sp"))
    secret = a.service_principal_secrets.create(sp.id)
    host = emulator.workspace_host(running_workspace.deployment_name)

    def sp_client():
        return WorkspaceClient(host=host, client_id=sp.application_id, client_secret=secret.secret, auth_type="oauth-m2m")

    with pytest.raises(Exception, match="unauthorized_client"):
        sp_client().current_user.me()

    # An account token of a non-admin principal cannot use the account API.
    non_admin = AccountClient(host=emulator.url, account_id=ACCOUNT_ID, client_id=sp.application_id, client_secret=secret.secret, auth_type="oauth-m2m")
    with pytest.raises(errors.PermissionDenied):
        list(non_admin.workspaces.list())

    assigned = a.workspace_assignment.update(running_workspace.workspace_id, int(sp.id), permissions=[iam.WorkspacePermission.USER])
    assert assigned.principal.service_principal_name == sp.application_id
    assert int(sp.id) in [p.principal.principal_id for p in a.workspace_assignment.list(running_workspace.workspace_id)]
    assert {p.permission_level for p in a.workspace_assignment.get(running_workspace.workspace_id).permissions} == {
        iam.WorkspacePermission.USER,
        iam.WorkspacePermission.ADMIN,
    }
    client = sp_client()
    assert client.current_user.me().user_name == sp.application_id
    with pytest.raises(errors.PermissionDenied):
        list(client.token_management.list())  # not an admin

    pat = client.tokens.create(comment="etl", lifetime_seconds=600).token_value
    # A PAT is scoped to the workspace that issued it.
    cred, storage, network = create_workspace_prerequisites(a)
    other = a.workspaces.create(
        workspace_name="other", deployment_name=unique("other"), aws_region="us-east-1",
        credentials_id=cred.credentials_id, storage_configuration_id=storage.storage_configuration_id,
    ).result(timeout=WAIT)
    a.workspace_assignment.update(other.workspace_id, int(sp.id), permissions=[iam.WorkspacePermission.USER])
    on_other = WorkspaceClient(host=emulator.workspace_host(other.deployment_name), token=pat, auth_type="pat")
    with pytest.raises(errors.PermissionDenied):
        on_other.current_user.me()

    # Group-based assignment also grants access.
    a.workspace_assignment.delete(running_workspace.workspace_id, int(sp.id))
    with pytest.raises(errors.PermissionDenied):
        WorkspaceClient(host=host, token=pat, auth_type="pat").current_user.me()
    group = a.groups.create(display_name=unique("ws-users"), members=[iam.ComplexValue(value=sp.id)])
    a.workspace_assignment.update(running_workspace.workspace_id, int(group.id), permissions=[iam.WorkspacePermission.USER])
    assert WorkspaceClient(host=host, token=pat, auth_type="pat").current_user.me().user_name == sp.application_id

    # The admin can mint a token on behalf of the principal.
    obo = w.token_management.create_obo_token(sp.application_id, lifetime_seconds=600, comment="obo")
    assert obo.token_info.created_by_username == sp.application_id

    a.workspace_assignment.delete(running_workspace.workspace_id, int(group.id))
    a.groups.delete(group.id)
    a.workspaces.delete(other.workspace_id)
    a.service_principals.delete(sp.id)


def test_throttling_and_unavailability_are_retried_by_the_sdk(a, emulator):
    emulator.set_faults(throttle_next=2, unavailable_next=1, retry_after_seconds=0)
    try:
        list(a.credentials.list())
        faults = emulator.control("GET", "/_emulator/faults")
        assert faults["counters"]["throttled"] >= 2 and faults["counters"]["unavailable"] >= 1
        assert faults["config"]["throttle_next"] == 0
    finally:
        emulator.clear_faults()


def test_credential_validation_failures_then_success(a, emulator):
    emulator.set_faults(credential_validation_failures=2, credential_failure_format="alternate")
    aws = provisioning.CreateCredentialAwsCredentials(sts_role=provisioning.CreateCredentialStsRole(role_arn=ROLE_ARN))
    try:
        with pytest.raises(errors.BadRequest) as first:
            a.credentials.create(credentials_name=unique("c"), aws_credentials=aws)
        assert first.value.error_code == "MALFORMED_REQUEST"
        assert "Failed credential validation checks" in str(first.value)
        with pytest.raises(errors.DatabricksError) as second:  # text/plain body
            a.credentials.create(credentials_name=unique("c"), aws_credentials=aws)
        assert "Failed credential validation checks" in str(second.value)
        assert second.value.error_code == "MALFORMED_REQUEST"
        cred = a.credentials.create(credentials_name=unique("c"), aws_credentials=aws)
        assert cred.credentials_id
    finally:
        emulator.clear_faults()


def test_latency_fault(a, emulator):
    import time

    emulator.set_faults(latency_ms=300, path_contains="/storage-configurations")
    try:
        start = time.monotonic()
        list(a.storage.list())
        assert time.monotonic() - start >= 0.3
    finally:
        emulator.clear_faults()
