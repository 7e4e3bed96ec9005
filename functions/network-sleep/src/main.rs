use lakeops_shared::settings::Env;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakeops_shared::telemetry::init();
    let app = lakeops_shared::init_or_exit(async {
        let sdk = lakeops_shared::aws::load_sdk_config().await;
        let mut env = Env::from_process();
        let app = network_sleep::build(&mut env, &sdk).map_err(|e| e.to_string())?;
        env.finish().map_err(|e| e.to_string())?;
        Ok::<_, String>(app)
    })
    .await;
    let app = &app;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move { app.handle(event.payload).await },
    ))
    .await
}
