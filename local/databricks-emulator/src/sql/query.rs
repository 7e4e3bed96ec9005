//! SELECT over one relation (a table, a view through its definition, or an
//! `information_schema` view), or over no relation: WHERE, projections (columns,
//! `*`, expressions, aliases), aggregates over all rows or per GROUP BY group
//! (`aggregate`), DISTINCT, ORDER BY, LIMIT and OFFSET. Joins, HAVING, set operations
//! and CTEs are refused as unsupported.

use std::cmp::Ordering;

use serde_json::{json, Value};
use sqlparser::ast::{
    Distinct, Expr, FunctionArgExpr, GroupByExpr, LimitClause, OrderByKind, OrderBySort, Query,
    SelectItem, SetExpr, TableFactor,
};

use super::aggregate::{aggregate, aggregate_name, group, is_aggregate_item};
use super::ast::Name;
use super::error::{SqlError, SqlResult};
use super::expr::{call_args, compare, eval, literal, RowView};
use super::names::{qualify, read_table};
use super::parse::name_of;
use super::value::type_of_value;
use super::{ResultColumn, ResultSet, Session};
use crate::state::State;

/// Views may select from views; this bounds a cycle (which Databricks refuses at
/// creation, so it can only come from a replaced view).
const MAX_VIEW_DEPTH: usize = 16;

pub fn run_query(
    state: &State,
    session: &Session,
    q: &Query,
    depth: usize,
) -> SqlResult<ResultSet> {
    if q.with.is_some() {
        return Err(SqlError::unsupported("WITH (common table expressions)"));
    }
    let select = match q.body.as_ref() {
        SetExpr::Select(s) => s,
        SetExpr::Query(inner) => return run_query(state, session, inner, depth),
        other => return Err(SqlError::unsupported(format!("the query form {other}"))),
    };
    refuse_unsupported_clauses(q, select)?;
    let group_keys: &[Expr] = match &select.group_by {
        GroupByExpr::Expressions(keys, modifiers) if modifiers.is_empty() => keys,
        _ => return Err(SqlError::unsupported("GROUP BY ALL and GROUP BY modifiers")),
    };
    if select.having.is_some() {
        return Err(SqlError::unsupported("HAVING"));
    }
    let (relation, relation_name) = match select.from.as_slice() {
        [] => (
            ResultSet {
                columns: vec![],
                rows: vec![vec![]],
            },
            String::new(),
        ),
        [one] if one.joins.is_empty() => match &one.relation {
            TableFactor::Table {
                name,
                args: None,
                version: None,
                sample: None,
                ..
            } => {
                let name = name_of(name)?;
                (
                    load_relation(state, session, &name, depth)?,
                    name.to_string(),
                )
            }
            other => return Err(SqlError::unsupported(format!("FROM {other}"))),
        },
        _ => return Err(SqlError::unsupported("joins and FROM lists")),
    };
    let names: Vec<String> = relation
        .columns
        .iter()
        .map(|c| c.name.to_lowercase())
        .collect();
    check_references(session, select, &names, &relation_name)?;
    let mut kept = Vec::new();
    for row in relation.rows {
        let view = RowView {
            columns: &names,
            values: &row,
            relation: &relation_name,
            session: Some(session),
        };
        let keep = match &select.selection {
            Some(p) => eval(p, &view)? == json!(true),
            None => true,
        };
        if keep {
            kept.push(row);
        }
    }
    let input = Input {
        columns: &relation.columns,
        names: &names,
        relation: &relation_name,
        session,
    };
    let mut out = if !group_keys.is_empty() {
        let mut grouped = group(&input, &select.projection, &kept, group_keys)?;
        sort_output(&input, &mut grouped, q)?;
        grouped
    } else if select.projection.iter().any(is_aggregate_item) {
        aggregate(&input, &select.projection, &kept, &[])?
    } else {
        project(&input, &select.projection, &kept, q)?
    };
    if matches!(select.distinct, Some(Distinct::Distinct)) {
        let mut seen = Vec::new();
        out.rows.retain(|r| {
            let fresh = !seen.contains(r);
            if fresh {
                seen.push(r.clone());
            }
            fresh
        });
    } else if matches!(select.distinct, Some(Distinct::On(_))) {
        return Err(SqlError::unsupported("DISTINCT ON"));
    }
    apply_limit(&mut out, q)?;
    Ok(out)
}

