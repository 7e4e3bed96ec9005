//! Scalar expressions over one row: literals, column references, comparisons,
//! AND/OR/NOT, IS [NOT] NULL, [NOT] IN (list), BETWEEN, LIKE, arithmetic, `||`, and a
//! few functions. NULL follows SQL's three-valued logic; WHERE keeps a row only when
//! its predicate is TRUE.

use std::cmp::Ordering;

use serde_json::{json, Value};
use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, InTarget, UnaryOperator,
    Value as SqlValue,
};

use super::error::{SqlError, SqlResult};
use super::value::as_f64;
use super::Session;

/// One row and the names of its columns (lower case), for column references.
pub struct RowView<'a> {
    pub columns: &'a [String],
    pub values: &'a [Value],
    /// The relation's name, for "column cannot be resolved" messages.
    pub relation: &'a str,
    /// Who runs the statement and when, for current_user(), current_timestamp(), ...
    pub session: Option<&'a Session>,
}

impl RowView<'_> {
    fn column(&self, name: &str) -> SqlResult<&Value> {
        let lower = name.to_lowercase();
        self.columns
            .iter()
            .position(|c| *c == lower)
            .map(|i| self.values.get(i).unwrap_or(&Value::Null))
            .ok_or_else(|| SqlError::column_not_found(name, self.relation))
    }
}

/// The value of a literal expression (no column references).
pub fn literal(e: &Expr) -> SqlResult<Value> {
    literal_in(e, None)
}

/// The value of an expression without column references, in a session (INSERT
/// VALUES may call current_timestamp()).
pub fn literal_in(e: &Expr, session: Option<&Session>) -> SqlResult<Value> {
    eval(
        e,
        &RowView {
            columns: &[],
            values: &[],
            relation: "VALUES",
            session,
        },
    )
}

pub fn eval(e: &Expr, row: &RowView) -> SqlResult<Value> {
    match e {
        Expr::Value(v) => sql_value(&v.value),
        Expr::Identifier(i) => row.column(&i.value).cloned(),
        Expr::CompoundIdentifier(parts) => {
            let last = parts.last().map(|i| i.value.as_str()).unwrap_or_default();
            row.column(last).cloned()
        }
        Expr::Nested(inner) => eval(inner, row),
        Expr::IsNull(x) => Ok(json!(eval(x, row)?.is_null())),
        Expr::IsNotNull(x) => Ok(json!(!eval(x, row)?.is_null())),
        Expr::UnaryOp { op, expr } => unary(*op, eval(expr, row)?),
        Expr::BinaryOp { left, op, right } => binary(eval(left, row)?, op, eval(right, row)?),
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let v = eval(expr, row)?;
            let ge = compare_op(&v, &eval(low, row)?, |o| o != Ordering::Less);
            let le = compare_op(&v, &eval(high, row)?, |o| o != Ordering::Greater);
            let both = and(ge, le);
            Ok(if *negated { not(both) } else { both })
        }
        Expr::In {
            expr,
            target: InTarget::List(list),
            negated,
            ..
        } => {
            let v = eval(expr, row)?;
            let mut found = json!(false);
            for item in list {
                let eq = compare_op(&v, &eval(item, row)?, |o| o == Ordering::Equal);
                found = or(found, eq);
            }
            Ok(if *negated { not(found) } else { found })
        }
        Expr::Like {
            negated,
            expr,
            pattern,
            escape_char: None,
            any: false,
        } => {
            let (v, pat) = (eval(expr, row)?, eval(pattern, row)?);
            match (super::value::render(&v), super::value::render(&pat)) {
                (Some(s), Some(p)) => Ok(json!(like(&s, &p) != *negated)),
                _ => Ok(Value::Null),
            }
        }
        Expr::Function(f) => function(f, row),
        other => Err(SqlError::unsupported(format!("the expression {other}"))),
    }
}

