//! AWS clients, all built from one `SdkConfig` loaded once at init.
//!
//! With an endpoint override (`AWS_ENDPOINT_URL`, or a per-service
//! `AWS_ENDPOINT_URL_<SERVICE>`), the clients talk to an emulator: S3 then uses
//! path-style addressing (no bucket DNS names on 127.0.0.1), and checksums are
//! computed and validated only when an operation requires them, because
//! emulators do not all support the newer flexible checksums.
//!
//! The SDK's HTTPS client trusts the process's shared root certificates
//! ([`crate::tls::system_roots`]) instead of loading the system's store a
//! second time.

use crate::error::Error;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext};
use aws_smithy_http_client::ConnectorBuilder;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use std::fmt;

/// True when any AWS endpoint is overridden in the environment.
pub fn endpoint_override_set() -> bool {
    endpoint_override_in(std::env::vars().map(|(k, _)| k))
}

fn endpoint_override_in(mut names: impl Iterator<Item = String>) -> bool {
    names.any(|name| name == "AWS_ENDPOINT_URL" || name.starts_with("AWS_ENDPOINT_URL_"))
}

/// The SDK's HTTPS client: the SDK's default one (hyper 1, rustls with
/// aws-lc, proxy settings from the environment, the SDK's timeouts), except
/// that it trusts [`crate::tls::system_roots`] — loaded once per process and
/// shared with the Databricks client — instead of loading the system's roots
/// itself. One client serves every SDK client built from the same
/// `SdkConfig`, so they share its connectors and connection pool.
///
/// Built like `aws_smithy_runtime`'s `default_https_client` (the connector
/// function is called per connector settings, with the settings and the
/// runtime components of the calling client); only the TLS context differs.
/// `build_with_connector_fn` is hidden from aws-smithy-http-client's docs but
/// public, and it is what the SDK's own default client is made with; its
/// public alternative (`Builder::tls_provider(..).build_https()`) cannot set
/// the proxy configuration, so proxies from the environment would be lost.
pub fn https_client() -> SharedHttpClient {
    let tls_context = TlsContext::builder()
        .with_trust_store(crate::tls::system_roots().aws_trust_store())
        .build()
        .expect("a TLS context with a trust store is always valid");
    let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(
        move |settings, runtime_components| {
            let mut connector = ConnectorBuilder::default()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(tls_context.clone());
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = runtime_components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        },
    );
    SharedHttpClient::new(RootsLoadedAtInit(client))
}

/// The SDK's client, without its warm-up at every client construction.
///
/// The SDK's HTTP client builds a whole connector (a rustls configuration
/// with every root parsed into it) each time a service client is constructed,
/// and throws it away: its only purpose is to load the system's roots at init
/// rather than on the first request. Here the roots are loaded by
/// [`https_client`], at init, before any client exists; keeping the warm-up
/// cost ~0.5 ms per service client at init with the PEM trust store (catalog-
/// setup's four clients: ~2 ms, measured with bench/lambda_init.py). The
/// connector requests use is built on the first request and cached by the
/// inner client: once per process, for all the service clients sharing it.
#[derive(Debug)]
struct RootsLoadedAtInit(SharedHttpClient);

impl HttpClient for RootsLoadedAtInit {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// Load the shared SDK configuration: region, credentials, endpoint override,
/// and the SDK's standard retry mode (throttling and transient errors).
pub async fn load_sdk_config() -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .retry_config(RetryConfig::standard().with_max_attempts(5));
    if endpoint_override_set() {
        loader = loader
            .request_checksum_calculation(
                aws_types::sdk_config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_types::sdk_config::ResponseChecksumValidation::WhenRequired,
            );
    }
    loader.load().await
}

/// An SDK config for an emulator at `endpoint` (tests and local tools): fixed
/// test credentials and region, checksums only when required.
pub async fn sdk_config_for_emulator(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "lakeops-emulator",
        ))
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .request_checksum_calculation(
            aws_types::sdk_config::RequestChecksumCalculation::WhenRequired,
        )
        .response_checksum_validation(
            aws_types::sdk_config::ResponseChecksumValidation::WhenRequired,
        )
        .load()
        .await
}

#[cfg(feature = "s3")]
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let emulated = config.endpoint_url().is_some() || endpoint_override_set();
    let conf = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(emulated)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

macro_rules! plain_client {
    ($feature:literal, $name:ident, $krate:ident) => {
        #[cfg(feature = $feature)]
        pub fn $name(config: &SdkConfig) -> $krate::Client {
            $krate::Client::new(config)
        }
    };
}

