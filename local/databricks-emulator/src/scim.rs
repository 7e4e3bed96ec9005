//! SCIM 2.0 pieces that are pure: filter expressions, list paging and PatchOp.

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub attribute: String,
    pub op: String,
    pub value: Value,
}

/// A filter is a conjunction or disjunction of comparisons (no parentheses; Databricks
/// clients only send single comparisons or flat `and`/`or` chains).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    All(Vec<Comparison>),
    Any(Vec<Comparison>),
}

fn tokenize(input: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::from("\"");
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            s.push(n);
                        }
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    _ => s.push(c),
                }
            }
            if !closed {
                return Err("unterminated string in filter".into());
            }
            tokens.push(s);
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                s.push(c);
                chars.next();
            }
            tokens.push(s);
        }
    }
    Ok(tokens)
}

pub fn parse_filter(input: &str) -> Result<Filter, String> {
    let tokens = tokenize(input)?;
    let mut comparisons = Vec::new();
    let mut joiner: Option<String> = None;
    let mut i = 0;
    while i < tokens.len() {
        if i + 2 >= tokens.len() && tokens.get(i + 1).map(|s| s.to_lowercase()) != Some("pr".into())
        {
            return Err(format!("invalid filter: {input}"));
        }
        let attribute = tokens[i].clone();
        let op = tokens[i + 1].to_lowercase();
        let (value, used) = if op == "pr" {
            (Value::Null, 2)
        } else {
            let raw = &tokens[i + 2];
            let value = if let Some(s) = raw.strip_prefix('"') {
                Value::String(s.to_string())
            } else if raw.eq_ignore_ascii_case("true") {
                Value::Bool(true)
            } else if raw.eq_ignore_ascii_case("false") {
                Value::Bool(false)
            } else if let Ok(n) = raw.parse::<i64>() {
                json!(n)
            } else {
                return Err(format!("invalid filter value {raw}"));
            };
            (value, 3)
        };
        if !matches!(op.as_str(), "eq" | "ne" | "co" | "sw" | "ew" | "pr") {
            return Err(format!("unsupported filter operator {op}"));
        }
        comparisons.push(Comparison {
            attribute,
            op,
            value,
        });
        i += used;
        if i < tokens.len() {
            let j = tokens[i].to_lowercase();
            if j != "and" && j != "or" {
                return Err(format!("invalid filter: {input}"));
            }
            if joiner.as_ref().is_some_and(|prev| prev != &j) {
                return Err("mixing and/or in one filter is not supported".into());
            }
            joiner = Some(j);
            i += 1;
        }
    }
    if comparisons.is_empty() {
        return Err("empty filter".into());
    }
    Ok(if joiner.as_deref() == Some("or") {
        Filter::Any(comparisons)
    } else {
        Filter::All(comparisons)
    })
}

/// Attribute names are case-insensitive in SCIM.
fn attribute<'a>(resource: &'a Value, name: &str) -> Option<&'a Value> {
    let obj = resource.as_object()?;
    let mut current: Option<&Value> = None;
    for (i, part) in name.split('.').enumerate() {
        let map = if i == 0 { obj } else { current?.as_object()? };
        current = map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(part))
            .map(|(_, v)| v);
    }
    current
}

fn compare(resource: &Value, c: &Comparison) -> bool {
    let actual = attribute(resource, &c.attribute);
    if c.op == "pr" {
        return actual.is_some_and(|v| !v.is_null());
    }
    let Some(actual) = actual else {
        return c.op == "ne";
    };
    match (actual, &c.value) {
        (Value::String(a), Value::String(b)) => {
            // String comparisons are case-insensitive for SCIM caseExact=false attributes.
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            match c.op.as_str() {
                "eq" => a == b,
                "ne" => a != b,
                "co" => a.contains(&b),
                "sw" => a.starts_with(&b),
                "ew" => a.ends_with(&b),
                _ => false,
            }
        }
        (a, b) => match c.op.as_str() {
            "eq" => a == b,
            "ne" => a != b,
            _ => false,
        },
    }
}

pub fn matches(resource: &Value, filter: &Filter) -> bool {
    match filter {
        Filter::All(cs) => cs.iter().all(|c| compare(resource, c)),
        Filter::Any(cs) => cs.iter().any(|c| compare(resource, c)),
    }
}

