//! Databricks: personal access tokens of a workspace and OAuth secrets of a
//! service principal, in the shapes of the public REST API.

use crate::cleanup::{parse_time, PatInfo, SpSecretInfo};
use lakeops_shared::databricks::{DatabricksClient, DatabricksError};
use lakeops_shared::{Error, Secret};
use serde::Deserialize;
use serde_json::{json, Value};

/// How tokens are managed: by the token itself (`/api/2.0/token/*`, the
/// caller's own tokens) or by a workspace admin (`/api/2.0/token-management`,
/// tokens created on behalf of a service principal).
pub enum TokenApi {
    Own(DatabricksClient),
    Admin {
        client: DatabricksClient,
        application_id: String,
    },
}

#[derive(Deserialize)]
struct TokenInfo {
    token_id: String,
    #[serde(default)]
    comment: Option<String>,
}

#[derive(Deserialize)]
struct TokenList {
    #[serde(default)]
    token_infos: Vec<TokenInfo>,
}

/// A create answer that cannot be stored: the error names the field, and
/// `id` is the credential's id when Databricks did say it (the credential
/// then exists and is removed).
#[derive(Debug)]
struct Unusable {
    id: Option<String>,
    error: Error,
}

/// The id (at `id_path`) and the value (field `value_field`) of a credential
/// just created. Both must be non-blank strings: an empty credential is never
/// stored. Errors name the field, never a value (the answer holds a secret).
fn read_created(
    answer: &Value,
    id_path: &[&str],
    value_field: &str,
) -> Result<(String, Secret), Unusable> {
    let id_name = id_path.join(".");
    let id = id_path
        .iter()
        .try_fold(answer, |value, key| value.get(key))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(String::from);
    let value = answer
        .get(value_field)
        .and_then(Value::as_str)
        .filter(|v| !v.trim().is_empty());
    match (id, value) {
        (Some(id), Some(value)) => Ok((id, Secret::new(value))),
        (id, None) => Err(Unusable {
            id,
            error: Error::terminal(format!(
                "Databricks answered without `{value_field}` (missing, blank or not a string); nothing was stored"
            )),
        }),
        (None, Some(_)) => Err(Unusable {
            id: None,
            error: Error::terminal(format!(
                "Databricks answered without `{id_name}` (missing, blank or not a string); nothing was stored"
            )),
        }),
    }
}

/// A token just issued.
pub struct NewToken {
    pub token_id: String,
    pub value: Secret,
}

fn ignore_not_found(result: Result<(), DatabricksError>) -> Result<(), DatabricksError> {
    match result {
        Err(error) if error.is_not_found() => Ok(()),
        other => other,
    }
}

impl TokenApi {
    pub async fn list(&self) -> Result<Vec<PatInfo>, Error> {
        let list: TokenList = match self {
            TokenApi::Own(client) => client.get("/api/2.0/token/list").await?,
            TokenApi::Admin { client, .. } => {
                client.get("/api/2.0/token-management/tokens").await?
            }
        };
        Ok(list
            .token_infos
            .into_iter()
            .map(|t| PatInfo {
                token_id: t.token_id,
                comment: t.comment,
            })
            .collect())
    }

    /// Create a token. An answer without the token's id or value fails with
    /// an error naming the missing field; a token that was made but whose
    /// value did not arrive is revoked at once (nobody could ever use it).
    pub async fn create(&self, comment: &str, lifetime_seconds: u64) -> Result<NewToken, Error> {
        let created: Value = match self {
            TokenApi::Own(client) => {
                client
                    .post(
                        "/api/2.0/token/create",
                        &json!({"comment": comment, "lifetime_seconds": lifetime_seconds}),
                    )
                    .await?
            }
            TokenApi::Admin { client, application_id } => {
                client
                    .post(
                        "/api/2.0/token-management/on-behalf-of/tokens",
                        &json!({"application_id": application_id, "comment": comment, "lifetime_seconds": lifetime_seconds}),
                    )
                    .await?
            }
        };
        match read_created(&created, &["token_info", "token_id"], "token_value") {
            Ok((token_id, value)) => Ok(NewToken { token_id, value }),
            Err(Unusable {
                id: Some(id),
                error,
            }) => {
                let revoked = match self.delete(&id).await {
                    Ok(()) => format!("token {id} was revoked"),
                    Err(e) => format!("revoking token {id} failed too: {e}"),
                };
                Err(Error::terminal(format!("{}; {revoked}", error.message)))
            }
            Err(Unusable { id: None, error }) => Err(error),
        }
    }

    /// Revoke a token; one that is already gone is fine.
    pub async fn delete(&self, token_id: &str) -> Result<(), Error> {
        let result = match self {
            TokenApi::Own(client) => client
                .post::<_, serde_json::Value>(
                    "/api/2.0/token/delete",
                    &json!({"token_id": token_id}),
                )
                .await
                .map(|_| ()),
            TokenApi::Admin { client, .. } => {
                client
                    .delete(&format!("/api/2.0/token-management/tokens/{token_id}"))
                    .await
            }
        };
        Ok(ignore_not_found(result)?)
    }
}

/// Prove a token works on its workspace: list the caller's tokens with it and
/// find it there.
pub async fn test_token(client: &DatabricksClient, token_id: &str) -> Result<(), Error> {
    let list: TokenList = client.get("/api/2.0/token/list").await?;
    if list.token_infos.iter().any(|t| t.token_id == token_id) {
        Ok(())
    } else {
        Err(Error::terminal(format!(
            "the new token authenticates, but token {token_id} is not among its owner's tokens"
        )))
    }
}

