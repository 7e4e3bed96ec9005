//! INSERT INTO ... VALUES | SELECT, UPDATE and DELETE, and the Delta commit every
//! table write makes: the version goes up by one and a history entry records the
//! operation. INSERT adds one data file; UPDATE and DELETE rewrite each file that held
//! an affected row (a file left with no rows is removed).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sqlparser::ast::Expr;

use super::ast::{InsertSource, Name};
use super::error::{SqlError, SqlResult};
use super::expr::{eval, literal_in, RowView};
use super::names::{qualify, writable_table};
use super::value::coerce;
use super::{ResultSet, Session};
use crate::state::State;
use crate::uc_data::{DataFile, HistoryEntry, TableRecord};

/// A new data file with Delta's naming; its size is that of its rows' JSON, so sizes
/// are deterministic for a given content.
pub fn new_file(rows: Vec<Vec<Value>>) -> DataFile {
    let size_bytes = serde_json::to_vec(&rows)
        .map(|b| b.len() as i64)
        .unwrap_or(0);
    DataFile {
        id: format!(
            "part-00000-{}-c000.snappy.parquet",
            crate::state::new_uuid()
        ),
        rows,
        size_bytes,
    }
}

/// Records a commit: version + 1 (0 for a table's first commit), a history entry,
/// and `updated_at`/`updated_by` on the table.
pub fn commit(
    t: &mut TableRecord,
    session: &Session,
    operation: &str,
    parameters: &[(&str, String)],
) {
    if !t.history.is_empty() {
        t.version += 1;
    }
    t.history.push(HistoryEntry {
        version: t.version,
        timestamp_ms: session.now_ms,
        operation: operation.to_string(),
        operation_parameters: parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        user_name: session.user.clone(),
    });
    t.info["updated_at"] = json!(session.now_ms);
    t.info["updated_by"] = json!(session.user);
}

pub fn insert(
    state: &mut State,
    session: &Session,
    table: &Name,
    columns: &[String],
    source: &InsertSource,
) -> SqlResult<ResultSet> {
    let full = qualify(table, session);
    // The rows first: a query reads the state before the table is borrowed to write.
    let values: Vec<Vec<Value>> = match source {
        InsertSource::Values(rows) => rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|e| literal_in(e, Some(session)))
                    .collect::<SqlResult<_>>()
            })
            .collect::<SqlResult<_>>()?,
        InsertSource::Query(q) => super::query::run_query(state, session, q, 0)?.rows,
    };
    let t = writable_table(state, session, &full, "INSERT")?;
    let targets: Vec<usize> = if columns.is_empty() {
        (0..t.columns.len()).collect()
    } else {
        columns
            .iter()
            .map(|c| column_index(t, c, &full))
            .collect::<SqlResult<_>>()?
    };
    let mut new_rows = Vec::with_capacity(values.len());
    for given in values {
        if given.len() != targets.len() {
            return Err(SqlError::new(
                "INSERT_COLUMN_ARITY_MISMATCH.NOT_ENOUGH_DATA_COLUMNS",
                "21S01",
                format!(
                    "Cannot write to {}, the reason is not enough data columns: Table columns: {}. Data columns: {}.",
                    super::error::quoted(&full),
                    targets.len(),
                    given.len()
                ),
            ));
        }
        let mut row = vec![Value::Null; t.columns.len()];
        for (v, &i) in given.iter().zip(&targets) {
            row[i] = coerce(v, &t.columns[i].type_text)?;
        }
        check_not_null(t, &row)?;
        new_rows.push(row);
    }
    let n = new_rows.len() as i64;
    t.files.push(new_file(new_rows));
    commit(
        t,
        session,
        "WRITE",
        &[
            ("mode", "Append".to_string()),
            ("statsOnLoad", "false".to_string()),
            ("partitionBy", "[]".to_string()),
        ],
    );
    Ok(ResultSet::metrics(&[
        ("num_affected_rows", n),
        ("num_inserted_rows", n),
    ]))
}

fn column_index(t: &TableRecord, column: &str, full: &str) -> SqlResult<usize> {
    let lower = column.to_lowercase();
    t.columns
        .iter()
        .position(|col| col.name.to_lowercase() == lower)
        .ok_or_else(|| SqlError::column_not_found(column, full))
}

