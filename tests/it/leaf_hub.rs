//! natrium as the hub (a nats-server leaf, a natrium leaf, raw links with
//! malformed ops) and two remotes into one hub as a loop.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::common::TestServer;
use crate::leaf_support::*;
use natrium::options::{LeafOptions, LeafRemote, LeafUser};

#[tokio::test]
async fn natrium_hub_with_nats_server_leaf() {
    let lp = free_port();
    let hub = TestServer::with(|o| {
        o.leafnodes = Some(LeafOptions {
            host: "127.0.0.1".into(),
            port: Some(lp),
            users: vec![LeafUser {
                user: "leafy".into(),
                password: "pw".into(),
                account: None,
            }],
            ..LeafOptions::default()
        })
    });
    // nats-server's leaf authenticates with the user in its URL.
    let Some(leaf) = Reference::leaf_of(lp, "leafy:pw") else {
        return;
    };
    wait_links(&hub, 1);
    let h = connect(&hub.url()).await;
    let l = connect(&leaf.url()).await;
    let mut hs = h.subscribe("to.hub").await.expect("sub");
    h.flush().await.expect("flush");
    until_crossed(&l, &mut hs, "to.hub").await;
    let mut ls = l.subscribe("to.leaf").await.expect("sub");
    l.flush().await.expect("flush");
    until_crossed(&h, &mut ls, "to.leaf").await;
    for _ in 0..25 {
        h.publish("to.leaf", Bytes::from_static(b"m"))
            .await
            .expect("pub");
        l.publish("to.hub", Bytes::from_static(b"m"))
            .await
            .expect("pub");
    }
    h.flush().await.expect("flush");
    l.flush().await.expect("flush");
    assert_eq!(count(&mut ls).await, 25);
    assert_eq!(count(&mut hs).await, 25);
}

#[tokio::test]
async fn natrium_hub_with_natrium_leaf_and_token() {
    let lp = free_port();
    let hub = TestServer::with(|o| {
        o.leafnodes = Some(LeafOptions {
            host: "127.0.0.1".into(),
            port: Some(lp),
            token: Some("t0k".into()),
            ..LeafOptions::default()
        })
    });
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |r| {
        r.token = Some("t0k".into())
    });
    wait_links(&hub, 1);
    wait_links(&leaf, 1);
    let h = connect(&hub.url()).await;
    let l = connect(&leaf.url()).await;
    let mut ls = l.subscribe("n.>").await.expect("sub");
    l.flush().await.expect("flush");
    until_crossed(&h, &mut ls, "n.probe").await;
    for _ in 0..10 {
        h.publish("n.x", Bytes::from_static(b"m"))
            .await
            .expect("pub");
    }
    h.flush().await.expect("flush");
    assert_eq!(count(&mut ls).await, 10);
    // Leaf links are not client connections: /connz does not list them,
    // /varz counts them as leafnodes, /leafz describes them.
    assert_eq!(hub.state.num_connections(), 1);
    let (hub_state, leaf_state) = (hub.state.clone(), leaf.state.clone());
    let leaf_id = leaf.state.server_id.clone();
    // The monitor helper blocks: off the test's runtime.
    tokio::task::spawn_blocking(move || {
        let mon = crate::monitor_util::Monitor::start(hub_state.clone());
        let connz: serde_json::Value = mon.json("/connz");
        assert_eq!(connz["num_connections"].as_u64(), Some(1));
        let varz: serde_json::Value = mon.json("/varz");
        assert_eq!(varz["leafnodes"].as_u64(), Some(1));
        let leafz: serde_json::Value = mon.json("/leafz");
        assert_eq!(leafz["leafnodes"].as_u64(), Some(1));
        let link = &leafz["leafs"][0];
        assert_eq!(link["is_spoke"], false);
        assert_eq!(link["name"], leaf_id.as_str());
        assert!(link["out_msgs"].as_u64().unwrap_or(0) >= 10, "{link}");
        assert!(link["subscriptions"].as_u64().unwrap_or(0) >= 2, "{link}");
        let metrics = mon.get("/metrics").body;
        assert!(metrics.contains("gnatsd_varz_leafnodes{"), "{metrics}");
        assert!(
            metrics.contains("natrium_leaf_connects_total{"),
            "{metrics}"
        );
        let leafz: serde_json::Value =
            crate::monitor_util::Monitor::start(leaf_state).json("/leafz");
        assert_eq!(leafz["leafs"][0]["is_spoke"], true);
    })
    .await
    .expect("monitor checks");
}

