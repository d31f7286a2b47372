//! Permissions on leaf links, as nats-server applies them: a natrium leaf's
//! `deny_imports`/`deny_exports` against a nats-server hub and on the wire
//! (a scripted hub), a nats-server leaf signed in to a natrium hub as a
//! client user with permissions (it may publish across what the user may
//! publish and receives what it may subscribe to), a raw leaf breaking
//! those permissions (closed with nats-server's `-ERR`), and a natrium leaf
//! taking a natrium hub's permissions from its INFO.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::common::{Raw, TestServer};
use crate::leaf_support::*;

const N: usize = 10;

/// Messages per subject until `sub` has been quiet for 300 ms.
async fn tally(sub: &mut async_nats::Subscriber) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        *seen.entry(m.subject.to_string()).or_default() += 1;
    }
    seen
}

/// Publishes `N` messages on each subject, then flushes.
async fn publish_each(nc: &async_nats::Client, subjects: &[&str]) {
    for s in subjects {
        for _ in 0..N {
            nc.publish(s.to_string(), Bytes::from_static(b"m"))
                .await
                .expect("publish");
        }
    }
    nc.flush().await.expect("flush");
}

fn got(seen: &HashMap<String, usize>, subject: &str) -> usize {
    seen.get(subject).copied().unwrap_or(0)
}

/// `from` publishes `<p>.ok`, `<p>.secret` and `<p>.hidden.x` (the last two
/// denied on the link) to `to`'s subscribers of `>` and `<p>.secret`.
async fn only_allowed_cross(from: &async_nats::Client, to: &async_nats::Client, p: &str) {
    let (ok, secret, hidden) = (
        format!("{p}.ok"),
        format!("{p}.secret"),
        format!("{p}.hidden.x"),
    );
    let mut everything = to.subscribe(">").await.expect("sub");
    let mut by_name = to.subscribe(secret.clone()).await.expect("sub");
    to.flush().await.expect("flush");
    until_crossed(from, &mut everything, &format!("{p}.probe")).await;
    publish_each(from, &[&ok, &secret, &hidden]).await;
    let seen = tally(&mut everything).await;
    assert_eq!(got(&seen, &ok), N, "{seen:?}");
    assert_eq!(got(&seen, &secret) + got(&seen, &hidden), 0, "{seen:?}");
    assert_eq!(count(&mut by_name).await, 0);
}

#[tokio::test]
async fn natrium_leaf_deny_lists_against_a_nats_server_hub() {
    let lp = free_port();
    let Some(hub) = Reference::hub(lp, "") else {
        return;
    };
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |r| {
        r.deny_imports = vec!["in.secret".into(), "in.hidden.>".into()];
        r.deny_exports = vec!["out.secret".into(), "out.hidden.>".into()];
    });
    wait_links(&leaf, 1);
    let (h, l) = (connect(&hub.url()).await, connect(&leaf.url()).await);

    // Out, then in: the receiving side listens to everything and asks for a
    // denied subject by name too; only what is not denied crosses.
    only_allowed_cross(&l, &h, "out").await;
    only_allowed_cross(&h, &l, "in").await;
    assert_eq!(leaf.state.leafs.count(), 1, "the link stayed up");
}

/// The lines a raw peer gets before the PONG to its PING, sorted.
fn lines_until_pong(raw: &mut Raw) -> Vec<String> {
    raw.send(b"PING\r\n");
    let mut lines = Vec::new();
    loop {
        let l = raw.read_line();
        match l.as_str() {
            "PONG" | "" => break,
            "PING" => raw.send(b"PONG\r\n"),
            _ => lines.push(l),
        }
    }
    lines.sort();
    lines
}

/// A natrium client of `srv` that has sent `ops` and seen them applied.
fn client(srv: &TestServer, ops: &str) -> Raw {
    let mut c = srv.raw();
    c.send(format!("CONNECT {{\"verbose\":false}}\r\n{ops}").as_bytes());
    assert_eq!(c.flush(), "");
    c
}

