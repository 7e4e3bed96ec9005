//! `rotate-credentials`: the Secrets Manager rotation function of lakeops.
//!
//! It rotates the three kinds of credential described in
//! [`lakeops_shared::credentials`]: Databricks personal access tokens,
//! Databricks service principal OAuth secrets and IAM access keys. Each step
//! of the rotation contract is decided by [`steps::decide`] from the version
//! stages alone, then carried out by the kind's issuer.
//!
//! | step         | PAT                          | OAuth secret                  | access key                         |
//! |--------------|------------------------------|-------------------------------|------------------------------------|
//! | createSecret | clean up, create token       | clean up, create secret       | clean up (2-key cap), create key   |
//! | setSecret    | check the pending value      | check the pending value       | check the pending value            |
//! | testSecret   | list tokens with new token   | token exchange with new secret| GetCallerIdentity with new key     |
//! | finishSecret | promote, revoke old token    | promote, delete old secret    | promote, deactivate old key        |

pub mod cleanup;
pub mod databricks;
#[cfg(feature = "aws")]
pub mod iam;
#[cfg(feature = "aws")]
pub mod secrets;
pub mod steps;

use lakeops_shared::credentials::Credential;
use lakeops_shared::databricks::DatabricksSettings;
use lakeops_shared::retry::RetryPolicy;
use lakeops_shared::settings::{Env, SettingsError};
use lakeops_shared::Error;
use std::time::Duration;

// The handler: AWS clients (not built without the `aws` feature, for fuzz/).
#[cfg(feature = "aws")]
use crate::cleanup::{access_keys_to_delete, pat_comment, pats_to_delete, sp_secrets_to_delete};
#[cfg(feature = "aws")]
use crate::databricks::{test_token, SpSecrets, TokenApi};
#[cfg(feature = "aws")]
use crate::iam::{check_key, AccessKeys};
#[cfg(feature = "aws")]
use crate::secrets::{SecretsStore, StoredCredential};
#[cfg(feature = "aws")]
use crate::steps::{decide, Action, RotationEvent, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
#[cfg(feature = "aws")]
use aws_config::SdkConfig;
#[cfg(feature = "aws")]
use lakeops_shared::credentials::{DatabricksPat, DatabricksSpSecret, IamAccessKey};
#[cfg(feature = "aws")]
use lakeops_shared::databricks::{Credentials, DatabricksConnector};
#[cfg(feature = "aws")]
use lakeops_shared::{ErrorKind, Secret};
#[cfg(feature = "aws")]
use serde_json::{json, Value};
#[cfg(feature = "aws")]
use tracing::Instrument;

pub const FUNCTION_NAME: &str = "rotate-credentials";

/// What the function reads from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub databricks: DatabricksSettings,
    /// How long testSecret waits for a new IAM key to be accepted by STS
    /// (`IAM_KEY_CHECK_SECONDS`, default 60).
    pub iam_key_check: RetryPolicy,
}

impl Settings {
    pub fn read(env: &mut Env) -> Settings {
        let databricks = DatabricksSettings::read(env);
        let budget: u64 = env.or("IAM_KEY_CHECK_SECONDS", 60);
        Settings {
            databricks,
            iam_key_check: RetryPolicy {
                initial_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(8),
                budget: Duration::from_secs(budget),
                max_attempts: 30,
            },
        }
    }

    pub fn from_process() -> Result<Settings, SettingsError> {
        let mut env = Env::from_process();
        let settings = Settings::read(&mut env);
        env.finish().map(|()| settings)
    }
}

/// Clients built once at init.
#[cfg(feature = "aws")]
#[derive(Clone)]
pub struct Rotator {
    store: SecretsStore,
    keys: AccessKeys,
    sdk_config: SdkConfig,
    databricks: DatabricksConnector,
    iam_key_check: RetryPolicy,
}

