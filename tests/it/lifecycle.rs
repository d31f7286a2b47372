//! Reload and lame duck mode, driven through the server's control handle and
//! observed by real clients.

use crate::common;
use std::time::Duration;

use futures::StreamExt;

#[test]
fn reload_changes_max_payload_for_a_connected_client() {
    let server = common::TestServer::with(|o| o.max_payload = 1024);
    let mut sub = server.raw();
    sub.send(b"CONNECT {\"verbose\":false}\r\nSUB big 1\r\n");
    assert_eq!(sub.flush(), "");
    let mut publisher = server.raw();
    publisher.send(b"CONNECT {\"verbose\":false}\r\n");
    assert_eq!(publisher.flush(), "");

    let loaded_at_start = server.state.config_load_time();
    std::thread::sleep(Duration::from_millis(5));
    let mut opts = (**server.state.opts()).clone();
    opts.max_payload = 4096;
    server.control.reload(opts);
    for _ in 0..100 {
        if server.state.opts().max_payload == 4096 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let payload = vec![b'z'; 2000];
    publisher.send(b"PUB big 2000\r\n");
    publisher.send(&payload);
    publisher.send(b"\r\n");
    assert_eq!(publisher.flush(), "", "2000 B accepted after the reload");
    // `/varz` `config_load_time` moves with an applied reload.
    assert!(server.state.config_load_time() > loaded_at_start);
    assert_eq!(sub.read_line(), "MSG big 1 2000");
    assert_eq!(sub.read_exact(2002)[..2000], payload[..]);
    // New clients see the new limit in INFO.
    let mut fresh = common::Raw::connect(server.addr);
    assert!(fresh.read_line().contains("\"max_payload\":4096"));
}

#[test]
fn invalid_reload_keeps_the_old_configuration() {
    let server = common::TestServer::with(|o| o.max_payload = 1024);
    let mut opts = (**server.state.opts()).clone();
    opts.max_payload = 10_000;
    opts.max_pending = 5_000;
    server.control.reload(opts);
    // A valid control message after it proves the first was processed.
    let mut ok = (**server.state.opts()).clone();
    ok.server_name = Some("after".into());
    server.control.reload(ok);
    for _ in 0..100 {
        if server.state.opts().server_name.as_deref() == Some("after") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.state.opts().server_name.as_deref(), Some("after"));
    assert_eq!(server.state.opts().max_payload, 1024);
    let mut c = server.raw();
    c.send(b"CONNECT {\"verbose\":false}\r\nPUB x 2000\r\n");
    c.expect(b"-ERR 'Maximum Payload Violation'\r\n");
}

#[tokio::test]
async fn lame_duck_is_announced_then_clients_are_closed() {
    let server = common::TestServer::with(|o| {
        o.lame_duck_grace_period = Duration::from_millis(300);
        o.lame_duck_duration = Duration::from_millis(400);
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let nc = async_nats::ConnectOptions::new()
        .max_reconnects(Some(0))
        .event_callback(move |e| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(e);
            }
        })
        .connect(server.url())
        .await
        .expect("connect");
    let mut sub = nc.subscribe("still.works").await.unwrap();
    nc.flush().await.unwrap();
    // Raw client: sees INFO with "ldm":true.
    let mut raw = server.raw();
    raw.send(b"CONNECT {\"verbose\":false}\r\n");
    assert_eq!(raw.flush(), "");

    server.control.lame_duck();
    let line = tokio::task::spawn_blocking(move || {
        let l = raw.next_non_ping();
        (l, raw)
    })
    .await
    .unwrap();
    assert!(
        line.0.starts_with("INFO ") && line.0.contains("\"ldm\":true"),
        "{}",
        line.0
    );
    // Clients keep working during the grace period.
    nc.publish("still.works", "x".into()).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(2), sub.next()).await;
    assert!(matches!(m, Ok(Some(_))));
    // The client learns about lame duck mode, then gets disconnected.
    let mut saw_ldm = false;
    let mut disconnected = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !(saw_ldm && disconnected) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(async_nats::Event::LameDuckMode)) => saw_ldm = true,
            Ok(Some(async_nats::Event::Disconnected)) => disconnected = true,
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    assert!(saw_ldm, "client saw lame duck mode");
    assert!(disconnected, "client was closed");
    let mut raw = line.1;
    assert!(raw.closed());
    // New connections are refused once lame duck mode began.
    assert!(std::net::TcpStream::connect(server.addr).is_err());
}

#[test]
fn unanswered_server_pings_close_a_stale_connection() {
    let server = common::TestServer::with(|o| {
        o.ping_interval = Duration::from_millis(100);
        o.ping_max = 2;
    });
    let mut quiet = server.raw();
    quiet.send(b"CONNECT {\"verbose\":false}\r\n");
    // A client answering PINGs stays connected meanwhile.
    let mut lively = server.raw();
    lively.send(b"CONNECT {\"verbose\":false}\r\n");
    for _ in 0..2 {
        assert_eq!(lively.read_line(), "PING");
        lively.send(b"PONG\r\n");
        assert_eq!(quiet.read_line(), "PING");
    }
    assert_eq!(quiet.read_line(), "-ERR 'Stale Connection'");
    assert!(quiet.closed());
    for _ in 0..3 {
        assert_eq!(lively.read_line(), "PING");
        lively.send(b"PONG\r\n");
    }
    lively.send(b"PING\r\n");
    assert_eq!(
        lively.next_non_ping(),
        "PONG",
        "the answering client is still served"
    );
}
