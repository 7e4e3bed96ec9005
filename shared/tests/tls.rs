//! Both HTTPS clients — the AWS SDK's (`aws::https_client`, through
//! `sdk_config_for_emulator`) and the Databricks one (`DatabricksConnector`) —
//! verify servers against the process's shared trusted roots, which honour
//! `SSL_CERT_FILE` as the system loader always did.
//!
//! One test in this binary on purpose: the roots are read once per process,
//! from the environment this test sets before anything loads them.
//!
//! The certificates are made by the test (rcgen): a CA that the test trusts,
//! one it does not, and a `localhost`/`127.0.0.1` server certificate from
//! each. No private key lives in the repository.

use aws_config::retry::RetryConfig;
use aws_smithy_runtime_api::client::result::SdkError;
use lakeops_shared::databricks::{Credentials, DatabricksConnector, DatabricksSettings};
use lakeops_shared::retry::RetryPolicy;
use lakeops_shared::Secret;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A test CA, and a server certificate for `localhost` / 127.0.0.1 it signed.
struct TestPki {
    ca_pem: String,
    server_pem: String,
    server_key_pem: String,
}

fn test_pki(name: &str) -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("lakeops test CA ({name})"));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        server_pem: server.pem(),
        server_key_pem: server_key.serialize_pem(),
    }
}

const CALLER_IDENTITY: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:iam::123456789012:user/tls-test</Arn>
    <UserId>AIDATLSTEST</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>tls-test</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#;

/// Failed TLS handshakes, as the server saw them.
type Handshakes = Arc<Mutex<Vec<String>>>;

/// An HTTPS server on 127.0.0.1 presenting `certificate` (name: localhost).
/// It answers a POST as STS GetCallerIdentity and anything else with a
/// Databricks-style JSON object; returns its port and its failed handshakes.
async fn https_server(pki: &TestPki) -> (u16, Handshakes) {
    let chain = vec![CertificateDer::from_pem_slice(pki.server_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let failed = Handshakes::default();
    let failures = failed.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let failures = failures.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake
                // with an alert.
                let mut tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(error) => {
                        failures.lock().unwrap().push(error.to_string());
                        return;
                    }
                };
                let Some(request) = read_request(&mut tls).await else {
                    return;
                };
                let (content_type, body) = if request.starts_with("POST") {
                    ("text/xml", CALLER_IDENTITY.to_string())
                } else {
                    ("application/json", r#"{"verified":true}"#.to_string())
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, failed)
}

/// The request head, after reading the body too (so that closing the
/// connection does not reset it under the client).
async fn read_request(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Option<String> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..read]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while data.len() < end + 4 + length {
            let read = stream.read(&mut buffer).await.ok()?;
            if read == 0 {
                return None;
            }
            data.extend_from_slice(&buffer[..read]);
        }
        return Some(head);
    }
}

/// How many handshakes failed, once `expected` have or after 5 s: the
/// server notices the client's alert a little after the client gave up.
async fn failed_handshakes(failures: &Handshakes, expected: usize) -> usize {
    for _ in 0..100 {
        if failures.lock().unwrap().len() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    failures.lock().unwrap().len()
}

fn databricks(account_host: String) -> DatabricksConnector {
    DatabricksConnector::new(DatabricksSettings {
        account_host,
        workspace_host_template: "https://{deployment_name}.invalid".into(),
        retry: RetryPolicy {
            budget: Duration::ZERO,
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        request_timeout: Duration::from_secs(10),
    })
    .unwrap()
}

async fn caller_account(endpoint: &str) -> Result<String, String> {
    let sdk = lakeops_shared::aws::sdk_config_for_emulator(endpoint).await;
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&sdk)
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    match sts.get_caller_identity().send().await {
        Ok(identity) => Ok(identity.account().unwrap_or_default().to_string()),
        Err(error @ SdkError::DispatchFailure(_)) => Err(format!(
            "dispatch failure: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&error)
        )),
        Err(other) => panic!(
            "expected success or a dispatch failure, got {}",
            aws_smithy_types::error::display::DisplayErrorContext(&other)
        ),
    }
}

#[tokio::test]
async fn both_clients_trust_ssl_cert_file_and_reject_other_servers() {
    // Only the test CA is trusted: SSL_CERT_FILE alone, and an empty
    // SSL_CERT_DIR so the platform directory is not read either.
    let trusted_pki = test_pki("trusted");
    let untrusted_pki = test_pki("untrusted");
    let work = std::env::temp_dir().join(format!("lakeops-tls-{}", std::process::id()));
    let empty_dir = work.join("certs");
    std::fs::create_dir_all(&empty_dir).unwrap();
    let ca_file = work.join("trusted-ca.pem");
    std::fs::write(&ca_file, &trusted_pki.ca_pem).unwrap();
    std::env::set_var("SSL_CERT_FILE", &ca_file);
    std::env::set_var("SSL_CERT_DIR", &empty_dir);

    let roots = lakeops_shared::tls::system_roots();
    assert_eq!(roots.len(), 1, "exactly the CA of SSL_CERT_FILE");

    let (trusted, trusted_failures) = https_server(&trusted_pki).await;
    let (untrusted, untrusted_failures) = https_server(&untrusted_pki).await;

    // Databricks client: verified against the test CA, by name.
    let connector = databricks(format!("https://localhost:{trusted}"));
    let client = connector.account("acct", Credentials::Pat(Secret::new("dapi-test")));
    let body: serde_json::Value = client.get("/api/2.0/ping").await.unwrap();
    assert_eq!(body["verified"], true);

    // ... and a server whose CA is not trusted is refused before any request.
    let connector = databricks(format!("https://localhost:{untrusted}"));
    let client = connector.account("acct", Credentials::Pat(Secret::new("dapi-test")));
    let error = client
        .get::<serde_json::Value>("/api/2.0/ping")
        .await
        .unwrap_err();
    assert_eq!(error.status, 0, "no response: {error}");
    assert!(
        error.message.contains("UnknownIssuer"),
        "the client refused the certificate: {error}"
    );
    assert_eq!(
        failed_handshakes(&untrusted_failures, 1).await,
        1,
        "the server saw the client abort the handshake"
    );

    // AWS SDK client: same roots, same outcome.
    assert_eq!(
        caller_account(&format!("https://localhost:{trusted}"))
            .await
            .unwrap(),
        "123456789012"
    );
    let refused = caller_account(&format!("https://localhost:{untrusted}"))
        .await
        .unwrap_err();
    assert!(
        refused.contains("UnknownIssuer"),
        "expected an untrusted-certificate error: {refused}"
    );
    assert_eq!(failed_handshakes(&untrusted_failures, 2).await, 2);
    assert!(
        untrusted_failures
            .lock()
            .unwrap()
            .iter()
            .all(|failure| failure.contains("alert")),
        "{:?}",
        untrusted_failures.lock().unwrap()
    );
    assert!(trusted_failures.lock().unwrap().is_empty());

    let _ = std::fs::remove_dir_all(&work);
}
