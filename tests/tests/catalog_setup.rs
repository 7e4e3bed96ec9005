//! catalog-setup against moto: plan, apply, verify every resource in Glue,
//! Lake Formation and Athena, and converge again without changes.
//!
//! moto 5.2.5 has no Glue UpdateCrawler and no Athena UpdateWorkGroup, so
//! drift is exercised here on a database (UpdateDatabase exists); crawler and
//! workgroup updates are covered by the unit tests of the handler flow.

use catalog_setup::aws::AwsCatalog;
use catalog_setup::handler::{handle, Mode};
use catalog_setup::plan::{Action, ResourceKind};
use lakeops_shared::retry::RetryPolicy;
use lakeops_tests::Moto;
use serde_json::json;

const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:lakeops-dev-raw-crawler-events";
const DLQ: &str = "arn:aws:sqs:us-east-1:123456789012:lakeops-dev-raw-crawler-dlq";

fn spec() -> serde_json::Value {
    let layer = |name: &str| {
        json!({
            "name": name,
            "bucket": format!("lakeops-dev-{name}"),
            "database": format!("lakeops_dev_{name}"),
        })
    };
    let mut raw = layer("raw");
    raw["crawler"] = json!({"event_queue_arn": QUEUE, "dlq_arn": DLQ, "exclusions": ["**.tmp"]});
    let mut curated = layer("curated");
    curated["formats"] = json!(["parquet"]);
    curated["crawler"] = json!({"enabled": false});
    json!({
        "name": "lakeops-dev",
        "crawler_role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-crawler",
        "layers": [raw, layer("schematized"), layer("filtered"), layer("emergency"), curated],
        "athena": {"workgroups": [
            {"profile": "engineer", "name": "lakeops-dev-engineer", "result_location": "s3://lakeops-dev-athena/engineer/"},
            {"profile": "analyst", "name": "lakeops-dev-analyst", "result_location": "s3://lakeops-dev-athena/analyst/",
             "bytes_scanned_cutoff_per_query": 1_000_000_000_i64, "publish_cloudwatch_metrics": false},
            {"profile": "architect", "name": "lakeops-dev-architect", "result_location": "s3://lakeops-dev-athena/architect/",
             "enforce_configuration": false}
        ]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_applies_and_converges_against_moto() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let catalog = AwsCatalog::new(&config);
    let retry = RetryPolicy::default();

    // Plan on an empty account: everything to create, nothing written.
    let planned = handle(
        &catalog,
        json!({"mode": "plan", "spec": spec()}),
        retry,
        "dev",
    )
    .await
    .unwrap();
    assert_eq!(planned.mode, Mode::Plan);
    // 5 databases, 5 locations, 4 crawlers (curated has none), 3 workgroups.
    assert_eq!(planned.summary.create, 17, "{:?}", planned.changes);
    let glue = aws_sdk_glue::Client::new(&config);
    assert!(glue
        .get_database()
        .name("lakeops_dev_raw")
        .send()
        .await
        .is_err());

    // Apply creates everything.
    let applied = handle(
        &catalog,
        json!({"mode": "apply", "spec": spec()}),
        retry,
        "dev",
    )
    .await
    .unwrap();
    assert_eq!(applied.summary.create, 17, "{:?}", applied.changes);

    let database = glue
        .get_database()
        .name("lakeops_dev_raw")
        .send()
        .await
        .unwrap();
    let database = database.database().unwrap();
    assert_eq!(database.location_uri(), Some("s3://lakeops-dev-raw/"));

    let crawler = glue
        .get_crawler()
        .name("lakeops-dev-raw")
        .send()
        .await
        .unwrap();
    let crawler = crawler.crawler().unwrap();
    assert_eq!(crawler.database_name(), Some("lakeops_dev_raw"));
    assert_eq!(
        crawler.role(),
        Some("arn:aws:iam::123456789012:role/lakeops-dev-crawler")
    );
    let target = &crawler.targets().unwrap().s3_targets()[0];
    assert_eq!(target.path(), Some("s3://lakeops-dev-raw/"));
    assert_eq!(target.event_queue_arn(), Some(QUEUE));
    assert_eq!(target.dlq_event_queue_arn(), Some(DLQ));
    for excluded in [
        "**.csv",
        "**.parquet",
        "**.jsonl.gz",
        "**.tmp",
        "**/_SUCCESS",
    ] {
        assert!(
            target.exclusions().iter().any(|e| e == excluded),
            "{excluded} not excluded: {:?}",
            target.exclusions()
        );
    }
    assert_eq!(
        crawler
            .recrawl_policy()
            .unwrap()
            .recrawl_behavior()
            .unwrap()
            .as_str(),
        "CRAWL_EVENT_MODE"
    );
    let schema_policy = crawler.schema_change_policy().unwrap();
    assert_eq!(schema_policy.update_behavior().unwrap().as_str(), "LOG");
    let configuration: serde_json::Value =
        serde_json::from_str(crawler.configuration().unwrap()).unwrap();
    assert_eq!(
        configuration["Grouping"]["TableGroupingPolicy"],
        "CombineCompatibleSchemas"
    );
    let filtered = glue
        .get_crawler()
        .name("lakeops-dev-filtered")
        .send()
        .await
        .unwrap();
    assert_eq!(
        filtered
            .crawler()
            .unwrap()
            .recrawl_policy()
            .unwrap()
            .recrawl_behavior()
            .unwrap()
            .as_str(),
        "CRAWL_NEW_FOLDERS_ONLY"
    );
    assert!(
        glue.get_crawler()
            .name("lakeops-dev-curated")
            .send()
            .await
            .is_err(),
        "curated has no crawler"
    );

    let lakeformation = aws_sdk_lakeformation::Client::new(&config);
    let registered = lakeformation.list_resources().send().await.unwrap();
    let mut arns: Vec<_> = registered
        .resource_info_list()
        .iter()
        .filter_map(|r| r.resource_arn())
        .collect();
    arns.sort();
    assert_eq!(
        arns,
        vec![
            "arn:aws:s3:::lakeops-dev-curated",
            "arn:aws:s3:::lakeops-dev-emergency",
            "arn:aws:s3:::lakeops-dev-filtered",
            "arn:aws:s3:::lakeops-dev-raw",
            "arn:aws:s3:::lakeops-dev-schematized",
        ]
    );

    let athena = aws_sdk_athena::Client::new(&config);
    let analyst = athena
        .get_work_group()
        .work_group("lakeops-dev-analyst")
        .send()
        .await
        .unwrap();
    let analyst = analyst.work_group().unwrap().configuration().unwrap();
    assert_eq!(
        analyst.result_configuration().unwrap().output_location(),
        Some("s3://lakeops-dev-athena/analyst/")
    );
    assert_eq!(
        analyst.bytes_scanned_cutoff_per_query(),
        Some(1_000_000_000)
    );
    assert_eq!(analyst.enforce_work_group_configuration(), Some(true));
    let architect = athena
        .get_work_group()
        .work_group("lakeops-dev-architect")
        .send()
        .await
        .unwrap();
    assert_eq!(
        architect
            .work_group()
            .unwrap()
            .configuration()
            .unwrap()
            .enforce_work_group_configuration(),
        Some(false)
    );

    // Idempotent: apply again changes nothing.
    let again = handle(
        &catalog,
        json!({"mode": "apply", "spec": spec()}),
        retry,
        "dev",
    )
    .await
    .unwrap();
    assert_eq!(again.summary.unchanged, 17, "{:?}", again.changes);
    assert_eq!(again.summary.create + again.summary.update, 0);

    // Drift on a database is planned, then repaired.
    glue.update_database()
        .name("lakeops_dev_filtered")
        .database_input(
            aws_sdk_glue::types::DatabaseInput::builder()
                .name("lakeops_dev_filtered")
                .description("edited by hand")
                .location_uri("s3://somewhere-else/")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let drift = handle(&catalog, json!({"spec": spec()}), retry, "dev")
        .await
        .unwrap();
    let updates: Vec<_> = drift
        .changes
        .iter()
        .filter(|c| c.action == Action::Update)
        .collect();
    assert_eq!(updates.len(), 1, "{:?}", drift.changes);
    assert_eq!(updates[0].resource, ResourceKind::GlueDatabase);
    assert_eq!(updates[0].differences, vec!["description", "location_uri"]);
    handle(
        &catalog,
        json!({"mode": "apply", "spec": spec()}),
        retry,
        "dev",
    )
    .await
    .unwrap();
    let repaired = glue
        .get_database()
        .name("lakeops_dev_filtered")
        .send()
        .await
        .unwrap();
    assert_eq!(
        repaired.database().unwrap().location_uri(),
        Some("s3://lakeops-dev-filtered/")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_spec_from_s3_and_rejects_a_bad_one() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let catalog = AwsCatalog::new(&config);
    let s3 = lakeops_shared::aws::s3(&config);
    s3.create_bucket()
        .bucket("lakeops-specs")
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("lakeops-specs")
        .key("lake/spec.json")
        .body(spec().to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    let applied = handle(
        &catalog,
        json!({"mode": "apply", "spec_uri": "s3://lakeops-specs/lake/spec.json"}),
        RetryPolicy::default(),
        "dev",
    )
    .await
    .unwrap();
    assert_eq!(applied.summary.create, 17);

    let mut bad = spec();
    bad["layers"][1]["bucket"] = json!("lakeops-dev-raw");
    s3.put_object()
        .bucket("lakeops-specs")
        .key("lake/bad.json")
        .body(bad.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    let error = handle(
        &catalog,
        json!({"mode": "apply", "spec_uri": "s3://lakeops-specs/lake/bad.json"}),
        RetryPolicy::default(),
        "dev",
    )
    .await
    .unwrap_err();
    assert_eq!(error.error_name(), "Lakeops.InvalidInput");
    assert!(
        error.message.contains("layers[1].bucket"),
        "{}",
        error.message
    );

    let missing = handle(
        &catalog,
        json!({"spec_uri": "s3://lakeops-specs/nope.json"}),
        RetryPolicy::default(),
        "dev",
    )
    .await
    .unwrap_err();
    assert!(
        missing.message.contains("s3://lakeops-specs/nope.json"),
        "{}",
        missing.message
    );
}
