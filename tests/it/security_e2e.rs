//! End-to-end security (issue 6): every auth mode through async-nats, permission
//! violations, allow_responses, reload revoking a user, raw-socket CONNECT
//! ordering and limits, and a flood of failed logins beside a healthy client.
//! TLS lives in `security_tls.rs`.

use std::time::{Duration, Instant};

use crate::common::{Raw, TestServer};
use async_nats::{ConnectOptions, Event, ServerError};
use futures::StreamExt;
use natrium::options::{Options, Permissions, UserConfig};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const WAIT: Duration = Duration::from_secs(5);

fn user(name: &str, pass: &str, permissions: Option<Permissions>) -> UserConfig {
    UserConfig {
        user: Some(name.into()),
        password: Some(pass.into()),
        nkey: None,
        permissions,
        account: None,
    }
}

fn list(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

/// Publish and subscribe allow lists.
fn allow(publish: &[&str], subscribe: &[&str]) -> Permissions {
    Permissions {
        publish_allow: list(publish),
        subscribe_allow: list(subscribe),
        ..Permissions::default()
    }
}

/// Connect options that forward every `-ERR` text to the returned channel.
fn with_errors(opts: ConnectOptions) -> (ConnectOptions, UnboundedReceiver<String>) {
    let (tx, rx) = unbounded_channel();
    let opts = opts.connection_timeout(WAIT).event_callback(move |ev| {
        let tx = tx.clone();
        async move {
            if let Event::ServerError(e) = ev {
                let text = match e {
                    ServerError::Other(s) => s,
                    ServerError::AuthorizationViolation => "Authorization Violation".into(),
                    other => other.to_string(),
                };
                let _ = tx.send(text);
            }
        }
    });
    (opts, rx)
}

async fn next_error(rx: &mut UnboundedReceiver<String>) -> String {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no -ERR within 5 s")
        .expect("event channel closed")
}

async fn connect_ok(srv: &TestServer, opts: ConnectOptions) -> async_nats::Client {
    opts.connection_timeout(WAIT)
        .connect(srv.url())
        .await
        .expect("connect should succeed")
}

async fn connect_fails(srv: &TestServer, opts: ConnectOptions) {
    let r = opts.connection_timeout(WAIT).connect(srv.url()).await;
    assert!(r.is_err(), "connect should have been refused");
}

/// Publishes on a fresh subject and receives it back: the connection works.
async fn round_trip(nc: &async_nats::Client, subject: &str) {
    let mut sub = nc.subscribe(subject.to_string()).await.expect("sub");
    nc.flush().await.expect("flush");
    nc.publish(subject.to_string(), "hi".into())
        .await
        .expect("pub");
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("message in time")
        .expect("message");
    assert_eq!(&m.payload[..], b"hi");
}

// ---------------------------------------------------------------- auth modes

#[tokio::test]
async fn token_auth_ok_and_wrong_token_fails() {
    let srv = TestServer::with(|o| o.token = Some("s3cret".into()));
    let nc = connect_ok(&srv, ConnectOptions::with_token("s3cret".into())).await;
    round_trip(&nc, "tok.ok").await;
    connect_fails(&srv, ConnectOptions::with_token("nope".into())).await;
    connect_fails(&srv, ConnectOptions::new()).await;
}

#[tokio::test]
async fn user_password_ok_and_wrong_fails() {
    let srv = TestServer::with(|o| {
        o.username = Some("alice".into());
        o.password = Some("apw".into());
    });
    let nc = connect_ok(
        &srv,
        ConnectOptions::with_user_and_password("alice".into(), "apw".into()),
    )
    .await;
    round_trip(&nc, "up.ok").await;
    connect_fails(
        &srv,
        ConnectOptions::with_user_and_password("alice".into(), "bad".into()),
    )
    .await;
    connect_fails(
        &srv,
        ConnectOptions::with_user_and_password("mallory".into(), "apw".into()),
    )
    .await;
}

#[tokio::test]
async fn bcrypt_users_list_ok_and_wrong_fails() {
    let hash = bcrypt::hash("hunter2", 4).expect("bcrypt");
    assert!(hash.starts_with("$2"));
    let srv = TestServer::with(move |o| {
        o.users = vec![user("carol", &hash, None), user("dave", "plain", None)];
    });
    let nc = connect_ok(
        &srv,
        ConnectOptions::with_user_and_password("carol".into(), "hunter2".into()),
    )
    .await;
    round_trip(&nc, "bc.ok").await;
    let nd = connect_ok(
        &srv,
        ConnectOptions::with_user_and_password("dave".into(), "plain".into()),
    )
    .await;
    round_trip(&nd, "bc.plain").await;
    connect_fails(
        &srv,
        ConnectOptions::with_user_and_password("carol".into(), "hunter3".into()),
    )
    .await;
    // The hash itself is not a password.
    let hash_again = srv.state.opts().users[0].password.clone().expect("hash");
    connect_fails(
        &srv,
        ConnectOptions::with_user_and_password("carol".into(), hash_again),
    )
    .await;
}

#[tokio::test]
async fn nkey_sign_in_ok_and_wrong_key_fails() {
    let kp = nkeys::KeyPair::new_user();
    let public = kp.public_key();
    let srv = TestServer::with(move |o| {
        o.users = vec![UserConfig {
            nkey: Some(public),
            ..UserConfig::default()
        }];
    });
    let seed = kp.seed().expect("seed");
    let nc = connect_ok(&srv, ConnectOptions::with_nkey(seed)).await;
    round_trip(&nc, "nk.ok").await;
    let other = nkeys::KeyPair::new_user().seed().expect("seed");
    connect_fails(&srv, ConnectOptions::with_nkey(other)).await;
    connect_fails(&srv, ConnectOptions::new()).await;
}

#[tokio::test]
async fn no_auth_user_applies_its_permissions() {
    let srv = TestServer::with(|o| {
        o.users = vec![
            user("guest", "gpw", Some(allow(&["public.>"], &["public.>"]))),
            user("admin", "adm", None),
        ];
        o.no_auth_user = Some("guest".into());
    });
    let (opts, mut errs) = with_errors(ConnectOptions::new());
    let guest = connect_ok(&srv, opts).await;
    round_trip(&guest, "public.news").await;
    guest.publish("private.x", "no".into()).await.expect("pub");
    guest.flush().await.expect("flush");
    assert_eq!(
        next_error(&mut errs).await,
        "Permissions Violation for Publish to \"private.x\""
    );
    // Credentials still select another user.
    let admin = connect_ok(
        &srv,
        ConnectOptions::with_user_and_password("admin".into(), "adm".into()),
    )
    .await;
    round_trip(&admin, "private.x").await;
    // Wrong credentials do not fall back to the no_auth_user.
    connect_fails(
        &srv,
        ConnectOptions::with_user_and_password("admin".into(), "bad".into()),
    )
    .await;
}

// --------------------------------------------------------------- permissions

fn restricted_server() -> TestServer {
    TestServer::with(|o| {
        o.users = vec![
            user(
                "pub",
                "ppw",
                Some(Permissions {
                    publish_allow: list(&["orders.>"]),
                    publish_deny: list(&["orders.secret"]),
                    subscribe_allow: list(&["updates.*", "work.> workers"]),
                    subscribe_deny: list(&["updates.hidden"]),
                    allow_responses: false,
                }),
            ),
            user("root", "rpw", None),
        ];
    })
}

#[tokio::test]
async fn publish_violation_keeps_connection_open() {
    let srv = restricted_server();
    let root = connect_ok(
        &srv,
        ConnectOptions::with_user_and_password("root".into(), "rpw".into()),
    )
    .await;
    let mut watch = root.subscribe("orders.>").await.expect("sub");
    root.flush().await.expect("flush");
    srv.wait_for_interest(b"orders.new");

    let (opts, mut errs) = with_errors(ConnectOptions::with_user_and_password(
        "pub".into(),
        "ppw".into(),
    ));
    let nc = connect_ok(&srv, opts).await;
    nc.publish("orders.secret", "x".into()).await.expect("pub");
    nc.publish("elsewhere", "x".into()).await.expect("pub");
    nc.publish("orders.new", "ok".into()).await.expect("pub");
    nc.flush().await.expect("flush after violations");
    assert_eq!(
        next_error(&mut errs).await,
        "Permissions Violation for Publish to \"orders.secret\""
    );
    assert_eq!(
        next_error(&mut errs).await,
        "Permissions Violation for Publish to \"elsewhere\""
    );
    let m = tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("allowed publish arrives")
        .expect("msg");
    assert_eq!(m.subject.as_str(), "orders.new");
    assert_eq!(&m.payload[..], b"ok");
    // Nothing denied leaked through.
    root.flush().await.expect("flush");
    assert!(
        tokio::time::timeout(Duration::from_millis(50), watch.next())
            .await
            .is_err(),
        "denied publish was delivered"
    );
}

#[tokio::test]
async fn subscribe_violation_via_async_nats() {
    let srv = restricted_server();
    let (opts, mut errs) = with_errors(ConnectOptions::with_user_and_password(
        "pub".into(),
        "ppw".into(),
    ));
    let nc = connect_ok(&srv, opts).await;
    let _denied = nc.subscribe("secrets.>").await.expect("sub");
    nc.flush().await.expect("flush");
    assert_eq!(
        next_error(&mut errs).await,
        "Permissions Violation for Subscription to \"secrets.>\""
    );
    let _q = nc
        .queue_subscribe("work.a", "thieves".into())
        .await
        .expect("qsub");
    nc.flush().await.expect("flush");
    assert_eq!(
        next_error(&mut errs).await,
        "Permissions Violation for Subscription to \"work.a\" using queue \"thieves\""
    );
    // Still connected: an allowed subscription works.
    let mut ok = nc.subscribe("updates.x").await.expect("sub");
    nc.flush().await.expect("flush");
    srv.wait_for_interest(b"updates.x");
    let root = connect_ok(
        &srv,
        ConnectOptions::with_user_and_password("root".into(), "rpw".into()),
    )
    .await;
    root.publish("updates.x", "u".into()).await.expect("pub");
    root.flush().await.expect("flush");
    let m = tokio::time::timeout(WAIT, ok.next())
        .await
        .expect("in time")
        .expect("msg");
    assert_eq!(&m.payload[..], b"u");
}

/// Raw `CONNECT` + flush as `user`/`pass`; panics unless accepted.
fn raw_login(srv: &TestServer, user: &str, pass: &str) -> Raw {
    let mut r = srv.raw();
    r.send(
        format!("CONNECT {{\"verbose\":false,\"user\":\"{user}\",\"pass\":\"{pass}\"}}\r\n")
            .as_bytes(),
    );
    assert_eq!(r.flush(), "", "login as {user} should be clean");
    r
}

#[test]
fn raw_permission_violation_texts_keep_connection_open() {
    let srv = restricted_server();
    let mut watcher = raw_login(&srv, "root", "rpw");
    watcher.send(b"SUB > 1\r\n");
    watcher.flush();

    let mut r = raw_login(&srv, "pub", "ppw");
    r.send(b"PUB orders.secret 1\r\nx\r\n");
    assert_eq!(
        r.flush(),
        "-ERR 'Permissions Violation for Publish to \"orders.secret\"'\n"
    );
    r.send(b"SUB updates.> 1\r\n");
    assert_eq!(
        r.flush(),
        "-ERR 'Permissions Violation for Subscription to \"updates.>\"'\n"
    );
    r.send(b"SUB updates.hidden 2\r\n");
    assert_eq!(
        r.flush(),
        "-ERR 'Permissions Violation for Subscription to \"updates.hidden\"'\n"
    );
    r.send(b"SUB work.a thieves 3\r\n");
    assert_eq!(
        r.flush(),
        "-ERR 'Permissions Violation for Subscription to \"work.a\" using queue \"thieves\"'\n"
    );
    // A queue-only allow entry does not allow a plain SUB.
    r.send(b"SUB work.a 4\r\n");
    assert_eq!(
        r.flush(),
        "-ERR 'Permissions Violation for Subscription to \"work.a\"'\n"
    );
    // Allowed operations still work afterwards.
    r.send(b"SUB work.a workers 5\r\nSUB updates.x 6\r\nPUB orders.new 2\r\nok\r\n");
    assert_eq!(r.flush(), "");
    watcher.send(b"PUB work.a 1\r\nw\r\n");
    // The watcher saw the allowed publish but never the denied one.
    let seen: Vec<String> = watcher
        .flush()
        .lines()
        .filter(|l| *l != "PING")
        .map(str::to_string)
        .collect();
    assert_eq!(seen, ["MSG orders.new 1 2", "ok", "MSG work.a 1 1", "w"]);
    assert_eq!(r.next_non_ping(), "MSG work.a 5 1");
    assert_eq!(r.next_non_ping(), "w");
}

#[tokio::test]
async fn allow_responses_lets_responder_answer_once() {
    let srv = TestServer::with(|o| {
        o.users = vec![
            user(
                "svc",
                "spw",
                Some(Permissions {
                    publish_allow: list(&["svc.status"]),
                    subscribe_allow: list(&["svc.>"]),
                    allow_responses: true,
                    ..Permissions::default()
                }),
            ),
            user("cli", "cpw", None),
        ];
    });
    let (opts, mut errs) = with_errors(ConnectOptions::with_user_and_password(
        "svc".into(),
        "spw".into(),
    ));
    let svc = connect_ok(&srv, opts).await;
    let mut reqs = svc.subscribe("svc.echo").await.expect("sub");
    svc.flush().await.expect("flush");
    srv.wait_for_interest(b"svc.echo");
    let cli = connect_ok(
        &srv,
        ConnectOptions::with_user_and_password("cli".into(), "cpw".into()),
    )
    .await;

    // Before any request, a reply-looking subject is not publishable.
    svc.publish("_INBOX.nope", "x".into()).await.expect("pub");
    svc.flush().await.expect("flush");
    assert_eq!(
        next_error(&mut errs).await,
        "Permissions Violation for Publish to \"_INBOX.nope\""
    );

    let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
    let responder = tokio::spawn(async move {
        let m = reqs.next().await.expect("request");
        let reply = m.reply.clone().expect("reply subject");
        svc.publish(reply.clone(), m.payload.clone())
            .await
            .expect("answer");
        svc.flush().await.expect("flush");
        let _ = reply_tx.send(reply.to_string());
        svc
    });
    let resp = tokio::time::timeout(WAIT, cli.request("svc.echo", "ping".into()))
        .await
        .expect("in time")
        .expect("request answered");
    assert_eq!(&resp.payload[..], b"ping");
    let svc = responder.await.expect("responder");
    let reply = reply_rx.await.expect("reply subject");

    // The grant is used up: a second answer is a violation.
    svc.publish(reply.clone(), "again".into())
        .await
        .expect("pub");
    svc.flush().await.expect("flush");
    assert_eq!(
        next_error(&mut errs).await,
        format!("Permissions Violation for Publish to \"{reply}\"")
    );
    // Its ordinary allow list still applies.
    svc.publish("svc.status", "up".into()).await.expect("pub");
    svc.flush().await.expect("flush");
    assert!(errs.try_recv().is_err(), "allowed publish was refused");
}

#[test]
fn reload_removing_user_closes_its_connection_only() {
    let srv = TestServer::with(|o| {
        o.users = vec![user("alice", "apw", None), user("bob", "bpw", None)];
    });
    let mut alice = raw_login(&srv, "alice", "apw");
    let mut bob = raw_login(&srv, "bob", "bpw");
    alice.send(b"SUB x 1\r\n");
    alice.flush();

    let next = Options {
        host: "127.0.0.1".into(),
        users: vec![user("bob", "bpw", None)],
        ..Options::default()
    };
    srv.control.reload(next);

    // Alice is told and closed; anything but an auth error or EOF is wrong.
    loop {
        match alice.try_read_line() {
            None => break,
            Some(l) if l == "PING" => {}
            Some(l) => assert_eq!(l, "-ERR 'Authorization Violation'"),
        }
    }
    assert!(alice.closed());
    // Bob is untouched and still delivers.
    bob.send(b"SUB y 1\r\nPUB y 2\r\nhi\r\n");
    assert_eq!(bob.flush(), "MSG y 1 2\nhi\n");
    // Alice cannot come back; bob can log in again.
    let mut again = srv.raw();
    again.send(b"CONNECT {\"user\":\"alice\",\"pass\":\"apw\"}\r\nPING\r\n");
    assert_eq!(again.read_line(), "-ERR 'Authorization Violation'");
    assert!(again.closed());
    raw_login(&srv, "bob", "bpw");
}

// ---------------------------------------------------------------- raw socket

fn auth_server() -> TestServer {
    TestServer::with(|o| {
        o.username = Some("u".into());
        o.password = Some("p".into());
    })
}

#[test]
fn pub_before_connect_with_auth_is_violation() {
    let srv = auth_server();
    let mut r = srv.raw();
    r.send(b"PUB foo 2\r\nhi\r\n");
    assert_eq!(r.read_line(), "-ERR 'Authorization Violation'");
    assert!(r.closed());
}

#[test]
fn ping_before_connect_with_auth_is_violation() {
    let srv = auth_server();
    let mut r = srv.raw();
    r.send(b"PING\r\n");
    assert_eq!(r.read_line(), "-ERR 'Authorization Violation'");
    assert!(r.closed());
}

#[test]
fn sub_before_connect_with_auth_is_violation() {
    let srv = auth_server();
    let mut r = srv.raw();
    r.send(b"SUB foo 1\r\n");
    assert_eq!(r.read_line(), "-ERR 'Authorization Violation'");
    assert!(r.closed());
}

#[test]
fn oversized_connect_is_control_line_violation() {
    let srv = TestServer::with(|o| {
        o.username = Some("u".into());
        o.password = Some("p".into());
        o.max_control_line = 512;
    });
    let mut r = srv.raw();
    let pass = "x".repeat(1024);
    r.send(format!("CONNECT {{\"user\":\"u\",\"pass\":\"{pass}\"}}\r\n").as_bytes());
    assert_eq!(r.read_line(), "-ERR 'maximum control line exceeded'");
    assert!(r.closed());
}

#[test]
fn malformed_connect_json_closes_without_err() {
    for body in [
        &b"CONNECT {\"user\":\r\n"[..],
        b"CONNECT [1,2\r\n",
        b"CONNECT nope\r\n",
    ] {
        let srv = auth_server();
        let mut r = srv.raw();
        r.send(body);
        loop {
            match r.try_read_line() {
                None => break,
                Some(l) => assert!(!l.starts_with("-ERR"), "unexpected {l:?}"),
            }
        }
        assert!(r.closed());
    }
}

#[test]
fn auth_timeout_closes_silent_client() {
    let srv = TestServer::with(|o| {
        o.token = Some("t".into());
        o.auth_timeout = Duration::from_millis(300);
    });
    let start = Instant::now();
    let mut r = srv.raw();
    assert_eq!(r.read_line(), "-ERR 'Authentication Timeout'");
    assert!(r.closed());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "timeout after {took:?}"
    );
    // A client that logs in in time is not affected.
    let mut ok = srv.raw();
    ok.send(b"CONNECT {\"verbose\":false,\"auth_token\":\"t\"}\r\n");
    assert_eq!(ok.flush(), "");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(ok.flush(), "");
}

