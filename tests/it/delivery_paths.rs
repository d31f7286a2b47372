//! End to end through the server: a subscriber that alternates between
//! reading flat out and not reading at all gets every message once and in
//! order. While it keeps up, the publisher's task writes its queue directly;
//! while it lags, its socket would block and its writer task takes over (the
//! unit test `direct_and_writer_paths_keep_order_without_loss` counts both).

use std::io::Read;
use std::time::{Duration, Instant};

use crate::common::TestServer;

#[test]
fn lagging_and_catching_up_subscriber_loses_nothing() {
    const MSGS: u32 = 100_000;
    let server = TestServer::with(|o| o.max_pending = 256 << 20);
    let mut sub = server.raw();
    sub.send(b"CONNECT {\"verbose\":false}\r\nSUB seq 1\r\nPING\r\n");
    assert_eq!(sub.read_line(), "PONG");
    server.wait_for_interest(b"seq");

    let reader = std::thread::spawn(move || {
        sub.sock
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let (mut next, mut pending) = (0u32, Vec::new());
        let mut buf = vec![0u8; 4096];
        let mut phase = Instant::now();
        while next < MSGS {
            if phase.elapsed() > Duration::from_millis(5) {
                std::thread::sleep(Duration::from_millis(5));
                phase = Instant::now();
            }
            let n = sub.sock.read(&mut buf).expect("read");
            assert!(n > 0, "closed after {next} messages");
            pending.extend_from_slice(&buf[..n]);
            // "MSG seq 1 8\r\n" + 8 digits + "\r\n"; a server PING may come between.
            loop {
                if pending.starts_with(b"PING\r\n") {
                    pending.drain(..6);
                    continue;
                }
                if pending.len() < 23 {
                    break;
                }
                assert_eq!(&pending[..13], b"MSG seq 1 8\r\n");
                let got: u32 = std::str::from_utf8(&pending[13..21])
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(got, next, "out of order or lost");
                next += 1;
                pending.drain(..23);
            }
        }
        next
    });

    let mut publisher = server.raw();
    publisher.send(b"CONNECT {\"verbose\":false}\r\n");
    let mut chunk = Vec::new();
    for i in 0..MSGS {
        chunk.extend_from_slice(format!("PUB seq 8\r\n{i:08}\r\n").as_bytes());
        if chunk.len() > 16 * 1024 {
            publisher.send(&chunk);
            chunk.clear();
        }
    }
    publisher.send(&chunk);
    publisher.send(b"PING\r\n");
    assert_eq!(publisher.read_line(), "PONG");
    assert_eq!(reader.join().unwrap(), MSGS);
}
