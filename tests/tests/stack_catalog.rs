//! catalog-ingest through the whole local stack: files put in the layer buckets
//! of the deployed template reach the function only through the real path (S3
//! notification → the template's SQS queue → the event-source mapping →
//! cargo lambda watch), and the tables, columns and partitions are checked in
//! Glue; alerts on the template's SNS topic, the redrive to the DLQ too.
//!
//! One stack for the file (starting it is the expensive part); the sub-cases
//! run in order in one test, because each builds on the catalog the previous
//! ones left.

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use catalog_ingest::layout::decode_event_key;
use lakeops_tests::{eventually, gzip, parquet_file, LocalStack};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The first batch may start the function: cargo lambda watch runs `cargo
/// run`, which waits for the build lock the machine's other builds hold.
const FIRST_DEADLINE: Duration = Duration::from_secs(240);
/// Later changes: a batching window and one invocation.
const DEADLINE: Duration = Duration::from_secs(60);

const TEXT_INPUT: &str = "org.apache.hadoop.mapred.TextInputFormat";
const TEXT_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";
const LAZY_SIMPLE_SERDE: &str = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe";
const JSON_SERDE: &str = "org.openx.data.jsonserde.JsonSerDe";
const PARQUET_INPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
const PARQUET_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";

/// A table as Glue returns it, reduced to what catalog-ingest decides.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GlueTable {
    table_type: String,
    location: String,
    columns: Vec<(String, String)>,
    partition_keys: Vec<(String, String)>,
    input_format: String,
    output_format: String,
    serde: String,
    serde_parameters: BTreeMap<String, String>,
    parameters: BTreeMap<String, String>,
}

impl GlueTable {
    fn of(table: &aws_sdk_glue::types::Table) -> Self {
        let sd = table.storage_descriptor().expect("a storage descriptor");
        let serde = sd.serde_info().expect("serde info");
        let columns = |columns: &[aws_sdk_glue::types::Column]| -> Vec<(String, String)> {
            columns
                .iter()
                .map(|c| (c.name().to_string(), c.r#type().unwrap_or("").to_string()))
                .collect()
        };
        let sorted =
            |map: Option<&std::collections::HashMap<String, String>>| -> BTreeMap<String, String> {
                map.map(|m| m.clone().into_iter().collect())
                    .unwrap_or_default()
            };
        GlueTable {
            table_type: table.table_type().unwrap_or("").to_string(),
            location: sd.location().unwrap_or("").to_string(),
            columns: columns(sd.columns()),
            partition_keys: columns(table.partition_keys()),
            input_format: sd.input_format().unwrap_or("").to_string(),
            output_format: sd.output_format().unwrap_or("").to_string(),
            serde: serde.serialization_library().unwrap_or("").to_string(),
            serde_parameters: sorted(serde.parameters()),
            parameters: sorted(table.parameters()),
        }
    }
}

/// A partition: its values and its location.
type Partition = (Vec<String>, String);

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn map(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs(items).into_iter().collect()
}

/// The table catalog-ingest makes for a file: format, columns, partition keys.
struct Expected<'a> {
    location: String,
    columns: &'a [(&'a str, &'a str)],
    partition_keys: &'a [&'a str],
}

