//! The Lambda entry point: settings and clients once, then one rotation step
//! per invocation.

use lambda_runtime::{service_fn, LambdaEvent};
use rotate_credentials::{Rotator, Settings};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakeops_shared::telemetry::init();
    let rotator = lakeops_shared::init_or_exit(async {
        let settings = Settings::from_process().map_err(|e| e.to_string())?;
        let sdk_config = lakeops_shared::aws::load_sdk_config().await;
        Rotator::new(&sdk_config, settings).map_err(|e| e.to_string())
    })
    .await;
    let rotator = &rotator;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        rotator.handle(event.payload).await
    }))
    .await
}
