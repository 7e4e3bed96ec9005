//! EventBridge event-pattern matching, as the Amazon EventBridge User Guide
//! documents it ("Amazon EventBridge event patterns", "Arrays in ...",
//! "Matching null values and empty strings ...", "Content filtering ..."), so
//! that a test can check a rule of template.yaml against the documented
//! sample of the event it is for.
//!
//! Implemented: exact values (strings character by character, numbers,
//! booleans, null), nested objects, arrays in the event (any element), and the
//! content filters `prefix`, `suffix`, `equals-ignore-case`, `anything-but`
//! (values, a list, or a prefix), `numeric` and `exists`, and `$or`. A filter
//! this matcher does not know (`cidr`, `wildcard`) is an error, never a
//! silent match or non-match.

use serde_json::{Map, Value};

/// Does `pattern` match `event`? `Err` names what is wrong with the pattern.
pub fn matches(pattern: &Value, event: &Value) -> Result<bool, String> {
    let Value::Object(pattern) = pattern else {
        return Err("an event pattern must be a JSON object".into());
    };
    match_object(pattern, Some(event), "")
}

/// Every field of the pattern must match (a missing event field only matches
/// `exists: false`); fields of the event the pattern does not name are ignored.
fn match_object(
    pattern: &Map<String, Value>,
    event: Option<&Value>,
    path: &str,
) -> Result<bool, String> {
    let mut all = true;
    for (key, expected) in pattern {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let ok = if key == "$or" {
            match_or(expected, event, &here)?
        } else {
            let field = event.and_then(|e| e.get(key));
            match expected {
                Value::Object(nested) => match_nested(nested, field, &here)?,
                Value::Array(matchers) => match_leaf(matchers, field, &here)?,
                _ => {
                    return Err(format!(
                        "{here}: a pattern field is an array of values or an object"
                    ))
                }
            }
        };
        // Evaluate every field, so that a bad filter anywhere is reported.
        all &= ok;
    }
    Ok(all)
}

fn match_or(alternatives: &Value, event: Option<&Value>, path: &str) -> Result<bool, String> {
    let Some(alternatives) = alternatives.as_array().filter(|a| !a.is_empty()) else {
        return Err(format!("{path}: $or takes a non-empty array of patterns"));
    };
    let mut any = false;
    for alternative in alternatives {
        let Value::Object(alternative) = alternative else {
            return Err(format!("{path}: each $or alternative is an object"));
        };
        any |= match_object(alternative, event, path)?;
    }
    Ok(any)
}

/// A nested pattern against an object, or against an array of objects (any).
fn match_nested(
    pattern: &Map<String, Value>,
    field: Option<&Value>,
    path: &str,
) -> Result<bool, String> {
    match field {
        Some(Value::Array(items)) => {
            let mut any = false;
            for item in items {
                any |= match_object(pattern, Some(item), path)?;
            }
            Ok(any)
        }
        Some(value @ Value::Object(_)) => match_object(pattern, Some(value), path),
        // A leaf or a missing field: only `exists: false` inside can match.
        _ => match_object(pattern, None, path),
    }
}

/// Any matcher against the value, or against any element of an array value.
fn match_leaf(matchers: &[Value], field: Option<&Value>, path: &str) -> Result<bool, String> {
    if matchers.is_empty() {
        return Err(format!(
            "{path}: an empty array matches nothing (EventBridge rejects it)"
        ));
    }
    let values: Vec<&Value> = match field {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(value) => vec![value],
        None => Vec::new(),
    };
    let mut any = false;
    for matcher in matchers {
        any |= match matcher {
            Value::Object(filter) => match_filter(filter, field, &values, path)?,
            Value::Array(_) => return Err(format!("{path}: values are not nested arrays")),
            exact => values.iter().any(|v| same_value(exact, v)),
        };
    }
    Ok(any)
}

/// Exact values: JSON equality. The guide says numbers compare by their
/// string representation (300 and 300.0 differ); serde_json keeps integers
/// and floats apart, which is that, except that it reads 3.0e2 as 300.0.
fn same_value(expected: &Value, actual: &Value) -> bool {
    expected == actual
}

