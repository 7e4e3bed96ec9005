//! The batch handler: one SQS batch of S3 notifications in, Glue changes made
//! with the fewest calls, and the messages whose objects failed reported as
//! batch item failures (SQS redelivers them, then moves them to the DLQ).
//!
//! A warm container keeps the table definitions Glue confirmed in a
//! [`CatalogCache`] (trusted for its TTL, 5 minutes by default; partitions are
//! not cached, see `cache.rs` for why). Calls per batch, per table:
//!
//! - table: none when the cache knows it and the batch adds no column;
//!   otherwise one GetTable, then one CreateTable (the table is new) or one
//!   UpdateTable (all new columns of the batch in one new version). A column
//!   to add, or an object to reject, found against the cached definition is
//!   decided again on a fresh GetTable first: writes replace the whole table
//!   and rejections are final;
//! - partitions: the distinct partitions of the batch are registered with
//!   one BatchCreatePartition per 100, where `AlreadyExistsException` for an
//!   entry is success — the call is the probe and the write at once. Only
//!   when more than 100 are wanted (and the table was not created by this
//!   batch) does one BatchGetPartition per 1000 come first, so that existing
//!   ones are not created one call per 100;
//! - removals: one BatchDeletePartition per 25 emptied partitions.
//!
//! Duplicates within a batch are read and registered once. A cold container
//! (or a TTL of 0) starts from Glue: one GetTable per table and one
//! BatchCreatePartition per 100 distinct partitions of the batch.
//!
//! Order does not matter: every decision is taken from the current state of
//! S3 (an object that is gone is not cataloged, a partition is dropped only
//! when its prefix holds no data), so duplicate and out-of-order deliveries
//! converge on the catalog a single clean delivery gives.

use crate::api::{
    CrawlStart, Created, IngestApi, PartitionSpec, Updated, MAX_CREATE_PARTITIONS,
    MAX_DELETE_PARTITIONS, MAX_GET_PARTITIONS,
};
use crate::cache::{probe_before_create, CatalogCache, TableId};
use crate::examine::{examine, retried, Examined, Failure};
use crate::layout::{place, Place, Placement};
use crate::table::{apply_additions, evolve, TableDefinition};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures_util::StreamExt;
use lakeops_shared::retry::{RetryAdvice, RetryPolicy};
use lakeops_shared::spec::lake::LakeSpec;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

pub use crate::notification::{only_test_events, parse_message, EventKind, ObjectEvent};

/// How much ingest reads, and where alerts go.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub spec: LakeSpec,
    pub alert_topic_arn: Option<String>,
    /// Bytes read from the start of a text file to infer its schema.
    pub text_sample_bytes: u64,
    /// Bound on what a gzip sample may expand to.
    pub max_decompressed_bytes: usize,
    /// Units of work one object's schema may cost (see `limits.rs`).
    pub work_budget: u64,
    pub retry: RetryPolicy,
}

impl IngestConfig {
    pub fn new(spec: LakeSpec, alert_topic_arn: Option<String>) -> Self {
        Self {
            spec,
            alert_topic_arn,
            text_sample_bytes: 64 * 1024,
            max_decompressed_bytes: 1024 * 1024,
            work_budget: crate::limits::DEFAULT_WORK_BUDGET,
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Table and partition are in the catalog (or were already).
    Cataloged,
    /// The layer's crawler was started (or was already running) for it.
    Crawled,
    /// A partition was dropped, or kept because its prefix still has data.
    Removed,
    /// Nothing to do, and why.
    Ignored(String),
    Failed {
        reason: String,
        retryable: bool,
    },
}

/// What happened to each object, and what changed in the catalog.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// (message id, `s3://bucket/key`, outcome)
    pub objects: Vec<(String, String, Outcome)>,
    /// Incompatible changes seen and not applied: `db.table: description`.
    pub drift: Vec<String>,
    /// Layer databases created because lake setup had not run yet.
    pub databases_created: usize,
    pub tables_created: usize,
    pub columns_added: usize,
    pub partitions_created: usize,
    pub partitions_deleted: usize,
    pub crawlers_started: usize,
    pub alerts_sent: usize,
}

impl Report {
    pub fn failed(&self) -> impl Iterator<Item = &(String, String, Outcome)> {
        self.objects
            .iter()
            .filter(|(_, _, o)| matches!(o, Outcome::Failed { .. }))
    }
}

struct Item {
    message_id: String,
    event: ObjectEvent,
    outcome: Option<Outcome>,
}

impl Item {
    fn fail(&mut self, failure: &Failure) {
        // The first failure is the one reported.
        if !matches!(self.outcome, Some(Outcome::Failed { .. })) {
            self.outcome = Some(Outcome::Failed {
                reason: failure.reason.clone(),
                retryable: failure.retryable,
            });
        }
    }

