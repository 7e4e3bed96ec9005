use catalog_setup::aws::AwsCatalog;
use lakeops_shared::retry::RetryPolicy;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakeops_shared::telemetry::init();
    let catalog = lakeops_shared::init_or_exit(async {
        let config = lakeops_shared::aws::load_sdk_config().await;
        Ok::<_, std::convert::Infallible>(AwsCatalog::new(&config))
    })
    .await;
    let catalog = &catalog;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            catalog_setup::handle(catalog, event.payload, RetryPolicy::default()).await
        },
    ))
    .await
}
