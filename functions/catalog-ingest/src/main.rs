use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use catalog_ingest::aws::AwsIngest;
use catalog_ingest::settings;
use catalog_ingest::spec_source::{self, Loaded};
use catalog_ingest::CatalogCache;
use lakeops_shared::settings::Env;
use lambda_runtime::{service_fn, LambdaEvent};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakeops_shared::telemetry::init();
    let (api, settings) = lakeops_shared::init_or_exit(async {
        let settings = settings::read(Env::from_process()).map_err(|e| e.to_string())?;
        let sdk = lakeops_shared::aws::load_sdk_config().await;
        Ok::<_, String>((AwsIngest::new(&sdk), settings))
    })
    .await;
    // The spec is read on the first batch rather than at init: S3 sends a
    // test notification as soon as the buckets are wired to the queue, which
    // can be before the spec is uploaded; that batch must not kill the
    // process. It is read again as `spec_source` says (an upload replaces
    // the default spec of a fresh stack on the next batch).
    let spec: tokio::sync::Mutex<Option<Loaded>> = tokio::sync::Mutex::new(None);
    // What Glue confirmed, kept across the invocations of this container so
    // that a batch bringing nothing new to a table makes no Glue call for it.
    // Lambda hands a container one batch at a time: the locks are never contended.
    let cache = tokio::sync::Mutex::new(CatalogCache::new(settings.cache_ttl));
    let (api, settings, spec, cache) = (&api, &settings, &spec, &cache);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let loaded = {
            let mut slot = spec.lock().await;
            spec_source::current(api, settings, &mut slot, Instant::now()).await
        };
        let config = match loaded {
            Ok(config) => config,
            Err(_) if catalog_ingest::batch::only_test_events(&event.payload) => {
                return Ok(SqsBatchResponse::default());
            }
            // The whole batch is retried: nothing can be catalogued without a spec.
            Err(error) => return Err(lambda_runtime::Diagnostic::from(error)),
        };
        let mut cache = cache.lock().await;
        let (response, _report) =
            catalog_ingest::handle_batch_cached(api, &config, &mut cache, event.payload).await;
        Ok::<SqsBatchResponse, lambda_runtime::Diagnostic>(response)
    }))
    .await
}
