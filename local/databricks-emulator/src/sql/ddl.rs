//! CREATE TABLE (columns or AS SELECT), CREATE VIEW, CREATE FUNCTION and DROP.

use serde_json::{json, Map, Value};

use super::ast::{
    ColumnSpec, CreateFunction, CreateMode, CreateTable, CreateView, CreateVolume, DropKind, Name,
    TableOptions, TableSource,
};
use super::dml::{commit, new_file};
use super::error::{SqlError, SqlResult};
use super::names::{check_creatable, data, data_mut, qualify};
use super::query::run_query;
use super::value::type_name;
use super::{ResultColumn, ResultSet, Session};
use crate::state::{new_uuid, State};
use crate::uc_data::{tag_key, Column, TableRecord};

/// What exists under a name about to be created: nothing, or a table or view to
/// replace (its record is kept so a replaced table keeps its id and history).
enum Existing {
    None,
    Replace(Box<TableRecord>),
    /// IF NOT EXISTS and it exists: the statement does nothing.
    Skip,
}

fn existing(state: &State, session: &Session, full: &str, mode: CreateMode) -> SqlResult<Existing> {
    match data(state, session)?.tables.get(full) {
        None => Ok(Existing::None),
        Some(_) if mode.if_not_exists => Ok(Existing::Skip),
        Some(t) if mode.or_replace => Ok(Existing::Replace(Box::new(t.clone()))),
        Some(_) => Err(SqlError::table_exists(full)),
    }
}

pub fn columns_of(specs: &[ColumnSpec], partitioned_by: &[String]) -> Vec<Column> {
    specs
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            type_text: c.type_text.clone(),
            type_name: catalog_type_name(&c.type_text).to_string(),
            nullable: c.nullable,
            comment: c.comment.clone(),
            partition_index: partitioned_by
                .iter()
                .position(|p| *p == c.name.to_lowercase())
                .map(|i| i as i64),
        })
        .collect()
}

/// The catalog API's `ColumnTypeName`, which differs from the result-set type names
/// only for TIMESTAMP_NTZ.
fn catalog_type_name(type_text: &str) -> &'static str {
    if type_text.starts_with("timestamp_ntz") {
        "TIMESTAMP_NTZ"
    } else {
        type_name(type_text)
    }
}

fn result_columns(cols: &[ResultColumn]) -> Vec<ColumnSpec> {
    cols.iter()
        .map(|c| ColumnSpec {
            name: c.name.clone(),
            type_text: c.type_text.clone(),
            nullable: true,
            comment: None,
        })
        .collect()
}

