use axum::extract::{Path, State};
use serde_json::json;

use super::*;
use crate::uc_testing::{code, ctx, insert_table, names, ok, q, two_regions, PROVIDER_WS};

fn path(full: &str) -> Path<TablePath> {
    Path(TablePath {
        full_name: full.into(),
    })
}

#[tokio::test]
async fn list_pages_by_name_and_honours_the_omit_flags() {
    let app = two_regions();
    for t in ["e", "a", "d", "b", "c"] {
        insert_table(&app, "p", &format!("main.sales.{t}"));
    }
    insert_table(&app, "p", "main.hr.people");
    let mut seen = vec![];
    let mut token: Option<String> = None;
    loop {
        let mut args = vec![
            ("catalog_name", "main"),
            ("schema_name", "sales"),
            ("max_results", "2"),
            ("omit_columns", "true"),
            ("omit_username", "true"),
        ];
        if let Some(t) = &token {
            args.push(("page_token", t));
        }
        let v = ok(list_tables(ctx(PROVIDER_WS), State(app.clone()), q(&args)).await);
        assert!(v["tables"].as_array().unwrap().len() <= 2);
        for t in v["tables"].as_array().unwrap() {
            assert!(t.get("columns").is_none() && t.get("owner").is_none());
            assert_eq!(t["properties"]["k"], "v", "properties are kept");
        }
        seen.extend(names(&v, "tables", "name"));
        match v["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    let all = ok(list_tables(
        ctx(PROVIDER_WS),
        State(app.clone()),
        q(&[("catalog_name", "main"), ("schema_name", "hr")]),
    )
    .await);
    assert_eq!(all["tables"][0]["columns"][1]["name"], "name");
    assert!(all.get("next_page_token").is_none());
}

#[tokio::test]
async fn list_needs_an_existing_catalog_and_schema() {
    let app = two_regions();
    let list = |c: &'static str, s: &'static str| {
        list_tables(
            ctx(PROVIDER_WS),
            State(app.clone()),
            q(&[("catalog_name", c), ("schema_name", s)]),
        )
    };
    assert_eq!(code(list("nope", "sales").await), "CATALOG_DOES_NOT_EXIST");
    assert_eq!(code(list("main", "nope").await), "SCHEMA_DOES_NOT_EXIST");
    assert_eq!(ok(list("main", "sales").await)["tables"], json!([]));
}

#[tokio::test]
async fn get_exists_and_their_errors() {
    let app = two_regions();
    insert_table(&app, "p", "main.sales.orders");
    let got = ok(get_table(
        ctx(PROVIDER_WS),
        State(app.clone()),
        path("MAIN.Sales.Orders"),
    )
    .await);
    assert_eq!(got["full_name"], "main.sales.orders");
    assert_eq!(got["columns"][0]["type_name"], "LONG");
    let missing = get_table(
        ctx(PROVIDER_WS),
        State(app.clone()),
        path("main.sales.nope"),
    )
    .await;
    assert_eq!(code(missing), "TABLE_DOES_NOT_EXIST");
    let exists = |n: &'static str| table_exists(ctx(PROVIDER_WS), State(app.clone()), path(n));
    assert_eq!(ok(exists("main.sales.orders").await)["table_exists"], true);
    assert_eq!(ok(exists("main.sales.nope").await)["table_exists"], false);
    assert_eq!(code(exists("main.nope.x").await), "SCHEMA_DOES_NOT_EXIST");
}

#[tokio::test]
async fn summaries_filter_with_like_patterns_across_schemas() {
    let app = two_regions();
    for t in [
        "main.sales.orders",
        "main.sales.items",
        "main.hr.people",
        "main.hr.pay",
    ] {
        insert_table(&app, "p", t);
    }
    let summaries = |args: Vec<(&'static str, &'static str)>| {
        list_table_summaries(ctx(PROVIDER_WS), State(app.clone()), q(&args))
    };
    let all = ok(summaries(vec![("catalog_name", "main")]).await);
    assert_eq!(
        names(&all, "tables", "full_name"),
        [
            "main.hr.pay",
            "main.hr.people",
            "main.sales.items",
            "main.sales.orders"
        ]
    );
    assert_eq!(all["tables"][0]["table_type"], "MANAGED");
    let p = ok(summaries(vec![("catalog_name", "main"), ("table_name_pattern", "p%")]).await);
    assert_eq!(
        names(&p, "tables", "full_name"),
        ["main.hr.pay", "main.hr.people"]
    );
    let s = ok(summaries(vec![
        ("catalog_name", "main"),
        ("schema_name_pattern", "sa_es"),
        ("table_name_pattern", "%s"),
    ])
    .await);
    assert_eq!(
        names(&s, "tables", "full_name"),
        ["main.sales.items", "main.sales.orders"]
    );
    let paged = ok(summaries(vec![("catalog_name", "main"), ("max_results", "3")]).await);
    assert_eq!(paged["tables"].as_array().unwrap().len(), 3);
    assert!(paged["next_page_token"].is_string());
}

