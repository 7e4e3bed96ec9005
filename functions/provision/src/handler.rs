//! The Lambda handler: parse the request, load and validate the spec, run the stage.

use crate::aws::resolve_spec;
use crate::event::{Request, Response, StageFailure};
use crate::runner::{self, Ctx, Platform};
use crate::stages::Stage;
use lakeops_shared::Error;
use serde_json::Value;

/// Handle one invocation. Every failure names the stage it happened in.
pub async fn handle(platform: &Platform, event: Value) -> Result<Response, StageFailure> {
    let request: Request = serde_json::from_value(event)
        .map_err(|e| StageFailure::from(Error::invalid_input(format!("malformed request: {e}"))))?;
    let stage_name = request.stage.clone();
    run(platform, request)
        .await
        .map_err(|failure| failure.in_stage(&stage_name))
}

async fn run(platform: &Platform, request: Request) -> Result<Response, StageFailure> {
    let stage: Stage = request
        .stage
        .parse()
        .map_err(|e: String| StageFailure::from(Error::invalid_input(e)))?;
    let spec_value = resolve_spec(&platform.s3, &request.spec).await?;
    // Every stage validates: nothing is created from an invalid spec, even
    // when a stage is invoked alone.
    let spec = crate::spec::parse(&spec_value)?;
    platform.deployment.check(&spec).into_result()?;
    let ctx = Ctx::new(platform, request.mode, &spec, &request.outputs).await?;
    let result = runner::run(&ctx, stage).await?;
    tracing::info!(
        stage = %stage,
        mode = request.mode.as_str(),
        environment = %spec.environment,
        changes = ?result.changes.iter().map(|c| format!("{:?} {}", c.action, c.resource)).collect::<Vec<_>>(),
        ready = result.wait.is_none(),
        "stage done"
    );
    Ok(Response::build(request, result))
}
