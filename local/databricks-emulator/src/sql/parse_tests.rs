use super::*;

fn ok(sql: &str) -> Stmt {
    parse(sql).unwrap_or_else(|e| panic!("{sql}: {}", e.message()))
}

#[test]
fn create_table_with_every_clause() {
    let Stmt::CreateTable(c) = ok("CREATE OR REPLACE TABLE IF NOT EXISTS Main.S.T (id BIGINT NOT NULL COMMENT 'key', amount DECIMAL(10, 2), tags ARRAY<STRING>) USING DELTA PARTITIONED BY (id) LOCATION 's3://b/p' COMMENT 'tbl' TBLPROPERTIES ('a'='1', delta.appendOnly = 'true');") else {
        panic!("not a create table")
    };
    assert_eq!(c.name, Name(vec!["main".into(), "s".into(), "t".into()]));
    assert!(c.mode.or_replace && c.mode.if_not_exists);
    let TableSource::Columns(cols) = &c.source else {
        panic!()
    };
    assert_eq!(cols[0].type_text, "bigint");
    assert!(!cols[0].nullable);
    assert_eq!(cols[0].comment.as_deref(), Some("key"));
    assert_eq!(cols[1].type_text, "decimal(10,2)");
    assert_eq!(cols[2].type_text, "array<string>");
    assert_eq!(c.options.using.as_deref(), Some("DELTA"));
    assert_eq!(c.options.location.as_deref(), Some("s3://b/p"));
    assert_eq!(c.options.comment.as_deref(), Some("tbl"));
    assert_eq!(c.options.partitioned_by, ["id"]);
    let Stmt::CreateTable(lc) = ok("CREATE TABLE t (a INT, b INT) CLUSTER BY (a, B)") else {
        panic!()
    };
    assert_eq!(lc.options.cluster_by, ["a", "b"]);
    let Stmt::CreateTable(auto) = ok("CREATE TABLE t (a INT) CLUSTER BY AUTO") else {
        panic!()
    };
    assert_eq!(auto.options.cluster_by, ["AUTO"]);
    assert_eq!(
        c.options.properties,
        [
            ("a".to_string(), "1".to_string()),
            ("delta.appendOnly".to_string(), "true".to_string())
        ]
    );
}

#[test]
fn clones_ctas_and_views() {
    let Stmt::CreateTable(c) =
        ok("CREATE TABLE IF NOT EXISTS c.s.t DEEP CLONE shared.s.src LOCATION 's3://x'")
    else {
        panic!()
    };
    assert_eq!(
        c.source,
        TableSource::Clone {
            source: Name(vec!["shared".into(), "s".into(), "src".into()]),
            deep: true
        }
    );
    assert_eq!(c.options.location.as_deref(), Some("s3://x"));
    let Stmt::CreateTable(c) = ok("create or replace table t shallow clone s") else {
        panic!()
    };
    assert!(matches!(c.source, TableSource::Clone { deep: false, .. }));
    assert_eq!(ok("CREATE TABLE t CLONE s").kind(), "DEEP CLONE");
    assert_eq!(
        ok("CREATE TABLE t AS SELECT * FROM s").kind(),
        "CREATE TABLE AS SELECT"
    );
    let Stmt::CreateView(v) =
        ok("CREATE OR REPLACE VIEW v COMMENT 'x' AS SELECT id\n  FROM t WHERE id > 1;")
    else {
        panic!()
    };
    assert_eq!(v.definition, "SELECT id\n  FROM t WHERE id > 1");
    assert_eq!(v.comment.as_deref(), Some("x"));
}

#[test]
fn sql_functions_keep_their_body_as_written() {
    let Stmt::CreateFunction(f) = ok("CREATE FUNCTION main.s.f(x INT COMMENT 'n', y STRING) RETURNS STRING COMMENT 'c' LANGUAGE SQL NOT DETERMINISTIC RETURN concat(y,  x)") else { panic!() };
    assert_eq!(f.params.len(), 2);
    assert_eq!(f.params[0].comment.as_deref(), Some("n"));
    assert_eq!(f.returns, "string");
    assert!(!f.deterministic);
    assert_eq!(f.body, "concat(y,  x)");
    assert_eq!(f.data_access, "CONTAINS_SQL");
    let Stmt::CreateFunction(g) =
        ok("CREATE FUNCTION g() RETURNS BIGINT RETURN SELECT count(*) FROM t")
    else {
        panic!()
    };
    assert_eq!(g.data_access, "READS_SQL_DATA");
}

