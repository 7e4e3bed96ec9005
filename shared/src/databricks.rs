//! The Databricks REST client: account and workspace hosts, PAT or OAuth M2M,
//! Databricks' `{error_code, message}` errors, and retries of transient faults.
//!
//! [`DatabricksConnector`] is built once at init: it owns the HTTP connection
//! pool, the retry policy and the OAuth token cache. Handlers then take cheap
//! [`DatabricksClient`]s from it for the host and credentials of each event,
//! because credentials come from Secrets Manager at run time.

use crate::error::Error;
use crate::retry::{RetryAdvice, RetryPolicy};
use crate::secret::Secret;
use crate::settings::Env;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Where Databricks lives. In AWS: `https://accounts.cloud.databricks.com` and
/// `https://{deployment_name}.cloud.databricks.com`; locally, the emulator's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabricksSettings {
    pub account_host: String,
    /// Contains `{deployment_name}`.
    pub workspace_host_template: String,
    pub retry: RetryPolicy,
    pub request_timeout: Duration,
}

pub const DEFAULT_ACCOUNT_HOST: &str = "https://accounts.cloud.databricks.com";
pub const DEFAULT_WORKSPACE_HOST_TEMPLATE: &str = "https://{deployment_name}.cloud.databricks.com";

impl DatabricksSettings {
    /// `DATABRICKS_ACCOUNT_HOST`, `DATABRICKS_WORKSPACE_HOST_TEMPLATE`,
    /// `DATABRICKS_RETRY_BUDGET_SECONDS`, `DATABRICKS_REQUEST_TIMEOUT_SECONDS`.
    pub fn read(env: &mut Env) -> Self {
        let account_host = env.or("DATABRICKS_ACCOUNT_HOST", DEFAULT_ACCOUNT_HOST.to_string());
        let workspace_host_template = env.or(
            "DATABRICKS_WORKSPACE_HOST_TEMPLATE",
            DEFAULT_WORKSPACE_HOST_TEMPLATE.to_string(),
        );
        if !workspace_host_template.contains("{deployment_name}") {
            env.problem(
                "DATABRICKS_WORKSPACE_HOST_TEMPLATE",
                "must contain {deployment_name}",
            );
        }
        if url::Url::parse(&account_host).is_err() {
            env.problem("DATABRICKS_ACCOUNT_HOST", "is not a URL");
        }
        let budget: u64 = env.or("DATABRICKS_RETRY_BUDGET_SECONDS", 20);
        let timeout: u64 = env.or("DATABRICKS_REQUEST_TIMEOUT_SECONDS", 30);
        Self {
            account_host: account_host.trim_end_matches('/').to_string(),
            workspace_host_template,
            retry: RetryPolicy {
                budget: Duration::from_secs(budget),
                ..RetryPolicy::default()
            },
            request_timeout: Duration::from_secs(timeout),
        }
    }

    /// The base URL of a workspace, from its deployment name.
    pub fn workspace_url(&self, deployment_name: &str) -> String {
        self.workspace_host_template
            .replace("{deployment_name}", deployment_name)
            .trim_end_matches('/')
            .to_string()
    }
}

/// How a client authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A personal access token, valid on one workspace.
    Pat(Secret),
    /// OAuth machine-to-machine: a service principal's client id and secret,
    /// exchanged for short-lived access tokens.
    OAuthM2M {
        client_id: String,
        client_secret: Secret,
    },
}

/// A failed call, as Databricks described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabricksError {
    /// 0 when no response arrived (connection refused, timeout).
    pub status: u16,
    pub error_code: Option<String>,
    pub message: String,
    /// What was being called, e.g. `POST /api/2.0/accounts/{id}/credentials`.
    pub request: String,
    pub retry_after: Option<Duration>,
}

impl DatabricksError {
    pub fn is_transient(&self) -> bool {
        matches!(self.status, 0 | 429 | 500 | 502 | 503 | 504)
            || self.error_code.as_deref() == Some("TEMPORARILY_UNAVAILABLE")
            || self.error_code.as_deref() == Some("REQUEST_LIMIT_EXCEEDED")
    }

