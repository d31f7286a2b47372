//! Real TLS handshakes over loopback against `natrium::tls`, with a CA, server
//! and client certificates generated inside the test (rcgen).

use std::sync::Arc;
use std::time::Duration;

use crate::common::certs::{leaf, new_ca, Ca, Dir};
use natrium::options::TlsConfig;
use natrium::tls::{self, TlsError};
use rcgen::{ExtendedKeyUsagePurpose, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

/// Server options for a fresh CA + server certificate; returns the CA too.
fn server_setup(dir: &Dir, verify: bool) -> (TlsConfig, Ca) {
    let ca = new_ca("natrium test CA");
    let (cert, key) = leaf(&ca, &["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let cfg = TlsConfig {
        cert_file: Some(dir.write("server.pem", &cert)),
        key_file: Some(dir.write("server-key.pem", &key)),
        ca_file: Some(dir.write("ca.pem", &ca.cert.pem())),
        verify,
        timeout: None,
    };
    (cfg, ca)
}

fn connector(ca: &Ca, client: Option<(String, String)>) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).expect("root");
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let cfg = match client {
        None => b.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")];
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
            b.with_client_auth_cert(chain, key).expect("client auth")
        }
    };
    TlsConnector::from(Arc::new(cfg))
}

/// Accepts one connection with natrium's acceptor and echoes 4 bytes; the
/// client side connects, writes "ping" and reads the echo. Returns both results.
async fn handshake(
    cfg: &TlsConfig,
    conn: TlsConnector,
) -> (Result<(), TlsError>, std::io::Result<Vec<u8>>) {
    let acceptor = tls::acceptor(cfg).expect("acceptor");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut s = tls::accept(&acceptor, tcp, Duration::from_secs(5)).await?;
        let mut buf = [0u8; 4];
        if s.read_exact(&mut buf).await.is_ok() {
            let _ = s.write_all(&buf).await;
            let _ = s.flush().await;
        }
        Ok(())
    });
    let client = async {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").expect("name");
        let mut s = conn.connect(name, tcp).await?;
        s.write_all(b"ping").await?;
        s.flush().await?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        Ok(buf.to_vec())
    }
    .await;
    let server = server.await.expect("server task");
    (server, client)
}

#[tokio::test]
async fn tls_server_only_handshake() {
    let dir = Dir::new();
    let (cfg, ca) = server_setup(&dir, false);
    let (server, client) = handshake(&cfg, connector(&ca, None)).await;
    server.expect("server handshake");
    assert_eq!(client.expect("client"), b"ping");
}

#[tokio::test]
async fn tls_mutual_handshake_succeeds() {
    let dir = Dir::new();
    let (cfg, ca) = server_setup(&dir, true);
    let client_cert = leaf(&ca, &["client"], ExtendedKeyUsagePurpose::ClientAuth);
    let (server, client) = handshake(&cfg, connector(&ca, Some(client_cert))).await;
    server.expect("server handshake");
    assert_eq!(client.expect("client"), b"ping");
}

#[tokio::test]
async fn tls_verify_refuses_client_without_cert() {
    let dir = Dir::new();
    let (cfg, ca) = server_setup(&dir, true);
    let (server, client) = handshake(&cfg, connector(&ca, None)).await;
    assert!(matches!(server, Err(TlsError::Handshake(_))), "{server:?}");
    assert!(client.is_err(), "client must not get an echo");
}

#[tokio::test]
async fn tls_verify_refuses_cert_from_other_ca() {
    let dir = Dir::new();
    let (cfg, ca) = server_setup(&dir, true);
    let rogue = new_ca("rogue CA");
    let client_cert = leaf(&rogue, &["client"], ExtendedKeyUsagePurpose::ClientAuth);
    let (server, client) = handshake(&cfg, connector(&ca, Some(client_cert))).await;
    assert!(matches!(server, Err(TlsError::Handshake(_))), "{server:?}");
    assert!(client.is_err());
}

#[tokio::test]
async fn tls_handshake_times_out_for_silent_client() {
    let dir = Dir::new();
    let (cfg, _ca) = server_setup(&dir, false);
    let acceptor = tls::acceptor(&cfg).expect("acceptor");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let _silent = TcpStream::connect(addr).await.expect("connect");
    let (tcp, _) = listener.accept().await.expect("accept");
    let t = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let r = tls::accept(&acceptor, tcp, t).await;
    assert!(matches!(r, Err(TlsError::Timeout(d)) if d == t), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn tls_plaintext_client_fails_handshake() {
    let dir = Dir::new();
    let (cfg, _ca) = server_setup(&dir, false);
    let acceptor = tls::acceptor(&cfg).expect("acceptor");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut plain = TcpStream::connect(addr).await.expect("connect");
    plain.write_all(b"CONNECT {}\r\n").await.expect("write");
    let (tcp, _) = listener.accept().await.expect("accept");
    let r = tls::accept(&acceptor, tcp, Duration::from_secs(2)).await;
    assert!(matches!(r, Err(TlsError::Handshake(_))), "{r:?}");
}

#[test]
fn tls_config_errors() {
    let dir = Dir::new();
    let (mut cfg, _ca) = server_setup(&dir, true);
    cfg.ca_file = None;
    assert!(matches!(tls::server_config(&cfg), Err(TlsError::MissingCa)));
    let (mut cfg, _ca) = server_setup(&dir, false);
    cfg.cert_file = Some(dir.write("garbage.pem", "not a pem file"));
    assert!(matches!(
        tls::server_config(&cfg),
        Err(TlsError::Pem { .. })
    ));
    let (mut cfg, _ca) = server_setup(&dir, false);
    cfg.key_file = cfg.cert_file.clone();
    assert!(matches!(
        tls::server_config(&cfg),
        Err(TlsError::Pem { .. })
    ));
    // A key that does not belong to the certificate.
    let (mut cfg, _ca) = server_setup(&dir, false);
    let other = KeyPair::generate().expect("key");
    cfg.key_file = Some(dir.write("other-key.pem", &other.serialize_pem()));
    assert!(matches!(tls::server_config(&cfg), Err(TlsError::Config(_))));
}
