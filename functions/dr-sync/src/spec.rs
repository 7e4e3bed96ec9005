//! The DR spec: which workspaces, which catalogs, how names, locations, storage
//! credentials and principals map from the primary to the secondary, and how the sync
//! behaves. Validated up front, every problem under the path of its field, so that a
//! wrong spec is refused before any call to either side.

use std::collections::{BTreeMap, BTreeSet};

use lakeops_shared::validate::{is_arn, Problems};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Highest `concurrency`: clones in flight at once on the secondary's warehouse. A SQL
/// warehouse queues beyond its clusters' slots; 50 keeps the Step Functions Map and the
/// statement polling within their quotas.
pub const MAX_CONCURRENCY: u32 = 50;
/// Lowest `rpo_seconds`: below a minute the schedule cannot keep the promise.
pub const MIN_RPO_SECONDS: u64 = 60;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrSpec {
    /// Names this DR pair in resources, reports and metrics (`[a-z][a-z0-9-]{0,39}`).
    pub name: String,
    pub primary: Side,
    pub secondary: Side,
    pub warehouse: WarehouseSpec,
    pub sharing: SharingSpec,
    pub catalogs: Vec<CatalogMapping>,
    /// Primary storage prefix -> secondary prefix (S3 Cross-Region Replication pairs).
    #[serde(default)]
    pub locations: Vec<LocationMapping>,
    /// Primary storage credential name -> the secondary's IAM role for it.
    #[serde(default)]
    pub storage_credentials: Vec<CredentialMapping>,
    /// Primary principal -> secondary principal; unmapped principals keep their name.
    #[serde(default)]
    pub principals: BTreeMap<String, String>,
    /// The principal the sync runs as on the secondary (application id). Its own
    /// grants are never revoked.
    pub sync_principal: String,
    #[serde(default = "all_kinds")]
    pub objects: BTreeSet<ObjectKind>,
    #[serde(default)]
    pub external_tables: ExternalTables,
    #[serde(default)]
    pub propagate_deletes: bool,
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    #[serde(default = "default_rpo")]
    pub rpo_seconds: u64,
    /// SSM parameter holding the active workspace and the failover generation.
    pub active_workspace_parameter: String,
    /// Job name patterns (`*`, `?`) that a failover pauses on the old primary and
    /// unpauses on the new one, matched by name on both sides.
    #[serde(default = "all_jobs")]
    pub failover_jobs: Vec<String>,
}

