//! Real-client tests: the official Rust client `async-nats` against natrium.

use crate::common;
use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

async fn connect(server: &common::TestServer) -> async_nats::Client {
    async_nats::connect(server.url()).await.expect("connect")
}

async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("message in time")
        .expect("subscription open")
}

#[tokio::test]
async fn pub_sub_round_trip() {
    let server = common::TestServer::start();
    let nc = connect(&server).await;
    let mut sub = nc.subscribe("greet.joe").await.unwrap();
    common::round_trip(&nc).await;
    nc.publish("greet.joe", "hello".into()).await.unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.subject.as_str(), "greet.joe");
    assert_eq!(m.payload, Bytes::from("hello"));
}

#[tokio::test]
async fn wildcards_star_and_full() {
    let server = common::TestServer::start();
    let nc = connect(&server).await;
    let mut star = nc.subscribe("a.*.c").await.unwrap();
    let mut full = nc.subscribe("a.>").await.unwrap();
    common::round_trip(&nc).await;
    for s in ["a.b.c", "a.b", "a.x.y.z", "b.b.c"] {
        nc.publish(s, s.into()).await.unwrap();
    }
    common::round_trip(&nc).await;
    assert_eq!(next(&mut star).await.subject.as_str(), "a.b.c");
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next(&mut full).await.subject.to_string());
    }
    assert_eq!(got, ["a.b.c", "a.b", "a.x.y.z"]);
    // Nothing more arrives for `a.*.c`.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), star.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn queue_group_of_three_shares_exactly() {
    let server = common::TestServer::start();
    let nc = connect(&server).await;
    let mut members = Vec::new();
    for _ in 0..3 {
        let c = connect(&server).await;
        let s = c.queue_subscribe("work", "workers".into()).await.unwrap();
        common::round_trip(&c).await;
        members.push((c, s));
    }
    const N: usize = 3000;
    for i in 0..N {
        nc.publish("work", i.to_string().into()).await.unwrap();
    }
    common::round_trip(&nc).await;
    let mut seen = HashSet::new();
    let mut per_member = Vec::new();
    for (_, sub) in members.iter_mut() {
        let mut count = 0;
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
            assert!(seen.insert(m.payload.clone()), "duplicate delivery");
            count += 1;
        }
        per_member.push(count);
    }
    assert_eq!(seen.len(), N, "every message delivered exactly once");
    assert!(
        per_member.iter().all(|c| *c > 0),
        "every member got some: {per_member:?}"
    );
}

#[tokio::test]
async fn request_reply() {
    let server = common::TestServer::start();
    let responder = connect(&server).await;
    let mut svc = responder.subscribe("svc.echo").await.unwrap();
    common::round_trip(&responder).await;
    tokio::spawn(async move {
        while let Some(m) = svc.next().await {
            if let Some(reply) = m.reply {
                responder.publish(reply, m.payload).await.unwrap();
            }
        }
    });
    let nc = connect(&server).await;
    for i in 0..20 {
        let r = nc
            .request("svc.echo", format!("ping {i}").into())
            .await
            .unwrap();
        assert_eq!(r.payload, Bytes::from(format!("ping {i}")));
    }
}

#[tokio::test]
async fn no_responders_is_reported() {
    let server = common::TestServer::start();
    let nc = connect(&server).await;
    let err = nc.request("nobody.home", "x".into()).await.unwrap_err();
    assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);
}

#[tokio::test]
async fn headers_round_trip() {
    let server = common::TestServer::start();
    let nc = connect(&server).await;
    let mut sub = nc.subscribe("h").await.unwrap();
    common::round_trip(&nc).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Trace", "abc");
    headers.append("X-Multi", "1");
    headers.append("X-Multi", "2");
    nc.publish_with_headers("h", headers, "body".into())
        .await
        .unwrap();
    let m = next(&mut sub).await;
    let h = m.headers.expect("headers");
    assert_eq!(h.get("X-Trace").map(|v| v.as_str()), Some("abc"));
    let multi: Vec<_> = h
        .get_all("X-Multi")
        .map(|v| v.as_str().to_string())
        .collect();
    assert_eq!(multi, ["1", "2"]);
    assert_eq!(m.payload, Bytes::from("body"));
}

#[tokio::test]
async fn one_mib_payload() {
    let server = common::TestServer::start();
    let nc = connect(&server).await;
    let mut sub = nc.subscribe("big").await.unwrap();
    common::round_trip(&nc).await;
    let payload: Bytes = (0..1024 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    nc.publish("big", payload.clone()).await.unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.payload.len(), payload.len());
    assert_eq!(m.payload, payload);
}

#[tokio::test]
async fn over_max_payload_is_rejected() {
    let server = common::TestServer::with(|o| o.max_payload = 1024);
    let nc = connect(&server).await;
    assert_eq!(nc.server_info().max_payload, 1024);
    let err = nc.publish("big", vec![0u8; 2048].into()).await;
    assert!(
        err.is_err(),
        "client refuses a payload over the server's max_payload"
    );
    // The raw protocol path closes with the reference error.
    let mut raw = server.raw();
    raw.send(b"PUB big 2048\r\n");
    raw.expect(b"-ERR 'Maximum Payload Violation'\r\n");
    assert!(raw.closed());
}

#[tokio::test]
async fn slow_consumer_is_cut_while_healthy_subscriber_gets_everything() {
    let server = common::TestServer::with(|o| o.max_pending = 256 * 1024);
    // A subscriber that never reads.
    let mut stuck = server.raw();
    stuck.send(b"CONNECT {\"verbose\":false}\r\nSUB flood 1\r\n");
    assert_eq!(stuck.flush(), "");
    let healthy = connect(&server).await;
    let mut sub = healthy.subscribe("flood").await.unwrap();
    common::round_trip(&healthy).await;
    let publisher = connect(&server).await;
    const N: usize = 100_000;
    let payload = Bytes::from(vec![b'p'; 128]);
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while n < N {
            match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
                Ok(Some(_)) => n += 1,
                _ => break,
            }
        }
        n
    });
    for _ in 0..N {
        publisher.publish("flood", payload.clone()).await.unwrap();
    }
    common::round_trip(&publisher).await;
    assert_eq!(reader.await.unwrap(), N, "healthy subscriber lost messages");
    assert!(stuck.closed(), "slow consumer was not disconnected");
    assert!(
        server
            .state
            .slow_consumers
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}

#[tokio::test]
async fn a_thousand_connections_subscribe_and_receive() {
    let server = common::TestServer::start();
    let mut subs = Vec::new();
    for i in 0..1000 {
        let c = connect(&server).await;
        let s = c.subscribe(format!("conn.{i}")).await.unwrap();
        subs.push((c, s));
    }
    for (c, _) in &subs {
        common::round_trip(c).await;
    }
    let publisher = connect(&server).await;
    for i in 0..1000 {
        publisher
            .publish(format!("conn.{i}"), "hi".into())
            .await
            .unwrap();
    }
    publisher.publish("conn.all", "x".into()).await.unwrap();
    common::round_trip(&publisher).await;
    for (i, (_, s)) in subs.iter_mut().enumerate() {
        let m = next(s).await;
        assert_eq!(m.subject.as_str(), format!("conn.{i}"));
    }
    assert_eq!(server.state.num_connections(), 1001);
}
