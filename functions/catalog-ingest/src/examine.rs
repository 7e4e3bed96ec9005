//! Reading one arriving object: its placement, a sample (or the Parquet
//! footer), and the table its schema asks for, within the object's limits
//! (see `limits.rs`).

use crate::api::{ByteRange, IngestApi};
use crate::batch::IngestConfig;
use crate::format::{
    format_from_name, gunzip_prefix, is_gzip, sniff_text, valid_text_prefix, Compression,
    PARQUET_MAGIC,
};
use crate::layout::{place, Place, Placement};
use crate::limits::Work;
use crate::notification::ObjectEvent;
use crate::parquet_footer::{
    infer_parquet_within, metadata_length, FIRST_TAIL_READ, FOOTER_TAIL_BYTES,
};
use crate::table::{table_definition, TableDefinition};
use crate::text::{infer_delimited_within, infer_json_lines_within};
use lakeops_shared::retry::{RetryAdvice, RetryPolicy};
use lakeops_shared::spec::lake::DataFormat;
use lakeops_shared::{Error, ErrorKind};
use std::future::Future;

#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) reason: String,
    pub(crate) retryable: bool,
}

impl Failure {
    pub(crate) fn rejected(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            retryable: false,
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self {
            retryable: error.kind == ErrorKind::Retryable,
            reason: error.message,
        }
    }
}

/// What reading an arriving object found.
// One value per distinct object of a batch: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum Examined {
    Gone,
    Ignore(String),
    Table {
        placement: Placement,
        definition: TableDefinition,
        rows: Option<u64>,
        size: u64,
    },
    Crawl {
        crawler: String,
        size: u64,
    },
}

pub(crate) async fn retried<T, F, Fut>(retry: RetryPolicy, op: F) -> Result<T, Error>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    retry
        .run(op, |e: &Error| {
            if e.is_retryable() {
                RetryAdvice::Retry
            } else {
                RetryAdvice::Stop
            }
        })
        .await
}

/// Read what the catalog needs of one object and infer its table.
pub(crate) async fn examine<A: IngestApi>(
    api: &A,
    config: &IngestConfig,
    event: &ObjectEvent,
) -> Result<Examined, Failure> {
    let placement =
        match place(&config.spec, &event.bucket, &event.key).map_err(Failure::rejected)? {
            Place::Ignore(why) => return Ok(Examined::Ignore(why)),
            Place::Object(p) => p,
        };
    let layer = config
        .spec
        .layer(&placement.layer)
        .expect("placed in a layer of the spec");
    let crawl = |size: u64, why: String| -> Result<Examined, Failure> {
        if layer.crawler.enabled {
            Ok(Examined::Crawl {
                crawler: config.spec.crawler_name(layer),
                size,
            })
        } else {
            Err(Failure::rejected(format!(
                "{why}, and layer `{}` has no crawler",
                layer.name
            )))
        }
    };
    let by_name = format_from_name(&placement.file_name);
    let retry = config.retry;
    let bucket = event.bucket.as_str();
    let key = event.key.as_str();

    if by_name.map(|(f, _)| f) == Some(DataFormat::Parquet) {
        if !layer.parses(DataFormat::Parquet) {
            return crawl(0, "layer does not parse Parquet".into());
        }
        return examine_parquet(api, config, event, placement).await;
    }
    let Some(head) = retried(retry, |_| {
        api.read(bucket, key, ByteRange::Prefix(config.text_sample_bytes))
    })
    .await?
    else {
        return Ok(Examined::Gone);
    };
    let size = head.object_size;
    if size == 0 {
        return Ok(Examined::Ignore("empty object".into()));
    }
    if by_name.is_none() && head.bytes.starts_with(PARQUET_MAGIC) {
        if !layer.parses(DataFormat::Parquet) {
            return crawl(size, "layer does not parse Parquet".into());
        }
        return examine_parquet(api, config, event, placement).await;
    }
    let mut complete = head.bytes.len() as u64 >= size;
    let gzip_named = by_name.map(|(_, c)| c) == Some(Compression::Gzip);
    let (sample, compression) = if gzip_named || is_gzip(&head.bytes) {
        if !is_gzip(&head.bytes) {
            return Err(Failure::rejected("named .gz but not gzip data"));
        }
        let (text, stream_complete) =
            gunzip_prefix(&head.bytes, config.max_decompressed_bytes).map_err(Failure::rejected)?;
        complete = complete && stream_complete;
        (text, Compression::Gzip)
    } else {
        (head.bytes, Compression::None)
    };
    let format = match by_name.map(|(f, _)| f).or_else(|| sniff_text(&sample)) {
        Some(format) => format,
        None => return crawl(size, "unknown format".into()),
    };
    if !layer.parses(format) {
        return crawl(size, format!("layer does not parse {}", format.as_str()));
    }
    let text = valid_text_prefix(&sample)
        .map_err(|e| Failure::rejected(format!("not {}: {e}", format.as_str())))?;
    let mut work = Work::new(config.work_budget);
    let schema = match format {
        DataFormat::Csv | DataFormat::Tsv => {
            infer_delimited_within(text, format, compression, complete, &mut work)
        }
        DataFormat::Jsonl => infer_json_lines_within(text, compression, complete, &mut work),
        DataFormat::Parquet => unreachable!("handled above"),
    }
    .map_err(|reason| refused(event, reason))?;
    let definition = table_definition(&placement, &schema);
    Ok(Examined::Table {
        placement,
        definition,
        rows: schema.row_count,
        size,
    })
}

async fn examine_parquet<A: IngestApi>(
    api: &A,
    config: &IngestConfig,
    event: &ObjectEvent,
    placement: Placement,
) -> Result<Examined, Failure> {
    let (retry, work_budget) = (config.retry, config.work_budget);
    let (bucket, key) = (event.bucket.as_str(), event.key.as_str());
    let Some(tail) = retried(retry, |_| {
        api.read(bucket, key, ByteRange::Suffix(FIRST_TAIL_READ))
    })
    .await?
    else {
        return Ok(Examined::Gone);
    };
    let size = tail.object_size;
    let length = metadata_length(&tail.bytes, size).map_err(Failure::rejected)?;
    let needed = (length + FOOTER_TAIL_BYTES) as usize;
    let metadata = if needed <= tail.bytes.len() {
        tail.bytes[tail.bytes.len() - needed..tail.bytes.len() - FOOTER_TAIL_BYTES as usize]
            .to_vec()
    } else {
        let start = size - length - FOOTER_TAIL_BYTES;
        let Some(read) = retried(retry, |_| {
            api.read(bucket, key, ByteRange::Span { start, len: length })
        })
        .await?
        else {
            return Ok(Examined::Gone);
        };
        if read.bytes.len() as u64 != length {
            return Err(Failure::rejected(
                "the object changed while its footer was read",
            ));
        }
        read.bytes
    };
    let mut work = Work::new(work_budget);
    let schema =
        infer_parquet_within(&metadata, &mut work).map_err(|reason| refused(event, reason))?;
    let definition = table_definition(&placement, &schema);
    Ok(Examined::Table {
        placement,
        definition,
        rows: schema.row_count,
        size,
    })
}

/// A schema the object's content cannot have: final, and named with the
/// object, so the log line and the DLQ alarm's reader see which file it was.
fn refused(event: &ObjectEvent, reason: String) -> Failure {
    Failure::rejected(format!("s3://{}/{}: {reason}", event.bucket, event.key))
}
