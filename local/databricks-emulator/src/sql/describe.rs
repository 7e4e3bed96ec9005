//! DESCRIBE HISTORY, DESCRIBE [TABLE] and SHOW CREATE TABLE.

use serde_json::{json, Value};

use super::ast::Name;
use super::error::{quoted, SqlError, SqlResult};
use super::names::{qualify, read_table};
use super::{ResultColumn, ResultSet, Session};
use crate::state::State;

/// A timestamp as the JSON_ARRAY format renders one (`2024-05-01T10:00:00.123Z`).
pub fn timestamp_text(ms: i64) -> String {
    let secs = crate::state::rfc3339(ms);
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), ms.rem_euclid(1000))
}

/// Delta's history columns, newest commit first.
pub fn history(state: &State, session: &Session, name: &Name) -> SqlResult<ResultSet> {
    let full = qualify(name, session);
    let t = read_table(state, session, &full)?.table;
    if t.is_view() {
        return Err(SqlError::new(
            "DELTA_ONLY_OPERATION",
            "0AKDD",
            format!(
                "DESCRIBE HISTORY is only supported for Delta tables; {} is a view.",
                quoted(&full)
            ),
        ));
    }
    let columns = [
        ("version", "bigint"),
        ("timestamp", "timestamp"),
        ("userId", "string"),
        ("userName", "string"),
        ("operation", "string"),
        ("operationParameters", "map<string,string>"),
        (
            "job",
            "struct<jobId:string,jobName:string,runId:string,jobOwnerId:string,triggerType:string>",
        ),
        ("notebook", "struct<notebookId:string>"),
        ("clusterId", "string"),
        ("readVersion", "bigint"),
        ("isolationLevel", "string"),
        ("isBlindAppend", "boolean"),
        ("operationMetrics", "map<string,string>"),
        ("userMetadata", "string"),
        ("engineInfo", "string"),
    ]
    .iter()
    .map(|(n, t)| ResultColumn::new(n, t))
    .collect();
    let rows = t
        .history
        .iter()
        .rev()
        .map(|h| {
            vec![
                json!(h.version),
                json!(timestamp_text(h.timestamp_ms)),
                json!(h.user_name),
                json!(h.user_name),
                json!(h.operation),
                json!(h.operation_parameters).to_string().into(),
                Value::Null,
                Value::Null,
                Value::Null,
                if h.version > 0 {
                    json!(h.version - 1)
                } else {
                    Value::Null
                },
                json!("WriteSerializable"),
                json!(h.operation == "WRITE"),
                json!({}).to_string().into(),
                Value::Null,
                json!("Databricks-Runtime/databricks-emulator"),
            ]
        })
        .collect();
    Ok(ResultSet { columns, rows })
}

/// DESCRIBE DETAIL: one row of Delta's table detail.
pub fn detail(state: &State, session: &Session, name: &Name) -> SqlResult<ResultSet> {
    let full = qualify(name, session);
    let t = read_table(state, session, &full)?.table;
    if t.is_view() {
        return Err(SqlError::new(
            "DELTA_ONLY_OPERATION",
            "0AKDD",
            format!(
                "DESCRIBE DETAIL is only supported for Delta tables; {} is a view.",
                quoted(&full)
            ),
        ));
    }
    let i = &t.info;
    let partitions: Vec<&str> = t
        .columns
        .iter()
        .filter(|c| c.partition_index.is_some())
        .map(|c| c.name.as_str())
        .collect();
    let columns = [
        ("format", "string"),
        ("id", "string"),
        ("name", "string"),
        ("description", "string"),
        ("location", "string"),
        ("createdAt", "timestamp"),
        ("lastModified", "timestamp"),
        ("partitionColumns", "array<string>"),
        ("clusteringColumns", "array<string>"),
        ("numFiles", "bigint"),
        ("sizeInBytes", "bigint"),
        ("properties", "map<string,string>"),
        ("minReaderVersion", "int"),
        ("minWriterVersion", "int"),
        ("tableFeatures", "array<string>"),
    ]
    .iter()
    .map(|(n, t)| ResultColumn::new(n, t))
    .collect();
    let ts = |v: &Value| {
        v.as_i64()
            .map(|ms| json!(timestamp_text(ms)))
            .unwrap_or(Value::Null)
    };
    let row = vec![
        json!(i["data_source_format"]
            .as_str()
            .unwrap_or("DELTA")
            .to_lowercase()),
        i["table_id"].clone(),
        json!(full),
        i["comment"].clone(),
        i["storage_location"].clone(),
        ts(&i["created_at"]),
        ts(&i["updated_at"]),
        json!(json!(partitions).to_string()),
        json!("[]"),
        json!(t.files.len() as i64),
        json!(t.files.iter().map(|f| f.size_bytes).sum::<i64>()),
        json!(i
            .get("properties")
            .cloned()
            .unwrap_or(json!({}))
            .to_string()),
        json!(1),
        json!(2),
        json!("[\"appendOnly\",\"invariants\"]"),
    ];
    Ok(ResultSet {
        columns,
        rows: vec![row],
    })
}

