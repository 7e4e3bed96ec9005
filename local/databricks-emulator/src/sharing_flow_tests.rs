//! Handler-level tests across modules: Delta Sharing from metastore `p` to metastore `r`
//! of another region, read through a share catalog; grants on the new securables;
//! functions and tags.

use axum::extract::{Path, State};
use serde_json::{json, Value};

use crate::sharing::{self, SharePath};
use crate::sharing_parties::{self as parties, PartyPath};
use crate::state::{App, Body};
use crate::uc_catalogs::{self, FullNamePath};
use crate::uc_grants::{self, SecurablePath};
use crate::uc_tables::{self, TablePath};
use crate::uc_testing::{
    code, ctx, insert_table, names, ok, q, two_regions, PROVIDER_WS, RECIPIENT_WS,
};
use crate::{uc_functions, uc_tags};

fn share(name: &str) -> Path<SharePath> {
    Path(SharePath { name: name.into() })
}

fn party(name: &str) -> Path<PartyPath> {
    Path(PartyPath { name: name.into() })
}

fn table(full: &str) -> Path<TablePath> {
    Path(TablePath {
        full_name: full.into(),
    })
}

fn securable(t: &str, n: &str) -> Path<SecurablePath> {
    Path(SecurablePath {
        securable_type: t.into(),
        full_name: n.into(),
    })
}

/// `p` shares schema `main.sales` and table `main.hr.people` in share `s1` with
/// recipient `west` (metastore `r`), and `r` mounts it as catalog `shared`.
async fn shared_setup() -> App {
    let app = two_regions();
    for t in ["main.sales.orders", "main.hr.people", "main.hr.pay"] {
        insert_table(&app, "p", t);
    }
    let p = || ctx(PROVIDER_WS);
    ok(sharing::create_share(p(), State(app.clone()), Body(json!({"name": "S1"}))).await);
    let updates = json!({"updates": [
        {"action": "ADD", "data_object": {"name": "main.sales", "data_object_type": "SCHEMA"}},
        {"action": "ADD", "data_object": {"name": "main.hr.people", "data_object_type": "TABLE"}},
    ]});
    let updated =
        ok(sharing::update_share(p(), State(app.clone()), share("s1"), Body(updates)).await);
    assert_eq!(updated["objects"][1]["shared_as"], "hr.people");
    assert_eq!(updated["objects"][0]["status"], "ACTIVE");
    assert!(updated["objects"][0]["added_at"].is_i64());
    let recipient = json!({"name": "west", "authentication_type": "DATABRICKS",
                           "data_recipient_global_metastore_id": "aws:us-west-2:r"});
    let r = ok(parties::create_recipient(p(), State(app.clone()), Body(recipient)).await);
    assert_eq!(
        (r["activated"].clone(), r["region"].clone()),
        (json!(true), json!("us-west-2"))
    );
    let grant = json!({"changes": [{"principal": "west", "add": ["SELECT"]}]});
    ok(sharing::update_share_permissions(p(), State(app.clone()), share("s1"), Body(grant)).await);
    let catalog = json!({"name": "shared", "provider_name": "p-metastore", "share_name": "s1"});
    let c =
        ok(uc_catalogs::create_catalog(ctx(RECIPIENT_WS), State(app.clone()), Body(catalog)).await);
    assert_eq!(c["catalog_type"], "DELTASHARING_CATALOG");
    app
}

#[tokio::test]
async fn the_provider_appears_in_the_recipient_metastore_by_itself() {
    let app = shared_setup().await;
    let providers =
        ok(parties::list_providers(ctx(RECIPIENT_WS), State(app.clone()), q(&[])).await);
    assert_eq!(names(&providers, "providers", "name"), ["p-metastore"]);
    assert_eq!(
        providers["providers"][0]["data_provider_global_metastore_id"],
        "aws:us-east-1:p"
    );
    let none = ok(parties::list_providers(ctx(PROVIDER_WS), State(app.clone()), q(&[])).await);
    assert_eq!(none["providers"], json!([]));
    let shares = ok(parties::list_provider_shares(
        ctx(RECIPIENT_WS),
        State(app.clone()),
        party("p-metastore"),
        q(&[]),
    )
    .await);
    assert_eq!(shares["shares"], json!([{"name": "s1"}]));
    let assets = parties::list_provider_share_assets(
        ctx(RECIPIENT_WS),
        State(app.clone()),
        Path(parties::ProviderSharePath {
            provider_name: "p-metastore".into(),
            share_name: "s1".into(),
        }),
        q(&[]),
    );
    let assets = ok(assets.await);
    assert_eq!(names(&assets, "tables", "name"), ["people", "orders"]);
    assert_eq!(assets["tables"][0]["schema"], "hr");
    let perms = ok(parties::recipient_share_permissions(
        ctx(PROVIDER_WS),
        State(app.clone()),
        party("west"),
        q(&[]),
    )
    .await);
    assert_eq!(perms["permissions_out"][0]["share_name"], "s1");
}

