//! The platform spec: one environment's Databricks on AWS platform, as JSON.
//!
//! [`parse`] reads a spec from JSON and reports every problem at once, each
//! under the path of its field (`network.subnet_ids[1]: is not a subnet id`):
//! unknown fields, then every semantic rule in [`PlatformSpec::validate`].
//! Credentials never appear in a spec; it names Secrets Manager ARNs instead.
//!
//! Here are the types; `parse.rs` reads them from JSON and `validate.rs`
//! holds the rules.

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod parse;
#[cfg(test)]
pub(crate) mod tests;
mod validate;

// `is_s3_url` moved to lakeops-shared beside the other predicates; the
// re-export keeps `provision::spec::is_s3_url` public as it was.
pub use lakeops_shared::validate::is_s3_url;
pub use parse::parse;
pub use validate::is_under;

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

impl PlatformSpec {
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