/// The stored `TableInfo` fields of a new table or view.
pub fn table_info(state: &State, session: &Session, full: &str, table_type: &str) -> Value {
    let parts: Vec<&str> = full.split('.').collect();
    let root = state
        .metastores
        .get(&session.metastore_id)
        .and_then(|m| m["storage_root"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("s3://metastore-{}", session.metastore_id));
    let id = new_uuid();
    let mut info = json!({
        "name": parts[2],
        "catalog_name": parts[0],
        "schema_name": parts[1],
        "full_name": full,
        "table_type": table_type,
        "owner": session.user,
        "table_id": id,
        "metastore_id": session.metastore_id,
        "created_at": session.now_ms,
        "created_by": session.user,
        "updated_at": session.now_ms,
        "updated_by": session.user,
    });
    if table_type != "VIEW" {
        info["storage_location"] = json!(format!("{}/tables/{id}", root.trim_end_matches('/')));
        info["data_source_format"] = json!("DELTA");
    }
    info
}

/// Applies USING, LOCATION, COMMENT and TBLPROPERTIES to a table's info.
pub fn apply_options(info: &mut Value, o: &TableOptions) {
    if let Some(f) = &o.using {
        info["data_source_format"] = json!(f);
    }
    if let Some(l) = &o.location {
        info["storage_location"] = json!(l);
        info["table_type"] = json!("EXTERNAL");
    }
    if let Some(c) = &o.comment {
        info["comment"] = json!(c);
    }
    if !o.properties.is_empty() {
        let props = info["properties"].as_object().cloned().unwrap_or_default();
        let mut props: Map<String, Value> = props;
        for (k, v) in &o.properties {
            props.insert(k.clone(), json!(v));
        }
        info["properties"] = Value::Object(props);
    }
}

pub fn create_table(state: &mut State, session: &Session, c: &CreateTable) -> SqlResult<ResultSet> {
    let full = qualify(&c.name, session);
    check_creatable(state, session, &full, "CREATE TABLE")?;
    let old = match existing(state, session, &full, c.mode)? {
        Existing::Skip => return Ok(ResultSet::empty()),
        Existing::Replace(t) if t.is_view() => {
            return Err(SqlError::new(
                "EXPECT_TABLE_NOT_VIEW.NO_ALTERNATIVE",
                "42809",
                format!(
                    "'CREATE OR REPLACE TABLE' expects a table but {} is a view.",
                    super::error::quoted(&full)
                ),
            ))
        }
        Existing::Replace(t) => Some(t),
        Existing::None => None,
    };
    let (specs, rows) = match &c.source {
        TableSource::Columns(cols) => (cols.clone(), None),
        TableSource::Query(q) => {
            let result = run_query(state, session, q, 0)?;
            (result_columns(&result.columns), Some(result.rows))
        }
        TableSource::Clone { .. } => unreachable!("clones are executed by sql::clone"),
    };
    let mut info = table_info(state, session, &full, "MANAGED");
    apply_options(&mut info, &c.options);
    let mut record = TableRecord {
        info,
        columns: columns_of(&specs, &c.options.partitioned_by),
        files: rows
            .filter(|r| !r.is_empty())
            .map(new_file)
            .into_iter()
            .collect(),
        version: 0,
        history: vec![],
    };
    let as_select = if rows_from_query(&c.source) {
        " AS SELECT"
    } else {
        ""
    };
    let operation = match &old {
        Some(old) => {
            // A replaced table keeps its identity and Delta log.
            record.info["table_id"] = old.info["table_id"].clone();
            record.info["created_at"] = old.info["created_at"].clone();
            record.info["created_by"] = old.info["created_by"].clone();
            if c.options.location.is_none() {
                record.info["storage_location"] = old.info["storage_location"].clone();
            }
            record.version = old.version;
            record.history = old.history.clone();
            format!("CREATE OR REPLACE TABLE{as_select}")
        }
        None => format!("CREATE TABLE{as_select}"),
    };
    let is_managed = (record.info["table_type"] == "MANAGED").to_string();
    let properties = record
        .info
        .get("properties")
        .cloned()
        .unwrap_or(json!({}))
        .to_string();
    let partition_by = serde_json::to_string(&c.options.partitioned_by).unwrap_or_default();
    let mut params = vec![
        ("isManaged", is_managed),
        ("partitionBy", partition_by),
        ("properties", properties),
    ];
    if let Some(d) = &c.options.comment {
        params.push(("description", d.clone()));
    }
    if !c.options.cluster_by.is_empty() {
        params.push((
            "clusterBy",
            serde_json::to_string(&c.options.cluster_by).unwrap_or_default(),
        ));
    }
    commit(&mut record, session, &operation, &params);
    data_mut(state, session).tables.insert(full, record);
    Ok(ResultSet::empty())
}

fn rows_from_query(s: &TableSource) -> bool {
    matches!(s, TableSource::Query(_))
}

/// The tables and views a query reads (`view_dependencies`).
fn dependencies(q: &sqlparser::ast::Query, session: &Session) -> Vec<String> {
    let mut out = Vec::new();
    if let sqlparser::ast::SetExpr::Select(s) = q.body.as_ref() {
        for f in &s.from {
            if let sqlparser::ast::TableFactor::Table { name, .. } = &f.relation {
                if let Ok(n) = super::parse::name_of(name) {
                    out.push(qualify(&n, session));
                }
            }
        }
    }
    out
}

pub fn create_view(state: &mut State, session: &Session, v: &CreateView) -> SqlResult<ResultSet> {
    let full = qualify(&v.name, session);
    check_creatable(state, session, &full, "CREATE VIEW")?;
    let old = match existing(state, session, &full, v.mode)? {
        Existing::Skip => return Ok(ResultSet::empty()),
        Existing::Replace(t) if !t.is_view() => {
            return Err(SqlError::new(
                "EXPECT_VIEW_NOT_TABLE.NO_ALTERNATIVE",
                "42809",
                format!(
                    "'CREATE OR REPLACE VIEW' expects a view but {} is a table.",
                    super::error::quoted(&full)
                ),
            ))
        }
        Existing::Replace(t) => Some(t),
        Existing::None => None,
    };
    // Running the query checks what it reads exists and gives the view's columns.
    let result = run_query(state, session, &v.query, 0)?;
    let mut info = table_info(state, session, &full, "VIEW");
    if let Some(old) = &old {
        info["table_id"] = old.info["table_id"].clone();
        info["created_at"] = old.info["created_at"].clone();
        info["created_by"] = old.info["created_by"].clone();
    }
    info["view_definition"] = json!(v.definition);
    let deps: Vec<Value> = dependencies(&v.query, session)
        .into_iter()
        .map(|t| json!({"table": {"table_full_name": t}}))
        .collect();
    info["view_dependencies"] = json!({"dependencies": deps});
    apply_options(
        &mut info,
        &TableOptions {
            comment: v.comment.clone(),
            properties: v.properties.clone(),
            ..TableOptions::default()
        },
    );
    let record = TableRecord {
        info,
        columns: columns_of(&result_columns(&result.columns), &[]),
        files: vec![],
        version: 0,
        history: vec![],
    };
    data_mut(state, session).tables.insert(full, record);
    Ok(ResultSet::empty())
}

/// A SQL UDF as the API's `FunctionInfo`.
pub fn create_function(
    state: &mut State,
    session: &Session,
    f: &CreateFunction,
) -> SqlResult<ResultSet> {
    let full = qualify(&f.name, session);
    check_creatable(state, session, &full, "CREATE FUNCTION")?;
    let old = data(state, session)?.functions.get(&full).cloned();
    if old.is_some() && f.mode.if_not_exists {
        return Ok(ResultSet::empty());
    }
    if old.is_some() && !f.mode.or_replace {
        return Err(SqlError::routine_exists(&full));
    }
    let parts: Vec<&str> = full.split('.').collect();
    let params: Vec<Value> = f
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut v = json!({
                "name": p.name,
                "type_text": p.type_text,
                "type_name": type_name(&p.type_text),
                "type_json": json!({"name": p.name, "type": p.type_text, "nullable": true, "metadata": {}}).to_string(),
                "position": i,
                "parameter_mode": "IN",
                "parameter_type": "PARAM",
            });
            if let Some(c) = &p.comment {
                v["comment"] = json!(c);
            }
            v
        })
        .collect();
    let mut info = json!({
        "name": parts[2],
        "catalog_name": parts[0],
        "schema_name": parts[1],
        "full_name": full,
        "input_params": {"parameters": params},
        "data_type": type_name(&f.returns),
        "full_data_type": f.returns,
        "routine_body": "SQL",
        "routine_definition": f.body,
        "is_deterministic": f.deterministic,
        "is_null_call": false,
        "sql_data_access": f.data_access,
        "security_type": "DEFINER",
        "parameter_style": "S",
        "specific_name": parts[2],
        "owner": session.user,
        "function_id": new_uuid(),
        "metastore_id": session.metastore_id,
        "created_at": session.now_ms,
        "created_by": session.user,
        "updated_at": session.now_ms,
        "updated_by": session.user,
    });
    if let Some(c) = &f.comment {
        info["comment"] = json!(c);
    }
    if let Some(old) = old {
        for keep in ["function_id", "created_at", "created_by", "owner"] {
            info[keep] = old[keep].clone();
        }
    }
    data_mut(state, session).functions.insert(full, info);
    Ok(ResultSet::empty())
}

