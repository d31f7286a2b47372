//! Does polling the monitoring endpoints slow message delivery? Runs a natrium
//! server and its monitor in-process, drives pub/sub at full speed over raw
//! sockets, and measures delivered messages per second in alternating windows
//! without and with a poller hitting `/connz` and `/varz` 20 times a second
//! each. Prints each window and the median with/without ratio.
//!
//! `cargo run --release --example monitor_load -- [secs_per_window] [rounds] [idle_conns]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use natrium::options::Options;
use natrium::server::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PAYLOAD: usize = 128;
const PUBLISHERS: usize = 2;
const SUBSCRIBERS: usize = 2;

fn main() -> std::io::Result<()> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let secs = args.first().copied().unwrap_or(3);
    let rounds = args.get(1).copied().unwrap_or(4);
    let idle = args.get(2).copied().unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(Duration::from_secs(secs), rounds, idle))
}

async fn run(window: Duration, rounds: u64, idle: u64) -> std::io::Result<()> {
    let opts = Options {
        host: "127.0.0.1".into(),
        port: 0,
        ..Options::default()
    };
    let server = Server::bind(opts)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let addr = server.local_addr();
    let state = server.state.clone();
    tokio::spawn(server.run_with_monitor(natrium::monitor::serve));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http = listener.local_addr()?;
    tokio::spawn(natrium::monitor::serve(state, Some(listener)));

    // Idle connections with a subscription each, so /connz has rows to build.
    let mut keep = Vec::new();
    for i in 0..idle {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(
            format!("CONNECT {{\"verbose\":false,\"name\":\"idle{i}\"}}\r\nSUB idle.{i} 1\r\n")
                .as_bytes(),
        )
        .await?;
        keep.push(s);
    }
    let received = Arc::new(AtomicU64::new(0));
    for _ in 0..SUBSCRIBERS {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"CONNECT {\"verbose\":false}\r\nSUB bench 1\r\nPING\r\n")
            .await?;
        let received = received.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 256 * 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let frame = format!("PUB bench {PAYLOAD}\r\n{}\r\n", "x".repeat(PAYLOAD));
    let batch = frame.repeat(64 * 1024 / frame.len()).into_bytes();
    for _ in 0..PUBLISHERS {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"CONNECT {\"verbose\":false}\r\n").await?;
        let batch = batch.clone();
        tokio::spawn(async move {
            let mut sink = [0u8; 4096];
            loop {
                if s.write_all(&batch).await.is_err() {
                    break;
                }
                // Drain server PINGs without blocking.
                let _ = tokio::time::timeout(Duration::ZERO, s.read(&mut sink)).await;
            }
        });
    }
    let polling = Arc::new(AtomicBool::new(false));
    let polls = Arc::new(AtomicU64::new(0));
    tokio::spawn(poller(http, polling.clone(), polls.clone()));

    let msg_len = format!("MSG bench 1 {PAYLOAD}\r\n").len() as u64 + PAYLOAD as u64 + 2;
    tokio::time::sleep(Duration::from_secs(1)).await; // warm up
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..rounds * 2 {
        let on = round % 2 == 1;
        polling.store(on, Ordering::Relaxed);
        let (b0, p0, t0) = (
            received.load(Ordering::Relaxed),
            polls.load(Ordering::Relaxed),
            Instant::now(),
        );
        tokio::time::sleep(window).await;
        let secs = t0.elapsed().as_secs_f64();
        let rate = (received.load(Ordering::Relaxed) - b0) as f64 / msg_len as f64 / secs;
        let polled = polls.load(Ordering::Relaxed) - p0;
        println!(
            "window {round}: poller {:3}  {:>12.0} msgs/s delivered  ({polled} HTTP requests, {:.1}/s)",
            if on { "on" } else { "off" },
            rate,
            polled as f64 / secs
        );
        if on {
            with.push(rate)
        } else {
            without.push(rate)
        }
    }
    let (a, b) = (median(&mut without), median(&mut with));
    println!("median without poller: {a:.0} msgs/s; with poller: {b:.0} msgs/s; ratio with/without = {:.3}", b / a);
    drop(keep);
    Ok(())
}

/// Every 50 ms while `on`: GET /connz and GET /varz (20/s each), full bodies.
async fn poller(http: std::net::SocketAddr, on: Arc<AtomicBool>, count: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        if !on.load(Ordering::Relaxed) {
            continue;
        }
        for path in ["/connz", "/varz"] {
            if get(http, path).await.is_ok() {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn get(http: std::net::SocketAddr, path: &str) -> std::io::Result<usize> {
    let mut s = TcpStream::connect(http).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).await
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
