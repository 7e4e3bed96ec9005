//! Unit tests of the batch flow against an in-memory S3 and Glue: call
//! counts, partial failures, duplicates, removals, crawls and alerts.

use crate::api::{
    ByteRange, CrawlStart, Created, IngestApi, PartitionError, PartitionSpec, RangeRead, Updated,
};
use crate::batch::{handle_batch, handle_batch_cached, IngestConfig, Outcome, Report};
use crate::cache::CatalogCache;
use crate::table::TableDefinition;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lakeops_shared::retry::RetryPolicy;
use lakeops_shared::Result;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
struct State {
    objects: BTreeMap<(String, String), Vec<u8>>,
    tables: BTreeMap<(String, String), TableDefinition>,
    partitions: BTreeMap<(String, String), BTreeMap<Vec<String>, String>>,
    /// Glue calls, by operation name.
    calls: Vec<String>,
    crawler_running: bool,
    alerts: Vec<String>,
    /// BatchCreatePartition answers ThrottlingException for every entry this many times.
    throttle_partitions: u32,
    /// BatchCreatePartition's next answer carries an error for values it was not sent.
    stray_partition_error: bool,
    /// The databases, when the test tracks them (`None`: every database exists).
    databases: Option<BTreeMap<String, String>>,
}

#[derive(Default)]
pub(crate) struct Fake {
    state: Mutex<State>,
}

impl Fake {
    /// Track databases: none exists until created.
    pub(crate) fn without_databases(&self) {
        self.state.lock().unwrap().databases = Some(BTreeMap::new());
    }

    pub(crate) fn databases(&self) -> BTreeMap<String, String> {
        self.state
            .lock()
            .unwrap()
            .databases
            .clone()
            .unwrap_or_default()
    }

    pub(crate) fn glue_calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    pub(crate) fn put(&self, bucket: &str, key: &str, data: &[u8]) {
        self.state
            .lock()
            .unwrap()
            .objects
            .insert((bucket.into(), key.into()), data.to_vec());
    }

    fn delete(&self, bucket: &str, key: &str) {
        self.state
            .lock()
            .unwrap()
            .objects
            .remove(&(bucket.to_string(), key.to_string()));
    }

    /// The Glue calls made since the last time this was asked.
    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap().calls)
    }

    /// Drop a table (and its partitions) behind the ingester's back.
    fn drop_table(&self, db: &str, name: &str) {
        let mut state = self.state.lock().unwrap();
        let id = (db.to_string(), name.to_string());
        state.tables.remove(&id);
        state.partitions.remove(&id);
    }

    /// Drop a partition behind the ingester's back.
    fn drop_partition(&self, db: &str, name: &str, values: &[&str]) {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        if let Some(p) = self
            .state
            .lock()
            .unwrap()
            .partitions
            .get_mut(&(db.to_string(), name.to_string()))
        {
            p.remove(&values);
        }
    }

    pub(crate) fn table(&self, db: &str, name: &str) -> Option<TableDefinition> {
        self.state
            .lock()
            .unwrap()
            .tables
            .get(&(db.into(), name.into()))
            .cloned()
    }

    fn partitions(&self, db: &str, name: &str) -> Vec<Vec<String>> {
        self.state
            .lock()
            .unwrap()
            .partitions
            .get(&(db.into(), name.into()))
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }
}

impl IngestApi for Fake {
    async fn read(&self, bucket: &str, key: &str, range: ByteRange) -> Result<Option<RangeRead>> {
        let state = self.state.lock().unwrap();
        let Some(data) = state.objects.get(&(bucket.to_string(), key.to_string())) else {
            return Ok(None);
        };
        let size = data.len();
        let bytes = match range {
            ByteRange::Prefix(n) => data[..size.min(n as usize)].to_vec(),
            ByteRange::Suffix(n) => data[size.saturating_sub(n as usize)..].to_vec(),
            ByteRange::Span { start, len } => {
                let start = (start as usize).min(size);
                data[start..(start + len as usize).min(size)].to_vec()
            }
        };
        Ok(Some(RangeRead {
            bytes,
            object_size: size as u64,
        }))
    }

    async fn prefix_has_data(&self, bucket: &str, prefix: &str) -> Result<bool> {
        let state = self.state.lock().unwrap();
        Ok(state
            .objects
            .keys()
            .any(|(b, k)| b == bucket && k.starts_with(prefix)))
    }

    async fn get_table(&self, database: &str, name: &str) -> Result<Option<TableDefinition>> {
        let mut state = self.state.lock().unwrap();
        state.calls.push("GetTable".into());
        Ok(state.tables.get(&(database.into(), name.into())).cloned())
    }

