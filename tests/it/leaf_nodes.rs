//! natrium as the leaf of a nats-server hub: pub/sub both ways, wildcards,
//! headers, queue groups, request/reply, no_responders, hub restart,
//! refused credentials, JetStream through the hub, the hub's max_payload.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use crate::common::TestServer;
use crate::leaf_support::*;

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

/// A nats-server hub with JetStream (`extra` inside its `jetstream` block)
/// and natrium as its leaf, linked; `None` without a reference binary. The
/// store directory lives as long as the returned guard (dropped last).
fn jetstream_hub_and_leaf(extra: &str) -> Option<(tempdir::Dir, Reference, TestServer)> {
    let lp = free_port();
    let store = tempdir::Dir::new();
    let js_conf = format!(
        "\njetstream {{ store_dir: {:?}{extra} }}",
        store.0.display().to_string()
    );
    let Some(hub) = Reference::start(
        free_port(),
        &format!("leafnodes {{\n port: {lp}\n}}{js_conf}"),
    ) else {
        eprintln!("nats-server not installed: leaf node test skipped");
        return None;
    };
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |_| {});
    wait_links(&leaf, 1);
    Some((store, hub, leaf))
}

#[tokio::test]
async fn leaf_client_uses_the_hubs_jetstream() {
    use async_nats::jetstream::{self, consumer::pull, stream};
    let Some((_store, hub, leaf)) = jetstream_hub_and_leaf("") else {
        return;
    };
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

#[tokio::test]
async fn leaf_of_one_node_reaches_a_three_node_cluster() {
    let ports: Vec<(u16, u16, u16)> = (0..3)
        .map(|_| (free_port(), free_port(), free_port()))
        .collect();
    let mut nodes = Vec::new();
    for (i, (port, route, leaf_port)) in ports.iter().enumerate() {
        let routes: Vec<String> = ports
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, (_, r, _))| format!("\"nats-route://127.0.0.1:{r}\""))
            .collect();
        let conf = format!(
            "cluster {{\n name: hubs\n listen: \"127.0.0.1:{route}\"\n routes: [{}]\n}}\nleafnodes {{\n port: {leaf_port}\n}}",
            routes.join(", ")
        );
        let Some(node) = Reference::start(*port, &conf) else {
            eprintln!("nats-server not installed: leaf node test skipped");
            return;
        };
        nodes.push(node);
    }
    let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{}", ports[0].2)], |_| {});
    wait_links(&leaf, 1);
    let l = connect(&leaf.url()).await;
    let mut hubs = Vec::new();
    for node in &nodes {
        hubs.push(connect(&node.url()).await);
    }
    // natrium → every node, and every node → natrium, each message once.
    let mut back = l.subscribe("from.>").await.expect("sub");
    l.flush().await.expect("flush");
    for (i, h) in hubs.iter().enumerate() {
        let mut sub = h.subscribe(format!("to.{i}")).await.expect("sub");
        h.flush().await.expect("flush");
        until_crossed(&l, &mut sub, &format!("to.{i}")).await;
        for _ in 0..20 {
            l.publish(format!("to.{i}"), Bytes::from_static(b"m"))
                .await
                .expect("pub");
        }
        l.flush().await.expect("flush");
        assert_eq!(count(&mut sub).await, 20, "node {i}");

        until_crossed(h, &mut back, &format!("from.{i}")).await;
        for _ in 0..20 {
            h.publish(format!("from.{i}"), Bytes::from_static(b"m"))
                .await
                .expect("pub");
        }
        h.flush().await.expect("flush");
        assert_eq!(count(&mut back).await, 20, "from node {i}");
    }
    // A queue group with members on node 2 and on natrium: published on
    // node 1, each message reaches exactly one member.
    let mut hq = hubs[2]
        .queue_subscribe("jobs", "workers".into())
        .await
        .expect("qsub");
    let mut lq = l
        .queue_subscribe("jobs", "workers".into())
        .await
        .expect("qsub");
    hubs[2].flush().await.expect("flush");
    l.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..100 {
        hubs[1]
            .publish("jobs", Bytes::from_static(b"j"))
            .await
            .expect("pub");
    }
    hubs[1].flush().await.expect("flush");
    let (a, b) = (count(&mut hq).await, count(&mut lq).await);
    assert_eq!(a + b, 100, "node 2 got {a}, natrium {b}");
}

#[tokio::test]
async fn natrium_restarted_rejoins_the_hub() {
    let lp = free_port();
    let Some(hub) = Reference::hub(lp, "") else {
        return;
    };
    let h = connect(&hub.url()).await;
    let mut hs = h.subscribe("again.>").await.expect("sub");
    h.flush().await.expect("flush");
    for round in 0..2 {
        let leaf = leaf_of(&[format!("nats-leaf://127.0.0.1:{lp}")], |_| {});
        wait_links(&leaf, 1);
        let l = connect(&leaf.url()).await;
        until_crossed(&l, &mut hs, &format!("again.{round}")).await;
        drop(l);
        drop(leaf);
    }
}

/// A hub whose JetStream has a domain: a client of natrium reaches it
/// through `$JS.<domain>.API.…` (async-nats `with_domain`), as through a
/// nats-server leaf.
#[tokio::test]
async fn leaf_client_uses_the_hubs_jetstream_domain() {
    use async_nats::jetstream::{self, stream};
    let Some((_store, _hub, leaf)) = jetstream_hub_and_leaf(", domain: hub") else {
        return;
    };
    leaf.wait_for_interest(b"$JS.hub.API.INFO");
    let l = connect(&leaf.url()).await;
    let js = jetstream::with_domain(l, "hub");
    let mut s = js
        .create_stream(stream::Config {
            name: "DOMAINED".into(),
            subjects: vec!["dom.>".into()],
            ..Default::default()
        })
        .await
        .expect("create stream in the hub's domain");
    leaf.wait_for_interest(b"dom.1");
    let ack = js
        .publish("dom.1", Bytes::from_static(b"x"))
        .await
        .expect("publish")
        .await
        .expect("ack");
    assert_eq!(ack.domain, "hub");
    assert_eq!(s.info().await.expect("info").state.messages, 1);
}
