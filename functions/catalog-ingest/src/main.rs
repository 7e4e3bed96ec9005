use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use catalog_ingest::aws::AwsIngest;
use catalog_ingest::settings::{self, Settings, SpecSource};
use catalog_ingest::{CatalogCache, IngestConfig};
use lakeops_shared::settings::Env;
use lambda_runtime::{service_fn, LambdaEvent};
use tokio::sync::OnceCell;

/// Read and validate the lake spec.
async fn load_config(api: &AwsIngest, settings: &Settings) -> lakeops_shared::Result<IngestConfig> {
    let text = match &settings.spec {
        SpecSource::Inline(text) => text.clone(),
        SpecSource::S3 { bucket, key } => settings::read_spec_from_s3(&api.s3, bucket, key).await?,
    };
    settings::config(settings, &text)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakeops_shared::telemetry::init();
    let (api, settings) = lakeops_shared::init_or_exit(async {
        let settings = settings::read(Env::from_process()).map_err(|e| e.to_string())?;
        let sdk = lakeops_shared::aws::load_sdk_config().await;
        Ok::<_, String>((AwsIngest::new(&sdk), settings))
    })
    .await;
    // The spec is read once, on the first batch rather than at init: S3 sends a
    // test notification as soon as the buckets are wired to the queue, which
    // can be before the spec is uploaded; that batch must not kill the process.
    let config = OnceCell::new();
    // What Glue confirmed, kept across the invocations of this container so
    // that a batch bringing nothing new to a table makes no Glue call for it.
    // Lambda hands a container one batch at a time: the lock is never contended.
    let cache = tokio::sync::Mutex::new(CatalogCache::new(settings.cache_ttl));
    let (api, settings, config, cache) = (&api, &settings, &config, &cache);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let config = match config.get_or_try_init(|| load_config(api, settings)).await {
            Ok(config) => config,
            Err(_) if catalog_ingest::batch::only_test_events(&event.payload) => {
                return Ok(SqsBatchResponse::default());
            }
            // The whole batch is retried: nothing can be catalogued without the spec.
            Err(error) => {
                return Err(lambda_runtime::Diagnostic::from(
                    error.context("read the lake spec"),
                ))
            }
        };
        let mut cache = cache.lock().await;
        let (response, _report) =
            catalog_ingest::handle_batch_cached(api, config, &mut cache, event.payload).await;
        Ok::<SqsBatchResponse, lambda_runtime::Diagnostic>(response)
    }))
    .await
}