    async fn create_table(&self, table: &TableDefinition) -> Result<Created> {
        let mut state = self.state.lock().unwrap();
        state.calls.push("CreateTable".into());
        if state
            .databases
            .as_ref()
            .is_some_and(|d| !d.contains_key(&table.database))
        {
            return Ok(Created::NoDatabase);
        }
        let id = (table.database.clone(), table.name.clone());
        if state.tables.contains_key(&id) {
            return Ok(Created::AlreadyExists);
        }
        state.tables.insert(id, table.clone());
        Ok(Created::Created)
    }

    async fn create_database(&self, name: &str, location: &str, _description: &str) -> Result<()> {
        let mut state = self.state.lock().unwrap();
        state.calls.push("CreateDatabase".into());
        state
            .databases
            .get_or_insert_with(BTreeMap::new)
            .entry(name.to_string())
            .or_insert_with(|| location.to_string());
        Ok(())
    }

    async fn update_table(&self, table: &TableDefinition) -> Result<Updated> {
        let mut state = self.state.lock().unwrap();
        state.calls.push("UpdateTable".into());
        let id = (table.database.clone(), table.name.clone());
        let current = state.tables.get(&id).and_then(|t| t.version_id.clone());
        if current != table.version_id {
            return Ok(Updated::Conflict);
        }
        let version = current.and_then(|v| v.parse::<u32>().ok()).unwrap_or(0) + 1;
        let mut next = table.clone();
        next.version_id = Some(version.to_string());
        state.tables.insert(id, next);
        Ok(Updated::Updated)
    }

    async fn batch_get_partitions(
        &self,
        database: &str,
        table: &str,
        values: &[Vec<String>],
    ) -> Result<Vec<Vec<String>>> {
        let mut state = self.state.lock().unwrap();
        state.calls.push("BatchGetPartition".into());
        assert!(values.len() <= 1000);
        let existing = state.partitions.get(&(database.into(), table.into()));
        Ok(values
            .iter()
            .filter(|v| existing.is_some_and(|e| e.contains_key(*v)))
            .cloned()
            .collect())
    }

    async fn batch_create_partitions(
        &self,
        table: &TableDefinition,
        partitions: &[PartitionSpec],
    ) -> Result<Vec<PartitionError>> {
        let mut state = self.state.lock().unwrap();
        state.calls.push("BatchCreatePartition".into());
        assert!(partitions.len() <= 100, "at most 100 per call");
        if !state
            .tables
            .contains_key(&(table.database.clone(), table.name.clone()))
        {
            return Err(lakeops_shared::Error::terminal(format!(
                "glue:BatchCreatePartition: EntityNotFoundException: table {} not found",
                table.name
            )));
        }
        if std::mem::take(&mut state.stray_partition_error) {
            return Ok(vec![PartitionError {
                values: vec!["not-sent".into()],
                code: "InternalServiceException".into(),
                message: "something went wrong".into(),
            }]);
        }
        if state.throttle_partitions > 0 {
            state.throttle_partitions -= 1;
            return Ok(partitions
                .iter()
                .map(|p| PartitionError {
                    values: p.values.clone(),
                    code: "ThrottlingException".into(),
                    message: "Rate exceeded".into(),
                })
                .collect());
        }
        let entry = state
            .partitions
            .entry((table.database.clone(), table.name.clone()))
            .or_default();
        let mut errors = Vec::new();
        for p in partitions {
            if entry.contains_key(&p.values) {
                errors.push(PartitionError {
                    values: p.values.clone(),
                    code: "AlreadyExistsException".into(),
                    message: "exists".into(),
                });
            } else {
                entry.insert(p.values.clone(), p.location.clone());
            }
        }
        Ok(errors)
    }

    async fn batch_delete_partitions(
        &self,
        database: &str,
        table: &str,
        values: &[Vec<String>],
    ) -> Result<Vec<PartitionError>> {
        let mut state = self.state.lock().unwrap();
        state.calls.push("BatchDeletePartition".into());
        assert!(values.len() <= 25);
        let entry = state
            .partitions
            .entry((database.into(), table.into()))
            .or_default();
        Ok(values
            .iter()
            .filter(|v| entry.remove(*v).is_none())
            .map(|v| PartitionError {
                values: v.clone(),
                code: "EntityNotFoundException".into(),
                message: "no such partition".into(),
            })
            .collect())
    }

    async fn start_crawler(&self, _name: &str) -> Result<CrawlStart> {
        let mut state = self.state.lock().unwrap();
        state.calls.push("StartCrawler".into());
        if state.crawler_running {
            return Ok(CrawlStart::AlreadyRunning);
        }
        state.crawler_running = true;
        Ok(CrawlStart::Started)
    }

    async fn publish_alert(&self, _topic: &str, _subject: &str, message: &str) -> Result<()> {
        self.state.lock().unwrap().alerts.push(message.to_string());
        Ok(())
    }
}

pub(crate) fn config() -> IngestConfig {
    let mut config = IngestConfig::new(
        crate::test_support::spec(),
        Some("arn:aws:sns:us-east-1:1:alerts".into()),
    );
    config.retry = RetryPolicy::immediate(3);
    config
}