fn info_json(srv: &TestServer) -> String {
    let mut r = Raw::connect(srv.addr);
    let line = r.read_line();
    line.strip_prefix("INFO ").expect("INFO").trim().to_string()
}

#[test]
fn info_advertises_auth_and_nonce() {
    let open = TestServer::start();
    let info = info_json(&open);
    assert!(!info.contains("\"auth_required\":true"), "{info}");
    assert!(!info.contains("\"nonce\""), "{info}");

    let pw = auth_server();
    let info = info_json(&pw);
    assert!(info.contains("\"auth_required\":true"), "{info}");
    assert!(!info.contains("\"nonce\""), "{info}");

    let kp = nkeys::KeyPair::new_user();
    let public = kp.public_key();
    let nk = TestServer::with(move |o| {
        o.users = vec![UserConfig {
            nkey: Some(public),
            ..UserConfig::default()
        }];
    });
    let a = info_json(&nk);
    let b = info_json(&nk);
    assert!(a.contains("\"auth_required\":true"), "{a}");
    let nonce = |s: &str| {
        let i = s.find("\"nonce\":\"").expect("nonce") + 9;
        s[i..i + s[i..].find('"').expect("end")].to_string()
    };
    assert!(!nonce(&a).is_empty());
    assert_ne!(nonce(&a), nonce(&b), "nonce must differ per connection");
}

