//! The Databricks side: is any work running that needs the network?
//!
//! A sleep reads each configured workspace's clusters (`GET
//! /api/2.1/clusters/list`) and active job runs (`GET
//! /api/2.1/jobs/runs/list?active_only=true`). Any active run, or a cluster
//! that is starting, resizing, restarting or was active within the idle
//! threshold, blocks the sleep. Running clusters idle past the threshold are
//! terminated (`POST /api/2.1/clusters/delete`) when the sleep goes ahead.
//! A workspace that cannot be read blocks the sleep too: no answer is not
//! "nothing is running".

use lakeops_shared::credentials::Credential;
use lakeops_shared::databricks::{Credentials, DatabricksClient, DatabricksConnector};
use lakeops_shared::Error;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Cluster {
    pub cluster_id: String,
    #[serde(default)]
    pub cluster_name: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub cluster_source: Option<String>,
    /// Epoch milliseconds of the last command or job on the cluster.
    #[serde(default)]
    pub last_activity_time: Option<i64>,
    #[serde(default)]
    pub last_restarted_time: Option<i64>,
    #[serde(default)]
    pub start_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RunClusterInstance {
    #[serde(default)]
    pub cluster_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Run {
    pub run_id: i64,
    #[serde(default)]
    pub run_name: Option<String>,
    #[serde(default)]
    pub job_id: Option<i64>,
    #[serde(default)]
    pub cluster_instance: Option<RunClusterInstance>,
}

/// What one workspace says about sleeping.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Assessment {
    /// Why the network must stay up; empty when it may sleep.
    pub blockers: Vec<String>,
    /// Running clusters idle past the threshold, to terminate.
    pub idle_clusters: Vec<String>,
}

/// Decide from a workspace's clusters and active runs.
pub fn assess(
    workspace: &str,
    clusters: &[Cluster],
    active_runs: &[Run],
    now_ms: i64,
    idle_minutes: u64,
) -> Assessment {
    let idle_ms = idle_minutes as i64 * 60_000;
    let mut assessment = Assessment::default();
    for run in active_runs {
        assessment.blockers.push(format!(
            "workspace {workspace}: job run {} ({}) is active",
            run.run_id,
            run.run_name.as_deref().unwrap_or("unnamed")
        ));
    }
    let run_clusters: Vec<&str> = active_runs
        .iter()
        .filter_map(|r| r.cluster_instance.as_ref()?.cluster_id.as_deref())
        .collect();
    for cluster in clusters {
        let label = format!(
            "workspace {workspace}: cluster {} ({})",
            cluster.cluster_id, cluster.cluster_name
        );
        match cluster.state.as_str() {
            "PENDING" | "RESTARTING" | "RESIZING" => assessment
                .blockers
                .push(format!("{label} is {}", cluster.state)),
            "RUNNING" => {
                if run_clusters.contains(&cluster.cluster_id.as_str()) {
                    continue; // Already blocked by its run.
                }
                let last = cluster
                    .last_activity_time
                    .or(cluster.last_restarted_time)
                    .or(cluster.start_time);
                match last {
                    Some(at) if now_ms - at >= idle_ms => assessment.idle_clusters.push(cluster.cluster_id.clone()),
                    Some(at) => assessment.blockers.push(format!(
                        "{label} is busy (last active {} min ago, idle threshold {idle_minutes} min)",
                        (now_ms - at).max(0) / 60_000
                    )),
                    None => assessment.blockers.push(format!("{label} is running and its last activity is unknown")),
                }
            }
            _ => {}
        }
    }
    assessment
}

/// Reads and terminates through the Databricks REST API.
#[derive(Clone)]
pub struct DatabricksWorkspaces {
    pub secrets: aws_sdk_secretsmanager::Client,
    pub connector: DatabricksConnector,
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

/// Guard against a server that repeats a page token forever.
const MAX_PAGES: usize = 200;

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
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("page_size", "100".to_string())];
            if let Some(t) = &token {
                query.push(("page_token", t.clone()));
            }
            let page: ClusterPage = client.get_query("/api/2.1/clusters/list", &query).await?;
            all.extend(page.clusters);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                _ => return Ok(all),
            }
        }
        Ok(all)
    }

    pub async fn active_runs(&self, client: &DatabricksClient) -> Result<Vec<Run>, Error> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![
                ("active_only", "true".to_string()),
                ("limit", "25".to_string()),
            ];
            if let Some(t) = &token {
                query.push(("page_token", t.clone()));
            }
            let page: RunPage = client.get_query("/api/2.1/jobs/runs/list", &query).await?;
            all.extend(page.runs);
            match page
                .next_page_token
                .filter(|t| !t.is_empty() && page.has_more)
            {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                _ => return Ok(all),
            }
        }
        Ok(all)
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
    /// The workspace's clusters and active job runs.
    async fn inspect(&self, workspace: &WorkspaceRef) -> Result<(Vec<Cluster>, Vec<Run>), Error>;
    async fn terminate(&self, workspace: &WorkspaceRef, cluster_id: &str) -> Result<(), Error>;
}