pub fn describe_table(state: &State, session: &Session, name: &Name) -> SqlResult<ResultSet> {
    let full = qualify(name, session);
    let t = read_table(state, session, &full)?.table;
    Ok(ResultSet {
        columns: vec![
            ResultColumn::new("col_name", "string"),
            ResultColumn::new("data_type", "string"),
            ResultColumn::new("comment", "string"),
        ],
        rows: t
            .columns
            .iter()
            .map(|c| {
                vec![
                    json!(c.name),
                    json!(c.type_text),
                    c.comment.as_ref().map(|s| json!(s)).unwrap_or(Value::Null),
                ]
            })
            .collect(),
    })
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The `createtab_stmt` Databricks shows for a table or view.
pub fn show_create_table(state: &State, session: &Session, name: &Name) -> SqlResult<ResultSet> {
    let full = qualify(name, session);
    let t = read_table(state, session, &full)?.table;
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let mut s = format!("  {} {}", c.name, c.type_text.to_uppercase());
            if !c.nullable {
                s.push_str(" NOT NULL");
            }
            if let Some(cm) = &c.comment {
                s.push_str(&format!(" COMMENT {}", sql_string(cm)));
            }
            s
        })
        .collect();
    let info = &t.info;
    let text = if t.is_view() {
        let mut s = format!(
            "CREATE VIEW {full} (\n{})\n",
            t.columns
                .iter()
                .map(|c| format!("  {}", c.name))
                .collect::<Vec<_>>()
                .join(",\n")
        );
        if let Some(c) = info["comment"].as_str() {
            s.push_str(&format!("COMMENT {}\n", sql_string(c)));
        }
        s.push_str(&format!(
            "AS {}",
            info["view_definition"].as_str().unwrap_or_default()
        ));
        s
    } else {
        let mut s = format!(
            "CREATE TABLE {full} (\n{})\nUSING {}\n",
            cols.join(",\n"),
            info["data_source_format"]
                .as_str()
                .unwrap_or("DELTA")
                .to_lowercase()
        );
        let partitions: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| c.partition_index.is_some())
            .map(|c| c.name.as_str())
            .collect();
        if !partitions.is_empty() {
            s.push_str(&format!("PARTITIONED BY ({})\n", partitions.join(", ")));
        }
        if let Some(c) = info["comment"].as_str() {
            s.push_str(&format!("COMMENT {}\n", sql_string(c)));
        }
        if info["table_type"] == "EXTERNAL" {
            if let Some(l) = info["storage_location"].as_str() {
                s.push_str(&format!("LOCATION {}\n", sql_string(l)));
            }
        }
        if let Some(props) = info["properties"].as_object().filter(|p| !p.is_empty()) {
            let pairs: Vec<String> = props
                .iter()
                .map(|(k, v)| {
                    format!(
                        "  {} = {}",
                        sql_string(k),
                        sql_string(v.as_str().unwrap_or_default())
                    )
                })
                .collect();
            s.push_str(&format!("TBLPROPERTIES (\n{})\n", pairs.join(",\n")));
        }
        s
    };
    Ok(ResultSet {
        columns: vec![ResultColumn::new("createtab_stmt", "string")],
        rows: vec![vec![json!(text)]],
    })
}
