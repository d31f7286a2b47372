//! Black-box wire fuzzing: many concurrent connections send mutated protocol
//! streams (valid ops with bytes flipped, inserted, cut, duplicated, extra
//! arguments, absurd numbers, split at random points) while a canary pair
//! exchanges numbered messages. The server must stay up, the canary must lose
//! nothing and see nothing out of order, every fuzzing connection must be gone
//! from the registry soon after it ends, and no connection task may panic.
//!
//! `cargo test` runs a short fixed-seed round; `scripts/wire_fuzz.sh SECONDS
//! [SEED]` runs a long one (through `NATRIUM_WIRE_FUZZ_SECS` and
//! `NATRIUM_WIRE_FUZZ_SEED`).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use natrium::rand::XorShift64;

use crate::common::{Raw, TestServer};

const CANARY: &str = "canary.q9x7";
const CANARY_MARK: &[u8] = b"canary-seq:";

/// Valid ops (and near-valid ones) the mutations start from.
const CORPUS: &[&[u8]] = &[
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"name\":\"fz\"}\r\n",
    b"CONNECT {\"verbose\":true,\"pedantic\":true,\"echo\":false}\r\n",
    b"PING\r\n",
    b"PONG\r\n",
    b"SUB foo 1\r\n",
    b"SUB foo.* q 2\r\n",
    b"SUB > 3\r\n",
    b"SUB foo.> grp 4\r\n",
    b"UNSUB 1\r\n",
    b"UNSUB 2 5\r\n",
    b"PUB foo 5\r\nhello\r\n",
    b"PUB foo.bar reply.1 3\r\nabc\r\n",
    b"PUB foo 0\r\n\r\n",
    b"HPUB foo 12 17\r\nNATS/1.0\r\n\r\nhello\r\n",
    b"HPUB foo.x r 22 25\r\nNATS/1.0\r\nA: b\r\n\r\n\r\n123\r\n",
    b"pub foo 2\r\nhi\r\n",
    b"PUB a b c d e f g h\r\n",
    b"MSG foo 1 5\r\nhello\r\n",
    b"+OK\r\n",
    b"-ERR 'x'\r\n",
    b"INFO {}\r\n",
];

const NOISE: &[u8] = b" \t\r\n*>.$:{}\"\\0";
const NUMBERS: &[&[u8]] = &[
    b"-1",
    b"0",
    b"99999999999999999999",
    b"4294967296",
    b"1048577",
    b"18446744073709551615",
    b"007",
];

fn stream(rng: &mut XorShift64) -> Vec<u8> {
    let mut s = Vec::new();
    for _ in 0..1 + rng.below(8) {
        s.extend_from_slice(CORPUS[rng.below(CORPUS.len())]);
    }
    for _ in 0..rng.below(5) {
        mutate(rng, &mut s);
    }
    s
}

fn mutate(rng: &mut XorShift64, s: &mut Vec<u8>) {
    if s.is_empty() {
        s.push(b'P');
    }
    let at = rng.below(s.len());
    match rng.below(8) {
        0 => s[at] ^= 1 << rng.below(8),
        1 => s.insert(at, NOISE[rng.below(NOISE.len())]),
        2 => {
            let end = (at + rng.below(16)).min(s.len());
            s.drain(at..end);
        }
        3 => {
            let end = (at + 1 + rng.below(32)).min(s.len());
            let dup = s[at..end].to_vec();
            s.splice(at..at, dup);
        }
        4 => {
            let n = NUMBERS[rng.below(NUMBERS.len())];
            s.splice(at..at, n.iter().copied());
        }
        5 => {
            // Extra arguments: the shape that once overran the parser.
            for _ in 0..1 + rng.below(10) {
                s.splice(at..at, b" x".iter().copied());
            }
        }
        6 => s[at] = rng.next_u64() as u8,
        _ => s.truncate(at),
    }
}

