//! lakeops-shared: the one place for settings, AWS clients, the Databricks
//! client, the error taxonomy, retries, telemetry and secrets.

#[cfg(feature = "aws")]
pub mod aws;
pub mod credentials;
pub mod databricks;
pub mod error;
pub mod retry;
pub mod s3_uri;
pub mod secret;
pub mod settings;
pub mod spec;
pub mod telemetry;
pub mod tls;
pub mod validate;

pub use error::{Error, ErrorKind, Result};
pub use secret::Secret;

/// Finish a function's init: on failure, log one clear message (every
/// missing setting at once) and exit, instead of panicking with a backtrace.
pub async fn init_or_exit<S, E: std::fmt::Display>(
    init: impl std::future::Future<Output = Result<S, E>>,
) -> S {
    match init.await {
        Ok(state) => state,
        Err(error) => {
            tracing::error!(error = %error, "init failed");
            eprintln!("lakeops init failed: {error}");
            std::process::exit(1);
        }
    }
}
