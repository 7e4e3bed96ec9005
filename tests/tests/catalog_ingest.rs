//! catalog-ingest against moto: real objects in S3 (CSV, gzip CSV, TSV, JSON
//! lines, Parquet written here, Hive partitions, keys with spaces), SQS
//! events built as S3 delivers them through SQS, the handler called
//! in-process, and the tables, columns and partitions checked in Glue.

use aws_lambda_events::sqs::SqsEvent;
use catalog_ingest::aws::AwsIngest;
use catalog_ingest::{handle_batch, IngestConfig, Outcome};
use lakeops_shared::retry::RetryPolicy;
use lakeops_shared::spec::lake::LakeSpec;
use lakeops_tests::{gzip, parquet_file, Moto};
use serde_json::json;

const LAYERS: [&str; 5] = ["raw", "schematized", "filtered", "emergency", "curated"];

fn spec() -> serde_json::Value {
    let layer = |name: &str| json!({"name": name, "bucket": format!("lake-{name}"), "database": format!("lake_{name}")});
    json!({
        "name": "lake",
        "crawler_role_arn": "arn:aws:iam::123456789012:role/lake-crawler",
        "lake_formation": {"register_locations": false},
        "layers": LAYERS.map(layer),
        "athena": {"workgroups": [
            {"profile": "engineer", "name": "lake-engineer", "result_location": "s3://lake-athena/engineer/"},
            {"profile": "analyst", "name": "lake-analyst", "result_location": "s3://lake-athena/analyst/"},
            {"profile": "architect", "name": "lake-architect", "result_location": "s3://lake-athena/architect/"}
        ]}
    })
}

/// The S3 event key: form-style URL encoding, as S3 writes it.
fn event_key(key: &str) -> String {
    let mut out = String::new();
    for byte in key.bytes() {
        match byte {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'*' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// One SQS message carrying one S3 notification, as Lambda receives it.
fn sqs_record(
    message_id: &str,
    event_name: &str,
    bucket: &str,
    key: &str,
    size: usize,
) -> serde_json::Value {
    let notification = json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2024-01-01T00:00:00.000Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "10.0.0.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "lakeops-catalog-ingest",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": event_key(key), "size": size, "eTag": "0123456789abcdef", "sequencer": "0055AED6DCD90281E5"}
        }
    }]});
    json!({
        "messageId": message_id,
        "receiptHandle": format!("receipt-{message_id}"),
        "body": notification.to_string(),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1704067200000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1704067200001"
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:lakeops-catalog-ingest",
        "awsRegion": "us-east-1"
    })
}

