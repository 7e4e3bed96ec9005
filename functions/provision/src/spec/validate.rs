//! The rules a parsed spec must satisfy, one method per section of the spec
//! (account, aws, network, encryption, workspace, ...). Each records its
//! problems under the field's path and carries on, so one run reports them all.

use super::PlatformSpec;
use lakeops_shared::validate::{
    is_arn, is_bucket_name, is_environment_name, is_region, is_role_arn, is_s3_url, is_uuid,
    Problems, ENVIRONMENT_NAME_RULE,
};

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

fn is_identifier(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !value.starts_with(|c: char| c.is_ascii_digit())
}

fn is_aws_id(value: &str, prefix: &str) -> bool {
    value.strip_prefix(prefix).is_some_and(|rest| {
        (8..=17).contains(&rest.len()) && rest.chars().all(|c| c.is_ascii_hexdigit())
    })
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
        self.validate_account(&mut p);
        self.validate_aws(&mut p);
        p.check(
            is_bucket_name(&self.storage.root_bucket),
            "storage.root_bucket",
            "must be an S3 bucket name",
        );
        self.validate_network(&mut p);
        self.validate_encryption(&mut p);
        self.validate_workspace(&mut p);
        self.validate_log_delivery(&mut p);
        self.validate_principals(&mut p);
        self.validate_pat(&mut p);
        self.validate_compute(&mut p);
        self.validate_unity_catalog(&mut p);
        self.validate_jobs(&mut p);
        self.validate_repos(&mut p);
        if let Some(script) = &self.init_script {
            p.check(
                is_arn(&script.kms_key_arn, "kms"),
                "init_script.kms_key_arn",
                "must be a KMS key ARN",
            );
        }
        p
    }

    fn validate_account(&self, p: &mut Problems) {
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
    }

    fn validate_aws(&self, p: &mut Problems) {
        p.check(
            is_region(&self.aws.region),
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
    }

    /// PrivateLink and customer-managed keys are Databricks ENTERPRISE features.
    fn needs_enterprise(&self) -> bool {
        self.network.private_link.is_some()
            || self
                .encryption
                .as_ref()
                .is_some_and(|e| e.managed_services.is_some() || e.storage.is_some())
    }

    fn validate_encryption(&self, p: &mut Problems) {
        let Some(encryption) = &self.encryption else {
            return;
        };
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

    fn validate_workspace(&self, p: &mut Problems) {
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
        } else if self.needs_enterprise() && ws.pricing_tier != "ENTERPRISE" {
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
    }

    fn validate_log_delivery(&self, p: &mut Problems) {
        let Some(logs) = &self.log_delivery else {
            return;
        };
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

    /// The workspace's groups and the service principal, and their permissions.
    fn validate_principals(&self, p: &mut Problems) {
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
            p,
        );
        p.check(
            PERMISSIONS.contains(&self.service_principal.workspace_permission.as_str()),
            "service_principal.workspace_permission",
            "must be USER or ADMIN",
        );
    }

    fn validate_pat(&self, p: &mut Problems) {
        let Some(pat) = &self.pat else {
            return;
        };
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

    fn validate_jobs(&self, p: &mut Problems) {
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
        unique(self.jobs.iter().map(|j| j.name.as_str()), "jobs", "job", p);
    }

    fn validate_repos(&self, p: &mut Problems) {
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
            p,
        );
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::{full, minimal, paths};
    use proptest::prelude::*;
    use serde_json::json;

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
