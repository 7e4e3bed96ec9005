use lake_grants::{handle, AwsLake, Config};
use lakeops_shared::retry::RetryPolicy;
use lakeops_shared::settings::Env;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

async fn init() -> Result<(AwsLake, Config), lakeops_shared::settings::SettingsError> {
    let mut env = Env::from_process();
    let default_policy_uri: Option<String> = env.optional("POLICY_URI");
    if let Some(uri) = &default_policy_uri {
        if lake_grants::lake::parse_s3_uri(uri).is_none() {
            env.problem("POLICY_URI", "is not an s3://bucket/key URI");
        }
    }
    env.finish()?;
    let sdk = lakeops_shared::aws::load_sdk_config().await;
    Ok((
        AwsLake::new(&sdk),
        Config {
            default_policy_uri,
            retry: RetryPolicy::default(),
        },
    ))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakeops_shared::telemetry::init();
    let (lake, config) = lakeops_shared::init_or_exit(init()).await;
    let (lake, config) = (&lake, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle(lake, config, event.payload).await
    }))
    .await
}