    fn settle(&mut self, outcome: Outcome) {
        if self.outcome.is_none() {
            self.outcome = Some(outcome);
        }
    }
}

fn is_already_exists(code: &str) -> bool {
    code == "AlreadyExistsException"
}

/// Handle one SQS batch as a cold container would: knowing nothing of the
/// catalog beforehand, remembering nothing afterwards.
pub async fn handle_batch<A: IngestApi>(
    api: &A,
    config: &IngestConfig,
    event: SqsEvent,
) -> (SqsBatchResponse, Report) {
    handle_batch_cached(api, config, &mut CatalogCache::disabled(), event).await
}

/// Handle one SQS batch with what earlier batches of this container learned of
/// the catalog (`cache`), and teach it what this batch confirms. Never fails as
/// a whole: each message either succeeds or is listed in the batch item
/// failures.
pub async fn handle_batch_cached<A: IngestApi>(
    api: &A,
    config: &IngestConfig,
    cache: &mut CatalogCache,
    event: SqsEvent,
) -> (SqsBatchResponse, Report) {
    cache.prune(Instant::now());
    let mut report = Report::default();
    let mut items: Vec<Item> = Vec::new();
    let mut bad_messages: Vec<(String, String)> = Vec::new();
    for message in event.records {
        let message_id = message.message_id.clone().unwrap_or_default();
        match parse_message(message.body.as_deref()) {
            Ok(events) => items.extend(events.into_iter().map(|event| Item {
                message_id: message_id.clone(),
                event,
                outcome: None,
            })),
            Err(reason) => bad_messages.push((message_id, reason)),
        }
    }

    // Read each distinct arriving object once, a few at a time: each read
    // waits on S3 far longer than it computes, and holds at most one sample.
    let mut distinct: BTreeSet<(String, String)> = BTreeSet::new();
    let arriving: Vec<&ObjectEvent> = items
        .iter()
        .filter(|i| i.event.kind == EventKind::Created)
        .filter(|i| distinct.insert((i.event.bucket.clone(), i.event.key.clone())))
        .map(|i| &i.event)
        .collect();
    let examined: HashMap<(String, String), Result<Examined, Failure>> =
        futures_util::stream::iter(arriving)
            .map(|event| async move {
                (
                    (event.bucket.clone(), event.key.clone()),
                    examine(api, config, event).await,
                )
            })
            .buffer_unordered(READS_IN_FLIGHT)
            .collect()
            .await;

    let mut tables: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    let mut crawls: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, item) in items.iter_mut().enumerate() {
        if item.event.kind != EventKind::Created {
            continue;
        }
        match &examined[&(item.event.bucket.clone(), item.event.key.clone())] {
            Err(failure) => item.fail(failure),
            Ok(Examined::Gone) => {
                item.settle(Outcome::Ignored("the object no longer exists".into()))
            }
            Ok(Examined::Ignore(why)) => item.settle(Outcome::Ignored(why.clone())),
            Ok(Examined::Table { definition, .. }) => tables
                .entry((definition.database.clone(), definition.name.clone()))
                .or_default()
                .push(index),
            Ok(Examined::Crawl { crawler, .. }) => {
                crawls.entry(crawler.clone()).or_default().push(index)
            }
        }
    }