fn sql_value(v: &SqlValue) -> SqlResult<Value> {
    match v {
        SqlValue::Number(n, _) => Ok(n
            .parse::<i64>()
            .map(|i| json!(i))
            .or_else(|_| n.parse::<f64>().map(|f| json!(f)))
            .map_err(|_| SqlError::parse(format!("Invalid number {n}.")))?),
        SqlValue::SingleQuotedString(s) | SqlValue::DoubleQuotedString(s) => Ok(json!(s)),
        SqlValue::Boolean(b) => Ok(json!(b)),
        SqlValue::Null => Ok(Value::Null),
        SqlValue::Placeholder(p) => Err(SqlError::new(
            "UNBOUND_SQL_PARAMETER",
            "42P02",
            format!("Found the unbound parameter: {}. Please, fix `args` and provide a mapping of the parameter to either a SQL literal or collection constructor functions.", p.trim_start_matches(':')),
        )),
        other => Err(SqlError::unsupported(format!("the literal {other}"))),
    }
}

fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

fn not(v: Value) -> Value {
    truth(&v).map(|b| json!(!b)).unwrap_or(Value::Null)
}

fn and(a: Value, b: Value) -> Value {
    match (truth(&a), truth(&b)) {
        (Some(false), _) | (_, Some(false)) => json!(false),
        (Some(true), Some(true)) => json!(true),
        _ => Value::Null,
    }
}

fn or(a: Value, b: Value) -> Value {
    match (truth(&a), truth(&b)) {
        (Some(true), _) | (_, Some(true)) => json!(true),
        (Some(false), Some(false)) => json!(false),
        _ => Value::Null,
    }
}

/// SQL ordering of two non-null values: numerically when both read as numbers
/// (Spark casts a string compared with a number), else as text.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    if a.is_null() || b.is_null() {
        return None;
    }
    let numeric = matches!(a, Value::Number(_)) || matches!(b, Value::Number(_));
    if numeric {
        if let (Some(x), Some(y)) = (as_f64(a), as_f64(b)) {
            return x.partial_cmp(&y);
        }
    }
    let (x, y) = (super::value::render(a)?, super::value::render(b)?);
    Some(x.cmp(&y))
}

fn compare_op(a: &Value, b: &Value, test: impl Fn(Ordering) -> bool) -> Value {
    compare(a, b).map(|o| json!(test(o))).unwrap_or(Value::Null)
}

fn unary(op: UnaryOperator, v: Value) -> SqlResult<Value> {
    match op {
        UnaryOperator::Not => Ok(not(v)),
        UnaryOperator::Minus => match &v {
            Value::Null => Ok(Value::Null),
            Value::Number(n) if n.is_i64() => Ok(json!(-n.as_i64().unwrap_or_default())),
            _ => as_f64(&v)
                .map(|f| json!(-f))
                .ok_or_else(|| SqlError::invalid_cast(&v.to_string(), "double")),
        },
        UnaryOperator::Plus => Ok(v),
        other => Err(SqlError::unsupported(format!("the operator {other}"))),
    }
}

fn binary(a: Value, op: &BinaryOperator, b: Value) -> SqlResult<Value> {
    use BinaryOperator as B;
    Ok(match op {
        B::And => and(a, b),
        B::Or => or(a, b),
        B::Eq => compare_op(&a, &b, |o| o == Ordering::Equal),
        B::NotEq => compare_op(&a, &b, |o| o != Ordering::Equal),
        B::Lt => compare_op(&a, &b, |o| o == Ordering::Less),
        B::LtEq => compare_op(&a, &b, |o| o != Ordering::Greater),
        B::Gt => compare_op(&a, &b, |o| o == Ordering::Greater),
        B::GtEq => compare_op(&a, &b, |o| o != Ordering::Less),
        B::StringConcat => match (super::value::render(&a), super::value::render(&b)) {
            (Some(x), Some(y)) => json!(format!("{x}{y}")),
            _ => Value::Null,
        },
        B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => arithmetic(&a, op, &b)?,
        other => return Err(SqlError::unsupported(format!("the operator {other}"))),
    })
}

