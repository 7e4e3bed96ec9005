//! The engine end to end, continued: share catalogs, tags, comments, grants,
//! information_schema, SHOW and DESCRIBE.

use serde_json::json;

use super::*;

/// The provider metastore `p` shares schema `main.s` with `m` through catalog `shared`.
fn with_share(s: &mut State) {
    s.metastores.get_mut("m").unwrap()["global_metastore_id"] = json!("aws:us-west-2:m");
    s.metastores.insert(
        "p".into(),
        json!({"global_metastore_id": "aws:us-east-1:p"}),
    );
    let p_session = Session {
        metastore_id: "p".into(),
        ..session()
    };
    let pd = s.metastore_data.entry("p".into()).or_default();
    pd.catalogs.insert("main".into(), json!({"name": "main"}));
    pd.schemas.insert("main.s".into(), json!({}));
    pd.shares.insert(
        "sh".into(),
        json!({"name": "sh", "objects": [{"name": "main.s", "data_object_type": "SCHEMA"}]}),
    );
    pd.recipients.insert(
        "r".into(),
        json!({"name": "r", "data_recipient_global_metastore_id": "aws:us-west-2:m"}),
    );
    for sql in [
        "CREATE TABLE main.s.orders (id INT)",
        "INSERT INTO main.s.orders VALUES (1), (2)",
        "GRANT SELECT ON SHARE sh TO RECIPIENT r",
    ] {
        let stmt = parse::parse(sql).unwrap();
        execute(s, &p_session, &stmt).unwrap();
    }
    let md = s.metastore_data.get_mut("m").unwrap();
    md.providers.insert(
        "prov".into(),
        json!({"name": "prov", "data_provider_global_metastore_id": "aws:us-east-1:p"}),
    );
    md.catalogs.insert("shared".into(), json!({"name": "shared", "catalog_type": "DELTASHARING_CATALOG", "provider_name": "prov", "share_name": "sh"}));
}

#[test]
fn share_catalogs_are_read_only_and_clonable() {
    let mut s = state();
    with_share(&mut s);
    assert_eq!(
        one(&ok(&mut s, "SELECT count(*) FROM shared.s.orders")),
        "2"
    );
    for write in [
        "INSERT INTO shared.s.orders VALUES (3)",
        "DELETE FROM shared.s.orders",
        "CREATE TABLE shared.s.x (id INT)",
        "DROP TABLE shared.s.orders",
        "ALTER TABLE shared.s.orders SET TAGS ('a')",
    ] {
        let e = run(&mut s, write).unwrap_err();
        assert_eq!(
            (e.error_class.as_str(), e.sql_state.as_str()),
            ("UNSUPPORTED_FEATURE.TABLE_OPERATION", "0A000"),
            "{write}"
        );
    }
    let m = clone_metrics(&ok(
        &mut s,
        "CREATE TABLE main.s.local DEEP CLONE shared.s.orders",
    ));
    assert_eq!(m[3].1, 1);
    assert_eq!(one(&ok(&mut s, "SELECT count(*) FROM local")), "2");
    let again = clone_metrics(&ok(
        &mut s,
        "CREATE OR REPLACE TABLE local DEEP CLONE shared.s.orders",
    ));
    assert_eq!(again[3].1, 0);
    let r = ok(&mut s, "SELECT table_catalog, table_name FROM system.information_schema.tables WHERE table_catalog = 'shared'");
    assert_eq!(rows(&r), [[Some("shared".into()), Some("orders".into())]]);
}

