//! Values and types: SQL type text normalisation, the API's type names, coercion of
//! values to a column's type, and rendering for `data_array` (strings or null).

use serde_json::{json, Value};

use super::error::{SqlError, SqlResult};

/// Lower case, Spark's aliases resolved (`integer` is `int`, `long` is `bigint`),
/// no blanks after commas: the `type_text` Databricks reports.
pub fn normalize_type(written: &str) -> String {
    let t: String = written
        .trim()
        .to_ascii_lowercase()
        .replace(", ", ",")
        .replace(" ,", ",");
    let (head, tail) = match t.find(['(', '<']) {
        Some(i) => (t[..i].trim().to_string(), t[i..].to_string()),
        None => (t.clone(), String::new()),
    };
    if matches!(head.as_str(), "decimal" | "numeric" | "dec") && tail.is_empty() {
        return "decimal(10,0)".to_string();
    }
    let head = match head.as_str() {
        "integer" => "int",
        "long" => "bigint",
        "short" => "smallint",
        "byte" => "tinyint",
        "real" => "float",
        "numeric" | "dec" => "decimal",
        "bool" => "boolean",
        other => return format!("{other}{tail}"),
    };
    format!("{head}{tail}")
}

/// The API's type name (`ColumnInfoTypeName`) of a type text.
pub fn type_name(type_text: &str) -> &'static str {
    let t = normalize_type(type_text);
    let head = t.split(['(', '<']).next().unwrap_or_default();
    match head {
        "bigint" => "LONG",
        "int" => "INT",
        "smallint" => "SHORT",
        "tinyint" => "BYTE",
        "double" => "DOUBLE",
        "float" => "FLOAT",
        "decimal" => "DECIMAL",
        "boolean" => "BOOLEAN",
        "date" => "DATE",
        "timestamp" | "timestamp_ntz" => "TIMESTAMP",
        "binary" => "BINARY",
        "array" => "ARRAY",
        "map" => "MAP",
        "struct" => "STRUCT",
        "char" => "CHAR",
        "void" => "NULL",
        h if h.starts_with("interval") => "INTERVAL",
        _ => "STRING",
    }
}

fn is_integral(type_text: &str) -> bool {
    matches!(type_name(type_text), "LONG" | "INT" | "SHORT" | "BYTE")
}

/// The decimal scale of `decimal(p,s)`.
fn decimal_scale(type_text: &str) -> usize {
    type_text
        .split_once(',')
        .and_then(|(_, s)| s.trim_end_matches(')').trim().parse().ok())
        .unwrap_or(0)
}

pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// The value stored in a column of `type_text` (as an INSERT casts it).
pub fn coerce(v: &Value, type_text: &str) -> SqlResult<Value> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let bad = || SqlError::invalid_cast(&render(v).unwrap_or_default(), type_text);
    match type_name(type_text) {
        _ if is_integral(type_text) => match v {
            Value::Number(n) if n.is_i64() => Ok(v.clone()),
            Value::String(s) if s.trim().parse::<i64>().is_ok() => {
                Ok(json!(s.trim().parse::<i64>().unwrap_or_default()))
            }
            _ => as_f64(v)
                .filter(|f| f.is_finite())
                .map(|f| json!(f.trunc() as i64))
                .ok_or_else(bad),
        },
        "DOUBLE" | "FLOAT" => as_f64(v).map(|f| json!(f)).ok_or_else(bad),
        "DECIMAL" => as_f64(v)
            .map(|f| json!(format!("{f:.*}", decimal_scale(type_text))))
            .ok_or_else(bad),
        "BOOLEAN" => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(json!(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(json!(false)),
            _ => Err(bad()),
        },
        "STRING" | "CHAR" | "DATE" | "TIMESTAMP" => Ok(json!(render(v).unwrap_or_default())),
        _ => Ok(v.clone()),
    }
}

/// A value as the JSON_ARRAY format sends it: a string, or null.
pub fn render(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            // Spark prints a whole double with one decimal (`3.0`).
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.1}"),
            _ => n.to_string(),
        }),
        other => Some(other.to_string()),
    }
}

/// The type a literal value reads as when a query projects it.
pub fn type_of_value(v: &Value) -> &'static str {
    match v {
        Value::Number(n) if n.is_i64() => "int",
        Value::Number(_) => "double",
        Value::Bool(_) => "boolean",
        Value::Null => "void",
        _ => "string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn types_normalise_like_databricks() {
        assert_eq!(normalize_type("INTEGER"), "int");
        assert_eq!(normalize_type("LONG"), "bigint");
        assert_eq!(normalize_type("DECIMAL(10, 2)"), "decimal(10,2)");
        assert_eq!(normalize_type("decimal"), "decimal(10,0)");
        assert_eq!(normalize_type("ARRAY<STRING>"), "array<string>");
        assert_eq!(type_name("bigint"), "LONG");
        assert_eq!(type_name("decimal(10,2)"), "DECIMAL");
        assert_eq!(type_name("array<int>"), "ARRAY");
        assert_eq!(type_name("varchar(10)"), "STRING");
    }

    #[test]
    fn coercion_casts_or_fails_with_cast_invalid_input() {
        assert_eq!(coerce(&json!("42"), "bigint").unwrap(), json!(42));
        assert_eq!(coerce(&json!(1.9), "int").unwrap(), json!(1));
        assert_eq!(coerce(&json!(1), "decimal(10,2)").unwrap(), json!("1.00"));
        assert_eq!(coerce(&json!(7), "string").unwrap(), json!("7"));
        assert_eq!(coerce(&Value::Null, "int").unwrap(), Value::Null);
        assert_eq!(
            coerce(&json!("x"), "int").unwrap_err().error_class,
            "CAST_INVALID_INPUT"
        );
        assert!(coerce(&json!("maybe"), "boolean").is_err());
    }

    #[test]
    fn rendering_matches_the_json_array_format() {
        assert_eq!(render(&json!(3)), Some("3".into()));
        assert_eq!(render(&json!(3.0)), Some("3.0".into()));
        assert_eq!(render(&json!(1.5)), Some("1.5".into()));
        assert_eq!(render(&json!(true)), Some("true".into()));
        assert_eq!(render(&Value::Null), None);
    }

    proptest! {
        #[test]
        fn integers_round_trip_through_string_columns(n in any::<i64>()) {
            let s = coerce(&json!(n), "string").unwrap();
            prop_assert_eq!(coerce(&s, "bigint").unwrap(), json!(n));
        }
    }
}
