//! The engine end to end: SQL text in, state changes and results out.

use serde_json::json;

use super::error::SqlError;
use super::*;

fn session() -> Session {
    Session {
        metastore_id: "m".into(),
        user: "alice@example.com".into(),
        catalog: "main".into(),
        schema: "s".into(),
        now_ms: 1_700_000_000_000,
    }
}

fn state() -> State {
    let mut s = State::default();
    s.metastores
        .insert("m".into(), json!({"storage_root": "s3://root"}));
    let d = s.metastore_data.entry("m".into()).or_default();
    d.catalogs.insert(
        "main".into(),
        json!({"name": "main", "catalog_type": "MANAGED_CATALOG"}),
    );
    d.schemas.insert("main.s".into(), json!({"name": "s"}));
    s
}

fn run(s: &mut State, sql: &str) -> Result<ResultSet, SqlError> {
    let stmt = parse::parse(sql)?;
    execute(s, &session(), &stmt)
}

fn ok(s: &mut State, sql: &str) -> ResultSet {
    run(s, sql).unwrap_or_else(|e| panic!("{sql}: {}", e.message()))
}

fn rows(r: &ResultSet) -> Vec<Vec<Option<String>>> {
    r.rows
        .iter()
        .map(|row| row.iter().map(value::render).collect())
        .collect()
}

fn one(r: &ResultSet) -> String {
    value::render(&r.rows[0][0]).unwrap_or_default()
}

#[test]
fn create_insert_select_count_and_filter() {
    let mut s = state();
    ok(
        &mut s,
        "CREATE TABLE t (id BIGINT, name STRING, amount DOUBLE)",
    );
    let r = ok(
        &mut s,
        "INSERT INTO t VALUES (1, 'a', 1.5), (2, 'b', 2), (3, NULL, -1)",
    );
    assert_eq!(rows(&r), [[Some("3".into()), Some("3".into())]]);
    assert_eq!(r.columns[0].name, "num_affected_rows");
    ok(&mut s, "INSERT INTO main.s.t (id) VALUES (4)");
    assert_eq!(one(&ok(&mut s, "SELECT COUNT(*) FROM t")), "4");
    let r = ok(&mut s, "SELECT COUNT(*) FROM t WHERE name IS NULL");
    assert_eq!(
        (r.columns[0].name.as_str(), one(&r).as_str()),
        ("count(1)", "2")
    );
    let r = ok(
        &mut s,
        "SELECT id, name AS n FROM t WHERE amount > 0 ORDER BY id DESC LIMIT 1",
    );
    assert_eq!(
        r.columns,
        [
            ResultColumn::new("id", "bigint"),
            ResultColumn::new("n", "string")
        ]
    );
    assert_eq!(rows(&r), [[Some("2".into()), Some("b".into())]]);
    let r = ok(&mut s, "SELECT * FROM t WHERE id IN (1, 3) ORDER BY id");
    assert_eq!(rows(&r)[1], [Some("3".into()), None, Some("-1.0".into())]);
    let r = ok(
        &mut s,
        "SELECT sum(id), min(name), max(amount), avg(id) FROM t",
    );
    assert_eq!(
        rows(&r),
        [[
            Some("10".into()),
            Some("a".into()),
            Some("2.0".into()),
            Some("2.5".into())
        ]]
    );
    assert_eq!(one(&ok(&mut s, "SELECT 1")), "1");
    let r = ok(&mut s, "SELECT current_user(), current_catalog(), current_schema(), current_timestamp(), current_date()");
    assert_eq!(
        rows(&r),
        [[
            Some("alice@example.com".into()),
            Some("main".into()),
            Some("s".into()),
            Some("2023-11-14T22:13:20.000Z".into()),
            Some("2023-11-14".into())
        ]]
    );
    ok(&mut s, "CREATE TABLE audit (who STRING, at TIMESTAMP)");
    ok(&mut s, "INSERT INTO audit VALUES (current_user(), now())");
    assert_eq!(
        one(&ok(
            &mut s,
            "SELECT count(*) FROM audit WHERE who = current_user()"
        )),
        "1"
    );
}