#[test]
fn tags_comments_and_grants_land_where_the_rest_api_reads_them() {
    let mut s = state();
    ok(&mut s, "CREATE TABLE t (id INT, email STRING)");
    ok(&mut s, "CREATE VIEW v AS SELECT id FROM t");
    ok(&mut s, "ALTER TABLE t SET TAGS ('pii' = 'yes', 'tier')");
    ok(
        &mut s,
        "ALTER TABLE t ALTER COLUMN email SET TAGS ('pii' = 'email')",
    );
    ok(&mut s, "ALTER VIEW v SET TAGS ('k' = 'v')");
    ok(&mut s, "ALTER SCHEMA s SET TAGS ('team' = 'data')");
    ok(&mut s, "ALTER CATALOG main SET TAGS ('env' = 'prod')");
    ok(&mut s, "ALTER TABLE t UNSET TAGS ('tier')");
    let tags = &s.metastore_data["m"].tags;
    assert_eq!(tags["TABLE/main.s.t"].len(), 1);
    assert_eq!(tags["COLUMN/main.s.t.email"]["pii"], "email");
    assert_eq!(tags["TABLE/main.s.v"]["k"], "v");
    assert_eq!(tags["SCHEMA/main.s"]["team"], "data");
    assert_eq!(tags["CATALOG/main"]["env"], "prod");
    assert_eq!(
        run(&mut s, "ALTER TABLE t ALTER COLUMN nope SET TAGS ('a')")
            .unwrap_err()
            .sql_state,
        "42703"
    );
    ok(&mut s, "COMMENT ON TABLE t IS 'people'");
    ok(&mut s, "COMMENT ON COLUMN t.id IS 'key'");
    ok(&mut s, "ALTER TABLE t ALTER COLUMN email COMMENT 'contact'");
    ok(&mut s, "COMMENT ON SCHEMA s IS 'sch'");
    let t = &s.metastore_data["m"].tables["main.s.t"];
    assert_eq!(t.info["comment"], "people");
    assert_eq!(t.columns[0].comment.as_deref(), Some("key"));
    assert_eq!(t.columns[1].comment.as_deref(), Some("contact"));
    assert_eq!(t.history.last().unwrap().operation, "CHANGE COLUMN");
    assert_eq!(s.metastore_data["m"].schemas["main.s"]["comment"], "sch");
    ok(
        &mut s,
        "GRANT SELECT, MODIFY ON TABLE t TO `bob@example.com`",
    );
    ok(&mut s, "GRANT SELECT ON VIEW v TO analysts");
    ok(&mut s, "GRANT USE CATALOG ON CATALOG main TO analysts");
    ok(&mut s, "GRANT USE SCHEMA ON SCHEMA main.s TO analysts");
    ok(&mut s, "REVOKE MODIFY ON TABLE t FROM `bob@example.com`");
    let g = &s.metastore_data["m"].grants;
    assert_eq!(
        g["TABLE/main.s.t"]["bob@example.com"]
            .iter()
            .collect::<Vec<_>>(),
        ["SELECT"]
    );
    assert!(g["TABLE/main.s.v"]["analysts"].contains("SELECT"));
    assert!(g["CATALOG/main"]["analysts"].contains("USE_CATALOG"));
    assert_eq!(
        run(&mut s, "GRANT SELECT ON TABLE nope TO x")
            .unwrap_err()
            .sql_state,
        "42P01"
    );
    let r = ok(&mut s, "SELECT grantee, table_name, privilege_type FROM main.information_schema.table_privileges ORDER BY table_name");
    assert_eq!(
        rows(&r),
        [
            [
                Some("bob@example.com".into()),
                Some("t".into()),
                Some("SELECT".into())
            ],
            [
                Some("analysts".into()),
                Some("v".into()),
                Some("SELECT".into())
            ]
        ]
    );
    let r = ok(
        &mut s,
        "SELECT column_name, tag_name, tag_value FROM system.information_schema.column_tags",
    );
    assert_eq!(
        rows(&r),
        [[
            Some("email".into()),
            Some("pii".into()),
            Some("email".into())
        ]]
    );
    let r = ok(
        &mut s,
        "SELECT catalog_name, schema_name, tag_name FROM system.information_schema.schema_tags",
    );
    assert_eq!(
        rows(&r),
        [[Some("main".into()), Some("s".into()), Some("team".into())]]
    );
    assert_eq!(
        rows(&ok(
            &mut s,
            "SELECT count(*) FROM system.information_schema.catalog_privileges"
        ))[0][0]
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        rows(&ok(
            &mut s,
            "SELECT privilege_type FROM system.information_schema.schema_privileges"
        ))[0][0]
            .as_deref(),
        Some("USE_SCHEMA")
    );
}

#[test]
fn information_schema_lists_tables_views_and_columns() {
    let mut s = state();
    ok(
        &mut s,
        "CREATE TABLE t (id BIGINT NOT NULL COMMENT 'k', name STRING)",
    );
    ok(&mut s, "CREATE VIEW v AS SELECT id FROM t");
    let r = ok(&mut s, "SELECT table_name, table_type FROM system.information_schema.tables WHERE table_schema = 's' ORDER BY table_name");
    assert_eq!(
        rows(&r),
        [
            [Some("t".into()), Some("MANAGED".into())],
            [Some("v".into()), Some("VIEW".into())]
        ]
    );
    let r = ok(&mut s, "SELECT column_name, ordinal_position, is_nullable, full_data_type, data_type, comment FROM main.information_schema.columns WHERE table_name = 't'");
    assert_eq!(
        rows(&r)[0],
        [
            Some("id".into()),
            Some("1".into()),
            Some("NO".into()),
            Some("bigint".into()),
            Some("LONG".into()),
            Some("k".into())
        ]
    );
    let r = ok(
        &mut s,
        "SELECT view_definition FROM information_schema.views",
    );
    assert_eq!(one(&r), "SELECT id FROM t");
    assert_eq!(
        run(&mut s, "SELECT * FROM nope.information_schema.tables")
            .unwrap_err()
            .sql_state,
        "42704"
    );
    assert_eq!(
        run(&mut s, "SELECT * FROM system.information_schema.nope")
            .unwrap_err()
            .sql_state,
        "42P01"
    );
}

