//! Schema inference for JSON lines, from a sample of the first bytes of a
//! file. Pure.
//!
//! Each line's type is merged into the sample's type in place: a merge costs
//! the size of the line's type, whatever the sample gathered before, and
//! struct fields are found by name in a map. So the work is linear in the
//! sample, and it is counted against the object's [`Work`] budget anyway.

use crate::format::{Column, Compression, InferredSchema};
use crate::glue_type::{GlueType, MAX_DEPTH};
use crate::limits::{self, Work, MAX_NESTED_FIELDS};
use crate::names::{self, only_case_differs, printable, Reason};
use crate::text::{MAX_COLUMNS, MAX_SAMPLE_ROWS};
use lakeops_shared::spec::lake::DataFormat;
use std::collections::HashMap;

/// A JSON type while the rows of a sample are merged.
#[derive(Debug, Clone, PartialEq)]
enum Sampled {
    /// No value seen: a `null`, or the item of an empty array. It must not
    /// widen what other rows say (`[{"a": 1}]` then `[]` is
    /// `array<struct<a:bigint>>`); what is still unseen after the sample is text.
    Unseen,
    Scalar(GlueType),
    Array(Box<Sampled>),
    Struct(Fields),
}

/// Struct fields in first-seen order, with an index by name.
#[derive(Debug, Clone, Default, PartialEq)]
struct Fields {
    list: Vec<(String, Sampled)>,
    index: HashMap<String, usize>,
}

impl Fields {
    fn get_mut(&mut self, name: &str) -> Option<&mut Sampled> {
        let at = *self.index.get(name)?;
        Some(&mut self.list[at].1)
    }

    /// Add a field; false when the name is already there.
    fn insert(&mut self, name: String, ty: Sampled) -> bool {
        if self.index.contains_key(&name) {
            return false;
        }
        self.index.insert(name.clone(), self.list.len());
        self.list.push((name, ty));
        true
    }
}

/// The nodes of a type (what it adds to a schema when it is new there).
fn size(ty: &Sampled, work: &mut Work) -> Result<usize, Reason> {
    work.spend(1)?;
    Ok(match ty {
        Sampled::Unseen => 0,
        Sampled::Scalar(_) => 1,
        Sampled::Array(item) => 1 + size(item, work)?,
        Sampled::Struct(fields) => {
            let mut n = 1;
            for (_, field) in &fields.list {
                n += size(field, work)?;
            }
            n
        }
    })
}

/// Merge `new` into `acc`; the nodes this added to `acc`. Unseen parts take
/// the other side's type; scalars unify; arrays merge their items; structs
/// merge field by field, new fields appended; anything else is text.
fn merge(acc: &mut Sampled, new: Sampled, work: &mut Work) -> Result<usize, Reason> {
    work.spend(1)?;
    Ok(match (acc, new) {
        (_, Sampled::Unseen) => 0,
        (acc @ Sampled::Unseen, new) => {
            let added = size(&new, work)?;
            *acc = new;
            added
        }
        (Sampled::Scalar(a), Sampled::Scalar(b)) => {
            *a = GlueType::unify(a, &b);
            0
        }
        (Sampled::Array(a), Sampled::Array(b)) => merge(a, *b, work)?,
        (Sampled::Struct(a), Sampled::Struct(b)) => {
            let mut added = 0;
            for (name, ty) in b.list {
                match a.get_mut(&name) {
                    Some(existing) => added += merge(existing, ty, work)?,
                    None => {
                        added += size(&ty, work)?;
                        a.insert(name, ty);
                    }
                }
            }
            added
        }
        (acc, _) => {
            *acc = Sampled::Scalar(GlueType::String);
            0
        }
    })
}

/// What stayed unseen through the whole sample is text.
fn settle(ty: Sampled) -> GlueType {
    match ty {
        Sampled::Unseen => GlueType::String,
        Sampled::Scalar(ty) => ty,
        Sampled::Array(item) => GlueType::Array(Box::new(settle(*item))),
        Sampled::Struct(fields) => GlueType::Struct(
            fields
                .list
                .into_iter()
                .map(|(name, ty)| (name, settle(ty)))
                .collect(),
        ),
    }
}