#[test]
fn natrium_leaf_deny_lists_on_the_wire() {
    // A scripted hub: sees our CONNECT, answers with import/export lists,
    // and then sends what a careless hub would.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{port}")], |r| {
        r.deny_imports = vec!["in.secret".into(), "in.hidden.>".into()];
        r.deny_exports = vec!["out.secret".into()];
    });
    let (sock, _) = listener.accept().expect("leaf dials");
    let mut hub = Raw::from_stream(sock, Duration::from_secs(5));
    hub.send(b"INFO {\"server_id\":\"FAKEHUB\",\"server_name\":\"fake\",\"headers\":true,\"max_payload\":1048576}\r\n");
    let connect = hub.read_line();
    assert!(
        connect.contains(r#""deny_pub":["in.secret","in.hidden.>"]"#),
        "{connect}"
    );
    assert_eq!(hub.read_line(), "PING");

    // Interest from before the hub's answer is filtered when it comes.
    let mut c = client(
        &leaf,
        "SUB in.ok 1\r\nSUB in.secret 2\r\nSUB other 3\r\nSUB > 4\r\nSUB in.hidden.* 5\r\n",
    );
    hub.send(b"INFO {\"server_id\":\"FAKEHUB\",\"connect_info\":true,\"import\":{\"allow\":[\"in.>\",\"in.q grp\"]},\"export\":{\"allow\":[\"out.>\"]}}\r\nPONG\r\n");
    let told = lines_until_pong(&mut hub);
    assert_eq!(told.len(), 3, "{told:?}");
    assert!(told[0].starts_with("LS+ $LDS."), "{told:?}");
    assert_eq!(&told[1..], ["LS+ >", "LS+ in.ok"], "{told:?}");
    // And from after it.
    assert_eq!(c.flush(), "");
    c.send(b"SUB in.late 6\r\nSUB in.hidden.x 7\r\nSUB not.imported 8\r\n");
    assert_eq!(c.flush(), "");
    assert_eq!(lines_until_pong(&mut hub), ["LS+ in.late"]);

    // In: denied or not imported messages are dropped, and counted.
    hub.send(
        b"LMSG in.ok 2\r\nhi\r\nLMSG in.secret 2\r\nhi\r\nLMSG other 2\r\nhi\r\n\
          LMSG in.hidden.x 2\r\nhi\r\n",
    );
    assert_eq!(lines_until_pong(&mut hub), Vec::<String>::new());
    let delivered = c.flush();
    assert_eq!(delivered.matches("MSG in.ok ").count(), 2, "{delivered}");
    assert!(!delivered.contains("secret") && !delivered.contains("hidden"));
    assert!(!delivered.contains("other"), "{delivered}");
    let link = &leaf.state.leafs.list()[0];
    assert_eq!(
        link.conn.in_msgs.load(std::sync::atomic::Ordering::Relaxed),
        4
    );

    // Out: a literal LS+ outside what we may send is not honoured; a
    // wildcard is, message by message.
    hub.send(b"LS+ out.ok\r\nLS+ out.secret\r\nLS+ elsewhere\r\nLS+ >\r\n");
    assert_eq!(lines_until_pong(&mut hub), Vec::<String>::new());
    let mut p = client(&leaf, "");
    p.send(
        b"PUB out.ok 2\r\nhi\r\nPUB out.secret 2\r\nhi\r\nPUB elsewhere 2\r\nhi\r\n\
          PUB out.other 2\r\nhi\r\n",
    );
    assert_eq!(p.flush(), "");
    let sent = lines_until_pong(&mut hub);
    assert_eq!(
        sent,
        ["LMSG out.ok 2", "LMSG out.other 2", "hi", "hi"],
        "{sent:?}"
    );
    assert_eq!(leaf.state.leafs.count(), 1);
}

const HUB_USERS: &str = r#"
authorization { users = [
  { user: lu, password: lp, permissions: {
      publish: ["up.ok", "up.wild.>"],
      subscribe: { allow: ["down.>"], deny: ["down.no"] } } }
  { user: c, password: c }
] }
"#;

/// A natrium hub whose leaves sign in as the client users above.
fn hub_with_users(lp: u16) -> TestServer {
    let text = format!("{HUB_USERS}\nleafnodes {{ host: \"127.0.0.1\", port: {lp} }}");
    let (opts, _) = natrium::config::parse_str(&text, &std::env::temp_dir()).expect("config");
    TestServer::with(move |o| *o = opts)
}

async fn login(srv: &TestServer) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password("c".into(), "c".into())
        .connect(srv.url())
        .await
        .expect("connect")
}