/// An S3 notification as S3 puts it on SQS: the key form-encoded.
pub(crate) fn notification(event: &str, bucket: &str, key: &str) -> String {
    let encoded: String =
        percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
            .replace("%2F", "/")
            .replace("%20", "+");
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventName": event,
        "s3": {"bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": encoded, "size": 1, "sequencer": "0A1B2C"}}
    }]})
    .to_string()
}

pub(crate) fn batch(messages: &[(&str, String)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (id, body) in messages {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.to_string());
        message.body = Some(body.clone());
        event.records.push(message);
    }
    event
}

pub(crate) async fn run(api: &Fake, messages: &[(&str, String)]) -> (SqsBatchResponse, Report) {
    handle_batch(api, &config(), batch(messages)).await
}

pub(crate) fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

pub(crate) fn created(key: &str) -> String {
    notification("ObjectCreated:Put", "lake-raw", key)
}

#[tokio::test]
async fn one_batch_makes_the_minimum_glue_calls() {
    let api = Fake::default();
    let csv = b"id,name\n1,a\n2,b\n";
    let mut messages = Vec::new();
    let ids: Vec<String> = (0..250).map(|i| format!("m{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let key = format!(
            "sales orders/dt=2024-01-{:02}/hour={}/part {i}.csv",
            i % 25 + 1,
            i % 6
        );
        api.put("lake-raw", &key, csv);
        messages.push((id.as_str(), created(&key)));
    }
    // Duplicate deliveries of the first ten.
    for (i, id) in ids.iter().take(10).enumerate() {
        let key = format!(
            "sales orders/dt=2024-01-{:02}/hour={}/part {i}.csv",
            i % 25 + 1,
            i % 6
        );
        messages.push((id.as_str(), created(&key)));
    }
    let (response, report) = run(&api, &messages).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        report.failed().collect::<Vec<_>>()
    );
    // 150 distinct partitions: 1 GetTable, 1 CreateTable, 2 BatchCreatePartition.
    assert_eq!(
        api.glue_calls(),
        vec![
            "GetTable",
            "CreateTable",
            "BatchCreatePartition",
            "BatchCreatePartition"
        ]
    );
    assert_eq!(report.partitions_created, 150);
    let table = api.table("lake_raw", "sales_orders").unwrap();
    assert_eq!(table.partition_keys, vec!["dt", "hour"]);
    assert_eq!(table.location, "s3://lake-raw/sales orders/");
    assert_eq!(api.partitions("lake_raw", "sales_orders").len(), 150);

    // The same batch again changes nothing and writes nothing.
    let (response, _) = run(&api, &messages).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(api.glue_calls()[4..], ["GetTable", "BatchGetPartition"]);
}

#[tokio::test]
async fn new_columns_make_one_new_version_and_drift_is_reported() {
    let api = Fake::default();
    api.put(
        "lake-raw",
        "events/a.jsonl",
        b"{\"id\": 1, \"name\": \"x\"}\n",
    );
    run(&api, &[("m1", created("events/a.jsonl"))]).await;
    api.put(
        "lake-raw",
        "events/b.jsonl",
        b"{\"id\": 2, \"extra\": true}\n",
    );
    api.put(
        "lake-raw",
        "events/c.jsonl",
        b"{\"id\": 2.5, \"more\": [1]}\n",
    );
    let (response, report) = run(
        &api,
        &[
            ("m2", created("events/b.jsonl")),
            ("m3", created("events/c.jsonl")),
        ],
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    let calls = api.glue_calls();
    assert_eq!(
        calls.iter().filter(|c| *c == "UpdateTable").count(),
        1,
        "{calls:?}"
    );
    let table = api.table("lake_raw", "events").unwrap();
    let names: Vec<_> = table.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["id", "name", "extra", "more"]);
    assert_eq!(
        table.columns[0].ty.to_string(),
        "bigint",
        "types are never changed"
    );
    assert_eq!(
        report.drift,
        vec!["lake_raw.events: column `id` is bigint in the table but double in the file"]
    );
    assert_eq!(report.columns_added, 2);
}

