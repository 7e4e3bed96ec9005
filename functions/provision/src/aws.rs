//! The AWS side: the spec in S3, and credentials in Secrets Manager.

use lakeops_shared::aws::aws_error;
use lakeops_shared::credentials::Credential;
use lakeops_shared::Error;
use serde_json::Value;

// The one parser of s3:// URIs (a valid bucket name and a key).
pub use lakeops_shared::s3_uri::parse_s3_uri;

/// The spec as given inline, or read from the `s3://` URI given instead.
pub async fn resolve_spec(s3: &aws_sdk_s3::Client, spec: &Value) -> Result<Value, Error> {
    lakeops_shared::aws::resolve_json(s3, spec, "spec").await
}

/// The roles to assume, in order, for an environment's own AWS account: the
/// organisation's admin role, then the environment's role. Pure.
pub fn role_chain(admin_role_arn: Option<&str>, environment_role_arn: Option<&str>) -> Vec<String> {
    admin_role_arn
        .into_iter()
        .chain(environment_role_arn)
        .map(str::to_string)
        .collect()
}

/// A session name STS accepts (2-64 of `[\w+=,.@-]`). Pure.
pub fn session_name(environment: &str) -> String {
    let name: String = format!("lakeops-provision-{environment}")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(*c))
        .take(64)
        .collect();
    name
}

/// An SDK config whose credentials are those of the last role of `roles`,
/// each assumed with the credentials of the one before, and when those
/// credentials expire (`None` for an empty chain: the base credentials).
pub async fn assume_roles(
    base: &aws_config::SdkConfig,
    roles: &[String],
    session: &str,
) -> Result<(aws_config::SdkConfig, Option<std::time::SystemTime>), Error> {
    let mut config = base.clone();
    let mut expiry = None;
    for role in roles {
        let sts = lakeops_shared::aws::sts(&config);
        let out = sts
            .assume_role()
            .role_arn(role)
            .role_session_name(session)
            .send()
            .await
            .map_err(|e| aws_error(format!("assuming role {role}"), e))?;
        let credentials = out.credentials().ok_or_else(|| {
            Error::terminal(format!("assuming role {role}: STS returned no credentials"))
        })?;
        expiry = std::time::SystemTime::try_from(*credentials.expiration()).ok();
        let provider = aws_credential_types::Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_string()),
            expiry,
            "lakeops-assumed-role",
        );
        config = config
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build();
    }
    Ok((config, expiry))
}

/// What Secrets Manager knows about one secret, without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub arn: String,
    pub deleted: bool,
    pub rotation_enabled: bool,
    pub rotation_lambda_arn: Option<String>,
    pub rotation_days: Option<i64>,
}

pub struct Secrets<'a> {
    pub client: &'a aws_sdk_secretsmanager::Client,
}

impl Secrets<'_> {
    /// A lakeops credential secret, parsed (the value never leaves as text).
    pub async fn credential(&self, id: &str) -> Result<Credential, Error> {
        lakeops_shared::aws::read_credential(self.client, id).await
    }

    pub async fn describe(&self, name: &str) -> Result<Option<SecretInfo>, Error> {
        match self.client.describe_secret().secret_id(name).send().await {
            Ok(out) => Ok(Some(SecretInfo {
                arn: out.arn().unwrap_or_default().to_string(),
                deleted: out.deleted_date().is_some(),
                rotation_enabled: out.rotation_enabled().unwrap_or(false),
                rotation_lambda_arn: out.rotation_lambda_arn().map(str::to_string),
                rotation_days: out
                    .rotation_rules()
                    .and_then(|r| r.automatically_after_days()),
            })),
            Err(e) if lakeops_shared::aws::error_code(&e) == Some("ResourceNotFoundException") => {
                Ok(None)
            }
            Err(e) => Err(aws_error(format!("describing secret {name}"), e)),
        }
    }

    /// Store a credential under `name`: create the secret, or restore it from
    /// a pending deletion, or put a new version. Returns its ARN.
    pub async fn store(
        &self,
        name: &str,
        description: &str,
        credential: &Credential,
        environment: &str,
    ) -> Result<String, Error> {
        let value = credential.to_secret_string();
        match self.describe(name).await? {
            None => {
                let tag = aws_sdk_secretsmanager::types::Tag::builder()
                    .key("lakeops:environment")
                    .value(environment)
                    .build();
                let managed = aws_sdk_secretsmanager::types::Tag::builder()
                    .key("lakeops:managed-by")
                    .value("provision")
                    .build();
                let out = self
                    .client
                    .create_secret()
                    .name(name)
                    .description(description)
                    .secret_string(value.expose())
                    .tags(tag)
                    .tags(managed)
                    .send()
                    .await
                    .map_err(|e| aws_error(format!("creating secret {name}"), e))?;
                Ok(out.arn().unwrap_or_default().to_string())
            }
            Some(info) => {
                if info.deleted {
                    self.client
                        .restore_secret()
                        .secret_id(name)
                        .send()
                        .await
                        .map_err(|e| aws_error(format!("restoring secret {name}"), e))?;
                }
                self.client
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value.expose())
                    .send()
                    .await
                    .map_err(|e| aws_error(format!("storing secret {name}"), e))?;
                Ok(info.arn)
            }
        }
    }

    /// Turn rotation on (or change it) without rotating now.
    pub async fn enable_rotation(
        &self,
        name: &str,
        function_arn: &str,
        days: i64,
    ) -> Result<(), Error> {
        let rules = aws_sdk_secretsmanager::types::RotationRulesType::builder()
            .automatically_after_days(days)
            .build();
        self.client
            .rotate_secret()
            .secret_id(name)
            .rotation_lambda_arn(function_arn)
            .rotation_rules(rules)
            .rotate_immediately(false)
            .send()
            .await
            .map_err(|e| aws_error(format!("enabling rotation of secret {name}"), e))?;
        Ok(())
    }

    /// Schedule deletion, with a recovery window so a mistaken destroy can be undone.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        match self
            .client
            .delete_secret()
            .secret_id(name)
            .recovery_window_in_days(7)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if lakeops_shared::aws::error_code(&e) == Some("ResourceNotFoundException") => {
                Ok(())
            }
            Err(e) => Err(aws_error(format!("deleting secret {name}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_assumed_admin_first() {
        assert_eq!(role_chain(Some("a"), Some("b")), vec!["a", "b"]);
        assert_eq!(role_chain(None, Some("b")), vec!["b"]);
        assert!(role_chain(None, None).is_empty());
        assert_eq!(session_name("dev"), "lakeops-provision-dev");
    }
}