fn check_not_null(t: &TableRecord, row: &[Value]) -> SqlResult<()> {
    match t
        .columns
        .iter()
        .zip(row)
        .find(|(c, v)| !c.nullable && v.is_null())
    {
        Some((c, _)) => Err(SqlError::new(
            "DELTA_NOT_NULL_CONSTRAINT_VIOLATED",
            "23502",
            format!("NOT NULL constraint violated for column: {}.", c.name),
        )),
        None => Ok(()),
    }
}

fn matches(
    session: &Session,
    predicate: Option<&Expr>,
    names: &[String],
    row: &[Value],
    relation: &str,
) -> SqlResult<bool> {
    match predicate {
        None => Ok(true),
        Some(p) => {
            let view = RowView {
                columns: names,
                values: row,
                relation,
                session: Some(session),
            };
            Ok(eval(p, &view)? == json!(true))
        }
    }
}

fn predicate_text(predicate: Option<&Expr>) -> String {
    predicate
        .map(|p| format!("[\"({p})\"]"))
        .unwrap_or_else(|| "[]".to_string())
}

pub fn update(
    state: &mut State,
    session: &Session,
    table: &Name,
    assignments: &[(String, Expr)],
    predicate: Option<&Expr>,
) -> SqlResult<ResultSet> {
    let full = qualify(table, session);
    let t = writable_table(state, session, &full, "UPDATE")?;
    let names: Vec<String> = t.columns.iter().map(|c| c.name.to_lowercase()).collect();
    let targets: Vec<usize> = assignments
        .iter()
        .map(|(c, _)| column_index(t, c, &full))
        .collect::<SqlResult<_>>()?;
    let mut updated = 0i64;
    let mut files = Vec::with_capacity(t.files.len());
    for f in &t.files {
        let mut changed = false;
        let mut rows = Vec::with_capacity(f.rows.len());
        for r in &f.rows {
            if !matches(session, predicate, &names, r, &full)? {
                rows.push(r.clone());
                continue;
            }
            // Every assignment reads the row as it was before the UPDATE.
            let view = RowView {
                columns: &names,
                values: r,
                relation: &full,
                session: Some(session),
            };
            let mut new_row = r.clone();
            for ((_, e), &i) in assignments.iter().zip(&targets) {
                new_row[i] = coerce(&eval(e, &view)?, &t.columns[i].type_text)?;
            }
            check_not_null(t, &new_row)?;
            rows.push(new_row);
            changed = true;
            updated += 1;
        }
        files.push(if changed { new_file(rows) } else { f.clone() });
    }
    if updated > 0 {
        t.files = files;
        commit(
            t,
            session,
            "UPDATE",
            &[("predicate", predicate_text(predicate))],
        );
    }
    Ok(ResultSet::metrics(&[("num_affected_rows", updated)]))
}

pub fn delete(
    state: &mut State,
    session: &Session,
    table: &Name,
    predicate: Option<&Expr>,
) -> SqlResult<ResultSet> {
    let full = qualify(table, session);
    let t = writable_table(state, session, &full, "DELETE")?;
    let names: Vec<String> = t.columns.iter().map(|c| c.name.to_lowercase()).collect();
    let mut deleted = 0i64;
    let mut files = Vec::with_capacity(t.files.len());
    for f in &t.files {
        let mut kept = Vec::new();
        for r in &f.rows {
            if !matches(session, predicate, &names, r, &full)? {
                kept.push(r.clone());
            }
        }
        if kept.len() == f.rows.len() {
            files.push(f.clone());
        } else {
            deleted += (f.rows.len() - kept.len()) as i64;
            if !kept.is_empty() {
                files.push(new_file(kept));
            }
        }
    }
    // A DELETE that matches nothing rewrites nothing and commits nothing.
    if deleted > 0 {
        t.files = files;
        commit(
            t,
            session,
            "DELETE",
            &[("predicate", predicate_text(predicate))],
        );
    }
    Ok(ResultSet::metrics(&[("num_affected_rows", deleted)]))
}