/// The type of a JSON value (`Unseen` for null), and its size in nodes.
/// Values nested deeper than `MAX_DEPTH` are typed as text.
fn json_type(
    value: &serde_json::Value,
    depth: usize,
    work: &mut Work,
) -> Result<(Sampled, usize), Reason> {
    use serde_json::Value;
    work.spend(1)?;
    if depth > MAX_DEPTH {
        return Ok((Sampled::Scalar(GlueType::String), 1));
    }
    let scalar =
        |ty: GlueType| -> Result<(Sampled, usize), Reason> { Ok((Sampled::Scalar(ty), 1)) };
    match value {
        Value::Null => Ok((Sampled::Unseen, 0)),
        Value::Bool(_) => scalar(GlueType::Boolean),
        Value::Number(n) if n.is_i64() => scalar(GlueType::BigInt),
        Value::Number(_) => scalar(GlueType::Double),
        Value::String(_) => scalar(GlueType::String),
        Value::Array(items) => {
            let mut item_type = Sampled::Unseen;
            let mut n = 1;
            for item in items.iter().take(MAX_SAMPLE_ROWS) {
                n += merge(&mut item_type, json_type(item, depth + 1, work)?.0, work)?;
                if n > MAX_NESTED_FIELDS {
                    return Err(limits::too_many_nested_fields("a JSON value"));
                }
            }
            Ok((Sampled::Array(Box::new(item_type)), n))
        }
        Value::Object(map) => {
            if map.is_empty() {
                // Hive has no empty struct; keep the value as text.
                return scalar(GlueType::String);
            }
            let mut fields = Fields::default();
            let mut n = 1;
            for (key, value) in map {
                let name = names::normalize(key).map_err(|e| format!("nested field: {e}"))?;
                if !only_case_differs(key, &name) {
                    return Err(format!(
                        "nested field `{}` is not a valid Athena name and nested JSON fields cannot be renamed",
                        printable(key)
                    ));
                }
                let (ty, size) = json_type(value, depth + 1, work)?;
                n += size.max(1);
                if n > MAX_NESTED_FIELDS {
                    return Err(limits::too_many_nested_fields("a JSON object"));
                }
                if !fields.insert(name.clone(), ty) {
                    return Err(format!("nested fields collide on `{name}`"));
                }
            }
            Ok((Sampled::Struct(fields), n))
        }
    }
}

/// Infer the schema of JSON lines: one object per line; columns are the union
/// of the keys (sorted within a line; keys first seen in later lines
/// appended), nested fields likewise. Work is counted against the default
/// budget; see [`infer_json_lines_within`].
pub fn infer_json_lines(
    text: &str,
    compression: Compression,
    complete: bool,
) -> Result<InferredSchema, Reason> {
    infer_json_lines_within(text, compression, complete, &mut Work::default())
}

