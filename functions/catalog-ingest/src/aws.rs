//! The AWS adapter: S3 (ranged reads, listing), Glue, SNS.

use crate::api::{
    ByteRange, CrawlStart, Created, IngestApi, PartitionError, PartitionSpec, RangeRead, Updated,
};
use crate::format::Column;
use crate::glue_type::GlueType;
use crate::table::TableDefinition;
use aws_sdk_glue::types as glue;
use lakeops_shared::aws::aws_error;
use lakeops_shared::{Error, Result};
use std::collections::BTreeMap;

pub struct AwsIngest {
    pub s3: aws_sdk_s3::Client,
    pub glue: aws_sdk_glue::Client,
    pub sns: aws_sdk_sns::Client,
}

impl AwsIngest {
    /// Build every client once, from one SDK config.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            s3: lakeops_shared::aws::s3(config),
            glue: lakeops_shared::aws::glue(config),
            sns: lakeops_shared::aws::sns(config),
        }
    }
}

fn range_header(range: ByteRange) -> (String, u64) {
    match range {
        ByteRange::Prefix(n) => (format!("bytes=0-{}", n.max(1) - 1), n),
        ByteRange::Suffix(n) => (format!("bytes=-{n}"), n),
        ByteRange::Span { start, len } => {
            (format!("bytes={start}-{}", start + len.max(1) - 1), len)
        }
    }
}

/// The total size from `Content-Range: bytes 0-99/1234`.
pub fn total_from_content_range(header: &str) -> Option<u64> {
    header.rsplit_once('/')?.1.trim().parse().ok()
}

fn sd_input(table: &TableDefinition, location: &str) -> glue::StorageDescriptor {
    let columns = table
        .columns
        .iter()
        .map(|c| {
            glue::Column::builder()
                .name(&c.name)
                .r#type(c.ty.to_string())
                .build()
                .expect("name is set")
        })
        .collect::<Vec<_>>();
    glue::StorageDescriptor::builder()
        .set_columns(Some(columns))
        .location(location)
        .input_format(&table.input_format)
        .output_format(&table.output_format)
        .serde_info(
            glue::SerDeInfo::builder()
                .serialization_library(&table.serde_library)
                .set_parameters(Some(table.serde_parameters.clone().into_iter().collect()))
                .build(),
        )
        .build()
}

fn table_input(table: &TableDefinition) -> Result<glue::TableInput> {
    let partition_keys = table
        .partition_keys
        .iter()
        .map(|k| {
            glue::Column::builder()
                .name(k)
                .r#type("string")
                .build()
                .expect("name is set")
        })
        .collect::<Vec<_>>();
    glue::TableInput::builder()
        .name(&table.name)
        .table_type("EXTERNAL_TABLE")
        .set_parameters(Some(table.parameters.clone().into_iter().collect()))
        .set_partition_keys(Some(partition_keys))
        .storage_descriptor(sd_input(table, &table.location))
        .build()
        .map_err(|e| Error::terminal(format!("table input: {e}")))
}