/// One page of a SCIM list. `start_index` is 1-based; a start past the end gives an
/// empty page with the real total.
pub fn page(resources: Vec<Value>, start_index: Option<i64>, count: Option<i64>) -> Value {
    let total = resources.len();
    let start = start_index.unwrap_or(1).max(1) as usize;
    let count = count.unwrap_or(10_000).max(0) as usize;
    let items: Vec<Value> = resources.into_iter().skip(start - 1).take(count).collect();
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

/// Multi-valued attributes whose items are `{value, display, ...}` objects.
const MULTI_VALUED: &[&str] = &["members", "roles", "entitlements", "groups", "emails"];

fn canonical_key(resource: &Map<String, Value>, name: &str) -> String {
    resource
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| {
            // Canonical camelCase for attributes the resource does not have yet.
            match name.to_lowercase().as_str() {
                "displayname" => "displayName".into(),
                "externalid" => "externalId".into(),
                "applicationid" => "applicationId".into(),
                other => other.to_string(),
            }
        })
}

fn item_value(v: &Value) -> Option<&str> {
    v.get("value").and_then(Value::as_str)
}

fn add_items(target: &mut Value, items: &Value) {
    let new_items: Vec<Value> = match items {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    if !target.is_array() {
        *target = Value::Array(vec![]);
    }
    if let Value::Array(existing) = target {
        for item in new_items {
            let duplicate = item_value(&item)
                .is_some_and(|v| existing.iter().any(|e| item_value(e) == Some(v)));
            if !duplicate {
                existing.push(item);
            }
        }
    }
}

/// Parses `members[value eq "123"]` into ("members", "123").
fn parse_value_path(path: &str) -> Option<(String, String)> {
    let open = path.find('[')?;
    let inner = path[open + 1..].strip_suffix(']')?;
    let filter = parse_filter(inner).ok()?;
    let Filter::All(cs) = filter else { return None };
    let c = cs.first()?;
    if !c.attribute.eq_ignore_ascii_case("value") || c.op != "eq" {
        return None;
    }
    let value = match &c.value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some((path[..open].to_string(), value))
}

/// Applies SCIM PatchOp operations to a resource. Attributes in `read_only` cannot be
/// changed.
pub fn apply_patch(
    resource: &mut Value,
    operations: &[Value],
    read_only: &[&str],
) -> Result<(), String> {
    for operation in operations {
        let op = operation
            .get("op")
            .and_then(Value::as_str)
            .ok_or("operation without op")?
            .to_lowercase();
        let path = operation.get("path").and_then(Value::as_str);
        let value = operation.get("value").cloned().unwrap_or(Value::Null);
        if (op == "add" || op == "replace") && value.is_null() {
            return Err(format!("operation {op} needs a value"));
        }
        let obj = resource
            .as_object_mut()
            .ok_or("resource is not an object")?;
        match (op.as_str(), path) {
            ("add" | "replace", None) => {
                let Value::Object(fields) = value else {
                    return Err("operation without path needs an object value".into());
                };
                for (k, v) in fields {
                    check_writable(&k, read_only)?;
                    let key = canonical_key(obj, &k);
                    if op == "add" && MULTI_VALUED.iter().any(|m| m.eq_ignore_ascii_case(&k)) {
                        add_items(obj.entry(key).or_insert(Value::Null), &v);
                    } else {
                        obj.insert(key, v);
                    }
                }
            }
            (_, None) => return Err(format!("operation {op} needs a path")),
            (op, Some(path)) => {
                if let Some((attr, item)) = parse_value_path(path) {
                    if op != "remove" {
                        return Err(format!("unsupported {op} on filtered path {path}"));
                    }
                    check_writable(&attr, read_only)?;
                    let key = canonical_key(obj, &attr);
                    if let Some(Value::Array(items)) = obj.get_mut(&key) {
                        items.retain(|i| item_value(i) != Some(item.as_str()));
                    }
                    continue;
                }
                check_writable(path, read_only)?;
                let key = canonical_key(obj, path);
                let multi = MULTI_VALUED.iter().any(|m| m.eq_ignore_ascii_case(path));
                match (op, multi) {
                    ("add", true) => add_items(obj.entry(key).or_insert(Value::Null), &value),
                    ("add" | "replace", _) => {
                        obj.insert(key, value);
                    }
                    ("remove", true) if !value.is_null() => {
                        let drop: Vec<String> = match &value {
                            Value::Array(a) => a
                                .iter()
                                .filter_map(item_value)
                                .map(str::to_string)
                                .collect(),
                            v => item_value(v).map(str::to_string).into_iter().collect(),
                        };
                        if let Some(Value::Array(items)) = obj.get_mut(&key) {
                            items.retain(|i| {
                                item_value(i).is_none_or(|v| !drop.iter().any(|d| d == v))
                            });
                        }
                    }
                    ("remove", _) => {
                        obj.remove(&key);
                    }
                    (other, _) => return Err(format!("unsupported operation {other}")),
                }
            }
        }
    }
    Ok(())
}

fn check_writable(attr: &str, read_only: &[&str]) -> Result<(), String> {
    if read_only.iter().any(|r| r.eq_ignore_ascii_case(attr)) {
        Err(format!("attribute {attr} is read-only"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_matches_filters() {
        let g = json!({"displayName": "Data Engineers", "id": "12"});
        let f = parse_filter(r#"displayName eq "data engineers""#).unwrap();
        assert!(matches(&g, &f));
        assert!(matches(
            &g,
            &parse_filter(r#"displayName co "Eng""#).unwrap()
        ));
        assert!(matches(
            &g,
            &parse_filter(r#"displayName sw "Data" and id eq "12""#).unwrap()
        ));
        assert!(!matches(
            &g,
            &parse_filter(r#"displayName sw "Data" and id eq "13""#).unwrap()
        ));
        assert!(matches(
            &g,
            &parse_filter(r#"id eq "1" or id eq "12""#).unwrap()
        ));
        assert!(matches(&g, &parse_filter("id pr").unwrap()));
        assert!(parse_filter("displayName eq").is_err());
        assert!(parse_filter(r#"displayName xx "a""#).is_err());
        assert!(parse_filter(r#"a eq "1" and b eq "2" or c eq "3""#).is_err());
    }

    #[test]
    fn paging_past_the_end_is_an_empty_page() {
        let items: Vec<Value> = (0..5).map(|i| json!({"id": i.to_string()})).collect();
        let p = page(items.clone(), Some(4), Some(10));
        assert_eq!(p["totalResults"], 5);
        assert_eq!(p["Resources"].as_array().unwrap().len(), 2);
        let p = page(items, Some(6), Some(10));
        assert_eq!(p["Resources"], json!([]));
        assert_eq!(p["itemsPerPage"], 0);
        assert_eq!(p["totalResults"], 5);
    }

    #[test]
    fn patch_adds_and_removes_members_and_replaces_attributes() {
        let mut g = json!({"id": "1", "displayName": "a"});
        apply_patch(
            &mut g,
            &[
                json!({"op": "add", "path": "members", "value": [{"value": "10"}, {"value": "11"}]}),
                json!({"op": "add", "path": "members", "value": [{"value": "10"}]}),
                json!({"op": "replace", "path": "displayName", "value": "b"}),
            ],
            &["id"],
        )
        .unwrap();
        assert_eq!(g["members"].as_array().unwrap().len(), 2);
        assert_eq!(g["displayName"], "b");
        apply_patch(
            &mut g,
            &[json!({"op": "remove", "path": "members[value eq \"10\"]"})],
            &["id"],
        )
        .unwrap();
        assert_eq!(g["members"], json!([{"value": "11"}]));
        apply_patch(
            &mut g,
            &[json!({"op": "replace", "value": {"active": false}})],
            &["id"],
        )
        .unwrap();
        assert_eq!(g["active"], false);
        assert!(apply_patch(
            &mut g,
            &[json!({"op": "replace", "path": "id", "value": "2"})],
            &["id"]
        )
        .is_err());
    }

    proptest! {
        #[test]
        fn pages_cover_all_items_exactly_once(n in 0usize..60, size in 1i64..17) {
            let items: Vec<Value> = (0..n).map(|i| json!({"id": i})).collect();
            let mut seen = Vec::new();
            let mut start = 1i64;
            loop {
                let p = page(items.clone(), Some(start), Some(size));
                let got = p["Resources"].as_array().unwrap().clone();
                if got.is_empty() { break; }
                start += got.len() as i64;
                seen.extend(got);
            }
            prop_assert_eq!(seen, items);
        }
    }
}
