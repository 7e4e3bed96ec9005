//! The DR spec parser (dr-sync `spec::parse`).
//!
//! Input: the spec's JSON text.
//!
//! Properties: parsing is total; every refusal lists problems under fields of the
//! spec (or `spec` itself, or a misspelt key under its own name); an accepted spec re-serializes and re-parses to the same
//! value; its reverse (failback) is valid too and reversing twice gives back the same
//! mappings; no two source catalogs of an accepted spec map to one target.
#![no_main]

use dr_sync::spec::parse;
use lakeops_fuzz::assert_problems_name_fields;
use libfuzzer_sys::fuzz_target;

const FIELDS: &[&str] = &[
    "spec", "name", "primary", "secondary", "warehouse", "sharing", "catalogs", "locations",
    "storage_credentials", "principals", "sync_principal", "objects", "external_tables",
    "propagate_deletes", "concurrency", "rpo_seconds", "active_workspace_parameter", "failover_jobs",
];

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match parse(&value) {
        Err(problems) => {
            // A misspelt key is reported under itself ("unknown field"), as serde names it.
            let known: Vec<(String, String)> =
                problems.iter().map(|(p, m)| (p.to_string(), m.to_string())).collect();
            if !known.iter().any(|(_, m)| m.starts_with("unknown field")) {
                assert_problems_name_fields(&problems, FIELDS);
            }
            for (path, message) in known {
                assert!(!message.trim().is_empty(), "an empty problem at `{path}`");
            }
        }
        Ok(spec) => {
            let again = serde_json::to_value(&spec).expect("serializes");
            assert_eq!(parse(&again).expect("re-parses"), spec);
            let mut targets: Vec<String> = spec.catalogs.iter().map(|c| c.target_name().to_lowercase()).collect();
            targets.sort();
            let before = targets.len();
            targets.dedup();
            assert_eq!(before, targets.len(), "two sources map to one target");
            let reversed = spec.reversed();
            let problems = reversed.validate();
            assert!(problems.is_empty(), "the failback spec is invalid: {problems}");
            let twice = reversed.reversed();
            assert_eq!(twice.primary, spec.primary);
            assert_eq!(twice.locations, spec.locations);
            for (a, b) in twice.catalogs.iter().zip(&spec.catalogs) {
                assert!(a.source.eq_ignore_ascii_case(&b.source));
                assert!(a.target_name().eq_ignore_ascii_case(b.target_name()));
            }
        }
    }
});