#[test]
fn governance_statements() {
    assert_eq!(
        ok("ALTER TABLE t SET TAGS ('pii' = 'yes', 'x')"),
        Stmt::SetTags {
            target: Securable::Table {
                name: Name(vec!["t".into()]),
                is_view: false
            },
            tags: vec![("pii".into(), "yes".into()), ("x".into(), String::new())]
        }
    );
    assert!(
        matches!(ok("ALTER VIEW v UNSET TAGS ('a', 'b')"), Stmt::UnsetTags { keys, .. } if keys == ["a", "b"])
    );
    assert!(
        matches!(ok("ALTER TABLE t ALTER COLUMN id SET TAGS ('k' = 'v')"), Stmt::SetTags { target: Securable::Column { column, .. }, .. } if column == "id")
    );
    assert!(
        matches!(ok("ALTER TABLE t ALTER COLUMN id COMMENT 'hi'"), Stmt::SetComment { comment: Some(c), .. } if c == "hi")
    );
    assert!(matches!(
        ok("ALTER SCHEMA main.s SET TAGS ('a' = 'b')"),
        Stmt::SetTags {
            target: Securable::Schema(_),
            ..
        }
    ));
    assert!(matches!(
        ok("ALTER CATALOG main SET TAGS ('a' = 'b')"),
        Stmt::SetTags {
            target: Securable::Catalog(_),
            ..
        }
    ));
    assert!(matches!(
        ok("COMMENT ON TABLE t IS NULL"),
        Stmt::SetComment { comment: None, .. }
    ));
    assert!(
        matches!(ok("COMMENT ON COLUMN main.s.t.id IS 'c'"), Stmt::SetComment { target: Securable::Column { table, column }, .. } if table.0.len() == 3 && column == "id")
    );
    assert_eq!(
        ok("GRANT USE CATALOG, ALL PRIVILEGES ON CATALOG main TO `data-eng@x.com`"),
        Stmt::Grant {
            privileges: vec!["USE_CATALOG".into(), "ALL_PRIVILEGES".into()],
            target: Securable::Catalog(Name(vec!["main".into()])),
            principal: "data-eng@x.com".into()
        }
    );
    assert!(
        matches!(ok("GRANT SELECT ON SHARE sh TO RECIPIENT r"), Stmt::Grant { target: Securable::Share(s), principal, .. } if s == "sh" && principal == "r")
    );
    assert!(
        matches!(ok("REVOKE SELECT ON VIEW v FROM data-eng"), Stmt::Revoke { principal, target: Securable::Table { is_view: true, .. }, .. } if principal == "data-eng")
    );
}

#[test]
fn dml_describe_show_and_drop() {
    assert!(
        matches!(ok("INSERT INTO t (a, b) VALUES (1, 'x'), (2, NULL)"), Stmt::Insert { columns, source: InsertSource::Values(rows), .. } if columns == ["a", "b"] && rows.len() == 2)
    );
    assert!(matches!(
        ok("INSERT INTO t SELECT * FROM s WHERE a > 1"),
        Stmt::Insert {
            source: InsertSource::Query(_),
            ..
        }
    ));
    assert!(
        matches!(ok("UPDATE t SET a = a + 1, b = 'x' WHERE a > 1"), Stmt::Update { assignments, predicate: Some(_), .. } if assignments.len() == 2 && assignments[1].0 == "b")
    );
    assert!(
        matches!(ok("ALTER TABLE t SET TBLPROPERTIES ('delta.appendOnly' = 'true')"), Stmt::SetProperties { properties, .. } if properties[0].0 == "delta.appendOnly")
    );
    assert!(
        matches!(ok("ALTER TABLE t UNSET TBLPROPERTIES IF EXISTS ('a')"), Stmt::UnsetProperties { if_exists: true, keys, .. } if keys == ["a"])
    );
    assert!(matches!(
        ok("DELETE FROM t WHERE id = 1"),
        Stmt::Delete {
            predicate: Some(_),
            ..
        }
    ));
    assert!(matches!(
        ok("DESCRIBE HISTORY main.s.t"),
        Stmt::DescribeHistory(_)
    ));
    assert!(matches!(
        ok("DESC TABLE EXTENDED t"),
        Stmt::DescribeTable(_)
    ));
    assert!(matches!(
        ok("SHOW CREATE TABLE t"),
        Stmt::ShowCreateTable(_)
    ));
    assert!(matches!(
        ok("DROP VIEW IF EXISTS v"),
        Stmt::Drop {
            kind: DropKind::View,
            if_exists: true,
            ..
        }
    ));
    assert!(matches!(
        ok("DROP FUNCTION f"),
        Stmt::Drop {
            kind: DropKind::Function,
            if_exists: false,
            ..
        }
    ));
}

#[test]
fn bad_and_unsupported_sql_is_refused_with_its_error_class() {
    for bad in [
        "SELEC 1",
        "CREATE TABLE t (",
        "SELECT 1; SELECT 2",
        "",
        "CREATE TABLE t",
    ] {
        let e = parse(bad).unwrap_err();
        assert_eq!(
            (e.error_class.as_str(), e.sql_state.as_str()),
            ("PARSE_SYNTAX_ERROR", "42601"),
            "{bad}"
        );
    }
    for unsupported in [
        "UPDATE t SET a = 1 FROM u",
        "SHOW FUNCTIONS",
        "CREATE SCHEMA x",
        "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
    ] {
        let e = parse(unsupported).unwrap_err();
        assert_eq!(e.sql_state, "0A000", "{unsupported}: {}", e.message());
    }
}

#[test]
fn only_reads_are_not_mutating() {
    for read in [
        "SELECT 1",
        "SELECT * FROM t",
        "DESCRIBE HISTORY t",
        "DESCRIBE t",
        "SHOW CREATE TABLE t",
        "DESCRIBE DETAIL t",
        "SHOW TABLES IN s",
        "SHOW SCHEMAS",
        "SHOW CATALOGS",
    ] {
        assert!(!is_mutating(&ok(read)), "{read}");
    }
    for write in [
        "INSERT INTO t VALUES (1)",
        "DELETE FROM t",
        "CREATE TABLE t (a INT)",
        "DROP TABLE t",
        "CREATE TABLE t DEEP CLONE s",
        "GRANT SELECT ON TABLE t TO x",
        "ALTER TABLE t SET TAGS ('a')",
        "COMMENT ON TABLE t IS 'x'",
    ] {
        assert!(is_mutating(&ok(write)), "{write}");
    }
}