#[test]
fn group_by_aggregates_per_key() {
    let mut s = state();
    ok(&mut s, "CREATE TABLE sales (region STRING, amount INT)");
    ok(
        &mut s,
        "INSERT INTO sales VALUES ('eu', 1), ('us', 5), ('eu', 2), (NULL, 7)",
    );
    let r = ok(&mut s, "SELECT region, count(*) AS n, sum(amount) FROM sales GROUP BY region ORDER BY n DESC, region");
    assert_eq!(
        r.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["region", "n", "sum(amount)"]
    );
    assert_eq!(r.columns[0].type_text, "string");
    assert_eq!(
        rows(&r),
        [
            [Some("eu".into()), Some("2".into()), Some("3".into())],
            [None, Some("1".into()), Some("7".into())],
            [Some("us".into()), Some("1".into()), Some("5".into())],
        ]
    );
    let r = ok(
        &mut s,
        "SELECT count(DISTINCT region), count(region), sum(DISTINCT amount) FROM sales",
    );
    assert_eq!(
        rows(&r),
        [[Some("2".into()), Some("3".into()), Some("15".into())]]
    );
    for refused in [
        "SELECT count(*) OVER () FROM sales",
        "SELECT count(*) FILTER (WHERE amount > 1) FROM sales",
        "SELECT lower(DISTINCT region) FROM sales",
    ] {
        assert_eq!(
            run(&mut s, refused).unwrap_err().sql_state,
            "0A000",
            "{refused}"
        );
    }
    let e = run(&mut s, "SELECT region, amount FROM sales GROUP BY region").unwrap_err();
    assert_eq!(
        (e.error_class.as_str(), e.sql_state.as_str()),
        ("MISSING_AGGREGATION", "42803")
    );
    let r = ok(
        &mut s,
        "SELECT table_schema, count(*) FROM system.information_schema.tables GROUP BY table_schema",
    );
    assert_eq!(rows(&r), [[Some("s".into()), Some("1".into())]]);
    let none = ok(
        &mut s,
        "SELECT region, count(*) FROM sales WHERE amount > 100 GROUP BY region",
    );
    assert_eq!((none.columns.len(), none.rows.len()), (2, 0));
}

#[test]
fn every_write_is_a_delta_commit() {
    let mut s = state();
    ok(&mut s, "CREATE TABLE t (id INT)");
    ok(&mut s, "INSERT INTO t VALUES (1), (2)");
    ok(&mut s, "INSERT INTO t VALUES (3)");
    ok(&mut s, "DELETE FROM t WHERE id = 1");
    let t = &s.metastore_data["m"].tables["main.s.t"];
    assert_eq!(t.version, 3);
    assert_eq!(t.files.len(), 2, "the file holding id 1 was rewritten");
    let ops: Vec<&str> = t.history.iter().map(|h| h.operation.as_str()).collect();
    assert_eq!(ops, ["CREATE TABLE", "WRITE", "WRITE", "DELETE"]);
    // A DELETE that matches nothing commits nothing.
    ok(&mut s, "DELETE FROM t WHERE id = 99");
    assert_eq!(s.metastore_data["m"].tables["main.s.t"].version, 3);
    let h = ok(&mut s, "DESCRIBE HISTORY t");
    assert_eq!(h.columns[0].name, "version");
    assert_eq!(h.columns[3].name, "userName");
    assert_eq!(h.columns[5].name, "operationParameters");
    assert_eq!(rows(&h)[0][0].as_deref(), Some("3"));
    assert_eq!(rows(&h)[0][4].as_deref(), Some("DELETE"));
    assert_eq!(rows(&h)[0][3].as_deref(), Some("alice@example.com"));
    assert_eq!(rows(&h)[0][1].as_deref(), Some("2023-11-14T22:13:20.000Z"));
    ok(&mut s, "DELETE FROM t");
    assert_eq!(one(&ok(&mut s, "SELECT count(*) FROM t")), "0");
}

