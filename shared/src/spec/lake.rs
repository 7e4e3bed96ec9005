//! The lake spec: the layers of the data lake, where each one lives, how its
//! keys name tables, which formats lakeops catalogs itself, the fallback
//! crawler of each layer, Lake Formation registration and the Athena
//! workgroups of each user profile.
//!
//! `catalog-setup` converges AWS to this spec; `catalog-ingest` follows it to
//! map an arriving object to a layer, a Glue database and a table.
//!
//! ```json
//! {
//!   "name": "lakeops-dev",
//!   "crawler_role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-crawler",
//!   "lake_formation": { "register_locations": true, "role_arn": null },
//!   "layers": [
//!     { "name": "raw", "bucket": "lakeops-dev-raw", "database": "lakeops_dev_raw",
//!       "table_root": { "segment": 0 },
//!       "formats": ["csv", "tsv", "jsonl", "parquet"],
//!       "crawler": { "enabled": true, "event_queue_arn": null, "dlq_arn": null,
//!                    "schedule": null, "exclusions": [] } }
//!   ],
//!   "athena": { "workgroups": [
//!     { "profile": "engineer", "name": "lakeops-dev-engineer",
//!       "result_location": "s3://lakeops-dev-athena/engineer/",
//!       "enforce_configuration": true, "bytes_scanned_cutoff_per_query": 10737418240,
//!       "encryption": "SSE_S3", "kms_key_arn": null,
//!       "publish_cloudwatch_metrics": true, "engine_version": "AUTO" } ] }
//! }
//! ```

use crate::s3_uri::parse_s3_location;
pub use crate::s3_uri::parse_s3_uri;
use crate::validate::{is_arn, is_bucket_name, Problems};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The layers every lake has. Others may be added.
pub const REQUIRED_LAYERS: [&str; 5] = ["raw", "schematized", "filtered", "emergency", "curated"];

/// The layer whose arrivals raise an alert unless the spec says otherwise.
pub const EMERGENCY_LAYER: &str = "emergency";

/// Glue limits a database, table or column name to 255 characters.
pub const GLUE_NAME_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeSpec {
    /// Prefix of every resource lakeops names (crawlers), e.g. `lakeops-dev`.
    pub name: String,
    /// The role the fallback crawlers run as. Required when any crawler is enabled.
    #[serde(default)]
    pub crawler_role_arn: Option<String>,
    #[serde(default)]
    pub lake_formation: LakeFormationSpec,
    pub layers: Vec<LayerSpec>,
    pub athena: AthenaSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeFormationSpec {
    /// Register each layer bucket as a Lake Formation data location.
    #[serde(default = "yes")]
    pub register_locations: bool,
    /// The role Lake Formation uses to reach the buckets; the service-linked
    /// role when absent.
    #[serde(default)]
    pub role_arn: Option<String>,
}

impl Default for LakeFormationSpec {
    fn default() -> Self {
        Self {
            register_locations: true,
            role_arn: None,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// `raw`, `schematized`, `filtered`, `emergency`, `curated`, or an extra layer.
    pub name: String,
    /// The layer's bucket. Each layer has its own, so a bucket names its layer.
    pub bucket: String,
    /// The Glue database of the layer's tables.
    pub database: String,
    #[serde(default)]
    pub table_root: TableRoot,
    /// The formats lakeops catalogs itself; others go to the layer's crawler.
    #[serde(default = "all_formats")]
    pub formats: Vec<DataFormat>,
    #[serde(default)]
    pub crawler: CrawlerSpec,
    /// Raise an alert for each arriving object. Defaults to true for the
    /// emergency layer only.
    #[serde(default)]
    pub alert: Option<bool>,
}

/// Which key segment names the table. Segments `0..=segment` together name the
/// table (joined with `_`) and make its location; the segments after it, up to
/// the file name, are Hive-style `key=value` partitions.
///
/// With `segment: 1`, `crm/customers/dt=2024-01-01/part-0.csv` is table
/// `crm_customers` at `s3://bucket/crm/customers/`, partition `dt=2024-01-01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRoot {
    #[serde(default)]
    pub segment: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    Csv,
    Tsv,
    Jsonl,
    Parquet,
}

impl DataFormat {
    pub const ALL: [DataFormat; 4] = [
        DataFormat::Csv,
        DataFormat::Tsv,
        DataFormat::Jsonl,
        DataFormat::Parquet,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DataFormat::Csv => "csv",
            DataFormat::Tsv => "tsv",
            DataFormat::Jsonl => "jsonl",
            DataFormat::Parquet => "parquet",
        }
    }

    /// The file-name patterns of this format (the crawler excludes them,
    /// because lakeops catalogs them itself).
    pub fn file_globs(self) -> &'static [&'static str] {
        match self {
            DataFormat::Csv => &["**.csv", "**.csv.gz"],
            DataFormat::Tsv => &["**.tsv", "**.tsv.gz"],
            DataFormat::Jsonl => &[
                "**.jsonl",
                "**.jsonl.gz",
                "**.ndjson",
                "**.ndjson.gz",
                "**.json",
                "**.json.gz",
            ],
            DataFormat::Parquet => &["**.parquet"],
        }
    }
}

