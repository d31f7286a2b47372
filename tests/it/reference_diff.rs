//! Differential protocol test: the same raw byte scripts sent to natrium and to
//! Debian's nats-server running beside it; the replies must be identical (INFO
//! lines normalised). The reference is the authority where docs disagree; this
//! is how the UNSUB-max, wildcard-publish and before-CONNECT differences were
//! found. Skipped (with a note) when `nats-server` is not installed; `.ci/run`
//! installs it.

use crate::common;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Accepted on purpose: natrium's no-responders status carries a
/// `Nats-Subject` header, as newer nats-server versions send (2.9.10 does not).
const ACCEPTED: &[&str] = &["no_responders"];

const C: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}\r\n";

#[rustfmt::skip]
const CASES: &[(&str, &[&[u8]])] = &[
    (
        "pub_reply",
        &[C, b"SUB foo 1\r\nPUB foo bar 2\r\nhi\r\nPING\r\n"],
    ),
    (
        "hpub_to_noheaders_sub",
        &[b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n", b"SUB foo 1\r\nPING\r\n"],
    ),
    (
        "hpub_basic",
        &[C, b"SUB foo 1\r\nHPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n"],
    ),
    (
        "hpub_hdr_gt_total",
        &[C, b"HPUB foo 14 12\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n"],
    ),
    (
        "verbose_sub_unsub_pub",
        &[b"CONNECT {\"verbose\":true,\"pedantic\":false,\"headers\":true}\r\n", b"SUB foo 1\r\nUNSUB 1\r\nUNSUB 9\r\nPUB foo 1\r\nx\r\nPING\r\n"],
    ),
    (
        "verbose_bad_sub",
        &[b"CONNECT {\"verbose\":true,\"pedantic\":false,\"headers\":true}\r\n", b"SUB foo..bar 1\r\nPING\r\n"],
    ),
    (
        "ping_lower_args",
        &[C, b"ping\r\nPING foo\r\nPINGPONG\r\n"],
    ),
    (
        "connect_twice",
        &[C, C, b"PING\r\n"],
    ),
    (
        "connect_unknown_fields",
        &[b"CONNECT {\"verbose\":false,\"zzz\":1,\"name\":\"x\"}\r\nPING\r\n"],
    ),
    (
        "pub_wildcard_nonpedantic",
        &[C, b"SUB foo.* 1\r\nPUB foo.* 1\r\nx\r\nPING\r\n"],
    ),
    (
        "pub_wildcard_pedantic",
        &[b"CONNECT {\"verbose\":false,\"pedantic\":true,\"headers\":true}\r\n", b"SUB foo.* 1\r\nPUB foo.* 1\r\nx\r\nPING\r\n"],
    ),
    (
        "pub_empty_token_pedantic",
        &[b"CONNECT {\"verbose\":false,\"pedantic\":true,\"headers\":true}\r\n", b"SUB foo.> 1\r\nPUB foo..x 1\r\nx\r\nPING\r\n"],
    ),
    (
        "pub_empty_token_nonpedantic",
        &[C, b"SUB foo.> 1\r\nPUB foo..x 1\r\nx\r\nPING\r\n"],
    ),
    (
        "extra_spaces",
        &[C, b"SUB  foo   1 \r\nPUB\tfoo  1\r\nx\r\nPING\r\n"],
    ),
    (
        "sub_invalid_forms",
        &[C, b"SUB .foo 1\r\nSUB foo. 2\r\nSUB foo.>.bar 3\r\nSUB *.> 4\r\nSUB > 5\r\nSUB f*o 6\r\nPING\r\n"],
    ),
    (
        "queue_invalid",
        &[C, b"SUB foo q.* 1\r\nSUB foo q> 2\r\nSUB foo q.x 3\r\nPING\r\n"],
    ),
    (
        "pub_size_short",
        &[C, b"PUB foo 5\r\nabc\r\nPING\r\n"],
    ),
    (
        "pub_size_long",
        &[C, b"PUB foo 2\r\nabcdef\r\n"],
    ),
    (
        "sid_reuse",
        &[C, b"SUB foo 1\r\nUNSUB 1\r\nSUB bar 1\r\nPUB bar 1\r\nx\r\nPING\r\n"],
    ),
    (
        "no_responders",
        &[C, b"SUB _INBOX.x 1\r\nPUB nobody _INBOX.x 0\r\n\r\nPING\r\n"],
    ),
    (
        "no_responders_no_headers",
        &[b"CONNECT {\"verbose\":false,\"no_responders\":true}\r\n", b"SUB _INBOX.x 1\r\nPUB nobody _INBOX.x 0\r\n\r\nPING\r\n"],
    ),
    (
        "echo_false",
        &[b"CONNECT {\"verbose\":false,\"echo\":false}\r\n", b"SUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n"],
    ),
    (
        "unsub_max_zero",
        &[C, b"SUB foo 1\r\nUNSUB 1 0\r\nPUB foo 1\r\nx\r\nPING\r\n"],
    ),
    (
        "pong_unsolicited",
        &[C, b"PONG\r\nPING\r\n"],
    ),
    (
        "plus_ok_from_client",
        &[C, b"+OK\r\nPING\r\n"],
    ),
    (
        "info_from_client",
        &[C, b"INFO {}\r\nPING\r\n"],
    ),
    (
        "lowercase_ops",
        &[C, b"sub foo 1\r\npub foo 1\r\nx\r\nping\r\n"],
    ),
    (
        "pub_no_args",
        &[C, b"PUB\r\n"],
    ),
    (
        "pub_one_arg",
        &[C, b"PUB foo\r\n"],
    ),
    (
        "pub_neg",
        &[C, b"PUB foo -1\r\n"],
    ),
    (
        "pub_too_many_args",
        &[C, b"PUB a b c d e f g h\r\nPING\r\n"],
    ),
    (
        "hpub_too_many_args",
        &[C, b"HPUB a b c d e f g h i\r\nPING\r\n"],
    ),
    (
        "sub_one_arg",
        &[C, b"SUB foo\r\n"],
    ),
    (
        "connect_bad_json",
        &[b"CONNECT {bad}\r\n"],
    ),
    (
        "protocol_2",
        &[b"CONNECT {\"protocol\":2}\r\n"],
    ),
    (
        "unknown_op",
        &[C, b"FOO bar\r\n"],
    ),
    (
        "pub_before_connect",
        &[b"PUB foo 1\r\nx\r\nPING\r\n"],
    ),
    (
        "sub_before_connect",
        &[b"SUB foo 1\r\nPUB foo 1\r\nx\r\nPING\r\n"],
    ),
    (
        "crlf_only",
        &[C, b"\r\n\r\nPING\r\n"],
    ),
    (
        "lf_only_lines",
        &[C, b"SUB foo 1\nPUB foo 1\nx\r\nPING\n"],
    ),
    (
        "verbose_ping",
        &[b"CONNECT {\"verbose\":true,\"pedantic\":false,\"headers\":true}\r\n", b"PING\r\n"],
    ),
    (
        "verbose_bad_pub_subject",
        &[b"CONNECT {\"verbose\":true,\"pedantic\":true}\r\n", b"PUB foo.* 1\r\nx\r\nPING\r\n"],
    ),
    (
        "unsub_bad_sid_chars",
        &[C, b"UNSUB 1 2 3\r\n"],
    ),
    (
        "hpub_no_headers_flag",
        &[b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n", b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"],
    ),
    (
        "headers_to_non_header_sub",
        &[b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n", b"SUB foo 1\r\nPING\r\n"],
    ),
    (
        "reply_with_wildcard",
        &[C, b"SUB foo 1\r\nPUB foo bar.* 1\r\nx\r\nPING\r\n"],
    ),
    (
        "tab_separated_connect",
        &[b"CONNECT\t{\"verbose\":false}\r\nPING\r\n"],
    ),
    (
        "unsub_max_counts_earlier_deliveries",
        &[C, b"SUB foo 1\r\nSUB bar 2\r\nPUB foo 1\r\nx\r\nPUB foo 1\r\nx\r\nPUB bar 1\r\ny\r\nUNSUB 1 1\r\nUNSUB 2 2\r\nPUB foo 1\r\nz\r\nPUB bar 1\r\nz\r\nPUB bar 1\r\nz\r\nPING\r\n"],
    ),
    (
        "queue_sub_delivery",
        &[C, b"SUB foo q 1\r\nSUB foo q 2\r\nSUB foo 3\r\nPUB foo 1\r\nx\r\nPING\r\n"],
    ),
];

struct Reference(Child);

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts Debian's nats-server, or `None` when it is not installed.
fn start_reference() -> Option<(Reference, SocketAddr)> {
    let port = free_port();
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let guard = Reference(child);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((guard, addr))
}

/// PING lines in the script: that many PONGs end the exchange.
fn pings(script: &[&[u8]]) -> usize {
    script
        .iter()
        .flat_map(|c| c.split(|b| *b == b'\n'))
        .filter(|l| l.len() >= 4 && l[..4].eq_ignore_ascii_case(b"PING"))
        .count()
}

/// Sends the script after INFO; returns the replies, INFO normalised, with
/// `<closed>` appended if the server closed the connection.
fn exchange(addr: SocketAddr, script: &[&[u8]]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    let mut closed = false;
    let mut read_some = |s: &mut TcpStream, out: &mut Vec<u8>| -> bool {
        match s.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                false
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                false
            }
            Err(_) => true,
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.windows(2).any(|w| w == b"\r\n") {
        assert!(!read_some(&mut s, &mut out), "closed before INFO");
        assert!(Instant::now() < deadline, "no INFO");
    }
    for chunk in script {
        if s.write_all(chunk).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let want = pings(script);
    while Instant::now() < deadline {
        if read_some(&mut s, &mut out) {
            closed = true;
            break;
        }
        let pongs = out.windows(6).filter(|w| w == b"PONG\r\n").count();
        if want > 0 && pongs >= want {
            break;
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let body = match text.find("\r\n") {
        Some(i) if text.starts_with("INFO ") => text[i + 2..].to_string(),
        _ => text,
    };
    if closed {
        body + "<closed>"
    } else {
        body
    }
}

#[test]
fn raw_exchanges_match_the_reference_server() {
    let Some((_reference, reference)) = start_reference() else {
        eprintln!("nats-server not installed: reference comparison skipped");
        return;
    };
    let natrium = common::TestServer::start();
    let mut mismatches = Vec::new();
    for (name, script) in CASES {
        let mut ours = exchange(natrium.addr, script);
        let mut theirs = exchange(reference, script);
        if *name == "queue_sub_delivery" {
            // Which queue member gets the message is random on both.
            ours = ours.replace("MSG foo 2 1", "MSG foo 1 1");
            theirs = theirs.replace("MSG foo 2 1", "MSG foo 1 1");
        }
        if ours != theirs && !ACCEPTED.contains(name) {
            mismatches.push(format!(
                "{name}:\n  natrium:     {ours:?}\n  nats-server: {theirs:?}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