#[cfg(feature = "aws")]
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(feature = "aws")]
impl Rotator {
    pub fn new(sdk_config: &SdkConfig, settings: Settings) -> Result<Rotator, Error> {
        Ok(Rotator {
            store: SecretsStore::new(lakeops_shared::aws::secretsmanager(sdk_config)),
            keys: AccessKeys::new(lakeops_shared::aws::iam(sdk_config)),
            sdk_config: sdk_config.clone(),
            databricks: DatabricksConnector::new(settings.databricks)?,
            iam_key_check: settings.iam_key_check,
        })
    }

    /// Handle one rotation event. Returns a summary without any secret.
    pub async fn handle(&self, event: Value) -> Result<Value, Error> {
        let event = RotationEvent::from_json(&event)
            .map_err(|p| Error::invalid_fields(&p).context("rotation event"))?;
        let span = tracing::info_span!(
            "rotation",
            step = %event.step,
            secret_id = %event.secret_id,
            version = %event.client_request_token
        );
        let result = self.run(&event).instrument(span.clone()).await;
        let _entered = span.enter();
        match &result {
            Ok(summary) => tracing::info!(outcome = %summary["outcome"], "step done"),
            Err(error) => tracing::error!(error = %error, kind = %error.kind, "step failed"),
        }
        result
    }

    async fn run(&self, event: &RotationEvent) -> Result<Value, Error> {
        let secret_id = event.secret_id.as_str();
        let token = event.client_request_token.as_str();
        let metadata = self.store.metadata(secret_id).await?;
        let pending =
            if metadata.has_stage(token, AWSPENDING) && !metadata.has_stage(token, AWSCURRENT) {
                self.store.read(secret_id, Some(token), None).await?
            } else {
                None
            };
        let action = decide(event.step, token, &metadata, pending.is_some())?;
        let mut summary = json!({
            "step": event.step.as_str(),
            "secret_id": secret_id,
            "version": token,
        });
        let outcome = match action {
            Action::Nothing(reason) => {
                tracing::info!(reason, "nothing to do");
                summary["reason"] = json!(reason);
                "nothing-to-do"
            }
            Action::CreatePending => {
                let current = self.store.current(secret_id).await?;
                let previous = self.previous(secret_id).await?;
                let (new, removed) = self
                    .issue(secret_id, token, &current, previous.as_ref())
                    .await?;
                self.store.put_pending(secret_id, token, &new).await?;
                tracing::info!(kind = new.kind(), credential_id = new.credential_id(), removed = ?removed, "stored the new credential as AWSPENDING");
                summary["kind"] = json!(new.kind());
                summary["credential_id"] = json!(new.credential_id());
                summary["removed"] = json!(removed);
                "created"
            }
            Action::CheckPending => {
                let current = self.store.current(secret_id).await?;
                let pending = pending.expect("decide checked the pending value");
                same_identity(&current.credential, &pending.credential)?;
                summary["kind"] = json!(pending.credential.kind());
                summary["credential_id"] = json!(pending.credential.credential_id());
                "checked"
            }
            Action::TestPending => {
                let pending = pending.expect("decide checked the pending value");
                self.test(&pending.credential).await?;
                tracing::info!(
                    credential_id = pending.credential.credential_id(),
                    "the new credential works"
                );
                summary["kind"] = json!(pending.credential.kind());
                summary["credential_id"] = json!(pending.credential.credential_id());
                "tested"
            }
            Action::Finish { current_version } => {
                let pending = pending.expect("decide checked the pending value");
                let current = self.store.current(secret_id).await?;
                same_identity(&current.credential, &pending.credential)?;
                self.store
                    .promote(secret_id, token, &current_version)
                    .await?;
                self.store.clear_pending(secret_id, token).await?;
                tracing::info!(
                    credential_id = pending.credential.credential_id(),
                    "the new version is AWSCURRENT"
                );
                let retired = self
                    .retire(&current.credential, &pending.credential)
                    .await?;
                summary["kind"] = json!(pending.credential.kind());
                summary["credential_id"] = json!(pending.credential.credential_id());
                summary["retired"] = json!(retired);
                "finished"
            }
            Action::RetirePrevious {
                remove_pending_label,
            } => {
                if remove_pending_label {
                    self.store.clear_pending(secret_id, token).await?;
                }
                let current = self.store.current(secret_id).await?;
                let retired = match self.previous(secret_id).await? {
                    Some(previous) => {
                        self.retire(&previous.credential, &current.credential)
                            .await?
                    }
                    None => None,
                };
                summary["kind"] = json!(current.credential.kind());
                summary["credential_id"] = json!(current.credential.credential_id());
                summary["retired"] = json!(retired);
                "already-finished"
            }
        };
        summary["outcome"] = json!(outcome);
        Ok(summary)
    }

