//! `dr-sync`: a passive secondary region whose Unity Catalog is kept in step with the
//! primary's. The sync runs in the secondary region and pulls: managed and external
//! Delta tables are copied with DEEP CLONE through a Delta Share, external non-Delta
//! tables and volumes (whose storage S3 Cross-Region Replication copies) are re-created
//! as metadata at the mapped location, then views, functions, tags, comments and grants.
//!
//! This crate is the pure core: the DR spec and its validation ([`spec`]), the name,
//! location and principal mappings ([`mapping`]), the two sides' inventories
//! ([`inventory`]), the plan of what a sync does, stage by stage ([`plan`], with view
//! ordering and definition rewriting in [`views`] and statement text in [`sql`]), the
//! reconciliation report and replication lag ([`report`]), and the failover
//! generation guard ([`failover`]). The Databricks adapters, the handler and the state
//! machines build on it.

pub mod asl;
pub mod asl_failover;
#[cfg(feature = "aws")]
pub mod aws;
pub mod clones;
pub mod databricks;
pub mod event;
pub mod failover;
pub mod failover_runner;
#[cfg(test)]
mod failover_tests;
#[cfg(test)]
pub(crate) mod fakes;
#[cfg(feature = "aws")]
pub mod handler;
pub mod inventory;
pub mod mapping;
pub mod plan;
mod plan_objects;
mod plan_tables;
#[cfg(test)]
mod plan_tests;
pub mod ports;
pub mod report;
pub mod runner;
#[cfg(test)]
mod runner_tests;
pub mod spec;
pub mod sql;
pub mod views;