/// The OAuth secrets of one service principal, through an account client.
pub struct SpSecrets<'a> {
    pub client: &'a DatabricksClient,
    pub service_principal_id: &'a str,
}

#[derive(Deserialize)]
struct SecretInfo {
    id: String,
    #[serde(default)]
    create_time: Option<String>,
    #[serde(default)]
    expire_time: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct SecretList {
    #[serde(default)]
    secrets: Vec<SecretInfo>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// An OAuth secret just issued.
pub struct NewSpSecret {
    pub id: String,
    pub value: Secret,
}

impl SpSecrets<'_> {
    fn path(&self) -> String {
        self.client.account_path(&format!(
            "servicePrincipals/{}/credentials/secrets",
            self.service_principal_id
        ))
    }

    pub async fn list(&self, now: i64) -> Result<Vec<SpSecretInfo>, Error> {
        let mut all = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let query: Vec<(&str, String)> = page_token
                .take()
                .map(|t| ("page_token", t))
                .into_iter()
                .collect();
            let page: SecretList = self.client.get_query(&self.path(), &query).await?;
            all.extend(page.secrets.into_iter().map(|s| {
                let expired = s
                    .status
                    .as_deref()
                    .is_some_and(|st| st.eq_ignore_ascii_case("EXPIRED"))
                    || s.expire_time
                        .as_deref()
                        .and_then(parse_time)
                        .is_some_and(|t| t <= now);
                SpSecretInfo {
                    id: s.id,
                    created: s.create_time.as_deref().and_then(parse_time),
                    expired,
                }
            }));
            match page.next_page_token {
                Some(t) if !t.is_empty() => page_token = Some(t),
                _ => return Ok(all),
            }
        }
    }

    pub async fn create(&self, lifetime_days: Option<u32>) -> Result<NewSpSecret, Error> {
        let body = match lifetime_days {
            Some(days) => json!({"lifetime": format!("{}s", u64::from(days) * 86_400)}),
            None => json!({}),
        };
        let created: Value = self.client.post(&self.path(), &body).await?;
        match read_created(&created, &["id"], "secret") {
            Ok((id, value)) => Ok(NewSpSecret { id, value }),
            Err(Unusable {
                id: Some(id),
                error,
            }) => {
                let deleted = match self.delete(&id).await {
                    Ok(()) => format!("OAuth secret {id} was deleted"),
                    Err(e) => format!("deleting OAuth secret {id} failed too: {e}"),
                };
                Err(Error::terminal(format!("{}; {deleted}", error.message)))
            }
            Err(Unusable { id: None, error }) => Err(error),
        }
    }

    pub async fn delete(&self, secret_id: &str) -> Result<(), Error> {
        Ok(ignore_not_found(
            self.client
                .delete(&format!("{}/{secret_id}", self.path()))
                .await,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_credentials_need_an_id_and_a_value() {
        let (id, value) = read_created(
            &json!({"token_value": "dapi-NEW", "token_info": {"token_id": "t1"}}),
            &["token_info", "token_id"],
            "token_value",
        )
        .unwrap();
        assert_eq!((id.as_str(), value.expose()), ("t1", "dapi-NEW"));
        let (id, value) = read_created(
            &json!({"id": "s1", "secret": "dose-NEW"}),
            &["id"],
            "secret",
        )
        .unwrap();
        assert_eq!((id.as_str(), value.expose()), ("s1", "dose-NEW"));
    }

    #[test]
    fn an_answer_without_the_value_names_the_field_and_keeps_the_id() {
        for answer in [
            json!({"token_info": {"token_id": "t1"}}),
            json!({"token_value": "", "token_info": {"token_id": "t1"}}),
            json!({"token_value": "  ", "token_info": {"token_id": "t1"}}),
            json!({"token_value": null, "token_info": {"token_id": "t1"}}),
            json!({"token_value": 42, "token_info": {"token_id": "t1"}}),
        ] {
            let unusable =
                read_created(&answer, &["token_info", "token_id"], "token_value").unwrap_err();
            assert_eq!(unusable.id.as_deref(), Some("t1"), "{answer}");
            assert!(
                unusable.error.message.contains("`token_value`"),
                "{}",
                unusable.error
            );
            assert!(!unusable.error.is_retryable());
        }
        let unusable = read_created(&json!({"id": "s1"}), &["id"], "secret").unwrap_err();
        assert_eq!(unusable.id.as_deref(), Some("s1"));
        assert!(unusable.error.message.contains("`secret`"));
    }

    #[test]
    fn an_answer_without_the_id_names_it_and_never_echoes_the_value() {
        for answer in [
            json!({"token_value": "dapi-SECRET"}),
            json!({"token_value": "dapi-SECRET", "token_info": {}}),
            json!({"token_value": "dapi-SECRET", "token_info": {"token_id": ""}}),
            json!({"token_value": "dapi-SECRET", "token_info": "dapi-SECRET"}),
            json!({"token_value": "dapi-SECRET", "token_info": {"token_id": 7}}),
        ] {
            let unusable =
                read_created(&answer, &["token_info", "token_id"], "token_value").unwrap_err();
            assert_eq!(unusable.id, None);
            let text = unusable.error.to_string();
            assert!(text.contains("`token_info.token_id`"), "{text}");
            assert!(!text.contains("SECRET"), "{text}");
        }
        let unusable = read_created(&json!([]), &["id"], "secret").unwrap_err();
        assert!(unusable.error.message.contains("`secret`"));
    }
}
