//! Leaf nodes against the real nats-server: natrium as the leaf of a
//! nats-server hub (pub/sub both ways, wildcards, headers, queue groups,
//! request/reply, no_responders, hub restart, refused credentials) and as the
//! hub of a nats-server leaf and of a natrium leaf.
//!
//! The reference binary is `$NATS_SERVER`, else `nats-server` on `PATH`, else
//! `/usr/sbin/nats-server` (`.ci/run` installs Debian's); without one the
//! tests that need it print a note and pass.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use crate::common::TestServer;
use natrium::options::{LeafOptions, LeafRemote};

fn reference_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let p = PathBuf::from("/usr/sbin/nats-server");
        p.is_file().then_some(p)
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A nats-server process with its own config file; killed on drop.
struct Reference {
    child: Child,
    port: u16,
    _dir: tempdir::Dir,
}

mod tempdir {
    use std::path::PathBuf;
    pub struct Dir(pub PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let n = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let p = std::env::temp_dir().join(format!("natrium-leaf-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Reference {
    /// Starts nats-server on `port` with `extra` config; `None` without a binary.
    fn start(port: u16, extra: &str) -> Option<Reference> {
        let bin = reference_bin()?;
        let dir = tempdir::Dir::new();
        let conf = dir.0.join("server.conf");
        std::fs::write(&conf, format!("host: 127.0.0.1\nport: {port}\n{extra}\n")).ok()?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Reference {
            child,
            port,
            _dir: dir,
        })
    }

    /// A hub: client port plus a leaf port.
    fn hub(leaf_port: u16, extra: &str) -> Option<Reference> {
        let r = Self::start(
            free_port(),
            &format!("leafnodes {{\n port: {leaf_port}\n {extra}\n}}"),
        );
        if r.is_none() {
            eprintln!("nats-server not installed: leaf node test skipped");
        }
        r
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn leaf_of(urls: &[String], f: impl FnOnce(&mut LeafRemote)) -> TestServer {
    let mut remote = LeafRemote {
        urls: urls.to_vec(),
        ..LeafRemote::default()
    };
    f(&mut remote);
    TestServer::with(move |o| {
        o.leafnodes = Some(LeafOptions {
            remotes: vec![remote],
            reconnect: Duration::from_millis(250),
            ..LeafOptions::default()
        })
    })
}

fn wait_links(s: &TestServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.state.leafs.count() != n {
        assert!(Instant::now() < deadline, "{n} leaf links not up in 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

async fn connect(url: &str) -> async_nats::Client {
    async_nats::connect(url).await.expect("connect")
}

/// Publishes `probe` until `sub` gets it: interest has crossed the link.
async fn until_crossed(nc: &async_nats::Client, sub: &mut async_nats::Subscriber, probe: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        nc.publish(probe.to_string(), Bytes::from_static(b"probe"))
            .await
            .expect("publish");
        nc.flush().await.expect("flush");
        match tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            Ok(Some(m)) if m.subject.as_str() == probe => {
                // Drain other probes already in flight.
                while let Ok(Some(_)) =
                    tokio::time::timeout(Duration::from_millis(100), sub.next()).await
                {
                }
                return;
            }
            _ => assert!(
                Instant::now() < deadline,
                "interest in {probe} did not cross"
            ),
        }
    }
}

async fn recv(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("message in time")
        .expect("subscription open")
}

/// Counts what `sub` gets until it has been quiet for 300 ms.
async fn count(sub: &mut async_nats::Subscriber) -> usize {
    let mut n = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        n += 1;
    }
    n
}

#[tokio::test]
async fn leaf_pub_sub_both_ways_wildcards_and_headers() {
    let lp = free_port();
    let Some(hub) = Reference::hub(lp, "") else {
        return;
    };
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |_| {});
    wait_links(&leaf, 1);
    let h = connect(&hub.url()).await;
    let l = connect(&leaf.url()).await;

    // natrium → hub, wildcard subscription on the hub, headers kept.
    let mut hs = h.subscribe("up.*").await.expect("sub");
    h.flush().await.expect("flush");
    until_crossed(&l, &mut hs, "up.probe").await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Leaf", "yes");
    l.publish_with_headers("up.x", headers, Bytes::from_static(b"from leaf"))
        .await
        .expect("hpub");
    let m = recv(&mut hs).await;
    assert_eq!(m.subject.as_str(), "up.x");
    assert_eq!(&m.payload[..], b"from leaf");
    assert_eq!(
        m.headers
            .as_ref()
            .and_then(|h| h.get("X-Leaf"))
            .map(|v| v.as_str()),
        Some("yes")
    );

    // hub → natrium, full wildcard; every message exactly once.
    let mut ls = l.subscribe("down.>").await.expect("sub");
    l.flush().await.expect("flush");
    until_crossed(&h, &mut ls, "down.probe").await;
    for i in 0..50 {
        h.publish(format!("down.a.{i}"), Bytes::from_static(b"m"))
            .await
            .expect("pub");
    }
    h.flush().await.expect("flush");
    assert_eq!(count(&mut ls).await, 50);
    // Headers from the hub arrive too (the leaf form of HMSG).
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Hub", "1");
    h.publish_with_headers("down.h", headers, Bytes::from_static(b"hdr"))
        .await
        .expect("hpub");
    let m = recv(&mut ls).await;
    assert_eq!(&m.payload[..], b"hdr");
    assert_eq!(
        m.headers
            .as_ref()
            .and_then(|h| h.get("X-Hub"))
            .map(|v| v.as_str()),
        Some("1")
    );
    // Two overlapping hub subscriptions still get one copy each, not two per link.
    let mut hs2 = h.subscribe("up.>").await.expect("sub");
    h.flush().await.expect("flush");
    until_crossed(&l, &mut hs2, "up.probe2").await;
    let _ = count(&mut hs).await;
    for _ in 0..20 {
        l.publish("up.y", Bytes::from_static(b"m"))
            .await
            .expect("pub");
    }
    l.flush().await.expect("flush");
    assert_eq!(count(&mut hs).await, 20);
    assert_eq!(count(&mut hs2).await, 20);
}

#[tokio::test]
async fn leaf_queue_groups_deliver_each_message_once() {
    let lp = free_port();
    let Some(hub) = Reference::hub(lp, "") else {
        return;
    };
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |_| {});
    wait_links(&leaf, 1);
    let h = connect(&hub.url()).await;
    let l = connect(&leaf.url()).await;
    let mut hq = h.queue_subscribe("work.*", "q".into()).await.expect("qsub");
    let mut lq = l.queue_subscribe("work.*", "q".into()).await.expect("qsub");
    h.flush().await.expect("flush");
    l.flush().await.expect("flush");
    // Wait until the hub's member is known on natrium's side.
    leaf.wait_for_interest(b"work.x");
    std::thread::sleep(Duration::from_millis(300));

    // From natrium: the local member is preferred.
    for _ in 0..40 {
        l.publish("work.x", Bytes::from_static(b"m"))
            .await
            .expect("pub");
    }
    l.flush().await.expect("flush");
    assert_eq!(count(&mut lq).await, 40);
    assert_eq!(count(&mut hq).await, 0);

    // From the hub: split between its member and natrium's, each once.
    for _ in 0..100 {
        h.publish("work.y", Bytes::from_static(b"m"))
            .await
            .expect("pub");
    }
    h.flush().await.expect("flush");
    let (a, b) = (count(&mut hq).await, count(&mut lq).await);
    assert_eq!(a + b, 100, "hub {a} + leaf {b}");

    // No local member left: natrium falls back across the link.
    lq.unsubscribe().await.expect("unsub");
    l.flush().await.expect("flush");
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..30 {
        l.publish("work.z", Bytes::from_static(b"m"))
            .await
            .expect("pub");
    }
    l.flush().await.expect("flush");
    assert_eq!(count(&mut hq).await, 30);
}

#[tokio::test]
async fn leaf_request_reply_and_no_responders_across() {
    let lp = free_port();
    let Some(hub) = Reference::hub(lp, "") else {
        return;
    };
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |_| {});
    wait_links(&leaf, 1);
    let h = connect(&hub.url()).await;
    let l = connect(&leaf.url()).await;

    // A responder on natrium, a requester on the hub.
    let mut svc = l.subscribe("svc.leaf").await.expect("sub");
    let lc = l.clone();
    tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            if let Some(reply) = m.reply {
                let _ = lc.publish(reply, Bytes::from_static(b"leaf says hi")).await;
            }
        }
    });
    l.flush().await.expect("flush");
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        match tokio::time::timeout(Duration::from_secs(1), h.request("svc.leaf", "q".into())).await
        {
            Ok(Ok(m)) => break m,
            _ => assert!(Instant::now() < deadline, "no answer across the link"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(&answer.payload[..], b"leaf says hi");

    // A responder on the hub, a requester on natrium.
    let mut hsvc = h.subscribe("svc.hub").await.expect("sub");
    let hc = h.clone();
    tokio::spawn(async move {
        while let Some(m) = hsvc.next().await {
            if let Some(reply) = m.reply {
                let _ = hc.publish(reply, Bytes::from_static(b"hub says hi")).await;
            }
        }
    });
    h.flush().await.expect("flush");
    leaf.wait_for_interest(b"svc.hub");
    let m = tokio::time::timeout(Duration::from_secs(5), l.request("svc.hub", "q".into()))
        .await
        .expect("in time")
        .expect("answer");
    assert_eq!(&m.payload[..], b"hub says hi");

    // Nobody on either side: no responders, at once.
    let err = tokio::time::timeout(Duration::from_secs(5), l.request("svc.none", "q".into()))
        .await
        .expect("in time")
        .expect_err("no responders");
    assert_eq!(
        err.kind(),
        async_nats::client::RequestErrorKind::NoResponders
    );
}

#[tokio::test]
async fn leaf_heals_after_hub_restart_and_serves_locally_meanwhile() {
    let lp = free_port();
    let Some(hub) = Reference::hub(lp, "") else {
        return;
    };
    let hub_port = hub.port;
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |_| {});
    wait_links(&leaf, 1);
    let l = connect(&leaf.url()).await;
    let mut ls = l.subscribe("heal.>").await.expect("sub");
    l.flush().await.expect("flush");

    drop(hub);
    wait_links(&leaf, 0);
    // Local service goes on while the hub is away.
    l.publish("heal.local", Bytes::from_static(b"x"))
        .await
        .expect("pub");
    assert_eq!(recv(&mut ls).await.subject.as_str(), "heal.local");

    let hub = Reference::start(hub_port, &format!("leafnodes {{ port: {lp} }}")).expect("restart");
    wait_links(&leaf, 1);
    let h = connect(&hub.url()).await;
    // Interest was re-sent after the reconnect.
    until_crossed(&h, &mut ls, "heal.probe").await;
    h.publish("heal.remote", Bytes::from_static(b"y"))
        .await
        .expect("pub");
    h.flush().await.expect("flush");
    assert_eq!(recv(&mut ls).await.subject.as_str(), "heal.remote");
    assert!(
        leaf.state
            .leafs
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
}

#[tokio::test]
async fn leaf_credentials_refused_then_accepted() {
    let lp = free_port();
    let auth = "authorization { user: leafy, password: s3cret }";
    let Some(hub) = Reference::hub(lp, auth) else {
        return;
    };
    // Wrong password: refused, retried with back-off, never a tight loop.
    let bad = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |r| {
        r.user = Some("leafy".into());
        r.password = Some("wrong".into());
    });
    std::thread::sleep(Duration::from_secs(3));
    let tries = bad
        .state
        .leafs
        .connects
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!((1..=6).contains(&tries), "{tries} attempts in 3 s");
    drop(bad);

    // Right credentials in the URL: the link comes up and works.
    let good = leaf_of(
        &[format!("nats-leaf://leafy:s3cret@127.0.0.1:{lp}")],
        |_| {},
    );
    wait_links(&good, 1);
    let h = connect(&hub.url()).await;
    let l = connect(&good.url()).await;
    let mut ls = l.subscribe("auth.ok").await.expect("sub");
    l.flush().await.expect("flush");
    until_crossed(&h, &mut ls, "auth.ok").await;
}