    for ((database, name), members) in &tables {
        let definitions: Vec<(usize, &TableDefinition, &Placement)> = members
            .iter()
            .map(|&i| {
                match &examined[&(items[i].event.bucket.clone(), items[i].event.key.clone())] {
                    Ok(Examined::Table {
                        definition,
                        placement,
                        ..
                    }) => (i, definition, placement),
                    _ => unreachable!("grouped as a table"),
                }
            })
            .collect();
        catalog_table(
            api,
            config,
            cache,
            database,
            name,
            &definitions,
            &mut items,
            &mut report,
        )
        .await;
    }

    for (crawler, members) in &crawls {
        match retried(config.retry, |_| api.start_crawler(crawler)).await {
            Ok(start) => {
                if start == CrawlStart::Started {
                    report.crawlers_started += 1;
                }
                tracing::info!(crawler = %crawler, already_running = start == CrawlStart::AlreadyRunning, "fallback crawl");
                for &i in members {
                    items[i].settle(Outcome::Crawled);
                }
            }
            Err(error) => {
                let failure = Failure::from(error.context(format!("start crawler {crawler}")));
                for &i in members {
                    items[i].fail(&failure);
                }
            }
        }
    }

    remove_partitions(api, config, cache, &mut items, &mut report).await;
    send_alerts(api, config, &examined, &mut items, &mut report).await;

    let mut response = SqsBatchResponse::default();
    let mut failed_messages = BTreeSet::new();
    for (message_id, reason) in bad_messages {
        tracing::warn!(message_id = %message_id, reason = %reason, "message rejected");
        report.objects.push((
            message_id.clone(),
            String::new(),
            Outcome::Failed {
                reason,
                retryable: false,
            },
        ));
        failed_messages.insert(message_id);
    }
    for item in items {
        let outcome = item.outcome.unwrap_or(Outcome::Cataloged);
        let object = format!("s3://{}/{}", item.event.bucket, item.event.key);
        if let Outcome::Failed { reason, retryable } = &outcome {
            tracing::warn!(message_id = %item.message_id, object = %object, reason = %reason, retryable, "object failed");
            failed_messages.insert(item.message_id.clone());
        }
        report.objects.push((item.message_id, object, outcome));
    }
    for message_id in failed_messages {
        response.add_failure(message_id);
    }
    tracing::info!(
        objects = report.objects.len(),
        failed = response.batch_item_failures.len(),
        tables_created = report.tables_created,
        columns_added = report.columns_added,
        partitions_created = report.partitions_created,
        partitions_deleted = report.partitions_deleted,
        drift = report.drift.len(),
        known_tables = cache.table_count(),
        "batch cataloged"
    );
    (response, report)
}