/// [`infer_json_lines`], counting its work against `work`.
pub fn infer_json_lines_within(
    text: &str,
    compression: Compression,
    complete: bool,
    work: &mut Work,
) -> Result<InferredSchema, Reason> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    if !complete && !text.ends_with('\n') {
        lines.pop();
    }
    let lines: Vec<&str> = lines
        .into_iter()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return Err("no complete JSON line in the first bytes of the file".into());
    }
    let mut keys: Vec<String> = Vec::new();
    let mut slots: HashMap<String, usize> = HashMap::new();
    let mut types: Vec<Sampled> = Vec::new();
    let mut nodes = 0;
    for (i, line) in lines.iter().take(MAX_SAMPLE_ROWS).enumerate() {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {} is not JSON: {e}", i + 1))?;
        let serde_json::Value::Object(map) = value else {
            return Err(format!("line {} is not a JSON object", i + 1));
        };
        for (key, value) in &map {
            let (ty, _) = json_type(value, 1, work).map_err(|e| format!("line {}: {e}", i + 1))?;
            let slot = match slots.get(key) {
                Some(&at) => at,
                None => {
                    if keys.len() >= MAX_COLUMNS {
                        return Err(format!("more than {MAX_COLUMNS} distinct keys"));
                    }
                    slots.insert(key.clone(), keys.len());
                    keys.push(key.clone());
                    types.push(Sampled::Unseen);
                    keys.len() - 1
                }
            };
            nodes += merge(&mut types[slot], ty, work)?;
            // Columns themselves are one node each; the rest is nested.
            if nodes > MAX_NESTED_FIELDS + keys.len() {
                return Err(limits::too_many_nested_fields("the sample"));
            }
        }
    }
    // `{}` on every sampled line would make a table without columns, which Glue
    // stores and Athena cannot read (found by the `text_infer` fuzz target).
    if keys.is_empty() {
        return Err("no sampled JSON line has a key: a table needs at least one column".into());
    }
    let names = names::column_names(&keys)?;
    let json_mapping = names
        .iter()
        .zip(&keys)
        .filter(|(name, key)| !only_case_differs(key, name))
        .map(|(name, key)| (name.clone(), key.clone()))
        .collect();
    let columns: Vec<Column> = names
        .into_iter()
        .zip(types)
        .map(|(name, ty)| Column::new(name, settle(ty)))
        .collect();
    limits::check_columns(&columns, work)?;
    Ok(InferredSchema {
        format: DataFormat::Jsonl,
        compression,
        columns,
        quoted: false,
        json_mapping,
        row_count: (complete && lines.len() <= MAX_SAMPLE_ROWS).then_some(lines.len() as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tests::{cols, pairs};
    use proptest::prelude::*;

    #[test]
    fn infers_json_lines_with_nesting() {
        let text = concat!(
            r#"{"id": 1, "User Name": "ann", "tags": ["a"], "geo": {"lat": 1.5, "Lon": 2}, "n": null}"#,
            "\n",
            r#"{"id": 2.5, "tags": [], "geo": {"lat": 1, "alt": 3}, "extra": true}"#,
            "\n"
        );
        let schema = infer_json_lines(text, Compression::None, true).unwrap();
        assert_eq!(
            cols(&schema),
            // Keys in the order serde_json gives them (sorted), new keys of
            // later lines appended.
            pairs(&[
                ("user_name", "string"),
                ("geo", "struct<lon:bigint,lat:double,alt:bigint>"),
                ("id", "double"),
                ("n", "string"),
                ("tags", "array<string>"),
                ("extra", "boolean"),
            ])
        );
        assert_eq!(
            schema.json_mapping,
            vec![("user_name".to_string(), "User Name".to_string())]
        );
        assert_eq!(schema.row_count, Some(2));
    }

    #[test]
    fn nested_fields_keep_their_first_seen_order() {
        let text = "{\"g\": {\"b\": 1}}\n{\"g\": {\"a\": \"x\", \"b\": 2.5}}\n";
        let schema = infer_json_lines(text, Compression::None, true).unwrap();
        assert_eq!(cols(&schema), pairs(&[("g", "struct<b:double,a:string>")]));
    }

    #[test]
    fn empty_arrays_and_nulls_do_not_widen_nested_types() {
        let text = concat!(
            r#"{"items": [{"sku": "a", "qty": 1}], "geo": {"lat": 1.5}, "ids": [1]}"#,
            "\n",
            r#"{"items": [], "geo": {"lat": null}, "ids": []}"#,
            "\n",
            r#"{"items": [{"sku": "b", "qty": null}], "geo": null, "ids": [[]]}"#,
            "\n",
            r#"{"items": [], "geo": {"lat": null}, "ids": [], "only": [], "none": {"x": null}}"#,
            "\n"
        );
        let schema = infer_json_lines(text, Compression::None, true).unwrap();
        assert_eq!(
            cols(&schema),
            pairs(&[
                ("geo", "struct<lat:double>"),
                ("ids", "array<string>"),
                ("items", "array<struct<qty:bigint,sku:string>>"),
                ("none", "struct<x:string>"),
                ("only", "array<string>"),
            ])
        );
    }

    #[test]
    fn rejects_bad_json_lines() {
        let err = |t: &str| infer_json_lines(t, Compression::None, true).unwrap_err();
        assert!(err("[1,2]\n").contains("not a JSON object"));
        assert!(err("{\"a\":1}\n{oops}\n").contains("line 2 is not JSON"));
        assert!(err("{\"a\":{\"b c\":1}}\n").contains("cannot be renamed"));
        assert!(err("{\"a\":{\"b\":1,\"B\":2}}\n").contains("collide on `b`"));
        assert!(err("{\"a\":1,\"A\":2}\n").contains("both become `a`"));
        // A partial last line is not an error.
        let schema = infer_json_lines("{\"a\":1}\n{\"a\":", Compression::None, false).unwrap();
        assert_eq!(cols(&schema), pairs(&[("a", "bigint")]));
    }

    #[test]
    fn deep_json_is_bounded() {
        let deep = format!("{{\"a\":{}1{}}}\n", "[".repeat(100), "]".repeat(100));
        // serde_json refuses the nesting, or we cap it: either way no crash.
        let _ = infer_json_lines(&deep, Compression::None, true);
        let nested = format!("{{\"a\":{}1{}}}\n", "[".repeat(40), "]".repeat(40));
        let schema = infer_json_lines(&nested, Compression::None, true).unwrap();
        assert!(schema.columns[0].ty.to_string().contains("string"));
    }

    /// One object with `n` fields under column `a`.
    fn wide_line(n: usize) -> String {
        let fields: Vec<String> = (0..n).map(|i| format!("\"f{i}\":1")).collect();
        format!("{{\"a\":{{{}}}}}\n", fields.join(","))
    }

    /// The work of a sample whose schema is `n` nested fields wide.
    fn work_of(n: usize) -> u64 {
        let mut work = Work::default();
        infer_json_lines_within(&wide_line(n).repeat(50), Compression::None, true, &mut work)
            .unwrap();
        work.spent()
    }

    #[test]
    fn the_work_grows_linearly_with_nested_fields() {
        // Checking each name against the fields seen before was quadratic:
        // four times the fields was sixteen times the work.
        let (small, large) = (work_of(1000), work_of(4000));
        assert!(large <= 4 * small + 1000, "{small} then {large}");
    }

    #[test]
    fn very_many_nested_fields_are_refused_early() {
        let hostile = wide_line(50_000);
        let mut work = Work::default();
        let error =
            infer_json_lines_within(&hostile, Compression::None, true, &mut work).unwrap_err();
        assert!(error.contains("more than 10000 nested fields"), "{error}");
        // Refused at the cap, not after typing all 50 000 fields.
        assert!(
            work.spent() <= 2 * MAX_NESTED_FIELDS as u64 + 10,
            "{}",
            work.spent()
        );
        // Many keys spread over many lines add up the same way.
        let spread: String = (0..100)
            .map(|line| {
                let fields: Vec<String> = (0..200).map(|i| format!("\"f{line}_{i}\":1")).collect();
                format!("{{\"a\":{{{}}}}}\n", fields.join(","))
            })
            .collect();
        let error = infer_json_lines(&spread, Compression::None, true).unwrap_err();
        assert!(error.contains("more than 10000 nested fields"), "{error}");
    }

    #[test]
    fn deeply_nested_objects_stay_within_the_depth_cap() {
        let depth = 100;
        let deep = format!(
            "{{{}\"x\":1{}}}\n",
            "\"a\":{".repeat(depth),
            "}".repeat(depth)
        );
        let mut work = Work::default();
        // serde_json stops at 128 levels; below that, past MAX_DEPTH is text.
        let schema = infer_json_lines_within(&deep, Compression::None, true, &mut work).unwrap();
        let ty = schema.columns[0].ty.to_string();
        assert_eq!(ty.matches("struct<").count(), MAX_DEPTH, "{ty}");
        assert!(work.spent() < 1000, "{}", work.spent());
    }

    #[test]
    fn a_sample_over_the_work_budget_is_refused() {
        let line = format!("{{\"a\":[{}]}}\n", vec!["1"; 900].join(","));
        let text = line.repeat(20);
        let mut work = Work::new(10_000);
        let error = infer_json_lines_within(&text, Compression::None, true, &mut work).unwrap_err();
        assert!(error.contains("work budget of 10000 units"), "{error}");
        assert!(infer_json_lines(&text, Compression::None, true).is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}", complete in any::<bool>()) {
            let _ = infer_json_lines(&text, Compression::None, complete);
        }
    }
}
