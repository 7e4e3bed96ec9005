"""Delta Sharing through the official SDK, across two regions served by one emulator:
the primary workspace (us-east-1, `w`) shares with the secondary one (us-west-2,
`w2`), each with its own metastore. Shares, share permissions, recipients, providers
(which appear by themselves), a share catalog reading through to the provider's
current tables, and revoking the share.

Tests whose name contains `sql` read or write data with SQL statements, so they need
the emulator's SQL engine."""

import datetime

import pytest
from databricks.sdk import errors
from databricks.sdk.service import catalog, sharing, sql

from conftest import unique

WAIT = datetime.timedelta(seconds=30)


def ident(prefix: str) -> str:
    return unique(prefix).replace("-", "_")


def test_two_regions_have_their_own_metastores(a, w, w2, running_workspace, secondary_workspace):
    east, west = w.metastores.summary(), w2.metastores.summary()
    with pytest.raises(errors.InvalidParameterValue):
        # A workspace only takes a metastore of its own region.
        a.metastore_assignments.create(
            workspace_id=secondary_workspace.workspace_id,
            metastore_id=running_workspace.metastore_id,
            metastore_assignment=catalog.CreateMetastoreAssignment(
                metastore_id=running_workspace.metastore_id, workspace_id=secondary_workspace.workspace_id, default_catalog_name="main"
            ),
        )
    assert a.metastore_assignments.get(secondary_workspace.workspace_id).metastore_assignment.metastore_id == west.metastore_id
    assert east.metastore_id == running_workspace.metastore_id and west.metastore_id == secondary_workspace.metastore_id
    assert (east.region, west.region) == ("us-east-1", "us-west-2")
    assert west.global_metastore_id == f"aws:us-west-2:{west.metastore_id}" != east.global_metastore_id
    assert w2.metastores.current().workspace_id == secondary_workspace.workspace_id
    cat = ident("west_only")
    w2.catalogs.create(cat)
    assert cat in {c.name for c in w2.catalogs.list()}
    assert cat not in {c.name for c in w.catalogs.list()}
    w2.catalogs.delete(cat)


@pytest.fixture(scope="module")
def provider_lake(w):
    """In the primary metastore: a catalog with schemas `sales` and `hr`, external
    tables `sales.orders`, `hr.people` and `hr.pay`, and the location they live in."""
    cred = ident("cred")
    w.storage_credentials.create(cred, aws_iam_role=catalog.AwsIamRoleRequest(role_arn="arn:aws:iam::123456789012:role/uc"))
    bucket = "s3://" + unique("shared")
    loc = w.external_locations.create(ident("loc"), bucket, cred)
    cat = ident("prov")
    w.catalogs.create(cat)
    for schema in ("sales", "hr"):
        w.schemas.create(schema, cat)
    lake = {"catalog": cat, "bucket": bucket}
    for schema, name in (("sales", "orders"), ("hr", "people"), ("hr", "pay")):
        external_table(w, lake, schema, name)
    yield lake
    w.catalogs.delete(cat, force=True)
    w.external_locations.delete(loc.name)
    w.storage_credentials.delete(cred)


def external_table(w, lake, schema: str, name: str):
    return w.tables.create(
        name=name,
        catalog_name=lake["catalog"],
        schema_name=schema,
        table_type=catalog.TableType.EXTERNAL,
        data_source_format=catalog.DataSourceFormat.DELTA,
        storage_location=f"{lake['bucket']}/{schema}/{name}",
        columns=[catalog.ColumnInfo(name="id", type_text="bigint", type_name=catalog.ColumnTypeName.LONG, position=0)],
    )


def add(name: str, kind: sharing.SharedDataObjectDataObjectType, **kw) -> sharing.SharedDataObjectUpdate:
    return sharing.SharedDataObjectUpdate(
        action=sharing.SharedDataObjectUpdateAction.ADD,
        data_object=sharing.SharedDataObject(name=name, data_object_type=kind, **kw),
    )


def select(recipient: str, grant: bool = True) -> sharing.PermissionsChange:
    privs = [sharing.Privilege.SELECT]
    return sharing.PermissionsChange(principal=recipient, add=privs if grant else None, remove=None if grant else privs)