/// Clauses the engine does not execute fail the query instead of being ignored.
fn refuse_unsupported_clauses(q: &Query, s: &sqlparser::ast::Select) -> SqlResult<()> {
    let query_clauses = [
        ("FETCH", q.fetch.is_some()),
        (
            "FOR UPDATE/SHARE",
            !q.locks.is_empty() || q.for_clause.is_some(),
        ),
        (
            "SETTINGS/FORMAT",
            q.settings.is_some() || q.format_clause.is_some(),
        ),
        ("pipe operators", !q.pipe_operators.is_empty()),
    ];
    let select_clauses = [
        ("TOP", s.top.is_some()),
        ("SELECT INTO", s.into.is_some()),
        ("LATERAL VIEW", !s.lateral_views.is_empty()),
        ("QUALIFY", s.qualify.is_some()),
        (
            "CLUSTER/DISTRIBUTE/SORT BY",
            !s.cluster_by.is_empty() || !s.distribute_by.is_empty() || !s.sort_by.is_empty(),
        ),
        ("WINDOW", !s.named_window.is_empty()),
        (
            "PREWHERE/CONNECT BY",
            s.prewhere.is_some() || !s.connect_by.is_empty(),
        ),
        ("EXCLUDE", s.exclude.is_some()),
    ];
    let wildcard_options = s.projection.iter().any(|item| match item {
        SelectItem::Wildcard(o) | SelectItem::QualifiedWildcard(_, o) => {
            o.opt_ilike.is_some()
                || o.opt_exclude.is_some()
                || o.opt_except.is_some()
                || o.opt_replace.is_some()
                || o.opt_rename.is_some()
        }
        _ => false,
    });
    match query_clauses
        .iter()
        .chain(select_clauses.iter())
        .chain([("* EXCEPT/REPLACE", wildcard_options)].iter())
        .find(|(_, present)| *present)
    {
        Some((what, _)) => Err(SqlError::unsupported(format!("SELECT with {what}"))),
        None => Ok(()),
    }
}

/// Fails on a reference to a column the relation does not have, also when it has
/// no rows (Databricks resolves names before it reads anything): every expression is
/// evaluated once on a row of NULLs.
fn check_references(
    session: &Session,
    select: &sqlparser::ast::Select,
    names: &[String],
    relation: &str,
) -> SqlResult<()> {
    let nulls = vec![Value::Null; names.len()];
    let row = RowView {
        columns: names,
        values: &nulls,
        relation,
        session: Some(session),
    };
    let mut exprs: Vec<&Expr> = select.selection.iter().collect();
    for item in &select.projection {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            match e {
                Expr::Function(f) if aggregate_name(e).is_some() => {
                    for a in call_args(f)? {
                        if let FunctionArgExpr::Expr(x) = a {
                            exprs.push(x);
                        }
                    }
                }
                _ => exprs.push(e),
            }
        }
    }
    for e in exprs {
        eval(e, &row)?;
    }
    Ok(())
}

/// The relation a query reads.
pub(super) struct Input<'a> {
    pub columns: &'a [ResultColumn],
    pub names: &'a [String],
    pub relation: &'a str,
    pub session: &'a Session,
}

