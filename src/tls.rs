//! TLS for client connections: building a rustls server configuration from a
//! [`TlsConfig`] (PEM certificate chain and key, optional client-certificate
//! verification against a CA) and the server side of the handshake with a
//! timeout.
//!
//! Owns: reading and parsing the PEM files, the crypto provider choice (`ring`,
//! set explicitly so no process-wide default is needed), and the handshake.
//! Must not touch: the NATS protocol order (INFO in plain text first, then the
//! upgrade — that is `client`/`server`), INFO fields, or the listener.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::options::TlsConfig;

/// nats-server's default TLS handshake timeout (`tls { timeout }`), 2 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why TLS could not be configured (the server refuses to start or reload) or a
/// client's handshake failed (that client is closed, nobody else is affected).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `tls {}` without `cert_file`.
    #[error("TLS requires a certificate file (cert_file / --tlscert)")]
    MissingCert,
    /// `tls {}` without `key_file`.
    #[error("TLS requires a private key file (key_file / --tlskey)")]
    MissingKey,
    /// `verify` on but no `ca_file` to verify client certificates against.
    #[error("TLS client verification requires a CA file (ca_file / --tlscacert)")]
    MissingCa,
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// A file is not PEM or holds nothing usable (no certificate, no key).
    #[error("parsing {path}: {reason}")]
    Pem { path: String, reason: String },
    /// rustls refused the certificate/key pair or the CA set.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// The handshake with a client failed (bad certificate, protocol error, EOF).
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    /// The client did not finish the handshake in time.
    #[error("TLS handshake timeout after {0:?}")]
    Timeout(Duration),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn pem_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// All certificates in a PEM file, in order (leaf first for a chain).
fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(path, e))?;
    if certs.is_empty() {
        return Err(pem_err(path, "no CERTIFICATE section"));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 RSA or SEC1 EC) in a PEM file.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| pem_err(path, e))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the server configuration once (at start and on reload) from the
/// `tls {}` options: TLS 1.2 and 1.3 with rustls' safe defaults, and, when
/// `verify` is set, a required client certificate chaining to `ca_file`
/// (`ca_file` alone does not turn on client verification, as nats-server).
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_path = tls.cert_file.as_deref().ok_or(TlsError::MissingCert)?;
    let key_path = tls.key_file.as_deref().ok_or(TlsError::MissingKey)?;
    let certs = load_certs(cert_path)?;
    let key = load_key(key_path)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if tls.verify {
        let ca_path = tls.ca_file.as_deref().ok_or(TlsError::MissingCa)?;
        let mut roots = RootCertStore::empty();
        for ca in load_certs(ca_path)? {
            roots
                .add(ca)
                .map_err(|e| pem_err(ca_path, format!("bad CA certificate: {e}")))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

/// Convenience: an acceptor for [`accept`] straight from the options.
pub fn acceptor(tls: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    server_config(tls).map(TlsAcceptor::from)
}

/// The handshake timeout from the options, or [`DEFAULT_HANDSHAKE_TIMEOUT`].
pub fn handshake_timeout(tls: &TlsConfig) -> Duration {
    tls.timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT)
}

/// Runs the server side of the handshake on an accepted connection (after the
/// plain-text INFO was sent), giving up after `timeout` so a silent or slow
/// client cannot hold a connection slot.
pub async fn accept(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, TlsError> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(TlsError::Handshake(e)),
        Err(_) => Err(TlsError::Timeout(timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_and_fields_are_reported() {
        assert!(matches!(
            server_config(&TlsConfig::default()),
            Err(TlsError::MissingCert)
        ));
        let no_key = TlsConfig {
            cert_file: Some("/nonexistent/cert.pem".into()),
            ..Default::default()
        };
        assert!(matches!(server_config(&no_key), Err(TlsError::MissingKey)));
        let absent = TlsConfig {
            key_file: Some("/nonexistent/key.pem".into()),
            ..no_key
        };
        let err = server_config(&absent).expect_err("absent files");
        assert!(matches!(err, TlsError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/cert.pem"));
    }

    #[test]
    fn default_timeout() {
        assert_eq!(
            handshake_timeout(&TlsConfig::default()),
            Duration::from_secs(2)
        );
        let t = TlsConfig {
            timeout: Some(Duration::from_millis(500)),
            ..Default::default()
        };
        assert_eq!(handshake_timeout(&t), Duration::from_millis(500));
    }
}
