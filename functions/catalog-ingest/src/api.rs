//! The AWS calls ingest needs, behind a small trait: the real adapter is in
//! `aws.rs`; the unit tests of the batch flow use an in-memory one.

use crate::table::TableDefinition;
use lakeops_shared::Result;
use std::future::Future;

/// Which bytes of an object to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// The first `n` bytes.
    Prefix(u64),
    /// The last `n` bytes.
    Suffix(u64),
    /// `len` bytes from `start`.
    Span { start: u64, len: u64 },
}

/// Bytes of an object, and the size of the whole object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRead {
    pub bytes: Vec<u8>,
    pub object_size: u64,
}

/// One partition to register.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionSpec {
    pub values: Vec<String>,
    pub location: String,
}

/// A per-partition error of a batch call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionError {
    pub values: Vec<String>,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    AlreadyExists,
    /// The table's database does not exist (lake setup has not run yet).
    NoDatabase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    Updated,
    /// The table changed since it was read (its version moved on): read it
    /// again and decide again, instead of overwriting another writer's columns.
    Conflict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrawlStart {
    Started,
    /// `CrawlerRunningException`: a crawl is already under way and will see
    /// the new objects (or the next one will).
    AlreadyRunning,
}

pub trait IngestApi: Sync {
    /// `None` when the object no longer exists.
    fn read(
        &self,
        bucket: &str,
        key: &str,
        range: ByteRange,
    ) -> impl Future<Output = Result<Option<RangeRead>>> + Send;
    /// Whether any data object (not a marker or hidden file) remains under `prefix`.
    fn prefix_has_data(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> impl Future<Output = Result<bool>> + Send;

    fn get_table(
        &self,
        database: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<TableDefinition>>> + Send;
    fn create_table(&self, table: &TableDefinition)
        -> impl Future<Output = Result<Created>> + Send;
    /// Create a database (success when it exists already).
    fn create_database(
        &self,
        name: &str,
        location_uri: &str,
        description: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Replace the table's columns, if the table is still at `table.version_id`;
    /// Glue keeps the previous version.
    fn update_table(&self, table: &TableDefinition)
        -> impl Future<Output = Result<Updated>> + Send;

    /// Of `values` (at most 1000), the partitions that exist.
    fn batch_get_partitions(
        &self,
        database: &str,
        table: &str,
        values: &[Vec<String>],
    ) -> impl Future<Output = Result<Vec<Vec<String>>>> + Send;
    /// Create at most 100 partitions; the per-partition errors.
    fn batch_create_partitions(
        &self,
        table: &TableDefinition,
        partitions: &[PartitionSpec],
    ) -> impl Future<Output = Result<Vec<PartitionError>>> + Send;
    /// Delete at most 25 partitions; the per-partition errors.
    fn batch_delete_partitions(
        &self,
        database: &str,
        table: &str,
        values: &[Vec<String>],
    ) -> impl Future<Output = Result<Vec<PartitionError>>> + Send;

    fn start_crawler(&self, name: &str) -> impl Future<Output = Result<CrawlStart>> + Send;
    fn publish_alert(
        &self,
        topic_arn: &str,
        subject: &str,
        message: &str,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Glue's limits per call.
pub const MAX_GET_PARTITIONS: usize = 1000;
pub const MAX_CREATE_PARTITIONS: usize = 100;
pub const MAX_DELETE_PARTITIONS: usize = 25;
