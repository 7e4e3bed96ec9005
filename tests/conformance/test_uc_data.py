"""Unity Catalog data objects through the official SDK: tables (REST and SQL-created),
table summaries, functions, entity tag assignments, comments, and grants on tables,
views and functions (principal filter, paging, effective permissions).

Tests whose name contains `sql` create objects with SQL statements
(`w.statement_execution`), so they need the emulator's SQL engine."""

import datetime

import pytest
from databricks.sdk import errors
from databricks.sdk.service import catalog, sql

from conftest import unique

WAIT = datetime.timedelta(seconds=30)


def ident(prefix: str) -> str:
    return unique(prefix).replace("-", "_")


@pytest.fixture(scope="module")
def lake(w):
    """A catalog with schemas `sales` and `hr`, and an external location for tables."""
    cred = ident("cred")
    w.storage_credentials.create(cred, aws_iam_role=catalog.AwsIamRoleRequest(role_arn="arn:aws:iam::123456789012:role/uc"))
    bucket = "s3://" + unique("tables")
    loc = w.external_locations.create(ident("loc"), bucket, cred)
    cat = ident("cat")
    w.catalogs.create(cat)
    for schema in ("sales", "hr"):
        w.schemas.create(schema, cat)
    yield {"catalog": cat, "bucket": bucket}
    w.catalogs.delete(cat, force=True)
    w.external_locations.delete(loc.name)
    w.storage_credentials.delete(cred)


def columns():
    return [
        catalog.ColumnInfo(name="id", type_text="bigint", type_name=catalog.ColumnTypeName.LONG, position=0, nullable=False),
        catalog.ColumnInfo(name="amount", type_text="decimal(10,2)", type_name=catalog.ColumnTypeName.DECIMAL, position=1, nullable=True),
    ]


def external_table(w, lake, schema: str, name: str):
    return w.tables.create(
        name=name,
        catalog_name=lake["catalog"],
        schema_name=schema,
        table_type=catalog.TableType.EXTERNAL,
        data_source_format=catalog.DataSourceFormat.DELTA,
        storage_location=f"{lake['bucket']}/{schema}/{name}",
        columns=columns(),
    )


def test_external_tables_list_get_exists_delete(w, lake):
    cat = lake["catalog"]
    for name in ("orders", "items", "returns"):
        made = external_table(w, lake, "sales", name)
        assert made.full_name == f"{cat}.sales.{name}" and made.table_id
    got = w.tables.get(f"{cat}.sales.orders")
    assert got.table_type == catalog.TableType.EXTERNAL and got.data_source_format == catalog.DataSourceFormat.DELTA
    assert [c.name for c in got.columns] == ["id", "amount"]
    assert got.columns[0].type_name == catalog.ColumnTypeName.LONG and got.columns[0].nullable is False
    assert got.owner and got.created_at and got.metastore_id

    listed = list(w.tables.list(cat, "sales"))
    assert sorted(t.name for t in listed) == ["items", "orders", "returns"]
    assert all(t.columns for t in listed)
    assert all(not t.columns for t in w.tables.list(cat, "sales", omit_columns=True))
    assert all(t.owner is None for t in w.tables.list(cat, "sales", omit_username=True))
    # Paging as the SDK sees it on the wire: two pages of two and one.
    page = w.api_client.do("GET", "/api/2.1/unity-catalog/tables", query={"catalog_name": cat, "schema_name": "sales", "max_results": 2})
    assert len(page["tables"]) == 2 and page["next_page_token"]
    rest = w.api_client.do(
        "GET", "/api/2.1/unity-catalog/tables", query={"catalog_name": cat, "schema_name": "sales", "max_results": 2, "page_token": page["next_page_token"]}
    )
    assert len(rest["tables"]) == 1 and "next_page_token" not in rest
    with pytest.raises(errors.InvalidParameterValue):
        list(w.tables.list(cat, "sales", max_results=-1))
    with pytest.raises(errors.NotFound):
        list(w.tables.list(cat, "nope"))

    assert w.tables.exists(f"{cat}.sales.orders").table_exists is True
    assert w.tables.exists(f"{cat}.sales.nope").table_exists is False
    w.tables.update(f"{cat}.sales.orders", owner="data-team")
    assert w.tables.get(f"{cat}.sales.orders").owner == "data-team"

    w.tables.delete(f"{cat}.sales.returns")
    with pytest.raises(errors.NotFound):
        w.tables.get(f"{cat}.sales.returns")
    with pytest.raises(errors.NotFound):
        w.tables.delete(f"{cat}.sales.returns")
    with pytest.raises(errors.ResourceConflict):
        external_table(w, lake, "sales", "orders")


