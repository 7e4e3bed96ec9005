//! The lake spec parser (lakeops-shared `spec::lake`).
//!
//! Input: the spec's JSON text.
//!
//! Properties: `from_json` accepts exactly what deserializes and validates;
//! an accepted spec re-serializes and re-parses to the same value, and its
//! buckets name their layers; every validation problem is under a path whose
//! first component is a field of the spec; a parse error says it is the lake
//! spec's.
#![no_main]

use lakeops_fuzz::assert_problems_name_fields;
use lakeops_shared::spec::lake::{LakeSpec, REQUIRED_LAYERS};
use libfuzzer_sys::fuzz_target;

const FIELDS: &[&str] = &[
    "name",
    "crawler_role_arn",
    "lake_formation",
    "layers",
    "athena",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = LakeSpec::from_json(text);
    match serde_json::from_str::<LakeSpec>(text) {
        Err(_) => {
            let error = parsed.expect_err("accepted what does not deserialize");
            assert!(
                error.message.starts_with("lake spec: "),
                "{}",
                error.message
            );
        }
        Ok(spec) => match spec.validate() {
            Err(problems) => {
                assert_problems_name_fields(&problems, FIELDS);
                let error = parsed.expect_err("accepted an invalid spec");
                assert_eq!(error.message, problems.to_string());
            }
            Ok(()) => {
                let accepted = parsed.expect("refused a valid spec");
                assert_eq!(accepted, spec);
                let again = serde_json::to_string(&accepted).expect("serializes");
                assert_eq!(LakeSpec::from_json(&again).expect("re-validates"), accepted);
                for layer in &accepted.layers {
                    assert_eq!(accepted.layer_of_bucket(&layer.bucket), Some(layer));
                    assert_eq!(accepted.layer(&layer.name), Some(layer));
                }
                for required in REQUIRED_LAYERS {
                    assert!(accepted.layer(required).is_some());
                }
            }
        },
    }
});