impl Expected<'_> {
    fn common(&self, classification: &str) -> (Vec<(String, String)>, BTreeMap<String, String>) {
        let keys = self.partition_keys.iter().map(|k| (*k, "string"));
        let parameters = map(&[
            ("EXTERNAL", "TRUE"),
            ("lakeops:managed-by", "catalog-ingest"),
            ("classification", classification),
        ]);
        (pairs(&keys.collect::<Vec<_>>()), parameters)
    }

    fn table(
        &self,
        classification: &str,
        formats: (&str, &str, &str),
        serde_parameters: BTreeMap<String, String>,
        extra: &[(&str, &str)],
    ) -> GlueTable {
        let (partition_keys, mut parameters) = self.common(classification);
        parameters.extend(map(extra));
        GlueTable {
            table_type: "EXTERNAL_TABLE".into(),
            location: self.location.clone(),
            columns: pairs(self.columns),
            partition_keys,
            input_format: formats.0.into(),
            output_format: formats.1.into(),
            serde: formats.2.into(),
            serde_parameters,
            parameters,
        }
    }

    /// Unquoted delimited text with a header: LazySimpleSerDe.
    fn delimited(&self, delimiter: &str, gzip: bool) -> GlueTable {
        let mut extra = vec![("skip.header.line.count", "1")];
        if gzip {
            extra.push(("compressionType", "gzip"));
        }
        self.table(
            if delimiter == "\t" { "tsv" } else { "csv" },
            (TEXT_INPUT, TEXT_OUTPUT, LAZY_SIMPLE_SERDE),
            map(&[
                ("field.delim", delimiter),
                ("serialization.format", delimiter),
            ]),
            &extra,
        )
    }

    fn json_lines(&self, gzip: bool) -> GlueTable {
        let extra: &[(&str, &str)] = if gzip {
            &[("compressionType", "gzip")]
        } else {
            &[]
        };
        self.table(
            "json",
            (TEXT_INPUT, TEXT_OUTPUT, JSON_SERDE),
            map(&[("case.insensitive", "TRUE")]),
            extra,
        )
    }

    fn parquet(&self) -> GlueTable {
        self.table(
            "parquet",
            (PARQUET_INPUT, PARQUET_OUTPUT, PARQUET_SERDE),
            BTreeMap::new(),
            &[],
        )
    }
}

/// The deployed stack, its lake converged, and the clients of the test.
struct Lake {
    stack: LocalStack,
    s3: aws_sdk_s3::Client,
    glue: aws_sdk_glue::Client,
    sqs: aws_sdk_sqs::Client,
    raw: String,
    curated: String,
    emergency: String,
    raw_db: String,
    curated_db: String,
    emergency_db: String,
    /// A queue of the test subscribed to the template's alert topic.
    alert_inbox: String,
    ingest_queue: String,
    dead_letters: String,
}