def test_shares_objects_and_their_errors(w, provider_lake):
    cat = provider_lake["catalog"]
    name = ident("share")
    made = w.shares.create(name, comment="for partners")
    assert made.name == name and made.owner and made.created_at
    with pytest.raises(errors.ResourceAlreadyExists):
        w.shares.create(name)
    T, S = sharing.SharedDataObjectDataObjectType.TABLE, sharing.SharedDataObjectDataObjectType.SCHEMA
    updated = w.shares.update(name, updates=[add(f"{cat}.sales", S), add(f"{cat}.hr.people", T, shared_as="staff.people")])
    objs = {o.name: o for o in updated.objects}
    assert objs[f"{cat}.hr.people"].shared_as == "staff.people"
    assert objs[f"{cat}.sales"].status == sharing.SharedDataObjectStatus.ACTIVE
    assert objs[f"{cat}.sales"].added_at and objs[f"{cat}.sales"].added_by
    with pytest.raises(errors.NotFound):
        w.shares.update(name, updates=[add(f"{cat}.hr.nope", T)])
    with pytest.raises(errors.ResourceAlreadyExists):
        w.shares.update(name, updates=[add(f"{cat}.sales", S)])
    with pytest.raises(errors.InvalidParameterValue):
        w.shares.update(name, updates=[add(f"{cat}.hr.pay", T, shared_as=f"{cat}.hr.pay")])
    assert len(w.shares.get(name, include_shared_data=True).objects) == 2
    w.shares.update(
        name,
        updates=[
            sharing.SharedDataObjectUpdate(
                action=sharing.SharedDataObjectUpdateAction.UPDATE,
                data_object=sharing.SharedDataObject(name=f"{cat}.hr.people", comment="staff directory"),
            )
        ],
    )
    people = [o for o in w.shares.get(name, include_shared_data=True).objects if o.name == f"{cat}.hr.people"]
    assert people[0].comment == "staff directory" and people[0].shared_as == "staff.people"
    w.shares.update(
        name,
        updates=[
            sharing.SharedDataObjectUpdate(
                action=sharing.SharedDataObjectUpdateAction.REMOVE, data_object=sharing.SharedDataObject(name=f"{cat}.sales")
            )
        ],
    )
    assert [o.name for o in w.shares.get(name, include_shared_data=True).objects] == [f"{cat}.hr.people"]
    assert name in {s.name for s in w.shares.list_shares()}
    extra = [w.shares.create(ident("more")).name for _ in range(2)]
    page = w.api_client.do("GET", "/api/2.1/unity-catalog/shares", query={"max_results": 1})
    assert len(page["shares"]) == 1 and page["next_page_token"]
    paged = [s.name for s in w.shares.list_shares(max_results=1)]
    assert set(extra + [name]) <= set(paged) and len(paged) == len(set(paged))
    for e in extra:
        w.shares.delete(e)
    renamed = ident("renamed")
    assert w.shares.update(name, new_name=renamed, comment="renamed").name == renamed
    with pytest.raises(errors.NotFound):
        w.shares.get(name)
    with pytest.raises(errors.NotFound):
        w.shares.update_permissions(renamed, changes=[select("not-a-recipient")])
    w.shares.delete(renamed)
    with pytest.raises(errors.NotFound):
        w.shares.get(renamed)


def set_sharing_scope(a, metastore_id: str, scope: catalog.DeltaSharingScopeEnum):
    a.metastores.update(metastore_id, metastore_info=catalog.UpdateAccountsMetastore(delta_sharing_scope=scope))


def test_external_sharing_needs_the_metastore_scope(a, w, running_workspace):
    outside = "aws:eu-central-1:0f0f0f0f-0000-4000-8000-000000000000"  # a metastore of another account
    set_sharing_scope(a, running_workspace.metastore_id, catalog.DeltaSharingScopeEnum.INTERNAL)
    with pytest.raises(errors.InvalidParameterValue, match="External Delta Sharing is not enabled"):
        w.recipients.create(ident("open"), authentication_type=sharing.AuthenticationType.TOKEN)
    with pytest.raises(errors.InvalidParameterValue, match="External Delta Sharing is not enabled"):
        w.recipients.create(ident("other"), authentication_type=sharing.AuthenticationType.DATABRICKS, data_recipient_global_metastore_id=outside)
    set_sharing_scope(a, running_workspace.metastore_id, catalog.DeltaSharingScopeEnum.INTERNAL_AND_EXTERNAL)
    other = w.recipients.create(ident("other"), authentication_type=sharing.AuthenticationType.DATABRICKS, data_recipient_global_metastore_id=outside)
    assert other.region == "eu-central-1"
    w.recipients.delete(other.name)


