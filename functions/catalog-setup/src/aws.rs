//! The AWS adapter: Glue, Lake Formation, Athena and S3 (for a spec_uri).

use crate::api::{CatalogApi, Created};
use crate::desired::{
    CrawlerConfig, DatabaseConfig, LocationConfig, RecrawlBehavior, WorkgroupConfig,
};
use aws_sdk_athena::types as athena;
use aws_sdk_glue::types as glue;
use lakeops_shared::aws::aws_error;
use lakeops_shared::{Error, Result};

/// Where Lake Formation's service-linked role lives; a location registered
/// with it counts as "no role" in the spec.
const LAKE_FORMATION_SERVICE_ROLE: &str = "/aws-service-role/lakeformation.amazonaws.com/";

/// The profile tag of each workgroup.
pub const PROFILE_TAG: &str = "lakeops:profile";

pub struct AwsCatalog {
    pub s3: aws_sdk_s3::Client,
    pub glue: aws_sdk_glue::Client,
    pub lakeformation: aws_sdk_lakeformation::Client,
    pub athena: aws_sdk_athena::Client,
}

impl AwsCatalog {
    /// Build every client once, from one SDK config.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            s3: lakeops_shared::aws::s3(config),
            glue: lakeops_shared::aws::glue(config),
            lakeformation: lakeops_shared::aws::lakeformation(config),
            athena: lakeops_shared::aws::athena(config),
        }
    }
}

fn database_input(database: &DatabaseConfig) -> Result<glue::DatabaseInput> {
    glue::DatabaseInput::builder()
        .name(&database.name)
        .description(&database.description)
        .location_uri(&database.location_uri)
        .build()
        .map_err(|e| Error::terminal(format!("database input: {e}")))
}

fn crawler_targets(crawler: &CrawlerConfig) -> glue::CrawlerTargets {
    let target = glue::S3Target::builder()
        .path(&crawler.s3_path)
        .set_exclusions(Some(crawler.exclusions.clone()))
        .set_event_queue_arn(crawler.event_queue_arn.clone())
        .set_dlq_event_queue_arn(crawler.dlq_arn.clone())
        .build();
    glue::CrawlerTargets::builder().s3_targets(target).build()
}

fn schema_change_policy(crawler: &CrawlerConfig) -> glue::SchemaChangePolicy {
    glue::SchemaChangePolicy::builder()
        .update_behavior(glue::UpdateBehavior::from(crawler.update_behavior.as_str()))
        .delete_behavior(glue::DeleteBehavior::from(crawler.delete_behavior.as_str()))
        .build()
}

fn recrawl_policy(crawler: &CrawlerConfig) -> glue::RecrawlPolicy {
    glue::RecrawlPolicy::builder()
        .recrawl_behavior(glue::RecrawlBehavior::from(crawler.recrawl.as_str()))
        .build()
}

fn crawler_from_glue(crawler: &glue::Crawler) -> CrawlerConfig {
    let target = crawler.targets().and_then(|t| t.s3_targets().first());
    let configuration = crawler
        .configuration()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or(serde_json::Value::Null);
    CrawlerConfig {
        name: crawler.name().unwrap_or_default().to_string(),
        role: crawler.role().unwrap_or_default().to_string(),
        database: crawler.database_name().unwrap_or_default().to_string(),
        s3_path: target
            .and_then(|t| t.path())
            .unwrap_or_default()
            .to_string(),
        event_queue_arn: target.and_then(|t| t.event_queue_arn()).map(String::from),
        dlq_arn: target
            .and_then(|t| t.dlq_event_queue_arn())
            .map(String::from),
        exclusions: target.map(|t| t.exclusions().to_vec()).unwrap_or_default(),
        schedule: crawler
            .schedule()
            .and_then(|s| s.schedule_expression())
            .filter(|s| !s.is_empty())
            .map(String::from),
        recrawl: crawler
            .recrawl_policy()
            .and_then(|p| p.recrawl_behavior())
            .and_then(|b| RecrawlBehavior::parse(b.as_str()))
            .unwrap_or(RecrawlBehavior::Everything),
        update_behavior: crawler
            .schema_change_policy()
            .and_then(|p| p.update_behavior())
            .map(|b| b.as_str().to_string())
            .unwrap_or_default(),
        delete_behavior: crawler
            .schema_change_policy()
            .and_then(|p| p.delete_behavior())
            .map(|b| b.as_str().to_string())
            .unwrap_or_default(),
        configuration,
    }
}

