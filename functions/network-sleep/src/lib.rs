//! network-sleep: puts the NAT gateways of a dev VPC to sleep at night and
//! wakes them in the morning, never under running Databricks work.
//!
//! Pure domain: `model`, `record`, `plan`, `savings`, `clock`, `activity`
//! (what Databricks work blocks a sleep) and `verdict`. Adapters: `network` (EC2), `store` (S3) and
//! `workspaces` (Databricks). `handler` ties them together.

pub mod activity;
pub mod clock;
pub mod config;
#[cfg(test)]
mod eip_tests;
mod eips;
pub mod event;
#[cfg(test)]
mod fakes;
#[cfg(test)]
mod guard_tests;
pub mod handler;
pub mod model;
pub mod network;
pub mod plan;
pub mod record;
pub mod savings;
pub mod store;
pub mod verdict;
pub mod workspaces;

pub use config::Settings;
pub use handler::NetworkSleep;

use lakeops_shared::databricks::{DatabricksConnector, DatabricksSettings};
use lakeops_shared::settings::Env;

/// The production wiring: EC2, S3 and Databricks clients, built once.
pub type App =
    NetworkSleep<network::Ec2Network, store::S3RecordStore, workspaces::DatabricksWorkspaces>;

/// Read the settings and build the clients from an SDK config.
pub fn build(env: &mut Env, sdk: &aws_config::SdkConfig) -> Result<App, lakeops_shared::Error> {
    let settings = Settings::read(env);
    let databricks = DatabricksSettings::read(env);
    let connector = DatabricksConnector::new(databricks)?;
    Ok(NetworkSleep {
        network: network::Ec2Network {
            client: lakeops_shared::aws::ec2(sdk),
        },
        store: store::S3RecordStore {
            client: lakeops_shared::aws::s3(sdk),
            bucket: settings.state_bucket.clone(),
            prefix: settings.state_prefix.clone(),
        },
        workspaces: workspaces::DatabricksWorkspaces {
            secrets: lakeops_shared::aws::secretsmanager(sdk),
            connector,
        },
        settings,
    })
}
