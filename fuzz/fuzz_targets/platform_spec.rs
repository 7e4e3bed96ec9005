//! The platform spec parser (provision `spec::parse`).
//!
//! Input: JSON text, either the spec or a provision event holding it under
//! `spec` (as the samples in events/ do).
//!
//! Properties: an accepted spec re-serializes and re-parses to the same
//! value; a refusal lists at least one problem, each under a non-empty path
//! whose first component is a field of the spec (or `spec` for the whole),
//! or, for a misspelt field, under the path of the key the input has.
#![no_main]

use lakeops_fuzz::top_field;
use libfuzzer_sys::fuzz_target;
use provision::spec::parse;
use serde_json::Value;

const FIELDS: &[&str] = &[
    "spec",
    "environment",
    "account",
    "aws",
    "storage",
    "network",
    "encryption",
    "workspace",
    "log_delivery",
    "groups",
    "service_principal",
    "pat",
    "compute",
    "unity_catalog",
    "jobs",
    "repos",
    "init_script",
    "destroy",
];

fuzz_target!(|data: &[u8]| {
    let Ok(mut value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Some(spec) = value.get_mut("spec").filter(|s| s.is_object()) {
        value = spec.take();
    }
    let parsed = parse(&value);
    assert_eq!(parsed, parse(&value), "not deterministic");
    match parsed {
        Ok(spec) => {
            let again = serde_json::to_value(&spec).expect("serializes");
            assert_eq!(parse(&again).expect("re-validates"), spec);
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "an error without a problem");
            for (path, problem) in problems.iter() {
                let top = top_field(path);
                // A misspelt top-level key is reported under itself, dots and all.
                let misspelt = problem == "is not a known field" && value.get(path).is_some();
                assert!(
                    FIELDS.contains(&top) || misspelt,
                    "problem `{problem}` is under `{path}`, not a field of the spec"
                );
                assert!(!problem.trim().is_empty(), "an empty problem at `{path}`");
            }
        }
    }
});
