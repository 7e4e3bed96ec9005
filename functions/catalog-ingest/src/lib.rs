//! catalog-ingest: catalogs lake objects as they arrive. S3 `ObjectCreated`
//! and `ObjectRemoved` notifications reach it through SQS; for each object it
//! finds the layer and table, infers the schema from the first bytes (or the
//! Parquet footer), creates or evolves the Glue table, and registers or drops
//! partitions in batches.

// Pure: no AWS, no I/O (built without the `aws` feature for fuzz/).
pub mod format;
pub mod glue_type;
pub mod jsonl;
pub mod layout;
pub mod limits;
pub mod names;
pub mod parquet_footer;
pub mod text;

#[cfg(feature = "aws")]
pub mod api;
#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
pub mod batch;
#[cfg(feature = "aws")]
pub mod cache;
#[cfg(feature = "aws")]
pub mod examine;
#[cfg(feature = "aws")]
pub mod notification;
#[cfg(feature = "aws")]
pub mod settings;
#[cfg(feature = "aws")]
pub mod spec_source;
#[cfg(feature = "aws")]
pub mod table;

#[cfg(all(test, feature = "aws"))]
mod batch_limits_tests;
#[cfg(all(test, feature = "aws"))]
mod batch_tests;
#[cfg(all(test, feature = "aws"))]
mod sample_events_tests;
#[cfg(all(test, feature = "aws"))]
mod test_support;

#[cfg(feature = "aws")]
pub use batch::{handle_batch, handle_batch_cached, IngestConfig, Outcome, Report};
#[cfg(feature = "aws")]
pub use cache::CatalogCache;