fn workgroup_from_athena(workgroup: &athena::WorkGroup) -> WorkgroupConfig {
    let configuration = workgroup.configuration();
    let result = configuration.and_then(|c| c.result_configuration());
    let encryption = result.and_then(|r| r.encryption_configuration());
    WorkgroupConfig {
        name: workgroup.name().to_string(),
        profile: String::new(),
        description: workgroup.description().map(String::from),
        output_location: result
            .and_then(|r| r.output_location())
            .unwrap_or_default()
            .to_string(),
        // Athena encrypts results with SSE_S3 when nothing is configured.
        encryption: encryption
            .map(|e| e.encryption_option().as_str().to_string())
            .unwrap_or_else(|| "SSE_S3".to_string()),
        kms_key_arn: encryption.and_then(|e| e.kms_key()).map(String::from),
        enforce_configuration: configuration
            .and_then(|c| c.enforce_work_group_configuration())
            .unwrap_or(true),
        publish_cloudwatch_metrics: configuration
            .and_then(|c| c.publish_cloud_watch_metrics_enabled())
            .unwrap_or(false),
        bytes_scanned_cutoff_per_query: configuration
            .and_then(|c| c.bytes_scanned_cutoff_per_query()),
        engine_version: configuration
            .and_then(|c| c.engine_version())
            .and_then(|v| v.selected_engine_version())
            .map(String::from),
    }
}

fn encryption_configuration(
    workgroup: &WorkgroupConfig,
) -> Result<athena::EncryptionConfiguration> {
    athena::EncryptionConfiguration::builder()
        .encryption_option(athena::EncryptionOption::from(
            workgroup.encryption.as_str(),
        ))
        .set_kms_key(workgroup.kms_key_arn.clone())
        .build()
        .map_err(|e| Error::terminal(format!("encryption configuration: {e}")))
}

fn engine_version(workgroup: &WorkgroupConfig) -> Option<athena::EngineVersion> {
    workgroup.engine_version.as_ref().map(|v| {
        athena::EngineVersion::builder()
            .selected_engine_version(v)
            .build()
    })
}