#[test]
fn update_insert_select_and_table_properties_commit() {
    let mut s = state();
    ok(&mut s, "CREATE TABLE t (id INT, name STRING NOT NULL)");
    ok(&mut s, "INSERT INTO t VALUES (1, 'a'), (2, 'b')");
    ok(&mut s, "INSERT INTO t VALUES (3, 'c')");
    let r = ok(
        &mut s,
        "UPDATE t SET name = upper(name), id = id * 10 WHERE id >= 2",
    );
    assert_eq!(rows(&r), [[Some("2".into())]]);
    let r = ok(&mut s, "SELECT id, name FROM t ORDER BY id");
    assert_eq!(
        rows(&r),
        [
            [Some("1".into()), Some("a".into())],
            [Some("20".into()), Some("B".into())],
            [Some("30".into()), Some("C".into())]
        ]
    );
    assert_eq!(
        run(&mut s, "UPDATE t SET name = NULL")
            .unwrap_err()
            .sql_state,
        "23502"
    );
    ok(&mut s, "CREATE TABLE u (id INT, name STRING)");
    let r = ok(&mut s, "INSERT INTO u SELECT id, name FROM t WHERE id > 1");
    assert_eq!(rows(&r)[0][0].as_deref(), Some("2"));
    assert_eq!(
        run(&mut s, "INSERT INTO u SELECT id FROM t")
            .unwrap_err()
            .sql_state,
        "21S01"
    );
    ok(
        &mut s,
        "ALTER TABLE t SET TBLPROPERTIES ('delta.appendOnly' = 'false', 'team' = 'x')",
    );
    ok(&mut s, "ALTER TABLE t UNSET TBLPROPERTIES ('team')");
    assert_eq!(
        run(&mut s, "ALTER TABLE t UNSET TBLPROPERTIES ('team')")
            .unwrap_err()
            .error_class,
        "UNSET_NONEXISTENT_PROPERTIES"
    );
    ok(
        &mut s,
        "ALTER TABLE t UNSET TBLPROPERTIES IF EXISTS ('team')",
    );
    let t = &s.metastore_data["m"].tables["main.s.t"];
    assert_eq!(t.info["properties"], json!({"delta.appendOnly": "false"}));
    let ops: Vec<&str> = t.history.iter().map(|h| h.operation.as_str()).collect();
    assert_eq!(
        ops,
        [
            "CREATE TABLE",
            "WRITE",
            "WRITE",
            "UPDATE",
            "SET TBLPROPERTIES",
            "UNSET TBLPROPERTIES",
            "UNSET TBLPROPERTIES"
        ]
    );
    assert_eq!(
        t.files.len(),
        2,
        "the files with updated rows were rewritten"
    );
}

#[test]
fn errors_carry_databricks_classes_and_sqlstates() {
    let mut s = state();
    let e = run(&mut s, "SELECT * FROM nope").unwrap_err();
    assert_eq!(
        (e.error_class.as_str(), e.sql_state.as_str()),
        ("TABLE_OR_VIEW_NOT_FOUND", "42P01")
    );
    assert!(e.message().starts_with(
        "[TABLE_OR_VIEW_NOT_FOUND] The table or view `main`.`s`.`nope` cannot be found."
    ));
    assert!(e.message().ends_with("SQLSTATE: 42P01"));
    ok(&mut s, "CREATE TABLE t (id INT)");
    assert_eq!(
        run(&mut s, "CREATE TABLE t (id INT)")
            .unwrap_err()
            .sql_state,
        "42P07"
    );
    ok(&mut s, "CREATE TABLE IF NOT EXISTS t (other STRING)");
    assert_eq!(
        s.metastore_data["m"].tables["main.s.t"].columns[0].name,
        "id"
    );
    assert_eq!(
        run(&mut s, "CREATE TABLE main.nope.t (id INT)")
            .unwrap_err()
            .error_class,
        "SCHEMA_NOT_FOUND"
    );
    assert_eq!(
        run(&mut s, "CREATE TABLE other.s.t (id INT)")
            .unwrap_err()
            .sql_state,
        "42704"
    );
    assert_eq!(
        run(&mut s, "INSERT INTO t VALUES ('x')")
            .unwrap_err()
            .error_class,
        "CAST_INVALID_INPUT"
    );
    assert_eq!(
        run(&mut s, "INSERT INTO t VALUES (1, 2)")
            .unwrap_err()
            .sql_state,
        "21S01"
    );
    assert_eq!(
        run(&mut s, "SELECT nope FROM t").unwrap_err().sql_state,
        "42703"
    );
    for refused in [
        "SELECT * FROM t JOIN t u ON true",
        "SELECT * FROM t VERSION AS OF 1",
        "SELECT * FROM t TABLESAMPLE (10 PERCENT)",
        "SELECT * EXCEPT (id) FROM t",
        "SELECT id FROM t QUALIFY id > 1",
        "SELECT id FROM t UNION SELECT id FROM t",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "DELETE FROM t WHERE id = 1 LIMIT 1",
    ] {
        let e = run(&mut s, refused).unwrap_err();
        assert_eq!(e.sql_state, "0A000", "{refused}: {}", e.message());
    }
    assert_eq!(
        run(&mut s, "DROP TABLE nope").unwrap_err().sql_state,
        "42P01"
    );
    ok(&mut s, "DROP TABLE IF EXISTS nope");
}