def test_table_create_accepts_only_external_delta_under_a_location(w, lake):
    cat = lake["catalog"]
    with pytest.raises(errors.InvalidParameterValue):
        w.tables.create(
            name="m", catalog_name=cat, schema_name="sales", table_type=catalog.TableType.MANAGED,
            data_source_format=catalog.DataSourceFormat.DELTA, storage_location=f"{lake['bucket']}/m",
        )
    with pytest.raises(errors.InvalidParameterValue):
        w.tables.create(
            name="x", catalog_name=cat, schema_name="sales", table_type=catalog.TableType.EXTERNAL,
            data_source_format=catalog.DataSourceFormat.DELTA, storage_location="s3://nowhere/x",
        )
    with pytest.raises(errors.NotFound):
        w.tables.create(
            name="x", catalog_name=cat, schema_name="nope", table_type=catalog.TableType.EXTERNAL,
            data_source_format=catalog.DataSourceFormat.DELTA, storage_location=f"{lake['bucket']}/x",
        )


def test_table_summaries_filter_and_page(w, lake):
    cat = lake["catalog"]
    for schema, name in (("hr", "people"), ("hr", "pay"), ("sales", "leads")):
        external_table(w, lake, schema, name)
    hr = [t.full_name for t in w.tables.list_summaries(cat, schema_name_pattern="h_")]
    assert hr == [f"{cat}.hr.pay", f"{cat}.hr.people"]
    p = {t.full_name for t in w.tables.list_summaries(cat, table_name_pattern="p%")}
    assert p == {f"{cat}.hr.pay", f"{cat}.hr.people"}
    summary = next(iter(w.tables.list_summaries(cat, table_name_pattern="leads")))
    assert summary.table_type == catalog.TableType.EXTERNAL
    page = w.api_client.do("GET", "/api/2.1/unity-catalog/table-summaries", query={"catalog_name": cat, "max_results": 1})
    assert len(page["tables"]) == 1 and page["next_page_token"]
    everything = [t.full_name for t in w.tables.list_summaries(cat, max_results=1)]
    assert len(everything) == len(set(everything)) >= 3


def test_grants_on_tables_and_functions_filter_by_principal_and_page(w, lake):
    cat = lake["catalog"]
    table = external_table(w, lake, "sales", ident("granted")).full_name
    w.grants.update(
        "table",
        table,
        changes=[
            catalog.PermissionsChange(principal="analysts", add=[catalog.Privilege.SELECT]),
            catalog.PermissionsChange(principal="engineers", add=[catalog.Privilege.SELECT, catalog.Privilege.MODIFY]),
            catalog.PermissionsChange(principal="auditors", add=[catalog.Privilege.SELECT]),
        ],
    )
    mine = w.grants.get("table", table, principal="engineers").privilege_assignments
    assert [(p.principal, set(p.privileges)) for p in mine] == [("engineers", {catalog.Privilege.SELECT, catalog.Privilege.MODIFY})]
    first = w.grants.get("table", table, max_results=2)
    assert [p.principal for p in first.privilege_assignments] == ["analysts", "auditors"] and first.next_page_token
    second = w.grants.get("table", table, max_results=2, page_token=first.next_page_token)
    assert [p.principal for p in second.privilege_assignments] == ["engineers"] and not second.next_page_token
    w.grants.update("table", table, changes=[catalog.PermissionsChange(principal="engineers", remove=[catalog.Privilege.MODIFY])])
    assert w.grants.get("table", table, principal="engineers").privilege_assignments[0].privileges == [catalog.Privilege.SELECT]
    with pytest.raises(errors.NotFound):
        w.grants.get("table", f"{cat}.sales.nope")

    w.grants.update("schema", f"{cat}.sales", changes=[catalog.PermissionsChange(principal="analysts", add=[catalog.Privilege.USE_SCHEMA])])
    w.grants.update("catalog", cat, changes=[catalog.PermissionsChange(principal="analysts", add=[catalog.Privilege.USE_CATALOG])])
    eff = w.grants.get_effective("table", table, principal="analysts").privilege_assignments
    got = {(p.privilege, p.inherited_from_type, p.inherited_from_name) for p in eff[0].privileges}
    assert got == {
        (catalog.Privilege.SELECT, None, None),
        (catalog.Privilege.USE_SCHEMA, catalog.SecurableType.SCHEMA, f"{cat}.sales"),
        (catalog.Privilege.USE_CATALOG, catalog.SecurableType.CATALOG, cat),
    }

    fn = create_function(w, cat, "sales", ident("fn"))
    w.grants.update("function", fn.full_name, changes=[catalog.PermissionsChange(principal="analysts", add=[catalog.Privilege.EXECUTE])])
    assert w.grants.get("function", fn.full_name).privilege_assignments[0].privileges == [catalog.Privilege.EXECUTE]