/// ALTER TABLE ... SET TBLPROPERTIES: a Delta metadata commit.
pub fn set_properties(
    state: &mut State,
    session: &Session,
    table: &Name,
    properties: &[(String, String)],
) -> SqlResult<ResultSet> {
    let full = qualify(table, session);
    let t = super::names::writable_table(state, session, &full, "SET TBLPROPERTIES")?;
    apply_options(
        &mut t.info,
        &TableOptions {
            properties: properties.to_vec(),
            ..TableOptions::default()
        },
    );
    let shown: Map<String, Value> = properties
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    commit(
        t,
        session,
        "SET TBLPROPERTIES",
        &[("properties", Value::Object(shown).to_string())],
    );
    Ok(ResultSet::empty())
}

/// ALTER TABLE ... UNSET TBLPROPERTIES [IF EXISTS]: an unknown key fails unless IF
/// EXISTS is given.
pub fn unset_properties(
    state: &mut State,
    session: &Session,
    table: &Name,
    keys: &[String],
    if_exists: bool,
) -> SqlResult<ResultSet> {
    let full = qualify(table, session);
    let t = super::names::writable_table(state, session, &full, "UNSET TBLPROPERTIES")?;
    let props = t.info["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if let Some(k) = keys
        .iter()
        .find(|k| !props.contains_key(*k))
        .filter(|_| !if_exists)
    {
        return Err(SqlError::new(
            "UNSET_NONEXISTENT_PROPERTIES",
            "42K0J",
            format!(
                "Attempted to unset non-existent properties [{k}] in table {}.",
                super::error::quoted(&full)
            ),
        ));
    }
    let mut props = props;
    for k in keys {
        props.remove(k);
    }
    t.info["properties"] = Value::Object(props);
    commit(
        t,
        session,
        "UNSET TBLPROPERTIES",
        &[
            ("properties", json!(keys).to_string()),
            ("ifExists", if_exists.to_string()),
        ],
    );
    Ok(ResultSet::empty())
}

/// CREATE [EXTERNAL] VOLUME: the record the REST API creates (`uc::new_volume`).
pub fn create_volume(
    state: &mut State,
    session: &Session,
    v: &CreateVolume,
) -> SqlResult<ResultSet> {
    let full = qualify(&v.name, session);
    check_creatable(state, session, &full, "CREATE VOLUME")?;
    if v.if_not_exists && data(state, session)?.volumes.contains_key(&full) {
        return Ok(ResultSet::empty());
    }
    let parts: Vec<&str> = full.split('.').collect();
    let volume_type = if v.external { "EXTERNAL" } else { "MANAGED" };
    let mut record = crate::uc::new_volume(
        data(state, session)?,
        &session.metastore_id,
        parts[0],
        parts[1],
        parts[2],
        volume_type,
        v.location.as_deref(),
    )
    .map_err(volume_error)?;
    if let Some(c) = &v.comment {
        record["comment"] = json!(c);
    }
    for (field, value) in [
        ("created_at", json!(session.now_ms)),
        ("updated_at", json!(session.now_ms)),
        ("created_by", json!(session.user)),
        ("updated_by", json!(session.user)),
        ("owner", json!(session.user)),
        ("metastore_id", json!(session.metastore_id)),
    ] {
        record[field] = value;
    }
    data_mut(state, session).volumes.insert(full, record);
    Ok(ResultSet::empty())
}

fn drop_volume(
    state: &mut State,
    session: &Session,
    full: &str,
    if_exists: bool,
) -> SqlResult<ResultSet> {
    let d = data_mut(state, session);
    if d.volumes.remove(full).is_none() {
        if if_exists {
            return Ok(ResultSet::empty());
        }
        return Err(SqlError::new(
            "VOLUME_NOT_FOUND",
            "42704",
            format!("The volume {} cannot be found.", super::error::quoted(full)),
        ));
    }
    d.grants.remove(&format!("VOLUME/{full}"));
    d.tags.remove(&tag_key("VOLUME", full));
    Ok(ResultSet::empty())
}

/// A REST-side refusal of a volume (no schema, a name in use, no external location
/// covers the storage) as the SQL error Databricks gives.
fn volume_error(e: crate::errors::ApiError) -> SqlError {
    let (code, message) = match &e.body {
        crate::errors::ErrorBody::Standard {
            error_code,
            message,
        } => (
            error_code.as_str().unwrap_or_default().to_string(),
            message.clone(),
        ),
        other => (String::new(), format!("{other:?}")),
    };
    match code.as_str() {
        "RESOURCE_ALREADY_EXISTS" => SqlError::new("VOLUME_ALREADY_EXISTS", "42000", message),
        "SCHEMA_DOES_NOT_EXIST" | "NOT_FOUND" => {
            SqlError::new("SCHEMA_NOT_FOUND", "42704", message)
        }
        _ => SqlError::new("INVALID_PARAMETER_VALUE", "22023", message),
    }
}

pub fn drop(
    state: &mut State,
    session: &Session,
    kind: DropKind,
    name: &Name,
    if_exists: bool,
) -> SqlResult<ResultSet> {
    let full = qualify(name, session);
    if kind == DropKind::Volume {
        return drop_volume(state, session, &full, if_exists);
    }
    let resolved = super::names::read_table(state, session, &full);
    if kind == DropKind::Function {
        return drop_function(state, session, &full, if_exists);
    }
    let t = match resolved {
        Ok(r) if r.shared_from.is_some() => return Err(SqlError::read_only_share(&full, "DROP")),
        Ok(r) => r.table,
        Err(_) if if_exists => return Ok(ResultSet::empty()),
        Err(e) => return Err(e),
    };
    match (kind, t.is_view()) {
        (DropKind::Table, true) => {
            return Err(SqlError::new(
                "WRONG_COMMAND_FOR_OBJECT_TYPE",
                "42809",
                format!("The operation DROP TABLE requires a EXTERNAL or MANAGED. But {} is a VIEW. Use DROP VIEW instead.", super::error::quoted(&full)),
            ))
        }
        (DropKind::View, false) => {
            return Err(SqlError::new(
                "WRONG_COMMAND_FOR_OBJECT_TYPE",
                "42809",
                format!("The operation DROP VIEW requires a VIEW. But {} is a table. Use DROP TABLE instead.", super::error::quoted(&full)),
            ))
        }
        _ => {}
    }
    let d = data_mut(state, session);
    d.tables.remove(&full);
    d.grants.remove(&format!("TABLE/{full}"));
    d.tags.remove(&tag_key("TABLE", &full));
    let column_prefix = tag_key("COLUMN", &format!("{full}."));
    d.tags.retain(|k, _| !k.starts_with(&column_prefix));
    Ok(ResultSet::empty())
}

fn drop_function(
    state: &mut State,
    session: &Session,
    full: &str,
    if_exists: bool,
) -> SqlResult<ResultSet> {
    let d = data_mut(state, session);
    if d.functions.remove(full).is_none() && !if_exists {
        return Err(SqlError::routine_not_found(full));
    }
    d.grants.remove(&format!("FUNCTION/{full}"));
    Ok(ResultSet::empty())
}
