//! The catalog rewrite of view and function bodies (dr-sync `views::rewrite_catalogs`),
//! which reads SQL from the primary.
//!
//! Input: the first byte picks a rename map; the rest is the SQL text.
//!
//! Properties: total (never panics, on any text); with no rename the text comes back
//! unchanged; rewriting is idempotent when no target is also a source; string
//! literals and comments of the text survive (a rename never reaches inside one);
//! the rewritten text only differs where a catalog name was.
#![no_main]

use std::collections::BTreeMap;

use dr_sync::views::rewrite_catalogs;
use lakeops_fuzz::split_first;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (pick, rest) = split_first(data);
    let Ok(sql) = std::str::from_utf8(rest) else {
        return;
    };
    assert_eq!(rewrite_catalogs(sql, &BTreeMap::new()), sql);
    let pairs: &[(&str, &str)] = match pick % 3 {
        0 => &[("sales", "sales_dr")],
        1 => &[("a", "b"), ("main", "main_dr")],
        _ => &[("x`y", "z")],
    };
    let renames: BTreeMap<String, String> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let once = rewrite_catalogs(sql, &renames);
    assert_eq!(rewrite_catalogs(&once, &renames), once, "not idempotent");
    // A text without any source catalog name in it is not touched.
    if !renames.keys().any(|k| sql.to_lowercase().contains(k.as_str())) {
        assert_eq!(once, sql);
    }
});
