//! Name resolution: qualifying 1- and 2-part names with the session's catalog and
//! schema, checking that the catalog and schema of a new object exist, and finding
//! the local (writable) record of a table.

use crate::state::{MetastoreData, State};
use crate::uc_data::{resolve_table, share_of_catalog, Resolved, TableRecord, Unresolved};

use super::ast::Name;
use super::error::{SqlError, SqlResult};
use super::Session;

/// `catalog.schema.name`, lower case.
pub fn qualify(name: &Name, session: &Session) -> String {
    let cat = session.catalog.to_lowercase();
    let sch = session.schema.to_lowercase();
    match name.0.as_slice() {
        [t] => format!("{cat}.{sch}.{t}"),
        [s, t] => format!("{cat}.{s}.{t}"),
        parts => parts.join("."),
    }
}

/// `catalog.schema` of a schema name (1 part: in the session's catalog).
pub fn qualify_schema(name: &Name, session: &Session) -> String {
    match name.0.as_slice() {
        [s] => format!("{}.{s}", session.catalog.to_lowercase()),
        parts => parts.join("."),
    }
}

pub fn unresolved(u: Unresolved) -> SqlError {
    match u {
        Unresolved::Catalog(c) => SqlError::catalog_not_found(&c),
        Unresolved::Schema(s) => SqlError::schema_not_found(&s),
        Unresolved::Table(t) => SqlError::table_not_found(&t),
    }
}

pub fn data<'a>(state: &'a State, session: &Session) -> SqlResult<&'a MetastoreData> {
    state
        .metastore_data
        .get(&session.metastore_id)
        .ok_or_else(|| SqlError::catalog_not_found(&session.catalog))
}

pub fn data_mut<'a>(state: &'a mut State, session: &Session) -> &'a mut MetastoreData {
    state
        .metastore_data
        .entry(session.metastore_id.clone())
        .or_default()
}

/// Reads a table or view by name, through share catalogs too.
pub fn read_table<'a>(
    state: &'a State,
    session: &Session,
    full_name: &str,
) -> SqlResult<Resolved<'a>> {
    resolve_table(state, &session.metastore_id, full_name).map_err(unresolved)
}

/// Checks that a new object `catalog.schema.name` can be created: the catalog and
/// schema exist, and the catalog is not a (read-only) Delta Sharing catalog.
pub fn check_creatable(
    state: &State,
    session: &Session,
    full_name: &str,
    operation: &str,
) -> SqlResult<()> {
    let parts: Vec<&str> = full_name.split('.').collect();
    let [c, s, _] = parts.as_slice() else {
        return Err(SqlError::table_not_found(full_name));
    };
    let d = data(state, session)?;
    let catalog = d
        .catalogs
        .get(*c)
        .ok_or_else(|| SqlError::catalog_not_found(c))?;
    if share_of_catalog(catalog).is_some() {
        return Err(SqlError::read_only_share(full_name, operation));
    }
    if !d.schemas.contains_key(&format!("{c}.{s}")) {
        return Err(SqlError::schema_not_found(&format!("{c}.{s}")));
    }
    Ok(())
}

/// The local record of an existing table for a write (`operation` names the write in
/// the error): tables read through a share are read-only; views are not tables.
pub fn writable_table<'a>(
    state: &'a mut State,
    session: &Session,
    full_name: &str,
    operation: &str,
) -> SqlResult<&'a mut TableRecord> {
    let resolved = read_table(state, session, full_name)?;
    if resolved.shared_from.is_some() {
        return Err(SqlError::read_only_share(full_name, operation));
    }
    if resolved.table.is_view() {
        return Err(SqlError::new(
            "EXPECT_TABLE_NOT_VIEW.NO_ALTERNATIVE",
            "42809",
            format!(
                "'{operation}' expects a table but {} is a view.",
                super::error::quoted(full_name)
            ),
        ));
    }
    data_mut(state, session)
        .tables
        .get_mut(full_name)
        .ok_or_else(|| SqlError::table_not_found(full_name))
}