    /// The `AWSPREVIOUS` credential, if there is one in our format. A
    /// previous value in another format (from before lakeops managed the
    /// secret) is ignored: there is nothing of ours to retire.
    async fn previous(&self, secret_id: &str) -> Result<Option<StoredCredential>, Error> {
        match self.store.read(secret_id, None, Some(AWSPREVIOUS)).await {
            Err(error) if error.kind == ErrorKind::InvalidInput => {
                tracing::warn!(error = %error, "ignoring the AWSPREVIOUS version");
                Ok(None)
            }
            other => other,
        }
    }

    /// Remove what cleanup chose, issue a new credential of the same kind and
    /// identity, and return it with the ids removed.
    async fn issue(
        &self,
        secret_id: &str,
        token: &str,
        current: &StoredCredential,
        previous: Option<&StoredCredential>,
    ) -> Result<(Credential, Vec<String>), Error> {
        let previous_id = previous
            .filter(|p| p.credential.kind() == current.credential.kind())
            .map(|p| p.credential.credential_id().to_string());
        match &current.credential {
            Credential::DatabricksPat(pat) => {
                let api = self.token_api(pat, &pat.token).await?;
                let tokens = api.list().await.map_err(|e| e.context("list tokens"))?;
                let versions = self.store.version_ids(secret_id).await?;
                let remove =
                    pats_to_delete(&tokens, &pat.token_id, previous_id.as_deref(), &versions);
                for id in &remove {
                    api.delete(id)
                        .await
                        .map_err(|e| e.context(format!("revoke token {id}")))?;
                }
                let lifetime = u64::from(pat.lifetime_days) * 86_400;
                let new = api
                    .create(&pat_comment(token), lifetime)
                    .await
                    .map_err(|e| e.context("create token"))?;
                tracing::info!(token_id = %new.token_id, "created a token");
                Ok((
                    Credential::DatabricksPat(DatabricksPat {
                        token: new.value,
                        token_id: new.token_id,
                        ..pat.clone()
                    }),
                    remove,
                ))
            }
            Credential::DatabricksSpSecret(sp) => {
                let client = self.sp_admin_client(sp).await?;
                let secrets = SpSecrets {
                    client: &client,
                    service_principal_id: &sp.service_principal_id,
                };
                let existing = secrets
                    .list(now_secs())
                    .await
                    .map_err(|e| e.context("list OAuth secrets"))?;
                let remove = sp_secrets_to_delete(
                    &existing,
                    &sp.secret_id,
                    previous_id.as_deref(),
                    current.stored_at,
                );
                for id in &remove {
                    secrets
                        .delete(id)
                        .await
                        .map_err(|e| e.context(format!("delete OAuth secret {id}")))?;
                }
                let new = secrets
                    .create(sp.lifetime_days)
                    .await
                    .map_err(|e| e.context("create OAuth secret"))?;
                tracing::info!(secret_id = %new.id, "created an OAuth secret");
                Ok((
                    Credential::DatabricksSpSecret(DatabricksSpSecret {
                        client_secret: new.value,
                        secret_id: new.id,
                        ..sp.clone()
                    }),
                    remove,
                ))
            }
            Credential::IamAccessKey(key) => {
                let existing = self.keys.list(&key.user_name).await?;
                let remove = access_keys_to_delete(
                    &existing,
                    &key.access_key_id,
                    previous_id.as_deref(),
                    current.stored_at,
                )
                .map_err(|reason| {
                    Error::terminal(format!("IAM user {}: {reason}", key.user_name))
                })?;
                for id in &remove {
                    self.keys.delete(&key.user_name, id).await?;
                }
                let new = self.keys.create(&key.user_name).await?;
                tracing::info!(access_key_id = %new.access_key_id, "created an access key");
                Ok((
                    Credential::IamAccessKey(IamAccessKey {
                        user_name: key.user_name.clone(),
                        access_key_id: new.access_key_id,
                        secret_access_key: new.secret_access_key,
                    }),
                    remove,
                ))
            }
        }
    }