impl WorkspaceApi for DatabricksWorkspaces {
    async fn inspect(&self, workspace: &WorkspaceRef) -> Result<(Vec<Cluster>, Vec<Run>), Error> {
        let client = self.client(workspace).await?;
        let clusters = self.clusters(&client).await?;
        let runs = self.active_runs(&client).await?;
        Ok((clusters, runs))
    }

    async fn terminate(&self, workspace: &WorkspaceRef, cluster_id: &str) -> Result<(), Error> {
        let client = self.client(workspace).await?;
        self.terminate_cluster(&client, cluster_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW_MS: i64 = 1_795_264_488_000;

    fn cluster(id: &str, state: &str, minutes_ago: Option<i64>) -> Cluster {
        Cluster {
            cluster_id: id.into(),
            cluster_name: format!("name-{id}"),
            state: state.into(),
            cluster_source: Some("UI".into()),
            last_activity_time: minutes_ago.map(|m| NOW_MS - m * 60_000),
            last_restarted_time: None,
            start_time: None,
        }
    }

    fn run(id: i64, cluster: Option<&str>) -> Run {
        Run {
            run_id: id,
            run_name: Some("nightly-etl".into()),
            job_id: Some(7),
            cluster_instance: cluster.map(|c| RunClusterInstance {
                cluster_id: Some(c.into()),
            }),
        }
    }

    #[test]
    fn active_runs_and_busy_clusters_block_idle_ones_are_terminated() {
        let clusters = vec![
            cluster("idle", "RUNNING", Some(120)),
            cluster("busy", "RUNNING", Some(5)),
            cluster("starting", "PENDING", None),
            cluster("stopped", "TERMINATED", Some(1)),
            cluster("job", "RUNNING", Some(500)),
        ];
        let a = assess("dev", &clusters, &[run(42, Some("job"))], NOW_MS, 60);
        assert_eq!(a.idle_clusters, vec!["idle"]);
        assert_eq!(a.blockers.len(), 3, "{:?}", a.blockers);
        assert!(a.blockers[0].contains("job run 42"));
        assert!(a
            .blockers
            .iter()
            .any(|b| b.contains("busy") && b.contains("5 min")));
        assert!(a.blockers.iter().any(|b| b.contains("PENDING")));
        let quiet = assess(
            "dev",
            &[cluster("idle", "RUNNING", Some(60))],
            &[],
            NOW_MS,
            60,
        );
        assert!(quiet.blockers.is_empty());
    }

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

    fn arb_cluster() -> impl Strategy<Value = Cluster> {
        (0u8..6, prop::option::of(0i64..600), 0u8..8).prop_map(|(state, ago, id)| {
            let states = [
                "PENDING",
                "RUNNING",
                "RESTARTING",
                "RESIZING",
                "TERMINATING",
                "TERMINATED",
            ];
            cluster(&format!("c{id}"), states[state as usize], ago)
        })
    }

    proptest! {
        #[test]
        fn only_running_clusters_idle_past_the_threshold_are_terminated(
            clusters in proptest::collection::vec(arb_cluster(), 0..10),
            runs in proptest::collection::vec((0i64..100, prop::option::of(0u8..8)), 0..4),
            idle in 1u64..240,
        ) {
            let runs: Vec<Run> = runs.iter().map(|(id, c)| run(*id, c.map(|c| format!("c{c}")).as_deref())).collect();
            let a = assess("ws", &clusters, &runs, NOW_MS, idle);
            for id in &a.idle_clusters {
                let idle_and_running = clusters.iter().any(|c| {
                    &c.cluster_id == id && c.state == "RUNNING" && NOW_MS - c.last_activity_time.unwrap_or(NOW_MS) >= idle as i64 * 60_000
                });
                prop_assert!(idle_and_running, "{} is not a running idle cluster", id);
                prop_assert!(!runs.iter().any(|r| r.cluster_instance.as_ref().and_then(|i| i.cluster_id.as_deref()) == Some(id.as_str())));
            }
            // Nothing active means no blocker, and any active run means one.
            prop_assert_eq!(runs.is_empty() && clusters.iter().all(|c| c.state != "RUNNING" && !matches!(c.state.as_str(), "PENDING" | "RESTARTING" | "RESIZING")), a.blockers.is_empty() && a.idle_clusters.is_empty());
            prop_assert!(a.blockers.len() >= runs.len());
        }
    }
}