/// A table's rows, a view's result, or an information_schema view.
pub fn load_relation(
    state: &State,
    session: &Session,
    name: &Name,
    depth: usize,
) -> SqlResult<ResultSet> {
    if let Some(rel) = super::information_schema::relation(state, session, name)? {
        return Ok(rel);
    }
    let full = qualify(name, session);
    let resolved = read_table(state, session, &full)?;
    let t = resolved.table;
    if t.is_view() {
        if depth >= MAX_VIEW_DEPTH {
            return Err(SqlError::new(
                "VIEW_EXCEED_MAX_NESTED_DEPTH",
                "54K00",
                format!("The depth of view {full} exceeds the maximum view resolution depth ({MAX_VIEW_DEPTH})."),
            ));
        }
        let definition = t.info["view_definition"].as_str().unwrap_or_default();
        let Ok(super::Stmt::Query(q)) = super::parse::parse(definition) else {
            return Err(SqlError::new(
                "INVALID_VIEW_TEXT",
                "XX000",
                format!(
                    "The view {full} cannot be displayed due to invalid view text: {definition}."
                ),
            ));
        };
        // Names in a view resolve in the view's own catalog and schema.
        let mut inner = session.clone();
        inner.catalog = t.info["catalog_name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        inner.schema = t.info["schema_name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        return run_query(state, &inner, &q, depth + 1);
    }
    Ok(ResultSet {
        columns: t
            .columns
            .iter()
            .map(|c| ResultColumn::new(&c.name, &c.type_text))
            .collect(),
        rows: t.rows().cloned().collect(),
    })
}

/// The column name Databricks gives an unaliased expression: a column keeps its
/// name, `count(*)` is `count(1)`, anything else its SQL text.
pub(super) fn default_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(parts) => {
            parts.last().map(|i| i.value.clone()).unwrap_or_default()
        }
        Expr::Function(f) if aggregate_name(e).as_deref() == Some("count") => {
            match call_args(f).ok().as_deref() {
                Some([FunctionArgExpr::Wildcard]) => "count(1)".to_string(),
                _ => e.to_string().to_lowercase(),
            }
        }
        Expr::Function(_) => e.to_string().to_lowercase(),
        Expr::Value(_) => e.to_string().trim_matches('\'').to_string(),
        other => other.to_string(),
    }
}

pub(super) fn column_type(input: &Input, e: &Expr) -> Option<String> {
    let name = match e {
        Expr::Identifier(i) => i.value.to_lowercase(),
        Expr::CompoundIdentifier(p) => p.last()?.value.to_lowercase(),
        _ => return None,
    };
    let i = input.names.iter().position(|n| *n == name)?;
    Some(input.columns[i].type_text.clone())
}

fn project(
    input: &Input,
    items: &[SelectItem],
    rows: &[Vec<Value>],
    q: &Query,
) -> SqlResult<ResultSet> {
    // Output columns: (expression or None for a source column index, name).
    let mut outputs: Vec<(Result<&Expr, usize>, String)> = Vec::new();
    for item in items {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                for (i, c) in input.columns.iter().enumerate() {
                    outputs.push((Err(i), c.name.clone()));
                }
            }
            SelectItem::UnnamedExpr(e) => outputs.push((Ok(e), default_name(e))),
            SelectItem::ExprWithAlias { expr, alias } => {
                outputs.push((Ok(expr), alias.value.clone()))
            }
            other => return Err(SqlError::unsupported(format!("the select item {other}"))),
        }
    }
    let mut projected: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
    for r in rows {
        let view = RowView {
            columns: input.names,
            values: r,
            relation: input.relation,
            session: Some(input.session),
        };
        let mut out = Vec::with_capacity(outputs.len());
        for (what, _) in &outputs {
            out.push(match what {
                Err(i) => r.get(*i).cloned().unwrap_or(Value::Null),
                Ok(e) => eval(e, &view)?,
            });
        }
        projected.push((r.clone(), out));
    }
    let out_names: Vec<String> = outputs.iter().map(|(_, n)| n.to_lowercase()).collect();
    sort(input, &out_names, &mut projected, q)?;
    let columns = outputs
        .iter()
        .enumerate()
        .map(|(i, (what, name))| {
            let type_text = match what {
                Err(src) => input.columns[*src].type_text.clone(),
                Ok(e) => column_type(input, e).unwrap_or_else(|| {
                    projected
                        .iter()
                        .map(|(_, o)| &o[i])
                        .find(|v| !v.is_null())
                        .map(type_of_value)
                        .unwrap_or("string")
                        .to_string()
                }),
            };
            ResultColumn::new(name, &type_text)
        })
        .collect();
    Ok(ResultSet {
        columns,
        rows: projected.into_iter().map(|(_, o)| o).collect(),
    })
}