    async fn test(&self, credential: &Credential) -> Result<(), Error> {
        match credential {
            Credential::DatabricksPat(pat) => {
                let client = self
                    .databricks
                    .workspace_at(&pat.workspace_url, Credentials::Pat(pat.token.clone()));
                test_token(&client, &pat.token_id)
                    .await
                    .map_err(|e| e.context("test the new token"))
            }
            Credential::DatabricksSpSecret(sp) => {
                let client = self.databricks.account(
                    &sp.account_id,
                    Credentials::OAuthM2M {
                        client_id: sp.client_id.clone(),
                        client_secret: sp.client_secret.clone(),
                    },
                );
                client
                    .verify_credentials()
                    .await
                    .map_err(|e| Error::from(e).context("test the new OAuth secret"))
            }
            Credential::IamAccessKey(key) => {
                check_key(
                    &self.sdk_config,
                    &self.iam_key_check,
                    &key.user_name,
                    &key.access_key_id,
                    &key.secret_access_key,
                )
                .await
            }
        }
    }

    /// Retire the credential `old`, now that `new` is current: revoke the old
    /// token, delete the old OAuth secret, deactivate the old key (deleted by
    /// the next rotation, after a rotation period of grace). Idempotent.
    /// Returns the id retired, if any.
    async fn retire(&self, old: &Credential, new: &Credential) -> Result<Option<String>, Error> {
        if old.kind() != new.kind() || old.credential_id() == new.credential_id() {
            // Never touch the current credential.
            return Ok(None);
        }
        match (old, new) {
            (Credential::DatabricksPat(old), Credential::DatabricksPat(new)) => {
                let api = self.token_api(new, &new.token).await?;
                api.delete(&old.token_id).await.map_err(|e| {
                    e.context(format!("revoke the previous token {}", old.token_id))
                })?;
                tracing::info!(token_id = %old.token_id, "revoked the previous token");
            }
            (Credential::DatabricksSpSecret(old), Credential::DatabricksSpSecret(new)) => {
                let client = self.sp_admin_client(new).await?;
                SpSecrets {
                    client: &client,
                    service_principal_id: &old.service_principal_id,
                }
                .delete(&old.secret_id)
                .await
                .map_err(|e| {
                    e.context(format!(
                        "delete the previous OAuth secret {}",
                        old.secret_id
                    ))
                })?;
                tracing::info!(secret_id = %old.secret_id, "deleted the previous OAuth secret");
            }
            (Credential::IamAccessKey(old), Credential::IamAccessKey(_)) => {
                self.keys
                    .deactivate(&old.user_name, &old.access_key_id)
                    .await?;
                tracing::info!(access_key_id = %old.access_key_id, "deactivated the previous access key");
            }
            _ => return Ok(None),
        }
        Ok(Some(old.credential_id().to_string()))
    }

    /// The API that manages a PAT secret's tokens: the admin credential named
    /// in the secret, or the token `own` itself.
    async fn token_api(&self, pat: &DatabricksPat, own: &Secret) -> Result<TokenApi, Error> {
        match (&pat.admin_secret_id, &pat.application_id) {
            (Some(admin_id), Some(application_id)) => {
                let credentials = self.admin_credentials(admin_id, true).await?;
                Ok(TokenApi::Admin {
                    client: self
                        .databricks
                        .workspace_at(&pat.workspace_url, credentials),
                    application_id: application_id.clone(),
                })
            }
            _ => Ok(TokenApi::Own(self.databricks.workspace_at(
                &pat.workspace_url,
                Credentials::Pat(own.clone()),
            ))),
        }
    }

