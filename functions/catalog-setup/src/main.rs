use catalog_setup::aws::AwsCatalog;
use lakeops_shared::retry::RetryPolicy;
use lakeops_shared::settings::Env;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakeops_shared::telemetry::init();
    let (catalog, environment) = lakeops_shared::init_or_exit(async {
        let mut env = Env::from_process();
        let environment = env.lakeops_environment();
        env.finish().map_err(|e| e.to_string())?;
        let config = lakeops_shared::aws::load_sdk_config().await;
        Ok::<_, String>((AwsCatalog::new(&config), environment))
    })
    .await;
    let (catalog, environment) = (&catalog, environment.as_str());
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            catalog_setup::handle(catalog, event.payload, RetryPolicy::default(), environment).await
        },
    ))
    .await
}
