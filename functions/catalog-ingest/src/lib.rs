//! catalog-ingest: catalogs lake objects as they arrive. S3 `ObjectCreated`
//! and `ObjectRemoved` notifications reach it through SQS; for each object it
//! finds the layer and table, infers the schema from the first bytes (or the
//! Parquet footer), creates or evolves the Glue table, and registers or drops
//! partitions in batches.

pub mod api;
pub mod aws;
pub mod batch;
pub mod cache;
pub mod examine;
pub mod format;
pub mod glue_type;
pub mod jsonl;
pub mod layout;
pub mod limits;
pub mod names;
pub mod notification;
pub mod parquet_footer;
pub mod settings;
pub mod spec_source;
pub mod table;
pub mod text;

#[cfg(test)]
mod batch_limits_tests;
#[cfg(test)]
mod batch_tests;
#[cfg(test)]
mod sample_events_tests;
#[cfg(test)]
mod test_support;

pub use batch::{handle_batch, handle_batch_cached, IngestConfig, Outcome, Report};
pub use cache::CatalogCache;
