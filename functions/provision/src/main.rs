use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakeops_shared::telemetry::init();
    let platform = lakeops_shared::init_or_exit(async {
        let sdk = lakeops_shared::aws::load_sdk_config().await;
        provision::platform_from_env(&sdk, lakeops_shared::settings::Env::from_process()).await
    })
    .await;
    let platform = &platform;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        provision::handle(platform, event.payload).await
    }))
    .await
}