fn arithmetic(a: &Value, op: &BinaryOperator, b: &Value) -> SqlResult<Value> {
    use BinaryOperator as B;
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    if let (Some(x), Some(y), false) = (a.as_i64(), b.as_i64(), *op == B::Divide) {
        return Ok(match op {
            B::Plus => json!(x.wrapping_add(y)),
            B::Minus => json!(x.wrapping_sub(y)),
            B::Multiply => json!(x.wrapping_mul(y)),
            _ if y == 0 => return Err(divide_by_zero()),
            _ => json!(x % y),
        });
    }
    let (x, y) = match (as_f64(a), as_f64(b)) {
        (Some(x), Some(y)) => (x, y),
        _ => return Err(SqlError::invalid_cast(&format!("{a} {op} {b}"), "double")),
    };
    Ok(match op {
        B::Plus => json!(x + y),
        B::Minus => json!(x - y),
        B::Multiply => json!(x * y),
        _ if y == 0.0 => return Err(divide_by_zero()),
        B::Divide => json!(x / y),
        _ => json!(x % y),
    })
}

fn divide_by_zero() -> SqlError {
    SqlError::new(
        "DIVIDE_BY_ZERO",
        "22012",
        "Division by zero. Use `try_divide` to tolerate divisor being 0 and return NULL instead.",
    )
}

/// SQL LIKE: `%` any run, `_` one character.
pub fn like(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // match_from[i][j]: s[i..] matches p[j..]; computed backwards.
    let mut next = vec![false; p.len() + 1];
    next[p.len()] = true;
    for j in (0..p.len()).rev() {
        next[j] = p[j] == '%' && next[j + 1];
    }
    for i in (0..s.len()).rev() {
        let mut cur = vec![false; p.len() + 1];
        for j in (0..p.len()).rev() {
            cur[j] = match p[j] {
                '%' => cur[j + 1] || next[j],
                '_' => next[j + 1],
                c => c == s[i] && next[j + 1],
            };
        }
        next = cur;
    }
    next[0]
}

/// Whether a call is written `f(DISTINCT ...)`.
pub fn call_is_distinct(f: &sqlparser::ast::Function) -> bool {
    matches!(&f.args, FunctionArguments::List(l) if l.duplicate_treatment == Some(sqlparser::ast::DuplicateTreatment::Distinct))
}

/// current_user(), current_catalog(), current_schema(), current_timestamp(),
/// current_date() and their aliases, from the session running the statement.
fn session_function(
    name: &str,
    args: &[Value],
    session: Option<&Session>,
) -> SqlResult<Option<Value>> {
    let known = matches!(
        name,
        "current_user"
            | "user"
            | "session_user"
            | "current_catalog"
            | "current_schema"
            | "current_database"
            | "current_timestamp"
            | "now"
            | "current_date"
    );
    if !known || !args.is_empty() {
        return Ok(None);
    }
    let s = session.ok_or_else(|| SqlError::unsupported(format!("{name}() here")))?;
    let now = super::describe::timestamp_text(s.now_ms);
    Ok(Some(match name {
        "current_user" | "user" | "session_user" => json!(s.user),
        "current_catalog" => json!(s.catalog),
        "current_schema" | "current_database" => json!(s.schema),
        "current_date" => json!(now[..10]),
        _ => json!(now),
    }))
}

/// The plain (unnamed) arguments of a call. Window (OVER), FILTER, WITHIN GROUP and
/// argument clauses are refused rather than ignored.
pub fn call_args(f: &sqlparser::ast::Function) -> SqlResult<Vec<&FunctionArgExpr>> {
    let has_clauses = matches!(&f.args, FunctionArguments::List(l) if !l.clauses.is_empty());
    if f.over.is_some() || f.filter.is_some() || !f.within_group.is_empty() || has_clauses {
        return Err(SqlError::unsupported(format!(
            "{f} (window functions, FILTER, WITHIN GROUP and argument clauses)"
        )));
    }
    match &f.args {
        FunctionArguments::None => Ok(vec![]),
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(x) => Ok(x),
                other => Err(SqlError::unsupported(format!("the argument {other}"))),
            })
            .collect(),
        FunctionArguments::Subquery(_) => Err(SqlError::unsupported("subquery arguments")),
    }
}