def test_recipients_and_their_share_permissions(a, w, provider_lake, running_workspace, secondary_workspace):
    r = ident("recipient")
    made = w.recipients.create(
        r, authentication_type=sharing.AuthenticationType.DATABRICKS, data_recipient_global_metastore_id=secondary_workspace.global_metastore_id
    )
    assert made.activated and made.region == "us-west-2" and made.cloud == "aws"
    assert made.metastore_id == secondary_workspace.metastore_id
    with pytest.raises(errors.ResourceAlreadyExists):
        w.recipients.create(r, authentication_type=sharing.AuthenticationType.DATABRICKS, data_recipient_global_metastore_id=secondary_workspace.global_metastore_id)
    with pytest.raises(errors.InvalidParameterValue):
        w.recipients.create(ident("bad"), authentication_type=sharing.AuthenticationType.DATABRICKS, data_recipient_global_metastore_id="us-west-2")
    set_sharing_scope(a, running_workspace.metastore_id, catalog.DeltaSharingScopeEnum.INTERNAL_AND_EXTERNAL)
    token = w.recipients.create(ident("open"), authentication_type=sharing.AuthenticationType.TOKEN)
    assert token.activated is False and token.tokens and token.activation_url
    listed = {x.name for x in w.recipients.list(data_recipient_global_metastore_id=secondary_workspace.global_metastore_id)}
    assert r in listed and token.name not in listed

    shares = sorted(ident("s") for _ in range(3))
    for s in shares:
        w.shares.create(s)
        w.shares.update_permissions(s, changes=[select(r)])
    perms = w.recipients.share_permissions(r)
    assert [p.share_name for p in perms.permissions_out] == shares
    assert perms.permissions_out[0].privilege_assignments[0].privileges == [sharing.Privilege.SELECT]
    page = w.recipients.share_permissions(r, max_results=2)
    assert len(page.permissions_out) == 2 and page.next_page_token
    got = w.shares.share_permissions(shares[0])
    assert [(p.principal, p.privileges) for p in got.privilege_assignments] == [(r, [sharing.Privilege.SELECT])]
    # The UC permissions API reads the same grants for the SHARE securable.
    assert w.grants.get("share", shares[0]).privilege_assignments[0].principal == r
    assert w.recipients.update(r, comment="west coast").comment == "west coast"
    w.recipients.delete(r)
    assert w.shares.share_permissions(shares[0]).privilege_assignments == []
    for s in shares:
        w.shares.delete(s)
    w.recipients.delete(token.name)


@pytest.fixture(scope="module")
def shared(w, w2, provider_lake, running_workspace, secondary_workspace):
    """Share `sales` (a schema) and `hr.people` (a table) of the provider lake with the
    secondary metastore, and mount it there as a share catalog."""
    cat = provider_lake["catalog"]
    share = ident("lake_share")
    w.shares.create(share)
    T, S = sharing.SharedDataObjectDataObjectType.TABLE, sharing.SharedDataObjectDataObjectType.SCHEMA
    w.shares.update(share, updates=[add(f"{cat}.sales", S), add(f"{cat}.hr.people", T)])
    recipient = ident("west")
    w.recipients.create(
        recipient, authentication_type=sharing.AuthenticationType.DATABRICKS, data_recipient_global_metastore_id=secondary_workspace.global_metastore_id
    )
    east_global = w.metastores.summary().global_metastore_id
    providers = list(w2.providers.list(data_provider_global_metastore_id=east_global))
    assert len(providers) == 1, "the provider appears in the recipient's metastore by itself"
    provider = providers[0]
    assert provider.authentication_type == sharing.AuthenticationType.DATABRICKS and provider.metastore_id == running_workspace.metastore_id
    assert share not in {s.name for s in w2.providers.list_shares(provider.name)}, "not granted yet"
    with pytest.raises(errors.NotFound):
        w2.catalogs.create(ident("too_early"), provider_name=provider.name, share_name=share)
    w.shares.update_permissions(share, changes=[select(recipient)])
    assert share in {s.name for s in w2.providers.list_shares(provider.name)}
    mounted = ident("mounted")
    c = w2.catalogs.create(mounted, provider_name=provider.name, share_name=share)
    assert c.catalog_type == catalog.CatalogType.DELTASHARING_CATALOG and c.provider_name == provider.name and c.share_name == share
    yield {"share": share, "recipient": recipient, "provider": provider.name, "catalog": mounted, "source": cat}
    w2.catalogs.delete(mounted)
    w.recipients.delete(recipient)
    w.shares.delete(share)


