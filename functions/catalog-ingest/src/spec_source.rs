//! Which lake spec a container catalogues with, and when it reads it again.
//!
//! - An inline spec (`LAKE_SPEC`) is fixed.
//! - A spec at `LAKE_SPEC_URI` is read on the first batch and again after
//!   [`UPLOADED_SPEC_REFRESH`], so an upload reaches warm containers within
//!   a minute.
//! - While nothing is at `LAKE_SPEC_URI` (a stack just deployed), the default
//!   spec derived from the template is used, and the URI is tried again on
//!   every batch: the first batch after an upload uses the uploaded spec,
//!   which replaces the default.
//!
//! A read that fails later keeps the spec in use (logged); only a first read
//! that fails fails the batch (there is nothing to catalogue with).

use crate::batch::IngestConfig;
use crate::settings::{self, Settings, SpecSource};
use lakeops_shared::{Error, Result};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a container trusts a spec it read from `LAKE_SPEC_URI`.
pub const UPLOADED_SPEC_REFRESH: Duration = Duration::from_secs(60);

/// Where the spec in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Inline,
    Uploaded,
    Default,
}

/// Reads the object at `LAKE_SPEC_URI`; `None` when there is none.
pub trait SpecStore: Sync {
    fn read_spec(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
}

/// The spec in use, where it came from and when it was read.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Arc<IngestConfig>,
    pub origin: Origin,
    pub read_at: Instant,
}

impl Loaded {
    fn is_due(&self, now: Instant) -> bool {
        match self.origin {
            Origin::Inline => false,
            Origin::Default => true,
            Origin::Uploaded => now.duration_since(self.read_at) >= UPLOADED_SPEC_REFRESH,
        }
    }
}

/// Read the spec from where the settings say, falling back to the default.
pub async fn load<S: SpecStore>(store: &S, settings: &Settings, now: Instant) -> Result<Loaded> {
    let (spec_text, origin) = match &settings.spec {
        SpecSource::Inline(text) => (Some(text.clone()), Origin::Inline),
        SpecSource::S3 { bucket, key } => {
            let text = store
                .read_spec(bucket, key)
                .await
                .map_err(|e| e.context("read the lake spec"))?;
            (text, Origin::Uploaded)
        }
    };
    let config = match (spec_text, &settings.default_spec) {
        (Some(text), _) => settings::config(settings, &text)?,
        (None, Some(default)) => {
            let config = settings::config_of(settings, default.clone())?;
            return Ok(Loaded {
                config: Arc::new(config),
                origin: Origin::Default,
                read_at: now,
            });
        }
        (None, None) => {
            return Err(Error::retryable(
                "LAKE_SPEC_URI: no lake spec there yet, and no default spec (DEFAULT_LAKE_LAYERS) is set",
            ))
        }
    };
    Ok(Loaded {
        config: Arc::new(config),
        origin,
        read_at: now,
    })
}

/// The spec to catalogue this batch with: the one in `slot`, read again
/// when due.
pub async fn current<S: SpecStore>(
    store: &S,
    settings: &Settings,
    slot: &mut Option<Loaded>,
    now: Instant,
) -> Result<Arc<IngestConfig>> {
    match slot {
        None => {
            let loaded = load(store, settings, now).await?;
            tracing::info!(origin = ?loaded.origin, "lake spec loaded");
            Ok(slot.insert(loaded).config.clone())
        }
        Some(loaded) if loaded.is_due(now) => match load(store, settings, now).await {
            Ok(fresh) => {
                if fresh.origin != loaded.origin {
                    tracing::info!(from = ?loaded.origin, to = ?fresh.origin, "lake spec source changed");
                }
                *loaded = fresh;
                Ok(loaded.config.clone())
            }
            Err(error) => {
                tracing::warn!(error = %error, "reading the lake spec again failed; keeping the one in use");
                loaded.read_at = now;
                Ok(loaded.config.clone())
            }
        },
        Some(loaded) => Ok(loaded.config.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakeops_shared::settings::Env;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Store {
        text: Mutex<Option<String>>,
        reads: Mutex<u32>,
        fail: Mutex<bool>,
    }

    impl SpecStore for Store {
        async fn read_spec(&self, _bucket: &str, _key: &str) -> Result<Option<String>> {
            *self.reads.lock().unwrap() += 1;
            if *self.fail.lock().unwrap() {
                return Err(Error::retryable("s3:GetObject: SlowDown"));
            }
            Ok(self.text.lock().unwrap().clone())
        }
    }

    fn settings() -> Settings {
        let layers = "raw=lake-raw,schematized=lake-schematized,filtered=lake-filtered,emergency=lake-emergency,curated=lake-curated";
        let vars = [
            ("LAKE_SPEC_URI", "s3://specs/lake.json"),
            ("DEFAULT_LAKE_LAYERS", layers),
            ("DEFAULT_ATHENA_RESULTS_BUCKET", "lake-athena"),
            ("LAKEOPS_ENVIRONMENT", "dev"),
            ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
        ];
        settings::read(Env::from_map(
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ))
        .unwrap()
    }

    fn database(config: &IngestConfig) -> &str {
        &config.spec.layer("raw").unwrap().database
    }

    #[tokio::test]
    async fn the_default_spec_serves_until_one_is_uploaded() {
        let (store, settings) = (Store::default(), settings());
        let mut slot = None;
        let start = Instant::now();
        let config = current(&store, &settings, &mut slot, start).await.unwrap();
        assert_eq!(database(&config), "lakeops_dev_raw");
        assert_eq!(slot.as_ref().unwrap().origin, Origin::Default);
        // The upload is seen on the next batch, however soon.
        *store.text.lock().unwrap() = Some(crate::test_support::spec_json().to_string());
        let config = current(&store, &settings, &mut slot, start).await.unwrap();
        assert_eq!(database(&config), "lake_raw");
        assert_eq!(slot.as_ref().unwrap().origin, Origin::Uploaded);
        assert_eq!(*store.reads.lock().unwrap(), 2);
        // An uploaded spec is trusted for a minute, then read again.
        current(
            &store,
            &settings,
            &mut slot,
            start + Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert_eq!(*store.reads.lock().unwrap(), 2);
        current(&store, &settings, &mut slot, start + UPLOADED_SPEC_REFRESH)
            .await
            .unwrap();
        assert_eq!(*store.reads.lock().unwrap(), 3);
    }

    #[tokio::test]
    async fn a_failed_read_keeps_the_spec_in_use_but_a_first_one_fails() {
        let (store, settings) = (Store::default(), settings());
        *store.fail.lock().unwrap() = true;
        let mut slot = None;
        let now = Instant::now();
        let error = current(&store, &settings, &mut slot, now)
            .await
            .unwrap_err();
        assert!(
            error.message.contains("read the lake spec"),
            "{}",
            error.message
        );
        *store.fail.lock().unwrap() = false;
        current(&store, &settings, &mut slot, now).await.unwrap();
        *store.fail.lock().unwrap() = true;
        let config = current(&store, &settings, &mut slot, now).await.unwrap();
        assert_eq!(database(&config), "lakeops_dev_raw");
    }

    #[tokio::test]
    async fn without_a_default_a_missing_spec_is_an_error() {
        let mut settings = settings();
        settings.default_spec = None;
        let error = load(&Store::default(), &settings, Instant::now())
            .await
            .unwrap_err();
        assert!(
            error.message.contains("DEFAULT_LAKE_LAYERS"),
            "{}",
            error.message
        );
    }
}
