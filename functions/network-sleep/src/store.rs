//! The restore record store: one JSON object per slot in S3 (see `record`).

use crate::record::RestoreRecord;
use lakeops_shared::aws::aws_error;
use lakeops_shared::Error;

#[allow(async_fn_in_trait)]
pub trait RecordStore {
    async fn list(&self, vpc_id: &str, schedule: &str) -> Result<Vec<RestoreRecord>, Error>;
    async fn put(&self, record: &RestoreRecord) -> Result<(), Error>;
}

#[derive(Clone)]
pub struct S3RecordStore {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    pub prefix: String,
}

impl S3RecordStore {
    pub fn folder(&self, vpc_id: &str, schedule: &str) -> String {
        format!("{}{}/{}/", self.prefix, vpc_id, schedule)
    }

    pub fn key(&self, record: &RestoreRecord) -> String {
        format!(
            "{}{}.json",
            self.folder(&record.vpc_id, &record.schedule),
            record.slot
        )
    }
}

impl RecordStore for S3RecordStore {
    async fn list(&self, vpc_id: &str, schedule: &str) -> Result<Vec<RestoreRecord>, Error> {
        let folder = self.folder(vpc_id, schedule);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&folder)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(|e| {
                    aws_error(format!("ListObjectsV2 s3://{}/{folder}", self.bucket), e)
                })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| k.ends_with(".json"))
                    .map(String::from),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        let mut records = Vec::with_capacity(keys.len());
        for key in keys {
            let object = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| aws_error(format!("GetObject s3://{}/{key}", self.bucket), e))?;
            let bytes = object
                .body
                .collect()
                .await
                .map_err(|e| Error::retryable(format!("reading s3://{}/{key}: {e}", self.bucket)))?
                .into_bytes();
            let text = String::from_utf8_lossy(&bytes);
            let record = RestoreRecord::parse(&text, &key)?;
            if record.vpc_id == vpc_id && record.schedule == schedule {
                records.push(record);
            }
        }
        records.sort_by(|a, b| a.slot.cmp(&b.slot));
        Ok(records)
    }

    async fn put(&self, record: &RestoreRecord) -> Result<(), Error> {
        let key = self.key(record);
        let body = serde_json::to_vec_pretty(record)
            .map_err(|e| Error::terminal(format!("encoding {key}: {e}")))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(body.into())
            .send()
            .await
            .map_err(|e| aws_error(format!("PutObject s3://{}/{key}", self.bucket), e))?;
        Ok(())
    }
}
