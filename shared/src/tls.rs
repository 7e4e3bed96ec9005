//! The trusted root certificates, loaded once per process and shared by the
//! two HTTPS clients a function builds at init: the AWS SDK's
//! ([`crate::aws::https_client`]) and the Databricks one
//! ([`crate::databricks::DatabricksConnector`]).
//!
//! Why: each client used to load the system's roots on its own (the SDK
//! through `rustls-native-certs`, reqwest through `rustls-platform-verifier`,
//! which on Linux calls the same loader). Loading reads the CA bundle and then
//! every file of the certificate directory (`/etc/ssl/certs`: ~150 files on
//! Debian), and it was the largest single cost of a cold start (BENCHMARKS.md).
//! Loading once halves it for the functions that talk to Databricks.
//!
//! What is trusted does not change: the roots come from the same loader,
//! `rustls_native_certs::load_native_certs`, so `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` are honoured as before (read once, when the roots are first
//! needed), and otherwise the platform's usual bundle and directory are used.
//! Verification is rustls' WebPKI verifier over those roots — what
//! `rustls-platform-verifier` does on Linux.

use crate::error::Error;
use base64::Engine;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::sync::{Arc, OnceLock};

/// The roots a process trusts: parsed once for rustls, and kept as PEM for
/// the AWS SDK, whose trust store only takes PEM.
pub struct TrustedRoots {
    store: Arc<RootCertStore>,
    /// The certificates of `store`, PEM-encoded, one after the other.
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    pem: Vec<u8>,
    /// How many loaded certificates could not be used as trust anchors.
    ignored: usize,
}

static SYSTEM_ROOTS: OnceLock<TrustedRoots> = OnceLock::new();

/// The system's trusted roots, loaded on the first call (at init) and shared
/// by every client of the process afterwards.
pub fn system_roots() -> &'static TrustedRoots {
    SYSTEM_ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        // Same reporting as the SDK's and the platform verifier's own loading:
        // unreadable files are warnings, not failures (paths only, no secrets).
        for error in &loaded.errors {
            tracing::warn!(error = %error, "could not load a trusted root certificate");
        }
        let roots = TrustedRoots::from_certificates(loaded.certs);
        if roots.ignored > 0 {
            tracing::warn!(
                ignored = roots.ignored,
                "some system root certificates are not usable as trust anchors"
            );
        }
        if roots.is_empty() {
            tracing::warn!("no trusted root certificates found");
        }
        roots
    })
}

impl TrustedRoots {
    /// Trust these DER certificates; those that are not usable as trust
    /// anchors are left out and counted, as `rustls` and the SDK do.
    pub fn from_certificates(certificates: Vec<CertificateDer<'static>>) -> Self {
        let mut store = RootCertStore::empty();
        let mut pem = Vec::new();
        let mut ignored = 0;
        for certificate in &certificates {
            match store.add(CertificateDer::from(certificate.as_ref())) {
                Ok(()) => append_pem(&mut pem, certificate.as_ref()),
                Err(_) => ignored += 1,
            }
        }
        Self {
            store: Arc::new(store),
            pem,
            ignored,
        }
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// A rustls client configuration that verifies servers against these
    /// roots (WebPKI, TLS 1.2 and 1.3, aws-lc-rs, ALPN h2 then http/1.1 —
    /// what reqwest configures itself). The parsed store is shared, not
    /// copied. Fails when there are no roots: no server could be trusted.
    pub fn rustls_client_config(&self) -> Result<rustls::ClientConfig, Error> {
        if self.is_empty() {
            return Err(Error::terminal(
                "no trusted root certificates were found (system store, SSL_CERT_FILE, SSL_CERT_DIR)",
            ));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::terminal(format!("TLS configuration: {e}")))?
            .with_root_certificates(Arc::clone(&self.store))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The same roots as a trust store for the AWS SDK's HTTPS client. It
    /// starts `empty()`: without the SDK's own loading of the platform's
    /// roots, which would read the files again.
    #[cfg(feature = "aws")]
    pub fn aws_trust_store(&self) -> aws_smithy_http_client::tls::TrustStore {
        aws_smithy_http_client::tls::TrustStore::empty().with_pem_certificate(self.pem.clone())
    }

    #[cfg(test)]
    fn pem(&self) -> &[u8] {
        &self.pem
    }
}

/// Append one certificate as a PEM `CERTIFICATE` block, 64 columns wide.
fn append_pem(out: &mut Vec<u8>, der: &[u8]) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    out.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END CERTIFICATE-----\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    fn system_certificates() -> Vec<CertificateDer<'static>> {
        rustls_native_certs::load_native_certs().certs
    }

    #[test]
    fn pem_for_the_sdk_holds_exactly_the_usable_roots() {
        let certificates = system_certificates();
        assert!(
            !certificates.is_empty(),
            "this test needs a system CA store"
        );
        let roots = TrustedRoots::from_certificates(certificates.clone());
        let decoded: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(roots.pem())
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        assert_eq!(decoded.len(), roots.len());
        assert_eq!(roots.len() + roots.ignored, certificates.len());
        // Every decoded certificate is one of the loaded ones, byte for byte.
        for certificate in &decoded {
            assert!(certificates.contains(certificate));
        }
    }

    #[test]
    fn unusable_certificates_are_left_out_and_counted() {
        let mut certificates = system_certificates();
        let usable = TrustedRoots::from_certificates(certificates.clone()).len();
        certificates.push(CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]));
        let roots = TrustedRoots::from_certificates(certificates);
        assert_eq!(roots.len(), usable);
        assert_eq!(roots.ignored, 1);
        assert_eq!(
            CertificateDer::pem_slice_iter(roots.pem()).count(),
            usable,
            "the SDK panics on an unparsable PEM certificate, so none may reach it"
        );
    }

    #[test]
    fn no_roots_is_an_error_not_a_client_that_trusts_nothing() {
        let roots = TrustedRoots::from_certificates(Vec::new());
        assert!(roots.is_empty());
        assert!(roots.rustls_client_config().is_err());
    }

    #[test]
    fn client_config_offers_h2_then_http1() {
        let roots = TrustedRoots::from_certificates(system_certificates());
        let config = roots.rustls_client_config().unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