#[tokio::test]
async fn bad_objects_fail_alone() {
    let api = Fake::default();
    api.put("lake-raw", "t/dt=1/good.csv", b"a,b\n1,2\n");
    api.put("lake-raw", "t/dt=2/binary.csv", b"PK\x03\x04\x00\x00binary");
    api.put(
        "lake-raw",
        "p/broken.parquet",
        b"PAR1 not really a parquet file \xff\xff\xff\x7fPAR1",
    );
    api.put("lake-raw", "t/dt=3/not.gz.csv.gz", b"a,b\n1,2\n");
    let (response, report) = run(
        &api,
        &[
            ("good", created("t/dt=1/good.csv")),
            ("binary", created("t/dt=2/binary.csv")),
            ("parquet", created("p/broken.parquet")),
            ("gz", created("t/dt=3/not.gz.csv.gz")),
            ("dots", created("t/../x.csv")),
            ("junk", "not json".to_string()),
        ],
    )
    .await;
    let mut failed = failed_ids(&response);
    failed.sort();
    assert_eq!(failed, vec!["binary", "dots", "gz", "junk", "parquet"]);
    let reasons: Vec<String> = report
        .failed()
        .map(|(_, _, o)| match o {
            Outcome::Failed { reason, retryable } => {
                assert!(!retryable, "{reason}");
                reason.clone()
            }
            _ => unreachable!(),
        })
        .collect();
    assert!(reasons.iter().any(|r| r.contains("NUL")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("Parquet footer")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("not gzip")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("`..`")), "{reasons:?}");
    assert_eq!(api.partitions("lake_raw", "t"), vec![vec!["1".to_string()]]);
}

#[tokio::test]
async fn an_error_for_partition_values_not_sent_trusts_nothing_of_the_call() {
    let api = Fake::default();
    api.put("lake-raw", "t/dt=1/a.csv", b"a\n1\n");
    run(&api, &[("m0", created("t/dt=1/a.csv"))]).await;
    api.put("lake-raw", "t/dt=2/a.csv", b"a\n1\n");
    api.state.lock().unwrap().stray_partition_error = true;
    let (response, report) = run(&api, &[("m1", created("t/dt=2/a.csv"))]).await;
    assert_eq!(failed_ids(&response), vec!["m1"]);
    assert_eq!(report.partitions_created, 0);
    let reason = format!("{:?}", report.failed().next().unwrap().2);
    assert!(
        reason.contains("not sent") && reason.contains("retryable: true"),
        "{reason}"
    );
    // Redelivered, it lands.
    let (response, _) = run(&api, &[("m1", created("t/dt=2/a.csv"))]).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(api.partitions("lake_raw", "t").len(), 2);
}

#[tokio::test]
async fn throttled_partitions_fail_their_records_only() {
    let api = Fake::default();
    api.put("lake-raw", "t/dt=1/a.csv", b"a\n1\n");
    run(&api, &[("m0", created("t/dt=1/a.csv"))]).await;
    api.put("lake-raw", "t/dt=2/a.csv", b"a\n1\n");
    api.put("lake-raw", "u/b.csv", b"a\n1\n");
    api.state.lock().unwrap().throttle_partitions = 10;
    let (response, report) = run(
        &api,
        &[("m1", created("t/dt=2/a.csv")), ("m2", created("u/b.csv"))],
    )
    .await;
    assert_eq!(failed_ids(&response), vec!["m1"]);
    assert!(report.failed().all(|(_, _, o)| matches!(
        o,
        Outcome::Failed {
            retryable: true,
            ..
        }
    )));
    // Three rounds were tried before giving up.
    assert_eq!(
        api.glue_calls()
            .iter()
            .filter(|c| *c == "BatchCreatePartition")
            .count(),
        1 + 3
    );
    // Redelivered once Glue recovers, it lands.
    api.state.lock().unwrap().throttle_partitions = 0;
    let (response, _) = run(&api, &[("m1", created("t/dt=2/a.csv"))]).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(api.partitions("lake_raw", "t").len(), 2);
}