def test_a_share_catalog_reads_the_providers_current_tables(w, w2, provider_lake, shared):
    mounted = shared["catalog"]
    assert {s.name for s in w2.schemas.list(mounted)} == {"sales", "hr"}
    assert w2.schemas.get(f"{mounted}.hr").catalog_type == catalog.CatalogType.DELTASHARING_CATALOG
    assert [t.name for t in w2.tables.list(mounted, "hr")] == ["people"], "only the named table of hr"
    assert [t.name for t in w2.tables.list(mounted, "sales")] == ["orders"]
    got = w2.tables.get(f"{mounted}.sales.orders")
    assert got.full_name == f"{mounted}.sales.orders" and got.data_source_format == catalog.DataSourceFormat.DELTASHARING
    assert got.columns[0].name == "id" and got.storage_location is None
    assert w2.tables.exists(f"{mounted}.hr.pay").table_exists is False
    with pytest.raises(errors.NotFound):
        w2.tables.get(f"{mounted}.hr.pay")
    # A table created later in the shared schema is shared with no edit of the share.
    external_table(w, provider_lake, "sales", "refunds")
    assert [t.name for t in w2.tables.list(mounted, "sales")] == ["orders", "refunds"]
    assert {t.full_name for t in w2.tables.list_summaries(mounted)} == {f"{mounted}.sales.orders", f"{mounted}.sales.refunds", f"{mounted}.hr.people"}
    assets = w2.providers.list_provider_share_assets(shared["provider"], shared["share"])
    assert assets.share.name == shared["share"]
    assert sorted((t.schema, t.name) for t in assets.tables) == [("hr", "people"), ("sales", "orders"), ("sales", "refunds")]
    assert assets.tables[0].id and assets.volumes == []
    # Read-only for the recipient.
    with pytest.raises(errors.InvalidParameterValue):
        w2.tables.delete(f"{mounted}.sales.orders")
    with pytest.raises(errors.InvalidParameterValue):
        w2.schemas.create("extra", mounted)
    assert w.tables.exists(f"{shared['source']}.sales.orders").table_exists


def test_revoking_the_share_ends_the_reads(w, w2, shared):
    mounted, share, recipient = shared["catalog"], shared["share"], shared["recipient"]
    w.shares.update_permissions(share, changes=[select(recipient, grant=False)])
    assert w.shares.share_permissions(share).privilege_assignments == []
    with pytest.raises(errors.NotFound):
        w2.tables.get(f"{mounted}.sales.orders")
    assert list(w2.schemas.list(mounted)) == []
    assert share not in {s.name for s in w2.providers.list_shares(shared["provider"])}
    w.shares.update_permissions(share, changes=[select(recipient)])
    assert w2.tables.get(f"{mounted}.sales.orders").name == "orders"


# ---------------------------------------------------------------- through the SQL engine


def run_sql(client, warehouse_id: str, statement: str):
    resp = client.statement_execution.execute_statement(statement=statement, warehouse_id=warehouse_id, wait_timeout="30s")
    assert resp.status.state == sql.StatementState.SUCCEEDED, (statement, resp.status)
    return resp


def test_sql_share_catalog_reads_rows_including_a_table_created_later(w, w2, provider_lake, shared):
    east = w.warehouses.create(name=unique("east"), cluster_size="2X-Small", auto_stop_mins=10).result(timeout=WAIT).id
    west = w2.warehouses.create(name=unique("west"), cluster_size="2X-Small", auto_stop_mins=10).result(timeout=WAIT).id
    src, mounted = shared["source"], shared["catalog"]
    run_sql(w, east, f"CREATE TABLE {src}.sales.quotes (id BIGINT, amount DOUBLE)")
    run_sql(w, east, f"INSERT INTO {src}.sales.quotes VALUES (1, 9.5), (2, 20.0)")
    rows = run_sql(w2, west, f"SELECT id, amount FROM {mounted}.sales.quotes ORDER BY id").result.data_array
    assert rows == [["1", "9.5"], ["2", "20.0"]]
    run_sql(w, east, f"INSERT INTO {src}.sales.quotes VALUES (3, 1.0)")
    count = run_sql(w2, west, f"SELECT count(*) FROM {mounted}.sales.quotes").result.data_array
    assert count == [["3"]], "the recipient reads the provider's current version"
    w.warehouses.delete(east)
    w2.warehouses.delete(west)