// --------------------------------------------------------------------- flood

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_connect_flood_does_not_hurt_healthy_client() {
    let hash = bcrypt::hash("good-pw", 4).expect("bcrypt");
    let srv = TestServer::with(move |o| o.users = vec![user("good", &hash, None)]);
    let opts = || ConnectOptions::with_user_and_password("good".into(), "good-pw".into());
    let responder = connect_ok(&srv, opts()).await;
    let mut reqs = responder.subscribe("echo").await.expect("sub");
    responder.flush().await.expect("flush");
    srv.wait_for_interest(b"echo");
    tokio::spawn(async move {
        while let Some(m) = reqs.next().await {
            if let Some(r) = m.reply {
                let _ = responder.publish(r, m.payload).await;
            }
        }
    });
    let client = connect_ok(&srv, opts()).await;

    let addr = srv.addr;
    let attackers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let mut r = Raw::connect(addr);
                    assert!(r.read_line().starts_with("INFO "));
                    r.send(b"CONNECT {\"user\":\"good\",\"pass\":\"wrong\"}\r\nPING\r\n");
                    assert_eq!(r.read_line(), "-ERR 'Authorization Violation'");
                    assert!(r.closed());
                }
            })
        })
        .collect();

    let mut n = 0u32;
    let mut worst = Duration::ZERO;
    while n < 50 || attackers.iter().any(|t| !t.is_finished()) {
        let t = Instant::now();
        let payload = format!("m{n}");
        let resp = tokio::time::timeout(WAIT, client.request("echo", payload.clone().into()))
            .await
            .expect("request in time")
            .expect("request answered");
        assert_eq!(resp.payload, payload.as_bytes());
        worst = worst.max(t.elapsed());
        n += 1;
    }
    for t in attackers {
        t.join().expect("attacker thread");
    }
    assert!(
        worst < Duration::from_millis(500),
        "slowest healthy round trip {worst:?} over {n}"
    );
}
