//! Every slow-consumer path is visible and final: the connection is closed at
//! once, its interest is removed, it is unregistered, `slow_consumers` counts
//! it, `/connz?state=closed` names the reason, and the log says
//! `Slow Consumer Detected`. Healthy clients do not notice.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::cli::ConfiguredServer;
use crate::common::{Raw, TestServer};

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A subscriber that never reads its socket.
fn stuck_subscriber(server: &TestServer, subject: &str) -> Raw {
    let mut stuck = server.raw();
    stuck.send(format!("CONNECT {{\"verbose\":false}}\r\nSUB {subject} 1\r\n").as_bytes());
    assert_eq!(stuck.flush(), "");
    stuck
}

fn flood(publisher: &mut Raw, subject: &str, size: usize, count: usize) {
    let payload = vec![b'x'; size];
    let mut chunk = Vec::new();
    for _ in 0..count {
        chunk.extend_from_slice(format!("PUB {subject} {size}\r\n").as_bytes());
        chunk.extend_from_slice(&payload);
        chunk.extend_from_slice(b"\r\n");
        if chunk.len() > 256 * 1024 {
            publisher.send(&chunk);
            chunk.clear();
        }
    }
    publisher.send(&chunk);
}

fn assert_cut(server: &TestServer, stuck: &mut Raw, reason: &str, remaining: usize) {
    // Counted and unregistered before the subscriber reads anything (reading
    // would drain the socket and let the writer go on).
    wait_until("counted", || {
        server.state.slow_consumers.load(Ordering::Relaxed) == 1
    });
    wait_until("unregistered", || {
        server.state.num_connections() == remaining
    });
    assert!(stuck.closed(), "slow consumer was not disconnected");
    let closed = server.state.closed_connections();
    assert!(
        closed.iter().any(|c| c.reason == Some(reason)),
        "no closed connection with reason {reason:?}: {:?}",
        closed.iter().map(|c| c.reason).collect::<Vec<_>>()
    );
    assert_eq!(
        server.state.accounts.client_subscriptions(),
        0,
        "its interest was not removed"
    );
}

#[test]
fn max_pending_cut_is_final_and_counted() {
    let server = TestServer::with(|o| o.max_pending = 256 * 1024);
    let mut stuck = stuck_subscriber(&server, "flood");
    let mut publisher = server.raw();
    publisher.send(b"CONNECT {\"verbose\":false}\r\n");
    flood(&mut publisher, "flood", 1024, 20_000);
    assert_cut(&server, &mut stuck, "Slow Consumer (Pending Bytes)", 1);
    // The publisher is fine.
    assert_eq!(publisher.flush().replace("PING\n", ""), "");
}

#[test]
fn write_deadline_cut_is_final_and_counted() {
    let server = TestServer::with(|o| {
        o.max_pending = 512 * 1024 * 1024;
        o.write_deadline = Duration::from_millis(300);
    });
    let mut stuck = stuck_subscriber(&server, "flood");
    let mut publisher = server.raw();
    publisher.send(b"CONNECT {\"verbose\":false}\r\n");
    // Far more than the socket buffers hold, far less than max_pending: only
    // the write deadline can cut this subscriber.
    flood(&mut publisher, "flood", 64 * 1024, 1024);
    assert_cut(&server, &mut stuck, "Slow Consumer (Write Deadline)", 1);
    assert_eq!(publisher.flush().replace("PING\n", ""), "");
}

#[test]
fn slow_consumer_is_logged_as_nats_server_does() {
    let server = ConfiguredServer::start("slowlog", "max_payload: 65536\nmax_pending: 262144\n");
    let addr = format!("127.0.0.1:{}", server.port).parse().expect("addr");
    let mut stuck = Raw::connect(addr);
    stuck.read_line();
    stuck.send(b"CONNECT {\"verbose\":false}\r\nSUB flood 1\r\n");
    assert_eq!(stuck.flush(), "");
    let mut publisher = Raw::connect(addr);
    publisher.read_line();
    publisher.send(b"CONNECT {\"verbose\":false}\r\n");
    flood(&mut publisher, "flood", 1024, 20_000);
    assert!(stuck.closed(), "slow consumer was not disconnected");
    wait_until("the log line", || {
        server.log_text().contains("Slow Consumer Detected")
    });
}

/// Thousands of connections at once (a listen backlog like nats-server's):
/// every one gets its INFO.
#[test]
fn connection_storm_every_client_gets_info() {
    natrium::server::raise_fd_limit();
    let soft = natrium::server::fd_limit().unwrap_or(1024);
    // Two descriptors per connection live in this process (client and server).
    let n = 4000.min((soft.saturating_sub(256) / 2) as usize);
    assert!(n >= 500, "descriptor limit {soft} too low for a storm test");
    let server = TestServer::with(|o| o.max_connections = 100_000);
    let addr = server.addr;
    let per_thread = n / 8;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let socks: Vec<_> = (0..per_thread)
                    .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
                    .collect();
                let mut missing = 0;
                for s in socks {
                    let mut r = Raw::from_stream(s, Duration::from_secs(20));
                    if !r.read_line().starts_with("INFO {") {
                        missing += 1;
                    }
                }
                missing
            })
        })
        .collect();
    let missing: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    assert_eq!(
        missing,
        0,
        "{missing} of {} connections got no INFO",
        per_thread * 8
    );
}
