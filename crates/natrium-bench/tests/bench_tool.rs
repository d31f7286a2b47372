//! natrium-bench end to end: counts against the server's own counters, latency
//! against responders with known service times, coordinated-omission
//! correction, and bad input (unreachable, refused, closed mid-run) that must
//! end in a clear error and a non-zero exit, never a panic or a hang.

#[path = "../../../tests/it/common/server.rs"]
mod server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use natrium_proto::server_ops::{ServerOp, ServerParser};
use serde_json::Value;
use server::TestServer;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("bad JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// One tool run at a time: latency figures are meaningless when the 2-core
/// machine is also running the other tests' load.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the tool; fails the test if it takes longer than `limit`.
fn bench(args: &[&str], limit: Duration) -> Out {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut child = Command::new(env!("CARGO_BIN_EXE_natrium-bench"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn natrium-bench");
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("natrium-bench {args:?} hung for more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Out {
        code: status.code().unwrap_or(-1),
        stdout: t1.join().expect("stdout thread"),
        stderr: t2.join().expect("stderr thread"),
    };
    assert!(!out.stderr.contains("panicked"), "panic: {}", out.stderr);
    out
}

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn pubsub_counts_equal_the_servers_counters() {
    let s = TestServer::start();
    let url = s.url();
    let out = bench(
        &[
            "pubsub", "-s", &url, "-n", "20000", "-p", "2", "-c", "3", "--size", "64", "--json",
        ],
        LIMIT,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.json();
    assert_eq!(j["publishers"]["msgs"], 40_000);
    assert_eq!(j["subscribers"]["msgs"], 120_000);
    assert_eq!(j["expected"], 120_000);
    assert_eq!(j["lost"], 0);
    assert_eq!(j["publishers"]["bytes"], 40_000 * 64);
    let c = s.state.counts();
    assert_eq!(c.in_msgs, 40_000);
    assert_eq!(c.out_msgs, 120_000);
}

#[test]
fn pub_only_and_queue_counts_equal_the_servers_counters() {
    let s = TestServer::start();
    let url = s.url();
    let out = bench(
        &["pub", "-s", &url, "-n", "50000", "-p", "2", "--json"],
        LIMIT,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["publishers"]["msgs"], 100_000);
    assert_eq!(s.state.counts().in_msgs, 100_000);
    assert_eq!(s.state.counts().out_msgs, 0);

    let out = bench(
        &["queue", "-s", &url, "-n", "10000", "-c", "3", "--json"],
        LIMIT,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.json();
    assert_eq!(
        j["subscribers"]["msgs"], 10_000,
        "each message once to the group"
    );
    assert_eq!(j["lost"], 0);
    assert_eq!(s.state.counts().out_msgs, 10_000);
}

#[test]
fn fanout_table_and_extra_subscriptions() {
    let s = TestServer::start();
    let url = s.url();
    let out = bench(
        &[
            "fanout",
            "-s",
            &url,
            "-n",
            "5000",
            "-c",
            "4",
            "--extra-subs",
            "2000",
            "--subjects",
            "1",
        ],
        LIMIT,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("delivered 20000 of 20000 expected"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("min/avg/max/stddev"), "{}", out.stdout);
    assert_eq!(s.state.counts().out_msgs, 20_000);
}

#[test]
fn rate_paces_throughput_workloads() {
    let s = TestServer::start();
    let url = s.url();
    // 2 publishers × 1,000 messages at 4,000/s over both: 0.5 s, not a burst.
    let t0 = Instant::now();
    let out = bench(
        &[
            "pubsub", "-s", &url, "-n", "1000", "-p", "2", "-c", "2", "--rate", "4000", "--json",
        ],
        LIMIT,
    );
    let took = t0.elapsed();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.json();
    assert_eq!(j["publishers"]["msgs"], 2_000);
    assert_eq!(j["subscribers"]["msgs"], 4_000);
    assert_eq!(j["lost"], 0);
    let secs = j["publishers"]["elapsed_s"].as_f64().unwrap();
    assert!(
        (0.45..3.0).contains(&secs),
        "paced publishers took {secs} s for 0.5 s of schedule"
    );
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert_eq!(s.state.counts().in_msgs, 2_000);
    assert_eq!(s.state.counts().out_msgs, 4_000);
    // By duration: the schedule ends with the run, whatever the server could take.
    let out = bench(
        &["pub", "-s", &url, "-d", "600ms", "--rate", "5000", "--json"],
        LIMIT,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sent = out.json()["publishers"]["msgs"].as_u64().unwrap();
    assert!(
        (2_700..=3_001).contains(&sent),
        "sent {sent} at 5,000/s for 0.6 s"
    );
}

#[test]
fn missing_messages_are_reported_loudly_with_exit_2() {
    let s = TestServer::start();
    let out = bench(&["sub", "-s", &s.url(), "-n", "100", "-d", "300ms"], LIMIT);
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("LOST 100 of 100"), "{}", out.stdout);
    assert!(
        out.stderr.contains("DELIVERY CHECK FAILED"),
        "{}",
        out.stderr
    );
}

/// A responder on its own thread: answers each request after `delay`, and once
/// (at request `stall_at`) after `stall` instead.
fn responder(
    addr: SocketAddr,
    subject: &str,
    delay: Duration,
    stall_at: Option<(u64, Duration)>,
) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let mut sock = TcpStream::connect(addr).expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    sock.write_all(
        format!("CONNECT {{\"verbose\":false}}\r\nSUB {subject} 1\r\nPING\r\n").as_bytes(),
    )
    .expect("write");
    // Wait for the PONG so the subscription exists before the test goes on.
    let mut r = BufReader::new(sock.try_clone().expect("clone"));
    let mut line = String::new();
    while !line.starts_with("PONG") {
        line.clear();
        r.read_line(&mut line).expect("handshake");
    }
    std::thread::spawn(move || {
        let mut p = ServerParser::default();
        let mut buf: Vec<u8> = r.buffer().to_vec();
        let mut tmp = [0u8; 65536];
        let mut seen = 0u64;
        while !s2.load(Ordering::Relaxed) {
            let mut off = 0;
            let mut replies = Vec::new();
            while let Ok(Some((op, n))) = p.next_op(&buf[off..]) {
                off += n;
                if let ServerOp::Msg(m) = op {
                    seen += 1;
                    let d = match stall_at {
                        Some((k, stall)) if k == seen => stall,
                        _ => delay,
                    };
                    if !d.is_zero() {
                        std::thread::sleep(d);
                    }
                    if let Some(reply) = m.reply {
                        replies.extend_from_slice(b"PUB ");
                        replies.extend_from_slice(reply);
                        replies.extend_from_slice(format!(" {}\r\n", m.payload.len()).as_bytes());
                        replies.extend_from_slice(m.payload);
                        replies.extend_from_slice(b"\r\n");
                    }
                    // Answer each request before looking at the next.
                    let _ = sock.write_all(&replies);
                    replies.clear();
                } else if let ServerOp::Ping = op {
                    let _ = sock.write_all(b"PONG\r\n");
                }
            }
            buf.drain(..off);
            match r.get_mut().read(&mut tmp) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
                Err(_) => {}
            }
        }
    });
    stop
}

fn pct(j: &Value, which: &str, p: f64) -> f64 {
    j["latency"][which]["percentiles_us"]
        .as_array()
        .expect("percentiles")
        .iter()
        .find(|e| (e[0].as_f64().unwrap_or(0.0) - p).abs() < 1e-9)
        .and_then(|e| e[1].as_f64())
        .expect("percentile present")
}

#[test]
fn reqrep_latency_matches_a_1ms_responder_and_writes_hist_and_plot() {
    let s = TestServer::start();
    // The same path with an instant responder: what this (shared, noisy)
    // machine adds to a round trip, so the bound stays meaningful under load.
    let stop0 = responder(s.addr, "bench.rr0", Duration::ZERO, None);
    let base = bench(
        &[
            "reqrep",
            "-s",
            &s.url(),
            "--subject",
            "bench.rr0",
            "-c",
            "0",
            "--rate",
            "200",
            "-n",
            "300",
            "--json",
        ],
        LIMIT,
    );
    stop0.store(true, Ordering::Relaxed);
    assert_eq!(base.code, 0, "{}", base.stderr);
    let base_p50 = pct(&base.json(), "uncorrected", 50.0);
    eprintln!("baseline round trip p50 {base_p50} µs");
    let stop = responder(s.addr, "bench.rr", Duration::from_millis(1), None);
    let dir = std::env::temp_dir().join(format!("natrium-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let (hgrm, svg) = (dir.join("rr.hgrm"), dir.join("rr.svg"));
    let out = bench(
        &[
            "reqrep",
            "-s",
            &s.url(),
            "--subject",
            "bench.rr",
            "-c",
            "0",
            "--rate",
            "200",
            "-n",
            "300",
            "--json",
            "--hist",
            hgrm.to_str().unwrap(),
            "--plot",
            svg.to_str().unwrap(),
        ],
        LIMIT,
    );
    stop.store(true, Ordering::Relaxed);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.json();
    assert_eq!(j["latency"]["corrected"]["count"], 300);
    for which in ["corrected", "uncorrected"] {
        eprintln!(
            "{which} p50 {} µs, p99 {} µs",
            pct(&j, which, 50.0),
            pct(&j, which, 99.0)
        );
    }
    for which in ["corrected", "uncorrected"] {
        let p50 = pct(&j, which, 50.0);
        let hi = 2000.0 + base_p50;
        assert!(
            (1000.0..hi).contains(&p50),
            "{which} p50 {p50} µs not in [1 ms, 2 ms + {base_p50} µs baseline round trip)"
        );
    }
    let text = std::fs::read_to_string(&hgrm).expect("hgrm written");
    assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
    assert!(text.contains("Total count    =          300]"), "{text}");
    let plot = std::fs::read_to_string(&svg).expect("svg written");
    assert!(plot.starts_with("<svg") && plot.matches("<polyline").count() == 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_single_stall_shows_in_corrected_upper_percentiles_only() {
    let s = TestServer::start();
    let stop = responder(
        s.addr,
        "bench.stall",
        Duration::ZERO,
        Some((300, Duration::from_millis(100))),
    );
    let out = bench(
        &[
            "reqrep",
            "-s",
            &s.url(),
            "--subject",
            "bench.stall",
            "-c",
            "0",
            "--rate",
            "1000",
            "-n",
            "1500",
            "--json",
        ],
        LIMIT,
    );
    stop.store(true, Ordering::Relaxed);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.json();
    // ~100 of 1500 requests were due during the stall: ~6.7% of samples.
    let (c99, u99) = (pct(&j, "corrected", 99.0), pct(&j, "uncorrected", 99.0));
    let c_max = j["latency"]["corrected"]["max_us"].as_f64().unwrap();
    let u_max = j["latency"]["uncorrected"]["max_us"].as_f64().unwrap();
    assert!(
        c99 >= 50_000.0,
        "corrected p99 {c99} µs should show the 100 ms stall"
    );
    assert!(u99 < 20_000.0, "uncorrected p99 {u99} µs should hide it");
    assert!(
        c_max >= 100_000.0 && u_max >= 100_000.0,
        "max {c_max} / {u_max}"
    );
}

#[test]
fn compare_alternates_and_reports_ratios() {
    let (a, b) = (TestServer::start(), TestServer::start());
    let out = bench(
        &[
            "pub",
            "-n",
            "20000",
            "--compare",
            &a.url(),
            &b.url(),
            "--rounds",
            "2",
            "--json",
        ],
        LIMIT,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.json();
    assert_eq!(j["runs"].as_array().unwrap().len(), 4);
    assert_eq!(j["runs"][0]["server"], a.url());
    assert_eq!(j["runs"][1]["server"], b.url());
    assert!(j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["metric"] == "pub msgs/s" && r["ratio"].as_f64().unwrap() > 0.0));
    assert_eq!(a.state.counts().in_msgs, 40_000);
    assert_eq!(b.state.counts().in_msgs, 40_000);
}

#[test]
fn unreachable_server_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = bench(
        &["pub", "-s", &format!("nats://127.0.0.1:{port}"), "-n", "10"],
        Duration::from_secs(20),
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("cannot connect to 127.0.0.1:"),
        "{}",
        out.stderr
    );
}

/// A fake server: INFO, reads the CONNECT line, then runs `then`.
fn fake_server(then: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            let _ = s.write_all(b"INFO {\"server_id\":\"fake\",\"auth_required\":true,\"max_payload\":1048576} \r\n");
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            then(s);
        }
    });
    addr
}

#[test]
fn wrong_credentials_are_a_clear_error() {
    let addr = fake_server(|mut s| {
        let _ = s.write_all(b"-ERR 'Authorization Violation'\r\n");
    });
    let url = format!("nats://bob:wrong@{addr}");
    let out = bench(&["pub", "-s", &url, "-n", "10"], Duration::from_secs(20));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("refused the connection: -ERR 'Authorization Violation'"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_server_closing_mid_run_is_a_clear_error() {
    let addr = fake_server(|mut s| {
        let _ = s.write_all(b"PONG\r\n");
        let mut tmp = [0u8; 65536];
        let mut total = 0;
        while total < 1 << 20 {
            match s.read(&mut tmp) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    let url = format!("nats://{addr}");
    let out = bench(&["pub", "-s", &url, "-d", "20s"], Duration::from_secs(20));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("closed the connection"),
        "{}",
        out.stderr
    );
    let out = bench(
        &["reqrep", "-s", &url, "-c", "0", "-n", "100"],
        Duration::from_secs(20),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("natrium-bench: error:"),
        "{}",
        out.stderr
    );
}