fn table_from_glue(database: &str, table: &glue::Table) -> TableDefinition {
    let sd = table.storage_descriptor();
    let serde = sd.and_then(|s| s.serde_info());
    TableDefinition {
        database: database.to_string(),
        name: table.name().to_string(),
        location: sd
            .and_then(|s| s.location())
            .unwrap_or_default()
            .to_string(),
        columns: sd
            .map(|s| {
                s.columns()
                    .iter()
                    .map(|c| Column::new(c.name(), GlueType::parse(c.r#type().unwrap_or("string"))))
                    .collect()
            })
            .unwrap_or_default(),
        partition_keys: table
            .partition_keys()
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
        input_format: sd
            .and_then(|s| s.input_format())
            .unwrap_or_default()
            .to_string(),
        output_format: sd
            .and_then(|s| s.output_format())
            .unwrap_or_default()
            .to_string(),
        serde_library: serde
            .and_then(|s| s.serialization_library())
            .unwrap_or_default()
            .to_string(),
        serde_parameters: serde
            .and_then(|s| s.parameters())
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        parameters: table
            .parameters()
            .map(|p| {
                p.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default(),
        version_id: table.version_id().map(String::from),
    }
}

fn value_list(values: &[String]) -> glue::PartitionValueList {
    glue::PartitionValueList::builder()
        .set_values(Some(values.to_vec()))
        .build()
        .expect("values are set")
}

fn partition_errors(errors: &[glue::PartitionError]) -> Vec<PartitionError> {
    errors
        .iter()
        .map(|e| PartitionError {
            values: e.partition_values().to_vec(),
            code: e
                .error_detail()
                .and_then(|d| d.error_code())
                .unwrap_or("Unknown")
                .to_string(),
            message: e
                .error_detail()
                .and_then(|d| d.error_message())
                .unwrap_or_default()
                .to_string(),
        })
        .collect()
}

/// Hidden and marker files do not keep a partition alive.
fn is_data_key(prefix: &str, key: &str) -> bool {
    let rest = key.strip_prefix(prefix).unwrap_or(key);
    !key.ends_with('/')
        && !rest
            .split('/')
            .any(|s| s.starts_with('_') || s.starts_with('.'))
}

impl IngestApi for AwsIngest {
    async fn read(&self, bucket: &str, key: &str, range: ByteRange) -> Result<Option<RangeRead>> {
        let (header, max_len) = range_header(range);
        let response = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(header)
            .send()
            .await;
        let object = match response {
            Ok(object) => object,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            // An empty object has no byte 0: S3 answers 416.
            Err(e) if lakeops_shared::aws::error_code(&e) == Some("InvalidRange") => {
                return Ok(Some(RangeRead {
                    bytes: Vec::new(),
                    object_size: 0,
                }))
            }
            Err(e) => return Err(aws_error(format!("s3:GetObject s3://{bucket}/{key}"), e)),
        };
        let object_size = object
            .content_range()
            .and_then(total_from_content_range)
            .or_else(|| object.content_length().map(|l| l.max(0) as u64))
            .unwrap_or(0);
        // Read at most what was asked for, even if a server ignored the range.
        let mut body = object.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| Error::retryable(format!("s3:GetObject s3://{bucket}/{key} body: {e}")))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 >= max_len {
                break;
            }
        }
        if let ByteRange::Suffix(_) = range {
            if bytes.len() as u64 > max_len {
                bytes.drain(..bytes.len() - max_len as usize);
            }
        } else {
            bytes.truncate(max_len as usize);
        }
        Ok(Some(RangeRead { bytes, object_size }))
    }

    async fn prefix_has_data(&self, bucket: &str, prefix: &str) -> Result<bool> {
        let mut token: Option<String> = None;
        // Markers can hide data behind a page; a few pages are plenty.
        for _ in 0..10 {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| aws_error(format!("s3:ListObjectsV2 s3://{bucket}/{prefix}"), e))?;
            if page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .any(|k| is_data_key(prefix, k))
            {
                return Ok(true);
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => return Ok(false),
            }
        }
        // Not sure: keep the partition.
        Ok(true)
    }

    async fn get_table(&self, database: &str, name: &str) -> Result<Option<TableDefinition>> {
        match self
            .glue
            .get_table()
            .database_name(database)
            .name(name)
            .send()
            .await
        {
            Ok(output) => Ok(output.table().map(|t| table_from_glue(database, t))),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(aws_error(format!("glue:GetTable {database}.{name}"), e)),
        }
    }

    async fn create_table(&self, table: &TableDefinition) -> Result<Created> {
        let result = self
            .glue
            .create_table()
            .database_name(&table.database)
            .table_input(table_input(table)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Created::Created),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) =>
            {
                Ok(Created::AlreadyExists)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                Ok(Created::NoDatabase)
            }
            Err(e) => Err(aws_error(
                format!("glue:CreateTable {}.{}", table.database, table.name),
                e,
            )),
        }
    }

    async fn create_database(
        &self,
        name: &str,
        location_uri: &str,
        description: &str,
    ) -> Result<()> {
        let input = glue::DatabaseInput::builder()
            .name(name)
            .location_uri(location_uri)
            .description(description)
            .build()
            .map_err(|e| Error::terminal(format!("glue:CreateDatabase {name}: {e}")))?;
        match self
            .glue
            .create_database()
            .database_input(input)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(aws_error(format!("glue:CreateDatabase {name}"), e)),
        }
    }

    async fn update_table(&self, table: &TableDefinition) -> Result<Updated> {
        let result = self
            .glue
            .update_table()
            .database_name(&table.database)
            .table_input(table_input(table)?)
            // Only if nobody changed the table since we read it.
            .set_version_id(table.version_id.clone())
            // Keep the previous schema as a table version.
            .skip_archive(false)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Updated::Updated),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_concurrent_modification_exception()) =>
            {
                Ok(Updated::Conflict)
            }
            Err(e) => Err(aws_error(
                format!("glue:UpdateTable {}.{}", table.database, table.name),
                e,
            )),
        }
    }

    async fn batch_get_partitions(
        &self,
        database: &str,
        table: &str,
        values: &[Vec<String>],
    ) -> Result<Vec<Vec<String>>> {
        let output = self
            .glue
            .batch_get_partition()
            .database_name(database)
            .table_name(table)
            .set_partitions_to_get(Some(values.iter().map(|v| value_list(v)).collect()))
            .send()
            .await
            .map_err(|e| aws_error(format!("glue:BatchGetPartition {database}.{table}"), e))?;
        // Unprocessed keys count as missing: creating them then reports
        // AlreadyExists, which is success.
        Ok(output
            .partitions()
            .iter()
            .map(|p| p.values().to_vec())
            .collect())
    }

    async fn batch_create_partitions(
        &self,
        table: &TableDefinition,
        partitions: &[PartitionSpec],
    ) -> Result<Vec<PartitionError>> {
        let inputs = partitions
            .iter()
            .map(|p| {
                glue::PartitionInput::builder()
                    .set_values(Some(p.values.clone()))
                    .storage_descriptor(sd_input(table, &p.location))
                    .build()
            })
            .collect::<Vec<_>>();
        let output = self
            .glue
            .batch_create_partition()
            .database_name(&table.database)
            .table_name(&table.name)
            .set_partition_input_list(Some(inputs))
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    format!(
                        "glue:BatchCreatePartition {}.{}",
                        table.database, table.name
                    ),
                    e,
                )
            })?;
        Ok(partition_errors(output.errors()))
    }

    async fn batch_delete_partitions(
        &self,
        database: &str,
        table: &str,
        values: &[Vec<String>],
    ) -> Result<Vec<PartitionError>> {
        let result = self
            .glue
            .batch_delete_partition()
            .database_name(database)
            .table_name(table)
            .set_partitions_to_delete(Some(values.iter().map(|v| value_list(v)).collect()))
            .send()
            .await;
        match result {
            Ok(output) => Ok(partition_errors(output.errors())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                Ok(values
                    .iter()
                    .map(|v| PartitionError {
                        values: v.clone(),
                        code: "EntityNotFoundException".into(),
                        message: "the table does not exist".into(),
                    })
                    .collect())
            }
            Err(e) => Err(aws_error(
                format!("glue:BatchDeletePartition {database}.{table}"),
                e,
            )),
        }
    }

    async fn start_crawler(&self, name: &str) -> Result<CrawlStart> {
        match self.glue.start_crawler().name(name).send().await {
            Ok(_) => Ok(CrawlStart::Started),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_crawler_running_exception()) =>
            {
                Ok(CrawlStart::AlreadyRunning)
            }
            Err(e) => Err(aws_error(format!("glue:StartCrawler {name}"), e)),
        }
    }

    async fn publish_alert(&self, topic_arn: &str, subject: &str, message: &str) -> Result<()> {
        // SNS subjects are at most 100 ASCII characters.
        let subject: String = subject
            .chars()
            .filter(|c| c.is_ascii() && !c.is_control())
            .take(100)
            .collect();
        self.sns
            .publish()
            .topic_arn(topic_arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map_err(|e| aws_error("sns:Publish", e))?;
        Ok(())
    }
}