#[tokio::test]
async fn delete_takes_the_grants_and_tags_and_patch_sets_the_owner() {
    let app = two_regions();
    insert_table(&app, "p", "main.sales.orders");
    insert_table(&app, "p", "main.sales.order_lines");
    app.mutate(|s| {
        let d = s.metastore_data.get_mut("p").unwrap();
        for key in [
            tag_key("TABLE", "main.sales.orders"),
            tag_key("COLUMN", "main.sales.orders.id"),
            tag_key("TABLE", "main.sales.order_lines"),
        ] {
            d.tags
                .entry(key)
                .or_default()
                .insert("pii".into(), "".into());
        }
        d.grants
            .entry("TABLE/main.sales.orders".into())
            .or_default()
            .entry("ana".into())
            .or_default()
            .insert("SELECT".into());
        Ok(())
    })
    .unwrap();
    let patch = update_table(
        ctx(PROVIDER_WS),
        State(app.clone()),
        path("main.sales.orders"),
        Body(json!({"owner": "data-team"})),
    )
    .await;
    ok(patch);
    let got = ok(get_table(
        ctx(PROVIDER_WS),
        State(app.clone()),
        path("main.sales.orders"),
    )
    .await);
    assert_eq!(got["owner"], "data-team");
    ok(delete_table(
        ctx(PROVIDER_WS),
        State(app.clone()),
        path("main.sales.orders"),
    )
    .await);
    let again = delete_table(
        ctx(PROVIDER_WS),
        State(app.clone()),
        path("main.sales.orders"),
    )
    .await;
    assert_eq!(code(again), "TABLE_DOES_NOT_EXIST");
    app.read(|s| {
        let d = &s.metastore_data["p"];
        assert!(!d.grants.contains_key("TABLE/main.sales.orders"));
        let left: Vec<&String> = d.tags.keys().collect();
        assert_eq!(left, [&tag_key("TABLE", "main.sales.order_lines")]);
    });
}

#[tokio::test]
async fn create_makes_external_delta_tables_under_an_external_location_only() {
    let app = two_regions();
    let body = |location: &str, table_type: &str| {
        Body(json!({
            "name": "Landing", "catalog_name": "main", "schema_name": "sales",
            "table_type": table_type, "data_source_format": "DELTA",
            "storage_location": location,
            "columns": [{"name": "id", "type_text": "BIGINT", "type_name": "LONG",
                         "position": 0, "nullable": false}],
        }))
    };
    let managed = create_table(
        ctx(PROVIDER_WS),
        State(app.clone()),
        body("s3://ext/l", "MANAGED"),
    );
    assert_eq!(code(managed.await), "INVALID_PARAMETER_VALUE");
    let uncovered = create_table(
        ctx(PROVIDER_WS),
        State(app.clone()),
        body("s3://other/l", "EXTERNAL"),
    );
    assert_eq!(code(uncovered.await), "INVALID_PARAMETER_VALUE");
    let made = ok(create_table(
        ctx(PROVIDER_WS),
        State(app.clone()),
        body("s3://ext/l", "EXTERNAL"),
    )
    .await);
    assert_eq!(made["full_name"], "main.sales.landing");
    assert_eq!(made["columns"][0]["type_text"], "bigint");
    assert_eq!(made["columns"][0]["nullable"], false);
    assert!(made["table_id"].is_string() && made["created_at"].is_i64());
    let twice = create_table(
        ctx(PROVIDER_WS),
        State(app.clone()),
        body("s3://ext/l", "EXTERNAL"),
    );
    assert_eq!(code(twice.await), "TABLE_ALREADY_EXISTS");
    app.read(|s| {
        let t = &s.metastore_data["p"].tables["main.sales.landing"];
        assert_eq!(
            (t.version, t.history[0].operation.as_str()),
            (0, "CREATE TABLE")
        );
    });
}
