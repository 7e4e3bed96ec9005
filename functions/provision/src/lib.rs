//! `provision`: builds a Databricks on AWS platform from one JSON spec, one
//! idempotent stage per invocation. Step Functions runs the stages in order,
//! waits between them and retries transient faults (statemachines/provision.asl.json).

#[cfg(feature = "aws")]
pub mod asl;
#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
pub mod deployment;
#[cfg(feature = "aws")]
pub mod event;
#[cfg(feature = "aws")]
pub mod handler;
#[cfg(feature = "aws")]
pub mod names;
#[cfg(feature = "aws")]
pub mod plan;
#[cfg(feature = "aws")]
pub mod resources;
#[cfg(feature = "aws")]
pub mod runner;
// Pure (built without the `aws` feature for fuzz/).
pub mod spec;
#[cfg(feature = "aws")]
pub mod stages;

#[cfg(feature = "aws")]
pub use handler::handle;
#[cfg(feature = "aws")]
pub use runner::Platform;

#[cfg(feature = "aws")]
use lakeops_shared::databricks::{DatabricksConnector, DatabricksSettings};
#[cfg(feature = "aws")]
use lakeops_shared::settings::{Env, SettingsError};

/// Build the shared clients from the environment: `LAKEOPS_ENVIRONMENT` (this
/// deployment's environment), `DATABRICKS_*` (see `DatabricksSettings`),
/// `PAT_ROTATION_FUNCTION_ARN` (optional), and the AWS SDK's own.
#[cfg(feature = "aws")]
pub async fn platform_from_env(
    sdk: &aws_config::SdkConfig,
    mut env: Env,
) -> Result<Platform, String> {
    let environment = env.lakeops_environment();
    let databricks = DatabricksSettings::read(&mut env);
    let pat_rotation_function_arn: Option<String> = env.optional("PAT_ROTATION_FUNCTION_ARN");
    env.finish().map_err(|e: SettingsError| e.to_string())?;
    Ok(Platform {
        deployment: deployment::Deployment { environment },
        databricks: DatabricksConnector::new(databricks).map_err(|e| e.to_string())?,
        secrets: lakeops_shared::aws::secretsmanager(sdk),
        s3: lakeops_shared::aws::s3(sdk),
        sdk: sdk.clone(),
        pat_rotation_function_arn,
        spec_clients: Default::default(),
    })
}