impl Lake {
    async fn start() -> Self {
        let stack = LocalStack::start();
        let config = stack.sdk_config().await;
        let s3 = lakeops_shared::aws::s3(&config);
        let glue = lakeops_shared::aws::glue(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let lambda = aws_sdk_lambda::Client::new(&config);
        let spec = stack.sample_lake_spec();
        let layer = |name: &str| {
            spec["layers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["name"] == name)
                .unwrap_or_else(|| panic!("no layer {name} in the sample spec"))
                .clone()
        };
        let (raw, curated, emergency) = (layer("raw"), layer("curated"), layer("emergency"));
        let text = |v: &Value| v.as_str().unwrap().to_string();

        // A fresh stack: no lake spec uploaded, no lake setup run. A dropped
        // file is catalogued all the same, with the default spec the
        // template gives catalog-ingest (named as the sample spec names
        // things), its layer database created on the way.
        let first = fresh_stack_catalogues_a_dropped_file(
            &s3,
            &glue,
            &text(&raw["bucket"]),
            &text(&raw["database"]),
        )
        .await;
        eprintln!("before any spec or lake setup: {first:?}");

        // The layer databases (and everything else of the lake) come from
        // catalog-setup, invoked as an operator would.
        let setup = lambda
            .invoke()
            .function_name(stack.resource("CatalogSetupFunction"))
            .payload(aws_sdk_lambda::primitives::Blob::new(
                json!({"mode": "apply", "spec": spec}).to_string(),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(
            setup.function_error(),
            None,
            "catalog-setup: {}",
            String::from_utf8_lossy(setup.payload().map(|p| p.as_ref()).unwrap_or_default())
        );

        // catalog-ingest reads the spec from where its deployed environment says.
        let ingest = lambda
            .get_function_configuration()
            .function_name(stack.resource("CatalogIngestFunction"))
            .send()
            .await
            .unwrap();
        let variables = ingest
            .environment()
            .and_then(|e| e.variables())
            .expect("catalog-ingest has an environment");
        let spec_uri = &variables["LAKE_SPEC_URI"];
        let (spec_bucket, spec_key) = spec_uri
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .unwrap_or_else(|| panic!("LAKE_SPEC_URI {spec_uri}"));
        s3.put_object()
            .bucket(spec_bucket)
            .key(spec_key)
            .body(spec.to_string().into_bytes().into())
            .send()
            .await
            .unwrap();
        let topic = stack.resource("CatalogAlertsTopic");
        assert_eq!(variables["ALERT_TOPIC_ARN"], topic);

        // Alerts: an SQS queue of the test subscribed to the template's topic.
        let sns = lakeops_shared::aws::sns(&config);
        let alert_inbox = sqs
            .create_queue()
            .queue_name("stack-catalog-alert-inbox")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let inbox_arn = queue_attribute(&sqs, &alert_inbox, QueueAttributeName::QueueArn).await;
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(inbox_arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .unwrap();

        // The template's visibility timeout (720 s, six times the function
        // timeout) would make the redrive of a failing object take an hour:
        // shorten it here, to just more than the batching window, so a
        // message is never received twice while one batch is gathered.
        let ingest_queue = stack.resource("CatalogIngestQueue");
        let queue_arn = queue_attribute(&sqs, &ingest_queue, QueueAttributeName::QueueArn).await;
        let mappings = lambda
            .list_event_source_mappings()
            .function_name(stack.resource("CatalogIngestFunction"))
            .send()
            .await
            .unwrap();
        let mapping = mappings
            .event_source_mappings()
            .iter()
            .find(|m| m.event_source_arn() == Some(queue_arn.as_str()))
            .expect("an event-source mapping from the ingest queue");
        let window = mapping.maximum_batching_window_in_seconds().unwrap_or(0);
        sqs.set_queue_attributes()
            .queue_url(&ingest_queue)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                (window + 3).to_string(),
            )
            .send()
            .await
            .unwrap();
        // The poller reads the timeout when it starts gathering a batch, and
        // the S3 test events of the deployment may be in a batch gathered
        // before: wait until the queue is drained, so the next batch starts
        // with the new timeout.
        let (client, queue) = (&sqs, &ingest_queue);
        let drained = eventually(FIRST_DEADLINE, || async move {
            let attributes = client
                .get_queue_attributes()
                .queue_url(queue)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .unwrap();
            let attributes = attributes.attributes()?;
            let count = |name: QueueAttributeName| {
                attributes
                    .get(&name)
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(u64::MAX)
            };
            (count(QueueAttributeName::ApproximateNumberOfMessages) == 0
                && count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible) == 0)
                .then_some(())
        })
        .await;
        assert!(
            drained.is_some(),
            "the ingest queue still holds the deployment's messages"
        );

        Lake {
            s3,
            glue,
            sqs,
            raw: text(&raw["bucket"]),
            curated: text(&curated["bucket"]),
            emergency: text(&emergency["bucket"]),
            raw_db: text(&raw["database"]),
            curated_db: text(&curated["database"]),
            emergency_db: text(&emergency["database"]),
            alert_inbox,
            ingest_queue,
            dead_letters: stack.resource("CatalogIngestDLQ"),
            stack,
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

    async fn delete(&self, bucket: &str, key: &str) {
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
    }

    async fn table(&self, database: &str, name: &str) -> Option<GlueTable> {
        let found = self
            .glue
            .get_table()
            .database_name(database)
            .name(name)
            .send()
            .await
            .ok()?;
        Some(GlueTable::of(found.table()?))
    }

    async fn partitions(&self, database: &str, table: &str) -> Vec<Partition> {
        lakeops_tests::glue_partitions(&self.glue, database, table)
            .await
            .unwrap_or_default()
    }

    /// The tables and partitions of `tables` as Glue has them now.
    async fn catalog(&self, tables: &[(&str, &str)]) -> Catalog {
        let mut catalog = Catalog::new();
        for (database, name) in tables {
            let table = self.table(database, name).await;
            let partitions = self.partitions(database, name).await;
            catalog.insert(format!("{database}.{name}"), (table, partitions));
        }
        catalog
    }

    /// Wait until the catalog of `tables` satisfies `done`, or fail with what
    /// Glue last held and the function logs.
    async fn await_catalog(
        &self,
        what: &str,
        timeout: Duration,
        tables: &[(&str, &str)],
        done: impl Fn(&Catalog) -> bool,
    ) -> Catalog {
        let started = Instant::now();
        loop {
            let catalog = self.catalog(tables).await;
            if done(&catalog) {
                eprintln!("  {what}: {:.1} s", started.elapsed().as_secs_f64());
                return catalog;
            }
            if started.elapsed() > timeout {
                panic!(
                    "{what}: not in Glue within {timeout:?}; last seen:\n{catalog:#?}\nfunction logs (tail):\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn log_tail(&self) -> String {
        let logs = self.stack.lambda_logs();
        let lines: Vec<&str> = logs.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// Messages of a queue (received, not deleted), with their attributes.
    async fn receive(&self, queue: &str) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    }
}

type Catalog = BTreeMap<String, (Option<GlueTable>, Vec<Partition>)>;

/// Drop a CSV file into the raw bucket of a stack that has no lake spec
/// yet, and wait for its table: the columns Glue holds.
async fn fresh_stack_catalogues_a_dropped_file(
    s3: &aws_sdk_s3::Client,
    glue: &aws_sdk_glue::Client,
    raw_bucket: &str,
    raw_database: &str,
) -> Vec<(String, String)> {
    s3.put_object()
        .bucket(raw_bucket)
        .key("first drop/dt=2026-11-19/first.csv")
        .body(b"id,what\n1,hello\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let table = eventually(FIRST_DEADLINE, || async move {
        let found = glue
            .get_table()
            .database_name(raw_database)
            .name("first_drop")
            .send()
            .await
            .ok()?;
        Some(GlueTable::of(found.table()?))
    })
    .await
    .unwrap_or_else(|| {
        panic!("no table {raw_database}.first_drop: the default spec did not catalogue the file")
    });
    assert_eq!(
        table.columns,
        pairs(&[("id", "bigint"), ("what", "string")])
    );
    assert_eq!(table.location, format!("s3://{raw_bucket}/first drop/"));
    table.columns
}

async fn queue_attribute(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    name: QueueAttributeName,
) -> String {
    sqs.get_queue_attributes()
        .queue_url(queue)
        .attribute_names(name.clone())
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&name))
        .unwrap_or_else(|| panic!("queue {queue} has no {name:?}"))
        .clone()
}

/// The S3 object keys an SQS message carrying an S3 notification names.
fn notified_objects(body: &str) -> Vec<(String, String)> {
    let notification: Value = serde_json::from_str(body).unwrap();
    notification["Records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|r| {
                    (
                        r["s3"]["bucket"]["name"].as_str().unwrap().to_string(),
                        decode_event_key(r["s3"]["object"]["key"].as_str().unwrap()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

// Keys of the first burst. Spaces arrive as `+` in the notifications, `=` as `%3D`.
const SALES_EU_1: &str = "sales orders/dt=2026-11-20/region=eu west/part 1.csv";
const SALES_EU_2: &str = "sales orders/dt=2026-11-20/region=eu west/part 2.csv";
const SALES_US: &str = "sales orders/dt=2026-11-21/region=us/part 3.csv";
/// Binary bytes named `.csv`: rejected, and must not hold up the others.
const SALES_BAD: &str = "sales orders/dt=2026-11-22/region=eu/photo.csv";
const LOOKUP_TSV: &str = "lookup codes/codes.tsv";
const EVENTS_JSONL: &str = "events/year=2026/month=11/day=21/e.jsonl";
const CLICKS_JSONL_GZ: &str = "clicks/dt=2026-11-21/c.jsonl.gz";
const RETURNS_CSV_GZ: &str = "returns/dt=2026-11-21/r.csv.gz";
const METRICS_PARQUET: &str = "metrics/dt=2026-11-21/hour=07/m.parquet";
const TOTALS_PARQUET: &str = "daily totals/dt=2026-11-21/t.parquet";
const INCIDENT_CSV: &str = "incident 7/dump.csv";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_dropped_in_the_lake_are_catalogued_through_the_stack() {
    let lake = &Lake::start().await;
    eprintln!("stack up, lake converged, spec uploaded");

    // 1. One burst of every format in three layers, a bad object among them.
    let orders_csv = b"Order Id,amount,day,note\n1,9.5,2026-11-20,first\n2,3,2026-11-20,\n";
    lake.put(&lake.raw, SALES_EU_1, orders_csv.to_vec()).await;
    lake.put(
        &lake.raw,
        SALES_EU_2,
        b"Order Id,amount,day,note\n3,1.25,2026-11-20,second\n".to_vec(),
    )
    .await;
    lake.put(
        &lake.raw,
        SALES_US,
        b"Order Id,amount,day,note\n4,7,2026-11-21,third\n".to_vec(),
    )
    .await;
    lake.put(
        &lake.raw,
        SALES_BAD,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00".to_vec(),
    )
    .await;
    lake.put(
        &lake.raw,
        LOOKUP_TSV,
        b"code\tlabel\tweight\nA\tAlpha\t1.5\nB\tBeta\t2\n".to_vec(),
    )
    .await;
    // Keys in sorted order, so the expected column order does not depend on
    // whether serde_json keeps insertion order.
    lake.put(
        &lake.raw,
        EVENTS_JSONL,
        concat!(
            "{\"id\": 1, \"ok\": true, \"user\": {\"name\": \"ann\", \"tags\": [\"a\", \"b\"]}}\n",
            "{\"id\": 2, \"ok\": false, \"user\": {\"name\": \"bob\", \"tags\": []}}\n"
        )
        .as_bytes()
        .to_vec(),
    )
    .await;
    lake.put(
        &lake.raw,
        CLICKS_JSONL_GZ,
        gzip(
            concat!(
                "{\"at\": {\"x\": 10, \"y\": 20}, \"id\": 7, \"pages\": [{\"path\": \"/\"}]}\n",
                "{\"at\": {\"x\": 11, \"y\": 21}, \"id\": 8, \"pages\": []}\n"
            )
            .as_bytes(),
        ),
    )
    .await;
    lake.put(
        &lake.raw,
        RETURNS_CSV_GZ,
        gzip(b"Return Id,reason\n1,damaged\n2,late\n"),
    )
    .await;
    lake.put(&lake.raw, METRICS_PARQUET, parquet_file(40, true))
        .await;
    lake.put(&lake.curated, TOTALS_PARQUET, parquet_file(3, true))
        .await;
    let incident = b"host,severity\nweb-1,high\ndb-1,low\n".to_vec();
    let incident_size = lake.put(&lake.emergency, INCIDENT_CSV, incident).await;

    let (raw, curated, emergency) = (
        lake.raw_db.as_str(),
        lake.curated_db.as_str(),
        lake.emergency_db.as_str(),
    );
    let tables = [
        (raw, "sales_orders"),
        (raw, "lookup_codes"),
        (raw, "events"),
        (raw, "clicks"),
        (raw, "returns"),
        (raw, "metrics"),
        (curated, "daily_totals"),
        (emergency, "incident_7"),
    ];
    let partitioned = |catalog: &Catalog, name: &str, count: usize| {
        catalog[name].0.is_some() && catalog[name].1.len() >= count
    };
    let raw_name = |t: &str| format!("{raw}.{t}");
    let catalog = lake
        .await_catalog(
            "the first burst",
            FIRST_DEADLINE,
            &tables,
            |catalog: &Catalog| {
                partitioned(catalog, &raw_name("sales_orders"), 2)
                    && partitioned(catalog, &raw_name("lookup_codes"), 0)
                    && partitioned(catalog, &raw_name("events"), 1)
                    && partitioned(catalog, &raw_name("clicks"), 1)
                    && partitioned(catalog, &raw_name("returns"), 1)
                    && partitioned(catalog, &raw_name("metrics"), 1)
                    && partitioned(catalog, &format!("{curated}.daily_totals"), 1)
                    && partitioned(catalog, &format!("{emergency}.incident_7"), 0)
            },
        )
        .await;
    let table = |database: &str, name: &str| -> (GlueTable, Vec<Partition>) {
        let (table, partitions) = &catalog[&format!("{database}.{name}")];
        (table.clone().unwrap(), partitions.clone())
    };
    let location = |bucket: &str, prefix: &str| format!("s3://{bucket}/{prefix}");

    // CSV with a header, spaces in the key and in a partition value, two
    // partition levels. The bad object's partition was never registered.
    let (sales, sales_partitions) = table(raw, "sales_orders");
    assert_eq!(
        sales,
        Expected {
            location: location(&lake.raw, "sales orders/"),
            columns: &[
                ("order_id", "bigint"),
                ("amount", "double"),
                ("day", "date"),
                ("note", "string"),
            ],
            partition_keys: &["dt", "region"],
        }
        .delimited(",", false)
    );
    assert_eq!(
        sales_partitions,
        vec![
            (
                strings(&["2026-11-20", "eu west"]),
                location(&lake.raw, "sales orders/dt=2026-11-20/region=eu west/")
            ),
            (
                strings(&["2026-11-21", "us"]),
                location(&lake.raw, "sales orders/dt=2026-11-21/region=us/")
            ),
        ]
    );

    // TSV, unpartitioned.
    let (lookup, lookup_partitions) = table(raw, "lookup_codes");
    assert_eq!(
        lookup,
        Expected {
            location: location(&lake.raw, "lookup codes/"),
            columns: &[
                ("code", "string"),
                ("label", "string"),
                ("weight", "double")
            ],
            partition_keys: &[],
        }
        .delimited("\t", false)
    );
    assert!(lookup_partitions.is_empty(), "{lookup_partitions:?}");

    // JSON lines with nested objects and arrays, three partition levels.
    let (events, events_partitions) = table(raw, "events");
    let events_expected = Expected {
        location: location(&lake.raw, "events/"),
        columns: &[
            ("id", "bigint"),
            ("ok", "boolean"),
            ("user", "struct<name:string,tags:array<string>>"),
        ],
        partition_keys: &["year", "month", "day"],
    }
    .json_lines(false);
    assert_eq!(events, events_expected);
    assert_eq!(
        events_partitions,
        vec![(
            strings(&["2026", "11", "21"]),
            location(&lake.raw, "events/year=2026/month=11/day=21/")
        )]
    );

    // Gzip JSON lines: an array of structs.
    let (clicks, clicks_partitions) = table(raw, "clicks");
    assert_eq!(
        clicks,
        Expected {
            location: location(&lake.raw, "clicks/"),
            columns: &[
                ("at", "struct<x:bigint,y:bigint>"),
                ("id", "bigint"),
                ("pages", "array<struct<path:string>>"),
            ],
            partition_keys: &["dt"],
        }
        .json_lines(true)
    );
    assert_eq!(
        clicks_partitions,
        vec![(
            strings(&["2026-11-21"]),
            location(&lake.raw, "clicks/dt=2026-11-21/")
        )]
    );

    // Gzip CSV.
    let (returns, returns_partitions) = table(raw, "returns");
    assert_eq!(
        returns,
        Expected {
            location: location(&lake.raw, "returns/"),
            columns: &[("return_id", "bigint"), ("reason", "string")],
            partition_keys: &["dt"],
        }
        .delimited(",", true)
    );
    assert_eq!(
        returns_partitions,
        vec![(
            strings(&["2026-11-21"]),
            location(&lake.raw, "returns/dt=2026-11-21/")
        )]
    );

    // Parquet written by the test, in the raw and the curated layer.
    let parquet_columns = [
        ("id", "bigint"),
        ("name", "string"),
        ("score", "double"),
        ("ok", "boolean"),
        ("day", "date"),
    ];
    let (metrics, metrics_partitions) = table(raw, "metrics");
    assert_eq!(
        metrics,
        Expected {
            location: location(&lake.raw, "metrics/"),
            columns: &parquet_columns,
            partition_keys: &["dt", "hour"],
        }
        .parquet()
    );
    assert_eq!(
        metrics_partitions,
        vec![(
            strings(&["2026-11-21", "07"]),
            location(&lake.raw, "metrics/dt=2026-11-21/hour=07/")
        )]
    );
    let (totals, totals_partitions) = table(curated, "daily_totals");
    assert_eq!(
        totals,
        Expected {
            location: location(&lake.curated, "daily totals/"),
            columns: &parquet_columns,
            partition_keys: &["dt"],
        }
        .parquet()
    );
    assert_eq!(
        totals_partitions,
        vec![(
            strings(&["2026-11-21"]),
            location(&lake.curated, "daily totals/dt=2026-11-21/")
        )]
    );

    // The emergency layer catalogues too.
    let (incident_table, _) = table(emergency, "incident_7");
    assert_eq!(
        incident_table,
        Expected {
            location: location(&lake.emergency, "incident 7/"),
            columns: &[("host", "string"), ("severity", "string")],
            partition_keys: &[],
        }
        .delimited(",", false)
    );
    eprintln!("first burst: every table, column and partition as expected");

    // 2. The emergency drop raised an alert on the template's topic.
    let alert = eventually(DEADLINE, || async move {
        lake.receive(&lake.alert_inbox)
            .await
            .into_iter()
            .filter_map(|m| serde_json::from_str::<Value>(m.body()?).ok())
            .find(|alert| alert["key"] == INCIDENT_CSV)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no alert for {INCIDENT_CSV} on the topic within {DEADLINE:?}:\n{}",
            lake.log_tail()
        )
    });
    assert_eq!(
        alert,
        json!({
            "layer": "emergency",
            "bucket": lake.emergency,
            "key": INCIDENT_CSV,
            "size": incident_size,
            "rows": 2,
            "table": format!("{emergency}.incident_7"),
            "catalog": "cataloged",
        })
    );
    eprintln!("emergency alert received: {alert}");

    // 3. Schema evolution: a later file with one more key adds a column, in
    // a new table version, and its partition.
    lake.put(
        &lake.raw,
        "events/year=2026/month=12/day=01/g.jsonl",
        b"{\"id\": 3, \"ok\": true, \"score\": 0.5, \"user\": {\"name\": \"cy\", \"tags\": []}}\n"
            .to_vec(),
    )
    .await;
    let events_name = raw_name("events");
    let catalog = lake
        .await_catalog(
            "the new column",
            DEADLINE,
            &[(raw, "events")],
            |catalog: &Catalog| {
                let (table, partitions) = &catalog[&events_name];
                partitions.len() == 2
                    && table
                        .as_ref()
                        .is_some_and(|t| t.columns.iter().any(|(name, _)| name == "score"))
            },
        )
        .await;
    let (evolved, partitions) = &catalog[&events_name];
    let mut expected = events_expected.clone();
    expected
        .columns
        .push(("score".to_string(), "double".to_string()));
    assert_eq!(evolved.as_ref(), Some(&expected));
    assert_eq!(
        partitions,
        &vec![
            (
                strings(&["2026", "11", "21"]),
                location(&lake.raw, "events/year=2026/month=11/day=21/")
            ),
            (
                strings(&["2026", "12", "01"]),
                location(&lake.raw, "events/year=2026/month=12/day=01/")
            ),
        ]
    );
    let versions = lake
        .glue
        .get_table_versions()
        .database_name(raw)
        .table_name("events")
        .send()
        .await
        .unwrap();
    let mut versions: Vec<(String, GlueTable)> = versions
        .table_versions()
        .iter()
        .map(|v| {
            (
                v.version_id().unwrap_or_default().to_string(),
                GlueTable::of(v.table().unwrap()),
            )
        })
        .collect();
    versions.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        versions,
        vec![
            ("1".to_string(), events_expected.clone()),
            ("2".to_string(), expected)
        ],
        "the column is added as a second version of the table"
    );
    eprintln!("schema evolution: `score` added as table version 2");

    // 4. Removal. S3 queues each notification before DeleteObject returns and
    // the ingest queue is served in order, so when the second deletion has
    // dropped its partition the first has been handled too.
    lake.delete(&lake.raw, SALES_EU_2).await;
    lake.delete(&lake.raw, SALES_US).await;
    let sales_name = raw_name("sales_orders");
    let catalog = lake
        .await_catalog(
            "the dropped partition",
            DEADLINE,
            &[(raw, "sales_orders")],
            |catalog: &Catalog| catalog[&sales_name].1.len() < 2,
        )
        .await;
    assert_eq!(
        catalog[&sales_name].1,
        vec![(
            strings(&["2026-11-20", "eu west"]),
            location(&lake.raw, "sales orders/dt=2026-11-20/region=eu west/")
        )],
        "deleting the only object of a partition drops it; deleting one of two keeps it"
    );
    eprintln!("removal: emptied partition dropped, partition with data kept");

    // 5. The bad object ends on the DLQ after the redrive policy's receives,
    // alone.
    let redrive: Value = serde_json::from_str(
        &queue_attribute(
            &lake.sqs,
            &lake.ingest_queue,
            QueueAttributeName::RedrivePolicy,
        )
        .await,
    )
    .unwrap();
    let max_receives: u64 = match &redrive["maxReceiveCount"] {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_u64().unwrap(),
    };
    let started = Instant::now();
    let dead = eventually(Duration::from_secs(180), || async move {
        let messages = lake.receive(&lake.dead_letters).await;
        (!messages.is_empty()).then_some(messages)
    })
    .await
    .unwrap_or_else(|| panic!("nothing on the DLQ within 180 s:\n{}", lake.log_tail()));
    eprintln!(
        "  dead letter: {:.1} s after the other checks",
        started.elapsed().as_secs_f64()
    );
    let mut dead = dead;
    dead.extend(lake.receive(&lake.dead_letters).await);
    for message in &dead {
        assert_eq!(
            notified_objects(message.body().unwrap()),
            vec![(lake.raw.clone(), SALES_BAD.to_string())],
            "only the bad object is a dead letter"
        );
        // The notification carries the key as S3 encodes it: spaces as `+`.
        let notification: Value = serde_json::from_str(message.body().unwrap()).unwrap();
        assert_eq!(
            notification["Records"][0]["s3"]["object"]["key"],
            "sales+orders/dt%3D2026-11-22/region%3Deu/photo.csv"
        );
        let receives: u64 = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .expect("a receive count")
            .parse()
            .unwrap();
        assert!(
            receives >= max_receives,
            "moved after {receives} receives, the policy says {max_receives}"
        );
    }
    assert_eq!(dead.len(), 1, "one notification, one dead letter");
    let logs = lake.stack.lambda_logs();
    assert!(
        logs.contains("photo.csv") && logs.contains("binary"),
        "the function logs name the bad object and why"
    );
    eprintln!("dead letter: the bad object, after {max_receives} receives");

    // The bad object never made a partition, the good ones are all still there.
    let catalog = lake.catalog(&tables).await;
    assert_eq!(catalog[&sales_name].1.len(), 1);
    assert!(catalog.values().all(|(table, _)| table.is_some()));
}