impl crate::spec_source::SpecStore for AwsIngest {
    async fn read_spec(&self, bucket: &str, key: &str) -> Result<Option<String>> {
        crate::settings::read_spec_from_s3(&self.s3, bucket, key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_and_headers() {
        assert_eq!(total_from_content_range("bytes 0-99/1234"), Some(1234));
        assert_eq!(total_from_content_range("bytes */1234"), Some(1234));
        assert_eq!(total_from_content_range("garbage"), None);
        assert_eq!(range_header(ByteRange::Prefix(100)).0, "bytes=0-99");
        assert_eq!(range_header(ByteRange::Suffix(8)).0, "bytes=-8");
        assert_eq!(
            range_header(ByteRange::Span { start: 10, len: 5 }).0,
            "bytes=10-14"
        );
    }

    #[test]
    fn markers_do_not_keep_partitions() {
        assert!(is_data_key("t/dt=1/", "t/dt=1/a.csv"));
        assert!(!is_data_key("t/dt=1/", "t/dt=1/_SUCCESS"));
        assert!(!is_data_key("t/dt=1/", "t/dt=1/.a.crc"));
        assert!(!is_data_key("t/dt=1/", "t/dt=1/_temporary/0/a.csv"));
        assert!(!is_data_key("t/dt=1/", "t/dt=1/"));
    }
}
