use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use catalog_ingest::aws::AwsIngest;
use catalog_ingest::settings::{self, SpecSource};
use lakeops_shared::settings::Env;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakeops_shared::telemetry::init();
    let (api, config) = lakeops_shared::init_or_exit(async {
        let settings = settings::read(Env::from_process()).map_err(|e| e.to_string())?;
        let sdk = lakeops_shared::aws::load_sdk_config().await;
        let api = AwsIngest::new(&sdk);
        let text = match &settings.spec {
            SpecSource::Inline(text) => text.clone(),
            SpecSource::S3 { bucket, key } => settings::read_spec_from_s3(&api.s3, bucket, key)
                .await
                .map_err(|e| e.to_string())?,
        };
        let config = settings::config(&settings, &text).map_err(|e| e.to_string())?;
        Ok::<_, String>((api, config))
    })
    .await;
    let (api, config) = (&api, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let (response, _report) = catalog_ingest::handle_batch(api, config, event.payload).await;
        Ok::<SqsBatchResponse, lambda_runtime::Error>(response)
    }))
    .await
}