    /// An account client that can manage the service principal's secrets:
    /// the admin named in the secret, or the service principal itself.
    async fn sp_admin_client(
        &self,
        sp: &DatabricksSpSecret,
    ) -> Result<lakeops_shared::databricks::DatabricksClient, Error> {
        let credentials = match &sp.admin_secret_id {
            Some(admin_id) => self.admin_credentials(admin_id, false).await?,
            None => Credentials::OAuthM2M {
                client_id: sp.client_id.clone(),
                client_secret: sp.client_secret.clone(),
            },
        };
        Ok(self.databricks.account(&sp.account_id, credentials))
    }

    /// The current credential of an admin secret.
    async fn admin_credentials(
        &self,
        admin_secret_id: &str,
        pat_allowed: bool,
    ) -> Result<Credentials, Error> {
        let admin = self
            .store
            .current(admin_secret_id)
            .await
            .map_err(|e| e.context(format!("admin_secret_id {admin_secret_id}")))?;
        match admin.credential {
            Credential::DatabricksPat(pat) if pat_allowed => Ok(Credentials::Pat(pat.token)),
            Credential::DatabricksSpSecret(sp) => Ok(Credentials::OAuthM2M {
                client_id: sp.client_id,
                client_secret: sp.client_secret,
            }),
            other => Err(Error::invalid_input(format!(
                "admin_secret_id {admin_secret_id}: a {} secret cannot manage {}",
                other.kind(),
                if pat_allowed {
                    "tokens"
                } else {
                    "OAuth secrets"
                }
            ))),
        }
    }
}

/// The pending value must rotate the same credential as the current one:
/// same kind, and the same workspace, principal or user.
pub fn same_identity(current: &Credential, pending: &Credential) -> Result<(), Error> {
    let same = match (current, pending) {
        (Credential::DatabricksPat(a), Credential::DatabricksPat(b)) => {
            a.workspace_url == b.workspace_url
        }
        (Credential::DatabricksSpSecret(a), Credential::DatabricksSpSecret(b)) => {
            a.account_id == b.account_id
                && a.service_principal_id == b.service_principal_id
                && a.client_id == b.client_id
        }
        (Credential::IamAccessKey(a), Credential::IamAccessKey(b)) => a.user_name == b.user_name,
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "the pending value ({}) does not rotate the same credential as AWSCURRENT ({})",
            pending.kind(),
            current.kind()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Credential {
        Credential::parse(text).unwrap()
    }

    #[test]
    fn same_identity_compares_what_is_rotated() {
        let key = |user: &str, id: &str| {
            parse(&format!(
                r#"{{"kind":"iam-access-key","user_name":"{user}","access_key_id":"{id}","secret_access_key":"s"}}"#
            ))
        };
        assert!(same_identity(&key("edge", "A"), &key("edge", "B")).is_ok());
        let error = same_identity(&key("edge", "A"), &key("other", "B")).unwrap_err();
        assert_eq!(error.error_name(), "Lakeops.InvalidInput");
        let pat = parse(
            r#"{"kind":"databricks-pat","workspace_url":"https://w","token":"t","token_id":"1","lifetime_days":1}"#,
        );
        assert!(same_identity(&key("edge", "A"), &pat).is_err());
    }

    #[test]
    fn settings_defaults_and_problems() {
        let mut env = Env::from_map(Default::default());
        let settings = Settings::read(&mut env);
        env.finish().unwrap();
        assert_eq!(settings.iam_key_check.budget, Duration::from_secs(60));
        let mut env = Env::from_map(
            [("IAM_KEY_CHECK_SECONDS".to_string(), "soon".to_string())]
                .into_iter()
                .collect(),
        );
        Settings::read(&mut env);
        assert!(env
            .finish()
            .unwrap_err()
            .to_string()
            .contains("IAM_KEY_CHECK_SECONDS"));
    }
}