/// A raw leaf link to a natrium hub: reads INFO, sends CONNECT, then `ops`.
fn raw_link(port: u16) -> crate::common::Raw {
    let mut raw = crate::common::Raw::connect(([127, 0, 0, 1], port).into());
    let info = raw.read_line();
    assert!(info.starts_with("INFO "), "{info}");
    raw.send(b"CONNECT {\"name\":\"raw\",\"headers\":true}\r\n");
    raw
}

/// The next line that is not a PING (answered), INFO or LS+ from the hub.
fn next_reply(raw: &mut crate::common::Raw) -> String {
    loop {
        let l = raw.next_non_ping();
        if !(l.starts_with("INFO ") || l.starts_with("LS+ ")) {
            return l;
        }
    }
}

#[test]
fn malformed_leaf_ops_close_only_that_link() {
    let lp = free_port();
    let hub = TestServer::with(|o| {
        o.leafnodes = Some(LeafOptions {
            host: "127.0.0.1".into(),
            port: Some(lp),
            ..LeafOptions::default()
        })
    });
    let mut good = raw_link(lp);
    good.send(b"PING\r\n");
    assert_eq!(next_reply(&mut good), "PONG");
    for bad in [
        &b"LS+ a b\r\n"[..],
        b"LMSG foo bad x\r\n",
        b"LMSG foo ? r q 1\r\nx\r\n",
        b"HMSG foo 5 2\r\n",
    ] {
        let mut link = raw_link(lp);
        link.send(bad);
        assert!(link.closed(), "not closed after {bad:?}");
        good.send(b"PING\r\n");
        assert_eq!(next_reply(&mut good), "PONG");
    }
    // The good link still carries interest and messages.
    good.send(b"LS+ raw.>\r\nPING\r\n");
    assert_eq!(next_reply(&mut good), "PONG");
    hub.wait_for_interest(b"raw.x");
    let mut client = crate::common::Raw::connect(hub.addr);
    let _ = client.read_line();
    client.send(b"CONNECT {\"verbose\":false}\r\nPUB raw.x 2\r\nhi\r\nPING\r\n");
    assert_eq!(next_reply(&mut good), "LMSG raw.x 2");
}

