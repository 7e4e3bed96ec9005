//! The Databricks side: is any work running that needs the network?
//!
//! A sleep reads each configured workspace's clusters (`GET
//! /api/2.1/clusters/list`), active job runs (`GET
//! /api/2.1/jobs/runs/list?active_only=true`), SQL warehouses (`GET
//! /api/2.0/sql/warehouses`) and pipelines (`GET /api/2.0/pipelines`), every
//! list read to its last page; [`crate::activity::assess`] decides. Running
//! clusters idle past the threshold are terminated (`POST
//! /api/2.1/clusters/delete`) when the sleep goes ahead. A workspace that
//! cannot be read blocks the sleep too: no answer is not "nothing is running".

use lakeops_shared::credentials::Credential;
use lakeops_shared::databricks::{Credentials, DatabricksClient, DatabricksConnector};
use lakeops_shared::Error;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::activity::{Activity, Cluster, Pipeline, Run, RunClusterInstance, Warehouse};

/// One workspace to check, from the `WORKSPACES` setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkspaceRef {
    pub name: String,
    /// Secrets Manager ARN (or name) of the workspace's credentials.
    pub secret_arn: String,
    /// Overrides the secret's `workspace_url`.
    pub workspace_url: Option<String>,
}

/// Parse `WORKSPACES`: a JSON list whose items are a secret ARN, or
/// `{"name", "secret_arn", "workspace_url"?}`. Problems name the item.
pub fn parse_workspaces(json: &str) -> Result<Vec<WorkspaceRef>, Vec<String>> {
    let items: Vec<Value> = match serde_json::from_str::<Value>(json) {
        Ok(Value::Array(items)) => items,
        Ok(_) => return Err(vec!["must be a JSON list".into()]),
        Err(e) => return Err(vec![format!("is not JSON ({e})")]),
    };
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(arn) if !arn.trim().is_empty() => found.push(WorkspaceRef {
                name: arn.rsplit(':').next().unwrap_or(arn).to_string(),
                secret_arn: arn.trim().to_string(),
                workspace_url: None,
            }),
            Value::Object(map) => {
                let text = |key: &str| {
                    map.get(key)
                        .and_then(Value::as_str)
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                };
                for key in map.keys() {
                    if !matches!(key.as_str(), "name" | "secret_arn" | "workspace_url") {
                        problems.push(format!(
                            "[{i}].{key} is not a known field (name, secret_arn, workspace_url)"
                        ));
                    }
                }
                let Some(secret_arn) = text("secret_arn") else {
                    problems.push(format!("[{i}].secret_arn is required"));
                    continue;
                };
                let workspace_url = text("workspace_url");
                if let Some(url) = &workspace_url {
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        problems.push(format!("[{i}].workspace_url must be an http(s) URL"));
                    }
                }
                found.push(WorkspaceRef {
                    name: text("name").unwrap_or_else(|| {
                        secret_arn
                            .rsplit(':')
                            .next()
                            .unwrap_or(&secret_arn)
                            .to_string()
                    }),
                    secret_arn,
                    workspace_url,
                });
            }
            _ => problems.push(format!(
                "[{i}] must be a secret ARN or an object with secret_arn"
            )),
        }
    }
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(problems)
    }
}

/// A workspace credential from Secrets Manager, in lakeops' shared format
/// (`lakeops_shared::credentials`): kind `databricks-pat` (a token and its
/// `workspace_url`) or `databricks-sp-secret` (an OAuth client id and secret;
/// the workspace URL then comes from `WORKSPACES`). Errors name fields, never
/// values.
pub fn parse_credential_secret(
    secret_text: &str,
    secret_name: &str,
) -> Result<(Credentials, Option<String>), Error> {
    match Credential::parse(secret_text) {
        Ok(Credential::DatabricksPat(pat)) => {
            Ok((Credentials::Pat(pat.token), Some(pat.workspace_url)))
        }
        Ok(Credential::DatabricksSpSecret(sp)) => Ok((
            Credentials::OAuthM2M {
                client_id: sp.client_id,
                client_secret: sp.client_secret,
            },
            None,
        )),
        Ok(other) => Err(Error::terminal(format!(
            "secret {secret_name} holds a {} credential, not a Databricks one",
            other.kind()
        ))),
        Err(problems) => Err(Error::terminal(format!("secret {secret_name}: {problems}"))),
    }
}

