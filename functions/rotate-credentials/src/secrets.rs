//! Secrets Manager: the rotation's versions and stages.

use crate::steps::{SecretMetadata, AWSCURRENT, AWSPENDING};
use aws_sdk_secretsmanager::Client;
use lakeops_shared::aws::aws_error;
use lakeops_shared::credentials::Credential;
use lakeops_shared::{Error, Secret};
use std::collections::BTreeSet;

/// A version's value, parsed.
#[derive(Debug, Clone)]
pub struct StoredCredential {
    pub version_id: String,
    /// When the version was stored, seconds since the epoch.
    pub stored_at: i64,
    pub credential: Credential,
}

#[derive(Clone)]
pub struct SecretsStore {
    client: Client,
}

impl SecretsStore {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub async fn metadata(&self, secret_id: &str) -> Result<SecretMetadata, Error> {
        let out = self
            .client
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| aws_error("DescribeSecret", e))?;
        Ok(SecretMetadata {
            rotation_enabled: out.rotation_enabled().unwrap_or(false),
            versions: out
                .version_ids_to_stages()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        })
    }

    /// Every version id of the secret, labelled or not.
    pub async fn version_ids(&self, secret_id: &str) -> Result<BTreeSet<String>, Error> {
        let mut ids = BTreeSet::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .list_secret_version_ids()
                .secret_id(secret_id)
                .include_deprecated(true)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| aws_error("ListSecretVersionIds", e))?;
            ids.extend(
                out.versions()
                    .iter()
                    .filter_map(|v| v.version_id().map(String::from)),
            );
            match out.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => return Ok(ids),
            }
        }
    }

    /// The value of a version (by id) or of a stage, parsed; `None` when that
    /// version or stage has no value. A value that is not a valid credential
    /// is invalid input naming its fields (never its content).
    pub async fn read(
        &self,
        secret_id: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Option<StoredCredential>, Error> {
        let what = match (version_id, stage) {
            (Some(v), _) => format!("version {v}"),
            (None, Some(s)) => s.to_string(),
            (None, None) => AWSCURRENT.to_string(),
        };
        let result = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .set_version_id(version_id.map(String::from))
            .set_version_stage(stage.map(String::from))
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(aws_error(format!("GetSecretValue of {what}"), e)),
        };
        let Some(text) = out.secret_string().map(Secret::new) else {
            return Err(Error::invalid_input(format!(
                "{what} of the secret has no SecretString"
            )));
        };
        let credential = Credential::parse(text.expose()).map_err(|problems| {
            Error::invalid_fields(&problems).context(format!("{what} of the secret"))
        })?;
        Ok(Some(StoredCredential {
            version_id: out.version_id().unwrap_or_default().to_string(),
            stored_at: out.created_date().map(|d| d.secs()).unwrap_or(i64::MIN),
            credential,
        }))
    }

    pub async fn current(&self, secret_id: &str) -> Result<StoredCredential, Error> {
        self.read(secret_id, None, Some(AWSCURRENT))
            .await?
            .ok_or_else(|| Error::terminal("the secret has no AWSCURRENT value"))
    }

    pub async fn put_pending(
        &self,
        secret_id: &str,
        token: &str,
        credential: &Credential,
    ) -> Result<(), Error> {
        self.client
            .put_secret_value()
            .secret_id(secret_id)
            .client_request_token(token)
            .secret_string(credential.to_secret_string().expose())
            .version_stages(AWSPENDING)
            .send()
            .await
            .map_err(|e| aws_error("PutSecretValue", e))?;
        Ok(())
    }

    /// Make `token` current. Secrets Manager moves `AWSPREVIOUS` to the
    /// version that loses `AWSCURRENT`.
    pub async fn promote(
        &self,
        secret_id: &str,
        token: &str,
        current_version: &str,
    ) -> Result<(), Error> {
        self.client
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(AWSCURRENT)
            .move_to_version_id(token)
            .remove_from_version_id(current_version)
            .send()
            .await
            .map_err(|e| aws_error("UpdateSecretVersionStage AWSCURRENT", e))?;
        Ok(())
    }

    /// Drop `AWSPENDING` from the finished version, which marks the rotation
    /// complete (Secrets Manager accepts either this or both labels on one
    /// version).
    pub async fn clear_pending(&self, secret_id: &str, token: &str) -> Result<(), Error> {
        self.client
            .update_secret_version_stage()
            .secret_id(secret_id)
            .version_stage(AWSPENDING)
            .remove_from_version_id(token)
            .send()
            .await
            .map_err(|e| aws_error("UpdateSecretVersionStage AWSPENDING", e))?;
        Ok(())
    }
}