fn match_filter(
    filter: &Map<String, Value>,
    field: Option<&Value>,
    values: &[&Value],
    path: &str,
) -> Result<bool, String> {
    let mut entries = filter.iter();
    let (Some((name, argument)), None) = (entries.next(), entries.next()) else {
        return Err(format!("{path}: a content filter has exactly one key"));
    };
    let strings = || values.iter().filter_map(|v| v.as_str());
    Ok(match name.as_str() {
        "exists" => match (argument, field) {
            // A present leaf. The guide does not say whether a null is
            // "present"; this counts it (the field is in the event).
            (Value::Bool(true), Some(value)) => !value.is_object(),
            (Value::Bool(true), None) => false,
            (Value::Bool(false), present) => present.is_none(),
            _ => return Err(format!("{path}: exists takes true or false")),
        },
        "prefix" => {
            let (prefix, fold) = string_argument(argument, path, "prefix")?;
            strings().any(|s| starts_with(s, &prefix, fold))
        }
        "suffix" => {
            let (suffix, fold) = string_argument(argument, path, "suffix")?;
            strings().any(|s| ends_with(s, &suffix, fold))
        }
        "equals-ignore-case" => {
            let Some(expected) = argument.as_str() else {
                return Err(format!("{path}: equals-ignore-case takes a string"));
            };
            strings().any(|s| s.to_lowercase() == expected.to_lowercase())
        }
        "anything-but" => anything_but(argument, values, path)?,
        "numeric" => {
            let conditions = numeric_conditions(argument, path)?;
            values
                .iter()
                .filter_map(|v| v.as_f64())
                .any(|n| conditions.iter().all(|(op, bound)| compare(n, op, *bound)))
        }
        other => {
            return Err(format!(
                "{path}: content filter '{other}' is not implemented here"
            ))
        }
    })
}

/// `"x"`, or `{"equals-ignore-case": "x"}` (prefix and suffix).
fn string_argument(argument: &Value, path: &str, name: &str) -> Result<(String, bool), String> {
    match argument {
        Value::String(s) => Ok((s.clone(), false)),
        Value::Object(inner) if inner.len() == 1 => match inner.get("equals-ignore-case") {
            Some(Value::String(s)) => Ok((s.clone(), true)),
            _ => Err(format!(
                "{path}: {name} takes a string or {{\"equals-ignore-case\": string}}"
            )),
        },
        _ => Err(format!("{path}: {name} takes a string")),
    }
}

fn starts_with(value: &str, prefix: &str, fold: bool) -> bool {
    if fold {
        value.to_lowercase().starts_with(&prefix.to_lowercase())
    } else {
        value.starts_with(prefix)
    }
}

fn ends_with(value: &str, suffix: &str, fold: bool) -> bool {
    if fold {
        value.to_lowercase().ends_with(&suffix.to_lowercase())
    } else {
        value.ends_with(suffix)
    }
}

/// Present, and none of the values (or not starting with the prefix). A
/// missing field matches nothing but `exists: false`.
fn anything_but(argument: &Value, values: &[&Value], path: &str) -> Result<bool, String> {
    let excluded: Vec<&Value> = match argument {
        Value::Array(list) if !list.is_empty() && list.iter().all(|v| v.is_string() || v.is_number()) => {
            list.iter().collect()
        }
        Value::String(_) | Value::Number(_) => vec![argument],
        Value::Object(inner) if inner.len() == 1 && inner.get("prefix").is_some_and(Value::is_string) => {
            let prefix = inner["prefix"].as_str().unwrap_or_default();
            return Ok(values
                .iter()
                .any(|v| v.as_str().is_some_and(|s| !s.starts_with(prefix))));
        }
        _ => {
            return Err(format!(
                "{path}: anything-but takes a string, a number, a list of them, or {{\"prefix\": string}}"
            ))
        }
    };
    Ok(values
        .iter()
        .any(|v| !excluded.iter().any(|e| same_value(e, v))))
}