fn all_formats() -> Vec<DataFormat> {
    DataFormat::ALL.to_vec()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlerSpec {
    /// A fallback crawler for the formats lakeops does not parse.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The SQS queue of S3 events the crawler reads in S3 event mode. Without
    /// one the crawler crawls new folders only.
    #[serde(default)]
    pub event_queue_arn: Option<String>,
    /// The dead-letter queue of that event queue.
    #[serde(default)]
    pub dlq_arn: Option<String>,
    /// A Glue cron expression, e.g. `cron(0 3 * * ? *)`; on demand only when absent.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Extra glob patterns the crawler skips.
    #[serde(default)]
    pub exclusions: Vec<String>,
}

impl Default for CrawlerSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            event_queue_arn: None,
            dlq_arn: None,
            schedule: None,
            exclusions: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AthenaSpec {
    pub workgroups: Vec<WorkgroupSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Engineer,
    Analyst,
    Architect,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::Engineer, Profile::Analyst, Profile::Architect];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Engineer => "engineer",
            Profile::Analyst => "analyst",
            Profile::Architect => "architect",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ResultEncryption {
    #[default]
    #[serde(rename = "SSE_S3")]
    SseS3,
    #[serde(rename = "SSE_KMS")]
    SseKms,
    #[serde(rename = "CSE_KMS")]
    CseKms,
}

impl ResultEncryption {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultEncryption::SseS3 => "SSE_S3",
            ResultEncryption::SseKms => "SSE_KMS",
            ResultEncryption::CseKms => "CSE_KMS",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkgroupSpec {
    pub profile: Profile,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `s3://bucket/prefix/` where query results go.
    pub result_location: String,
    /// Queries cannot override the workgroup's settings.
    #[serde(default = "yes")]
    pub enforce_configuration: bool,
    /// Cancel a query that scans more than this many bytes (at least 10 MB).
    #[serde(default)]
    pub bytes_scanned_cutoff_per_query: Option<i64>,
    #[serde(default)]
    pub encryption: ResultEncryption,
    /// Required with `SSE_KMS` and `CSE_KMS`.
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    #[serde(default = "yes")]
    pub publish_cloudwatch_metrics: bool,
    /// `AUTO` or an engine version name such as `Athena engine version 3`.
    #[serde(default)]
    pub engine_version: Option<String>,
}

/// Athena refuses a per-query scan limit below 10 MB.
pub const MIN_BYTES_SCANNED_CUTOFF: i64 = 10_000_000;

impl LakeSpec {
    /// Parse and validate; the error names every invalid field.
    pub fn from_json(text: &str) -> crate::Result<Self> {
        let spec: LakeSpec = serde_json::from_str(text)
            .map_err(|e| crate::Error::invalid_input(format!("lake spec: {e}")))?;
        spec.validate().map_err(crate::Error::from)?;
        Ok(spec)
    }

    /// Parse and validate a JSON value.
    pub fn from_value(value: serde_json::Value) -> crate::Result<Self> {
        let spec: LakeSpec = serde_json::from_value(value)
            .map_err(|e| crate::Error::invalid_input(format!("lake spec: {e}")))?;
        spec.validate().map_err(crate::Error::from)?;
        Ok(spec)
    }

    /// Every problem of the spec, each under the path of its field.
    pub fn validate(&self) -> Result<(), Problems> {
        let mut problems = Problems::new();
        check_resource_prefix(&self.name, "name", &mut problems);

        let any_crawler = self.layers.iter().any(|l| l.crawler.enabled);
        match &self.crawler_role_arn {
            Some(arn) => problems.check(
                is_arn(arn, "iam"),
                "crawler_role_arn",
                "is not an IAM role ARN",
            ),
            None => problems.check(
                !any_crawler,
                "crawler_role_arn",
                "is required when a layer has an enabled crawler",
            ),
        }
        if let Some(arn) = &self.lake_formation.role_arn {
            problems.check(
                is_arn(arn, "iam"),
                "lake_formation.role_arn",
                "is not an IAM role ARN",
            );
        }

        let mut layer_names = BTreeSet::new();
        let mut buckets: BTreeMap<&str, &str> = BTreeMap::new();
        let mut databases: BTreeMap<&str, &str> = BTreeMap::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let path = format!("layers[{i}]");
            let mut layer_problems = layer.validate();
            if !layer_names.insert(layer.name.as_str()) {
                layer_problems.add("name", format!("layer `{}` is listed twice", layer.name));
            }
            if let Some(other) = buckets.insert(layer.bucket.as_str(), layer.name.as_str()) {
                layer_problems.add(
                    "bucket",
                    format!(
                        "is also the bucket of layer `{other}`; each layer needs its own bucket"
                    ),
                );
            }
            if let Some(other) = databases.insert(layer.database.as_str(), layer.name.as_str()) {
                layer_problems.add(
                    "database",
                    format!("is also the database of layer `{other}`"),
                );
            }
            problems.extend_under(&path, layer_problems);
        }
        for required in REQUIRED_LAYERS {
            problems.check(
                layer_names.contains(required),
                "layers",
                format!("the `{required}` layer is missing"),
            );
        }

        let mut profiles = BTreeSet::new();
        let mut workgroup_names = BTreeSet::new();
        for (i, workgroup) in self.athena.workgroups.iter().enumerate() {
            let path = format!("athena.workgroups[{i}]");
            let mut wg_problems = workgroup.validate();
            if !profiles.insert(workgroup.profile) {
                wg_problems.add(
                    "profile",
                    format!(
                        "profile `{}` has two workgroups",
                        workgroup.profile.as_str()
                    ),
                );
            }
            if !workgroup_names.insert(workgroup.name.as_str()) {
                wg_problems.add(
                    "name",
                    format!("workgroup `{}` is listed twice", workgroup.name),
                );
            }
            problems.extend_under(&path, wg_problems);
        }
        for profile in Profile::ALL {
            problems.check(
                profiles.contains(&profile),
                "athena.workgroups",
                format!("the `{}` profile has no workgroup", profile.as_str()),
            );
        }
        problems.into_result()
    }

    pub fn layer(&self, name: &str) -> Option<&LayerSpec> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// The layer a bucket belongs to.
    pub fn layer_of_bucket(&self, bucket: &str) -> Option<&LayerSpec> {
        self.layers.iter().find(|l| l.bucket == bucket)
    }

    /// The name of a layer's fallback crawler.
    pub fn crawler_name(&self, layer: &LayerSpec) -> String {
        format!("{}-{}", self.name, layer.name)
    }
}

impl LayerSpec {
    fn validate(&self) -> Problems {
        let mut problems = Problems::new();
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 63
            && self.name.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        problems.check(
            name_ok,
            "name",
            "must be 1-63 characters: lowercase letters, digits, `_` or `-`, starting with a letter",
        );
        problems.check(
            is_bucket_name(&self.bucket),
            "bucket",
            "is not a valid S3 bucket name",
        );
        problems.check(
            is_glue_name(&self.database),
            "database",
            "must be 1-255 characters: lowercase letters, digits and `_`",
        );
        problems.check(
            !self.formats.is_empty() || self.crawler.enabled,
            "formats",
            "is empty and the crawler is disabled: nothing would catalog this layer",
        );
        let distinct: BTreeSet<_> = self.formats.iter().collect();
        problems.check(
            distinct.len() == self.formats.len(),
            "formats",
            "lists a format twice",
        );
        problems.check(
            self.table_root.segment <= 32,
            "table_root.segment",
            "must be at most 32",
        );
        problems.extend_under("crawler", self.crawler.validate());
        problems
    }

    /// Whether arrivals in this layer raise an alert.
    pub fn alerts(&self) -> bool {
        self.alert.unwrap_or(self.name == EMERGENCY_LAYER)
    }

    pub fn parses(&self, format: DataFormat) -> bool {
        self.formats.contains(&format)
    }

    /// `arn:aws:s3:::bucket`, the layer's Lake Formation data location.
    pub fn location_arn(&self) -> String {
        format!("arn:aws:s3:::{}", self.bucket)
    }
}

impl CrawlerSpec {
    fn validate(&self) -> Problems {
        let mut problems = Problems::new();
        if let Some(arn) = &self.event_queue_arn {
            problems.check(
                is_arn(arn, "sqs"),
                "event_queue_arn",
                "is not an SQS queue ARN",
            );
        }
        if let Some(arn) = &self.dlq_arn {
            problems.check(is_arn(arn, "sqs"), "dlq_arn", "is not an SQS queue ARN");
            problems.check(
                self.event_queue_arn.is_some(),
                "dlq_arn",
                "needs event_queue_arn",
            );
        }
        if let Some(schedule) = &self.schedule {
            problems.check(
                schedule.starts_with("cron(") && schedule.ends_with(')'),
                "schedule",
                "must be a Glue cron expression such as `cron(0 3 * * ? *)`",
            );
        }
        for (i, exclusion) in self.exclusions.iter().enumerate() {
            problems.check(
                !exclusion.trim().is_empty(),
                format!("exclusions[{i}]"),
                "is blank",
            );
        }
        problems
    }
}

impl WorkgroupSpec {
    fn validate(&self) -> Problems {
        let mut problems = Problems::new();
        let name_ok = (1..=128).contains(&self.name.len())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        problems.check(
            name_ok,
            "name",
            "must be 1-128 characters: letters, digits, `.`, `_` or `-`",
        );
        problems.check(
            parse_s3_location(&self.result_location).is_some(),
            "result_location",
            "must be an s3://bucket/prefix/ URI with a valid bucket name",
        );
        if let Some(cutoff) = self.bytes_scanned_cutoff_per_query {
            problems.check(
                cutoff >= MIN_BYTES_SCANNED_CUTOFF,
                "bytes_scanned_cutoff_per_query",
                format!("must be at least {MIN_BYTES_SCANNED_CUTOFF} (10 MB)"),
            );
        }
        match (self.encryption, &self.kms_key_arn) {
            (ResultEncryption::SseS3, Some(_)) => {
                problems.add("kms_key_arn", "is only used with SSE_KMS or CSE_KMS")
            }
            (ResultEncryption::SseKms | ResultEncryption::CseKms, None) => {
                problems.add("kms_key_arn", "is required with SSE_KMS and CSE_KMS")
            }
            (_, Some(arn)) => {
                problems.check(is_arn(arn, "kms"), "kms_key_arn", "is not a KMS key ARN")
            }
            _ => {}
        }
        if let Some(description) = &self.description {
            problems.check(
                description.len() <= 1024,
                "description",
                "is longer than 1024 characters",
            );
        }
        problems
    }
}

/// A valid Glue database/table name: lowercase ASCII letters, digits, `_`.
pub fn is_glue_name(name: &str) -> bool {
    (1..=GLUE_NAME_MAX).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_resource_prefix(name: &str, path: &str, problems: &mut Problems) {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    problems.check(
        ok,
        path,
        "must be 1-64 characters: letters, digits, `-` or `_`",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn example() -> serde_json::Value {
        let layer = |name: &str| {
            json!({
                "name": name,
                "bucket": format!("lakeops-dev-{name}"),
                "database": format!("lakeops_dev_{name}"),
            })
        };
        json!({
            "name": "lakeops-dev",
            "crawler_role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-crawler",
            "layers": [layer("raw"), layer("schematized"), layer("filtered"), layer("emergency"), layer("curated")],
            "athena": {"workgroups": [
                {"profile": "engineer", "name": "lakeops-dev-engineer", "result_location": "s3://lakeops-dev-athena/engineer/"},
                {"profile": "analyst", "name": "lakeops-dev-analyst", "result_location": "s3://lakeops-dev-athena/analyst/",
                 "bytes_scanned_cutoff_per_query": 1_000_000_000_i64},
                {"profile": "architect", "name": "lakeops-dev-architect", "result_location": "s3://lakeops-dev-athena/architect/"}
            ]}
        })
    }

    #[test]
    fn a_complete_spec_is_valid_with_defaults() {
        let spec = LakeSpec::from_value(example()).unwrap();
        let raw = spec.layer("raw").unwrap();
        assert_eq!(raw.formats, DataFormat::ALL.to_vec());
        assert!(raw.crawler.enabled);
        assert_eq!(raw.table_root.segment, 0);
        assert!(!raw.alerts());
        assert!(spec.layer("emergency").unwrap().alerts());
        assert_eq!(spec.crawler_name(raw), "lakeops-dev-raw");
        assert_eq!(
            spec.layer_of_bucket("lakeops-dev-curated").unwrap().name,
            "curated"
        );
        assert!(spec.lake_formation.register_locations);
        assert_eq!(raw.location_arn(), "arn:aws:s3:::lakeops-dev-raw");
    }

    #[test]
    fn names_every_problem_by_path() {
        let mut value = example();
        value["layers"].as_array_mut().unwrap().remove(1); // schematized
        value["layers"][0]["bucket"] = json!("Bad_Bucket");
        value["layers"][1]["database"] = json!("lakeops_dev_raw");
        value["layers"][2]["crawler"] =
            json!({"event_queue_arn": "not-an-arn", "schedule": "daily"});
        value["athena"]["workgroups"][1]["profile"] = json!("engineer");
        value["athena"]["workgroups"][2]["result_location"] = json!("https://x");
        value["athena"]["workgroups"][0]["encryption"] = json!("SSE_KMS");
        let error = LakeSpec::from_value(value).unwrap_err();
        let text = error.message;
        for expected in [
            "layers[0].bucket: is not a valid S3 bucket name",
            "layers[1].database: is also the database of layer `raw`",
            "layers[2].crawler.event_queue_arn: is not an SQS queue ARN",
            "layers[2].crawler.schedule",
            "layers: the `schematized` layer is missing",
            "athena.workgroups[1].profile: profile `engineer` has two workgroups",
            "athena.workgroups: the `analyst` profile has no workgroup",
            "athena.workgroups[2].result_location",
            "athena.workgroups[0].kms_key_arn: is required",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in: {text}");
        }
        assert_eq!(error.kind, crate::ErrorKind::InvalidInput);
    }

    #[test]
    fn unknown_fields_and_formats_are_rejected() {
        let mut value = example();
        value["layers"][0]["formatz"] = json!(["csv"]);
        assert!(LakeSpec::from_value(value)
            .unwrap_err()
            .message
            .contains("formatz"));
        let mut value = example();
        value["layers"][0]["formats"] = json!(["xml"]);
        assert!(LakeSpec::from_value(value)
            .unwrap_err()
            .message
            .contains("xml"));
    }

    #[test]
    fn crawler_role_is_required_only_with_crawlers() {
        let mut value = example();
        value.as_object_mut().unwrap().remove("crawler_role_arn");
        let text = LakeSpec::from_value(value.clone()).unwrap_err().message;
        assert!(text.contains("crawler_role_arn: is required"), "{text}");
        for layer in value["layers"].as_array_mut().unwrap() {
            layer["crawler"] = json!({"enabled": false});
        }
        LakeSpec::from_value(value).unwrap();
    }

    #[test]
    fn extra_layers_are_allowed_but_buckets_are_not_shared() {
        let mut value = example();
        value["layers"].as_array_mut().unwrap().push(json!({
            "name": "sandbox", "bucket": "lakeops-dev-raw", "database": "lakeops_dev_sandbox"
        }));
        let text = LakeSpec::from_value(value.clone()).unwrap_err().message;
        assert!(
            text.contains("layers[5].bucket: is also the bucket of layer `raw`"),
            "{text}"
        );
        value["layers"][5]["bucket"] = json!("lakeops-dev-sandbox");
        LakeSpec::from_value(value).unwrap();
    }
}