plain_client!("glue", glue, aws_sdk_glue);
plain_client!("lakeformation", lakeformation, aws_sdk_lakeformation);
plain_client!("secretsmanager", secretsmanager, aws_sdk_secretsmanager);
plain_client!("iam", iam, aws_sdk_iam);
plain_client!("sts", sts, aws_sdk_sts);
plain_client!("ec2", ec2, aws_sdk_ec2);
plain_client!("sns", sns, aws_sdk_sns);
plain_client!("athena", athena, aws_sdk_athena);
plain_client!("ssm", ssm, aws_sdk_ssm);

/// A JSON document given inline, or read from the `s3://bucket/key` URI given instead
/// (a spec is either). `field` names the input in errors.
#[cfg(feature = "s3")]
pub async fn resolve_json(
    s3: &aws_sdk_s3::Client,
    value: &serde_json::Value,
    field: &str,
) -> Result<serde_json::Value, Error> {
    let serde_json::Value::String(uri) = value else {
        return Ok(value.clone());
    };
    let (bucket, key) = crate::s3_uri::parse_s3_uri(uri).ok_or_else(|| {
        Error::invalid_input(format!(
            "{field}: {uri:?} is neither a JSON object nor an s3://bucket/key URI"
        ))
    })?;
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| aws_error(format!("reading the {field} {uri}"), e))?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| Error::retryable(format!("reading the {field} {uri}: {e}")))?
        .into_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid_input(format!("{field}: {uri} is not JSON: {e}")))
}

/// A lakeops credential secret, parsed (the value never leaves as text).
#[cfg(feature = "secretsmanager")]
pub async fn read_credential(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<crate::credentials::Credential, Error> {
    let output = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| aws_error(format!("reading secret {id}"), e))?;
    let text = crate::Secret::new(output.secret_string().unwrap_or_default().to_string());
    crate::credentials::Credential::parse(text.expose()).map_err(|problems| {
        Error::terminal(format!(
            "secret {id} is not a lakeops credential: {problems}"
        ))
    })
}

/// Error codes that mean "try again later", across services.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServiceException",
    "InternalServerError",
    "ConcurrentModificationException",
    "OperationTimeoutException",
    "ResourceNumberLimitExceededException",
];

/// Error codes that mean the request itself is wrong.
const INVALID_INPUT_CODES: &[&str] = &[
    "InvalidInputException",
    "ValidationException",
    "InvalidParameterValue",
    "InvalidParameterException",
    "InvalidRequestException",
    "MalformedPolicyDocument",
];

/// Whether an AWS error code is transient.
pub fn is_transient_code(code: &str) -> bool {
    TRANSIENT_CODES.contains(&code)
}

/// The service's error code of an SDK error, if the service answered.
pub fn error_code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    match error {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// Turn an SDK error into a lakeops error, naming the call. Transport faults
/// and throttling are retryable; a rejected request is invalid input; the rest
/// is terminal.
pub fn aws_error<E, R>(call: impl fmt::Display, error: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug,
{
    match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Error::retryable(format!("{call}: {}", describe(&error)))
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = service.err().message().unwrap_or_default();
            let text = format!("{call}: {code}: {message}");
            if is_transient_code(code) {
                Error::retryable(text)
            } else if INVALID_INPUT_CODES.contains(&code) {
                Error::invalid_input(text)
            } else {
                Error::terminal(text)
            }
        }
        _ => Error::terminal(format!("{call}: {}", describe(&error))),
    }
}

fn describe<E: std::error::Error + 'static, R: fmt::Debug>(error: &SdkError<E, R>) -> String {
    // DisplayErrorContext walks the source chain; the SDK never puts
    // credentials into error messages.
    aws_smithy_types::error::display::DisplayErrorContext(error).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_endpoint_overrides() {
        let names = |v: &[&str]| {
            v.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert!(endpoint_override_in(names(&["PATH", "AWS_ENDPOINT_URL"])));
        assert!(endpoint_override_in(names(&["AWS_ENDPOINT_URL_S3"])));
        assert!(!endpoint_override_in(names(&["AWS_REGION", "HOME"])));
    }

    #[test]
    fn classifies_codes() {
        assert!(is_transient_code("ThrottlingException"));
        assert!(is_transient_code("ConcurrentModificationException"));
        assert!(!is_transient_code("AccessDeniedException"));
    }
}