#[test]
fn create_or_replace_keeps_identity_and_history() {
    let mut s = state();
    ok(&mut s, "CREATE TABLE t (id INT) COMMENT 'one'");
    ok(&mut s, "INSERT INTO t VALUES (1)");
    let id = s.metastore_data["m"].tables["main.s.t"].info["table_id"].clone();
    ok(
        &mut s,
        "CREATE OR REPLACE TABLE t (id INT, name STRING) TBLPROPERTIES ('k' = 'v')",
    );
    let t = &s.metastore_data["m"].tables["main.s.t"];
    assert_eq!(t.info["table_id"], id);
    assert_eq!((t.version, t.row_count(), t.columns.len()), (2, 0, 2));
    assert_eq!(
        t.history.last().unwrap().operation,
        "CREATE OR REPLACE TABLE"
    );
    assert_eq!(t.info["properties"]["k"], "v");
    ok(&mut s, "CREATE TABLE c AS SELECT id * 10 AS x FROM t");
    ok(&mut s, "INSERT INTO t VALUES (7, 'q')");
    ok(
        &mut s,
        "CREATE OR REPLACE TABLE c AS SELECT id * 10 AS x FROM t",
    );
    let c = &s.metastore_data["m"].tables["main.s.c"];
    assert_eq!(c.columns[0].name, "x");
    assert_eq!(c.rows().next().unwrap(), &vec![json!(70)]);
    assert_eq!(
        c.history.last().unwrap().operation,
        "CREATE OR REPLACE TABLE AS SELECT"
    );
}

#[test]
fn views_select_through_their_definition() {
    let mut s = state();
    ok(&mut s, "CREATE TABLE t (id INT, name STRING)");
    ok(&mut s, "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    ok(
        &mut s,
        "CREATE VIEW v COMMENT 'big ids' AS SELECT id, upper(name) AS n FROM t WHERE id > 1",
    );
    let v = &s.metastore_data["m"].tables["main.s.v"];
    assert_eq!(v.table_type(), "VIEW");
    assert_eq!(
        v.info["view_definition"],
        "SELECT id, upper(name) AS n FROM t WHERE id > 1"
    );
    assert_eq!(
        v.info["view_dependencies"]["dependencies"][0]["table"]["table_full_name"],
        "main.s.t"
    );
    assert_eq!(v.columns.len(), 2);
    let r = ok(&mut s, "SELECT n FROM v WHERE id = 3");
    assert_eq!(rows(&r), [[Some("C".into())]]);
    ok(&mut s, "INSERT INTO t VALUES (4, 'd')");
    assert_eq!(one(&ok(&mut s, "SELECT count(*) FROM main.s.v")), "3");
    assert_eq!(
        run(&mut s, "INSERT INTO v VALUES (1, 'x')")
            .unwrap_err()
            .sql_state,
        "42809"
    );
    assert_eq!(
        run(&mut s, "DROP TABLE v").unwrap_err().error_class,
        "WRONG_COMMAND_FOR_OBJECT_TYPE"
    );
    assert_eq!(
        run(&mut s, "CREATE VIEW w AS SELECT * FROM missing")
            .unwrap_err()
            .sql_state,
        "42P01"
    );
    ok(&mut s, "CREATE OR REPLACE VIEW v AS SELECT id FROM t");
    assert_eq!(ok(&mut s, "SELECT * FROM v").columns.len(), 1);
    ok(&mut s, "DROP VIEW v");
    assert!(!s.metastore_data["m"].tables.contains_key("main.s.v"));
}

#[test]
fn sql_functions_are_stored_as_function_info() {
    let mut s = state();
    ok(&mut s, "CREATE FUNCTION f(x INT, label STRING) RETURNS STRING COMMENT 'fmt' RETURN concat(label, x)");
    let f = s.metastore_data["m"].functions["main.s.f"].clone();
    for field in [
        "name",
        "catalog_name",
        "schema_name",
        "full_name",
        "data_type",
        "full_data_type",
        "routine_body",
        "routine_definition",
        "is_deterministic",
        "sql_data_access",
        "security_type",
        "parameter_style",
        "specific_name",
        "owner",
        "function_id",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "metastore_id",
    ] {
        assert!(!f[field].is_null(), "{field}");
    }
    assert_eq!(f["full_name"], "main.s.f");
    assert_eq!(f["data_type"], "STRING");
    assert_eq!(f["routine_body"], "SQL");
    assert_eq!(f["routine_definition"], "concat(label, x)");
    assert_eq!(
        f["input_params"]["parameters"][1],
        json!({"name": "label", "type_text": "string", "type_name": "STRING", "position": 1, "parameter_mode": "IN", "parameter_type": "PARAM", "type_json": f["input_params"]["parameters"][1]["type_json"].clone()})
    );
    assert_eq!(
        run(&mut s, "CREATE FUNCTION f() RETURNS INT RETURN 1")
            .unwrap_err()
            .error_class,
        "ROUTINE_ALREADY_EXISTS"
    );
    let id = f["function_id"].clone();
    ok(
        &mut s,
        "CREATE OR REPLACE FUNCTION f() RETURNS INT RETURN 1",
    );
    assert_eq!(
        s.metastore_data["m"].functions["main.s.f"]["function_id"],
        id
    );
    let r = ok(&mut s, "SELECT routine_name, data_type, routine_definition, is_deterministic FROM main.information_schema.routines");
    assert_eq!(
        rows(&r),
        [[
            Some("f".into()),
            Some("INT".into()),
            Some("1".into()),
            Some("YES".into())
        ]]
    );
    ok(&mut s, "GRANT EXECUTE ON FUNCTION main.s.f TO `etl`");
    assert!(s.metastore_data["m"].grants["FUNCTION/main.s.f"]["etl"].contains("EXECUTE"));
    ok(&mut s, "DROP FUNCTION f");
    assert!(!s.metastore_data["m"]
        .grants
        .contains_key("FUNCTION/main.s.f"));
    assert_eq!(
        run(&mut s, "DROP FUNCTION f").unwrap_err().error_class,
        "ROUTINE_NOT_FOUND"
    );
}

