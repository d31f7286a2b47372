//! End-to-end TLS (issue 6): async-nats against natrium with a CA, server and
//! client certificates generated inside the test (rcgen), mutual TLS, and a
//! plaintext client refused.

use crate::common;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::certs::{leaf, new_ca, Ca, Dir};
use crate::common::{Raw, TestServer};
use async_nats::ConnectOptions;
use futures::StreamExt;
use natrium::options::TlsConfig;
use rcgen::ExtendedKeyUsagePurpose;

const WAIT: Duration = Duration::from_secs(5);

/// Files of one TLS setup: the CA, the server's TLS config, a client cert/key.
struct Setup {
    dir: Dir,
    ca: Ca,
    ca_file: PathBuf,
    server: TlsConfig,
}

impl Setup {
    fn new(verify: bool) -> Setup {
        let dir = Dir::new();
        let ca = new_ca("natrium e2e CA");
        let (cert, key) = leaf(
            &ca,
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let ca_file = dir.write("ca.pem", &ca.cert.pem());
        let server = TlsConfig {
            cert_file: Some(dir.write("server.pem", &cert)),
            key_file: Some(dir.write("server-key.pem", &key)),
            ca_file: Some(ca_file.clone()),
            verify,
            timeout: Some(Duration::from_secs(2)),
        };
        Setup {
            dir,
            ca,
            ca_file,
            server,
        }
    }

    /// A client certificate signed by `ca` (this setup's CA unless given).
    fn client_cert(&self, name: &str, ca: Option<&Ca>) -> (PathBuf, PathBuf) {
        let (cert, key) = leaf(
            ca.unwrap_or(&self.ca),
            &[name],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        (
            self.dir.write(&format!("{name}.pem"), &cert),
            self.dir.write(&format!("{name}-key.pem"), &key),
        )
    }

    fn start(&self) -> TestServer {
        let tls = self.server.clone();
        TestServer::with(move |o| o.tls = Some(tls))
    }

    fn client_opts(&self) -> ConnectOptions {
        ConnectOptions::new()
            .add_root_certificates(self.ca_file.clone())
            .require_tls(true)
            .connection_timeout(WAIT)
    }
}

async fn pub_sub_works(nc: &async_nats::Client, subject: &str) {
    let mut sub = nc.subscribe(subject.to_string()).await.expect("sub");
    nc.flush().await.expect("flush");
    for i in 0..10 {
        nc.publish(subject.to_string(), format!("m{i}").into())
            .await
            .expect("pub");
    }
    nc.flush().await.expect("flush");
    for i in 0..10 {
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("message in time")
            .expect("message");
        assert_eq!(m.payload, format!("m{i}").as_bytes());
    }
}

fn info_of(srv: &TestServer) -> (Raw, String) {
    let mut r = Raw::connect(srv.addr);
    let line = r.read_line();
    let json = line.strip_prefix("INFO ").expect("INFO").trim().to_string();
    (r, json)
}

#[tokio::test]
async fn tls_async_nats_pub_sub() {
    let setup = Setup::new(false);
    let srv = setup.start();
    let nc = setup
        .client_opts()
        .connect(srv.url())
        .await
        .expect("TLS connect");
    pub_sub_works(&nc, "tls.hello").await;
    // A second TLS client sees the first one's messages.
    let other = setup
        .client_opts()
        .connect(srv.url())
        .await
        .expect("TLS connect");
    let mut sub = other.subscribe("tls.cross").await.expect("sub");
    // `flush` only empties the client's buffer; wait until the server has the SUB.
    common::round_trip(&other).await;
    nc.publish("tls.cross", "x".into()).await.expect("pub");
    nc.flush().await.expect("flush");
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("in time")
        .expect("msg");
    assert_eq!(&m.payload[..], b"x");
}

#[tokio::test]
async fn tls_client_with_unknown_ca_is_refused() {
    let setup = Setup::new(false);
    let srv = setup.start();
    let stranger = new_ca("someone else");
    let path = setup.dir.write("other-ca.pem", &stranger.cert.pem());
    let r = ConnectOptions::new()
        .add_root_certificates(path)
        .require_tls(true)
        .connection_timeout(WAIT)
        .connect(srv.url())
        .await;
    assert!(
        r.is_err(),
        "server certificate from an untrusted CA accepted"
    );
}

#[tokio::test]
async fn mutual_tls_with_client_certificate_succeeds() {
    let setup = Setup::new(true);
    let srv = setup.start();
    let (_, info) = info_of(&srv);
    assert!(info.contains("\"tls_required\":true"), "{info}");
    assert!(info.contains("\"tls_verify\":true"), "{info}");
    let (cert, key) = setup.client_cert("client-a", None);
    let nc = setup
        .client_opts()
        .add_client_certificate(cert, key)
        .connect(srv.url())
        .await
        .expect("mutual TLS connect");
    pub_sub_works(&nc, "mtls.hello").await;
}

#[tokio::test]
async fn mutual_tls_without_client_certificate_is_refused() {
    let setup = Setup::new(true);
    let srv = setup.start();
    let r = setup.client_opts().connect(srv.url()).await;
    assert!(r.is_err(), "client without a certificate accepted");
    // A certificate from another CA is refused too.
    let stranger = new_ca("rogue CA");
    let (cert, key) = setup.client_cert("rogue", Some(&stranger));
    let r = setup
        .client_opts()
        .add_client_certificate(cert, key)
        .connect(srv.url())
        .await;
    assert!(
        r.is_err(),
        "client certificate from an untrusted CA accepted"
    );
    // The server is still healthy for a proper client.
    let (cert, key) = setup.client_cert("client-b", None);
    let nc = setup
        .client_opts()
        .add_client_certificate(cert, key)
        .connect(srv.url())
        .await
        .expect("mutual TLS connect");
    pub_sub_works(&nc, "mtls.after").await;
}

#[test]
fn plaintext_client_gets_tls_required() {
    let setup = Setup::new(false);
    let srv = setup.start();
    let (mut r, info) = info_of(&srv);
    assert!(info.contains("\"tls_required\":true"), "{info}");
    r.send(b"CONNECT {}\r\n");
    assert_eq!(r.read_line(), "-ERR 'Secure Connection - TLS Required'");
    assert!(r.closed());
}

#[test]
fn plaintext_ping_gets_tls_required() {
    let setup = Setup::new(false);
    let srv = setup.start();
    let (mut r, _) = info_of(&srv);
    r.send(b"PING\r\n");
    assert_eq!(r.read_line(), "-ERR 'Secure Connection - TLS Required'");
    assert!(r.closed());
}

#[tokio::test]
async fn tls_with_user_password_auth() {
    let setup = Setup::new(false);
    let tls = setup.server.clone();
    let srv = TestServer::with(move |o| {
        o.tls = Some(tls);
        o.username = Some("tu".into());
        o.password = Some("tp".into());
    });
    let nc = setup
        .client_opts()
        .user_and_password("tu".into(), "tp".into())
        .connect(srv.url())
        .await
        .expect("TLS + auth connect");
    pub_sub_works(&nc, "tls.auth").await;
    let r = setup
        .client_opts()
        .user_and_password("tu".into(), "wrong".into())
        .connect(srv.url())
        .await;
    assert!(r.is_err(), "wrong password accepted over TLS");
}
