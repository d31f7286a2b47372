//! Shared test harness: an in-process natrium on a free port, on its own runtime
//! thread, plus raw-socket helpers.
#![allow(dead_code)]

pub mod certs;
pub mod server;

pub use server::TestServer;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

impl TestServer {
    /// A raw client that has read the INFO line.
    pub fn raw(&self) -> Raw {
        let mut r = Raw::connect(self.addr);
        let info = r.read_line();
        assert!(info.starts_with("INFO {"), "expected INFO, got {info:?}");
        r
    }
}

/// A blocking raw-protocol client with a read timeout.
pub struct Raw {
    pub sock: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        sock.set_nodelay(true).expect("nodelay");
        Raw {
            sock,
            buf: Vec::new(),
        }
    }

    /// Wraps an already connected socket (storm tests connect first, read later).
    pub fn from_stream(sock: TcpStream, timeout: Duration) -> Raw {
        sock.set_read_timeout(Some(timeout)).expect("timeout");
        Raw {
            sock,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).expect("write");
    }

    /// Sends one byte at a time (split reads everywhere).
    pub fn send_bytewise(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.sock.write_all(&[*b]).expect("write");
            self.sock.flush().expect("flush");
        }
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 65536];
        match self.sock.read(&mut tmp) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            Err(_) => false,
        }
    }

    /// Next CRLF-terminated line, without the CRLF; "" if the connection closed.
    pub fn read_line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                return String::from_utf8_lossy(&line[..i]).into_owned();
            }
            if !self.fill() {
                return String::new();
            }
        }
    }

    /// Exactly `n` bytes (a payload plus its CRLF, say).
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            if !self.fill() {
                break;
            }
        }
        let n = n.min(self.buf.len());
        self.buf.drain(..n).collect()
    }

    /// Reads everything until `expected` has arrived, or the timeout.
    pub fn expect(&mut self, expected: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.buf.len() < expected.len() && Instant::now() < deadline {
            if !self.fill() {
                break;
            }
        }
        let got = self.read_exact(expected.len());
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "unexpected bytes from server"
        );
    }

    /// Skips server PINGs (answering them) and returns the next other line.
    pub fn next_non_ping(&mut self) -> String {
        loop {
            let l = self.read_line();
            if l == "PING" {
                self.send(b"PONG\r\n");
                continue;
            }
            return l;
        }
    }

    /// True once the server has closed the connection (reads until EOF).
    pub fn closed(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let mut tmp = [0u8; 4096];
            match self.sock.read(&mut tmp) {
                Ok(0) => return true,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
        false
    }

    /// Round trip: PING, wait for PONG; returns everything received before it.
    pub fn flush(&mut self) -> String {
        self.send(b"PING\r\n");
        let mut before = String::new();
        loop {
            let l = self.read_line();
            if l == "PONG" || l.is_empty() {
                return before;
            }
            before.push_str(&l);
            before.push('\n');
        }
    }
}

impl Raw {
    /// Next CRLF-terminated line without the CRLF, or `None` once the
    /// connection closed (unlike `read_line`, an empty line is `Some("")`).
    pub fn try_read_line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                return Some(String::from_utf8_lossy(&line[..i]).into_owned());
            }
            if !self.fill() {
                return None;
            }
        }
    }
}

/// A server-side barrier for one async-nats client: returns once the server has
/// processed everything this client sent before (its SUBs are in the interest
/// graph). `Client::flush` only flushes the client's socket buffer, so it is not
/// enough before another connection publishes.
pub async fn round_trip(nc: &async_nats::Client) {
    use futures::StreamExt;
    let inbox = nc.new_inbox();
    let mut sub = nc
        .subscribe(inbox.clone())
        .await
        .expect("barrier subscribe");
    nc.publish(inbox, bytes::Bytes::new())
        .await
        .expect("barrier publish");
    tokio::time::timeout(std::time::Duration::from_secs(5), sub.next())
        .await
        .expect("barrier round trip in time")
        .expect("barrier subscription open");
    let _ = sub.unsubscribe().await;
}
