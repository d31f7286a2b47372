//! Unit tests of the fan-out (`deliver.rs`): the slow-consumer bound only
//! for due deliveries, queue groups across links with outbound rules.

use std::net::SocketAddr;

use bytes::BytesMut;

use super::*;
use crate::conn::{Kind, Subscription};
use crate::options::Options;
use crate::protocol::{Op, Parser};

fn publish(
    fanout: &mut Fanout,
    srv: &ServerState,
    me: &Arc<ConnShared>,
    subject: &str,
    n: usize,
) -> usize {
    let mut buf = BytesMut::from(format!("PUB {subject} {n}\r\n{}\r\n", "x".repeat(n)).as_str());
    let mut parser = Parser::new(4096, 1 << 20);
    let Ok(Some(Op::Pub { frame, args })) = parser.next_op(&mut buf) else {
        panic!("not a PUB");
    };
    fanout.begin_batch(srv);
    let acc = srv.accounts.global().clone();
    let delivered = fanout.publish(srv, &acc, me, true, &Message::new(&frame, &args));
    fanout.end_batch();
    delivered
}

fn subscribe(srv: &ServerState, client: &Arc<ConnShared>, subject: &str, max: u64, delivered: u64) {
    let sub = Arc::new(Subscription::new(
        client.clone(),
        subject.as_bytes(),
        None,
        b"1",
    ));
    sub.max.store(max, Ordering::Relaxed);
    sub.delivered.store(delivered, Ordering::Relaxed);
    srv.accounts
        .global()
        .sublist
        .insert(sub.subject(), None, SubRef(sub.clone()))
        .expect("insert");
}

/// A subscription whose auto-unsubscribe limit is used up (another
/// publisher's delivery got there first) does not receive the message, so
/// it must not cut its connection as a slow consumer either. The bound was
/// once checked before the limit.
#[test]
fn no_slow_consumer_cut_for_a_message_not_due() {
    let opts = Options {
        max_pending: 1000,
        max_payload: 1000,
        ..Options::default()
    };
    let srv = ServerState::new(opts, 4222).expect("state");
    let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let publisher = Arc::new(ConnShared::new(Kind::Client, 1, addr));
    let subscriber = Arc::new(ConnShared::new(Kind::Client, 2, addr));
    subscribe(&srv, &subscriber, "big", 0, 0);
    subscribe(&srv, &subscriber, "spent", 1, 1);
    let mut fanout = Fanout::new(7);

    assert_eq!(publish(&mut fanout, &srv, &publisher, "big", 900), 1);
    assert_eq!(publish(&mut fanout, &srv, &publisher, "spent", 200), 0);
    assert!(
        !subscriber.out.lock().is_closing(),
        "cut for a message it would not get"
    );
    assert_eq!(srv.slow_consumers.load(Ordering::Relaxed), 0);

    // A message that is due and over the bound does cut it, and is counted.
    subscribe(&srv, &subscriber, "due", 0, 0);
    assert_eq!(publish(&mut fanout, &srv, &publisher, "due", 200), 0);
    assert_eq!(
        subscriber.out.lock().close_reason(),
        Some(crate::conn::CloseReason::SlowConsumerPendingBytes)
    );
    assert_eq!(srv.slow_consumers.load(Ordering::Relaxed), 1);
}

/// A queue group served only across links: a link whose outbound rules
/// deny the subject is passed over for one that takes it, whatever
/// member the random start picks.
#[test]
fn queue_group_skips_a_link_that_would_drop_the_message() {
    let srv = ServerState::new(Options::default(), 4222).expect("state");
    let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let publisher = Arc::new(ConnShared::new(Kind::Client, 1, addr));
    let denied = Arc::new(ConnShared::new(Kind::Leaf, 2, addr));
    let allowed = Arc::new(ConnShared::new(Kind::Leaf, 3, addr));
    let rules = crate::options::Permissions {
        subscribe_deny: Some(vec!["work.>".into()]),
        ..Default::default()
    };
    *denied.perms.perms.lock() =
        Some(crate::auth::CompiledPermissions::compile(&rules).expect("rules"));
    denied.delivery_filter.store(true, Ordering::Relaxed);
    for link in [&denied, &allowed] {
        let sub = Arc::new(Subscription::new(
            link.clone(),
            b"work.>",
            Some(b"q"),
            b"work.> q",
        ));
        srv.accounts
            .global()
            .sublist
            .insert(sub.subject(), sub.queue(), SubRef(sub.clone()))
            .expect("insert");
    }
    let mut fanout = Fanout::new(11);
    for _ in 0..32 {
        assert_eq!(publish(&mut fanout, &srv, &publisher, "work.x", 4), 1);
    }
    assert_eq!(allowed.out.lock().out_counts().0, 32);
    assert_eq!(denied.out.lock().out_counts().0, 0);
}
