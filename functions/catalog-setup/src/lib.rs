//! catalog-setup: converges the lake spec. It creates or updates the Glue
//! database of each layer, one fallback crawler per layer (for the formats
//! catalog-ingest does not parse), the Lake Formation data location of each
//! layer bucket, and the Athena workgroup of each user profile.
//!
//! `plan` reports what `apply` would do; `apply` does it. Both are idempotent:
//! a converged lake plans nothing, and setup never deletes.

pub mod api;
pub mod aws;
pub mod desired;
pub mod handler;
pub mod plan;
pub mod scope;

#[cfg(test)]
mod test_support;

pub use handler::{handle, Mode, SetupRequest, SetupResponse};