def create_function(w, cat: str, schema: str, name: str):
    return w.functions.create(
        function_info=catalog.CreateFunction(
            name=name,
            catalog_name=cat,
            schema_name=schema,
            input_params=catalog.FunctionParameterInfos(
                parameters=[catalog.FunctionParameterInfo(name="x", type_text="int", type_name=catalog.ColumnTypeName.INT, position=0)]
            ),
            data_type=catalog.ColumnTypeName.INT,
            full_data_type="int",
            routine_body=catalog.CreateFunctionRoutineBody.SQL,
            routine_definition="x + 1",
            parameter_style=catalog.CreateFunctionParameterStyle.S,
            is_deterministic=True,
            sql_data_access=catalog.CreateFunctionSqlDataAccess.CONTAINS_SQL,
            is_null_call=False,
            security_type=catalog.CreateFunctionSecurityType.DEFINER,
            specific_name=name,
            comment="adds one",
        )
    )


def test_functions_create_list_get_update_delete(w, lake):
    cat = lake["catalog"]
    names = sorted(ident("fn") for _ in range(3))
    for n in names:
        made = create_function(w, cat, "hr", n)
        assert made.full_name == f"{cat}.hr.{n}" and made.function_id and made.owner
        assert made.routine_definition == "x + 1" and made.input_params.parameters[0].name == "x"
    with pytest.raises(errors.ResourceConflict):
        create_function(w, cat, "hr", names[0])
    with pytest.raises(errors.NotFound):
        create_function(w, cat, "nope", "f")
    assert [f.name for f in w.functions.list(cat, "hr")] == names
    assert [f.name for f in w.functions.list(cat, "hr", max_results=1)] == names
    got = w.functions.get(f"{cat}.hr.{names[0]}")
    assert got.data_type == catalog.ColumnTypeName.INT and got.comment == "adds one"
    assert w.functions.update(f"{cat}.hr.{names[0]}", owner="team").owner == "team"
    w.functions.delete(f"{cat}.hr.{names[0]}")
    with pytest.raises(errors.NotFound):
        w.functions.get(f"{cat}.hr.{names[0]}")


def test_entity_tags_on_catalogs_schemas_tables_and_columns(w, lake):
    cat = lake["catalog"]
    table = external_table(w, lake, "hr", ident("tagged")).full_name
    for entity_type, name in (("catalogs", cat), ("schemas", f"{cat}.hr"), ("tables", table), ("columns", f"{table}.id")):
        made = w.entity_tag_assignments.create(
            catalog.EntityTagAssignment(entity_type=entity_type, entity_name=name, tag_key="owner_team", tag_value="hr")
        )
        assert made.tag_value == "hr" and made.update_time is not None and made.updated_by
    w.entity_tag_assignments.create(catalog.EntityTagAssignment(entity_type="columns", entity_name=f"{table}.id", tag_key="pii"))
    keys = [t.tag_key for t in w.entity_tag_assignments.list("columns", f"{table}.id")]
    assert keys == ["owner_team", "pii"]
    assert [t.tag_key for t in w.entity_tag_assignments.list("columns", f"{table}.id", max_results=1)] == keys
    assert w.entity_tag_assignments.get("columns", f"{table}.id", "pii").tag_value is None
    with pytest.raises(errors.ResourceAlreadyExists):
        w.entity_tag_assignments.create(catalog.EntityTagAssignment(entity_type="tables", entity_name=table, tag_key="owner_team"))
    with pytest.raises(errors.NotFound):
        w.entity_tag_assignments.create(catalog.EntityTagAssignment(entity_type="columns", entity_name=f"{table}.nope", tag_key="k"))
    updated = w.entity_tag_assignments.update(
        "tables", table, "owner_team", catalog.EntityTagAssignment(entity_type="tables", entity_name=table, tag_key="owner_team", tag_value="finance"), "tag_value"
    )
    assert updated.tag_value == "finance"
    assert w.entity_tag_assignments.get("tables", table, "owner_team").tag_value == "finance"
    w.entity_tag_assignments.delete("tables", table, "owner_team")
    with pytest.raises(errors.NotFound):
        w.entity_tag_assignments.get("tables", table, "owner_team")
    w.tables.delete(table)
    with pytest.raises(errors.NotFound):
        list(w.entity_tag_assignments.list("tables", table))