fn all_jobs() -> Vec<String> {
    vec!["*".into()]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Side {
    /// Workspace URL, `https://...`.
    pub host: String,
    pub region: String,
    /// Secrets Manager secret with the workspace credentials (OAuth client or PAT).
    pub credentials_secret_arn: String,
}

/// The secondary's SQL warehouse that runs the clones: an existing one, or one the
/// sync creates (and then adopts by name on every later run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum WarehouseSpec {
    Id(String),
    Create(WarehouseCreate),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseCreate {
    pub name: String,
    #[serde(default = "default_cluster_size")]
    pub cluster_size: String,
    #[serde(default = "default_auto_stop")]
    pub auto_stop_mins: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharingSpec {
    /// The recipient on the primary for the secondary's metastore.
    pub recipient: String,
    /// Share per synced catalog: `<share_prefix><source catalog>`; the share catalog on
    /// the secondary has the same name.
    pub share_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogMapping {
    pub source: String,
    /// Defaults to the source's name.
    #[serde(default)]
    pub target: Option<String>,
    /// Schema name patterns (`*` and `?`); empty means every schema.
    #[serde(default)]
    pub include_schemas: Vec<String>,
    #[serde(default)]
    pub exclude_schemas: Vec<String>,
    /// `schema.table` patterns; empty means every table of an included schema.
    #[serde(default)]
    pub include_tables: Vec<String>,
    #[serde(default)]
    pub exclude_tables: Vec<String>,
}

impl CatalogMapping {
    pub fn target_name(&self) -> &str {
        self.target.as_deref().unwrap_or(&self.source)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationMapping {
    pub primary: String,
    pub secondary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialMapping {
    pub primary: String,
    pub secondary_role_arn: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Tables,
    Views,
    Volumes,
    Functions,
    Tags,
    Comments,
    Grants,
}

/// How an external Delta table reaches the secondary: `metadata` re-creates it over
/// the replicated storage (S3 CRR copies the files); `clone` DEEP CLONEs it to the
/// mapped location. External non-Delta tables are always metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExternalTables {
    #[default]
    Metadata,
    Clone,
}

fn all_kinds() -> BTreeSet<ObjectKind> {
    use ObjectKind::*;
    [Tables, Views, Volumes, Functions, Tags, Comments, Grants]
        .into_iter()
        .collect()
}
fn default_concurrency() -> u32 {
    8
}
fn default_rpo() -> u64 {
    3600
}
fn default_cluster_size() -> String {
    "Small".into()
}
fn default_auto_stop() -> u32 {
    10
}

/// Parses and validates a spec, reporting a wrong type (the first serde meets) or
/// every rule that fails, each under its field's path.
pub fn parse(input: &Value) -> Result<DrSpec, Problems> {
    let mut problems = Problems::new();
    if !input.is_object() {
        problems.add("spec", "must be a JSON object (or an s3:// URI of one)");
        return Err(problems);
    }
    let spec: DrSpec = match serde_path_to_error::deserialize(input.clone()) {
        Ok(spec) => spec,
        Err(error) => {
            let path = match error.path().to_string() {
                p if p == "." => "spec".to_string(),
                p => p,
            };
            let message = error.inner().to_string();
            problems.add(path, lakeops_shared::validate::serde_message(&message));
            return Err(problems);
        }
    };
    let mut problems = spec.validate();
    spec.check_secrets_in_secondary(&mut problems);
    problems.into_result().map(|()| spec)
}

impl DrSpec {
    pub fn validate(&self) -> Problems {
        let mut p = Problems::new();
        p.check(
            is_dr_name(&self.name),
            "name",
            "must match [a-z][a-z0-9-]{0,39}",
        );
        self.primary.validate("primary", &mut p);
        self.secondary.validate("secondary", &mut p);
        p.check(
            self.primary.region != self.secondary.region,
            "secondary.region",
            "must differ from primary.region: the secondary is another region",
        );
        p.check(
            self.primary.host.trim_end_matches('/') != self.secondary.host.trim_end_matches('/'),
            "secondary.host",
            "must differ from primary.host",
        );
        self.validate_warehouse(&mut p);
        p.check(
            is_uc_identifier(&self.sharing.recipient),
            "sharing.recipient",
            "must be a Unity Catalog identifier (letters, digits, _)",
        );
        p.check(
            is_uc_identifier(&self.sharing.share_prefix),
            "sharing.share_prefix",
            "must be a Unity Catalog identifier (letters, digits, _)",
        );
        self.validate_catalogs(&mut p);
        self.validate_locations(&mut p);
        self.validate_credentials(&mut p);
        for (from, to) in &self.principals {
            p.check(
                !from.trim().is_empty() && !to.trim().is_empty(),
                format!("principals.{from}"),
                "principal names must not be blank",
            );
        }
        p.require(&self.sync_principal, "sync_principal");
        p.check(
            !self.objects.is_empty(),
            "objects",
            "must name at least one kind",
        );
        p.check(
            (1..=MAX_CONCURRENCY).contains(&self.concurrency),
            "concurrency",
            format!("must be between 1 and {MAX_CONCURRENCY}"),
        );
        p.check(
            self.rpo_seconds >= MIN_RPO_SECONDS,
            "rpo_seconds",
            format!("must be at least {MIN_RPO_SECONDS}"),
        );
        for (i, pattern) in self.failover_jobs.iter().enumerate() {
            p.check(
                !pattern.trim().is_empty(),
                format!("failover_jobs[{i}]"),
                "must be a job name pattern",
            );
        }
        p.check(
            is_ssm_name(&self.active_workspace_parameter),
            "active_workspace_parameter",
            "must be an SSM parameter name starting with / (letters, digits, _ . - /)",
        );
        p
    }

    /// The sync runs in the secondary region and must read both secrets when the
    /// primary region is down: both live there (the function may read only its own
    /// region's `lakeops/<env>/` secrets). Checked on the spec as given, not on its
    /// failback (reversed) form, which runs in the same stack.
    fn check_secrets_in_secondary(&self, p: &mut Problems) {
        for (at, side) in [("primary", &self.primary), ("secondary", &self.secondary)] {
            let region = side
                .credentials_secret_arn
                .split(':')
                .nth(3)
                .unwrap_or_default();
            if !region.is_empty() && region != self.secondary.region {
                p.add(
                    format!("{at}.credentials_secret_arn"),
                    format!(
                        "must be a secret in the secondary's region {}, where the sync runs (it is in {region})",
                        self.secondary.region
                    ),
                );
            }
        }
    }

    fn validate_warehouse(&self, p: &mut Problems) {
        match &self.warehouse {
            WarehouseSpec::Id(id) => p.check(
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "warehouse.id",
                "must be a warehouse id (letters and digits)",
            ),
            WarehouseSpec::Create(w) => {
                p.check(
                    !w.name.trim().is_empty() && w.name.chars().count() < 100,
                    "warehouse.create.name",
                    "must be 1 to 99 characters",
                );
                p.check(
                    CLUSTER_SIZES.contains(&w.cluster_size.as_str()),
                    "warehouse.create.cluster_size",
                    format!("must be one of {}", CLUSTER_SIZES.join(", ")),
                );
                p.check(
                    w.auto_stop_mins == 0 || w.auto_stop_mins >= 10,
                    "warehouse.create.auto_stop_mins",
                    "must be 0 or at least 10",
                );
            }
        }
    }

    fn validate_catalogs(&self, p: &mut Problems) {
        p.check(
            !self.catalogs.is_empty(),
            "catalogs",
            "must map at least one catalog",
        );
        let mut sources: BTreeMap<String, usize> = BTreeMap::new();
        let mut targets: BTreeMap<String, usize> = BTreeMap::new();
        for (i, c) in self.catalogs.iter().enumerate() {
            let at = format!("catalogs[{i}]");
            p.check(
                is_uc_identifier(&c.source),
                format!("{at}.source"),
                "must be a Unity Catalog identifier",
            );
            p.check(
                is_uc_identifier(c.target_name()),
                format!("{at}.target"),
                "must be a Unity Catalog identifier",
            );
            if let Some(first) = sources.insert(c.source.to_lowercase(), i) {
                p.add(
                    format!("{at}.source"),
                    format!(
                        "catalog {} is already mapped by catalogs[{first}]",
                        c.source
                    ),
                );
            }
            if let Some(first) = targets.insert(c.target_name().to_lowercase(), i) {
                p.add(
                    format!("{at}.target"),
                    format!(
                        "two source catalogs map to {}: catalogs[{first}] and catalogs[{i}]",
                        c.target_name()
                    ),
                );
            }
            for (field, patterns, parts) in [
                ("include_schemas", &c.include_schemas, 1),
                ("exclude_schemas", &c.exclude_schemas, 1),
                ("include_tables", &c.include_tables, 2),
                ("exclude_tables", &c.exclude_tables, 2),
            ] {
                for (j, pattern) in patterns.iter().enumerate() {
                    p.check(
                        is_pattern(pattern, parts),
                        format!("{at}.{field}[{j}]"),
                        if parts == 1 {
                            "must be a schema name pattern (letters, digits, _, * and ?)"
                        } else {
                            "must be a schema.table pattern (letters, digits, _, * and ?)"
                        },
                    );
                }
            }
        }
        // Share catalogs live beside the targets on the secondary, and, on failback,
        // beside the sources on the primary: neither may take a mapped catalog's name.
        let prefix = self.sharing.share_prefix.to_lowercase();
        for (i, c) in self.catalogs.iter().enumerate() {
            let forward = format!("{prefix}{}", c.source.to_lowercase());
            let back = format!("{prefix}{}", c.target_name().to_lowercase());
            if targets.contains_key(&forward) {
                p.add(
                    format!("catalogs[{}].target", targets[&forward]),
                    format!(
                        "{forward} is the name of catalogs[{i}]'s share catalog on the secondary"
                    ),
                );
            }
            if sources.contains_key(&back) {
                p.add(
                    format!("catalogs[{}].source", sources[&back]),
                    format!("{back} is the name of catalogs[{i}]'s share catalog on the primary when failing back"),
                );
            }
        }
    }

    fn validate_locations(&self, p: &mut Problems) {
        for (i, m) in self.locations.iter().enumerate() {
            let at = format!("locations[{i}]");
            p.check(
                crate::mapping::is_s3_prefix(&m.primary),
                format!("{at}.primary"),
                "must be an s3://bucket[/prefix] URL",
            );
            p.check(
                crate::mapping::is_s3_prefix(&m.secondary),
                format!("{at}.secondary"),
                "must be an s3://bucket[/prefix] URL",
            );
            for (j, other) in self.locations.iter().enumerate().take(i) {
                if crate::mapping::overlaps(&m.primary, &other.primary) {
                    p.add(
                        format!("{at}.primary"),
                        format!("overlaps locations[{j}].primary: a location would map two ways"),
                    );
                }
                // Failback maps back from the secondary prefixes.
                if crate::mapping::overlaps(&m.secondary, &other.secondary) {
                    p.add(
                        format!("{at}.secondary"),
                        format!("overlaps locations[{j}].secondary: failing back, a location would map two ways"),
                    );
                }
            }
        }
    }

    fn validate_credentials(&self, p: &mut Problems) {
        let mut seen = BTreeSet::new();
        for (i, c) in self.storage_credentials.iter().enumerate() {
            let at = format!("storage_credentials[{i}]");
            p.check(
                is_uc_identifier(&c.primary),
                format!("{at}.primary"),
                "must be a storage credential name",
            );
            p.check(
                seen.insert(c.primary.to_lowercase()),
                format!("{at}.primary"),
                "is mapped twice",
            );
            p.check(
                is_arn(&c.secondary_role_arn, "iam") && c.secondary_role_arn.contains(":role/"),
                format!("{at}.secondary_role_arn"),
                "must be an IAM role ARN",
            );
        }
    }
}

impl Side {
    fn validate(&self, at: &str, p: &mut Problems) {
        p.check(
            is_workspace_url(&self.host),
            format!("{at}.host"),
            "must be an https:// workspace URL (http:// only on the loopback, for an emulator)",
        );
        p.check(
            lakeops_shared::validate::is_region(&self.region),
            format!("{at}.region"),
            "must be an AWS region such as us-east-1",
        );
        p.check(
            is_arn(&self.credentials_secret_arn, "secretsmanager")
                && self.credentials_secret_arn.contains(":secret:"),
            format!("{at}.credentials_secret_arn"),
            "must be a Secrets Manager secret ARN",
        );
    }
}

const CLUSTER_SIZES: &[&str] = &[
    "2X-Small", "X-Small", "Small", "Medium", "Large", "X-Large", "2X-Large", "3X-Large",
    "4X-Large",
];

/// `https://host[...]`, or `http://` to the loopback (a local emulator): never plain
/// HTTP across a network, where the workspace's credentials would travel in clear.
fn is_workspace_url(v: &str) -> bool {
    let host_of = |rest: &str| {
        rest.split(['/', ':'])
            .next()
            .unwrap_or_default()
            .to_string()
    };
    if let Some(rest) = v.strip_prefix("https://") {
        return !rest.is_empty() && !rest.contains(char::is_whitespace);
    }
    v.strip_prefix("http://").is_some_and(|rest| {
        matches!(host_of(rest).as_str(), "127.0.0.1" | "localhost")
            && !rest.contains(char::is_whitespace)
    })
}

fn is_dr_name(v: &str) -> bool {
    let mut chars = v.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && v.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A name that needs no quoting in Unity Catalog: letters, digits and `_`.
pub fn is_uc_identifier(v: &str) -> bool {
    !v.is_empty() && v.len() <= 255 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_pattern(v: &str, parts: usize) -> bool {
    let split: Vec<&str> = v.split('.').collect();
    split.len() == parts
        && split.iter().all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '*' | '?'))
        })
}

fn is_ssm_name(v: &str) -> bool {
    v.starts_with('/')
        && v.len() <= 1011
        && v.len() > 1
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn sample() -> Value {
        json!({
            "name": "lakehouse-dr",
            "primary": {"host": "https://primary.cloud.databricks.com", "region": "us-east-1",
                        "credentials_secret_arn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:lakeops/prod/dbx-primary-AbCdEf"},
            "secondary": {"host": "https://secondary.cloud.databricks.com", "region": "us-west-2",
                          "credentials_secret_arn": "arn:aws:secretsmanager:us-west-2:123456789012:secret:lakeops/prod/dbx-secondary-AbCdEf"},
            "warehouse": {"create": {"name": "lakeops-dr"}},
            "sharing": {"recipient": "lakeops_dr_usw2", "share_prefix": "lakeops_dr_"},
            "catalogs": [{"source": "main"}, {"source": "sales", "target": "sales_dr", "exclude_schemas": ["tmp_*"]}],
            "locations": [{"primary": "s3://lake-use1/", "secondary": "s3://lake-usw2/"}],
            "storage_credentials": [{"primary": "lake_cred", "secondary_role_arn": "arn:aws:iam::123456789012:role/uc-usw2"}],
            "principals": {"data-eng-use1": "data-eng-usw2"},
            "sync_principal": "00000000-0000-0000-0000-0000000000a1",
            "active_workspace_parameter": "/lakeops/prod/dr/active-workspace"
        })
    }

    fn problems_of(v: Value) -> Vec<String> {
        match parse(&v) {
            Ok(_) => vec![],
            Err(p) => p.iter().map(|(path, _)| path.to_string()).collect(),
        }
    }

    #[test]
    fn the_sample_is_valid_with_its_defaults() {
        let spec = parse(&sample()).unwrap();
        assert_eq!(spec.concurrency, 8);
        assert_eq!(spec.rpo_seconds, 3600);
        assert!(!spec.propagate_deletes);
        assert_eq!(spec.external_tables, ExternalTables::Metadata);
        assert_eq!(spec.objects.len(), 7);
        assert_eq!(spec.catalogs[0].target_name(), "main");
    }

    #[test]
    fn two_sources_into_one_target_are_refused() {
        let mut v = sample();
        v["catalogs"] = json!([{"source": "a", "target": "t"}, {"source": "b", "target": "T"}]);
        assert_eq!(problems_of(v), ["catalogs[1].target"]);
    }

    #[test]
    fn a_target_named_like_a_share_catalog_is_refused() {
        let mut v = sample();
        v["catalogs"] = json!([{"source": "a", "target": "lakeops_dr_a"}]);
        assert_eq!(problems_of(v), ["catalogs[0].target"]);
    }

    #[test]
    fn every_problem_names_its_field() {
        let mut v = sample();
        v["secondary"]["region"] = json!("us-east-1");
        v["concurrency"] = json!(0);
        v["rpo_seconds"] = json!(10);
        v["locations"] = json!([{"primary": "s3://lake-a/x", "secondary": "s3://lake-b"}, {"primary": "s3://lake-a/x/y", "secondary": "http://c"}]);
        v["catalogs"][1]["exclude_schemas"] = json!(["a.b"]);
        v["active_workspace_parameter"] = json!("no-slash");
        let got = problems_of(v);
        assert_eq!(
            got,
            [
                "secondary.region",
                "catalogs[1].exclude_schemas[0]",
                "locations[1].secondary",
                "locations[1].primary",
                "concurrency",
                "rpo_seconds",
                "active_workspace_parameter",
                // The sample's secrets are in us-west-2, the secondary is now us-east-1.
                "primary.credentials_secret_arn",
                "secondary.credentials_secret_arn"
            ]
        );
    }

    #[test]
    fn unknown_fields_and_wrong_types_name_their_path() {
        let mut v = sample();
        v["catalogs"][0]["incldue_schemas"] = json!(["x"]);
        let got = problems_of(v);
        assert_eq!(got, ["catalogs[0].incldue_schemas"]);
        let mut v = sample();
        v["propagate_deletes"] = json!("yes");
        assert_eq!(problems_of(v), ["propagate_deletes"]);
        let mut v = sample();
        v["objects"] = json!(["tables", "jobs"]);
        assert_eq!(problems_of(v), ["objects[1]"]);
    }

    #[test]
    fn share_catalog_names_never_take_a_mapped_catalogs_name_either_way() {
        let mut v = sample();
        // Forward: lakeops_dr_a is a's share catalog on the secondary; listed first.
        v["catalogs"] =
            json!([{"source": "b", "target": "lakeops_dr_a"}, {"source": "a", "target": "x"}]);
        assert_eq!(problems_of(v), ["catalogs[0].target"]);
        // Backward: failing back, x's share catalog on the primary is lakeops_dr_x.
        let mut v = sample();
        v["catalogs"] = json!([{"source": "lakeops_dr_x", "target": "x"}]);
        assert_eq!(problems_of(v), ["catalogs[0].source"]);
    }

    #[test]
    fn both_secrets_live_in_the_secondary_region() {
        let mut v = sample();
        v["primary"]["credentials_secret_arn"] =
            json!("arn:aws:secretsmanager:us-east-1:123456789012:secret:lakeops/prod/p-AbCdEf");
        assert_eq!(problems_of(v), ["primary.credentials_secret_arn"]);
    }

    #[test]
    fn plain_http_is_for_the_loopback_only() {
        assert!(is_workspace_url("https://dbc-1.cloud.databricks.com"));
        assert!(is_workspace_url("http://127.0.0.1:8900/ws/dr-primary"));
        assert!(is_workspace_url("http://localhost:8900"));
        assert!(!is_workspace_url("http://dbc-1.cloud.databricks.com"));
        assert!(!is_workspace_url("http://127.0.0.1.evil.example/x"));
        assert!(!is_workspace_url("ftp://127.0.0.1"));
    }

    #[test]
    fn the_warehouse_is_an_id_or_a_creation() {
        let mut v = sample();
        v["warehouse"] = json!({"id": "abc123"});
        assert!(parse(&v).is_ok());
        v["warehouse"] = json!({"id": "abc123", "create": {"name": "x"}});
        assert!(parse(&v).is_err());
        v["warehouse"] = json!({"create": {"name": "x", "cluster_size": "Huge"}});
        assert_eq!(problems_of(v), ["warehouse.create.cluster_size"]);
    }
}

#[cfg(test)]
mod shape_tests {
    #[test]
    fn a_spec_that_is_not_an_object_is_refused_as_the_spec() {
        // Found by the dr_spec fuzz target: `[0]` was reported under `[0]`.
        for v in [
            serde_json::json!([0]),
            serde_json::json!("x"),
            serde_json::json!(null),
        ] {
            let problems = super::parse(&v).unwrap_err();
            assert_eq!(
                problems.iter().map(|(p, _)| p).collect::<Vec<_>>(),
                ["spec"]
            );
        }
    }
}