async fn shared_table_names(app: &App, schema: &'static str) -> Result<Vec<String>, String> {
    let args = [("catalog_name", "shared"), ("schema_name", schema)];
    match uc_tables::list_tables(ctx(RECIPIENT_WS), State(app.clone()), q(&args)).await {
        Ok(v) => Ok(names(&v.0, "tables", "name")),
        Err(e) => Err(format!("{e:?}")),
    }
}

#[tokio::test]
async fn a_share_catalog_reads_the_providers_current_tables() {
    let app = shared_setup().await;
    let schemas = ok(uc_catalogs::list_schemas(
        ctx(RECIPIENT_WS),
        State(app.clone()),
        q(&[("catalog_name", "shared")]),
    )
    .await);
    assert_eq!(names(&schemas, "schemas", "name"), ["hr", "sales"]);
    assert_eq!(shared_table_names(&app, "hr").await.unwrap(), ["people"]);
    assert_eq!(shared_table_names(&app, "sales").await.unwrap(), ["orders"]);
    let got = ok(uc_tables::get_table(
        ctx(RECIPIENT_WS),
        State(app.clone()),
        table("shared.sales.orders"),
    )
    .await);
    assert_eq!(got["full_name"], "shared.sales.orders");
    assert_eq!(got["data_source_format"], "DELTASHARING");
    assert_eq!(got["metastore_id"], "r");
    assert!(got.get("storage_location").is_none());
    // A table created in the shared schema later is shared with no edit of the share.
    insert_table(&app, "p", "main.sales.returns");
    assert_eq!(
        shared_table_names(&app, "sales").await.unwrap(),
        ["orders", "returns"]
    );
    let summaries = ok(uc_tables::list_table_summaries(
        ctx(RECIPIENT_WS),
        State(app.clone()),
        q(&[("catalog_name", "shared")]),
    )
    .await);
    assert_eq!(summaries["tables"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_share_catalog_is_read_only() {
    let app = shared_setup().await;
    let r = || ctx(RECIPIENT_WS);
    let delete = uc_tables::delete_table(r(), State(app.clone()), table("shared.sales.orders"));
    assert_eq!(code(delete.await), "INVALID_PARAMETER_VALUE");
    let patch = uc_tables::update_table(
        r(),
        State(app.clone()),
        table("shared.sales.orders"),
        Body(json!({"owner": "x"})),
    );
    assert_eq!(code(patch.await), "INVALID_PARAMETER_VALUE");
    let schema = uc_catalogs::create_schema(
        r(),
        State(app.clone()),
        Body(json!({"name": "x", "catalog_name": "shared"})),
    );
    assert_eq!(code(schema.await), "INVALID_PARAMETER_VALUE");
    let drop_schema = uc_catalogs::delete_schema(
        r(),
        State(app.clone()),
        Path(FullNamePath {
            full_name: "shared.sales".into(),
        }),
        q(&[]),
    );
    assert_eq!(code(drop_schema.await), "INVALID_PARAMETER_VALUE");
    app.read(|s| {
        assert!(s.metastore_data["p"]
            .tables
            .contains_key("main.sales.orders"))
    });
}

#[tokio::test]
async fn revoking_the_share_or_deleting_the_recipient_ends_the_reads() {
    let app = shared_setup().await;
    let revoke = json!({"changes": [{"principal": "west", "remove": ["SELECT"]}]});
    let left = ok(sharing::update_share_permissions(
        ctx(PROVIDER_WS),
        State(app.clone()),
        share("s1"),
        Body(revoke),
    )
    .await);
    assert_eq!(left["privilege_assignments"], json!([]));
    assert!(shared_table_names(&app, "sales").await.is_err());
    let gone = uc_tables::get_table(
        ctx(RECIPIENT_WS),
        State(app.clone()),
        table("shared.sales.orders"),
    );
    assert_eq!(code(gone.await), "TABLE_DOES_NOT_EXIST");
    let grant = json!({"changes": [{"principal": "west", "add": ["SELECT"]}]});
    ok(sharing::update_share_permissions(
        ctx(PROVIDER_WS),
        State(app.clone()),
        share("s1"),
        Body(grant),
    )
    .await);
    assert!(shared_table_names(&app, "sales").await.is_ok());
    ok(parties::delete_recipient(ctx(PROVIDER_WS), State(app.clone()), party("west")).await);
    assert!(shared_table_names(&app, "sales").await.is_err());
}

#[tokio::test]
async fn share_updates_check_their_objects_and_apply_whole() {
    let app = shared_setup().await;
    let p = || ctx(PROVIDER_WS);
    let update = |u: Value| {
        sharing::update_share(
            p(),
            State(app.clone()),
            share("s1"),
            Body(json!({"updates": u})),
        )
    };
    let missing_table = json!([
        {"action": "REMOVE", "data_object": {"name": "main.hr.people"}},
        {"action": "ADD", "data_object": {"name": "main.hr.nope", "data_object_type": "TABLE"}},
    ]);
    assert_eq!(code(update(missing_table).await), "TABLE_DOES_NOT_EXIST");
    let again = json!([{"action": "ADD", "data_object": {"name": "main.sales", "data_object_type": "SCHEMA"}}]);
    assert_eq!(code(update(again).await), "RESOURCE_ALREADY_EXISTS");
    let alias_taken = json!([{"action": "ADD", "data_object":
        {"name": "main.hr.pay", "data_object_type": "TABLE", "shared_as": "hr.people"}}]);
    assert_eq!(code(update(alias_taken).await), "RESOURCE_ALREADY_EXISTS");
    let got = ok(sharing::get_share(
        p(),
        State(app.clone()),
        share("s1"),
        q(&[("include_shared_data", "true")]),
    )
    .await);
    assert_eq!(
        got["objects"].as_array().unwrap().len(),
        2,
        "the failed requests changed nothing"
    );
    let brief = ok(sharing::get_share(p(), State(app.clone()), share("s1"), q(&[])).await);
    assert!(brief.get("objects").is_none());
    let remove = json!([{"action": "REMOVE", "data_object": {"name": "main.hr.people"}}]);
    ok(update(remove).await);
    assert!(shared_table_names(&app, "hr").await.is_err());
}

#[tokio::test]
async fn grants_on_tables_functions_and_shares_filter_by_principal_and_page() {
    let app = shared_setup().await;
    let p = || ctx(PROVIDER_WS);
    let changes = json!({"changes": [
        {"principal": "ana", "add": ["SELECT", "MODIFY"]},
        {"principal": "bo", "add": ["SELECT"]},
        {"principal": "cy", "add": ["SELECT"]},
    ]});
    ok(uc_grants::update_permissions(
        p(),
        State(app.clone()),
        securable("table", "main.sales.orders"),
        Body(changes),
    )
    .await);
    let get = |args: Vec<(&'static str, &'static str)>| {
        uc_grants::get_permissions(
            p(),
            State(app.clone()),
            securable("TABLE", "main.sales.orders"),
            q(&args),
        )
    };
    let ana = ok(get(vec![("principal", "ana")]).await);
    assert_eq!(
        ana["privilege_assignments"],
        json!([{"principal": "ana", "privileges": ["MODIFY", "SELECT"]}])
    );
    let first = ok(get(vec![("max_results", "2")]).await);
    assert_eq!(
        names(&first, "privilege_assignments", "principal"),
        ["ana", "bo"]
    );
    let token = first["next_page_token"].as_str().unwrap().to_string();
    let rest = uc_grants::get_permissions(
        p(),
        State(app.clone()),
        securable("TABLE", "main.sales.orders"),
        q(&[("max_results", "2"), ("page_token", &token)]),
    );
    let rest = ok(rest.await);
    assert_eq!(names(&rest, "privilege_assignments", "principal"), ["cy"]);
    assert!(rest.get("next_page_token").is_none());
    let missing = uc_grants::get_permissions(
        p(),
        State(app.clone()),
        securable("TABLE", "main.sales.nope"),
        q(&[]),
    );
    assert_eq!(code(missing.await), "TABLE_DOES_NOT_EXIST");
    let share_grants =
        ok(
            uc_grants::get_permissions(p(), State(app.clone()), securable("SHARE", "s1"), q(&[]))
                .await,
        );
    assert_eq!(
        share_grants["privilege_assignments"],
        json!([{"principal": "west", "privileges": ["SELECT"]}])
    );
    let not_recipient = json!({"changes": [{"principal": "ana", "add": ["SELECT"]}]});
    let bad = uc_grants::update_permissions(
        p(),
        State(app.clone()),
        securable("SHARE", "s1"),
        Body(not_recipient),
    );
    assert_eq!(code(bad.await), "RECIPIENT_DOES_NOT_EXIST");
}

fn function_body(name: &str) -> Body {
    Body(json!({"function_info": {
        "name": name, "catalog_name": "main", "schema_name": "sales",
        "input_params": {"parameters": [{"name": "x", "type_text": "int", "type_name": "INT", "position": 0}]},
        "data_type": "INT", "full_data_type": "int", "routine_body": "SQL",
        "routine_definition": "x + 1", "parameter_style": "S", "is_deterministic": true,
        "sql_data_access": "CONTAINS_SQL", "is_null_call": false, "security_type": "DEFINER",
        "specific_name": name, "comment": "adds one",
    }}))
}

#[tokio::test]
async fn functions_are_created_listed_owned_and_deleted() {
    let app = two_regions();
    let p = || ctx(PROVIDER_WS);
    let f = ok(uc_functions::create_function(p(), State(app.clone()), function_body("Inc")).await);
    assert_eq!(
        (f["full_name"].clone(), f["routine_definition"].clone()),
        (json!("main.sales.inc"), json!("x + 1"))
    );
    assert_eq!(
        code(uc_functions::create_function(p(), State(app.clone()), function_body("inc")).await),
        "FUNCTION_ALREADY_EXISTS"
    );
    let mut incomplete = function_body("half");
    incomplete.0["function_info"]
        .as_object_mut()
        .unwrap()
        .remove("routine_body");
    assert_eq!(
        code(uc_functions::create_function(p(), State(app.clone()), incomplete).await),
        "INVALID_PARAMETER_VALUE"
    );
    ok(uc_functions::create_function(p(), State(app.clone()), function_body("dec")).await);
    let listed = ok(uc_functions::list_functions(
        p(),
        State(app.clone()),
        q(&[
            ("catalog_name", "main"),
            ("schema_name", "sales"),
            ("max_results", "1"),
        ]),
    )
    .await);
    assert_eq!(names(&listed, "functions", "name"), ["dec"]);
    assert!(listed["next_page_token"].is_string());
    let path = |n: &str| Path(uc_functions::FunctionPath { name: n.into() });
    let owned = ok(uc_functions::update_function(
        p(),
        State(app.clone()),
        path("main.sales.inc"),
        Body(json!({"owner": "team"})),
    )
    .await);
    assert_eq!(owned["owner"], "team");
    ok(uc_functions::delete_function(p(), State(app.clone()), path("main.sales.inc")).await);
    assert_eq!(
        code(uc_functions::get_function(p(), State(app.clone()), path("main.sales.inc")).await),
        "FUNCTION_DOES_NOT_EXIST"
    );
}

#[tokio::test]
async fn tags_are_assigned_to_tables_and_columns() {
    let app = two_regions();
    insert_table(&app, "p", "main.sales.orders");
    let p = || ctx(PROVIDER_WS);
    let create = |t: &str, n: &str, k: &str, v: Option<&str>| {
        let mut b = json!({"entity_type": t, "entity_name": n, "tag_key": k});
        if let Some(v) = v {
            b["tag_value"] = json!(v);
        }
        uc_tags::create_tag_assignment(p(), State(app.clone()), Body(b))
    };
    let made = ok(create("tables", "main.sales.orders", "domain", Some("sales")).await);
    assert_eq!(made["tag_value"], "sales");
    assert!(made["update_time"].is_string() && made["updated_by"] == "admin-app-id");
    ok(create("columns", "main.sales.orders.id", "pii", None).await);
    assert_eq!(
        code(create("columns", "main.sales.orders.nope", "pii", None).await),
        "RESOURCE_DOES_NOT_EXIST"
    );
    assert_eq!(
        code(create("tables", "main.sales.orders", "domain", None).await),
        "RESOURCE_ALREADY_EXISTS"
    );
    assert_eq!(
        code(create("widgets", "x", "k", None).await),
        "INVALID_PARAMETER_VALUE"
    );
    let tag = |k: &str| {
        Path(uc_tags::TagPath {
            entity_type: "tables".into(),
            entity_name: "main.sales.orders".into(),
            tag_key: k.into(),
        })
    };
    let updated = uc_tags::update_tag_assignment(
        p(),
        State(app.clone()),
        tag("domain"),
        q(&[("update_mask", "tag_value")]),
        Body(json!({"tag_value": "finance"})),
    );
    assert_eq!(ok(updated.await)["tag_value"], "finance");
    let listed = ok(uc_tags::list_tag_assignments(
        p(),
        State(app.clone()),
        Path(uc_tags::EntityPath {
            entity_type: "columns".into(),
            entity_name: "main.sales.orders.id".into(),
        }),
        q(&[]),
    )
    .await);
    assert_eq!(names(&listed, "tag_assignments", "tag_key"), ["pii"]);
    assert!(listed["tag_assignments"][0].get("tag_value").is_none());
    ok(uc_tags::delete_tag_assignment(p(), State(app.clone()), tag("domain")).await);
    assert_eq!(
        code(uc_tags::get_tag_assignment(p(), State(app.clone()), tag("domain")).await),
        "RESOURCE_DOES_NOT_EXIST"
    );
}
