//! Hostile objects in a batch: each fails alone, with a reason naming the
//! object and the limit, and the rest of the batch is catalogued.

use crate::batch::{handle_batch, Outcome};
use crate::batch_tests::{batch, config, created, failed_ids, Fake};
use std::io::Write;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// One JSON object with `n` distinct fields under column `a`.
fn wide_json(n: usize) -> Vec<u8> {
    let fields: Vec<String> = (0..n).map(|i| format!("\"f{i}\":1")).collect();
    format!("{{\"a\":{{{}}}}}\n", fields.join(",")).into_bytes()
}

/// Nested `depth` objects deep: serde_json's own limit (128) refuses it.
fn deep_json(depth: usize) -> Vec<u8> {
    format!("{{{}1{}}}\n", "\"a\":{".repeat(depth), "}".repeat(depth)).into_bytes()
}

fn reason_of<'a>(report: &'a crate::batch::Report, message: &str) -> &'a str {
    report
        .objects
        .iter()
        .find_map(|(id, _, outcome)| match outcome {
            Outcome::Failed { reason, retryable } if id == message => {
                assert!(!retryable, "a limit is final: {reason}");
                Some(reason.as_str())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{message} did not fail: {:?}", report.objects))
}

#[tokio::test]
async fn hostile_files_fail_alone_and_the_rest_is_catalogued() {
    let api = Fake::default();
    // 15 000 fields: 150 KB of JSON, under 64 KiB gzipped.
    let wide = gzip(&wide_json(15_000));
    assert!(wide.len() < 64 * 1024, "{}", wide.len());
    api.put("lake-raw", "wide/bomb.json.gz", &wide);
    api.put("lake-raw", "deep/bomb.json.gz", &gzip(&deep_json(200)));
    api.put("lake-raw", "t/dt=1/good.csv", b"a,b\n1,2\n");
    api.put("lake-raw", "j/ok.jsonl", b"{\"x\": {\"y\": 1}}\n");
    let (response, report) = handle_batch(
        &api,
        &config(),
        batch(&[
            ("wide", created("wide/bomb.json.gz")),
            ("good", created("t/dt=1/good.csv")),
            ("deep", created("deep/bomb.json.gz")),
            ("ok", created("j/ok.jsonl")),
        ]),
    )
    .await;
    let mut failed = failed_ids(&response);
    failed.sort();
    assert_eq!(failed, vec!["deep", "wide"]);
    let wide = reason_of(&report, "wide");
    assert!(
        wide.contains("s3://lake-raw/wide/bomb.json.gz")
            && wide.contains("more than 10000 nested fields"),
        "{wide}"
    );
    let deep = reason_of(&report, "deep");
    assert!(deep.contains("s3://lake-raw/deep/bomb.json.gz"), "{deep}");
    assert!(api.table("lake_raw", "t").is_some());
    assert_eq!(
        api.table("lake_raw", "j").unwrap().columns[0]
            .ty
            .to_string(),
        "struct<y:bigint>"
    );
    assert!(api.table("lake_raw", "wide").is_none());
}

#[tokio::test]
async fn an_object_over_its_work_budget_fails_alone() {
    let api = Fake::default();
    // Within every shape limit, but typing it costs more than the budget.
    let line = format!("{{\"a\":[{}]}}\n", vec!["1"; 900].join(","));
    api.put("lake-raw", "busy/a.jsonl", line.repeat(20).as_bytes());
    api.put("lake-raw", "t/b.csv", b"a,b\n1,2\n");
    let mut config = config();
    config.work_budget = 10_000;
    let (response, report) = handle_batch(
        &api,
        &config,
        batch(&[
            ("busy", created("busy/a.jsonl")),
            ("fine", created("t/b.csv")),
        ]),
    )
    .await;
    assert_eq!(failed_ids(&response), vec!["busy"]);
    let reason = reason_of(&report, "busy");
    assert!(
        reason.contains("s3://lake-raw/busy/a.jsonl") && reason.contains("work budget of 10000"),
        "{reason}"
    );
    assert!(api.table("lake_raw", "t").is_some());
}