/// ORDER BY keys read the source row, then the output columns (aliases).
fn sort(
    input: &Input,
    out_names: &[String],
    rows: &mut [(Vec<Value>, Vec<Value>)],
    q: &Query,
) -> SqlResult<()> {
    let Some(order) = &q.order_by else {
        return Ok(());
    };
    let OrderByKind::Expressions(keys) = &order.kind else {
        return Err(SqlError::unsupported("ORDER BY ALL"));
    };
    let names: Vec<String> = input.names.iter().chain(out_names).cloned().collect();
    let mut keyed = Vec::with_capacity(rows.len());
    for (src, out) in rows.iter() {
        let values: Vec<Value> = src.iter().chain(out.iter()).cloned().collect();
        let view = RowView {
            columns: &names,
            values: &values,
            relation: input.relation,
            session: Some(input.session),
        };
        let k: Vec<Value> = keys
            .iter()
            .map(|k| eval(&k.expr, &view))
            .collect::<SqlResult<_>>()?;
        keyed.push(k);
    }
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    idx.sort_by(|&a, &b| {
        for (i, k) in keys.iter().enumerate() {
            let desc = matches!(k.options.sort, Some(OrderBySort::Desc));
            // Spark sorts NULLs first ascending and last descending by default.
            let o = match (keyed[a][i].is_null(), keyed[b][i].is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                _ => compare(&keyed[a][i], &keyed[b][i]).unwrap_or(Ordering::Equal),
            };
            let o = if desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    let sorted: Vec<(Vec<Value>, Vec<Value>)> = idx.iter().map(|&i| rows[i].clone()).collect();
    rows.clone_from_slice(&sorted);
    Ok(())
}

/// ORDER BY of a grouped result: keys read its output columns (names and aliases).
fn sort_output(input: &Input, out: &mut ResultSet, q: &Query) -> SqlResult<()> {
    let names: Vec<String> = out.columns.iter().map(|c| c.name.to_lowercase()).collect();
    let no_source = Input {
        columns: &[],
        names: &[],
        relation: input.relation,
        session: input.session,
    };
    let mut pairs: Vec<(Vec<Value>, Vec<Value>)> =
        out.rows.drain(..).map(|r| (vec![], r)).collect();
    sort(&no_source, &names, &mut pairs, q)?;
    out.rows = pairs.into_iter().map(|(_, r)| r).collect();
    Ok(())
}

fn count_of(e: &Expr, what: &str) -> SqlResult<usize> {
    literal(e)?
        .as_i64()
        .filter(|n| *n >= 0)
        .map(|n| n as usize)
        .ok_or_else(|| {
            SqlError::new(
                "INVALID_LIMIT_LIKE_EXPRESSION.IS_NEGATIVE",
                "42K0E",
                format!("The {what} expression {e} must be a non-negative integer."),
            )
        })
}

fn apply_limit(out: &mut ResultSet, q: &Query) -> SqlResult<()> {
    let (limit, offset) = match &q.limit_clause {
        None => (None, None),
        Some(LimitClause::LimitOffset { limit, offset, .. }) => (
            limit.as_ref().map(|l| count_of(l, "limit")).transpose()?,
            offset
                .as_ref()
                .map(|o| count_of(&o.value, "offset"))
                .transpose()?,
        ),
        Some(LimitClause::OffsetCommaLimit { .. }) => {
            return Err(SqlError::unsupported("LIMIT offset, count"))
        }
    };
    let skip = offset.unwrap_or(0).min(out.rows.len());
    out.rows.drain(..skip);
    if let Some(n) = limit {
        out.rows.truncate(n);
    }
    Ok(())
}
