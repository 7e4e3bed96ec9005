//! What the lake spec asks AWS to hold, as plain comparable values. The AWS
//! adapter reads the current state into the same types, so a plan is a
//! field-by-field comparison.

use lakeops_shared::spec::lake::{
    DataFormat, LakeSpec, LayerSpec, ResultEncryption, WorkgroupSpec,
};
use serde::Serialize;

/// A Glue database of one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseConfig {
    pub name: String,
    pub description: String,
    pub location_uri: String,
}

/// Glue crawlers either crawl folders whose events arrive in an SQS queue, or
/// new folders only: both avoid re-crawling the whole bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecrawlBehavior {
    #[serde(rename = "CRAWL_EVENT_MODE")]
    EventMode,
    #[serde(rename = "CRAWL_NEW_FOLDERS_ONLY")]
    NewFoldersOnly,
    #[serde(rename = "CRAWL_EVERYTHING")]
    Everything,
}

impl RecrawlBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            RecrawlBehavior::EventMode => "CRAWL_EVENT_MODE",
            RecrawlBehavior::NewFoldersOnly => "CRAWL_NEW_FOLDERS_ONLY",
            RecrawlBehavior::Everything => "CRAWL_EVERYTHING",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "CRAWL_EVENT_MODE" => Some(RecrawlBehavior::EventMode),
            "CRAWL_NEW_FOLDERS_ONLY" => Some(RecrawlBehavior::NewFoldersOnly),
            "CRAWL_EVERYTHING" => Some(RecrawlBehavior::Everything),
            _ => None,
        }
    }
}

/// A layer's fallback crawler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrawlerConfig {
    pub name: String,
    pub role: String,
    pub database: String,
    pub s3_path: String,
    pub event_queue_arn: Option<String>,
    pub dlq_arn: Option<String>,
    /// Sorted, so that the order Glue returns them in does not matter.
    pub exclusions: Vec<String>,
    pub schedule: Option<String>,
    pub recrawl: RecrawlBehavior,
    /// SchemaChangePolicy update and delete behaviours.
    pub update_behavior: String,
    pub delete_behavior: String,
    /// The crawler's JSON configuration, parsed so formatting does not matter.
    pub configuration: serde_json::Value,
}

/// A layer bucket registered with Lake Formation. `role_arn: None` means the
/// Lake Formation service-linked role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocationConfig {
    pub resource_arn: String,
    pub role_arn: Option<String>,
}

/// An Athena workgroup. Optional fields the spec leaves out are not compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkgroupConfig {
    pub name: String,
    pub profile: String,
    pub description: Option<String>,
    pub output_location: String,
    pub encryption: String,
    pub kms_key_arn: Option<String>,
    pub enforce_configuration: bool,
    pub publish_cloudwatch_metrics: bool,
    pub bytes_scanned_cutoff_per_query: Option<i64>,
    pub engine_version: Option<String>,
}

/// Every resource the spec asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Desired {
    pub databases: Vec<DatabaseConfig>,
    pub crawlers: Vec<CrawlerConfig>,
    pub locations: Vec<LocationConfig>,
    pub workgroups: Vec<WorkgroupConfig>,
}

/// The crawler's configuration: combine compatible schemas into one table
/// (instead of a table per file or folder) and let partitions inherit the
/// table's schema, the two behaviours that make crawled catalogs a swamp.
pub fn crawler_configuration() -> serde_json::Value {
    serde_json::json!({
        "Version": 1.0,
        "Grouping": { "TableGroupingPolicy": "CombineCompatibleSchemas" },
        "CrawlerOutput": {
            "Partitions": { "AddOrUpdateBehavior": "InheritFromTable" },
            "Tables": { "AddOrUpdateBehavior": "MergeNewColumns" }
        }
    })
}