/// Create or evolve one table for the objects of a batch, then register
/// their partitions.
#[allow(clippy::too_many_arguments)]
async fn catalog_table<A: IngestApi>(
    api: &A,
    config: &IngestConfig,
    cache: &mut CatalogCache,
    database: &str,
    name: &str,
    definitions: &[(usize, &TableDefinition, &Placement)],
    items: &mut [Item],
    report: &mut Report,
) {
    let id: TableId = (database.to_string(), name.to_string());
    let fail_all = |items: &mut [Item], failure: &Failure| {
        for (i, _, _) in definitions {
            items[*i].fail(failure);
        }
    };
    // Each pass takes the table from the cache when it knows it, else from
    // Glue. Another writer may create or change the table between our read
    // and our write; then read again and decide again, a bounded number of
    // times.
    let mut read_glue = false;
    let mut passes = 0;
    let (table, created, accepted) = loop {
        let cached = if read_glue {
            None
        } else {
            cache.table(&id, Instant::now()).cloned()
        };
        let from_cache = cached.is_some();
        let existing = match cached {
            Some(table) => Some(table),
            None => {
                passes += 1;
                match retried(config.retry, |_| api.get_table(database, name)).await {
                    Ok(Some(table)) => {
                        cache.confirm_table(table.clone(), Instant::now());
                        Some(table)
                    }
                    Ok(None) => {
                        cache.forget_table(&id);
                        None
                    }
                    Err(error) => {
                        return fail_all(
                            items,
                            &error
                                .context(format!("glue:GetTable {database}.{name}"))
                                .into(),
                        )
                    }
                }
            }
        };
        let is_new = existing.is_none();
        let mut table = existing.unwrap_or_else(|| definitions[0].1.clone());
        let mut accepted = Vec::new();
        let mut rejected = Vec::new();
        let mut added = 0;
        let mut drift = Vec::new();
        for &(i, definition, placement) in definitions {
            match evolve(&table, definition) {
                Err(reason) => rejected.push((i, reason)),
                Ok(evolution) => {
                    added += apply_additions(&mut table, &evolution.add);
                    drift.extend(
                        evolution
                            .drift
                            .iter()
                            .map(|d| format!("{database}.{name}: {d}")),
                    );
                    accepted.push((i, placement));
                }
            }
        }
        // A write replaces the whole table and a rejection is final: neither
        // is decided on a remembered definition.
        if from_cache && (added > 0 || !rejected.is_empty()) {
            read_glue = true;
            continue;
        }
        let outcome = if is_new {
            create_table(api, config, &table, report).await
        } else if added > 0 {
            retried(config.retry, |_| api.update_table(&table))
                .await
                .map(|u| u == Updated::Updated)
        } else {
            Ok(true)
        };
        match outcome {
            Ok(true) => {
                if is_new || added > 0 {
                    // What Glue now holds; its new version id is not returned,
                    // and is not needed: every write reads the table first.
                    let mut written = table.clone();
                    written.version_id = None;
                    cache.confirm_table(written, Instant::now());
                }
                for (i, reason) in rejected {
                    items[i].fail(&Failure::rejected(reason));
                }
                drift.sort();
                drift.dedup();
                for d in &drift {
                    tracing::warn!(drift = %d, "schema drift not applied");
                }
                report.drift.extend(drift);
                if is_new {
                    report.tables_created += 1;
                } else {
                    report.columns_added += added;
                }
                break (table, is_new, accepted);
            }
            // Created or changed by another writer meanwhile: read it again.
            Ok(false) if passes < 3 => {
                read_glue = true;
                continue;
            }
            Ok(false) => {
                cache.forget_table(&id);
                return fail_all(
                    items,
                    &Failure {
                        reason: format!("table {database}.{name} keeps changing"),
                        retryable: true,
                    },
                );
            }
            Err(error) if error.is_retryable() && passes < 3 => {
                cache.forget_table(&id);
                read_glue = true;
                continue;
            }
            Err(error) => {
                cache.forget_table(&id);
                return fail_all(
                    items,
                    &error
                        .context(format!("glue write {database}.{name}"))
                        .into(),
                );
            }
        }
    };
    if table.partition_keys.is_empty() {
        return;
    }

    // The distinct partitions of the batch, and the objects behind each.
    let mut wanted: BTreeMap<Vec<String>, (String, Vec<usize>)> = BTreeMap::new();
    for (i, placement) in accepted {
        wanted
            .entry(placement.partition_values.clone())
            .or_insert_with(|| (placement.partition_location.clone(), Vec::new()))
            .1
            .push(i);
    }
    // Every partition of the batch, also those seen in earlier batches:
    // another instance may have dropped one since (see cache.rs).
    let unknown: Vec<Vec<String>> = wanted.keys().cloned().collect();
    let mut existing: BTreeSet<Vec<String>> = BTreeSet::new();
    if probe_before_create(unknown.len(), created) {
        for chunk in unknown.chunks(MAX_GET_PARTITIONS) {
            match retried(config.retry, |_| {
                api.batch_get_partitions(database, name, chunk)
            })
            .await
            {
                Ok(found) => existing.extend(found),
                Err(error) => {
                    cache.forget_table(&id);
                    let failure: Failure = error
                        .context(format!("glue:BatchGetPartition {database}.{name}"))
                        .into();
                    for values in chunk {
                        for &i in &wanted[values].1 {
                            items[i].fail(&failure);
                        }
                    }
                    // Those partitions are not created: their objects will be
                    // redelivered and tried again.
                    existing.extend(chunk.iter().cloned());
                }
            }
        }
    }
    let missing: Vec<PartitionSpec> = unknown
        .iter()
        .filter(|values| !existing.contains(*values))
        .map(|values| PartitionSpec {
            values: values.clone(),
            location: wanted[values].0.clone(),
        })
        .collect();
    for chunk in missing.chunks(MAX_CREATE_PARTITIONS) {
        // Entries throttled inside a successful response are sent again (a
        // few rounds, backing off); only what still fails is reported.
        let mut pending: Vec<PartitionSpec> = chunk.to_vec();
        let mut round = 0u32;
        while !pending.is_empty() {
            let errors = match retried(config.retry, |_| {
                api.batch_create_partitions(&table, &pending)
            })
            .await
            {
                Ok(errors) => errors,
                Err(error) => {
                    // The table may be gone: learn it again next time.
                    cache.forget_table(&id);
                    let failure: Failure = error
                        .context(format!("glue:BatchCreatePartition {database}.{name}"))
                        .into();
                    for partition in &pending {
                        for &i in &wanted[&partition.values].1 {
                            items[i].fail(&failure);
                        }
                    }
                    break;
                }
            };
            let sent = pending.len();
            // An error for values we did not send cannot be told apart from
            // an error for one we did: then nothing of this call is trusted,
            // and its objects are redelivered.
            if let Some(stray) = errors
                .iter()
                .find(|e| !pending.iter().any(|p| p.values == e.values))
            {
                let failure = Failure {
                    reason: format!(
                        "glue:BatchCreatePartition {database}.{name} answered for partition {:?}, which was not sent: {}: {}",
                        stray.values, stray.code, stray.message
                    ),
                    retryable: true,
                };
                for partition in &pending {
                    for &i in &wanted[&partition.values].1 {
                        items[i].fail(&failure);
                    }
                }
                break;
            }
            let answer = sort_partition_errors(&errors, round + 1 < PARTITION_ROUNDS);
            for error in errors.iter().filter(|e| answer.failed.contains(&e.values)) {
                if error.code == "EntityNotFoundException" {
                    cache.forget_table(&id);
                }
                let failure = Failure {
                    reason: format!(
                        "glue:BatchCreatePartition {database}.{name} {:?}: {}: {}",
                        error.values, error.code, error.message
                    ),
                    retryable: lakeops_shared::aws::is_transient_code(&error.code),
                };
                if let Some((_, members)) = wanted.get(&error.values) {
                    for &i in members {
                        items[i].fail(&failure);
                    }
                }
            }
            report.partitions_created += answer.created(sent);
            pending.retain(|p| answer.resend.contains(&p.values));
            if !pending.is_empty() {
                let delay = config
                    .retry
                    .delay(round, RetryAdvice::Retry, &mut rand::rng());
                tokio::time::sleep(delay).await;
            }
            round += 1;
        }
    }
}

