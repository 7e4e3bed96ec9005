//! The grants policy parser (lake-grants `policy`), YAML and JSON.
//!
//! Input: the policy text (JSON when it starts with `{`, YAML otherwise).
//!
//! Properties: parsing and validation are deterministic; YAML and JSON mean
//! the same (the text read as a generic value and given to
//! `policy_from_value` yields the same document whenever both parse; JSON
//! text exactly so); every validation problem is under a path whose first
//! component is a field of the policy; a valid policy's grants each carry
//! the path they come from, at least one permission, and grantable ones
//! only among them.
#![no_main]

use lake_grants::policy::{parse_policy, policy_from_value, validate};
use lakeops_fuzz::assert_problems_name_fields;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const FIELDS: &[&str] = &[
    "version",
    "admins",
    "read_only_admins",
    "lake_formation_only",
    "managed_principals",
    "data_locations",
    "lf_tags",
    "tag_assignments",
    "grants",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_policy(text);
    assert_eq!(parsed, parse_policy(text), "not deterministic");
    let json = text.trim_start().starts_with('{');
    let generic: Option<Value> = if json {
        serde_json::from_str(text).ok()
    } else {
        serde_norway::from_str(text).ok()
    };
    if let Some(value) = generic {
        let from_value = policy_from_value(value);
        match (&parsed, &from_value) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "the text and its value differ"),
            // A key given twice is refused in text ("duplicate field"), but a JSON value
            // cannot carry one (the parser kept the last): only the text can be judged.
            _ if json && !parsed.as_ref().is_err_and(|e| e.contains("duplicate field")) => {
                assert_eq!(parsed.is_ok(), from_value.is_ok(), "JSON text vs value")
            }
            _ => {}
        }
    }
    let Ok(doc) = parsed else {
        return;
    };
    let validated = validate(&doc);
    assert_eq!(validated, validate(&doc), "not deterministic");
    match validated {
        Ok(policy) => {
            for (i, grant) in policy.grants.iter().enumerate() {
                let from =
                    grant.path.starts_with("grants[") || grant.path.starts_with("data_locations[");
                assert!(from, "grant {i} comes from `{}`", grant.path);
                assert!(
                    !grant.permissions.is_empty(),
                    "{} has no permission",
                    grant.path
                );
                assert!(
                    grant.grantable.is_subset(&grant.permissions),
                    "{}",
                    grant.path
                );
            }
        }
        Err(problems) => assert_problems_name_fields(&problems, FIELDS),
    }
});