#[tokio::test]
async fn two_remotes_to_one_hub_are_a_loop_without_duplicates() {
    let lp = free_port();
    let Some(hub) = Reference::hub(lp, "") else {
        return;
    };
    let url = format!("nats-leaf://127.0.0.1:{lp}");
    let remote = LeafRemote {
        urls: vec![url],
        ..LeafRemote::default()
    };
    let leaf = TestServer::with(move |o| {
        o.leafnodes = Some(LeafOptions {
            remotes: vec![remote.clone(), remote],
            reconnect: Duration::from_millis(250),
            ..LeafOptions::default()
        })
    });
    // Both links come up; the second sees our own $LDS subject come back
    // through the hub and closes (a loop, as nats-server says), for 30 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    while leaf
        .state
        .leafs
        .connects
        .load(std::sync::atomic::Ordering::Relaxed)
        < 2
    {
        assert!(Instant::now() < deadline, "second remote never dialled");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Under load the second link may still be settling: wait for exactly one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while leaf.state.leafs.count() != 1 {
        assert!(
            Instant::now() < deadline,
            "{} links up after the loop",
            leaf.state.leafs.count()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let h = connect(&hub.url()).await;
    let l = connect(&leaf.url()).await;
    let mut ls = l.subscribe("loop.>").await.expect("sub");
    let mut hs = h.subscribe("back.>").await.expect("sub");
    l.flush().await.expect("flush");
    h.flush().await.expect("flush");
    until_crossed(&h, &mut ls, "loop.probe").await;
    until_crossed(&l, &mut hs, "back.probe").await;
    for _ in 0..50 {
        h.publish("loop.x", Bytes::from_static(b"m"))
            .await
            .expect("pub");
        l.publish("back.x", Bytes::from_static(b"m"))
            .await
            .expect("pub");
    }
    h.flush().await.expect("flush");
    l.flush().await.expect("flush");
    // At most once, never looping back. Not "exactly once": in a loop
    // topology the hub may send either link the other's $LDS subject, so the
    // surviving link can itself be closed as a loop (as with nats-server
    // leaves), and messages published while no link is up stay home.
    let (down, up) = (count(&mut ls).await, count(&mut hs).await);
    assert!(down <= 50, "{down} hub->leaf deliveries of 50: duplicates");
    assert!(up <= 50, "{up} leaf->hub deliveries of 50: duplicates");
}

/// A reload moves a remote from one hub to another: the link to the removed
/// remote closes, the added one comes up, as nats-server's leafnode reload.
#[test]
fn reload_removes_and_adds_remotes() {
    let (p1, p2) = (free_port(), free_port());
    let hub = |lp: u16| {
        TestServer::with(move |o| {
            o.leafnodes = Some(LeafOptions {
                host: "127.0.0.1".into(),
                port: Some(lp),
                ..LeafOptions::default()
            })
        })
    };
    let (hub1, hub2) = (hub(p1), hub(p2));
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{p1}")], |_| {});
    wait_links(&hub1, 1);
    wait_links(&leaf, 1);

    let mut next: natrium::options::Options = (**leaf.state.opts()).clone();
    let mut lo = next.leafnodes.clone().expect("leafnodes");
    lo.remotes = vec![LeafRemote {
        urls: vec![format!("nats-leaf://127.0.0.1:{p2}")],
        ..LeafRemote::default()
    }];
    next.leafnodes = Some(lo.clone());
    leaf.control.reload(next.clone());
    wait_links(&hub1, 0);
    wait_links(&hub2, 1);
    wait_links(&leaf, 1);
    assert_eq!(leaf.state.leafs.remotes.len(), 1);

    // Both remotes now: hub2's link stays up, hub1's comes back.
    lo.remotes.insert(
        0,
        LeafRemote {
            urls: vec![format!("nats-leaf://127.0.0.1:{p1}")],
            ..LeafRemote::default()
        },
    );
    next.leafnodes = Some(lo);
    leaf.control.reload(next);
    wait_links(&hub1, 1);
    wait_links(&leaf, 2);
    assert_eq!(
        hub2.state
            .leafs
            .connects
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// A reload re-checks an accepted leaf's credentials: an unrelated change
/// keeps the link, removing its user closes it and the leaf stays out.
#[test]
fn reload_removing_the_leaf_user_closes_its_link() {
    let lp = free_port();
    let users = |names: &[&str]| {
        names
            .iter()
            .map(|u| LeafUser {
                user: u.to_string(),
                password: "pw".into(),
                account: None,
            })
            .collect::<Vec<_>>()
    };
    let leaf_opts = |names: &[&str]| LeafOptions {
        host: "127.0.0.1".into(),
        port: Some(lp),
        users: users(names),
        ..LeafOptions::default()
    };
    let first = leaf_opts(&["leafy", "other"]);
    let hub = TestServer::with(move |o| o.leafnodes = Some(first));
    let leaf = leaf_of(&[format!("nats-leaf://leafy:pw@127.0.0.1:{lp}")], |_| {});
    wait_links(&hub, 1);

    let mut next: natrium::options::Options = (**hub.state.opts()).clone();
    next.leafnodes = Some(leaf_opts(&["leafy"]));
    hub.control.reload(next.clone());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        hub.state.leafs.count(),
        1,
        "an unrelated change keeps the link"
    );
    let connects = hub
        .state
        .leafs
        .connects
        .load(std::sync::atomic::Ordering::Relaxed);

    next.leafnodes = Some(leaf_opts(&["other"]));
    hub.control.reload(next);
    wait_links(&hub, 0);
    // The leaf keeps dialling and is refused: the link does not come back.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(hub.state.leafs.count(), 0);
    assert_eq!(
        hub.state
            .leafs
            .connects
            .load(std::sync::atomic::Ordering::Relaxed),
        connects
    );
    drop(leaf);
}

/// A leaf signed in as a client user whose permissions a reload changes is
/// closed and comes back under the new ones (as one moved to another
/// account); an unrelated reload leaves it alone.
#[test]
fn reload_changing_the_leaf_users_permissions_reconnects_it() {
    use natrium::options::{Options, Permissions, UserConfig};
    let lp = free_port();
    let with_perms = move |publish: &str| {
        let mut o = Options {
            host: "127.0.0.1".into(),
            ..Options::default()
        };
        o.users = vec![UserConfig {
            user: Some("l".into()),
            password: Some("p".into()),
            permissions: Some(Permissions {
                publish_allow: Some(vec![publish.to_string()]),
                ..Permissions::default()
            }),
            ..UserConfig::default()
        }];
        o.leafnodes = Some(LeafOptions {
            host: "127.0.0.1".into(),
            port: Some(lp),
            ..LeafOptions::default()
        });
        o
    };
    let first = with_perms(">");
    let hub = TestServer::with(move |o| *o = first);
    let _leaf = leaf_of(&[format!("nats-leaf://l:p@127.0.0.1:{lp}")], |_| {});
    wait_links(&hub, 1);
    let connects = || {
        hub.state
            .leafs
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(connects(), 1);

    let mut same = with_perms(">");
    same.max_payload = 512 * 1024;
    hub.control.reload(same);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(connects(), 1, "an unrelated reload keeps the link");

    hub.control.reload(with_perms("up.>"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while connects() < 2 || hub.state.leafs.count() != 1 {
        assert!(std::time::Instant::now() < deadline, "link not renewed");
        std::thread::sleep(Duration::from_millis(20));
    }
}
