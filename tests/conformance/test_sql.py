"""SQL warehouses and the Statement Execution API, through the official SDK: statements
run real SQL against Unity Catalog, with Databricks' states, result manifests, chunks
and errors."""

import datetime
import time

import pytest
from databricks.sdk import errors
from databricks.sdk.service import sql

from conftest import unique

WAIT = datetime.timedelta(seconds=30)
TERMINAL = {sql.StatementState.SUCCEEDED, sql.StatementState.FAILED, sql.StatementState.CANCELED, sql.StatementState.CLOSED}


@pytest.fixture(scope="module")
def warehouse(w):
    wh = w.warehouses.create(name=unique("sql-wh"), cluster_size="2X-Small", auto_stop_mins=10).result(timeout=WAIT)
    yield wh
    w.warehouses.delete(wh.id)


@pytest.fixture(scope="module")
def schema(w):
    """A catalog and schema of the workspace's metastore, made with the REST API."""
    cat = w.catalogs.create(name=unique("sqlcat").replace("-", "_"))
    sch = w.schemas.create(name="sales", catalog_name=cat.name)
    return sch


def wait_done(w, statement_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        resp = w.statement_execution.get_statement(statement_id)
        if resp.status.state in TERMINAL or time.monotonic() > deadline:
            return resp
        time.sleep(0.1)


def run(w, warehouse, schema, statement, **kw):
    """Submits without waiting (wait_timeout=0s) and polls get_statement to the end."""
    resp = w.statement_execution.execute_statement(
        statement=statement, warehouse_id=warehouse.id, catalog=schema.catalog_name, schema=schema.name, wait_timeout="0s", **kw
    )
    assert resp.status.state in {sql.StatementState.PENDING, sql.StatementState.RUNNING, sql.StatementState.SUCCEEDED}
    return wait_done(w, resp.statement_id)


def ok(w, warehouse, schema, statement, **kw):
    resp = run(w, warehouse, schema, statement, **kw)
    assert resp.status.state == sql.StatementState.SUCCEEDED, (statement, resp.status)
    return resp


def test_create_insert_and_count(w, warehouse, schema):
    ok(w, warehouse, schema, "CREATE TABLE orders (id BIGINT NOT NULL, customer STRING, amount DECIMAL(10,2))")
    ins = ok(w, warehouse, schema, "INSERT INTO orders VALUES (1, 'ann', 10.5), (2, 'bob', 3), (3, NULL, 7.25)")
    assert [c.name for c in ins.manifest.schema.columns] == ["num_affected_rows", "num_inserted_rows"]
    assert ins.result.data_array == [["3", "3"]]
    count = ok(w, warehouse, schema, "SELECT COUNT(*) FROM orders")
    assert count.manifest.schema.columns[0].type_name == sql.ColumnInfoTypeName.LONG
    assert count.result.data_array == [["3"]]
    rows = ok(
        w, warehouse, schema, "SELECT id, customer FROM orders WHERE amount > :min ORDER BY id", parameters=[sql.StatementParameterListItem(name="min", value="5", type="DOUBLE")]
    )
    assert rows.result.data_array == [["1", "ann"], ["3", None]]
    assert rows.manifest.total_row_count == 2 and not rows.manifest.truncated
    # The table is a Unity Catalog table: the REST API sees it.
    full = f"{schema.full_name}.orders"
    history = ok(w, warehouse, schema, f"DESCRIBE HISTORY {full}")
    names = [c.name for c in history.manifest.schema.columns]
    assert names[:6] == ["version", "timestamp", "userId", "userName", "operation", "operationParameters"]
    assert [r[4] for r in history.result.data_array] == ["WRITE", "CREATE TABLE"]


def test_a_missing_table_fails_with_its_sqlstate(w, warehouse, schema):
    resp = run(w, warehouse, schema, "SELECT * FROM no_such_table")
    assert resp.status.state == sql.StatementState.FAILED
    assert resp.status.sql_state == "42P01"
    assert resp.status.error.error_code == sql.ServiceErrorCode.BAD_REQUEST
    assert resp.status.error.message.startswith("[TABLE_OR_VIEW_NOT_FOUND]")
    syntax = run(w, warehouse, schema, "SELEC 1")
    assert syntax.status.state == sql.StatementState.FAILED and syntax.status.sql_state == "42601"


def test_a_statement_waits_up_to_wait_timeout(w, warehouse, schema):
    resp = w.statement_execution.execute_statement(statement="SELECT 1 AS one", warehouse_id=warehouse.id, wait_timeout="10s")
    assert resp.status.state == sql.StatementState.SUCCEEDED
    assert resp.manifest.schema.columns[0].name == "one" and resp.result.data_array == [["1"]]
    with pytest.raises(errors.InvalidParameterValue):
        w.statement_execution.execute_statement(statement="SELECT 1", warehouse_id=warehouse.id, wait_timeout="3s")
    with pytest.raises(errors.InvalidParameterValue):
        w.statement_execution.execute_statement(statement="SELECT 1", warehouse_id=warehouse.id, disposition=sql.Disposition.EXTERNAL_LINKS)


def test_cancel(w, emulator, warehouse, schema):
    emulator.set_faults(statement_seconds=30)
    try:
        resp = w.statement_execution.execute_statement(
            statement=f"CREATE TABLE {schema.full_name}.never (id INT)", warehouse_id=warehouse.id, wait_timeout="0s"
        )
        assert resp.status.state in {sql.StatementState.PENDING, sql.StatementState.RUNNING}
        w.statement_execution.cancel_execution(resp.statement_id)
        assert w.statement_execution.get_statement(resp.statement_id).status.state == sql.StatementState.CANCELED
        timed_out = w.statement_execution.execute_statement(
            statement="SELECT 1", warehouse_id=warehouse.id, wait_timeout="5s", on_wait_timeout=sql.ExecuteStatementRequestOnWaitTimeout.CANCEL
        )
        assert timed_out.status.state == sql.StatementState.CANCELED
    finally:
        emulator.clear_faults()
    # A cancelled statement has no effect.
    assert run(w, warehouse, schema, "SELECT * FROM never").status.sql_state == "42P01"


def test_results_are_paged_in_chunks(w, warehouse, schema):
    ok(w, warehouse, schema, "CREATE TABLE numbers (n INT)")
    values = ", ".join(f"({i})" for i in range(250))
    ok(w, warehouse, schema, f"INSERT INTO numbers VALUES {values}")
    resp = ok(w, warehouse, schema, "SELECT n FROM numbers ORDER BY n")
    m = resp.manifest
    assert m.total_row_count == 250 and m.total_chunk_count == 3
    assert [c.row_offset for c in m.chunks] == [0, 100, 200]
    seen = [r[0] for r in resp.result.data_array]
    next_index = resp.result.next_chunk_index
    while next_index is not None:
        chunk = w.statement_execution.get_statement_result_chunk_n(resp.statement_id, next_index)
        seen += [r[0] for r in chunk.data_array]
        next_index = chunk.next_chunk_index
    assert seen == [str(i) for i in range(250)]
    limited = ok(w, warehouse, schema, "SELECT n FROM numbers", row_limit=10)
    assert limited.manifest.total_row_count == 10 and limited.manifest.truncated


def clone_metrics(resp):
    names = [c.name for c in resp.manifest.schema.columns]
    return dict(zip(names, (int(v) for v in resp.result.data_array[0])))


def test_deep_clone_and_a_no_op_re_clone(w, warehouse, schema):
    ok(w, warehouse, schema, "CREATE TABLE src (id INT) COMMENT 'source'")
    ok(w, warehouse, schema, "INSERT INTO src VALUES (1), (2)")
    ok(w, warehouse, schema, "INSERT INTO src VALUES (3)")
    first = clone_metrics(ok(w, warehouse, schema, "CREATE TABLE dst DEEP CLONE src"))
    assert set(first) == {"source_table_size", "source_num_of_files", "num_removed_files", "num_copied_files", "removed_files_size", "copied_files_size"}
    assert first["source_num_of_files"] == 2 and first["num_copied_files"] == 2
    assert first["copied_files_size"] == first["source_table_size"] > 0
    again = clone_metrics(ok(w, warehouse, schema, "CREATE OR REPLACE TABLE dst DEEP CLONE src"))
    assert again["num_copied_files"] == 0 and again["num_removed_files"] == 0
    assert ok(w, warehouse, schema, "SELECT count(*) FROM dst").result.data_array == [["3"]]
    history = ok(w, warehouse, schema, "DESCRIBE HISTORY dst")
    assert history.result.data_array[0][4] == "CLONE"


def test_information_schema(w, warehouse, schema):
    ok(w, warehouse, schema, "CREATE TABLE IF NOT EXISTS people (id BIGINT COMMENT 'key', email STRING)")
    ok(w, warehouse, schema, "CREATE OR REPLACE VIEW people_ids AS SELECT id FROM people")
    ok(w, warehouse, schema, "ALTER TABLE people ALTER COLUMN email SET TAGS ('pii' = 'email')")
    ok(w, warehouse, schema, "GRANT SELECT ON TABLE people TO `analysts`")
    cat = schema.catalog_name
    tables = ok(
        w,
        warehouse,
        schema,
        "SELECT table_name, table_type FROM system.information_schema.tables WHERE table_catalog = :cat AND table_name LIKE 'people%' ORDER BY table_name",
        parameters=[sql.StatementParameterListItem(name="cat", value=cat)],
    )
    assert tables.result.data_array == [["people", "MANAGED"], ["people_ids", "VIEW"]]
    cols = ok(w, warehouse, schema, f"SELECT column_name, data_type, comment FROM {cat}.information_schema.columns WHERE table_name = 'people' ORDER BY ordinal_position")
    assert cols.result.data_array == [["id", "LONG", "key"], ["email", "STRING", None]]
    tags = ok(w, warehouse, schema, f"SELECT column_name, tag_name, tag_value FROM {cat}.information_schema.column_tags")
    assert tags.result.data_array == [["email", "pii", "email"]]
    privs = ok(w, warehouse, schema, f"SELECT grantee, privilege_type FROM {cat}.information_schema.table_privileges WHERE table_name = 'people'")
    assert privs.result.data_array == [["analysts", "SELECT"]]
    # The view selects through its definition.
    ok(w, warehouse, schema, "INSERT INTO people VALUES (7, 'x@example.com')")
    assert ok(w, warehouse, schema, "SELECT count(*) FROM people_ids WHERE id = 7").result.data_array == [["1"]]


def test_an_unknown_or_deleted_warehouse_is_refused(w, schema):
    with pytest.raises(errors.NotFound):
        w.statement_execution.execute_statement(statement="SELECT 1", warehouse_id="0123456789abcdef")
    gone = w.warehouses.create(name=unique("gone"), cluster_size="2X-Small").result(timeout=WAIT)
    w.warehouses.delete(gone.id)
    with pytest.raises(errors.NotFound):
        w.statement_execution.execute_statement(statement="SELECT 1", warehouse_id=gone.id)


def test_a_statement_starts_a_stopped_warehouse(w, schema):
    wh = w.warehouses.create(name=unique("stopped"), cluster_size="2X-Small").result(timeout=WAIT)
    try:
        w.warehouses.stop(wh.id).result(timeout=WAIT)
        resp = w.statement_execution.execute_statement(statement="SELECT 1", warehouse_id=wh.id, wait_timeout="0s")
        assert resp.status.state == sql.StatementState.PENDING
        assert w.warehouses.get(wh.id).state == sql.State.STARTING
        assert wait_done(w, resp.statement_id).status.state == sql.StatementState.SUCCEEDED
        assert w.warehouses.get(wh.id).state == sql.State.RUNNING
    finally:
        w.warehouses.delete(wh.id)


def test_a_fault_fails_deep_clones(w, emulator, warehouse, schema):
    ok(w, warehouse, schema, "CREATE TABLE IF NOT EXISTS faulty_src (id INT)")
    emulator.set_faults(statement_fail_contains="DEEP CLONE", statement_error_class="DELTA_CLONE_FAILED", statement_sql_state="58030", statement_error_message="copy failed")
    try:
        failed = run(w, warehouse, schema, "CREATE TABLE faulty_dst DEEP CLONE faulty_src")
        assert failed.status.state == sql.StatementState.FAILED
        assert failed.status.sql_state == "58030"
        assert failed.status.error.message == "[DELTA_CLONE_FAILED] copy failed SQLSTATE: 58030"
        assert run(w, warehouse, schema, "SELECT count(*) FROM faulty_src").status.state == sql.StatementState.SUCCEEDED
        assert emulator.control("GET", "/_emulator/faults")["counters"]["statement_failures"] >= 1
    finally:
        emulator.clear_faults()
    assert run(w, warehouse, schema, "SELECT * FROM faulty_dst").status.sql_state == "42P01"
    assert clone_metrics(ok(w, warehouse, schema, "CREATE TABLE faulty_dst DEEP CLONE faulty_src"))["num_copied_files"] == 0


def test_the_request_log_tells_mutating_statements(w, emulator, warehouse, schema):
    since = emulator.control("GET", "/_emulator/requests?since=999999999")["next"]
    ok(w, warehouse, schema, "SELECT 1")
    log = emulator.control("GET", f"/_emulator/requests?since={since}")["requests"]
    api = [r for r in log if "/api/" in r["path"]]
    posts = [r for r in api if r["method"] == "POST" and r["path"].endswith("/api/2.0/sql/statements")]
    assert [(p["statement_kind"], p["mutating"]) for p in posts] == [("SELECT", False)]
    assert not any(r["mutating"] for r in api)
    since = emulator.control("GET", "/_emulator/requests?since=999999999")["next"]
    ok(w, warehouse, schema, "CREATE TABLE IF NOT EXISTS logged (id INT)")
    log = emulator.control("GET", f"/_emulator/requests?since={since}")["requests"]
    assert [(r["statement_kind"], r["mutating"]) for r in log if r.get("statement_kind")] == [("CREATE TABLE", True)]


def test_warehouse_edit(w, warehouse):
    w.warehouses.edit(warehouse.id, name=warehouse.name, cluster_size="Small", max_num_clusters=2, auto_stop_mins=20)
    got = w.warehouses.get(warehouse.id)
    assert got.cluster_size == "Small" and got.max_num_clusters == 2 and got.auto_stop_mins == 20
    assert got.state == sql.State.RUNNING
    with pytest.raises(errors.InvalidParameterValue):
        w.warehouses.edit(warehouse.id, cluster_size="Huge")
    with pytest.raises(errors.NotFound):
        w.warehouses.edit("0123456789abcdef", cluster_size="Small")


def test_grants_tags_and_comments_land_where_the_rest_api_reads_them(w, warehouse, schema):
    cat = schema.catalog_name
    ok(w, warehouse, schema, f"GRANT USE CATALOG, BROWSE ON CATALOG {cat} TO `data-readers`")
    ok(w, warehouse, schema, f"GRANT USE SCHEMA ON SCHEMA {schema.full_name} TO `data-readers`")
    ok(w, warehouse, schema, f"REVOKE BROWSE ON CATALOG {cat} FROM `data-readers`")
    grants = w.grants.get("catalog", cat).privilege_assignments
    assert [(g.principal, sorted(p.value for p in g.privileges)) for g in grants] == [("data-readers", ["USE_CATALOG"])]
    schema_grants = w.grants.get("schema", schema.full_name).privilege_assignments
    assert [g.principal for g in schema_grants] == ["data-readers"]
    ok(w, warehouse, schema, f"COMMENT ON CATALOG {cat} IS 'replicated'")
    ok(w, warehouse, schema, f"COMMENT ON SCHEMA {schema.full_name} IS 'sales data'")
    assert w.catalogs.get(cat).comment == "replicated"
    assert w.schemas.get(schema.full_name).comment == "sales data"
    ok(w, warehouse, schema, f"ALTER CATALOG {cat} SET TAGS ('env' = 'dr')")
    tags = ok(w, warehouse, schema, f"SELECT catalog_name, tag_name, tag_value FROM {cat}.information_schema.catalog_tags")
    assert tags.result.data_array == [[cat, "env", "dr"]]
    # Granting on something that does not exist fails as Databricks does.
    missing = run(w, warehouse, schema, "GRANT SELECT ON TABLE no_such_table TO `data-readers`")
    assert missing.status.state == sql.StatementState.FAILED and missing.status.sql_state == "42P01"


def test_effects_apply_when_a_statement_succeeds(w, emulator, warehouse, schema):
    ok(w, warehouse, schema, "CREATE TABLE IF NOT EXISTS slow_writes (id INT)")
    emulator.set_faults(statement_seconds=3)
    try:
        slow = w.statement_execution.execute_statement(
            statement=f"INSERT INTO {schema.full_name}.slow_writes VALUES (1)", warehouse_id=warehouse.id, wait_timeout="0s"
        )
    finally:
        emulator.clear_faults()
    # A read submitted later but finishing first does not see the running INSERT.
    assert ok(w, warehouse, schema, "SELECT count(*) FROM slow_writes").result.data_array == [["0"]]
    assert w.statement_execution.get_statement(slow.statement_id).status.state == sql.StatementState.RUNNING
    assert wait_done(w, slow.statement_id).status.state == sql.StatementState.SUCCEEDED
    assert ok(w, warehouse, schema, "SELECT count(*) FROM slow_writes").result.data_array == [["1"]]