/// Create a table: true when this call created it. When its database does
/// not exist yet (a stack still on its default spec, before lake setup),
/// the database is created first, with the location catalog-setup gives it.
async fn create_table<A: IngestApi>(
    api: &A,
    config: &IngestConfig,
    table: &TableDefinition,
    report: &mut Report,
) -> Result<bool, lakeops_shared::Error> {
    match retried(config.retry, |_| api.create_table(table)).await? {
        Created::Created => return Ok(true),
        Created::AlreadyExists => return Ok(false),
        Created::NoDatabase => {}
    }
    let database = &table.database;
    let layer = config.spec.layers.iter().find(|l| &l.database == database);
    let location = layer
        .map(|l| format!("s3://{}/", l.bucket))
        .unwrap_or_default();
    let description = format!(
        "{} layer `{}` (created by lakeops catalog-ingest before lake setup)",
        config.spec.name,
        layer.map_or("?", |l| l.name.as_str())
    );
    retried(config.retry, |_| {
        api.create_database(database, &location, &description)
    })
    .await
    .map_err(|e| e.context(format!("glue:CreateDatabase {database}")))?;
    report.databases_created += 1;
    tracing::info!(database = %database, "created the layer database");
    match retried(config.retry, |_| api.create_table(table)).await? {
        Created::Created => Ok(true),
        Created::AlreadyExists => Ok(false),
        Created::NoDatabase => Err(lakeops_shared::Error::retryable(format!(
            "glue:CreateTable {database}.{}: the database is still missing after it was created",
            table.name
        ))),
    }
}

