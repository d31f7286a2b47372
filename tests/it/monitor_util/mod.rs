//! Test support for the monitoring endpoints: runs `natrium::monitor::serve`
//! on its own runtime and speaks just enough HTTP/1.1 over a tokio `TcpStream`
//! to GET a path (no HTTP client dependency).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use natrium::server::ServerState;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A monitoring listener on 127.0.0.1:<random>, served until dropped.
pub struct Monitor {
    rt: tokio::runtime::Runtime,
    pub addr: SocketAddr,
}

/// One HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Monitor {
    pub fn start(state: Arc<ServerState>) -> Monitor {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind monitor");
        let addr = listener.local_addr().expect("addr");
        rt.spawn(natrium::monitor::serve(state, Some(listener)));
        Monitor { rt, addr }
    }

    /// GET `path`, returning status, headers and (de-chunked) body.
    pub fn get(&self, path: &str) -> Reply {
        let addr = self.addr;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        let raw = self.rt.block_on(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.write_all(req.as_bytes()).await.expect("write");
            let mut buf = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
                .await
                .expect("response in time")
                .expect("read");
            buf
        });
        parse(&raw)
    }

    /// GET `path`, asserting 200 and a JSON body, decoded into `T`.
    pub fn json<T: DeserializeOwned>(&self, path: &str) -> T {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", r.body))
    }
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body: String::from_utf8(body).expect("utf-8 body"),
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").expect("chunk size");
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).expect("hex").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// Checks Go's RFC 3339 (nano) shape: `2024-05-01T12:34:56[.fff]Z`.
pub fn assert_rfc3339(s: &str) {
    let b = s.as_bytes();
    let ok = b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && s.ends_with('Z')
        && s[..19].bytes().filter(u8::is_ascii_digit).count() == 14;
    assert!(ok, "not RFC 3339: {s:?}");
}

/// Checks nats-server's uptime shape (`1d2h3m4s`, `5s`).
pub fn assert_uptime(s: &str) {
    assert!(s.ends_with('s'), "uptime {s:?}");
    assert!(
        s.chars().all(|c| c.is_ascii_digit() || "ydhms".contains(c)),
        "uptime {s:?}"
    );
}

/// Polls `f` until it holds (monitoring reads are eventually consistent with
/// the connection tasks), panicking after 5 s.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}