#[tokio::test]
async fn removals_drop_only_empty_partitions_whatever_the_order() {
    let api = Fake::default();
    for key in ["t/dt=1/a.csv", "t/dt=1/b.csv", "t/dt=2/a.csv"] {
        api.put("lake-raw", key, b"a\n1\n");
    }
    let puts: Vec<(&str, String)> = vec![
        ("p1", created("t/dt=1/a.csv")),
        ("p2", created("t/dt=1/b.csv")),
        ("p3", created("t/dt=2/a.csv")),
    ];
    run(&api, &puts).await;
    api.delete("lake-raw", "t/dt=1/a.csv");
    api.delete("lake-raw", "t/dt=2/a.csv");
    let removed = |key: &str| notification("ObjectRemoved:Delete", "lake-raw", key);
    // The removals arrive, then a late duplicate of a creation.
    let (response, report) = run(
        &api,
        &[
            ("r1", removed("t/dt=1/a.csv")),
            ("r2", removed("t/dt=2/a.csv")),
            ("p1", created("t/dt=1/a.csv")),
        ],
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(report.partitions_deleted, 1);
    assert_eq!(api.partitions("lake_raw", "t"), vec![vec!["1".to_string()]]);
    // Removing an already-dropped partition again is fine.
    let (response, _) = run(&api, &[("r2", removed("t/dt=2/a.csv"))]).await;
    assert!(response.batch_item_failures.is_empty());
}

#[tokio::test]
async fn unknown_formats_start_the_crawler_once() {
    let api = Fake::default();
    api.put("lake-raw", "x/a.avro", b"Obj\x01avro");
    api.put("lake-raw", "x/b.avro", b"Obj\x01avro");
    let (response, report) = run(
        &api,
        &[("a", created("x/a.avro")), ("b", created("x/b.avro"))],
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(report.crawlers_started, 1);
    assert_eq!(api.glue_calls(), vec!["StartCrawler"]);
    // A crawl under way is not an error.
    let (response, report) = run(&api, &[("a", created("x/a.avro"))]).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(report.crawlers_started, 0);
}

#[tokio::test]
async fn emergency_drops_raise_an_alert_with_rows() {
    let api = Fake::default();
    api.put("lake-emergency", "incident/dump.csv", b"a,b\n1,2\n3,4\n");
    let (response, report) = run(
        &api,
        &[(
            "e",
            notification("ObjectCreated:Put", "lake-emergency", "incident/dump.csv"),
        )],
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(report.alerts_sent, 1);
    let alert: serde_json::Value =
        serde_json::from_str(&api.state.lock().unwrap().alerts[0]).unwrap();
    assert_eq!(alert["bucket"], "lake-emergency");
    assert_eq!(alert["key"], "incident/dump.csv");
    assert_eq!(alert["size"], 12);
    assert_eq!(alert["rows"], 2);
}

#[tokio::test]
async fn gone_objects_and_markers_are_ignored() {
    let api = Fake::default();
    let (response, report) = run(
        &api,
        &[
            ("gone", created("t/a.csv")),
            ("marker", created("t/_SUCCESS")),
        ],
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert!(report
        .objects
        .iter()
        .all(|(_, _, o)| matches!(o, Outcome::Ignored(_))));
    assert!(api.glue_calls().is_empty());
}

/// The sample events in `events/` parse and place as documented.
#[test]
fn sample_events_parse_and_place() {
    let plan: serde_json::Value =
        serde_json::from_str(include_str!("../../../events/catalog-setup-plan.json")).unwrap();
    let spec = lakeops_shared::spec::lake::LakeSpec::from_value(plan["spec"].clone()).unwrap();
    let samples = [
        (
            include_str!("../../../events/catalog-ingest-csv.json"),
            "sales_orders",
            crate::batch::EventKind::Created,
        ),
        (
            include_str!("../../../events/catalog-ingest-csv-gzip.json"),
            "sales_orders",
            crate::batch::EventKind::Created,
        ),
        (
            include_str!("../../../events/catalog-ingest-tsv.json"),
            "lookup",
            crate::batch::EventKind::Created,
        ),
        (
            include_str!("../../../events/catalog-ingest-jsonl.json"),
            "events",
            crate::batch::EventKind::Created,
        ),
        (
            include_str!("../../../events/catalog-ingest-parquet.json"),
            "metrics",
            crate::batch::EventKind::Created,
        ),
        (
            include_str!("../../../events/catalog-ingest-removal.json"),
            "sales_orders",
            crate::batch::EventKind::Removed,
        ),
        (
            include_str!("../../../events/catalog-ingest-emergency.json"),
            "incident_2026_11_21",
            crate::batch::EventKind::Created,
        ),
    ];
    for (text, table, kind) in samples {
        let event: SqsEvent = serde_json::from_str(text).unwrap();
        let events = crate::batch::parse_message(event.records[0].body.as_deref()).unwrap();
        assert_eq!(events[0].kind, kind);
        match crate::layout::place(&spec, &events[0].bucket, &events[0].key).unwrap() {
            crate::layout::Place::Object(p) => assert_eq!(p.table, table),
            other => panic!("{other:?}"),
        }
    }
    let batch: SqsEvent =
        serde_json::from_str(include_str!("../../../events/catalog-ingest-batch.json")).unwrap();
    assert_eq!(batch.records.len(), 4);
}

#[tokio::test]
async fn a_concurrent_column_change_is_not_overwritten() {
    let api = Fake::default();
    api.put("lake-raw", "t/a.jsonl", b"{\"a\": 1}\n");
    run(&api, &[("m1", created("t/a.jsonl"))]).await;
    // Another writer adds a column after our read: simulated by bumping the
    // version under the stored table, as Glue would.
    {
        let mut state = api.state.lock().unwrap();
        let table = state
            .tables
            .get_mut(&("lake_raw".to_string(), "t".to_string()))
            .unwrap();
        table.columns.push(crate::format::Column::new(
            "theirs",
            crate::glue_type::GlueType::String,
        ));
        table.version_id = Some("7".into());
    }
    api.put("lake-raw", "t/b.jsonl", b"{\"a\": 1, \"mine\": true}\n");
    let (response, _) = run(&api, &[("m2", created("t/b.jsonl"))]).await;
    assert!(response.batch_item_failures.is_empty());
    let names: Vec<_> = api
        .table("lake_raw", "t")
        .unwrap()
        .columns
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, vec!["a", "theirs", "mine"]);
}

#[tokio::test]
async fn briefly_throttled_partitions_are_sent_again() {
    let api = Fake::default();
    api.put("lake-raw", "t/dt=1/a.csv", b"a\n1\n");
    api.put("lake-raw", "t/dt=2/a.csv", b"a\n1\n");
    api.state.lock().unwrap().throttle_partitions = 1;
    let (response, report) = run(
        &api,
        &[
            ("m1", created("t/dt=1/a.csv")),
            ("m2", created("t/dt=2/a.csv")),
        ],
    )
    .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(report.partitions_created, 2);
    assert_eq!(api.partitions("lake_raw", "t").len(), 2);
}

// --- The warm-container cache ---------------------------------------------

async fn run_warm(
    api: &Fake,
    cache: &mut CatalogCache,
    messages: &[(&str, String)],
) -> (SqsBatchResponse, Report) {
    handle_batch_cached(api, &config(), cache, batch(messages)).await
}

fn ok(response: &SqsBatchResponse, report: &Report) {
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        report.failed().collect::<Vec<_>>()
    );
}

const TTL: std::time::Duration = std::time::Duration::from_secs(300);

#[tokio::test]
async fn a_warm_container_reads_a_known_table_only_for_a_new_column() {
    let api = Fake::default();
    let mut cache = CatalogCache::new(TTL);
    for key in [
        "t/dt=1/a.csv",
        "t/dt=1/b.csv",
        "t/dt=2/a.csv",
        "t/dt=3/a.csv",
    ] {
        api.put("lake-raw", key, b"a,b\n1,2\n");
    }
    let (response, report) = run_warm(
        &api,
        &mut cache,
        &[
            ("m1", created("t/dt=1/a.csv")),
            ("m2", created("t/dt=2/a.csv")),
        ],
    )
    .await;
    ok(&response, &report);
    assert_eq!(
        api.take_calls(),
        ["GetTable", "CreateTable", "BatchCreatePartition"]
    );
    // Known table, same columns: no GetTable; the partition is registered
    // again (it exists: AlreadyExists, success), because another instance
    // may have dropped it since.
    let (response, report) = run_warm(&api, &mut cache, &[("m3", created("t/dt=1/b.csv"))]).await;
    ok(&response, &report);
    assert_eq!(api.take_calls(), ["BatchCreatePartition"]);
    assert_eq!(report.objects[0].2, Outcome::Cataloged);
    assert_eq!(report.partitions_created, 0);
    // A new partition: only its creation.
    let (response, report) = run_warm(&api, &mut cache, &[("m4", created("t/dt=3/a.csv"))]).await;
    ok(&response, &report);
    assert_eq!(api.take_calls(), ["BatchCreatePartition"]);
    assert_eq!(report.partitions_created, 1);
    // A new column: the table is read again before it is written.
    api.put("lake-raw", "t/dt=3/b.csv", b"a,b,c\n1,2,3\n");
    let (response, report) = run_warm(&api, &mut cache, &[("m5", created("t/dt=3/b.csv"))]).await;
    ok(&response, &report);
    assert_eq!(
        api.take_calls(),
        ["GetTable", "UpdateTable", "BatchCreatePartition"]
    );
    assert_eq!(report.columns_added, 1);
    // And the new definition is what the cache now knows: no table call.
    api.put("lake-raw", "t/dt=3/c.csv", b"a,b,c\n4,5,6\n");
    let (response, _) = run_warm(&api, &mut cache, &[("m6", created("t/dt=3/c.csv"))]).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(api.take_calls(), ["BatchCreatePartition"]);
}

#[tokio::test]
async fn a_column_another_writer_added_needs_no_update() {
    let api = Fake::default();
    let mut cache = CatalogCache::new(TTL);
    api.put("lake-raw", "t/a.jsonl", b"{\"a\": 1}\n");
    run_warm(&api, &mut cache, &[("m1", created("t/a.jsonl"))]).await;
    api.take_calls();
    // Another container added `b` meanwhile; our cache has only `a`.
    {
        let mut state = api.state.lock().unwrap();
        let table = state
            .tables
            .get_mut(&("lake_raw".to_string(), "t".to_string()))
            .unwrap();
        table.columns.push(crate::format::Column::new(
            "b",
            crate::glue_type::GlueType::BigInt,
        ));
        table.version_id = Some("2".into());
    }
    api.put("lake-raw", "t/b.jsonl", b"{\"a\": 1, \"b\": 2}\n");
    let (response, report) = run_warm(&api, &mut cache, &[("m2", created("t/b.jsonl"))]).await;
    ok(&response, &report);
    assert_eq!(api.take_calls(), ["GetTable"]);
    assert_eq!(report.columns_added, 0);
}

#[tokio::test]
async fn a_cold_container_reports_existing_partitions_as_not_created() {
    let api = Fake::default();
    api.put("lake-raw", "t/dt=1/a.csv", b"a\n1\n");
    let (response, report) = run(&api, &[("m1", created("t/dt=1/a.csv"))]).await;
    ok(&response, &report);
    assert_eq!(report.partitions_created, 1);
    api.take_calls();
    // Redelivered to a cold container: the creation answers AlreadyExists,
    // which is success but creates nothing.
    let (response, report) = run(&api, &[("m1", created("t/dt=1/a.csv"))]).await;
    ok(&response, &report);
    assert_eq!(api.take_calls(), ["GetTable", "BatchCreatePartition"]);
    assert_eq!(report.partitions_created, 0);
    assert_eq!(report.objects[0].2, Outcome::Cataloged);
}

#[tokio::test]
async fn many_unknown_partitions_of_an_existing_table_are_probed_first() {
    let api = Fake::default();
    let keys: Vec<String> = (0..150).map(|i| format!("t/dt={i}/a.csv")).collect();
    for key in &keys {
        api.put("lake-raw", key, b"a\n1\n");
    }
    let ids: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
    let messages: Vec<(&str, String)> = ids
        .iter()
        .zip(&keys)
        .map(|(id, key)| (id.as_str(), created(key)))
        .collect();
    // The first 140 exist already (another container made them).
    let (response, report) = run(&api, &messages[..140]).await;
    ok(&response, &report);
    api.take_calls();
    let (response, report) = run(&api, &messages).await;
    ok(&response, &report);
    // 1 probe + 1 creation of the 10 missing, instead of 2 creations of 150.
    assert_eq!(
        api.take_calls(),
        ["GetTable", "BatchGetPartition", "BatchCreatePartition"]
    );
    assert_eq!(report.partitions_created, 10);
    assert_eq!(api.partitions("lake_raw", "t").len(), 150);
}

#[tokio::test]
async fn what_failed_is_not_remembered() {
    let api = Fake::default();
    let mut cache = CatalogCache::new(TTL);
    api.put("lake-raw", "t/dt=1/a.csv", b"a\n1\n");
    api.put("lake-raw", "t/dt=2/a.csv", b"a\n1\n");
    run_warm(&api, &mut cache, &[("m1", created("t/dt=1/a.csv"))]).await;
    api.take_calls();
    api.state.lock().unwrap().throttle_partitions = 10;
    let (response, _) = run_warm(&api, &mut cache, &[("m2", created("t/dt=2/a.csv"))]).await;
    assert_eq!(failed_ids(&response), vec!["m2"]);
    assert_eq!(api.take_calls(), ["BatchCreatePartition"; 3]);
    // Redelivered: the partition is still unknown, so it is created now.
    api.state.lock().unwrap().throttle_partitions = 0;
    let (response, report) = run_warm(&api, &mut cache, &[("m2", created("t/dt=2/a.csv"))]).await;
    ok(&response, &report);
    assert_eq!(api.take_calls(), ["BatchCreatePartition"]);
    assert_eq!(api.partitions("lake_raw", "t").len(), 2);
}

#[tokio::test]
async fn a_table_dropped_behind_our_back_is_recreated_on_redelivery() {
    let api = Fake::default();
    let mut cache = CatalogCache::new(TTL);
    api.put("lake-raw", "t/dt=1/a.csv", b"a\n1\n");
    api.put("lake-raw", "t/dt=2/a.csv", b"a\n1\n");
    run_warm(&api, &mut cache, &[("m1", created("t/dt=1/a.csv"))]).await;
    api.drop_table("lake_raw", "t");
    api.take_calls();
    // The cache still believes in the table: the creation of the new
    // partition fails on the missing table, and the table is forgotten.
    let (response, _) = run_warm(&api, &mut cache, &[("m2", created("t/dt=2/a.csv"))]).await;
    assert_eq!(failed_ids(&response), vec!["m2"]);
    assert_eq!(api.take_calls(), ["BatchCreatePartition"]);
    // The redelivery starts from Glue and puts it all back.
    let (response, report) = run_warm(&api, &mut cache, &[("m2", created("t/dt=2/a.csv"))]).await;
    ok(&response, &report);
    assert_eq!(
        api.take_calls(),
        ["GetTable", "CreateTable", "BatchCreatePartition"]
    );
    assert!(api.table("lake_raw", "t").is_some());
}

#[tokio::test]
async fn our_own_removals_are_never_stale() {
    let api = Fake::default();
    let mut cache = CatalogCache::new(TTL);
    api.put("lake-raw", "t/dt=1/a.csv", b"a\n1\n");
    run_warm(&api, &mut cache, &[("m1", created("t/dt=1/a.csv"))]).await;
    api.delete("lake-raw", "t/dt=1/a.csv");
    let removed = notification("ObjectRemoved:Delete", "lake-raw", "t/dt=1/a.csv");
    let (response, report) = run_warm(&api, &mut cache, &[("r1", removed)]).await;
    ok(&response, &report);
    assert_eq!(report.partitions_deleted, 1);
    api.take_calls();
    // Data comes back to the dropped partition: it is registered again.
    api.put("lake-raw", "t/dt=1/b.csv", b"a\n1\n");
    let (response, report) = run_warm(&api, &mut cache, &[("m2", created("t/dt=1/b.csv"))]).await;
    ok(&response, &report);
    assert_eq!(api.take_calls(), ["BatchCreatePartition"]);
    assert_eq!(api.partitions("lake_raw", "t"), vec![vec!["1".to_string()]]);
}

#[tokio::test]
async fn a_partition_another_instance_dropped_is_registered_again_at_once() {
    // Instance A knows the table; instance B drops the partition (its prefix
    // was empty for a moment: a delete-then-rewrite); the rewrite's object
    // reaches A, whose next batch must register the partition again.
    let api = Fake::default();
    let mut cache = CatalogCache::new(TTL);
    api.put("lake-raw", "t/dt=1/a.csv", b"a\n1\n");
    run_warm(&api, &mut cache, &[("m1", created("t/dt=1/a.csv"))]).await;
    api.drop_partition("lake_raw", "t", &["1"]);
    api.put("lake-raw", "t/dt=1/b.csv", b"a\n1\n");
    api.take_calls();
    let (response, report) = run_warm(&api, &mut cache, &[("m2", created("t/dt=1/b.csv"))]).await;
    ok(&response, &report);
    assert_eq!(api.take_calls(), ["BatchCreatePartition"]);
    assert_eq!(report.partitions_created, 1);
    assert_eq!(api.partitions("lake_raw", "t").len(), 1);
}

#[tokio::test]
async fn a_rejection_is_decided_on_the_current_table() {
    let api = Fake::default();
    let mut cache = CatalogCache::new(TTL);
    api.put("lake-raw", "t/a.csv", b"a\n1\n");
    run_warm(&api, &mut cache, &[("m1", created("t/a.csv"))]).await;
    // The table is dropped and the folder now holds JSON lines, cataloged
    // by another instance.
    api.drop_table("lake_raw", "t");
    api.delete("lake-raw", "t/a.csv");
    api.put("lake-raw", "t/b.jsonl", b"{\"a\": 1}\n");
    run(&api, &[("m2", created("t/b.jsonl"))]).await;
    api.take_calls();
    // The cached CSV table would reject this object; the current one takes it.
    api.put("lake-raw", "t/c.jsonl", b"{\"a\": 2}\n");
    let (response, report) = run_warm(&api, &mut cache, &[("m3", created("t/c.jsonl"))]).await;
    ok(&response, &report);
    assert_eq!(api.take_calls(), ["GetTable"]);
}

#[tokio::test]
async fn two_instances_each_keep_their_own_cache_and_stay_correct() {
    let api = Fake::default();
    let (mut a, mut b) = (CatalogCache::new(TTL), CatalogCache::new(TTL));
    let keys: Vec<String> = (0..6).map(|i| format!("t/dt={}/f{i}.csv", i % 3)).collect();
    for key in &keys {
        api.put("lake-raw", key, b"a\n1\n");
    }
    let ids: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    let messages: Vec<(&str, String)> = ids
        .iter()
        .zip(&keys)
        .map(|(id, key)| (id.as_str(), created(key)))
        .collect();
    // Interleaved batches on two instances.
    for (i, chunk) in messages.chunks(2).enumerate() {
        let cache = if i % 2 == 0 { &mut a } else { &mut b };
        let (response, report) = run_warm(&api, cache, chunk).await;
        ok(&response, &report);
    }
    assert_eq!(api.partitions("lake_raw", "t").len(), 3);
    let calls = api.take_calls();
    // Each instance learns the table once; one creates it.
    assert_eq!(calls.iter().filter(|c| *c == "CreateTable").count(), 1);
    assert_eq!(calls.iter().filter(|c| *c == "GetTable").count(), 2);
}

#[test]
fn partition_answers_are_sorted_by_meaning() {
    use crate::api::PartitionError;
    let error = |v: &str, code: &str| PartitionError {
        values: vec![v.to_string()],
        code: code.into(),
        message: String::new(),
    };
    let errors = [
        error("1", "AlreadyExistsException"),
        error("2", "ThrottlingException"),
        error("3", "InvalidInputException"),
    ];
    let answer = crate::batch::sort_partition_errors(&errors, true);
    assert_eq!(answer.existing.len(), 1);
    assert!(answer.resend.contains(&vec!["2".to_string()]));
    assert!(answer.failed.contains(&vec!["3".to_string()]));
    assert_eq!(answer.created(5), 2);
    // On the last round, a throttled entry fails.
    let answer = crate::batch::sort_partition_errors(&errors, false);
    assert_eq!(answer.failed.len(), 2);
    assert_eq!(answer.created(3), 0);
}
