//! A small SQL engine over Unity Catalog's data plane (`uc_data`), for the Statement
//! Execution API. It parses one statement (`parse`), substitutes `:name` parameters as
//! literal tokens (`params`), and executes it against the `MetastoreData` of the
//! workspace's metastore: DDL (`ddl`, `clone`), DML (`dml`), queries over tables,
//! views and `information_schema` (`query`, `information_schema`), DESCRIBE/SHOW
//! (`describe`) and tags, comments and grants (`governance`).
//!
//! Everything here is pure over `&mut State`: no clock reads (the session carries
//! `now_ms`), no I/O, so the engine is unit-tested without a server.

mod aggregate;
pub mod ast;
mod clone;
mod ddl;
mod describe;
mod dml;
pub mod error;
mod expr;
mod governance;
mod information_schema;
mod names;
pub mod params;
pub mod parse;
mod parse_function;
mod parse_governance;
mod query;
mod show;
pub mod value;

use serde_json::Value;

use crate::state::State;
pub use ast::{is_mutating, Stmt};
use error::SqlResult;

/// Who runs a statement, where, and when.
#[derive(Debug, Clone)]
pub struct Session {
    pub metastore_id: String,
    /// The principal's user name (owner of what it creates, `userName` in history).
    pub user: String,
    /// Current catalog and schema for names of fewer than three parts.
    pub catalog: String,
    pub schema: String,
    pub now_ms: i64,
}

/// A column of a result: name and SQL type text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultColumn {
    pub name: String,
    pub type_text: String,
}

impl ResultColumn {
    pub fn new(name: &str, type_text: &str) -> Self {
        ResultColumn {
            name: name.to_string(),
            type_text: type_text.to_string(),
        }
    }
}

/// What a statement returns: columns and rows of values (rendered to strings or null
/// by the API layer). DDL returns no columns and no rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultSet {
    pub columns: Vec<ResultColumn>,
    pub rows: Vec<Vec<Value>>,
}

impl ResultSet {
    pub fn empty() -> Self {
        ResultSet::default()
    }

    /// One row of bigint metrics, as DML and CLONE report them.
    pub fn metrics(pairs: &[(&str, i64)]) -> Self {
        ResultSet {
            columns: pairs
                .iter()
                .map(|(n, _)| ResultColumn::new(n, "bigint"))
                .collect(),
            rows: vec![pairs.iter().map(|(_, v)| Value::from(*v)).collect()],
        }
    }
}

/// Executes a parsed statement.
pub fn execute(state: &mut State, session: &Session, stmt: &Stmt) -> SqlResult<ResultSet> {
    match stmt {
        Stmt::CreateTable(c) => match &c.source {
            ast::TableSource::Clone { source, deep } => {
                clone::clone_table(state, session, c, source, *deep)
            }
            _ => ddl::create_table(state, session, c),
        },
        Stmt::CreateView(v) => ddl::create_view(state, session, v),
        Stmt::CreateFunction(f) => ddl::create_function(state, session, f),
        Stmt::CreateVolume(v) => ddl::create_volume(state, session, v),
        Stmt::Drop {
            kind,
            name,
            if_exists,
        } => ddl::drop(state, session, *kind, name, *if_exists),
        Stmt::Insert {
            table,
            columns,
            source,
        } => dml::insert(state, session, table, columns, source),
        Stmt::Update {
            table,
            assignments,
            predicate,
        } => dml::update(state, session, table, assignments, predicate.as_ref()),
        Stmt::SetProperties { table, properties } => {
            ddl::set_properties(state, session, table, properties)
        }
        Stmt::UnsetProperties {
            table,
            keys,
            if_exists,
        } => ddl::unset_properties(state, session, table, keys, *if_exists),
        Stmt::Delete { table, predicate } => dml::delete(state, session, table, predicate.as_ref()),
        Stmt::Query(q) => query::run_query(state, session, q, 0),
        Stmt::DescribeHistory(n) => describe::history(state, session, n),
        Stmt::DescribeTable(n) => describe::describe_table(state, session, n),
        Stmt::DescribeDetail(n) => describe::detail(state, session, n),
        Stmt::ShowCreateTable(n) => describe::show_create_table(state, session, n),
        Stmt::ShowTables { schema, pattern } => {
            show::tables(state, session, schema.as_ref(), pattern.as_deref())
        }
        Stmt::ShowSchemas { catalog, pattern } => {
            show::schemas(state, session, catalog.as_deref(), pattern.as_deref())
        }
        Stmt::ShowCatalogs { pattern } => show::catalogs(state, session, pattern.as_deref()),
        Stmt::SetTags { target, tags } => governance::set_tags(state, session, target, tags),
        Stmt::UnsetTags { target, keys } => governance::unset_tags(state, session, target, keys),
        Stmt::SetComment { target, comment } => {
            governance::set_comment(state, session, target, comment.as_deref())
        }
        Stmt::Grant {
            privileges,
            target,
            principal,
        } => governance::grant(state, session, target, principal, privileges, true),
        Stmt::Revoke {
            privileges,
            target,
            principal,
        } => governance::grant(state, session, target, principal, privileges, false),
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