/// One fuzzing connection: write the stream in random pieces, read a little,
/// then hang up one way or another.
fn fuzz_once(addr: SocketAddr, rng: &mut XorShift64) {
    let Ok(mut sock) = TcpStream::connect(addr) else {
        return;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(20)));
    let _ = sock.set_write_timeout(Some(Duration::from_millis(500)));
    let data = stream(rng);
    let mut at = 0;
    while at < data.len() {
        let n = (1 + rng.below(64)).min(data.len() - at);
        if sock.write_all(&data[at..at + n]).is_err() {
            break;
        }
        at += n;
        if rng.below(8) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let mut buf = [0u8; 4096];
    if rng.below(2) == 0 {
        let _ = sock.read(&mut buf);
    }
    match rng.below(3) {
        0 => {
            let _ = sock.shutdown(Shutdown::Write);
            let _ = sock.read(&mut buf);
        }
        1 => {
            let _ = sock.shutdown(Shutdown::Both);
        }
        _ => {}
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The canary subscriber: every numbered message, in order, until `last`.
fn canary_sub(mut sub: Raw, subject: &str, done: Arc<AtomicBool>, last: Arc<AtomicU64>) -> u64 {
    let mut want = 1u64;
    let prefix = format!("MSG {subject} 1 ");
    loop {
        let line = sub.next_non_ping();
        if line.is_empty() {
            panic!("canary subscriber disconnected after {} messages", want - 1);
        }
        let Some(rest) = line.strip_prefix(&prefix) else {
            panic!("canary subscriber got an unexpected line: {line:?}");
        };
        let size: usize = rest.parse().expect("canary payload size");
        let payload = sub.read_exact(size + 2);
        let seq = payload
            .strip_prefix(CANARY_MARK)
            .and_then(|p| std::str::from_utf8(&p[..p.len().saturating_sub(2)]).ok())
            .and_then(|p| p.parse::<u64>().ok())
            .expect("canary payload");
        assert_eq!(seq, want, "canary message lost or reordered");
        if done.load(Ordering::Acquire) && seq == last.load(Ordering::Acquire) {
            return seq;
        }
        want += 1;
    }
}

#[test]
fn wire_fuzz_keeps_server_and_canary_healthy() {
    let server = TestServer::with(|o| {
        o.max_payload = 64 * 1024;
        // The canary publisher only writes: on a long run the server's pings
        // (every 2 min, two unanswered = stale) would close it. The fuzzing
        // connections live milliseconds, so they are unaffected.
        o.ping_interval = Duration::from_secs(24 * 3600);
    });
    let plain = r#"{"verbose":false}"#;
    fuzz_round(&server, plain, plain, CANARY, 8);
}

/// The same with accounts: the fuzzing connections land in account B (its
/// `no_auth_user`), which imports everything account A publishes (prefixed)
/// and a service of A; the canary crosses from A into B over the stream
/// import while the fuzzers publish, subscribe and request through both
/// routes.
#[test]
fn wire_fuzz_across_account_imports() {
    let conf = r#"
accounts {
  A { users = [ {user: a, password: a} ], exports = [ {stream: ">"}, {service: "foo.>"} ] }
  B { users = [ {user: b, password: b} ],
      imports = [ {stream: {account: A, subject: ">"}, prefix: "from_a"},
                  {service: {account: A, subject: "foo.>"}} ] }
}
no_auth_user: b
max_payload: 65536
ping_interval: "24h"
"#;
    let (opts, _) = natrium::config::parse_str(conf, &std::env::temp_dir()).expect("config");
    let server = TestServer::with(move |o| *o = opts);
    let subject = format!("from_a.{CANARY}");
    fuzz_round(
        &server,
        r#"{"verbose":false,"user":"a","pass":"a"}"#,
        r#"{"verbose":false,"user":"b","pass":"b"}"#,
        &subject,
        4,
    );
}

/// One fuzzing round against `server`: the canary publisher signs in with
/// `pub_connect`, its subscriber with `sub_connect` on `sub_subject`.
fn fuzz_round(
    server: &TestServer,
    pub_connect: &str,
    sub_connect: &str,
    sub_subject: &str,
    default_secs: u64,
) {
    let secs = env_u64("NATRIUM_WIRE_FUZZ_SECS", default_secs);
    let seed = env_u64("NATRIUM_WIRE_FUZZ_SEED", 0x5eed_f00d);
    let workers = env_u64("NATRIUM_WIRE_FUZZ_WORKERS", 12);
    let addr = server.addr;

    let mut sub = server.raw();
    sub.send(format!("CONNECT {sub_connect}\r\nSUB {sub_subject} 1\r\n").as_bytes());
    assert_eq!(sub.flush(), "");
    let mut publ = server.raw();
    publ.send(format!("CONNECT {pub_connect}\r\n").as_bytes());
    assert_eq!(publ.flush(), "");

    let done = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicU64::new(0));
    let reader = {
        let (done, last) = (done.clone(), last.clone());
        let subject = sub_subject.to_string();
        std::thread::spawn(move || canary_sub(sub, &subject, done, last))
    };

    let stop_at = Instant::now() + Duration::from_secs(secs);
    let connections = Arc::new(AtomicU64::new(0));
    let fuzzers: Vec<_> = (0..workers)
        .map(|w| {
            let connections = connections.clone();
            std::thread::spawn(move || {
                let mut rng = XorShift64::new(seed ^ (w + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                while Instant::now() < stop_at {
                    fuzz_once(addr, &mut rng);
                    connections.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // The canary publisher runs for the whole fuzzing window.
    let mut seq = 0u64;
    while Instant::now() < stop_at {
        for _ in 0..20 {
            seq += 1;
            let body = format!("{}{seq}", std::str::from_utf8(CANARY_MARK).unwrap_or(""));
            publ.send(format!("PUB {CANARY} {}\r\n{body}\r\n", body.len()).as_bytes());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for f in fuzzers {
        f.join().expect("fuzzer thread");
    }
    // One more message, sent once the subscriber knows it is the last.
    seq += 1;
    last.store(seq, Ordering::Release);
    done.store(true, Ordering::Release);
    let body = format!("{}{seq}", std::str::from_utf8(CANARY_MARK).unwrap_or(""));
    publ.send(format!("PUB {CANARY} {}\r\n{body}\r\n", body.len()).as_bytes());
    publ.send(b"PING\r\n");
    let answer = publ.next_non_ping();
    assert_eq!(answer, "PONG", "canary publisher got an error");
    let got = reader.join().expect("canary subscriber");
    assert_eq!(got, seq, "canary lost messages");

    // Every fuzzing connection drains away; only the canary pair remains.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.state.num_connections() > 2 {
        assert!(
            Instant::now() < deadline,
            "{} connections still registered after the fuzzers ended",
            server.state.num_connections()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        server.state.connection_panics.load(Ordering::Relaxed),
        0,
        "a connection task panicked"
    );
    eprintln!(
        "wire fuzz: seed {seed:#x}, {} connections in {secs} s, canary {seq} messages in order",
        connections.load(Ordering::Relaxed)
    );
}
