//! Databricks: personal access tokens of a workspace and OAuth secrets of a
//! service principal, in the shapes of the public REST API.

use crate::cleanup::{parse_time, PatInfo, SpSecretInfo};
use lakeops_shared::databricks::{DatabricksClient, DatabricksError};
use lakeops_shared::{Error, Secret};
use serde::Deserialize;
use serde_json::json;

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

#[derive(Deserialize)]
struct CreatedToken {
    token_value: Secret,
    token_info: TokenInfo,
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

    pub async fn create(&self, comment: &str, lifetime_seconds: u64) -> Result<NewToken, Error> {
        let created: CreatedToken = match self {
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
        Ok(NewToken {
            token_id: created.token_info.token_id,
            value: created.token_value,
        })
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

#[derive(Deserialize)]
struct CreatedSecret {
    id: String,
    secret: Secret,
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
        let created: CreatedSecret = self.client.post(&self.path(), &body).await?;
        Ok(NewSpSecret {
            id: created.id,
            value: created.secret,
        })
    }

    pub async fn delete(&self, secret_id: &str) -> Result<(), Error> {
        Ok(ignore_not_found(
            self.client
                .delete(&format!("{}/{secret_id}", self.path()))
                .await,
        )?)
    }
}
