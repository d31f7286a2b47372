//! Leaf links bound to accounts, against nats-server: natrium as the leaf
//! with a remote's `account`, natrium as the hub binding a nats-server leaf
//! to the account of its `authorization { users }` entry; only that
//! account's interest and messages cross, and an import reaches the link.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use natrium::options::{LeafOptions, LeafUser};

use crate::accounts::login;
use crate::common::TestServer;
use crate::leaf_support::*;

const ACCOUNTS: &str = r#"
accounts {
  A { users = [ {user: a, password: a} ], exports = [ { stream: "feed.>" } ] }
  B { users = [ {user: b, password: b} ],
      imports = [ { stream: { account: A, subject: "feed.>" }, prefix: "a" } ] }
}
"#;

async fn silent(sub: &mut async_nats::Subscriber) {
    let r = tokio::time::timeout(Duration::from_millis(400), sub.next()).await;
    assert!(r.is_err(), "unexpected message: {:?}", r.ok().flatten());
}

/// Publishes `probe` until `sub` gets it renamed to `arrives` (through an
/// import): interest has crossed the link.
async fn until_imported(
    nc: &async_nats::Client,
    sub: &mut async_nats::Subscriber,
    probe: &str,
    arrives: &str,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        nc.publish(probe.to_string(), Bytes::from_static(b"probe"))
            .await
            .expect("publish");
        nc.flush().await.expect("flush");
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            assert_eq!(m.subject.as_str(), arrives);
            while let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(100), sub.next()).await
            {}
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{probe} did not arrive as {arrives}"
        );
    }
}

fn accounts_server(f: impl FnOnce(&mut natrium::options::Options) + Send + 'static) -> TestServer {
    let (mut opts, _) =
        natrium::config::parse_str(ACCOUNTS, &std::env::temp_dir()).expect("config");
    f(&mut opts);
    TestServer::with(move |o| *o = opts)
}

/// natrium with the accounts above, its one remote (the hub's leaf port
/// `lp`) bound to account A; returns once the link is up.
fn leaf_in_account_a(lp: u16) -> TestServer {
    let url = format!("nats-leaf://127.0.0.1:{lp}");
    let leaf = accounts_server(move |o| {
        o.leafnodes = Some(LeafOptions {
            remotes: vec![natrium::options::LeafRemote {
                urls: vec![url],
                account: Some("A".into()),
                ..Default::default()
            }],
            reconnect: Duration::from_millis(250),
            ..LeafOptions::default()
        })
    });
    wait_links(&leaf, 1);
    leaf
}

#[tokio::test]
async fn natrium_leaf_bound_to_an_account_bridges_only_it() {
    let lp = free_port();
    let Some(hub) = Reference::hub(lp, "") else {
        return;
    };
    let leaf = leaf_in_account_a(lp);
    assert_eq!(leaf.state.leafs.list()[0].conn.account_name(), "A");
    let h = connect(&hub.url()).await;
    let (a, b) = (login(&leaf, "a").await, login(&leaf, "b").await);

    // Up: account A's publish reaches the hub; B's does not.
    let mut hs = h.subscribe("up.>").await.expect("sub");
    h.flush().await.expect("flush");
    until_crossed(&a, &mut hs, "up.probe").await;
    b.publish("up.b", Bytes::from_static(b"b"))
        .await
        .expect("pub");
    b.flush().await.expect("flush");
    silent(&mut hs).await;

    // Down: the hub's publish reaches A's subscriber, and B only through
    // its import of A's feed (renamed).
    let mut sa = a.subscribe("feed.>").await.expect("sub");
    let mut sb_plain = b.subscribe("feed.>").await.expect("sub");
    let mut sb_import = b.subscribe("a.feed.>").await.expect("sub");
    a.flush().await.expect("flush");
    until_crossed(&h, &mut sa, "feed.probe").await;
    let _ = tokio::time::timeout(Duration::from_millis(200), sb_import.next()).await;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), sb_import.next()).await
    {
    }
    h.publish("feed.1", Bytes::from_static(b"one"))
        .await
        .expect("pub");
    h.flush().await.expect("flush");
    assert_eq!(recv(&mut sa).await.payload.as_ref(), b"one");
    let m = recv(&mut sb_import).await;
    assert_eq!(m.subject.as_str(), "a.feed.1");
    silent(&mut sb_plain).await;
}