    pub fn is_not_found(&self) -> bool {
        self.status == 404
            || matches!(
                self.error_code.as_deref(),
                Some("RESOURCE_DOES_NOT_EXIST") | Some("NOT_FOUND")
            )
    }

    pub fn is_already_exists(&self) -> bool {
        self.status == 409
            || matches!(
                self.error_code.as_deref(),
                Some("RESOURCE_ALREADY_EXISTS") | Some("ALREADY_EXISTS")
            )
    }

    /// Parse an error response body: JSON `{error_code, message}` (SCIM uses
    /// `{detail, status}`), or any other text, kept short.
    pub fn from_response(
        status: u16,
        body: &str,
        request: String,
        retry_after: Option<Duration>,
    ) -> Self {
        #[derive(Deserialize)]
        struct Body {
            // A string usually, a number for some auth errors (401, 403).
            error_code: Option<serde_json::Value>,
            message: Option<String>,
            detail: Option<String>,
            error: Option<String>,
            error_description: Option<String>,
        }
        let parsed: Option<Body> = serde_json::from_str(body).ok();
        let (error_code, message) = match parsed {
            Some(b) => (
                b.error_code
                    .map(|code| match code {
                        serde_json::Value::String(text) => text,
                        other => other.to_string(),
                    })
                    .or(b.error.clone()),
                b.message
                    .or(b.detail)
                    .or(b.error_description)
                    .or(b.error)
                    .unwrap_or_default(),
            ),
            None => (None, crate::validate::truncate(body.trim(), 300)),
        };
        Self {
            status,
            error_code,
            message,
            request,
            retry_after,
        }
    }
}

