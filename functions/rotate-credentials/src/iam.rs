//! IAM access keys, and the `GetCallerIdentity` check of a new key.

use crate::cleanup::AccessKeyInfo;
use aws_config::SdkConfig;
use aws_sdk_iam::types::StatusType;
use lakeops_shared::aws::{aws_error, error_code, is_transient_code};
use lakeops_shared::retry::{RetryAdvice, RetryPolicy};
use lakeops_shared::{Error, Secret};

/// Error codes of a key that IAM has not yet propagated to STS.
const NOT_YET_PROPAGATED: &[&str] = &[
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "AuthFailure",
];

#[derive(Clone)]
pub struct AccessKeys {
    client: aws_sdk_iam::Client,
}

pub struct NewKey {
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

impl AccessKeys {
    pub fn new(client: aws_sdk_iam::Client) -> Self {
        Self { client }
    }

    pub async fn list(&self, user_name: &str) -> Result<Vec<AccessKeyInfo>, Error> {
        let out = self
            .client
            .list_access_keys()
            .user_name(user_name)
            .send()
            .await
            .map_err(|e| aws_error(format!("ListAccessKeys of user {user_name}"), e))?;
        Ok(out
            .access_key_metadata()
            .iter()
            .filter_map(|k| {
                Some(AccessKeyInfo {
                    id: k.access_key_id()?.to_string(),
                    active: k.status() == Some(&StatusType::Active),
                    created: k.create_date().map(|d| d.secs()).unwrap_or(i64::MIN),
                })
            })
            .collect())
    }

    pub async fn create(&self, user_name: &str) -> Result<NewKey, Error> {
        let out = self
            .client
            .create_access_key()
            .user_name(user_name)
            .send()
            .await
            .map_err(|e| aws_error(format!("CreateAccessKey for user {user_name}"), e))?;
        let key = out
            .access_key()
            .ok_or_else(|| Error::terminal("CreateAccessKey returned no key"))?;
        Ok(NewKey {
            access_key_id: key.access_key_id().to_string(),
            secret_access_key: Secret::new(key.secret_access_key()),
        })
    }

    /// Delete a key; one that is already gone is fine.
    pub async fn delete(&self, user_name: &str, access_key_id: &str) -> Result<(), Error> {
        match self
            .client
            .delete_access_key()
            .user_name(user_name)
            .access_key_id(access_key_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(aws_error(format!("DeleteAccessKey {access_key_id}"), e)),
        }
    }

    /// Deactivate a key; one that is already gone is fine.
    pub async fn deactivate(&self, user_name: &str, access_key_id: &str) -> Result<(), Error> {
        match self
            .client
            .update_access_key()
            .user_name(user_name)
            .access_key_id(access_key_id)
            .status(StatusType::Inactive)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(aws_error(
                format!("UpdateAccessKey {access_key_id} to Inactive"),
                e,
            )),
        }
    }
}

/// Whether an identity ARN is the IAM user `user_name` (any path).
pub fn is_user_arn(arn: &str, user_name: &str) -> bool {
    let Some((_, resource)) = arn.split_once(":user/") else {
        return false;
    };
    resource.rsplit('/').next() == Some(user_name)
}

/// Call `GetCallerIdentity` with the key itself, retrying while the new key
/// propagates, and check that it is the expected user's.
pub async fn check_key(
    sdk_config: &SdkConfig,
    policy: &RetryPolicy,
    user_name: &str,
    access_key_id: &str,
    secret_access_key: &Secret,
) -> Result<(), Error> {
    let credentials = aws_sdk_sts::config::Credentials::new(
        access_key_id,
        secret_access_key.expose(),
        None,
        None,
        "lakeops-rotation-check",
    );
    let config = aws_sdk_sts::config::Builder::from(sdk_config)
        .credentials_provider(credentials)
        .build();
    let sts = aws_sdk_sts::Client::from_conf(config);
    let identity = policy
        .run(
            |attempt| {
                let sts = sts.clone();
                async move {
                    if attempt > 0 {
                        tracing::info!(
                            attempt,
                            access_key_id,
                            "new access key not accepted yet; retrying"
                        );
                    }
                    sts.get_caller_identity().send().await
                }
            },
            |error| match error_code(error) {
                Some(code) if NOT_YET_PROPAGATED.contains(&code) || is_transient_code(code) => {
                    RetryAdvice::Retry
                }
                Some(_) => RetryAdvice::Stop,
                None => RetryAdvice::Retry,
            },
        )
        .await
        .map_err(|e| {
            let error = aws_error(format!("GetCallerIdentity with new key {access_key_id}"), e);
            // Still not accepted after the budget: Secrets Manager retries the
            // rotation later, so this is retryable.
            Error::retryable(error.message)
        })?;
    let arn = identity.arn().unwrap_or_default();
    if is_user_arn(arn, user_name) {
        Ok(())
    } else {
        Err(Error::terminal(format!(
            "new key {access_key_id} authenticates as {arn}, not as IAM user {user_name}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_arns() {
        assert!(is_user_arn("arn:aws:iam::123456789012:user/edge", "edge"));
        assert!(is_user_arn(
            "arn:aws:iam::123456789012:user/devices/edge",
            "edge"
        ));
        assert!(!is_user_arn("arn:aws:iam::123456789012:user/moto", "edge"));
        assert!(!is_user_arn(
            "arn:aws:sts::123456789012:assumed-role/edge/s",
            "edge"
        ));
        assert!(!is_user_arn(
            "arn:aws:iam::123456789012:user/edge-2",
            "edge"
        ));
    }
}