/// What the per-entry errors of one BatchCreatePartition answer mean.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PartitionAnswer {
    /// Existed already: success, but not created by this call.
    pub(crate) existing: BTreeSet<Vec<String>>,
    /// Throttled (or another transient fault): send again.
    pub(crate) resend: BTreeSet<Vec<String>>,
    /// Not registered: their objects fail.
    pub(crate) failed: BTreeSet<Vec<String>>,
}

impl PartitionAnswer {
    /// How many of the `sent` entries this call created.
    pub(crate) fn created(&self, sent: usize) -> usize {
        sent.saturating_sub(self.existing.len() + self.resend.len() + self.failed.len())
    }
}

/// Sort the per-entry errors: `AlreadyExistsException` is success, a
/// transient fault is sent again while `may_resend`, anything else fails.
pub(crate) fn sort_partition_errors(
    errors: &[crate::api::PartitionError],
    may_resend: bool,
) -> PartitionAnswer {
    let mut answer = PartitionAnswer::default();
    for error in errors {
        let set = if is_already_exists(&error.code) {
            &mut answer.existing
        } else if may_resend && lakeops_shared::aws::is_transient_code(&error.code) {
            &mut answer.resend
        } else {
            &mut answer.failed
        };
        set.insert(error.values.clone());
    }
    answer
}

/// Objects read at once. Each holds at most one sample (`text_sample_bytes`,
/// 64 KiB by default, or a Parquet footer tail of 64 KiB) and its decompressed
/// text (at most `max_decompressed_bytes`), so memory stays bounded.
const READS_IN_FLIGHT: usize = 8;

/// Rounds of BatchCreatePartition for entries that came back throttled.
const PARTITION_ROUNDS: u32 = 3;

/// Drop the partitions whose prefix no longer holds data.
async fn remove_partitions<A: IngestApi>(
    api: &A,
    config: &IngestConfig,
    cache: &mut CatalogCache,
    items: &mut [Item],
    report: &mut Report,
) {
    // (bucket, prefix) → (database, table, values, items)
    type Target = (String, String, Vec<String>, Vec<usize>);
    let mut prefixes: BTreeMap<(String, String), Target> = BTreeMap::new();
    for (index, item) in items.iter_mut().enumerate() {
        if item.event.kind != EventKind::Removed {
            continue;
        }
        match place(&config.spec, &item.event.bucket, &item.event.key) {
            Err(reason) => item.fail(&Failure::rejected(reason)),
            Ok(Place::Ignore(why)) => item.settle(Outcome::Ignored(why)),
            Ok(Place::Object(p)) if p.partition_keys.is_empty() => item.settle(Outcome::Ignored(
                "unpartitioned table: no partition to drop".into(),
            )),
            Ok(Place::Object(p)) => {
                prefixes
                    .entry((item.event.bucket.clone(), p.partition_prefix.clone()))
                    .or_insert_with(|| {
                        (
                            p.database.clone(),
                            p.table.clone(),
                            p.partition_values.clone(),
                            Vec::new(),
                        )
                    })
                    .3
                    .push(index);
            }
        }
    }
    // (database, table) → [(partition values, items)]
    type Deletions = BTreeMap<(String, String), Vec<(Vec<String>, Vec<usize>)>>;
    let mut to_delete: Deletions = BTreeMap::new();
    for ((bucket, prefix), (database, table, values, members)) in prefixes {
        match retried(config.retry, |_| api.prefix_has_data(&bucket, &prefix)).await {
            Ok(true) => {
                for i in members {
                    items[i].settle(Outcome::Removed);
                }
            }
            Ok(false) => to_delete
                .entry((database, table))
                .or_default()
                .push((values, members)),
            Err(error) => {
                let failure: Failure = error
                    .context(format!("s3:ListObjectsV2 s3://{bucket}/{prefix}"))
                    .into();
                for i in members {
                    items[i].fail(&failure);
                }
            }
        }
    }
    for ((database, table), partitions) in to_delete {
        let id: TableId = (database.clone(), table.clone());
        for chunk in partitions.chunks(MAX_DELETE_PARTITIONS) {
            let values: Vec<Vec<String>> = chunk.iter().map(|(v, _)| v.clone()).collect();
            match retried(config.retry, |_| {
                api.batch_delete_partitions(&database, &table, &values)
            })
            .await
            {
                Ok(errors) => {
                    let mut failed = BTreeSet::new();
                    for error in errors {
                        // Already gone (or the table never existed): the goal is met.
                        if error.code == "EntityNotFoundException" {
                            continue;
                        }
                        let failure = Failure {
                            reason: format!(
                                "glue:BatchDeletePartition {database}.{table} {:?}: {}: {}",
                                error.values, error.code, error.message
                            ),
                            retryable: lakeops_shared::aws::is_transient_code(&error.code),
                        };
                        for (v, members) in chunk {
                            if *v == error.values {
                                for &i in members {
                                    items[i].fail(&failure);
                                }
                            }
                        }
                        failed.insert(error.values);
                    }
                    for (v, members) in chunk {
                        if !failed.contains(v) {
                            report.partitions_deleted += 1;
                            for &i in members {
                                items[i].settle(Outcome::Removed);
                            }
                        }
                    }
                }
                Err(error) if error.message.contains("EntityNotFoundException") => {
                    cache.forget_table(&id);
                    for (_, members) in chunk {
                        for &i in members {
                            items[i].settle(Outcome::Removed);
                        }
                    }
                }
                Err(error) => {
                    let failure: Failure = error
                        .context(format!("glue:BatchDeletePartition {database}.{table}"))
                        .into();
                    for (_, members) in chunk {
                        for &i in members {
                            items[i].fail(&failure);
                        }
                    }
                }
            }
        }
    }
}