/// Reads and terminates through the Databricks REST API.
#[derive(Clone)]
pub struct DatabricksWorkspaces {
    pub secrets: aws_sdk_secretsmanager::Client,
    pub connector: DatabricksConnector,
}

/// Guard against a server that repeats a page token forever.
const MAX_PAGES: usize = 200;

/// One page of a list: its items (under `key`), and the token of the next
/// page, if any.
struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
}

/// Read a list page by page: `query(token)` is the query of the page after
/// `token` (none for the first), `page(answer)` takes a page apart. A page
/// token that repeats ends the reading, like an empty one.
async fn read_all<T, A: DeserializeOwned>(
    client: &DatabricksClient,
    path: &str,
    query: impl Fn(Option<&String>) -> Vec<(&'static str, String)>,
    page: impl Fn(A) -> Page<T>,
) -> Result<Vec<T>, Error> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let answer: A = client.get_query(path, &query(token.as_ref())).await?;
        let Page { items, next } = page(answer);
        all.extend(items);
        match next.filter(|t| !t.is_empty()) {
            Some(next) if Some(&next) != token.as_ref() => token = Some(next),
            _ => return Ok(all),
        }
    }
    Ok(all)
}

fn with_token(
    mut query: Vec<(&'static str, String)>,
    key: &'static str,
    token: Option<&String>,
) -> Vec<(&'static str, String)> {
    if let Some(token) = token {
        query.push((key, token.clone()));
    }
    query
}

#[derive(Deserialize)]
struct ClusterPage {
    #[serde(default)]
    clusters: Vec<Cluster>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct RunPage {
    #[serde(default)]
    runs: Vec<Run>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// `ListWarehousesResponse`.
#[derive(Deserialize)]
struct WarehousePage {
    #[serde(default)]
    warehouses: Vec<Warehouse>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// `ListPipelinesResponse`: the pipelines are under `statuses`.
#[derive(Deserialize)]
struct PipelinePage {
    #[serde(default)]
    statuses: Vec<Pipeline>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl DatabricksWorkspaces {
    pub async fn client(&self, workspace: &WorkspaceRef) -> Result<DatabricksClient, Error> {
        let secret = self
            .secrets
            .get_secret_value()
            .secret_id(&workspace.secret_arn)
            .send()
            .await
            .map_err(|e| {
                lakeops_shared::aws::aws_error(
                    format!("GetSecretValue for workspace {}", workspace.name),
                    e,
                )
            })?;
        let text = secret.secret_string().ok_or_else(|| {
            Error::terminal(format!(
                "secret of workspace {} has no SecretString",
                workspace.name
            ))
        })?;
        let (credentials, url) = parse_credential_secret(text, &workspace.name)?;
        let url = workspace.workspace_url.clone().or(url).ok_or_else(|| {
            Error::invalid_input(format!(
                "workspace {}: no workspace_url in WORKSPACES nor in its secret",
                workspace.name
            ))
        })?;
        Ok(self.connector.workspace_at(&url, credentials))
    }

    pub async fn clusters(&self, client: &DatabricksClient) -> Result<Vec<Cluster>, Error> {
        let query = |token: Option<&String>| {
            with_token(vec![("page_size", "100".into())], "page_token", token)
        };
        read_all(client, "/api/2.1/clusters/list", query, |p: ClusterPage| {
            Page {
                items: p.clusters,
                next: p.next_page_token,
            }
        })
        .await
    }

    pub async fn active_runs(&self, client: &DatabricksClient) -> Result<Vec<Run>, Error> {
        let query = |token: Option<&String>| {
            let first = vec![("active_only", "true".into()), ("limit", "25".into())];
            with_token(first, "page_token", token)
        };
        read_all(client, "/api/2.1/jobs/runs/list", query, |p: RunPage| {
            Page {
                items: p.runs,
                next: p.next_page_token.filter(|_| p.has_more),
            }
        })
        .await
    }

    pub async fn warehouses(&self, client: &DatabricksClient) -> Result<Vec<Warehouse>, Error> {
        let query = |token: Option<&String>| {
            with_token(vec![("page_size", "100".into())], "page_token", token)
        };
        read_all(
            client,
            "/api/2.0/sql/warehouses",
            query,
            |p: WarehousePage| Page {
                items: p.warehouses,
                next: p.next_page_token,
            },
        )
        .await
    }

    pub async fn pipelines(&self, client: &DatabricksClient) -> Result<Vec<Pipeline>, Error> {
        // 100 is the most the API allows per page.
        let query = |token: Option<&String>| {
            with_token(vec![("max_results", "100".into())], "page_token", token)
        };
        read_all(client, "/api/2.0/pipelines", query, |p: PipelinePage| {
            Page {
                items: p.statuses,
                next: p.next_page_token,
            }
        })
        .await
    }

    pub async fn terminate_cluster(
        &self,
        client: &DatabricksClient,
        cluster_id: &str,
    ) -> Result<(), Error> {
        let body = serde_json::json!({ "cluster_id": cluster_id });
        let _: Value = client.post("/api/2.1/clusters/delete", &body).await?;
        Ok(())
    }
}

/// The Databricks calls a sleep makes, behind a trait for the handler's tests.
#[allow(async_fn_in_trait)]
pub trait WorkspaceApi {
    /// What runs in the workspace: clusters, active job runs, SQL
    /// warehouses and pipelines.
    async fn inspect(&self, workspace: &WorkspaceRef) -> Result<Activity, Error>;
    async fn terminate(&self, workspace: &WorkspaceRef, cluster_id: &str) -> Result<(), Error>;
}

impl WorkspaceApi for DatabricksWorkspaces {
    async fn inspect(&self, workspace: &WorkspaceRef) -> Result<Activity, Error> {
        let client = self.client(workspace).await?;
        Ok(Activity {
            clusters: self.clusters(&client).await?,
            runs: self.active_runs(&client).await?,
            warehouses: self
                .warehouses(&client)
                .await
                .map_err(|e| e.context("SQL warehouses"))?,
            pipelines: self
                .pipelines(&client)
                .await
                .map_err(|e| e.context("pipelines"))?,
        })
    }

    async fn terminate(&self, workspace: &WorkspaceRef, cluster_id: &str) -> Result<(), Error> {
        let client = self.client(workspace).await?;
        self.terminate_cluster(&client, cluster_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspaces_setting_accepts_arns_and_objects_and_names_bad_items() {
        let ok = parse_workspaces(r#"["arn:aws:secretsmanager:eu-west-1:1:secret:dev-ws", {"name":"prod","secret_arn":"arn:x","workspace_url":"https://x.cloud.databricks.com"}]"#).unwrap();
        assert_eq!(ok[0].name, "dev-ws");
        assert_eq!(
            ok[1].workspace_url.as_deref(),
            Some("https://x.cloud.databricks.com")
        );
        let problems = parse_workspaces(
            r#"[{"name":"a"}, 3, {"secret_arn":"s","workspace_url":"ftp://x","colour":1}]"#,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("[0].secret_arn"));
        assert!(parse_workspaces("{}").is_err());
        assert!(parse_workspaces("[]").unwrap().is_empty());
    }

    #[test]
    fn credential_secrets_parse_without_echoing_values() {
        let pat = r#"{"kind":"databricks-pat","token":"dapi-SECRET","token_id":"t1","lifetime_days":90,"workspace_url":"https://w.cloud.databricks.com/"}"#;
        let (creds, url) = parse_credential_secret(pat, "ws").unwrap();
        assert!(matches!(creds, Credentials::Pat(_)));
        assert_eq!(url.as_deref(), Some("https://w.cloud.databricks.com"));
        assert!(!format!("{creds:?}").contains("dapi-SECRET"));
        let sp = r#"{"kind":"databricks-sp-secret","account_id":"a","service_principal_id":"1","client_id":"c","client_secret":"SECRET","secret_id":"s1"}"#;
        let (creds, url) = parse_credential_secret(sp, "ws").unwrap();
        assert!(matches!(creds, Credentials::OAuthM2M { .. }));
        assert_eq!(url, None);
        for bad in [
            r#"{"kind":"databricks-pat","token":5}"#,
            r#"{"kind":"iam-access-key","user_name":"u","access_key_id":"AKIA","secret_access_key":"SECRET"}"#,
            "SECRET not json",
            r#"{"token":"SECRET"}"#,
        ] {
            let error = parse_credential_secret(bad, "ws").unwrap_err().to_string();
            assert!(!error.contains("SECRET"), "{error}");
            assert!(error.contains("ws"), "{error}");
        }
    }
}
