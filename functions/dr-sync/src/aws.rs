//! The AWS adapters: the run store in S3 and the active-workspace pointer in SSM
//! Parameter Store.
//!
//! Layout under the state bucket, per DR pair (`dr/<name>/`): `runs/<run>/state.json`
//! (plan, queues, failures), `runs/<run>/report.json`, `latest-report.json`, and
//! `clone-ledger.json`.

use aws_sdk_s3::primitives::ByteStream;
use lakeops_shared::aws::{aws_error, error_code};
use lakeops_shared::Error;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::failover::ActivePointer;
use crate::ports::{CloneLedger, FailoverJobs, PointerStore, Result, RunState, RunStore};
use crate::report::Report;

pub struct S3RunStore {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    /// `dr/<name>`
    pub prefix: String,
}

impl S3RunStore {
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str, pair: &str) -> S3RunStore {
        S3RunStore {
            s3,
            bucket: bucket.to_string(),
            prefix: format!("dr/{pair}"),
        }
    }

    async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(object) => {
                let bytes = object
                    .body
                    .collect()
                    .await
                    .map_err(|e| {
                        Error::retryable(format!("reading s3://{}/{key}: {e}", self.bucket))
                    })?
                    .into_bytes();
                serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                    Error::terminal(format!(
                        "s3://{}/{key} is not what dr-sync wrote: {e}",
                        self.bucket
                    ))
                })
            }
            Err(e) if error_code(&e) == Some("NoSuchKey") => Ok(None),
            Err(e) => Err(aws_error(format!("reading s3://{}/{key}", self.bucket), e)),
        }
    }

    async fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<String> {
        let body = serde_json::to_vec(value)
            .map_err(|e| Error::terminal(format!("encoding {key}: {e}")))?;
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| aws_error(format!("writing s3://{}/{key}", self.bucket), e))?;
        Ok(format!("s3://{}/{key}", self.bucket))
    }

    fn run_key(&self, run: &str, file: &str) -> String {
        format!("{}/runs/{run}/{file}", self.prefix)
    }
}

impl RunStore for S3RunStore {
    async fn load(&self, run: &str) -> Result<Option<RunState>> {
        self.get(&self.run_key(run, "state.json")).await
    }

    async fn save(&self, run: &str, state: &RunState) -> Result<()> {
        self.put(&self.run_key(run, "state.json"), state)
            .await
            .map(|_| ())
    }

    async fn put_report(&self, run: &str, report: &Report) -> Result<String> {
        let uri = self.put(&self.run_key(run, "report.json"), report).await?;
        self.put(&format!("{}/latest-report.json", self.prefix), report)
            .await?;
        Ok(uri)
    }

    fn state_uri(&self, run: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.run_key(run, "state.json"))
    }

    async fn load_ledger(&self) -> Result<CloneLedger> {
        Ok(self
            .get(&format!("{}/clone-ledger.json", self.prefix))
            .await?
            .unwrap_or_default())
    }

    async fn load_failover_jobs(&self, generation: u64) -> Result<Option<FailoverJobs>> {
        self.get(&format!("{}/failover-{generation}-jobs.json", self.prefix))
            .await
    }

    async fn save_failover_jobs(&self, generation: u64, jobs: &FailoverJobs) -> Result<()> {
        self.put(
            &format!("{}/failover-{generation}-jobs.json", self.prefix),
            jobs,
        )
        .await
        .map(|_| ())
    }

    async fn save_ledger(&self, ledger: &CloneLedger) -> Result<()> {
        self.put(&format!("{}/clone-ledger.json", self.prefix), ledger)
            .await
            .map(|_| ())
    }
}

pub struct SsmPointer {
    pub ssm: aws_sdk_ssm::Client,
    pub name: String,
}

impl PointerStore for SsmPointer {
    async fn read(&self) -> Result<Option<ActivePointer>> {
        match self.ssm.get_parameter().name(&self.name).send().await {
            Ok(out) => {
                let text = out.parameter().and_then(|p| p.value()).unwrap_or_default();
                serde_json::from_str(text).map(Some).map_err(|e| {
                    Error::terminal(format!(
                        "parameter {} is not an active-workspace pointer: {e}",
                        self.name
                    ))
                })
            }
            Err(e) if error_code(&e) == Some("ParameterNotFound") => Ok(None),
            Err(e) => Err(aws_error(format!("reading parameter {}", self.name), e)),
        }
    }

    async fn write(&self, pointer: &ActivePointer) -> Result<()> {
        let value = serde_json::to_string(pointer).map_err(|e| Error::terminal(e.to_string()))?;
        self.ssm
            .put_parameter()
            .name(&self.name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| aws_error(format!("writing parameter {}", self.name), e))?;
        Ok(())
    }
}
