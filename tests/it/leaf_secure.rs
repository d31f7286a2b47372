//! Secured leaf links against the reference nats-server and between natrium
//! servers: TLS both ways (mutual, with certificates made in the test),
//! nkey sign-in both ways, TLS first, and a hub whose certificate the leaf
//! does not trust (one clear error, then back-off).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rcgen::ExtendedKeyUsagePurpose;

use crate::common::certs::{leaf, new_ca, Dir};
use crate::common::TestServer;
use crate::leaf_support::*;
use natrium::options::{LeafOptions, LeafTls, TlsConfig};

/// A CA, a server certificate for 127.0.0.1/localhost and a client one.
struct Pki {
    dir: Dir,
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
}

impl Pki {
    fn new() -> Pki {
        let dir = Dir::new();
        let ca = new_ca("leaf test CA");
        let sans = ["localhost", "127.0.0.1"];
        let (sc, sk) = leaf(&ca, &sans, ExtendedKeyUsagePurpose::ServerAuth);
        let (cc, ck) = leaf(&ca, &["leaf"], ExtendedKeyUsagePurpose::ClientAuth);
        Pki {
            ca: dir.write("ca.pem", &ca.cert.pem()),
            server: (dir.write("srv.pem", &sc), dir.write("srv-key.pem", &sk)),
            client: (dir.write("cli.pem", &cc), dir.write("cli-key.pem", &ck)),
            dir,
        }
    }

    /// The hub's `leafnodes { tls }`: its certificate, leaves' verified.
    fn hub_tls(&self) -> LeafTls {
        LeafTls {
            config: TlsConfig {
                cert_file: Some(self.server.0.clone()),
                key_file: Some(self.server.1.clone()),
                ca_file: Some(self.ca.clone()),
                verify: true,
                timeout: None,
            },
            ..LeafTls::default()
        }
    }

    /// A remote's `tls`: trust the CA, present the client certificate.
    fn leaf_tls(&self) -> LeafTls {
        LeafTls {
            config: TlsConfig {
                cert_file: Some(self.client.0.clone()),
                key_file: Some(self.client.1.clone()),
                ca_file: Some(self.ca.clone()),
                ..TlsConfig::default()
            },
            ..LeafTls::default()
        }
    }

    /// The same as nats-server config text (`cert` is "srv" or "cli").
    fn conf(&self, which: &str) -> String {
        let (c, k) = if which == "srv" {
            &self.server
        } else {
            &self.client
        };
        let verify = if which == "srv" { ", verify: true" } else { "" };
        format!(
            "tls {{ cert_file: {:?}, key_file: {:?}, ca_file: {:?} {verify} }}",
            c.display().to_string(),
            k.display().to_string(),
            self.ca.display().to_string()
        )
    }
}

/// A remote's `nkey` (and the hub's leaf `nkey`) came with nats-server 2.11.
fn reference_has_leaf_nkeys() -> bool {
    let ok = reference_version().is_none_or(|v| v >= (2, 11, 0));
    if !ok {
        eprintln!("nats-server older than 2.11 has no leaf nkeys: test skipped");
    }
    ok
}

fn natrium_hub(lp: u16, f: impl FnOnce(&mut LeafOptions)) -> TestServer {
    let mut lo = LeafOptions {
        host: "127.0.0.1".into(),
        port: Some(lp),
        ..LeafOptions::default()
    };
    f(&mut lo);
    TestServer::with(move |o| o.leafnodes = Some(lo))
}

/// A nats-server leaf with `conf`, once its link to `hub` is up; `None`
/// (the test skips) without a reference binary.
fn nats_server_leaf(hub: &TestServer, conf: &str) -> Option<Reference> {
    let Some(leaf) = Reference::start(free_port(), conf) else {
        eprintln!("nats-server not installed: leaf node test skipped");
        return None;
    };
    wait_links(hub, 1);
    Some(leaf)
}

/// Messages cross the link both ways: `a` and `b` are clients of its ends.
async fn both_ways(a: &async_nats::Client, b: &async_nats::Client, tag: &str) {
    let mut on_b = b.subscribe(format!("{tag}.to.b")).await.expect("sub");
    b.flush().await.expect("flush");
    until_crossed(a, &mut on_b, &format!("{tag}.to.b")).await;
    let mut on_a = a.subscribe(format!("{tag}.to.a.>")).await.expect("sub");
    a.flush().await.expect("flush");
    until_crossed(b, &mut on_a, &format!("{tag}.to.a.probe")).await;
    for i in 0..20 {
        a.publish(format!("{tag}.to.b"), Bytes::from(format!("m{i}")))
            .await
            .expect("pub");
        b.publish(format!("{tag}.to.a.{i}"), Bytes::from_static(b"m"))
            .await
            .expect("pub");
    }
    a.flush().await.expect("flush");
    b.flush().await.expect("flush");
    assert_eq!(count(&mut on_b).await, 20, "{tag}: a -> b");
    assert_eq!(count(&mut on_a).await, 20, "{tag}: b -> a");
}