/// Both ends: the leaf publishes up (what `lu` may publish crosses) and
/// listens to everything (what `lu` may subscribe to crosses).
async fn user_permissions_cross(hub: &TestServer, leaf_url: &str) {
    let (h, l) = (login(hub).await, connect(leaf_url).await);
    let mut up = h.subscribe("up.>").await.expect("sub");
    h.flush().await.expect("flush");
    until_crossed(&l, &mut up, "up.ok").await;
    publish_each(&l, &["up.ok", "up.no", "up.wild.x"]).await;
    let seen = tally(&mut up).await;
    assert_eq!(got(&seen, "up.ok"), N, "{seen:?}");
    assert_eq!(got(&seen, "up.wild.x"), N, "{seen:?}");
    assert_eq!(got(&seen, "up.no"), 0, "{seen:?}");

    let mut down = l.subscribe(">").await.expect("sub");
    l.flush().await.expect("flush");
    until_crossed(&h, &mut down, "down.probe").await;
    publish_each(&h, &["down.ok", "down.no", "elsewhere"]).await;
    let seen = tally(&mut down).await;
    assert_eq!(got(&seen, "down.ok"), N, "{seen:?}");
    assert_eq!(
        got(&seen, "down.no") + got(&seen, "elsewhere"),
        0,
        "{seen:?}"
    );
    // Nothing the leaf sent broke its permissions: the link is the first.
    assert_eq!(hub.state.leafs.count(), 1);
    assert_eq!(
        hub.state
            .leafs
            .connects
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn nats_server_leaf_as_a_client_user_with_permissions() {
    let lp = free_port();
    let hub = hub_with_users(lp);
    let Some(leaf) = Reference::leaf_of(lp, "lu:lp") else {
        return;
    };
    wait_links(&hub, 1);
    user_permissions_cross(&hub, &leaf.url()).await;
}

#[tokio::test]
async fn natrium_leaf_takes_a_natrium_hubs_permissions() {
    let lp = free_port();
    let hub = hub_with_users(lp);
    let leaf = leaf_of(&[format!("nats-leaf://lu:lp@127.0.0.1:{lp}")], |_| {});
    wait_links(&hub, 1);
    user_permissions_cross(&hub, &leaf.url()).await;
}

/// A raw leaf signed in as `lu` (with `extra` CONNECT fields): returns it
/// with the INFO that answered its CONNECT.
fn raw_leaf(lp: u16, extra: &str) -> (Raw, String) {
    let mut raw = Raw::connect(([127, 0, 0, 1], lp).into());
    assert!(raw.read_line().starts_with("INFO "));
    raw.send(
        format!("CONNECT {{\"user\":\"lu\",\"pass\":\"lp\",\"name\":\"raw\"{extra}}}\r\n")
            .as_bytes(),
    );
    let info = raw.next_non_ping();
    assert!(info.contains("\"connect_info\":true"), "{info}");
    (raw, info)
}

/// The next line from the hub that is not a PING (answered) or an LS+.
fn next_reply(raw: &mut Raw) -> String {
    loop {
        let l = raw.next_non_ping();
        if !l.starts_with("LS+ ") {
            return l;
        }
    }
}

#[test]
fn natrium_hub_applies_user_permissions_on_the_wire() {
    let lp = free_port();
    let hub = hub_with_users(lp);
    let (mut ok, info) = raw_leaf(lp, r#","deny_pub":["down.private"]"#);
    // The leaf learns its permissions: import = subscribe, export = publish.
    let json: serde_json::Value =
        serde_json::from_str(info.trim_start_matches("INFO ")).expect("json");
    assert_eq!(json["import"]["allow"][0], "down.>", "{info}");
    assert_eq!(json["import"]["deny"][0], "down.no", "{info}");
    assert_eq!(json["export"]["allow"][1], "up.wild.>", "{info}");

    // Interest told to the leaf: only what it may publish to us.
    let mut c = Raw::connect(hub.addr);
    let _ = c.read_line();
    c.send(b"CONNECT {\"user\":\"c\",\"pass\":\"c\",\"verbose\":false}\r\nSUB up.ok 1\r\nSUB down.x 2\r\nSUB > 3\r\n");
    assert_eq!(c.flush(), "");
    let told = lines_until_pong(&mut ok);
    assert!(told.contains(&"LS+ up.ok".to_string()), "{told:?}");
    assert!(told.contains(&"LS+ >".to_string()), "{told:?}");
    assert!(!told.iter().any(|l| l.contains("down.x")), "{told:?}");

    // A wildcard LS+ is taken; deliveries are filtered by what the user may
    // subscribe to, less the leaf's own deny_pub.
    ok.send(b"LS+ down.>\r\nLS+ >\r\n");
    assert!(lines_until_pong(&mut ok).is_empty());
    c.send(
        b"PUB down.ok 1\r\na\r\nPUB down.no 1\r\nb\r\nPUB down.private 1\r\nc\r\n\
          PUB elsewhere 1\r\nd\r\n",
    );
    let _ = c.flush();
    assert_eq!(lines_until_pong(&mut ok), ["LMSG down.ok 1", "a"]);
    // What the leaf may publish crosses.
    ok.send(b"LMSG up.wild.y 1\r\ne\r\n");
    assert!(lines_until_pong(&mut ok).is_empty());
    assert!(c.flush().contains("MSG up.wild.y 3 1"));

    // A literal LS+ it may not receive, or a message it may not publish,
    // closes the link with nats-server's error.
    for (op, err) in [
        (
            &b"LS+ up.ok\r\n"[..],
            r#"-ERR 'Permissions Violation for Subscription to "up.ok"'"#,
        ),
        (
            b"LMSG down.x 2\r\nhi\r\n",
            r#"-ERR 'Permissions Violation for Publish to "down.x"'"#,
        ),
    ] {
        let (mut bad, _) = raw_leaf(lp, "");
        bad.send(op);
        assert_eq!(next_reply(&mut bad), err);
        assert!(bad.closed());
    }
    assert!(
        !c.flush().contains("down.x"),
        "the denied message was dropped"
    );
    wait_links(&hub, 1);
}