impl fmt::Display for DatabricksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.request)?;
        if self.status != 0 {
            write!(f, " with HTTP {}", self.status)?;
        }
        if let Some(code) = &self.error_code {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for DatabricksError {}

impl From<DatabricksError> for Error {
    fn from(error: DatabricksError) -> Self {
        if error.is_transient() {
            Error::retryable(error.to_string())
        } else {
            Error::terminal(error.to_string())
        }
    }
}

#[derive(Clone)]
struct CachedToken {
    token: Secret,
    refresh_at: Instant,
}

/// Built once per process. Cloning is cheap and shares the pool and the cache.
#[derive(Clone)]
pub struct DatabricksConnector {
    http: reqwest::Client,
    settings: Arc<DatabricksSettings>,
    tokens: Arc<Mutex<HashMap<(String, String), CachedToken>>>,
}

impl DatabricksConnector {
    /// Builds the HTTP client at once, on the process's shared trusted roots
    /// ([`crate::tls::system_roots`], the same the AWS SDK's client uses).
    /// Fails when no root certificate could be loaded.
    pub fn new(settings: DatabricksSettings) -> Result<Self, Error> {
        let tls = crate::tls::system_roots().rustls_client_config()?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(settings.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("lakeops/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::terminal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            settings: Arc::new(settings),
            tokens: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub fn settings(&self) -> &DatabricksSettings {
        &self.settings
    }

    /// A client for the account API of `account_id`.
    pub fn account(&self, account_id: &str, credentials: Credentials) -> DatabricksClient {
        let host = self.settings.account_host.clone();
        DatabricksClient {
            connector: self.clone(),
            token_url: format!("{host}/oidc/accounts/{account_id}/v1/token"),
            base_url: host,
            account_id: Some(account_id.to_string()),
            credentials,
        }
    }

    /// A client for a workspace, by its base URL.
    pub fn workspace_at(&self, base_url: &str, credentials: Credentials) -> DatabricksClient {
        let base_url = base_url.trim_end_matches('/').to_string();
        DatabricksClient {
            connector: self.clone(),
            token_url: format!("{base_url}/oidc/v1/token"),
            base_url,
            account_id: None,
            credentials,
        }
    }

    /// A client for a workspace, by its deployment name and the host template.
    pub fn workspace(&self, deployment_name: &str, credentials: Credentials) -> DatabricksClient {
        self.workspace_at(&self.settings.workspace_url(deployment_name), credentials)
    }
}

/// A client bound to one host and one set of credentials.
#[derive(Clone)]
pub struct DatabricksClient {
    connector: DatabricksConnector,
    base_url: String,
    token_url: String,
    account_id: Option<String>,
    credentials: Credentials,
}

impl fmt::Debug for DatabricksClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabricksClient")
            .field("base_url", &self.base_url)
            .field("account_id", &self.account_id)
            .field("credentials", &self.credentials)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    expires_in: Option<u64>,
}

/// The access-token lifetime we plan with: refresh a minute before expiry, or
/// at half-life for tokens that live less than two minutes.
fn refresh_after(expires_in: Duration) -> Duration {
    if expires_in > Duration::from_secs(120) {
        expires_in - Duration::from_secs(60)
    } else {
        expires_in / 2
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

fn advise(error: &DatabricksError) -> RetryAdvice {
    if !error.is_transient() {
        RetryAdvice::Stop
    } else if let Some(after) = error.retry_after {
        RetryAdvice::RetryAfter(after)
    } else {
        RetryAdvice::Retry
    }
}

impl DatabricksClient {
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The account id of an account client.
    pub fn account_id(&self) -> Option<&str> {
        self.account_id.as_deref()
    }

    /// `/api/2.0/accounts/{account_id}/{rest}` for an account client.
    pub fn account_path(&self, rest: &str) -> String {
        format!(
            "/api/2.0/accounts/{}/{}",
            self.account_id.as_deref().unwrap_or_default(),
            rest.trim_start_matches('/')
        )
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, DatabricksError> {
        self.call::<(), T>(Method::GET, path, &[], None).await
    }

    pub async fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, DatabricksError> {
        self.call::<(), T>(Method::GET, path, query, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, DatabricksError> {
        self.call(Method::POST, path, &[], Some(body)).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, DatabricksError> {
        self.call(Method::PUT, path, &[], Some(body)).await
    }

    pub async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, DatabricksError> {
        self.call(Method::PATCH, path, &[], Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<(), DatabricksError> {
        self.call::<(), serde_json::Value>(Method::DELETE, path, &[], None)
            .await
            .map(|_| ())
    }

    /// Like [`get`](Self::get), but a 404 is `Ok(None)`.
    pub async fn get_optional<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, DatabricksError> {
        match self.get(path).await {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// One call, with retries of transient faults within the policy's budget.
    /// An empty response body reads as JSON `{}`.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, DatabricksError> {
        let request = format!("{method} {path}");
        let policy = self.connector.settings.retry;
        let value: serde_json::Value = policy
            .run(
                |_| self.attempt(method.clone(), path, query, body, &request),
                advise,
            )
            .await?;
        serde_json::from_value(value).map_err(|e| DatabricksError {
            status: 200,
            error_code: Some("UNEXPECTED_RESPONSE".into()),
            message: format!("response did not match the expected shape: {e}"),
            request,
            retry_after: None,
        })
    }

    async fn attempt<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        request: &str,
    ) -> Result<serde_json::Value, DatabricksError> {
        let token = self.bearer(request).await?;
        let mut builder = self
            .connector
            .http
            .request(method, format!("{}{}", self.base_url, path))
            .bearer_auth(token.expose());
        if !query.is_empty() {
            builder = builder.query(query);
        }
        if let Some(body) = body {
            builder = builder.json(body);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| transport_error(request, &e))?;
        let status = response.status();
        let after = retry_after(response.headers());
        let text = response
            .text()
            .await
            .map_err(|e| transport_error(request, &e))?;
        if status == StatusCode::UNAUTHORIZED {
            // A revoked or expired cached token: forget it so the next attempt
            // (Step Functions' retry) exchanges a fresh one.
            self.forget_token().await;
        }
        if !status.is_success() {
            return Err(DatabricksError::from_response(
                status.as_u16(),
                &text,
                request.to_string(),
                after,
            ));
        }
        if text.trim().is_empty() {
            return Ok(serde_json::Value::Object(Default::default()));
        }
        serde_json::from_str(&text).map_err(|e| DatabricksError {
            status: status.as_u16(),
            error_code: Some("UNEXPECTED_RESPONSE".into()),
            message: format!("response is not JSON: {e}"),
            request: request.to_string(),
            retry_after: None,
        })
    }

    fn cache_key(&self) -> Option<(String, String)> {
        match &self.credentials {
            Credentials::OAuthM2M { client_id, .. } => {
                Some((self.token_url.clone(), client_id.clone()))
            }
            Credentials::Pat(_) => None,
        }
    }

    async fn forget_token(&self) {
        if let Some(key) = self.cache_key() {
            self.connector.tokens.lock().await.remove(&key);
        }
    }

    /// The bearer token for a request: the PAT, or a cached or new OAuth token.
    async fn bearer(&self, request: &str) -> Result<Secret, DatabricksError> {
        let (client_id, client_secret) = match &self.credentials {
            Credentials::Pat(token) => return Ok(token.clone()),
            Credentials::OAuthM2M {
                client_id,
                client_secret,
            } => (client_id, client_secret),
        };
        let key = (self.token_url.clone(), client_id.clone());
        // Holding the lock across the exchange means concurrent requests wait
        // for one exchange instead of each making its own.
        let mut cache = self.connector.tokens.lock().await;
        if let Some(cached) = cache.get(&key) {
            if Instant::now() < cached.refresh_at {
                return Ok(cached.token.clone());
            }
        }
        let response = self
            .connector
            .http
            .post(&self.token_url)
            .basic_auth(client_id, Some(client_secret.expose()))
            .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
            .send()
            .await
            .map_err(|e| transport_error(request, &e))?;
        let status = response.status();
        let after = retry_after(response.headers());
        let text = response
            .text()
            .await
            .map_err(|e| transport_error(request, &e))?;
        if !status.is_success() {
            let mut error = DatabricksError::from_response(
                status.as_u16(),
                &text,
                format!("OAuth token exchange for {request}"),
                after,
            );
            error.message = crate::validate::truncate(&error.message, 300);
            return Err(error);
        }
        let token: TokenResponse = serde_json::from_str(&text).map_err(|_| DatabricksError {
            status: status.as_u16(),
            error_code: Some("UNEXPECTED_RESPONSE".into()),
            // The body holds a token: never echo it.
            message: "token response is not the expected JSON".into(),
            request: request.to_string(),
            retry_after: None,
        })?;
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3600));
        cache.insert(
            key,
            CachedToken {
                token: token.access_token.clone(),
                refresh_at: Instant::now() + refresh_after(lifetime),
            },
        );
        Ok(token.access_token)
    }

    /// Exchange the client credentials for a token now, bypassing the cache.
    /// Used to test a freshly rotated OAuth secret.
    pub async fn verify_credentials(&self) -> Result<(), DatabricksError> {
        self.forget_token().await;
        self.bearer("credential check").await.map(|_| ())
    }
}

fn transport_error(request: &str, error: &reqwest::Error) -> DatabricksError {
    // reqwest errors carry the URL, never headers, so no token can leak here.
    DatabricksError {
        status: 0,
        error_code: None,
        message: if error.is_timeout() {
            "timed out".to_string()
        } else if error.is_connect() {
            // The innermost cause says why: refused, DNS, or a TLS failure
            // such as an untrusted certificate.
            match root_cause(error) {
                Some(cause) => format!("could not connect: {cause}"),
                None => "could not connect".to_string(),
            }
        } else {
            format!("transport error: {error}")
        },
        request: request.to_string(),
        retry_after: None,
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = error.source()?;
    while let Some(next) = cause.source() {
        cause = next;
    }
    Some(cause.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_and_plain_error_bodies() {
        let e = DatabricksError::from_response(
            409,
            r#"{"error_code":"RESOURCE_ALREADY_EXISTS","message":"Credential with name x already exists"}"#,
            "POST /x".into(),
            None,
        );
        assert!(e.is_already_exists());
        assert!(!e.is_transient());
        assert_eq!(e.to_string(), "POST /x failed with HTTP 409 RESOURCE_ALREADY_EXISTS: Credential with name x already exists");

        let e = DatabricksError::from_response(
            400,
            "Failed credential validation checks: please use a valid cross account IAM role",
            "POST /c".into(),
            None,
        );
        assert_eq!(e.error_code, None);
        assert!(e.message.starts_with("Failed credential validation"));

        let e = DatabricksError::from_response(
            503,
            "<html>bad gateway</html>",
            "GET /w".into(),
            Some(Duration::from_secs(2)),
        );
        assert!(e.is_transient());
        assert_eq!(advise(&e), RetryAdvice::RetryAfter(Duration::from_secs(2)));

        let e = DatabricksError::from_response(
            404,
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"Group not found","status":"404"}"#,
            "GET /g".into(),
            None,
        );
        assert!(e.is_not_found());
        assert_eq!(e.message, "Group not found");
    }

    #[test]
    fn numeric_error_codes_of_auth_errors() {
        let e = DatabricksError::from_response(
            403,
            r#"{"error_code":403,"message":"Invalid access token."}"#,
            "GET /x".into(),
            None,
        );
        assert_eq!(e.error_code.as_deref(), Some("403"));
        assert_eq!(e.message, "Invalid access token.");
    }

    #[test]
    fn long_plain_bodies_are_truncated_on_a_char_boundary() {
        let body = "é".repeat(400);
        let e = DatabricksError::from_response(500, &body, "GET /x".into(), None);
        assert!(e.message.len() < 400);
    }

    #[test]
    fn error_kinds() {
        let transient: Error =
            DatabricksError::from_response(429, "", "GET /x".into(), None).into();
        assert!(transient.is_retryable());
        let terminal: Error =
            DatabricksError::from_response(403, "{}", "GET /x".into(), None).into();
        assert_eq!(terminal.error_name(), "Lakeops.Terminal");
    }

    #[test]
    fn token_refresh_margin() {
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn workspace_urls_follow_the_template() {
        let mut env = Env::from_map(
            [(
                "DATABRICKS_WORKSPACE_HOST_TEMPLATE".to_string(),
                "http://127.0.0.1:8900/ws/{deployment_name}/".to_string(),
            )]
            .into_iter()
            .collect(),
        );
        let settings = DatabricksSettings::read(&mut env);
        env.finish().unwrap();
        assert_eq!(
            settings.workspace_url("dev-1"),
            "http://127.0.0.1:8900/ws/dev-1"
        );
        assert_eq!(settings.account_host, DEFAULT_ACCOUNT_HOST);

        let mut env = Env::from_map(
            [(
                "DATABRICKS_WORKSPACE_HOST_TEMPLATE".to_string(),
                "https://x".to_string(),
            )]
            .into_iter()
            .collect(),
        );
        DatabricksSettings::read(&mut env);
        assert!(env
            .finish()
            .unwrap_err()
            .to_string()
            .contains("{deployment_name}"));
    }

    #[test]
    fn debug_of_a_client_redacts_credentials() {
        let connector = DatabricksConnector::new(DatabricksSettings::read(&mut Env::from_map(
            Default::default(),
        )))
        .unwrap();
        let client = connector.account(
            "acc",
            Credentials::OAuthM2M {
                client_id: "cid".into(),
                client_secret: Secret::new("very-secret-value"),
            },
        );
        let text = format!("{client:?}");
        assert!(!text.contains("very-secret-value"), "{text}");
        assert!(text.contains("cid"));
    }
}