#[tokio::test]
async fn natrium_leaf_over_mutual_tls_to_nats_server_hub() {
    let pki = Pki::new();
    let lp = free_port();
    let Some(hub) = Reference::hub(lp, &pki.conf("srv")) else {
        return;
    };
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |r| {
        r.tls = Some(pki.leaf_tls())
    });
    wait_links(&leaf, 1);
    let h = connect(&hub.url()).await;
    let l = connect(&leaf.url()).await;
    both_ways(&l, &h, "tls").await;
}

#[tokio::test]
async fn nats_server_leaf_over_mutual_tls_to_natrium_hub() {
    let pki = Pki::new();
    let lp = free_port();
    let hub = natrium_hub(lp, |lo| lo.tls = Some(pki.hub_tls()));
    let conf = format!(
        "leafnodes {{ remotes = [ {{ url: \"nats-leaf://127.0.0.1:{lp}\", {} }} ] }}",
        pki.conf("cli")
    );
    let Some(leaf) = nats_server_leaf(&hub, &conf) else {
        return;
    };
    let h = connect(&hub.url()).await;
    let l = connect(&leaf.url()).await;
    both_ways(&h, &l, "rtls").await;
}

#[tokio::test]
async fn natrium_leaf_nkey_to_nats_server_hub() {
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().expect("seed");
    // nats-server 2.11+ has `leafnodes { authorization { nkey } }`; older
    // ones authenticate leaves as clients (`authorization { users }`).
    let new_enough = reference_version().is_some_and(|v| v >= (2, 11, 0));
    let (leaf_auth, client_auth) = if new_enough {
        (
            format!("authorization {{ nkey: {:?} }}", user.public_key()),
            String::new(),
        )
    } else {
        (
            String::new(),
            format!(
                "authorization {{ users = [ {{ nkey: {:?} }} ] }}",
                user.public_key()
            ),
        )
    };
    let lp = free_port();
    let Some(hub) = Reference::start(
        free_port(),
        &format!("{client_auth}\nleafnodes {{\n port: {lp}\n {leaf_auth}\n}}"),
    ) else {
        eprintln!("nats-server not installed: leaf node test skipped");
        return;
    };
    // A stranger's seed is refused and retried with back-off.
    let stranger = nkeys::KeyPair::new_user().seed().expect("seed");
    let bad = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |r| {
        r.nkey = Some(stranger)
    });
    std::thread::sleep(Duration::from_secs(2));
    let tries = bad.state.leafs.connects.load(Ordering::Relaxed);
    assert!(tries <= 5, "{tries} refused attempts in 2 s");
    drop(bad);

    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |r| {
        r.nkey = Some(seed)
    });
    wait_links(&leaf, 1);
    let hub_client = if new_enough {
        connect(&hub.url()).await
    } else {
        async_nats::ConnectOptions::with_nkey(user.seed().expect("seed"))
            .connect(hub.url())
            .await
            .expect("connect with nkey")
    };
    let l = connect(&leaf.url()).await;
    both_ways(&l, &hub_client, "nk").await;
}

#[tokio::test]
async fn nats_server_leaf_nkey_to_natrium_hub() {
    if !reference_has_leaf_nkeys() {
        return;
    }
    let user = nkeys::KeyPair::new_user();
    let lp = free_port();
    let hub = natrium_hub(lp, |lo| lo.nkey = Some(user.public_key()));
    let conf = format!(
        "leafnodes {{ remotes = [ {{ url: \"nats-leaf://127.0.0.1:{lp}\", nkey: {:?} }} ] }}",
        user.seed().expect("seed")
    );
    let Some(leaf) = nats_server_leaf(&hub, &conf) else {
        return;
    };
    let h = connect(&hub.url()).await;
    let l = connect(&leaf.url()).await;
    both_ways(&h, &l, "rnk").await;
}

#[tokio::test]
async fn natrium_to_natrium_tls_first_with_nkey() {
    let pki = Pki::new();
    let user = nkeys::KeyPair::new_user();
    let lp = free_port();
    let hub = natrium_hub(lp, |lo| {
        lo.nkey = Some(user.public_key());
        lo.tls = Some(LeafTls {
            handshake_first: true,
            ..pki.hub_tls()
        });
    });
    let leaf = leaf_of(&[format!("tls://localhost:{lp}")], |r| {
        r.nkey = Some(user.seed().expect("seed"));
        r.tls = Some(LeafTls {
            handshake_first: true,
            ..pki.leaf_tls()
        });
    });
    wait_links(&hub, 1);
    wait_links(&leaf, 1);
    let h = connect(&hub.url()).await;
    let l = connect(&leaf.url()).await;
    both_ways(&l, &h, "first").await;
}