/// Alert on every object that arrived in an alerting layer (the emergency
/// layer by default), whatever became of it in the catalog.
async fn send_alerts<A: IngestApi>(
    api: &A,
    config: &IngestConfig,
    examined: &HashMap<(String, String), Result<Examined, Failure>>,
    items: &mut [Item],
    report: &mut Report,
) {
    let mut sent: BTreeSet<(String, String)> = BTreeSet::new();
    for item in items.iter_mut() {
        if item.event.kind != EventKind::Created {
            continue;
        }
        let Some(layer) = config.spec.layer_of_bucket(&item.event.bucket) else {
            continue;
        };
        if !layer.alerts() {
            continue;
        }
        let id = (item.event.bucket.clone(), item.event.key.clone());
        let (size, rows, table) = match examined.get(&id) {
            Some(Ok(Examined::Table {
                size,
                rows,
                definition,
                ..
            })) => (
                Some(*size),
                *rows,
                Some(format!("{}.{}", definition.database, definition.name)),
            ),
            Some(Ok(Examined::Crawl { size, .. })) => (Some(*size), None, None),
            Some(Ok(Examined::Gone)) | Some(Ok(Examined::Ignore(_))) => continue,
            _ => (None, None, None),
        };
        if !sent.insert(id) {
            continue;
        }
        let Some(topic) = &config.alert_topic_arn else {
            tracing::warn!(bucket = %item.event.bucket, key = %item.event.key, "alerting layer but no ALERT_TOPIC_ARN");
            continue;
        };
        let outcome = match &item.outcome {
            Some(Outcome::Failed { reason, .. }) => format!("failed: {reason}"),
            _ => "cataloged".to_string(),
        };
        let message = serde_json::json!({
            "layer": layer.name,
            "bucket": item.event.bucket,
            "key": item.event.key,
            "size": size,
            "rows": rows,
            "table": table,
            "catalog": outcome,
        });
        let subject = format!("lakeops: object in the {} layer", layer.name);
        let body = message.to_string();
        match retried(config.retry, |_| api.publish_alert(topic, &subject, &body)).await {
            Ok(()) => report.alerts_sent += 1,
            Err(error) => item.fail(&error.context("sns:Publish alert").into()),
        }
    }
}