#[tokio::test]
async fn natrium_hub_with_nats_server_leaf() {
    let lp = free_port();
    let hub = TestServer::with(|o| {
        o.leafnodes = Some(LeafOptions {
            host: "127.0.0.1".into(),
            port: Some(lp),
            ..LeafOptions::default()
        })
    });
    let Some(leaf) = Reference::start(
        free_port(),
        &format!("leafnodes {{ remotes = [ {{ url: \"nats-leaf://127.0.0.1:{lp}\" }} ] }}"),
    ) else {
        eprintln!("nats-server not installed: leaf node test skipped");
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

#[tokio::test]
async fn leaf_client_uses_the_hubs_jetstream() {
    use async_nats::jetstream::{self, consumer::pull, stream};
    let lp = free_port();
    let store = tempdir::Dir::new();
    let js_conf = format!(
        "\njetstream {{ store_dir: {:?} }}",
        store.0.display().to_string()
    );
    let Some(hub) = Reference::start(
        free_port(),
        &format!("leafnodes {{\n port: {lp}\n}}{js_conf}"),
    ) else {
        eprintln!("nats-server not installed: leaf node test skipped");
        return;
    };
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |_| {});
    wait_links(&leaf, 1);
    leaf.wait_for_interest(b"$JS.API.INFO");
    let l = connect(&leaf.url()).await;
    let js = jetstream::new(l.clone());
    let orders = js
        .create_stream(stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })
        .await
        .expect("create stream through the hub");
    leaf.wait_for_interest(b"orders.1");
    for i in 0..10 {
        let ack = js
            .publish(format!("orders.{i}"), Bytes::from(format!("order {i}")))
            .await
            .expect("publish")
            .await
            .expect("ack");
        assert_eq!(ack.stream, "ORDERS");
    }
    let consumer = orders
        .create_consumer(pull::Config {
            durable_name: Some("worker".into()),
            ..Default::default()
        })
        .await
        .expect("durable consumer");
    let mut got = 0;
    let mut batch = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(3))
        .messages()
        .await
        .expect("fetch");
    while let Some(m) = batch.next().await {
        let m = m.expect("message");
        m.ack().await.expect("ack");
        got += 1;
    }
    assert_eq!(got, 10);
    // The hub's client sees the same stream.
    let h = connect(&hub.url()).await;
    let info = jetstream::new(h)
        .get_stream("ORDERS")
        .await
        .expect("stream on the hub")
        .cached_info()
        .state
        .messages;
    assert_eq!(info, 10);
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
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(leaf.state.leafs.count(), 1);
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
    assert_eq!(count(&mut ls).await, 50);
    assert_eq!(count(&mut hs).await, 50);
}

#[tokio::test]
async fn leaf_honours_the_hubs_max_payload() {
    let lp = free_port();
    let Some(hub) = Reference::start(
        free_port(),
        &format!("max_payload: 1024\nleafnodes {{\n port: {lp}\n}}"),
    ) else {
        eprintln!("nats-server not installed: leaf node test skipped");
        return;
    };
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |_| {});
    wait_links(&leaf, 1);
    let h = connect(&hub.url()).await;
    let l = connect(&leaf.url()).await;
    let mut hs = h.subscribe("big.>").await.expect("sub");
    h.flush().await.expect("flush");
    until_crossed(&l, &mut hs, "big.probe").await;
    l.publish("big.one", Bytes::from(vec![b'x'; 4000]))
        .await
        .expect("pub");
    l.publish("big.small", Bytes::from_static(b"ok"))
        .await
        .expect("pub");
    l.flush().await.expect("flush");
    // The oversized message stays home; the link stays up.
    assert_eq!(recv(&mut hs).await.subject.as_str(), "big.small");
    assert_eq!(leaf.state.leafs.count(), 1);
}