/// A hub that wants TLS with a certificate of its own CA: counts the dials.
fn fake_tls_hub(rt: &tokio::runtime::Runtime, pki: &Pki) -> (u16, Arc<AtomicUsize>) {
    let acceptor = natrium::tls::acceptor(&pki.hub_tls().config).expect("acceptor");
    let dials = Arc::new(AtomicUsize::new(0));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let counter = dials.clone();
    rt.spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let info = "INFO {\"server_id\":\"FAKE\",\"tls_required\":true,\"client_id\":1,\"leafnode_urls\":[]}\r\n";
                let _ = s.write_all(info.as_bytes()).await;
                let _ = natrium::tls::accept(&acceptor, s, Duration::from_secs(2)).await;
            });
        }
    });
    (port, dials)
}

#[test]
fn untrusted_hub_certificate_is_one_clear_error_then_back_off() {
    let pki = Pki::new();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (with_ca, dials_ca) = fake_tls_hub(&rt, &pki);
    let (without, dials_plain) = fake_tls_hub(&rt, &pki);
    let stranger = new_ca("not the hub's CA");
    let other_ca = pki.dir.write("other-ca.pem", &stranger.cert.pem());
    // One remote trusts another CA; one has no tls block (the hub's
    // tls_required makes it upgrade anyway, with the system's CAs).
    let conf = pki.dir.write(
        "leaf.conf",
        &format!(
            "leafnodes {{ reconnect: \"250ms\", remotes = [\n\
             {{ url: \"nats-leaf://127.0.0.1:{with_ca}\", tls {{ ca_file: {:?} }} }}\n\
             {{ url: \"nats-leaf://127.0.0.1:{without}\" }}\n] }}\n",
            other_ca.display().to_string()
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_natrium"))
        .args(["-a", "127.0.0.1", "-p", "-1", "-c"])
        .arg(&conf)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn natrium");
    let stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let (a, b) = (
        dials_ca.load(Ordering::Relaxed),
        dials_plain.load(Ordering::Relaxed),
    );
    let _ = child.kill();
    let _ = child.wait();
    let lines = reader.join().expect("log lines");
    let elapsed = start.elapsed();
    // 250 ms doubling per failure: about 4 dials in 3 s, never a tight loop.
    for (n, what) in [(a, "wrong CA"), (b, "no tls block")] {
        assert!(
            (1..=7).contains(&n),
            "{what}: {n} dials in {elapsed:?}\n{lines:#?}"
        );
    }
    let errors = |port: u16| {
        lines
            .iter()
            .filter(|l| l.contains(&format!("127.0.0.1:{port}")) && l.contains("[ERR]"))
            .cloned()
            .collect::<Vec<_>>()
    };
    let wrong_ca = errors(with_ca);
    assert_eq!(wrong_ca.len(), 1, "reported once: {lines:#?}");
    assert!(
        wrong_ca[0].contains("TLS handshake failed") && wrong_ca[0].contains("certificate"),
        "{wrong_ca:?}"
    );
    let no_block = errors(without);
    assert_eq!(no_block.len(), 1, "reported once: {lines:#?}");
    assert!(
        no_block[0].contains("certificate") || no_block[0].contains("CA"),
        "{no_block:?}"
    );
}

#[tokio::test]
async fn natrium_hub_refuses_a_leaf_without_tls_and_a_wrong_nkey() {
    let pki = Pki::new();
    let user = nkeys::KeyPair::new_user();
    let lp = free_port();
    let hub = natrium_hub(lp, |lo| {
        lo.nkey = Some(user.public_key());
        lo.tls = Some(LeafTls {
            config: TlsConfig {
                verify: false,
                ..pki.hub_tls().config
            },
            ..LeafTls::default()
        });
    });
    // The hub's INFO says tls_required, in plain text, with a nonce.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", lp)).expect("dial");
    raw.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut line = String::new();
    BufReader::new(&mut raw).read_line(&mut line).expect("INFO");
    let info: serde_json::Value =
        serde_json::from_str(line.trim_start_matches("INFO ").trim()).expect("json");
    assert_eq!(info["tls_required"], true, "{line}");
    assert!(
        info["nonce"].as_str().is_some_and(|n| !n.is_empty()),
        "{line}"
    );
    drop(raw);
    // Right TLS, wrong key: never linked.
    let stranger = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |r| {
        r.nkey = Some(nkeys::KeyPair::new_user().seed().expect("seed"));
        r.tls = Some(LeafTls {
            insecure: true,
            ..LeafTls::default()
        });
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(hub.state.leafs.count(), 0);
    drop(stranger);
    // The right key over TLS (`insecure`: the certificate is not checked).
    let good = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |r| {
        r.nkey = Some(user.seed().expect("seed"));
        r.tls = Some(LeafTls {
            insecure: true,
            ..LeafTls::default()
        });
    });
    wait_links(&hub, 1);
    wait_links(&good, 1);
}

/// A JWT as nsc makes them: `{header}.{claims}.{sig}`, unpadded base64url,
/// signed by `issuer` over the first two parts.
fn jwt(issuer: &nkeys::KeyPair, sub: &str, name: &str, nats: serde_json::Value) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = serde_json::json!({
        "jti": format!("JTI{name}{now}"),
        "iat": now,
        "iss": issuer.public_key(),
        "name": name,
        "sub": sub,
        "nats": nats,
    });
    let head = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{head}.{body}");
    let sig = issuer.sign(signed.as_bytes()).expect("sign");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[tokio::test]
async fn natrium_leaf_with_creds_file_to_operator_mode_hub() {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let op_jwt = jwt(
        &operator,
        &operator.public_key(),
        "op",
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1
    });
    let acc_jwt = jwt(
        &operator,
        &account.public_key(),
        "acc",
        serde_json::json!({"limits": unlimited, "type": "account", "version": 2}),
    );
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "leafuser",
        serde_json::json!({
            "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
            "type": "user", "version": 2
        }),
    );
    let creds = format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().expect("seed")
    );
    let dir = Dir::new();
    let creds_file = dir.write("leaf.creds", &creds);
    let lp = free_port();
    let conf = format!(
        "operator: {op_jwt:?}\nresolver: MEMORY\nresolver_preload: {{ {}: {acc_jwt:?} }}\n\
         leafnodes {{ port: {lp} }}",
        account.public_key()
    );
    let Some(hub) = Reference::start(free_port(), &conf) else {
        eprintln!("nats-server not installed: leaf node test skipped");
        return;
    };
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |r| {
        r.credentials = Some(creds_file.clone())
    });
    wait_links(&leaf, 1);
    let h = async_nats::ConnectOptions::with_credentials(&creds)
        .expect("creds")
        .connect(hub.url())
        .await
        .expect("connect with creds");
    let l = connect(&leaf.url()).await;
    both_ways(&l, &h, "creds").await;
}