#[test]
fn show_tables_schemas_and_catalogs() {
    let mut s = state();
    ok(&mut s, "CREATE TABLE orders (id INT)");
    ok(&mut s, "CREATE TABLE items (id INT)");
    ok(&mut s, "CREATE VIEW v AS SELECT id FROM orders");
    let r = ok(&mut s, "SHOW TABLES");
    assert_eq!(
        r.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["database", "tableName", "isTemporary"]
    );
    assert_eq!(
        rows(&r)
            .iter()
            .map(|r| r[1].clone().unwrap())
            .collect::<Vec<_>>(),
        ["items", "orders", "v"]
    );
    assert_eq!(
        rows(&ok(&mut s, "SHOW TABLES IN main.s LIKE 'o*|v'")).len(),
        2
    );
    assert_eq!(
        run(&mut s, "SHOW TABLES IN main.nope")
            .unwrap_err()
            .error_class,
        "SCHEMA_NOT_FOUND"
    );
    assert_eq!(
        rows(&ok(&mut s, "SHOW SCHEMAS IN main")),
        [[Some("s".into())]]
    );
    assert_eq!(rows(&ok(&mut s, "SHOW CATALOGS")), [[Some("main".into())]]);
    with_share(&mut s);
    assert_eq!(
        rows(&ok(&mut s, "SHOW TABLES IN shared.s"))[0][1].as_deref(),
        Some("orders")
    );
}

#[test]
fn describe_and_show_create_table() {
    let mut s = state();
    ok(&mut s, "CREATE TABLE t (id BIGINT NOT NULL COMMENT 'k', name STRING) USING DELTA PARTITIONED BY (name) COMMENT 'tbl' TBLPROPERTIES ('a' = 'b')");
    let r = ok(&mut s, "DESCRIBE TABLE t");
    assert_eq!(
        rows(&r)[0],
        [Some("id".into()), Some("bigint".into()), Some("k".into())]
    );
    let text = one(&ok(&mut s, "SHOW CREATE TABLE t"));
    assert!(text.starts_with("CREATE TABLE main.s.t (\n  id BIGINT NOT NULL COMMENT 'k',\n  name STRING)\nUSING delta\nPARTITIONED BY (name)\nCOMMENT 'tbl'\n"), "{text}");
    assert!(text.contains("TBLPROPERTIES (\n  'a' = 'b')"));
    // What SHOW CREATE TABLE prints creates the same table again.
    let again = text.replace("main.s.t", "main.s.t2");
    ok(&mut s, &again);
    let d = &s.metastore_data["m"].tables;
    assert_eq!(d["main.s.t"].columns, d["main.s.t2"].columns);
}

/// CREATE [EXTERNAL] VOLUME makes the record the REST API makes (an external one only
/// under an external location), and DROP VOLUME removes it with its grants.
#[test]
fn volumes_are_created_and_dropped_with_sql() {
    let mut s = state();
    let d = s.metastore_data.get_mut("m").unwrap();
    d.external_locations.insert(
        "landing".into(),
        json!({"name": "landing", "url": "s3://landing/vols", "credential_name": "c"}),
    );
    ok(&mut s, "CREATE EXTERNAL VOLUME IF NOT EXISTS main.s.raw LOCATION 's3://landing/vols/raw' COMMENT 'files'");
    ok(
        &mut s,
        "CREATE EXTERNAL VOLUME IF NOT EXISTS main.s.raw LOCATION 's3://landing/vols/raw'",
    );
    ok(&mut s, "CREATE VOLUME main.s.scratch");
    let d = &s.metastore_data["m"];
    let raw = &d.volumes["main.s.raw"];
    assert_eq!(raw["volume_type"], "EXTERNAL");
    assert_eq!(raw["storage_location"], "s3://landing/vols/raw");
    assert_eq!(raw["comment"], "files");
    assert_eq!(raw["owner"], session().user);
    assert_eq!(d.volumes["main.s.scratch"]["volume_type"], "MANAGED");
    for (sql, class) in [
        (
            "CREATE EXTERNAL VOLUME main.s.other LOCATION 's3://elsewhere/x'",
            "INVALID_PARAMETER_VALUE",
        ),
        ("CREATE VOLUME main.s.scratch", "VOLUME_ALREADY_EXISTS"),
        (
            "CREATE EXTERNAL VOLUME main.s.nowhere",
            "PARSE_SYNTAX_ERROR",
        ),
        ("DROP VOLUME main.s.missing", "VOLUME_NOT_FOUND"),
    ] {
        let e = run(&mut s, sql).unwrap_err();
        assert_eq!(e.error_class, class, "{sql}: {}", e.message());
    }
    ok(&mut s, "DROP VOLUME main.s.raw");
    ok(&mut s, "DROP VOLUME IF EXISTS main.s.raw");
    assert!(!s.metastore_data["m"].volumes.contains_key("main.s.raw"));
}