impl CatalogApi for AwsCatalog {
    async fn read_spec(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<String> {
        let head = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| aws_error("s3:HeadObject", e))?;
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        if size > max_bytes {
            return Err(Error::invalid_input(format!(
                "spec_uri: the object is {size} bytes, more than the {max_bytes} a spec may have"
            )));
        }
        let object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(format!("bytes=0-{}", max_bytes.saturating_sub(1)))
            .send()
            .await
            .map_err(|e| aws_error("s3:GetObject", e))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| Error::retryable(format!("s3:GetObject body: {e}")))?
            .into_bytes();
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::invalid_input("spec_uri: the object is not UTF-8 text"))
    }

    async fn get_database(&self, name: &str) -> Result<Option<DatabaseConfig>> {
        match self.glue.get_database().name(name).send().await {
            Ok(output) => Ok(output.database().map(|d| DatabaseConfig {
                name: d.name().to_string(),
                description: d.description().unwrap_or_default().to_string(),
                location_uri: d.location_uri().unwrap_or_default().to_string(),
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(aws_error("glue:GetDatabase", e)),
        }
    }

    async fn create_database(&self, database: &DatabaseConfig) -> Result<Created> {
        match self
            .glue
            .create_database()
            .database_input(database_input(database)?)
            .send()
            .await
        {
            Ok(_) => Ok(Created::Created),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) =>
            {
                Ok(Created::AlreadyExists)
            }
            Err(e) => Err(aws_error("glue:CreateDatabase", e)),
        }
    }

    async fn update_database(&self, database: &DatabaseConfig) -> Result<()> {
        self.glue
            .update_database()
            .name(&database.name)
            .database_input(database_input(database)?)
            .send()
            .await
            .map_err(|e| aws_error("glue:UpdateDatabase", e))?;
        Ok(())
    }

    async fn get_crawler(&self, name: &str) -> Result<Option<CrawlerConfig>> {
        match self.glue.get_crawler().name(name).send().await {
            Ok(output) => Ok(output.crawler().map(crawler_from_glue)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(aws_error("glue:GetCrawler", e)),
        }
    }

    async fn create_crawler(&self, crawler: &CrawlerConfig) -> Result<Created> {
        let result = self
            .glue
            .create_crawler()
            .name(&crawler.name)
            .role(&crawler.role)
            .database_name(&crawler.database)
            .description("lakeops fallback crawler for the formats catalog-ingest does not parse")
            .targets(crawler_targets(crawler))
            .set_schedule(crawler.schedule.clone())
            .schema_change_policy(schema_change_policy(crawler))
            .recrawl_policy(recrawl_policy(crawler))
            .configuration(crawler.configuration.to_string())
            .tags("lakeops:managed-by", "catalog-setup")
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
            Err(e) => Err(aws_error("glue:CreateCrawler", e)),
        }
    }

    async fn update_crawler(&self, crawler: &CrawlerConfig) -> Result<()> {
        self.glue
            .update_crawler()
            .name(&crawler.name)
            .role(&crawler.role)
            .database_name(&crawler.database)
            .targets(crawler_targets(crawler))
            // An empty expression removes a schedule the spec no longer has.
            .schedule(crawler.schedule.clone().unwrap_or_default())
            .schema_change_policy(schema_change_policy(crawler))
            .recrawl_policy(recrawl_policy(crawler))
            .configuration(crawler.configuration.to_string())
            .send()
            .await
            .map_err(|e| aws_error("glue:UpdateCrawler", e))?;
        Ok(())
    }

    async fn get_location(&self, resource_arn: &str) -> Result<Option<LocationConfig>> {
        match self
            .lakeformation
            .describe_resource()
            .resource_arn(resource_arn)
            .send()
            .await
        {
            Ok(output) => Ok(output.resource_info().map(|info| LocationConfig {
                resource_arn: info.resource_arn().unwrap_or(resource_arn).to_string(),
                role_arn: info
                    .role_arn()
                    .filter(|role| !role.contains(LAKE_FORMATION_SERVICE_ROLE))
                    .map(String::from),
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(aws_error("lakeformation:DescribeResource", e)),
        }
    }

    async fn register_location(&self, location: &LocationConfig) -> Result<Created> {
        let request = self
            .lakeformation
            .register_resource()
            .resource_arn(&location.resource_arn);
        let request = match &location.role_arn {
            Some(role) => request.role_arn(role),
            None => request.use_service_linked_role(true),
        };
        match request.send().await {
            Ok(_) => Ok(Created::Created),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) =>
            {
                Ok(Created::AlreadyExists)
            }
            Err(e) => Err(aws_error("lakeformation:RegisterResource", e)),
        }
    }

    async fn update_location(&self, location: &LocationConfig) -> Result<()> {
        match &location.role_arn {
            Some(role) => {
                self.lakeformation
                    .update_resource()
                    .resource_arn(&location.resource_arn)
                    .role_arn(role)
                    .send()
                    .await
                    .map_err(|e| aws_error("lakeformation:UpdateResource", e))?;
            }
            None => {
                // UpdateResource needs an explicit role; going back to the
                // service-linked role means registering again.
                match self
                    .lakeformation
                    .deregister_resource()
                    .resource_arn(&location.resource_arn)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_entity_not_found_exception()) => {}
                    Err(e) => return Err(aws_error("lakeformation:DeregisterResource", e)),
                }
                self.register_location(location).await?;
            }
        }
        Ok(())
    }

    async fn get_workgroup(&self, name: &str) -> Result<Option<WorkgroupConfig>> {
        match self.athena.get_work_group().work_group(name).send().await {
            Ok(output) => Ok(output.work_group().map(workgroup_from_athena)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_request_exception()) =>
            {
                // Athena answers "not found" with InvalidRequestException; the
                // list tells that apart from a malformed request.
                if self.workgroup_listed(name).await? {
                    Err(aws_error("athena:GetWorkGroup", e))
                } else {
                    Ok(None)
                }
            }
            Err(e) => Err(aws_error("athena:GetWorkGroup", e)),
        }
    }

    async fn create_workgroup(&self, workgroup: &WorkgroupConfig) -> Result<Created> {
        let result_configuration = athena::ResultConfiguration::builder()
            .output_location(&workgroup.output_location)
            .encryption_configuration(encryption_configuration(workgroup)?)
            .build();
        let configuration = athena::WorkGroupConfiguration::builder()
            .result_configuration(result_configuration)
            .enforce_work_group_configuration(workgroup.enforce_configuration)
            .publish_cloud_watch_metrics_enabled(workgroup.publish_cloudwatch_metrics)
            .set_bytes_scanned_cutoff_per_query(workgroup.bytes_scanned_cutoff_per_query)
            .set_engine_version(engine_version(workgroup))
            .build();
        let tag = athena::Tag::builder()
            .key(PROFILE_TAG)
            .value(&workgroup.profile)
            .build();
        let result = self
            .athena
            .create_work_group()
            .name(&workgroup.name)
            .set_description(workgroup.description.clone())
            .configuration(configuration)
            .tags(tag)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Created::Created),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_invalid_request_exception()
                        && s.meta()
                            .message()
                            .is_some_and(|m| m.to_ascii_lowercase().contains("already"))
                }) =>
            {
                Ok(Created::AlreadyExists)
            }
            Err(e) => Err(aws_error("athena:CreateWorkGroup", e)),
        }
    }

    async fn update_workgroup(&self, workgroup: &WorkgroupConfig) -> Result<()> {
        let result_updates = athena::ResultConfigurationUpdates::builder()
            .output_location(&workgroup.output_location)
            .encryption_configuration(encryption_configuration(workgroup)?)
            .build();
        let updates = athena::WorkGroupConfigurationUpdates::builder()
            .result_configuration_updates(result_updates)
            .enforce_work_group_configuration(workgroup.enforce_configuration)
            .publish_cloud_watch_metrics_enabled(workgroup.publish_cloudwatch_metrics)
            .set_bytes_scanned_cutoff_per_query(workgroup.bytes_scanned_cutoff_per_query)
            .remove_bytes_scanned_cutoff_per_query(
                workgroup.bytes_scanned_cutoff_per_query.is_none(),
            )
            .set_engine_version(engine_version(workgroup))
            .build();
        self.athena
            .update_work_group()
            .work_group(&workgroup.name)
            .set_description(workgroup.description.clone())
            .configuration_updates(updates)
            .send()
            .await
            .map_err(|e| aws_error("athena:UpdateWorkGroup", e))?;
        Ok(())
    }
}

impl AwsCatalog {
    async fn workgroup_listed(&self, name: &str) -> Result<bool> {
        let mut next: Option<String> = None;
        loop {
            let page = self
                .athena
                .list_work_groups()
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| aws_error("athena:ListWorkGroups", e))?;
            if page.work_groups().iter().any(|w| w.name() == Some(name)) {
                return Ok(true);
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => return Ok(false),
            }
        }
    }
}