fn clone_metrics(r: &ResultSet) -> Vec<(String, i64)> {
    r.columns
        .iter()
        .zip(&r.rows[0])
        .map(|(c, v)| (c.name.clone(), v.as_i64().unwrap()))
        .collect()
}

#[test]
fn deep_clone_copies_and_a_re_clone_copies_only_what_changed() {
    let mut s = state();
    ok(
        &mut s,
        "CREATE TABLE src (id INT) COMMENT 'source' TBLPROPERTIES ('owner.team' = 'x')",
    );
    ok(&mut s, "INSERT INTO src VALUES (1), (2)");
    ok(&mut s, "INSERT INTO src VALUES (3)");
    let r = ok(&mut s, "CREATE TABLE dst DEEP CLONE src");
    let m = clone_metrics(&r);
    let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "source_table_size",
            "source_num_of_files",
            "num_removed_files",
            "num_copied_files",
            "removed_files_size",
            "copied_files_size"
        ]
    );
    assert_eq!((m[1].1, m[3].1, m[2].1), (2, 2, 0));
    assert_eq!(m[0].1, m[5].1);
    let (src, dst) = (
        s.metastore_data["m"].tables["main.s.src"].clone(),
        s.metastore_data["m"].tables["main.s.dst"].clone(),
    );
    assert_eq!(
        src.files, dst.files,
        "the clone keeps the source's file ids"
    );
    let size: i64 = src.files.iter().map(|f| f.size_bytes).sum();
    let detail = ok(&mut s, "DESCRIBE DETAIL dst");
    let col = |name: &str| detail.columns.iter().position(|c| c.name == name).unwrap();
    assert_eq!(detail.rows[0][col("numFiles")], json!(2));
    assert_eq!(detail.rows[0][col("sizeInBytes")], json!(size));
    assert_eq!(detail.rows[0][col("name")], json!("main.s.dst"));
    assert_eq!(detail.rows[0][col("format")], json!("delta"));
    // The description is not cloned (Databricks: "Metadata not cloned are the table
    // description and user-defined commit metadata").
    assert!(dst.info.get("comment").is_none(), "{}", dst.info);
    assert_eq!(dst.info["properties"]["owner.team"], "x");
    assert_eq!(dst.history.last().unwrap().operation, "CLONE");
    assert_ne!(dst.info["table_id"], src.info["table_id"]);
    assert_eq!(
        run(&mut s, "CREATE TABLE dst DEEP CLONE src")
            .unwrap_err()
            .sql_state,
        "42P07"
    );
    let again = clone_metrics(&ok(&mut s, "CREATE OR REPLACE TABLE dst DEEP CLONE src"));
    assert_eq!(
        (again[3].1, again[2].1),
        (0, 0),
        "an unchanged source copies nothing"
    );
    ok(&mut s, "DELETE FROM src WHERE id = 3");
    ok(&mut s, "INSERT INTO src VALUES (4)");
    let m = clone_metrics(&ok(&mut s, "CREATE OR REPLACE TABLE dst DEEP CLONE src"));
    assert_eq!((m[3].1, m[2].1), (1, 1));
    assert_eq!(
        one(&ok(&mut s, "SELECT count(*) FROM dst WHERE id = 4")),
        "1"
    );
    let shallow = clone_metrics(&ok(&mut s, "CREATE TABLE sh SHALLOW CLONE src"));
    assert_eq!((shallow[3].1, shallow[1].1), (0, 2));
    assert_eq!(one(&ok(&mut s, "SELECT count(*) FROM sh")), "3");
}

#[path = "tests_catalog.rs"]
mod catalog;
