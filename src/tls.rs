//! TLS for client connections and leaf links: building a rustls server
//! configuration from a [`TlsConfig`] (PEM certificate chain and key, optional
//! client-certificate verification against a CA) and the server side of the
//! handshake with a timeout; and, for a leaf dialling its hub, the client
//! configuration (the hub's certificate checked against `ca_file` or the
//! system's CAs, our certificate presented when given) and the client side of
//! the handshake.
//!
//! Owns: reading and parsing the PEM files, the crypto provider choice (`ring`,
//! set explicitly so no process-wide default is needed), and the handshakes.
//! Must not touch: the NATS protocol order (INFO in plain text first, then the
//! upgrade — that is `client`/`server`/`leaf`), INFO fields, or the listener.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

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
    /// The peer did not finish the handshake in time.
    #[error("TLS handshake timeout after {0:?}")]
    Timeout(Duration),
    /// Dialling out: the host we dialled is not a name a certificate can
    /// carry (nor an IP address).
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    /// Dialling out without `ca_file`, and no system CA bundle was found.
    #[error(
        "no CA certificates to verify the server with: set ca_file (no system CA bundle found)"
    )]
    NoRoots,
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
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    acceptor: &TlsAcceptor,
    stream: S,
    timeout: Duration,
) -> Result<TlsStream<S>, TlsError> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(TlsError::Handshake(e)),
        Err(_) => Err(TlsError::Timeout(timeout)),
    }
}

/// Where distributions keep the system CA bundle (`SSL_CERT_FILE` first).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The CAs a dialled server's certificate must chain to: `ca_file`, else the
/// system bundle (what Go's crypto/tls, and so nats-server, uses then).
fn client_roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    if let Some(ca_path) = ca_file {
        for ca in load_certs(ca_path)? {
            roots
                .add(ca)
                .map_err(|e| pem_err(ca_path, format!("bad CA certificate: {e}")))?;
        }
        return Ok(roots);
    }
    let env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let candidates = env
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(std::path::PathBuf::from));
    for path in candidates {
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
        let (added, _) = roots.add_parsable_certificates(certs);
        if added > 0 {
            return Ok(roots);
        }
    }
    Err(TlsError::NoRoots)
}

/// `insecure`: any server certificate is taken. The handshake signatures are
/// still checked (the peer holds the key of the certificate it showed), but
/// not who that is: for tests, as nats-server's `insecure`.
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Builds the configuration for dialling a TLS server (a leaf's hub): the
/// server's certificate must chain to `ca_file` (or the system's CAs) and
/// name the host dialled, unless `insecure`; `cert_file`/`key_file`, when
/// both given, are presented if the server asks for a certificate. `verify`
/// has no meaning on this side and is ignored, as nats-server does.
pub fn client_config(tls: &TlsConfig, insecure: bool) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider())))
    } else {
        let roots = client_roots(tls.ca_file.as_deref())?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        builder.with_webpki_verifier(verifier)
    };
    let config = match (tls.cert_file.as_deref(), tls.key_file.as_deref()) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| TlsError::Config(e.to_string()))?,
        (Some(_), None) => return Err(TlsError::MissingKey),
        (None, Some(_)) => return Err(TlsError::MissingCert),
        (None, None) => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Runs the client side of the handshake on a dialled connection, checking
/// the server's certificate against `host` (a DNS name or an IP address, as
/// dialled), giving up after `timeout`.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    config: &Arc<ClientConfig>,
    host: &str,
    stream: S,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<S>, TlsError> {
    let name =
        ServerName::try_from(host.to_string()).map_err(|_| TlsError::ServerName(host.into()))?;
    let connector = TlsConnector::from(config.clone());
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
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