pub fn desired(spec: &LakeSpec) -> Desired {
    let databases = spec
        .layers
        .iter()
        .map(|layer| database(spec, layer))
        .collect();
    let crawlers = spec
        .layers
        .iter()
        .filter(|layer| layer.crawler.enabled)
        .map(|layer| crawler(spec, layer))
        .collect();
    let locations = if spec.lake_formation.register_locations {
        spec.layers
            .iter()
            .map(|layer| LocationConfig {
                resource_arn: layer.location_arn(),
                role_arn: spec.lake_formation.role_arn.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let workgroups = spec.athena.workgroups.iter().map(workgroup).collect();
    Desired {
        databases,
        crawlers,
        locations,
        workgroups,
    }
}

fn database(spec: &LakeSpec, layer: &LayerSpec) -> DatabaseConfig {
    DatabaseConfig {
        name: layer.database.clone(),
        description: format!(
            "{} layer `{}` (managed by lakeops catalog-setup)",
            spec.name, layer.name
        ),
        location_uri: format!("s3://{}/", layer.bucket),
    }
}

fn crawler(spec: &LakeSpec, layer: &LayerSpec) -> CrawlerConfig {
    // The crawler is a fallback: it skips what catalog-ingest catalogs itself,
    // and the marker files of writers.
    let mut exclusions: Vec<String> = layer
        .formats
        .iter()
        .flat_map(|format: &DataFormat| format.file_globs().iter().map(|g| g.to_string()))
        .chain([
            "**/_SUCCESS".to_string(),
            "**/_temporary/**".to_string(),
            "**.crc".to_string(),
        ])
        .chain(layer.crawler.exclusions.iter().cloned())
        .collect();
    exclusions.sort();
    exclusions.dedup();
    let recrawl = if layer.crawler.event_queue_arn.is_some() {
        RecrawlBehavior::EventMode
    } else {
        RecrawlBehavior::NewFoldersOnly
    };
    CrawlerConfig {
        name: spec.crawler_name(layer),
        role: spec.crawler_role_arn.clone().unwrap_or_default(),
        database: layer.database.clone(),
        s3_path: format!("s3://{}/", layer.bucket),
        event_queue_arn: layer.crawler.event_queue_arn.clone(),
        dlq_arn: layer.crawler.dlq_arn.clone(),
        exclusions,
        schedule: layer.crawler.schedule.clone(),
        recrawl,
        // New-folders-only and event mode require LOG/LOG; it also keeps the
        // crawler from rewriting the tables catalog-ingest maintains.
        update_behavior: "LOG".to_string(),
        delete_behavior: "LOG".to_string(),
        configuration: crawler_configuration(),
    }
}

fn workgroup(spec: &WorkgroupSpec) -> WorkgroupConfig {
    WorkgroupConfig {
        name: spec.name.clone(),
        profile: spec.profile.as_str().to_string(),
        description: spec.description.clone(),
        output_location: spec.result_location.clone(),
        encryption: spec.encryption.as_str().to_string(),
        kms_key_arn: match spec.encryption {
            ResultEncryption::SseS3 => None,
            _ => spec.kms_key_arn.clone(),
        },
        enforce_configuration: spec.enforce_configuration,
        publish_cloudwatch_metrics: spec.publish_cloudwatch_metrics,
        bytes_scanned_cutoff_per_query: spec.bytes_scanned_cutoff_per_query,
        engine_version: spec.engine_version.clone(),
    }
}

/// The fields in which `observed` differs from `desired`.
pub fn database_differences(desired: &DatabaseConfig, observed: &DatabaseConfig) -> Vec<String> {
    let mut out = Vec::new();
    diff(
        &mut out,
        "description",
        &desired.description,
        &observed.description,
    );
    diff(
        &mut out,
        "location_uri",
        &desired.location_uri,
        &observed.location_uri,
    );
    out
}

pub fn crawler_differences(desired: &CrawlerConfig, observed: &CrawlerConfig) -> Vec<String> {
    let mut out = Vec::new();
    diff(&mut out, "role", &desired.role, &observed.role);
    diff(&mut out, "database", &desired.database, &observed.database);
    diff(&mut out, "s3_path", &desired.s3_path, &observed.s3_path);
    diff(
        &mut out,
        "event_queue_arn",
        &desired.event_queue_arn,
        &observed.event_queue_arn,
    );
    diff(&mut out, "dlq_arn", &desired.dlq_arn, &observed.dlq_arn);
    let mut observed_exclusions = observed.exclusions.clone();
    observed_exclusions.sort();
    observed_exclusions.dedup();
    diff(
        &mut out,
        "exclusions",
        &desired.exclusions,
        &observed_exclusions,
    );
    diff(&mut out, "schedule", &desired.schedule, &observed.schedule);
    diff(&mut out, "recrawl", &desired.recrawl, &observed.recrawl);
    diff(
        &mut out,
        "update_behavior",
        &desired.update_behavior,
        &observed.update_behavior,
    );
    diff(
        &mut out,
        "delete_behavior",
        &desired.delete_behavior,
        &observed.delete_behavior,
    );
    diff(
        &mut out,
        "configuration",
        &desired.configuration,
        &observed.configuration,
    );
    out
}

pub fn location_differences(desired: &LocationConfig, observed: &LocationConfig) -> Vec<String> {
    let mut out = Vec::new();
    diff(&mut out, "role_arn", &desired.role_arn, &observed.role_arn);
    out
}

pub fn workgroup_differences(desired: &WorkgroupConfig, observed: &WorkgroupConfig) -> Vec<String> {
    let mut out = Vec::new();
    if desired.description.is_some() {
        diff(
            &mut out,
            "description",
            &desired.description,
            &observed.description,
        );
    }
    diff(
        &mut out,
        "output_location",
        &desired.output_location,
        &observed.output_location,
    );
    diff(
        &mut out,
        "encryption",
        &desired.encryption,
        &observed.encryption,
    );
    diff(
        &mut out,
        "kms_key_arn",
        &desired.kms_key_arn,
        &observed.kms_key_arn,
    );
    diff(
        &mut out,
        "enforce_configuration",
        &desired.enforce_configuration,
        &observed.enforce_configuration,
    );
    diff(
        &mut out,
        "publish_cloudwatch_metrics",
        &desired.publish_cloudwatch_metrics,
        &observed.publish_cloudwatch_metrics,
    );
    diff(
        &mut out,
        "bytes_scanned_cutoff_per_query",
        &desired.bytes_scanned_cutoff_per_query,
        &observed.bytes_scanned_cutoff_per_query,
    );
    if desired.engine_version.is_some() {
        diff(
            &mut out,
            "engine_version",
            &desired.engine_version,
            &observed.engine_version,
        );
    }
    out
}

fn diff<T: PartialEq>(out: &mut Vec<String>, field: &str, desired: &T, observed: &T) {
    if desired != observed {
        out.push(field.to_string());
    }
}