fn sqs_event(records: Vec<serde_json::Value>) -> SqsEvent {
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

struct Lake {
    _moto: Moto,
    s3: aws_sdk_s3::Client,
    glue: aws_sdk_glue::Client,
    sqs: aws_sdk_sqs::Client,
    api: AwsIngest,
    config: IngestConfig,
    alert_queue: String,
}

impl Lake {
    async fn start() -> Self {
        let moto = Moto::start();
        let sdk = moto.sdk_config().await;
        let s3 = lakeops_shared::aws::s3(&sdk);
        for layer in LAYERS {
            s3.create_bucket()
                .bucket(format!("lake-{layer}"))
                .send()
                .await
                .unwrap();
        }
        // Databases and fallback crawlers come from catalog-setup.
        let setup = catalog_setup::aws::AwsCatalog::new(&sdk);
        catalog_setup::handle(
            &setup,
            json!({"mode": "apply", "spec": spec()}),
            RetryPolicy::default(),
            "dev",
        )
        .await
        .unwrap();
        // Alerts go to an SNS topic; an SQS subscription lets the test read them.
        let sns = lakeops_shared::aws::sns(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let topic = sns
            .create_topic()
            .name("lake-alerts")
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        let queue = sqs
            .create_queue()
            .queue_name("lake-alerts-inbox")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes()
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(queue_arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .unwrap();
        let mut config = IngestConfig::new(LakeSpec::from_value(spec()).unwrap(), Some(topic));
        config.retry = RetryPolicy::default();
        Lake {
            s3,
            glue: lakeops_shared::aws::glue(&sdk),
            sqs,
            api: AwsIngest::new(&sdk),
            config,
            alert_queue: queue,
            _moto: moto,
        }
    }

    async fn put(&self, bucket: &str, key: &str, data: Vec<u8>) -> usize {
        let size = data.len();
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(data.into())
            .send()
            .await
            .unwrap();
        size
    }

    async fn columns(&self, database: &str, table: &str) -> Vec<(String, String)> {
        let table = self
            .glue
            .get_table()
            .database_name(database)
            .name(table)
            .send()
            .await
            .unwrap();
        let table = table.table().unwrap();
        table
            .storage_descriptor()
            .unwrap()
            .columns()
            .iter()
            .map(|c| {
                (
                    c.name().to_string(),
                    c.r#type().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    async fn partitions(&self, database: &str, table: &str) -> Vec<(Vec<String>, String)> {
        lakeops_tests::glue_partitions(&self.glue, database, table)
            .await
            .expect("glue:GetPartitions")
    }
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogs_real_files_from_sqs_batches() {
    let lake = Lake::start().await;
    let raw = "lake-raw";
    let csv_key = "sales orders/dt=2024-01-01/part 1.csv";
    let gz_key = "sales orders/dt=2024-01-02/part-2.csv.gz";
    let json_key = "events/year=2024/month=05/e.jsonl";
    let parquet_key = "metrics/dt=2024-01-01/m.parquet";
    let tsv_key = "lookup/codes.tsv";
    let binary_key = "sales orders/dt=2024-01-03/photo.csv";
    let avro_key = "blobs/x.avro";
    let csv = b"Order Id,amount,day,note\n1,9.5,2024-01-01,first\n2,3,2024-01-01,\n".to_vec();
    let sizes = [
        lake.put(raw, csv_key, csv.clone()).await,
        lake.put(raw, gz_key, gzip(&csv)).await,
        lake.put(
            raw,
            json_key,
            b"{\"id\": 1, \"user\": {\"name\": \"ann\", \"tags\": [\"a\"]}, \"ok\": true}\n{\"id\": 2, \"user\": {\"name\": \"bob\", \"tags\": []}, \"ok\": false}\n".to_vec(),
        )
        .await,
        lake.put(raw, parquet_key, parquet_file(42, false)).await,
        lake.put(raw, tsv_key, b"code\tlabel\nA\tAlpha\n".to_vec()).await,
        lake.put(raw, binary_key, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec()).await,
        lake.put(raw, avro_key, b"Obj\x01\x04\x16avro.schema".to_vec()).await,
    ];
    let keys = [
        csv_key,
        gz_key,
        json_key,
        parquet_key,
        tsv_key,
        binary_key,
        avro_key,
    ];
    let records: Vec<_> = keys
        .iter()
        .zip(sizes)
        .enumerate()
        .map(|(i, (key, size))| sqs_record(&format!("m{i}"), "ObjectCreated:Put", raw, key, size))
        .collect();
    let (response, report) =
        handle_batch(&lake.api, &lake.config, sqs_event(records.clone())).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m5"], "{:#?}", report.objects);
    let (_, _, outcome) = report.objects.iter().find(|(id, _, _)| id == "m5").unwrap();
    assert!(
        matches!(outcome, Outcome::Failed { reason, .. } if reason.contains("binary content")),
        "{outcome:?}"
    );
    assert_eq!(report.tables_created, 4);
    assert_eq!(report.crawlers_started, 1);

    // CSV and gzip CSV share a table, with two partitions; the key's space is decoded.
    assert_eq!(
        lake.columns("lake_raw", "sales_orders").await,
        pairs(&[
            ("order_id", "bigint"),
            ("amount", "double"),
            ("day", "date"),
            ("note", "string")
        ])
    );
    let table = lake
        .glue
        .get_table()
        .database_name("lake_raw")
        .name("sales_orders")
        .send()
        .await
        .unwrap();
    let table = table.table().unwrap();
    let sd = table.storage_descriptor().unwrap();
    assert_eq!(sd.location(), Some("s3://lake-raw/sales orders/"));
    assert_eq!(
        sd.serde_info().unwrap().serialization_library(),
        Some("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe")
    );
    assert_eq!(table.parameters().unwrap()["skip.header.line.count"], "1");
    assert_eq!(table.partition_keys()[0].name(), "dt");
    assert_eq!(
        lake.partitions("lake_raw", "sales_orders").await,
        vec![
            (
                vec!["2024-01-01".to_string()],
                "s3://lake-raw/sales orders/dt=2024-01-01/".to_string()
            ),
            (
                vec!["2024-01-02".to_string()],
                "s3://lake-raw/sales orders/dt=2024-01-02/".to_string()
            ),
        ]
    );

    assert_eq!(
        lake.columns("lake_raw", "events").await,
        pairs(&[
            ("id", "bigint"),
            ("ok", "boolean"),
            ("user", "struct<name:string,tags:array<string>>")
        ])
    );
    assert_eq!(
        lake.partitions("lake_raw", "events").await[0].0,
        vec!["2024".to_string(), "05".to_string()]
    );

    assert_eq!(
        lake.columns("lake_raw", "metrics").await,
        pairs(&[("id", "bigint"), ("name", "string"), ("score", "double")])
    );
    let metrics = lake
        .glue
        .get_table()
        .database_name("lake_raw")
        .name("metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(
        metrics
            .table()
            .unwrap()
            .storage_descriptor()
            .unwrap()
            .input_format(),
        Some("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
    );

    assert_eq!(
        lake.columns("lake_raw", "lookup").await,
        pairs(&[("code", "string"), ("label", "string")])
    );
    assert!(lake.partitions("lake_raw", "lookup").await.is_empty());

    // The same batch again (a duplicate delivery) leaves the catalog as it is.
    let (response, report) = handle_batch(&lake.api, &lake.config, sqs_event(records)).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        report.tables_created + report.partitions_created + report.columns_added,
        0
    );
    assert_eq!(lake.partitions("lake_raw", "sales_orders").await.len(), 2);

    // A file with a new key adds a column as a new table version.
    let more =
        b"{\"id\": 3, \"user\": {\"name\": \"cy\", \"tags\": []}, \"ok\": true, \"score\": 0.5}\n"
            .to_vec();
    let more_key = "events/year=2024/month=06/f.jsonl";
    let size = lake.put(raw, more_key, more).await;
    let (response, report) = handle_batch(
        &lake.api,
        &lake.config,
        sqs_event(vec![sqs_record(
            "n1",
            "ObjectCreated:Put",
            raw,
            more_key,
            size,
        )]),
    )
    .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:#?}",
        report.objects
    );
    assert_eq!(report.columns_added, 1);
    assert_eq!(
        lake.columns("lake_raw", "events").await.last().unwrap(),
        &("score".to_string(), "double".to_string())
    );
    assert_eq!(lake.partitions("lake_raw", "events").await.len(), 2);

    // A removal drops the partition whose prefix is now empty, and only that.
    lake.s3
        .delete_object()
        .bucket(raw)
        .key(csv_key)
        .send()
        .await
        .unwrap();
    let (response, report) = handle_batch(
        &lake.api,
        &lake.config,
        sqs_event(vec![sqs_record(
            "r1",
            "ObjectRemoved:Delete",
            raw,
            csv_key,
            0,
        )]),
    )
    .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:#?}",
        report.objects
    );
    assert_eq!(report.partitions_deleted, 1);
    assert_eq!(
        lake.partitions("lake_raw", "sales_orders")
            .await
            .iter()
            .map(|p| p.0[0].as_str())
            .collect::<Vec<_>>(),
        vec!["2024-01-02"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_drops_alert_and_hostile_files_fail_alone() {
    let lake = Lake::start().await;
    let dump = b"host,severity\nweb-1,high\nweb-2,low\ndb-1,high\n".to_vec();
    let size = lake
        .put("lake-emergency", "incident 42/dump.csv", dump)
        .await;
    // A Parquet file whose footer claims 2 GB, and one cut in half.
    let mut hostile = parquet_file(3, false);
    let n = hostile.len();
    hostile[n - 8..n - 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let hostile_size = lake
        .put("lake-raw", "m/dt=1/hostile.parquet", hostile)
        .await;
    let whole = parquet_file(3, false);
    let truncated_size = lake
        .put(
            "lake-raw",
            "m/dt=2/cut.parquet",
            whole[..whole.len() / 2].to_vec(),
        )
        .await;
    let good_size = lake
        .put("lake-raw", "m/dt=3/good.parquet", parquet_file(3, false))
        .await;
    let (response, report) = handle_batch(
        &lake.api,
        &lake.config,
        sqs_event(vec![
            sqs_record(
                "e1",
                "ObjectCreated:Put",
                "lake-emergency",
                "incident 42/dump.csv",
                size,
            ),
            sqs_record(
                "h1",
                "ObjectCreated:Put",
                "lake-raw",
                "m/dt=1/hostile.parquet",
                hostile_size,
            ),
            sqs_record(
                "h2",
                "ObjectCreated:Put",
                "lake-raw",
                "m/dt=2/cut.parquet",
                truncated_size,
            ),
            sqs_record(
                "g1",
                "ObjectCreated:Put",
                "lake-raw",
                "m/dt=3/good.parquet",
                good_size,
            ),
        ]),
    )
    .await;
    let mut failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    failed.sort();
    assert_eq!(failed, vec!["h1", "h2"], "{:#?}", report.objects);
    assert_eq!(lake.partitions("lake_raw", "m").await.len(), 1);
    assert_eq!(report.alerts_sent, 1);

    let messages = lake
        .sqs
        .receive_message()
        .queue_url(&lake.alert_queue)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    let body = messages.messages()[0].body().unwrap();
    let alert: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(alert["bucket"], "lake-emergency");
    assert_eq!(alert["key"], "incident 42/dump.csv");
    assert_eq!(alert["size"], size);
    assert_eq!(alert["rows"], 3);
    assert_eq!(alert["table"], "lake_emergency.incident_42");
}

/// Before lake setup (a fresh stack on its default spec) a layer database
/// may be missing: moto answers CreateTable with EntityNotFoundException, as
/// Glue does, and catalog-ingest creates the database, then the table. In
/// the same batch a small gzip file that expands to a JSON object of 15 000
/// fields fails alone, with a reason naming it and the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_layer_database_is_created_and_a_hostile_file_fails_alone() {
    let lake = Lake::start().await;
    lake.glue
        .delete_database()
        .name("lake_curated")
        .send()
        .await
        .unwrap();
    let good_size = lake
        .put(
            "lake-curated",
            "totals/dt=1/t.parquet",
            parquet_file(2, false),
        )
        .await;
    let fields: Vec<String> = (0..15_000).map(|i| format!("\"f{i}\":1")).collect();
    let wide = gzip(format!("{{\"a\":{{{}}}}}\n", fields.join(",")).as_bytes());
    let wide_size = lake.put("lake-raw", "wide/w.json.gz", wide).await;
    let (response, report) = handle_batch(
        &lake.api,
        &lake.config,
        sqs_event(vec![
            sqs_record(
                "good",
                "ObjectCreated:Put",
                "lake-curated",
                "totals/dt=1/t.parquet",
                good_size,
            ),
            sqs_record(
                "wide",
                "ObjectCreated:Put",
                "lake-raw",
                "wide/w.json.gz",
                wide_size,
            ),
        ]),
    )
    .await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec!["wide"], "{:#?}", report.objects);
    let reason = report
        .objects
        .iter()
        .find_map(|(id, _, outcome)| match outcome {
            Outcome::Failed { reason, .. } if id == "wide" => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        reason.contains("s3://lake-raw/wide/w.json.gz") && reason.contains("10000 nested fields"),
        "{reason}"
    );
    assert_eq!(report.databases_created, 1);
    let database = lake
        .glue
        .get_database()
        .name("lake_curated")
        .send()
        .await
        .unwrap();
    assert_eq!(
        database.database().and_then(|d| d.location_uri()),
        Some("s3://lake-curated/")
    );
    assert_eq!(lake.partitions("lake_curated", "totals").await.len(), 1);
}
