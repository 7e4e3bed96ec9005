//! SET TAGS / UNSET TAGS, COMMENT ON (and ALTER COLUMN ... COMMENT), GRANT and
//! REVOKE. Tags and grants live in the metastore's `tags` and `grants` maps, the same
//! ones the REST API reads; a view is securable type TABLE, as in Unity Catalog.

use serde_json::json;

use super::ast::Securable;
use super::dml::commit;
use super::error::{quoted, SqlError, SqlResult};
use super::names::{data, data_mut, qualify, qualify_schema, read_table};
use super::{ResultSet, Session};
use crate::state::State;
use crate::uc_data::tag_key;

/// A securable resolved to its Unity Catalog type and lower-case full name, after
/// checking that it exists.
fn resolve(
    state: &State,
    session: &Session,
    target: &Securable,
) -> SqlResult<(&'static str, String)> {
    let d = data(state, session)?;
    match target {
        Securable::Catalog(n) => {
            let name = n.to_string();
            if !d.catalogs.contains_key(&name) {
                return Err(SqlError::catalog_not_found(&name));
            }
            Ok(("CATALOG", name))
        }
        Securable::Schema(n) => {
            let full = qualify_schema(n, session);
            if !d.schemas.contains_key(&full) {
                return Err(SqlError::schema_not_found(&full));
            }
            Ok(("SCHEMA", full))
        }
        Securable::Table { name, .. } => {
            let full = qualify(name, session);
            if read_table(state, session, &full)?.shared_from.is_some() {
                return Err(SqlError::read_only_share(&full, "ALTER"));
            }
            Ok(("TABLE", full))
        }
        Securable::Column { table, column } => {
            let full = qualify(table, session);
            let t = read_table(state, session, &full)?;
            if t.shared_from.is_some() {
                return Err(SqlError::read_only_share(&full, "ALTER"));
            }
            if !t
                .table
                .columns
                .iter()
                .any(|c| c.name.to_lowercase() == *column)
            {
                return Err(SqlError::column_not_found(column, &full));
            }
            Ok(("COLUMN", format!("{full}.{column}")))
        }
        Securable::Function(n) => {
            let full = qualify(n, session);
            if !d.functions.contains_key(&full) {
                return Err(SqlError::routine_not_found(&full));
            }
            Ok(("FUNCTION", full))
        }
        Securable::Share(s) => {
            if !d.shares.contains_key(s) {
                return Err(SqlError::new(
                    "SHARE_NOT_FOUND",
                    "42704",
                    format!("Share '{s}' does not exist."),
                ));
            }
            Ok(("SHARE", s.clone()))
        }
    }
}

pub fn set_tags(
    state: &mut State,
    session: &Session,
    target: &Securable,
    tags: &[(String, String)],
) -> SqlResult<ResultSet> {
    let (kind, full) = resolve(state, session, target)?;
    if matches!(kind, "FUNCTION" | "SHARE") {
        return Err(SqlError::unsupported(format!("tags on a {kind}")));
    }
    let entry = data_mut(state, session)
        .tags
        .entry(tag_key(kind, &full))
        .or_default();
    for (k, v) in tags {
        entry.insert(k.clone(), v.clone());
    }
    Ok(ResultSet::empty())
}

pub fn unset_tags(
    state: &mut State,
    session: &Session,
    target: &Securable,
    keys: &[String],
) -> SqlResult<ResultSet> {
    let (kind, full) = resolve(state, session, target)?;
    let d = data_mut(state, session);
    let key = tag_key(kind, &full);
    if let Some(tags) = d.tags.get_mut(&key) {
        for k in keys {
            tags.remove(k);
        }
        if tags.is_empty() {
            d.tags.remove(&key);
        }
    }
    Ok(ResultSet::empty())
}

/// A table's or column's comment is Delta metadata, so changing it is a commit
/// (SET TBLPROPERTIES / CHANGE COLUMN); schema and catalog comments are UC fields.
pub fn set_comment(
    state: &mut State,
    session: &Session,
    target: &Securable,
    comment: Option<&str>,
) -> SqlResult<ResultSet> {
    let (kind, full) = resolve(state, session, target)?;
    let value = comment.map(|c| json!(c)).unwrap_or(serde_json::Value::Null);
    let d = data_mut(state, session);
    match (kind, target) {
        ("CATALOG", _) => d
            .catalogs
            .get_mut(&full)
            .into_iter()
            .for_each(|c| c["comment"] = value.clone()),
        ("SCHEMA", _) => d
            .schemas
            .get_mut(&full)
            .into_iter()
            .for_each(|s| s["comment"] = value.clone()),
        ("TABLE", _) => {
            if let Some(t) = d.tables.get_mut(&full) {
                t.info["comment"] = value.clone();
                if !t.is_view() {
                    let props = json!({"comment": comment}).to_string();
                    commit(t, session, "SET TBLPROPERTIES", &[("properties", props)]);
                }
            }
        }
        ("COLUMN", Securable::Column { table, column }) => {
            let table_full = qualify(table, session);
            if let Some(t) = d.tables.get_mut(&table_full) {
                if let Some(c) = t
                    .columns
                    .iter_mut()
                    .find(|c| c.name.to_lowercase() == *column)
                {
                    c.comment = comment.map(str::to_string);
                }
                if !t.is_view() {
                    commit(
                        t,
                        session,
                        "CHANGE COLUMN",
                        &[(
                            "column",
                            json!({"name": column, "comment": comment}).to_string(),
                        )],
                    );
                }
            }
        }
        _ => return Err(SqlError::unsupported(format!("COMMENT ON {kind}"))),
    }
    Ok(ResultSet::empty())
}

pub fn grant(
    state: &mut State,
    session: &Session,
    target: &Securable,
    principal: &str,
    privileges: &[String],
    add: bool,
) -> SqlResult<ResultSet> {
    let (kind, full) = resolve(state, session, target)?;
    if kind == "COLUMN" {
        return Err(SqlError::unsupported("privileges on columns"));
    }
    if let Some(p) = privileges
        .iter()
        .find(|p| crate::uc::privilege_problem(p).is_some())
    {
        return Err(SqlError::new(
            "INVALID_PRIVILEGE",
            "42852",
            format!("Privilege {p} is not valid for {}.", quoted(&full)),
        ));
    }
    let d = data_mut(state, session);
    if kind == "SHARE" {
        if !d.recipients.contains_key(&principal.to_lowercase()) {
            return Err(SqlError::new(
                "RECIPIENT_NOT_FOUND",
                "42704",
                format!("Recipient '{principal}' does not exist."),
            ));
        }
        if privileges.iter().any(|p| p != "SELECT") {
            return Err(SqlError::new(
                "INVALID_PRIVILEGE",
                "42852",
                "Only SELECT can be granted on a share.",
            ));
        }
    }
    let who = if kind == "SHARE" {
        principal.to_lowercase()
    } else {
        principal.to_string()
    };
    let grants = d.grants.entry(format!("{kind}/{full}")).or_default();
    let set = grants.entry(who.clone()).or_default();
    for p in privileges {
        if add {
            set.insert(p.clone());
        } else {
            set.remove(p);
        }
    }
    if set.is_empty() {
        grants.remove(&who);
    }
    Ok(ResultSet::empty())
}
