//! Reading a spec from JSON: type errors and unknown fields by path, then the
//! rules of [`PlatformSpec::validate`].

use super::PlatformSpec;
use lakeops_shared::validate::Problems;
use serde_json::Value;

/// Parse a spec from JSON, reporting every problem by path: a field of the
/// wrong type (the first one serde meets), every unknown field, then every
/// rule of [`PlatformSpec::validate`].
pub fn parse(input: &Value) -> Result<PlatformSpec, Problems> {
    let mut problems = Problems::new();
    if !input.is_object() {
        problems.add("spec", "must be a JSON object (or an s3:// URI of one)");
        return Err(problems);
    }
    let spec: PlatformSpec = match serde_path_to_error::deserialize(input.clone()) {
        Ok(spec) => spec,
        Err(error) => {
            let path = error.path().to_string();
            let path = if path == "." {
                "spec".to_string()
            } else {
                path
            };
            problems.add(
                path,
                lakeops_shared::validate::serde_message(&error.inner().to_string()),
            );
            // Unknown fields are still worth reporting alongside.
            return Err(problems);
        }
    };
    let known = serde_json::to_value(&spec).unwrap_or(Value::Null);
    unknown_fields(input, &known, "", &mut problems);
    let semantic = spec.validate();
    for (path, problem) in semantic.iter() {
        problems.add(path, problem);
    }
    problems.into_result().map(|()| spec)
}

/// Every key of `input` that the typed spec dropped is a field the user
/// misspelt or that does not exist. Free-form values (a policy definition)
/// round-trip whole, so they are never flagged.
fn unknown_fields(input: &Value, known: &Value, path: &str, problems: &mut Problems) {
    match (input, known) {
        (Value::Object(given), Value::Object(typed)) => {
            for (key, value) in given {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match typed.get(key) {
                    None => problems.add(child, "is not a known field"),
                    Some(typed_value) => unknown_fields(value, typed_value, &child, problems),
                }
            }
        }
        (Value::Array(given), Value::Array(typed)) => {
            for (i, (value, typed_value)) in given.iter().zip(typed).enumerate() {
                unknown_fields(value, typed_value, &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::spec::tests::{full, minimal, paths, problems_of};
    use serde_json::json;

    #[test]
    fn unknown_fields_are_reported_with_their_path() {
        let mut spec = minimal();
        spec["worksapce"] = json!({});
        spec["network"]["subnets"] = json!([]);
        spec["compute"]["cluster"]["num_workers"] = json!(3);
        let found = paths(&spec);
        assert_eq!(
            found,
            vec![
                "compute.cluster.num_workers",
                "network.subnets",
                "worksapce"
            ]
        );
    }

    #[test]
    fn free_form_policy_definitions_are_not_unknown_fields() {
        let spec = full();
        assert!(parse(&spec).is_ok());
    }

    #[test]
    fn type_errors_name_the_field() {
        let mut spec = minimal();
        spec["network"]["subnet_ids"] = json!("subnet-0a1b2c3d4e5f60718");
        let problems = problems_of(&spec);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "network.subnet_ids");
        assert!(
            problems[0].1.contains("expected a sequence"),
            "{problems:?}"
        );

        let mut spec = minimal();
        spec.as_object_mut().unwrap().remove("workspace");
        assert_eq!(paths(&spec), vec!["spec"]);
        assert!(problems_of(&spec)[0]
            .1
            .contains("missing field `workspace`"));

        assert_eq!(paths(&json!("s3://x")), vec!["spec"]);
    }
}