/// `[">", 0, "<=", 5]`: one or two (operator, bound) pairs.
fn numeric_conditions(argument: &Value, path: &str) -> Result<Vec<(String, f64)>, String> {
    let bad = || format!("{path}: numeric takes [op, number] or [op, number, op, number]");
    let Some(items) = argument.as_array().filter(|a| a.len() == 2 || a.len() == 4) else {
        return Err(bad());
    };
    items
        .chunks(2)
        .map(|pair| match (pair[0].as_str(), pair[1].as_f64()) {
            (Some(op @ ("<" | "<=" | "=" | ">" | ">=")), Some(bound)) => {
                Ok((op.to_string(), bound))
            }
            _ => Err(bad()),
        })
        .collect()
}

fn compare(value: f64, op: &str, bound: f64) -> bool {
    match op {
        "<" => value < bound,
        "<=" => value <= bound,
        "=" => value == bound,
        ">" => value > bound,
        _ => value >= bound,
    }
}

#[cfg(test)]
mod tests {
    use super::matches;
    use serde_json::{json, Value};

    /// The EC2 event of the guide's "Amazon EventBridge event patterns" page.
    fn ec2() -> Value {
        json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2",
            "account": "111122223333",
            "time": "2017-12-22T18:43:48Z",
            "region": "us-west-1",
            "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
            "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated",
                       "c-count": 5, "x-limit": 301.8, "empty": "", "nothing": null}
        })
    }

    fn check(pattern: Value) -> bool {
        matches(&pattern, &ec2()).unwrap()
    }

    #[test]
    fn exact_values_and_nesting() {
        assert!(check(
            json!({"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"], "detail": {"state": ["terminated"]}})
        ));
        assert!(
            check(json!({"source": ["aws.fargate", "aws.ec2"]})),
            "any value of the array"
        );
        assert!(
            !check(json!({"source": ["aws.ec2"], "detail": {"state": ["running"]}})),
            "every field must match"
        );
        assert!(!check(json!({"source": ["AWS.EC2"]})), "no case folding");
        assert!(
            !check(json!({"detail": {"missing": ["x"]}})),
            "a missing field does not match"
        );
        assert!(
            !check(json!({"detail": {"state": {"nested": ["x"]}}})),
            "a leaf is not an object"
        );
        assert!(!check(json!({"source": {"nested": ["aws.ec2"]}})));
        assert!(check(json!({"detail": {"c-count": [5]}})));
        assert!(
            !check(json!({"detail": {"c-count": ["5"]}})),
            "a string is not a number"
        );
        assert!(
            !check(json!({"detail": {"c-count": [5.0]}})),
            "5 and 5.0 differ"
        );
        assert!(check(json!({"detail": {"empty": [""]}})));
        assert!(check(json!({"detail": {"nothing": [null]}})));
        assert!(
            !check(json!({"detail": {"empty": [null]}})),
            "null and empty differ"
        );
        assert!(!check(json!({"detail": {"nothing": [""]}})));
    }

    #[test]
    fn arrays_in_the_event_match_on_any_element() {
        let event = json!({"resources": ["arn:aws:autoscaling:us-east-1:123456789012:x", "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"],
                           "items": [{"kind": "a"}, {"kind": "b"}]});
        let pattern = json!({"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f", "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f"]});
        assert!(matches(&pattern, &event).unwrap());
        assert!(!matches(&json!({"resources": ["arn:other"]}), &event).unwrap());
        assert!(matches(&json!({"items": {"kind": ["b"]}}), &event).unwrap());
        assert!(!matches(&json!({"items": {"kind": ["c"]}}), &event).unwrap());
    }

    #[test]
    fn prefix_suffix_and_case() {
        assert!(check(json!({"time": [{"prefix": "2017-12-22"}]})));
        assert!(!check(json!({"time": [{"prefix": "2017-10-02"}]})));
        assert!(
            !check(json!({"detail": {"c-count": [{"prefix": "5"}]}})),
            "prefix is for strings"
        );
        assert!(check(
            json!({"region": [{"prefix": {"equals-ignore-case": "US-"}}]})
        ));
        assert!(check(
            json!({"detail": {"instance-id": [{"suffix": "def0"}]}})
        ));
        assert!(!check(
            json!({"detail": {"instance-id": [{"suffix": "DEF0"}]}})
        ));
        assert!(check(
            json!({"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]})
        ));
        assert!(!check(
            json!({"detail-type": [{"equals-ignore-case": "ec2 instance"}]})
        ));
    }

    #[test]
    fn anything_but() {
        assert!(check(
            json!({"detail": {"state": [{"anything-but": "initializing"}]}})
        ));
        assert!(!check(
            json!({"detail": {"state": [{"anything-but": "terminated"}]}})
        ));
        assert!(!check(
            json!({"detail": {"state": [{"anything-but": ["stopped", "terminated"]}]}})
        ));
        assert!(check(
            json!({"detail": {"c-count": [{"anything-but": [100, 200, 300]}]}})
        ));
        assert!(!check(
            json!({"detail": {"c-count": [{"anything-but": 5}]}})
        ));
        assert!(check(
            json!({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}})
        ));
        assert!(!check(
            json!({"detail": {"state": [{"anything-but": {"prefix": "term"}}]}})
        ));
        assert!(
            !check(json!({"detail": {"missing": [{"anything-but": "x"}]}})),
            "the field must be there"
        );
    }

    #[test]
    fn numeric() {
        assert!(check(
            json!({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "x-limit": [{"numeric": ["=", 3.018e2]}]}})
        ));
        assert!(!check(
            json!({"detail": {"c-count": [{"numeric": [">", 5]}]}})
        ));
        assert!(!check(
            json!({"detail": {"c-count": [{"numeric": ["<", 5]}]}})
        ));
        assert!(check(
            json!({"detail": {"c-count": [{"numeric": [">=", 5]}]}})
        ));
        assert!(
            !check(json!({"detail": {"state": [{"numeric": [">", 0]}]}})),
            "numbers only"
        );
    }

    #[test]
    fn exists() {
        assert!(check(json!({"detail": {"state": [{"exists": true}]}})));
        assert!(!check(json!({"detail": {"missing": [{"exists": true}]}})));
        assert!(check(json!({"detail": {"missing": [{"exists": false}]}})));
        assert!(!check(json!({"detail": {"state": [{"exists": false}]}})));
        assert!(
            !check(json!({"detail": [{"exists": true}]})),
            "exists works on leaves only"
        );
        assert!(check(json!({"nowhere": {"deeper": [{"exists": false}]}})));
    }

    #[test]
    fn or() {
        assert!(check(
            json!({"detail": {"$or": [{"c-count": [{"numeric": [">", 10]}]}, {"state": ["terminated"]}]}})
        ));
        assert!(!check(
            json!({"detail": {"$or": [{"c-count": [{"numeric": [">", 10]}]}, {"state": ["running"]}]}})
        ));
        assert!(
            !check(json!({"source": ["aws.s3"], "$or": [{"region": ["us-west-1"]}]})),
            "and the other fields"
        );
    }

    #[test]
    fn bad_patterns_are_errors() {
        for pattern in [
            json!(["aws.ec2"]),
            json!({"source": "aws.ec2"}),
            json!({"source": []}),
            json!({"source": [["aws.ec2"]]}),
            json!({"source": [{"cidr": "10.0.0.0/24"}]}),
            json!({"source": [{"prefix": "a", "suffix": "b"}]}),
            json!({"detail": {"c-count": [{"numeric": [">"]}]}}),
            json!({"detail": {"c-count": [{"numeric": ["~", 1]}]}}),
            json!({"detail": {"state": [{"anything-but": {"suffix": "x"}}]}}),
            json!({"detail": {"state": [{"exists": "yes"}]}}),
            json!({"$or": []}),
        ] {
            assert!(matches(&pattern, &ec2()).is_err(), "{pattern}");
        }
    }
}
