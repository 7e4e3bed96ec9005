//! SHOW TABLES, SHOW SCHEMAS and SHOW CATALOGS, with Databricks' result columns.

use serde_json::json;

use super::ast::Name;
use super::error::{SqlError, SqlResult};
use super::names::{data, qualify_schema};
use super::{ResultColumn, ResultSet, Session};
use crate::state::State;
use crate::uc_data::{share_catalog_tables, share_of_catalog};

/// Databricks' SHOW pattern: `*` matches any run, `|` separates alternatives, case
/// does not matter.
pub fn show_pattern_matches(pattern: &str, name: &str) -> bool {
    pattern.split('|').any(|alt| {
        let like = alt.trim().to_lowercase().replace('*', "%");
        super::expr::like(&name.to_lowercase(), &like)
    })
}

fn keep(pattern: Option<&str>, name: &str) -> bool {
    pattern.is_none_or(|p| show_pattern_matches(p, name))
}

pub fn tables(
    state: &State,
    session: &Session,
    schema: Option<&Name>,
    pattern: Option<&str>,
) -> SqlResult<ResultSet> {
    let full = match schema {
        Some(n) => qualify_schema(n, session),
        None => format!("{}.{}", session.catalog, session.schema).to_lowercase(),
    };
    let d = data(state, session)?;
    let (catalog, schema_name) = full.split_once('.').unwrap_or_default();
    let cat = d
        .catalogs
        .get(catalog)
        .ok_or_else(|| SqlError::catalog_not_found(catalog))?;
    let mut names: Vec<String> = if share_of_catalog(cat).is_some() {
        share_catalog_tables(state, &session.metastore_id, cat)
            .into_iter()
            .filter(|(s, _, _)| s == schema_name)
            .map(|(_, t, _)| t)
            .collect()
    } else {
        if !d.schemas.contains_key(&full) {
            return Err(SqlError::schema_not_found(&full));
        }
        let prefix = format!("{full}.");
        d.tables
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(str::to_string)
            .collect()
    };
    names.retain(|n| keep(pattern, n));
    names.sort();
    Ok(ResultSet {
        columns: vec![
            ResultColumn::new("database", "string"),
            ResultColumn::new("tableName", "string"),
            ResultColumn::new("isTemporary", "boolean"),
        ],
        rows: names
            .into_iter()
            .map(|n| vec![json!(schema_name), json!(n), json!(false)])
            .collect(),
    })
}

pub fn schemas(
    state: &State,
    session: &Session,
    catalog: Option<&str>,
    pattern: Option<&str>,
) -> SqlResult<ResultSet> {
    let catalog = catalog
        .map(str::to_string)
        .unwrap_or_else(|| session.catalog.to_lowercase());
    let d = data(state, session)?;
    let cat = d
        .catalogs
        .get(&catalog)
        .ok_or_else(|| SqlError::catalog_not_found(&catalog))?;
    let mut names: Vec<String> = if share_of_catalog(cat).is_some() {
        share_catalog_tables(state, &session.metastore_id, cat)
            .into_iter()
            .map(|(s, _, _)| s)
            .collect()
    } else {
        let prefix = format!("{catalog}.");
        d.schemas
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(str::to_string)
            .collect()
    };
    names.sort();
    names.dedup();
    names.retain(|n| keep(pattern, n));
    Ok(ResultSet {
        columns: vec![ResultColumn::new("databaseName", "string")],
        rows: names.into_iter().map(|n| vec![json!(n)]).collect(),
    })
}

pub fn catalogs(state: &State, session: &Session, pattern: Option<&str>) -> SqlResult<ResultSet> {
    let d = data(state, session)?;
    Ok(ResultSet {
        columns: vec![ResultColumn::new("catalog", "string")],
        rows: d
            .catalogs
            .keys()
            .filter(|n| keep(pattern, n))
            .map(|n| vec![json!(n)])
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_patterns_use_star_and_alternatives() {
        assert!(show_pattern_matches("sales*", "sales_2024"));
        assert!(show_pattern_matches("a|b*", "B1"));
        assert!(!show_pattern_matches("a|b*", "c"));
        assert!(show_pattern_matches("*", "anything"));
    }
}
