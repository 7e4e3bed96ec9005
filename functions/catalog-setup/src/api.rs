//! The AWS calls setup needs, behind a small trait: the real adapter is in
//! `aws.rs`, an in-memory one backs the unit tests of the handler flow.

use crate::desired::{CrawlerConfig, DatabaseConfig, LocationConfig, WorkgroupConfig};
use lakeops_shared::Result;
use std::future::Future;

/// The outcome of a create call. Another writer may have created the resource
/// between our read and our create; that is not a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    AlreadyExists,
}

/// Reads return `None` when the resource does not exist.
pub trait CatalogApi: Sync {
    /// The text of a spec object, at most `max_bytes` long.
    fn read_spec(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> impl Future<Output = Result<String>> + Send;

    fn get_database(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<DatabaseConfig>>> + Send;
    fn create_database(
        &self,
        database: &DatabaseConfig,
    ) -> impl Future<Output = Result<Created>> + Send;
    fn update_database(&self, database: &DatabaseConfig)
        -> impl Future<Output = Result<()>> + Send;

    fn get_crawler(&self, name: &str)
        -> impl Future<Output = Result<Option<CrawlerConfig>>> + Send;
    fn create_crawler(
        &self,
        crawler: &CrawlerConfig,
    ) -> impl Future<Output = Result<Created>> + Send;
    fn update_crawler(&self, crawler: &CrawlerConfig) -> impl Future<Output = Result<()>> + Send;

    fn get_location(
        &self,
        resource_arn: &str,
    ) -> impl Future<Output = Result<Option<LocationConfig>>> + Send;
    fn register_location(
        &self,
        location: &LocationConfig,
    ) -> impl Future<Output = Result<Created>> + Send;
    fn update_location(&self, location: &LocationConfig)
        -> impl Future<Output = Result<()>> + Send;

    fn get_workgroup(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<WorkgroupConfig>>> + Send;
    fn create_workgroup(
        &self,
        workgroup: &WorkgroupConfig,
    ) -> impl Future<Output = Result<Created>> + Send;
    fn update_workgroup(
        &self,
        workgroup: &WorkgroupConfig,
    ) -> impl Future<Output = Result<()>> + Send;
}
