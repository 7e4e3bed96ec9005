//! The platform spec: one environment's Databricks on AWS platform, as JSON.
//!
//! [`parse`] reads a spec from JSON and reports every problem at once, each
//! under the path of its field (`network.subnet_ids[1]: is not a subnet id`):
//! unknown fields, then every semantic rule in [`PlatformSpec::validate`].
//! Credentials never appear in a spec; it names Secrets Manager ARNs instead.

use lakeops_shared::validate::{
    is_arn, is_bucket_name, is_environment_name, Problems, ENVIRONMENT_NAME_RULE,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformSpec {
    /// `dev`, `qa`, `prod`: part of every resource name lakeops gives.
    pub environment: String,
    pub account: AccountSpec,
    pub aws: AwsSpec,
    pub storage: StorageSpec,
    pub network: NetworkSpec,
    #[serde(default)]
    pub encryption: Option<EncryptionSpec>,
    pub workspace: WorkspaceSpec,
    #[serde(default)]
    pub log_delivery: Option<LogDeliverySpec>,
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    #[serde(default)]
    pub service_principal: ServicePrincipalSpec,
    #[serde(default)]
    pub pat: Option<PatSpec>,
    pub compute: ComputeSpec,
    pub unity_catalog: UnityCatalogSpec,
    #[serde(default)]
    pub jobs: Vec<JobSpec>,
    #[serde(default)]
    pub repos: Vec<RepoSpec>,
    #[serde(default)]
    pub init_script: Option<InitScriptSpec>,
    #[serde(default)]
    pub destroy: DestroySpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountSpec {
    /// The Databricks account id (a UUID).
    pub id: String,
    /// The account console host; the function's `DATABRICKS_ACCOUNT_HOST` when absent.
    #[serde(default)]
    pub host: Option<String>,
    /// Secrets Manager ARN of the account service principal's OAuth credentials
    /// (`databricks-sp-secret` JSON).
    pub credentials_secret_arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AwsSpec {
    pub region: String,
    /// The cross-account role Databricks assumes to run clusters.
    pub cross_account_role_arn: String,
    /// Role assumed first (the organisation's admin role), then `environment_role_arn`.
    #[serde(default)]
    pub admin_role_arn: Option<String>,
    /// Role in the environment's own AWS account.
    #[serde(default)]
    pub environment_role_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageSpec {
    pub root_bucket: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    #[serde(default)]
    pub private_link: Option<PrivateLinkSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivateLinkSpec {
    /// AWS VPC endpoint id of the workspace (REST API) endpoint.
    pub rest_vpc_endpoint_id: String,
    /// AWS VPC endpoint id of the secure cluster connectivity relay.
    pub relay_vpc_endpoint_id: String,
    #[serde(default)]
    pub public_access_enabled: bool,
    /// `ACCOUNT` or `ENDPOINT`.
    #[serde(default = "default_private_access_level")]
    pub private_access_level: String,
}

fn default_private_access_level() -> String {
    "ACCOUNT".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncryptionSpec {
    #[serde(default)]
    pub managed_services: Option<KeySpec>,
    #[serde(default)]
    pub storage: Option<KeySpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeySpec {
    pub key_arn: String,
    #[serde(default)]
    pub key_alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceSpec {
    pub name: String,
    /// `PREMIUM` or `ENTERPRISE` (PrivateLink and customer-managed keys need `ENTERPRISE`).
    #[serde(default = "default_pricing_tier")]
    pub pricing_tier: String,
    /// The workspace's subdomain; Databricks chooses one when absent.
    #[serde(default)]
    pub deployment_name: Option<String>,
    /// How long the `workspace_ready` loop waits before it gives up.
    #[serde(default = "default_ready_timeout_minutes")]
    pub ready_timeout_minutes: u32,
}

fn default_pricing_tier() -> String {
    "PREMIUM".into()
}

fn default_ready_timeout_minutes() -> u32 {
    60
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogDeliverySpec {
    pub bucket: String,
    /// Role Databricks assumes to write into the log bucket.
    pub role_arn: String,
    #[serde(default = "default_audit_prefix")]
    pub audit_prefix: String,
    #[serde(default = "default_billable_usage_prefix")]
    pub billable_usage_prefix: String,
}

fn default_audit_prefix() -> String {
    "audit-logs".into()
}

fn default_billable_usage_prefix() -> String {
    "billable-usage".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSpec {
    pub name: String,
    /// `USER` or `ADMIN`.
    pub workspace_permission: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServicePrincipalSpec {
    /// `USER` or `ADMIN`.
    #[serde(default = "default_admin")]
    pub workspace_permission: String,
}

impl Default for ServicePrincipalSpec {
    fn default() -> Self {
        Self {
            workspace_permission: default_admin(),
        }
    }
}

fn default_admin() -> String {
    "ADMIN".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatSpec {
    #[serde(default = "default_pat_lifetime_days")]
    pub lifetime_days: u32,
    /// Secrets Manager rotates the token this often; it must be shorter than the lifetime.
    #[serde(default = "default_pat_rotation_days")]
    pub rotation_days: u32,
    /// The rotation function; the function's `PAT_ROTATION_FUNCTION_ARN` when absent.
    #[serde(default)]
    pub rotation_function_arn: Option<String>,
}

fn default_pat_lifetime_days() -> u32 {
    90
}

fn default_pat_rotation_days() -> u32 {
    30
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputeSpec {
    pub cluster: ClusterSpec,
    #[serde(default)]
    pub policy: Option<PolicySpec>,
    #[serde(default)]
    pub instance_profile_arn: Option<String>,
    #[serde(default)]
    pub instance_pool: Option<InstancePoolSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSpec {
    pub spark_version: String,
    pub node_type_id: String,
    #[serde(default = "default_autotermination_minutes")]
    pub autotermination_minutes: u32,
}

fn default_autotermination_minutes() -> u32 {
    30
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicySpec {
    /// The policy definition, as a JSON object (Databricks stores it as a string).
    pub definition: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstancePoolSpec {
    pub node_type_id: String,
    #[serde(default)]
    pub min_idle_instances: u32,
    pub max_capacity: u32,
    #[serde(default = "default_idle_minutes")]
    pub idle_instance_autotermination_minutes: u32,
}

fn default_idle_minutes() -> u32 {
    15
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnityCatalogSpec {
    #[serde(default)]
    pub metastore: MetastoreSpec,
    pub storage_credential: StorageCredentialSpec,
    #[serde(default)]
    pub external_locations: Vec<ExternalLocationSpec>,
    pub catalog: CatalogSpec,
    #[serde(default = "default_schemas")]
    pub schemas: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
}

fn default_schemas() -> Vec<String> {
    vec!["sandbox".into(), "raw".into()]
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetastoreSpec {
    /// Reuse this metastore (adopted: `destroy` leaves it alone).
    #[serde(default)]
    pub existing_id: Option<String>,
    /// Storage root of a metastore lakeops creates (optional in Databricks).
    #[serde(default)]
    pub storage_root: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageCredentialSpec {
    pub role_arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalLocationSpec {
    /// Short name; the location is named `lakeops_{env}_{name}`.
    pub name: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogSpec {
    /// The catalog name; the environment (`dev`) when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Managed storage of the catalog (`s3://bucket/path`).
    pub storage_root: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub name: String,
    pub schema: String,
    /// An `s3://` URL under one of the external locations.
    pub location: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Short name; the job is named `lakeops-{env}-{name}`.
    pub name: String,
    pub notebook_path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoSpec {
    pub url: String,
    /// `gitHub`, `gitLab`, `bitbucketCloud`, `awsCodeCommit`, ...
    pub provider: String,
    /// Workspace path, under `/Repos/`.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitScriptSpec {
    /// The KMS key of S3 client-side encryption, written into `core-site.xml`.
    pub kms_key_arn: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DestroySpec {
    /// Also remove resources lakeops adopted (e.g. a reused metastore).
    #[serde(default)]
    pub include_adopted: bool,
}

const PERMISSIONS: &[&str] = &["USER", "ADMIN"];
const PRICING_TIERS: &[&str] = &["PREMIUM", "ENTERPRISE"];
const ACCESS_LEVELS: &[&str] = &["ACCOUNT", "ENDPOINT"];
const REPO_PROVIDERS: &[&str] = &[
    "gitHub",
    "gitHubEnterprise",
    "gitLab",
    "gitLabEnterpriseEdition",
    "bitbucketCloud",
    "bitbucketServer",
    "awsCodeCommit",
    "azureDevOpsServices",
];

/// Parse a spec from JSON, reporting every problem by path: a field of the
/// wrong type (the first one serde meets), every unknown field, then every
/// rule of [`PlatformSpec::validate`].
pub fn parse(input: &Value) -> Result<PlatformSpec, Problems> {
    let mut problems = Problems::new();
    if !input.is_object() {
        problems.add("spec", "must be a JSON object (or an s3:// URI of one)");
        return Err(problems);
    }
    let spec: PlatformSpec = match serde_path_to_error::deserialize(input.clone()) {
        Ok(spec) => spec,
        Err(error) => {
            let path = error.path().to_string();
            let path = if path == "." {
                "spec".to_string()
            } else {
                path
            };
            problems.add(
                path,
                lakeops_shared::validate::serde_message(&error.inner().to_string()),
            );
            // Unknown fields are still worth reporting alongside.
            return Err(problems);
        }
    };
    let known = serde_json::to_value(&spec).unwrap_or(Value::Null);
    unknown_fields(input, &known, "", &mut problems);
    let semantic = spec.validate();
    for (path, problem) in semantic.iter() {
        problems.add(path, problem);
    }
    problems.into_result().map(|()| spec)
}

/// Every key of `input` that the typed spec dropped is a field the user
/// misspelt or that does not exist. Free-form values (a policy definition)
/// round-trip whole, so they are never flagged.
fn unknown_fields(input: &Value, known: &Value, path: &str, problems: &mut Problems) {
    match (input, known) {
        (Value::Object(given), Value::Object(typed)) => {
            for (key, value) in given {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match typed.get(key) {
                    None => problems.add(child, "is not a known field"),
                    Some(typed_value) => unknown_fields(value, typed_value, &child, problems),
                }
            }
        }
        (Value::Array(given), Value::Array(typed)) => {
            for (i, (value, typed_value)) in given.iter().zip(typed).enumerate() {
                unknown_fields(value, typed_value, &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

fn is_identifier(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !value.starts_with(|c: char| c.is_ascii_digit())
}

fn is_uuid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_aws_id(value: &str, prefix: &str) -> bool {
    value.strip_prefix(prefix).is_some_and(|rest| {
        (8..=17).contains(&rest.len()) && rest.chars().all(|c| c.is_ascii_hexdigit())
    })
}

fn is_role_arn(value: &str) -> bool {
    is_arn(value, "iam") && value.contains(":role/")
}

/// `s3://bucket` or `s3://bucket/path`.
pub fn is_s3_url(value: &str) -> bool {
    value
        .strip_prefix("s3://")
        .map(|rest| rest.split('/').next().unwrap_or_default())
        .is_some_and(is_bucket_name)
}

/// Whether `url` is `base` or below it (`s3://b/raw/x` is under `s3://b/raw`).
pub fn is_under(url: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    url == base || url.starts_with(&format!("{base}/"))
}

fn unique<'a>(
    values: impl Iterator<Item = &'a str>,
    path: &str,
    what: &str,
    problems: &mut Problems,
) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, value) in values.enumerate() {
        if !seen.insert(value) {
            problems.add(
                format!("{path}[{i}]"),
                format!("repeats the {what} {value:?}"),
            );
        }
    }
}

impl PlatformSpec {
    /// Every rule a parsed spec must satisfy, each problem under its path.
    pub fn validate(&self) -> Problems {
        let mut p = Problems::new();
        p.check(
            is_environment_name(&self.environment),
            "environment",
            ENVIRONMENT_NAME_RULE,
        );

        p.check(
            is_uuid(&self.account.id),
            "account.id",
            "must be the Databricks account id (a UUID)",
        );
        if let Some(host) = &self.account.host {
            p.check(
                host.starts_with("https://") || host.starts_with("http://"),
                "account.host",
                "must be an https:// URL",
            );
        }
        p.check(
            is_arn(&self.account.credentials_secret_arn, "secretsmanager"),
            "account.credentials_secret_arn",
            "must be a Secrets Manager secret ARN",
        );

        p.check(
            lakeops_shared::validate::is_region(&self.aws.region),
            "aws.region",
            "must be an AWS region such as us-east-1",
        );
        p.check(
            is_role_arn(&self.aws.cross_account_role_arn),
            "aws.cross_account_role_arn",
            "must be an IAM role ARN",
        );
        for (field, value) in [
            ("aws.admin_role_arn", &self.aws.admin_role_arn),
            ("aws.environment_role_arn", &self.aws.environment_role_arn),
        ] {
            if let Some(arn) = value {
                p.check(is_role_arn(arn), field, "must be an IAM role ARN");
            }
        }

        p.check(
            is_bucket_name(&self.storage.root_bucket),
            "storage.root_bucket",
            "must be an S3 bucket name",
        );

        self.validate_network(&mut p);

        let needs_enterprise = self.network.private_link.is_some()
            || self
                .encryption
                .as_ref()
                .is_some_and(|e| e.managed_services.is_some() || e.storage.is_some());
        if let Some(encryption) = &self.encryption {
            for (field, key) in [
                ("encryption.managed_services", &encryption.managed_services),
                ("encryption.storage", &encryption.storage),
            ] {
                if let Some(key) = key {
                    p.check(
                        is_arn(&key.key_arn, "kms"),
                        format!("{field}.key_arn"),
                        "must be a KMS key ARN",
                    );
                    if let Some(alias) = &key.key_alias {
                        p.check(
                            alias.starts_with("alias/"),
                            format!("{field}.key_alias"),
                            "must start with alias/",
                        );
                    }
                }
            }
        }

        let ws = &self.workspace;
        p.require(&ws.name, "workspace.name");
        if !ws.name.trim().is_empty() {
            p.check(
                ws.name.contains(&self.environment),
                "workspace.name",
                format!("must contain the environment {:?}", self.environment),
            );
            p.check(
                ws.name.len() <= 64
                    && ws
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "workspace.name",
                "must be at most 64 letters, digits, '-' or '_'",
            );
        }
        if !PRICING_TIERS.contains(&ws.pricing_tier.as_str()) {
            p.add("workspace.pricing_tier", "must be PREMIUM or ENTERPRISE");
        } else if needs_enterprise && ws.pricing_tier != "ENTERPRISE" {
            p.add(
                "workspace.pricing_tier",
                "must be ENTERPRISE when PrivateLink or customer-managed keys are used",
            );
        }
        if let Some(deployment) = &ws.deployment_name {
            p.check(
                !deployment.is_empty()
                    && deployment.len() <= 63
                    && deployment
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "workspace.deployment_name",
                "must be lowercase letters, digits or '-'",
            );
        }
        p.check(
            (5..=24 * 60).contains(&ws.ready_timeout_minutes),
            "workspace.ready_timeout_minutes",
            "must be between 5 and 1440",
        );

        if let Some(logs) = &self.log_delivery {
            p.check(
                is_bucket_name(&logs.bucket),
                "log_delivery.bucket",
                "must be an S3 bucket name",
            );
            p.check(
                is_role_arn(&logs.role_arn),
                "log_delivery.role_arn",
                "must be an IAM role ARN",
            );
            p.check(
                !logs.audit_prefix.is_empty() && logs.audit_prefix != logs.billable_usage_prefix,
                "log_delivery.audit_prefix",
                "must be set and differ from billable_usage_prefix",
            );
            p.require(
                &logs.billable_usage_prefix,
                "log_delivery.billable_usage_prefix",
            );
        }

        for (i, group) in self.groups.iter().enumerate() {
            p.check(
                !group.name.trim().is_empty()
                    && group
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                format!("groups[{i}].name"),
                "must be letters, digits, '-' or '_'",
            );
            p.check(
                PERMISSIONS.contains(&group.workspace_permission.as_str()),
                format!("groups[{i}].workspace_permission"),
                "must be USER or ADMIN",
            );
        }
        unique(
            self.groups.iter().map(|g| g.name.as_str()),
            "groups",
            "group",
            &mut p,
        );
        p.check(
            PERMISSIONS.contains(&self.service_principal.workspace_permission.as_str()),
            "service_principal.workspace_permission",
            "must be USER or ADMIN",
        );

        if let Some(pat) = &self.pat {
            p.check(
                (1..=730).contains(&pat.lifetime_days),
                "pat.lifetime_days",
                "must be between 1 and 730",
            );
            p.check(
                pat.rotation_days >= 1 && pat.rotation_days < pat.lifetime_days,
                "pat.rotation_days",
                "must be at least 1 and shorter than lifetime_days, so the token is rotated before it expires",
            );
            if let Some(arn) = &pat.rotation_function_arn {
                p.check(
                    is_arn(arn, "lambda"),
                    "pat.rotation_function_arn",
                    "must be a Lambda function ARN",
                );
            }
        }

        self.validate_compute(&mut p);
        self.validate_unity_catalog(&mut p);

        for (i, job) in self.jobs.iter().enumerate() {
            p.check(
                !job.name.is_empty()
                    && job
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                format!("jobs[{i}].name"),
                "must be letters, digits, '-' or '_'",
            );
            p.check(
                job.notebook_path.starts_with('/'),
                format!("jobs[{i}].notebook_path"),
                "must be an absolute workspace path",
            );
        }
        unique(
            self.jobs.iter().map(|j| j.name.as_str()),
            "jobs",
            "job",
            &mut p,
        );
        for (i, repo) in self.repos.iter().enumerate() {
            p.check(
                repo.url.starts_with("https://"),
                format!("repos[{i}].url"),
                "must be an https:// URL",
            );
            p.check(
                REPO_PROVIDERS.contains(&repo.provider.as_str()),
                format!("repos[{i}].provider"),
                format!("must be one of {}", REPO_PROVIDERS.join(", ")),
            );
            p.check(
                repo.path.starts_with("/Repos/") && repo.path.len() > "/Repos/".len(),
                format!("repos[{i}].path"),
                "must be under /Repos/",
            );
        }
        unique(
            self.repos.iter().map(|r| r.path.as_str()),
            "repos",
            "path",
            &mut p,
        );
        if let Some(script) = &self.init_script {
            p.check(
                is_arn(&script.kms_key_arn, "kms"),
                "init_script.kms_key_arn",
                "must be a KMS key ARN",
            );
        }
        p
    }

    fn validate_network(&self, p: &mut Problems) {
        let net = &self.network;
        p.check(
            is_aws_id(&net.vpc_id, "vpc-"),
            "network.vpc_id",
            "must be a VPC id (vpc-...)",
        );
        p.check(
            net.subnet_ids.len() >= 2,
            "network.subnet_ids",
            "must list at least two subnets (in different availability zones)",
        );
        for (i, subnet) in net.subnet_ids.iter().enumerate() {
            p.check(
                is_aws_id(subnet, "subnet-"),
                format!("network.subnet_ids[{i}]"),
                "must be a subnet id (subnet-...)",
            );
        }
        unique(
            net.subnet_ids.iter().map(String::as_str),
            "network.subnet_ids",
            "subnet",
            p,
        );
        p.check(
            !net.security_group_ids.is_empty(),
            "network.security_group_ids",
            "must list at least one security group",
        );
        for (i, group) in net.security_group_ids.iter().enumerate() {
            p.check(
                is_aws_id(group, "sg-"),
                format!("network.security_group_ids[{i}]"),
                "must be a security group id (sg-...)",
            );
        }
        unique(
            net.security_group_ids.iter().map(String::as_str),
            "network.security_group_ids",
            "security group",
            p,
        );
        if let Some(link) = &net.private_link {
            p.check(
                is_aws_id(&link.rest_vpc_endpoint_id, "vpce-"),
                "network.private_link.rest_vpc_endpoint_id",
                "must be a VPC endpoint id (vpce-...)",
            );
            p.check(
                is_aws_id(&link.relay_vpc_endpoint_id, "vpce-"),
                "network.private_link.relay_vpc_endpoint_id",
                "must be a VPC endpoint id (vpce-...)",
            );
            p.check(
                link.rest_vpc_endpoint_id != link.relay_vpc_endpoint_id,
                "network.private_link.relay_vpc_endpoint_id",
                "must differ from rest_vpc_endpoint_id",
            );
            p.check(
                ACCESS_LEVELS.contains(&link.private_access_level.as_str()),
                "network.private_link.private_access_level",
                "must be ACCOUNT or ENDPOINT",
            );
        }
    }

    fn validate_compute(&self, p: &mut Problems) {
        let compute = &self.compute;
        p.require(
            &compute.cluster.spark_version,
            "compute.cluster.spark_version",
        );
        p.require(
            &compute.cluster.node_type_id,
            "compute.cluster.node_type_id",
        );
        p.check(
            (10..=10_000).contains(&compute.cluster.autotermination_minutes),
            "compute.cluster.autotermination_minutes",
            "must be between 10 and 10000",
        );
        if let Some(policy) = &compute.policy {
            p.check(
                policy.definition.is_object(),
                "compute.policy.definition",
                "must be a JSON object",
            );
        }
        if let Some(arn) = &compute.instance_profile_arn {
            p.check(
                is_arn(arn, "iam") && arn.contains(":instance-profile/"),
                "compute.instance_profile_arn",
                "must be an IAM instance profile ARN",
            );
        }
        if let Some(pool) = &compute.instance_pool {
            p.require(&pool.node_type_id, "compute.instance_pool.node_type_id");
            p.check(
                pool.max_capacity >= 1,
                "compute.instance_pool.max_capacity",
                "must be at least 1",
            );
            p.check(
                pool.min_idle_instances <= pool.max_capacity,
                "compute.instance_pool.min_idle_instances",
                "must not exceed max_capacity",
            );
        }
    }

    fn validate_unity_catalog(&self, p: &mut Problems) {
        let uc = &self.unity_catalog;
        if let Some(id) = &uc.metastore.existing_id {
            p.check(
                is_uuid(id),
                "unity_catalog.metastore.existing_id",
                "must be a metastore id (a UUID)",
            );
            p.check(
                uc.metastore.storage_root.is_none(),
                "unity_catalog.metastore.storage_root",
                "cannot be set when reusing an existing metastore",
            );
        }
        if let Some(root) = &uc.metastore.storage_root {
            p.check(
                is_s3_url(root),
                "unity_catalog.metastore.storage_root",
                "must be an s3:// URL",
            );
        }
        p.check(
            is_role_arn(&uc.storage_credential.role_arn),
            "unity_catalog.storage_credential.role_arn",
            "must be an IAM role ARN",
        );
        for (i, location) in uc.external_locations.iter().enumerate() {
            p.check(
                is_identifier(&location.name),
                format!("unity_catalog.external_locations[{i}].name"),
                "must be lowercase letters, digits or '_'",
            );
            p.check(
                is_s3_url(&location.url),
                format!("unity_catalog.external_locations[{i}].url"),
                "must be an s3:// URL",
            );
        }
        unique(
            uc.external_locations.iter().map(|l| l.name.as_str()),
            "unity_catalog.external_locations",
            "name",
            p,
        );
        if let Some(name) = &uc.catalog.name {
            p.check(
                is_identifier(name),
                "unity_catalog.catalog.name",
                "must be lowercase letters, digits or '_'",
            );
        }
        p.check(
            is_s3_url(&uc.catalog.storage_root),
            "unity_catalog.catalog.storage_root",
            "must be an s3:// URL",
        );
        p.check(
            !uc.schemas.is_empty(),
            "unity_catalog.schemas",
            "must list at least one schema",
        );
        for (i, schema) in uc.schemas.iter().enumerate() {
            p.check(
                is_identifier(schema),
                format!("unity_catalog.schemas[{i}]"),
                "must be lowercase letters, digits or '_'",
            );
        }
        unique(
            uc.schemas.iter().map(String::as_str),
            "unity_catalog.schemas",
            "schema",
            p,
        );
        for (i, volume) in uc.volumes.iter().enumerate() {
            let path = format!("unity_catalog.volumes[{i}]");
            p.check(
                is_identifier(&volume.name),
                format!("{path}.name"),
                "must be lowercase letters, digits or '_'",
            );
            p.check(
                uc.schemas.contains(&volume.schema),
                format!("{path}.schema"),
                "must be one of unity_catalog.schemas",
            );
            if !is_s3_url(&volume.location) {
                p.add(format!("{path}.location"), "must be an s3:// URL");
            } else if !uc
                .external_locations
                .iter()
                .any(|l| is_under(&volume.location, &l.url))
            {
                p.add(
                    format!("{path}.location"),
                    "must be under the url of one of unity_catalog.external_locations",
                );
            }
        }
        unique(
            uc.volumes
                .iter()
                .map(|v| format!("{}.{}", v.schema, v.name))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
            "unity_catalog.volumes",
            "volume",
            p,
        );
    }

    /// Whether PrivateLink is configured.
    pub fn private_link(&self) -> Option<&PrivateLinkSpec> {
        self.network.private_link.as_ref()
    }

    /// The catalog name: the spec's, or the environment with `-` as `_`.
    pub fn catalog_name(&self) -> String {
        self.unity_catalog
            .catalog
            .name
            .clone()
            .unwrap_or_else(|| self.environment.replace('-', "_"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The smallest valid spec.
    pub fn minimal() -> Value {
        json!({
            "environment": "dev",
            "account": {
                "id": "00000000-0000-0000-0000-000000000001",
                "credentials_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:lakeops/dev/account-sp-AbCdEf"
            },
            "aws": {
                "region": "us-east-1",
                "cross_account_role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-cross-account"
            },
            "storage": {"root_bucket": "lakeops-dev-root"},
            "network": {
                "vpc_id": "vpc-0a1b2c3d4e5f60718",
                "subnet_ids": ["subnet-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60719"],
                "security_group_ids": ["sg-0a1b2c3d4e5f60718"]
            },
            "workspace": {"name": "lakeops-dev"},
            "compute": {"cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "m5d.large"}},
            "unity_catalog": {
                "storage_credential": {"role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-uc"},
                "catalog": {"storage_root": "s3://lakeops-dev-catalog/managed"}
            }
        })
    }

    /// A spec that uses every option.
    pub fn full() -> Value {
        let mut spec = minimal();
        let extra = json!({
            "network": {
                "vpc_id": "vpc-0a1b2c3d4e5f60718",
                "subnet_ids": ["subnet-0a1b2c3d4e5f60718", "subnet-0a1b2c3d4e5f60719"],
                "security_group_ids": ["sg-0a1b2c3d4e5f60718"],
                "private_link": {
                    "rest_vpc_endpoint_id": "vpce-0a1b2c3d4e5f60718",
                    "relay_vpc_endpoint_id": "vpce-0a1b2c3d4e5f60719"
                }
            },
            "encryption": {
                "managed_services": {"key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555", "key_alias": "alias/lakeops-dev-ms"},
                "storage": {"key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-666666666666"}
            },
            "workspace": {"name": "lakeops-dev", "pricing_tier": "ENTERPRISE"},
            "log_delivery": {"bucket": "lakeops-logs", "role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-logs"},
            "groups": [{"name": "DE", "workspace_permission": "USER"}, {"name": "ADMIN", "workspace_permission": "ADMIN"}],
            "service_principal": {"workspace_permission": "ADMIN"},
            "pat": {"lifetime_days": 90, "rotation_days": 30},
            "compute": {
                "cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "m5d.large", "autotermination_minutes": 20},
                "policy": {"definition": {"spark_version": {"type": "fixed", "value": "15.4.x-scala2.12"}}},
                "instance_profile_arn": "arn:aws:iam::123456789012:instance-profile/lakeops-dev",
                "instance_pool": {"node_type_id": "m5d.large", "max_capacity": 4}
            },
            "unity_catalog": {
                "storage_credential": {"role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-uc"},
                "external_locations": [{"name": "raw_landing", "url": "s3://lakeops-dev-raw/landing"}],
                "catalog": {"storage_root": "s3://lakeops-dev-catalog/managed"},
                "volumes": [{"name": "landing", "schema": "raw", "location": "s3://lakeops-dev-raw/landing/files"}]
            },
            "jobs": [{"name": "sample", "notebook_path": "/Shared/sample"}],
            "repos": [{"url": "https://github.com/example/etl.git", "provider": "gitHub", "path": "/Repos/lakeops/etl"}],
            "init_script": {"kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-777777777777"},
            "destroy": {"include_adopted": false}
        });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    }

    fn problems_of(value: &Value) -> Vec<(String, String)> {
        match parse(value) {
            Ok(_) => vec![],
            Err(p) => p
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn paths(value: &Value) -> Vec<String> {
        problems_of(value).into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn minimal_and_full_specs_are_valid() {
        let spec = parse(&minimal()).unwrap();
        assert_eq!(spec.unity_catalog.schemas, vec!["sandbox", "raw"]);
        assert_eq!(spec.workspace.pricing_tier, "PREMIUM");
        assert_eq!(spec.catalog_name(), "dev");
        assert!(spec.private_link().is_none());
        let full = parse(&full()).unwrap();
        assert_eq!(full.groups.len(), 2);
        assert!(full.private_link().is_some());
    }

    #[test]
    fn the_sample_events_are_valid_specs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.starts_with("provision-") || !name.ends_with(".json") {
                continue;
            }
            let event: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            // Stage events and lists of environments may name specs in S3.
            let Some(spec) = event.get("spec").filter(|s| s.is_object()) else {
                continue;
            };
            if let Err(problems) = parse(spec) {
                panic!("{name}: {problems}");
            }
            seen += 1;
        }
        assert!(seen >= 2, "expected the minimal and the full sample inputs");
    }

    #[test]
    fn reports_every_invalid_field_at_once_by_path() {
        let mut spec = full();
        spec["environment"] = json!("Dev!");
        spec["account"]["id"] = json!("not-a-uuid");
        spec["aws"]["region"] = json!("useast1");
        spec["network"]["subnet_ids"] = json!(["subnet-0a1b2c3d4e5f60718", "nope"]);
        spec["network"]["security_group_ids"] = json!([]);
        spec["workspace"]["pricing_tier"] = json!("PREMIUM");
        spec["groups"][1]["workspace_permission"] = json!("OWNER");
        spec["pat"]["rotation_days"] = json!(120);
        spec["unity_catalog"]["volumes"][0]["location"] = json!("s3://elsewhere/x");
        let found = paths(&spec);
        for expected in [
            "environment",
            "account.id",
            "aws.region",
            "network.subnet_ids[1]",
            "network.security_group_ids",
            "workspace.pricing_tier",
            "workspace.name",
            "groups[1].workspace_permission",
            "pat.rotation_days",
            "unity_catalog.volumes[0].location",
        ] {
            assert!(
                found.iter().any(|p| p == expected),
                "missing {expected} in {found:?}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_reported_with_their_path() {
        let mut spec = minimal();
        spec["worksapce"] = json!({});
        spec["network"]["subnets"] = json!([]);
        spec["compute"]["cluster"]["num_workers"] = json!(3);
        let found = paths(&spec);
        assert_eq!(
            found,
            vec![
                "compute.cluster.num_workers",
                "network.subnets",
                "worksapce"
            ]
        );
    }

    #[test]
    fn free_form_policy_definitions_are_not_unknown_fields() {
        let spec = full();
        assert!(parse(&spec).is_ok());
    }

    #[test]
    fn type_errors_name_the_field() {
        let mut spec = minimal();
        spec["network"]["subnet_ids"] = json!("subnet-0a1b2c3d4e5f60718");
        let problems = problems_of(&spec);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "network.subnet_ids");
        assert!(
            problems[0].1.contains("expected a sequence"),
            "{problems:?}"
        );

        let mut spec = minimal();
        spec.as_object_mut().unwrap().remove("workspace");
        assert_eq!(paths(&spec), vec!["spec"]);
        assert!(problems_of(&spec)[0]
            .1
            .contains("missing field `workspace`"));

        assert_eq!(paths(&json!("s3://x")), vec!["spec"]);
    }

    #[test]
    fn cross_field_rules() {
        let mut spec = minimal();
        spec["workspace"]["name"] = json!("lakeops-prod");
        assert_eq!(paths(&spec), vec!["workspace.name"]);

        let mut spec = minimal();
        spec["unity_catalog"]["metastore"] = json!({"existing_id": "00000000-0000-0000-0000-0000000000aa", "storage_root": "s3://bucket-x/x"});
        assert_eq!(paths(&spec), vec!["unity_catalog.metastore.storage_root"]);

        let mut spec = minimal();
        spec["groups"] = json!([{"name": "DE", "workspace_permission": "USER"}, {"name": "DE", "workspace_permission": "ADMIN"}]);
        assert_eq!(paths(&spec), vec!["groups[1]"]);

        let mut spec = minimal();
        spec["unity_catalog"]["volumes"] =
            json!([{"name": "v", "schema": "gold", "location": "s3://x/y"}]);
        assert_eq!(
            paths(&spec),
            vec![
                "unity_catalog.volumes[0].schema",
                "unity_catalog.volumes[0].location"
            ]
        );

        let mut spec = full();
        spec["network"]["private_link"]["relay_vpc_endpoint_id"] =
            spec["network"]["private_link"]["rest_vpc_endpoint_id"].clone();
        assert_eq!(
            paths(&spec),
            vec!["network.private_link.relay_vpc_endpoint_id"]
        );
    }

    #[test]
    fn helpers() {
        assert!(is_uuid("00000000-0000-0000-0000-000000000001"));
        assert!(!is_uuid("00000000-0000-0000-0000-00000000000"));
        assert!(lakeops_shared::validate::is_region("us-east-1"));
        assert!(lakeops_shared::validate::is_region("us-gov-west-1"));
        assert!(!lakeops_shared::validate::is_region("us-east"));
        assert!(is_s3_url("s3://bucket/a/b"));
        assert!(is_s3_url("s3://bucket"));
        assert!(!is_s3_url("https://bucket"));
        assert!(is_under("s3://b/raw/x", "s3://b/raw/"));
        assert!(is_under("s3://b/raw", "s3://b/raw"));
        assert!(!is_under("s3://b/rawx", "s3://b/raw"));
    }

    proptest! {
        #[test]
        fn environment_names_are_safe_in_every_resource_name(env in "[a-z][a-z0-9]{1,15}") {
            prop_assert!(is_environment_name(&env));
        }

        /// `-` and `_` too: a separator inside a name lets one environment's
        /// IAM patterns (`lakeops-dev-*`) match another's names (`dev-eu`).
        #[test]
        fn any_uppercase_separator_or_symbol_is_rejected(env in "[a-z]{1,5}[A-Z_.!/ -][a-z]{0,5}") {
            prop_assert!(!is_environment_name(&env));
            let mut spec = minimal();
            spec["environment"] = json!(env);
            prop_assert!(paths(&spec).contains(&"environment".to_string()));
        }

        #[test]
        fn each_broken_subnet_is_reported_at_its_index(bad in proptest::collection::vec(any::<bool>(), 2..6)) {
            let mut spec = minimal();
            let subnets: Vec<String> = bad.iter().enumerate()
                .map(|(i, b)| if *b { format!("bad-{i}") } else { format!("subnet-0a1b2c3d4e5f6{i:04}") })
                .collect();
            spec["network"]["subnet_ids"] = json!(subnets);
            let found = paths(&spec);
            let expected: Vec<String> = bad.iter().enumerate().filter(|(_, b)| **b)
                .map(|(i, _)| format!("network.subnet_ids[{i}]")).collect();
            prop_assert_eq!(found, expected);
        }
    }
}