# ---------------------------------------------------------------- through the SQL engine


@pytest.fixture(scope="module")
def warehouse(w):
    wh = w.warehouses.create(name=unique("uc-data"), cluster_size="2X-Small", auto_stop_mins=10).result(timeout=WAIT)
    yield wh.id
    w.warehouses.delete(wh.id)


def run_sql(w, warehouse_id: str, statement: str):
    resp = w.statement_execution.execute_statement(statement=statement, warehouse_id=warehouse_id, wait_timeout="30s")
    assert resp.status.state == sql.StatementState.SUCCEEDED, (statement, resp.status)
    return resp


def test_sql_tables_views_and_comments_through_rest(w, lake, warehouse):
    cat = lake["catalog"]
    run_sql(w, warehouse, f"CREATE TABLE {cat}.sales.deals (id BIGINT COMMENT 'key', region STRING) COMMENT 'won deals'")
    run_sql(w, warehouse, f"INSERT INTO {cat}.sales.deals VALUES (1, 'emea'), (2, 'amer')")
    run_sql(w, warehouse, f"CREATE VIEW {cat}.sales.emea_deals AS SELECT * FROM {cat}.sales.deals WHERE region = 'emea'")
    got = w.tables.get(f"{cat}.sales.deals")
    assert got.table_type == catalog.TableType.MANAGED and got.comment == "won deals"
    assert [(c.name, c.type_name, c.comment) for c in got.columns] == [("id", catalog.ColumnTypeName.LONG, "key"), ("region", catalog.ColumnTypeName.STRING, None)]
    view = w.tables.get(f"{cat}.sales.emea_deals")
    assert view.table_type == catalog.TableType.VIEW and view.view_definition
    assert {"deals", "emea_deals"} <= {t.name for t in w.tables.list(cat, "sales")}
    # Views are TABLE securables in the permissions API, as in Databricks.
    w.grants.update("table", view.full_name, changes=[catalog.PermissionsChange(principal="analysts", add=[catalog.Privilege.SELECT])])
    assert w.grants.get("table", view.full_name).privilege_assignments[0].principal == "analysts"
    run_sql(w, warehouse, f"COMMENT ON TABLE {cat}.sales.deals IS 'all deals'")
    run_sql(w, warehouse, f"ALTER TABLE {cat}.sales.deals ALTER COLUMN region COMMENT 'sales region'")
    got = w.tables.get(f"{cat}.sales.deals")
    assert got.comment == "all deals" and got.columns[1].comment == "sales region"
    w.tables.delete(f"{cat}.sales.emea_deals")
    assert w.tables.exists(f"{cat}.sales.emea_deals").table_exists is False


def test_sql_tags_read_through_rest(w, lake, warehouse):
    cat = lake["catalog"]
    run_sql(w, warehouse, f"CREATE TABLE {cat}.hr.staff (id BIGINT, email STRING)")
    run_sql(w, warehouse, f"ALTER TABLE {cat}.hr.staff SET TAGS ('domain' = 'hr')")
    run_sql(w, warehouse, f"ALTER TABLE {cat}.hr.staff ALTER COLUMN email SET TAGS ('pii')")
    assert w.entity_tag_assignments.get("tables", f"{cat}.hr.staff", "domain").tag_value == "hr"
    assert [t.tag_key for t in w.entity_tag_assignments.list("columns", f"{cat}.hr.staff.email")] == ["pii"]