fn function(f: &sqlparser::ast::Function, row: &RowView) -> SqlResult<Value> {
    let name = f.name.to_string().to_lowercase();
    if call_is_distinct(f) {
        return Err(SqlError::unsupported(format!("{name}(DISTINCT ...)")));
    }
    let mut args = Vec::new();
    for a in call_args(f)? {
        match a {
            FunctionArgExpr::Expr(e) => args.push(eval(e, row)?),
            other => return Err(SqlError::unsupported(format!("{name}({other})"))),
        }
    }
    if let Some(v) = session_function(&name, &args, row.session)? {
        return Ok(v);
    }
    let text = |v: &Value| super::value::render(v);
    Ok(match (name.as_str(), args.as_slice()) {
        ("lower" | "lcase", [v]) => text(v).map(|s| json!(s.to_lowercase())).unwrap_or(Value::Null),
        ("upper" | "ucase", [v]) => text(v).map(|s| json!(s.to_uppercase())).unwrap_or(Value::Null),
        ("length" | "char_length", [v]) => text(v)
            .map(|s| json!(s.chars().count() as i64))
            .unwrap_or(Value::Null),
        ("abs", [v]) => match v.as_i64() {
            Some(i) => json!(i.wrapping_abs()),
            None => as_f64(v).map(|f| json!(f.abs())).unwrap_or(Value::Null),
        },
        ("coalesce", vs) => vs.iter().find(|v| !v.is_null()).cloned().unwrap_or(Value::Null),
        ("concat", vs) => {
            let parts: Option<Vec<String>> = vs.iter().map(text).collect();
            parts.map(|p| json!(p.concat())).unwrap_or(Value::Null)
        }
        _ => {
            return Err(SqlError::new(
                "UNRESOLVED_ROUTINE",
                "42883",
                format!("Cannot resolve routine `{name}` with {} arguments (the emulator evaluates lower, upper, length, abs, coalesce, concat, current_user, current_catalog, current_schema, current_timestamp, current_date and the aggregates count, sum, min, max, avg).", args.len()),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sqlparser::dialect::DatabricksDialect;
    use sqlparser::parser::Parser;

    fn expr(sql: &str) -> Expr {
        Parser::new(&DatabricksDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_expr()
            .unwrap()
    }

    fn on_row(sql: &str) -> Value {
        let cols = ["id".to_string(), "name".to_string()];
        let vals = [json!(2), Value::Null];
        eval(
            &expr(sql),
            &RowView {
                columns: &cols,
                values: &vals,
                relation: "t",
                session: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn predicates_follow_three_valued_logic() {
        assert_eq!(on_row("id = 2"), json!(true));
        assert_eq!(on_row("id = '2'"), json!(true));
        assert_eq!(on_row("name = 'x'"), Value::Null);
        assert_eq!(on_row("name = 'x' OR id > 1"), json!(true));
        assert_eq!(on_row("name = 'x' AND id > 5"), json!(false));
        assert_eq!(on_row("NOT (name = 'x')"), Value::Null);
        assert_eq!(on_row("name IS NULL AND id IS NOT NULL"), json!(true));
        assert_eq!(on_row("id IN (1, 2, 3)"), json!(true));
        assert_eq!(on_row("id NOT IN (1, 3)"), json!(true));
        assert_eq!(on_row("id BETWEEN 2 AND 3"), json!(true));
        assert_eq!(on_row("id * 3 + 1"), json!(7));
        assert_eq!(on_row("id / 4"), json!(0.5));
        assert_eq!(on_row("coalesce(name, 'none') || '!'"), json!("none!"));
    }

    #[test]
    fn unknown_columns_and_parameters_fail_with_their_error_classes() {
        let cols = ["id".to_string()];
        let vals = [json!(1)];
        let row = RowView {
            columns: &cols,
            values: &vals,
            relation: "t",
            session: None,
        };
        let err = eval(&expr("nope = 1"), &row).unwrap_err();
        assert_eq!(err.sql_state, "42703");
        let err = eval(&expr("id = :p"), &row).unwrap_err();
        assert_eq!(err.error_class, "UNBOUND_SQL_PARAMETER");
        assert_eq!(eval(&expr("1 / 0"), &row).unwrap_err().sql_state, "22012");
    }

    #[test]
    fn like_matches_wildcards() {
        assert!(like("hello", "h%o"));
        assert!(like("hello", "_ello"));
        assert!(like("", "%"));
        assert!(!like("hello", "h_o"));
        assert!(like("a%b", "a%b"));
    }

    proptest! {
        #[test]
        fn percent_matches_everything(s in ".{0,20}") {
            prop_assert!(like(&s, "%"));
            let prefix = format!("{}%", s);
            prop_assert!(like(&s, &prefix));
        }
    }
}
