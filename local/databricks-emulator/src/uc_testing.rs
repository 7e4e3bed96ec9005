//! Test support for the Unity Catalog handlers: an emulator state with two regions
//! (metastore `p` in us-east-1 for workspace 1, `r` in us-west-2 for workspace 2) and
//! helpers to call handlers and read their answers and errors.

use std::collections::HashMap;

use axum::extract::Query;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiResult, ErrorBody};
use crate::state::{App, Settings, State};
use crate::uc_data::{split_full_name, Column, DataFile, TableRecord};

pub const PROVIDER_WS: i64 = 1;
pub const RECIPIENT_WS: i64 = 2;

pub fn ctx(workspace_id: i64) -> WsCtx {
    WsCtx {
        workspace_id,
        deployment_name: format!("ws{workspace_id}"),
        principal_id: 7,
        principal_name: "admin-app-id".into(),
        display_name: "admin".into(),
        is_admin: true,
    }
}

/// Metastores `p` and `r` with their workspace assignments; `p` has catalog `main` with
/// schemas `sales` and `hr`, and an external location over `s3://ext`.
pub fn two_regions() -> App {
    let mut s = State::default();
    for (mid, region, ws) in [
        ("p", "us-east-1", PROVIDER_WS),
        ("r", "us-west-2", RECIPIENT_WS),
    ] {
        s.metastores.insert(
            mid.into(),
            json!({"metastore_id": mid, "name": format!("{mid}-metastore"), "region": region,
                   "cloud": "aws", "owner": "admin-app-id",
                   "global_metastore_id": format!("aws:{region}:{mid}")}),
        );
        s.metastore_assignments
            .insert(ws, json!({"workspace_id": ws, "metastore_id": mid}));
        s.metastore_data.entry(mid.into()).or_default();
    }
    let p = s.metastore_data.get_mut("p").unwrap();
    p.catalogs.insert(
        "main".into(),
        json!({"name": "main", "catalog_type": "MANAGED_CATALOG", "owner": "admin-app-id"}),
    );
    for schema in ["sales", "hr", "default"] {
        p.schemas.insert(
            format!("main.{schema}"),
            json!({"name": schema, "catalog_name": "main", "full_name": format!("main.{schema}")}),
        );
    }
    p.external_locations
        .insert("ext".into(), json!({"name": "ext", "url": "s3://ext"}));
    // Durations are irrelevant to these handlers; the default (zero) leaves them out.
    let settings = Settings {
        account_id: "acct".into(),
        admin_client_id: "admin-app-id".into(),
        admin_client_secret: "secret".into(),
        ..Settings::default()
    };
    App::new(settings, s)
}

/// A managed Delta table with columns `id bigint` and `name string` and two rows, as
/// SQL would write it.
pub fn table(full: &str) -> TableRecord {
    let (c, s, t) = split_full_name(full).expect("a three-part name");
    let column = |name: &str, type_text: &str, type_name: &str| Column {
        name: name.into(),
        type_text: type_text.into(),
        type_name: type_name.into(),
        nullable: true,
        comment: None,
        partition_index: None,
    };
    TableRecord {
        info: json!({"name": t, "catalog_name": c, "schema_name": s, "full_name": full,
                     "table_type": "MANAGED", "data_source_format": "DELTA",
                     "storage_location": format!("s3://root/{t}"), "owner": "admin-app-id",
                     "properties": {"k": "v"}, "created_by": "admin-app-id"}),
        columns: vec![
            column("id", "bigint", "LONG"),
            column("name", "string", "STRING"),
        ],
        files: vec![DataFile {
            id: "f1".into(),
            rows: vec![vec![json!(1), json!("a")], vec![json!(2), json!("b")]],
            size_bytes: 20,
        }],
        version: 1,
        history: vec![],
    }
}

pub fn insert_table(app: &App, metastore: &str, full: &str) {
    app.mutate(|s| {
        s.metastore_data
            .get_mut(metastore)
            .unwrap()
            .tables
            .insert(full.into(), table(full));
        Ok(())
    })
    .unwrap();
}

pub fn q(pairs: &[(&str, &str)]) -> Query<HashMap<String, String>> {
    Query(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

pub fn ok(r: ApiResult<Json<Value>>) -> Value {
    match r {
        Ok(Json(v)) => v,
        Err(e) => panic!("expected success, got {e:?}"),
    }
}

/// The `error_code` of a failed call.
pub fn code(r: ApiResult<Json<Value>>) -> String {
    match r {
        Ok(Json(v)) => panic!("expected an error, got {v}"),
        Err(e) => match e.body {
            ErrorBody::Standard { error_code, .. } => {
                error_code.as_str().unwrap_or_default().to_string()
            }
            other => panic!("unexpected error body {other:?}"),
        },
    }
}

pub fn names(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| x[field].as_str().unwrap_or_default().to_string())
        .collect()
}