#[tokio::test]
async fn natrium_hub_without_leaf_authorization_takes_client_users_and_their_account() {
    if !reference_has_leaf_nkeys() {
        return;
    }
    use natrium::options::{AccountConfig, UserConfig};
    let leaf_key = nkeys::KeyPair::new_user();
    let lp = free_port();
    let hub = TestServer::with(|o| {
        o.accounts = vec![AccountConfig {
            name: "A".into(),
            ..AccountConfig::default()
        }];
        o.users = vec![
            UserConfig {
                nkey: Some(leaf_key.public_key()),
                account: Some("A".into()),
                ..UserConfig::default()
            },
            UserConfig {
                user: Some("a".into()),
                password: Some("a".into()),
                account: Some("A".into()),
                ..UserConfig::default()
            },
            UserConfig {
                user: Some("g".into()),
                password: Some("g".into()),
                ..UserConfig::default()
            },
        ];
        o.leafnodes = Some(LeafOptions {
            host: "127.0.0.1".into(),
            port: Some(lp),
            ..LeafOptions::default()
        });
    });
    // No credentials: refused, as nats-server refuses a leaf that is not a
    // client user when the server requires authentication.
    let anonymous = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |_| {});
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(hub.state.leafs.count(), 0);
    drop(anonymous);
    let conf = format!(
        "leafnodes {{ remotes = [ {{ url: \"nats-leaf://127.0.0.1:{lp}\", nkey: {:?} }} ] }}",
        leaf_key.seed().expect("seed")
    );
    let Some(leaf) = nats_server_leaf(&hub, &conf) else {
        return;
    };
    let as_user = |u: &str| {
        async_nats::ConnectOptions::with_user_and_password(u.into(), u.into()).connect(hub.url())
    };
    let in_a = as_user("a").await.expect("user a");
    let in_g = as_user("g").await.expect("user g");
    let l = connect(&leaf.url()).await;
    // The link is bound to the nkey user's account A.
    both_ways(&in_a, &l, "acc").await;
    let mut global = in_g.subscribe("acc.to.a.x").await.expect("sub");
    in_g.flush().await.expect("flush");
    l.publish("acc.to.a.x", Bytes::from_static(b"m"))
        .await
        .expect("pub");
    l.flush().await.expect("flush");
    assert_eq!(count(&mut global).await, 0, "$G does not see account A");
}
