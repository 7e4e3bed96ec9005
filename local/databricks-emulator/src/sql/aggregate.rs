//! Aggregates: count, sum, min, max and avg over all rows or per GROUP BY group.
//! A projected expression that is not an aggregate must be a group key (or a
//! literal), as Databricks requires (`MISSING_AGGREGATION`).

use std::cmp::Ordering;

use serde_json::{json, Value};
use sqlparser::ast::{Expr, FunctionArgExpr, SelectItem};

use super::error::{SqlError, SqlResult};
use super::expr::{call_args, call_is_distinct, compare, eval, literal, RowView};
use super::query::{column_type, default_name, Input};
use super::value::type_of_value;
use super::{ResultColumn, ResultSet};

pub fn aggregate_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Function(f) => {
            let n = f.name.to_string().to_lowercase();
            matches!(n.as_str(), "count" | "sum" | "min" | "max" | "avg").then_some(n)
        }
        _ => None,
    }
}

pub fn is_aggregate_item(item: &SelectItem) -> bool {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            aggregate_name(e).is_some()
        }
        _ => false,
    }
}

/// One row of aggregates over `rows`; non-aggregates must be `keys` (evaluated on
/// the group's first row) or literals.
pub fn aggregate(
    input: &Input,
    items: &[SelectItem],
    rows: &[Vec<Value>],
    keys: &[Expr],
) -> SqlResult<ResultSet> {
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for item in items {
        let (e, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.clone())),
            _ => return Err(SqlError::unsupported("* together with aggregates")),
        };
        let name = alias.unwrap_or_else(|| default_name(e));
        let (value, type_text) = match (aggregate_name(e), e) {
            (Some(agg), Expr::Function(f)) => aggregate_one(input, &agg, f, rows)?,
            _ if keys.iter().any(|k| same_expr(k, e)) => {
                let nulls = vec![Value::Null; input.names.len()];
                let row = RowView {
                    columns: input.names,
                    values: rows.first().unwrap_or(&nulls),
                    relation: input.relation,
                    session: Some(input.session),
                };
                let v = eval(e, &row)?;
                let t = column_type(input, e).unwrap_or_else(|| type_of_value(&v).to_string());
                (v, t)
            }
            _ => {
                let v = literal(e).map_err(|_| {
                    SqlError::new(
                        "MISSING_AGGREGATION",
                        "42803",
                        format!("The non-aggregating expression {e} is based on columns which are not participating in the GROUP BY clause."),
                    )
                })?;
                (v.clone(), type_of_value(&v).to_string())
            }
        };
        columns.push(ResultColumn::new(&name, &type_text));
        values.push(value);
    }
    Ok(ResultSet {
        columns,
        rows: vec![values],
    })
}

fn aggregate_one(
    input: &Input,
    agg: &str,
    f: &sqlparser::ast::Function,
    rows: &[Vec<Value>],
) -> SqlResult<(Value, String)> {
    let arg = match call_args(f)?.as_slice() {
        [FunctionArgExpr::Wildcard] if agg == "count" => None,
        [FunctionArgExpr::Expr(e)] => Some(e.clone()),
        _ => return Err(SqlError::unsupported(format!("{f}"))),
    };
    let Some(arg) = arg else {
        return Ok((json!(rows.len() as i64), "bigint".to_string()));
    };
    let distinct = call_is_distinct(f);
    let mut vals = Vec::new();
    for r in rows {
        let v = eval(
            &arg,
            &RowView {
                columns: input.names,
                values: r,
                relation: input.relation,
                session: Some(input.session),
            },
        )?;
        // NULLs do not count; with DISTINCT, neither do repeats.
        let repeated = distinct && vals.contains(&v);
        if !v.is_null() && !repeated {
            vals.push(v);
        }
    }
    let arg_type = column_type(input, &arg)
        .or_else(|| vals.first().map(|v| type_of_value(v).to_string()))
        .unwrap_or_else(|| "double".to_string());
    let nums = || vals.iter().filter_map(super::value::as_f64);
    Ok(match agg {
        "count" => (json!(vals.len() as i64), "bigint".to_string()),
        "sum" if vals.is_empty() => (Value::Null, "bigint".to_string()),
        "sum" if vals.iter().all(|v| v.is_i64()) => (
            json!(vals
                .iter()
                .filter_map(Value::as_i64)
                .fold(0i64, i64::wrapping_add)),
            "bigint".to_string(),
        ),
        "sum" => (json!(nums().sum::<f64>()), "double".to_string()),
        "avg" if vals.is_empty() => (Value::Null, "double".to_string()),
        "avg" => (
            json!(nums().sum::<f64>() / vals.len() as f64),
            "double".to_string(),
        ),
        _ => {
            let pick = if agg == "min" {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            let best = vals.iter().fold(None::<&Value>, |best, v| match best {
                Some(b) if compare(v, b) != Some(pick) => Some(b),
                _ => Some(v),
            });
            (best.cloned().unwrap_or(Value::Null), arg_type)
        }
    })
}

/// Two expressions are the same group key when they read the same column (`a` and
/// `t.a`) or are written the same.
fn same_expr(a: &Expr, b: &Expr) -> bool {
    let column = |e: &Expr| match e {
        Expr::Identifier(i) => Some(i.value.to_lowercase()),
        Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.to_lowercase()),
        _ => None,
    };
    match (column(a), column(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.to_string().eq_ignore_ascii_case(&b.to_string()),
    }
}

/// GROUP BY: one row per distinct key, in the order keys are first seen.
pub fn group(
    input: &Input,
    items: &[SelectItem],
    rows: &[Vec<Value>],
    keys: &[Expr],
) -> SqlResult<ResultSet> {
    let mut groups: Vec<(Vec<Value>, Vec<Vec<Value>>)> = Vec::new();
    for r in rows {
        let view = RowView {
            columns: input.names,
            values: r,
            relation: input.relation,
            session: Some(input.session),
        };
        let key: Vec<Value> = keys
            .iter()
            .map(|k| eval(k, &view))
            .collect::<SqlResult<_>>()?;
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(r.clone()),
            None => groups.push((key, vec![r.clone()])),
        }
    }
    // The columns come from an empty group, so a query with no rows has them too.
    let mut out = aggregate(input, items, &[], keys)?;
    out.rows.clear();
    for (_, members) in &groups {
        let one = aggregate(input, items, members, keys)?;
        out.rows.extend(one.rows);
    }
    Ok(out)
}
