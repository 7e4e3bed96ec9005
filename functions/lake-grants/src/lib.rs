//! lake-grants: keeps Lake Formation in line with a declared grants policy.
//!
//! It reads the data lake settings, every grant (ListPermissions, paged) and
//! the LF-tags, computes the difference from the policy and — in `apply`
//! mode — makes it: settings by read-modify-write, grants and revokes in
//! batches of at most 20 with each failure checked, concurrent modifications
//! retried with jitter. Only grants of principals the policy manages are
//! revoked, and never those of the identity the function runs as.

// Pure (built without the `aws` feature for fuzz/).
pub mod model;
pub mod policy;

#[cfg(feature = "aws")]
pub mod event;
#[cfg(feature = "aws")]
pub mod handler;
#[cfg(feature = "aws")]
pub mod lake;
#[cfg(feature = "aws")]
pub mod plan;

#[cfg(all(test, feature = "aws"))]
mod admins_tests;
#[cfg(all(test, feature = "aws"))]
mod fake;
#[cfg(all(test, feature = "aws"))]
mod tests;

#[cfg(feature = "aws")]
pub use handler::{handle, Config, Mode};
#[cfg(feature = "aws")]
pub use lake::{AwsLake, Lake};
