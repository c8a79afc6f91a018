//! TLS with rustls: the options, and the one `ClientConfig` every connection of a client shares.
//!
//! The config is built once, when the client is created. So a missing CA file or a key that
//! does not parse is an error from `Client::with_options`, not from the first operation, and
//! connections do no file I/O. Verification is on unless an option turns part of it off:
//!
//! | option | chain checked against the roots | host name checked |
//! |---|---|---|
//! | (default) | yes (`tlsCAFile`, or the Mozilla roots from `webpki-roots`) | yes |
//! | `tlsAllowInvalidHostnames` | yes | no |
//! | `tlsAllowInvalidCertificates` | no | no |
//! | `tlsInsecure` | no | no |
//!
//! With either relaxation the handshake's signatures are still verified, so the connection
//! is still encrypted to whoever holds the presented key. What is given up is knowing who
//! that is. The byte stream itself is `rustls::StreamOwned` over a may or std socket
//! (`src/runtime/stream.rs`): rustls is sans-IO underneath, so the same code blocks a thread
//! in the threaded core and parks a coroutine in the coroutine core.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::{Error, Result};

/// TLS settings (`tls=true` and the `tls*` URI options).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `tlsCAFile`: PEM file of the CAs to trust, in place of the built-in Mozilla roots.
    pub ca_file: Option<PathBuf>,
    /// `tlsCertificateKeyFile`: PEM file holding the client certificate (chain) and its
    /// private key, for servers that ask for one.
    pub cert_key_file: Option<PathBuf>,
    /// `tlsAllowInvalidCertificates`: accept any certificate chain. Implies not checking
    /// host names either: a chain nobody vouched for proves no name.
    pub allow_invalid_certificates: bool,
    /// `tlsAllowInvalidHostnames`: check the chain, but not that it names the host.
    pub allow_invalid_hostnames: bool,
}

impl TlsOptions {
    /// Builds the rustls configuration: roots, client certificate, verifier.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>> {
        // ring, not aws-lc-rs: it builds without cmake or a C toolchain beyond cc. rustls
        // 0.23.48 deprecates it for lacking post-quantum key exchange, which MongoDB servers
        // do not offer yet; a user's fresh lock file would otherwise see the warning.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::invalid_tls_config(format!("TLS: {e}")))?;
        let roots = Arc::new(self.roots()?);
        let verifier: Arc<dyn ServerCertVerifier> = if self.allow_invalid_certificates {
            Arc::new(Relaxed {
                chain: None,
                algorithms,
            })
        } else {
            let webpki =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| Error::invalid_tls_config(format!("TLS: {e}")))?;
            if self.allow_invalid_hostnames {
                Arc::new(Relaxed {
                    chain: Some(webpki),
                    algorithms,
                })
            } else {
                webpki
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.cert_key_file {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let (chain, key) = read_cert_key_file(path)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    Error::invalid_tls_config(format!(
                        "tlsCertificateKeyFile {}: {e}",
                        path.display()
                    ))
                })?
            }
        };
        Ok(Arc::new(config))
    }

    /// The trust anchors: every certificate in `tlsCAFile`, or the Mozilla roots.
    fn roots(&self) -> Result<RootCertStore> {
        let Some(path) = &self.ca_file else {
            return Ok(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            });
        };
        let bad = |e: &dyn std::fmt::Display| {
            Error::invalid_tls_config(format!("tlsCAFile {}: {e}", path.display()))
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
        }
        if roots.is_empty() {
            return Err(bad(&"no certificates in the file"));
        }
        Ok(roots)
    }
}

/// Reads a PEM file holding a certificate chain (leaf first) and its private key.
fn read_cert_key_file(
    path: &std::path::Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::invalid_tls_config(format!("tlsCertificateKeyFile {}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if chain.is_empty() {
        return Err(bad(&"no certificate in the file"));
    }
    // An encrypted key ("ENCRYPTED PRIVATE KEY") is not one of the sections rustls reads, so
    // it shows up as "no private key" here.
    let key = PrivateKeyDer::from_pem_file(path).map_err(|e| {
        bad(&format!(
            "{e} (an unencrypted PKCS#8, PKCS#1 or SEC1 key is needed; encrypted keys and \
             tlsCertificateKeyFilePassword are not supported)"
        ))
    })?;
    Ok((chain, key))
}

/// The server name rustls checks the certificate against: a DNS name or an IP address.
pub(crate) fn server_name(host: &str) -> std::io::Result<ServerName<'static>> {
    ServerName::try_from(host.to_string()).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{host:?} cannot be a TLS server name: {e}"),
        )
    })
}

/// The verifier when an option relaxes the checks. Either way the server must still prove,
/// by signing the handshake, that it holds the key of the certificate it presented: the
/// signature checks below are the ones the WebPKI verifier itself makes.
#[derive(Debug)]
struct Relaxed {
    /// `Some` (`tlsAllowInvalidHostnames`): the full WebPKI check, with only a name mismatch
    /// forgiven. rustls checks the chain before the name, so a mismatch error means the
    /// chain was good. `None` (`tlsAllowInvalidCertificates`, `tlsInsecure`): any chain.
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