#[tokio::test]
async fn import_interest_crosses_the_link() {
    // Only B subscribes (to A's feed through its import); the hub still
    // sends the feed across, because the import is interest in A.
    let lp = free_port();
    let Some(hub) = Reference::hub(lp, "") else {
        return;
    };
    let leaf = leaf_in_account_a(lp);
    let h = connect(&hub.url()).await;
    let b = login(&leaf, "b").await;
    let mut sb = b.subscribe("a.feed.>").await.expect("sub");
    b.flush().await.expect("flush");
    until_imported(&h, &mut sb, "feed.probe", "a.feed.probe").await;
    h.publish("feed.x", Bytes::from_static(b"x"))
        .await
        .expect("pub");
    h.flush().await.expect("flush");
    assert_eq!(recv(&mut sb).await.subject.as_str(), "a.feed.x");
}

#[tokio::test]
async fn natrium_hub_binds_a_nats_server_leaf_to_its_users_account() {
    let lp = free_port();
    let hub = accounts_server(move |o| {
        o.leafnodes = Some(LeafOptions {
            host: "127.0.0.1".into(),
            port: Some(lp),
            users: vec![LeafUser {
                user: "leafy".into(),
                password: "pw".into(),
                account: Some("B".into()),
            }],
            ..LeafOptions::default()
        })
    });
    let Some(leaf) = Reference::leaf_of(lp, "leafy:pw") else {
        return;
    };
    wait_links(&hub, 1);
    assert_eq!(hub.state.leafs.list()[0].conn.account_name(), "B");
    let l = connect(&leaf.url()).await;
    let (a, b) = (login(&hub, "a").await, login(&hub, "b").await);

    // The leaf's publish lands in B only.
    let mut sb = b.subscribe("from.leaf").await.expect("sub");
    let mut sa = a.subscribe("from.leaf").await.expect("sub");
    b.flush().await.expect("flush");
    a.flush().await.expect("flush");
    until_crossed(&l, &mut sb, "from.leaf").await;
    let before = hub.state.counts().in_msgs;
    l.publish("from.leaf", Bytes::from_static(b"x"))
        .await
        .expect("pub");
    l.flush().await.expect("flush");
    assert_eq!(recv(&mut sb).await.payload.as_ref(), b"x");
    silent(&mut sa).await;
    // The server's totals (/varz) count what came in over the link.
    assert!(
        hub.state.counts().in_msgs > before,
        "link traffic not in totals"
    );

    // A's feed reaches the leaf through B's import.
    let mut ls = l.subscribe("a.feed.>").await.expect("sub");
    l.flush().await.expect("flush");
    until_imported(&a, &mut ls, "feed.probe", "a.feed.probe").await;
    a.publish("feed.2", Bytes::from_static(b"two"))
        .await
        .expect("pub");
    a.flush().await.expect("flush");
    assert_eq!(recv(&mut ls).await.subject.as_str(), "a.feed.2");
}

#[test]
fn leaf_accounts_must_exist() {
    for (conf, what) in [
        (
            "leafnodes { remotes = [ { url: \"nats-leaf://127.0.0.1:1\", account: NOPE } ] }",
            "remote",
        ),
        (
            "leafnodes { port: 7422, authorization { users = [ { user: u, password: p, account: NOPE } ] } }",
            "authorization",
        ),
    ] {
        let err = natrium::config::parse_str(conf, &std::env::temp_dir())
            .expect_err("an unknown account is an error");
        assert!(
            err.to_string()
                .contains(&format!("cannot find local account \"NOPE\" specified in leafnode {what}")),
            "{err}"
        );
    }
    let ok = "accounts { A {} }\nleafnodes { remotes = [ { url: \"nats-leaf://127.0.0.1:1\", account: A } ] }";
    natrium::config::parse_str(ok, &std::env::temp_dir()).expect("a defined account");
}
