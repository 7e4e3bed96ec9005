//! The real batch code on the documented AWS samples in `events/` (see
//! `events/SOURCES.md`): S3 notifications inside the SQS event Lambda gets.

use crate::batch::{handle_batch, only_test_events, IngestConfig, Outcome};
use crate::batch_tests::{failed_ids, Fake};
use aws_lambda_events::sqs::SqsEvent;
use lakeops_shared::retry::RetryPolicy;
use lakeops_shared::spec::lake::LakeSpec;

const PUT_AND_DELETE: &str = include_str!("../../../events/catalog-ingest-s3-put-and-delete.json");
const TEST_EVENT: &str = include_str!("../../../events/catalog-ingest-s3-test-event.json");
const RAW: &str = "lakeops-dev-raw-123456789012";

fn config() -> IngestConfig {
    let spec = LakeSpec::from_json(include_str!("../../../events/lake-spec.json")).unwrap();
    let mut config = IngestConfig::new(spec, Some("arn:aws:sns:us-west-2:1:alerts".into()));
    config.retry = RetryPolicy::immediate(3);
    config
}

#[tokio::test]
async fn the_test_event_s3_sends_is_acknowledged() {
    let event: SqsEvent = serde_json::from_str(TEST_EVENT).unwrap();
    assert!(only_test_events(&event));
    let api = Fake::default();
    let (response, report) = handle_batch(&api, &config(), event).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(report.objects.is_empty(), "{:?}", report.objects);
}

#[tokio::test]
async fn documented_put_and_delete_records_are_catalogued() {
    let event: SqsEvent = serde_json::from_str(PUT_AND_DELETE).unwrap();
    assert!(!only_test_events(&event));
    let api = Fake::default();
    // The key S3 encoded as `sales+orders/dt%3D2026-11-21/part+0.csv`.
    api.put(
        RAW,
        "sales orders/dt=2026-11-21/part 0.csv",
        b"id,amount\n1,2.5\n",
    );
    let (response, report) = handle_batch(&api, &config(), event).await;
    assert!(failed_ids(&response).is_empty(), "{:?}", report.objects);
    let outcomes: Vec<(&str, &Outcome)> = report
        .objects
        .iter()
        .map(|(_, object, outcome)| (object.as_str(), outcome))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (
                "s3://lakeops-dev-raw-123456789012/sales orders/dt=2026-11-21/part 0.csv",
                &Outcome::Cataloged
            ),
            (
                "s3://lakeops-dev-raw-123456789012/sales orders/dt=2026-11-20/part 0.csv",
                &Outcome::Removed
            ),
        ]
    );
    let table = api.table("lakeops_dev_raw", "sales_orders").unwrap();
    assert_eq!(table.location, format!("s3://{RAW}/sales orders/"));
    assert_eq!(table.partition_keys, vec!["dt"]);
}

#[tokio::test]
async fn a_file_dropped_before_lake_setup_creates_its_layer_database() {
    let event: SqsEvent = serde_json::from_str(PUT_AND_DELETE).unwrap();
    let api = Fake::default();
    api.without_databases();
    api.put(
        RAW,
        "sales orders/dt=2026-11-21/part 0.csv",
        b"id,amount\n1,2.5\n",
    );
    let (response, report) = handle_batch(&api, &config(), event).await;
    assert!(failed_ids(&response).is_empty(), "{:?}", report.objects);
    assert_eq!(report.databases_created, 1);
    assert_eq!(
        api.databases().get("lakeops_dev_raw").map(String::as_str),
        Some("s3://lakeops-dev-raw-123456789012/")
    );
    assert!(api.table("lakeops_dev_raw", "sales_orders").is_some());
    let calls = api.glue_calls();
    assert_eq!(
        calls[..4],
        ["GetTable", "CreateTable", "CreateDatabase", "CreateTable"]
    );
}
