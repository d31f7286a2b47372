//! Latency workloads at a fixed target rate: `reqrep` (request/reply round
//! trips) and `latency` (one-way, timestamps in the payload).
//!
//! Owns the send schedule and the two histograms. Coordinated omission: every
//! request has an intended send time on the schedule (`start + i / rate`); the
//! corrected histogram measures from it, the uncorrected one from the moment
//! the request actually left. A stalled server delays later sends, and only the
//! corrected view charges that delay. It must not format output (stats does).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::conn::{Conn, IO_TIMEOUT};
use crate::pace::wait_until;
use crate::stats::{new_hist, ClientStat, Latency, Report, Side};
use crate::{Ctx, Load, Workload};

type Hists = (Histogram<u64>, Histogram<u64>);

fn ns(d: Duration) -> u64 {
    (d.as_nanos() as u64).max(1)
}

/// The schedule of one sender: `count` sends or until `end`, every `interval`.
#[derive(Clone, Copy)]
struct Schedule {
    start: Instant,
    offset: Duration,
    interval: Duration,
    count: Option<u64>,
    end: Option<Instant>,
}

impl Schedule {
    /// The intended time of send `i`, or `None` when the schedule is over.
    fn at(&self, i: u64) -> Option<Instant> {
        if self.count.is_some_and(|c| i >= c) {
            return None;
        }
        let t = self.start + self.offset + self.interval.mul_f64(i as f64);
        match self.end {
            Some(e) if t >= e => None,
            _ => Some(t),
        }
    }
}

fn schedule(load: &Load, senders: usize, idx: usize, start: Instant) -> Schedule {
    let per = load.rate / senders as f64;
    let interval = Duration::from_secs_f64(1.0 / per.max(1e-6));
    Schedule {
        start,
        offset: Duration::from_secs_f64(idx as f64 / load.rate.max(1e-6)),
        interval,
        count: load.msgs.or(load.duration.is_none().then_some(10_000)),
        end: load.duration.map(|d| start + d),
    }
}

/// Runs `reqrep` or `latency`.
pub async fn run(load: &Load, ctx: &Ctx) -> Result<Report> {
    let mut report = Report::new(load.workload.name(), &load.servers[0].url, load.size);
    let senders = load.pubs.max(1);
    let ep = |i: usize| &load.servers[i % load.servers.len()];
    let local_stop = Arc::new(AtomicBool::new(false));
    let mut helpers = JoinSet::new();
    let received = Arc::new(AtomicU64::new(0));
    let reqrep = load.workload == Workload::ReqRep;
    let size = if reqrep { load.size } else { load.size.max(16) };
    // One-way stamps are ns since `epoch`, shared by senders and receivers.
    let epoch = Instant::now();
    for i in 0..load.subs {
        let mut c = Conn::connect(ep(i), &format!("natrium-bench-rx-{i}")).await?;
        let sub = if reqrep {
            format!("SUB {} natrium-bench-responders 1\r\n", load.subject)
        } else {
            format!("SUB {} 1\r\n", load.subject)
        };
        c.write_all(sub.as_bytes()).await?;
        c.flush().await?;
        let stop = local_stop.clone();
        let (recv, progress) = (received.clone(), ctx.progress.clone());
        helpers.spawn(async move {
            if reqrep {
                respond(c, &stop).await.map(|_| None)
            } else {
                one_way_rx(c, epoch, &stop, &recv, &progress)
                    .await
                    .map(Some)
            }
        });
    }
    let mut senders_c = Vec::new();
    for i in 0..senders {
        senders_c.push(Conn::connect(ep(i), &format!("natrium-bench-tx-{i}")).await?);
    }
    let start = Instant::now();
    ctx.progress.start(start);
    let mut set = JoinSet::new();
    for (i, c) in senders_c.into_iter().enumerate() {
        let sched = schedule(load, senders, i, start);
        let (subject, stop, progress) =
            (load.subject.clone(), ctx.stop.clone(), ctx.progress.clone());
        set.spawn(async move {
            if reqrep {
                request(c, i, &subject, size, sched, &stop, &progress).await
            } else {
                one_way_tx(c, &subject, size, sched, epoch, &stop, &progress).await
            }
        });
    }
    let mut hc = new_hist();
    let mut hu = new_hist();
    let mut tx_stats = Vec::new();
    let mut first_err = None;
    while let Some(r) = set.join_next().await {
        match r.context("sender task")? {
            Ok((st, h)) => {
                if reqrep {
                    hc.add(&h.0).ok();
                    hu.add(&h.1).ok();
                }
                tx_stats.push(st);
            }
            Err(e) => {
                ctx.stop.store(true, Relaxed);
                first_err.get_or_insert(e);
            }
        }
    }
    let sent: u64 = tx_stats.iter().map(|s| s.msgs).sum();
    if !reqrep {
        // Let the receivers drain what is in flight, then stop them.
        let want = sent * load.subs as u64;
        let until = Instant::now() + load.wait;
        while received.load(Relaxed) < want && Instant::now() < until && first_err.is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    local_stop.store(true, Relaxed);
    let mut rx_stats = Vec::new();
    while let Some(r) = helpers.join_next().await {
        match r.context("receiver task")? {
            Ok(Some((st, h))) => {
                hc.add(&h.0).ok();
                hu.add(&h.1).ok();
                rx_stats.push(st);
            }
            Ok(None) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    report.interrupted = ctx.stop.load(Relaxed);
    let elapsed = tx_stats.iter().map(|s| s.elapsed).max().unwrap_or_default();
    let achieved = sent as f64 / elapsed.as_secs_f64().max(1e-9);
    report.publishers = Some(Side::of(&tx_stats));
    if !reqrep {
        let got = rx_stats.iter().map(|s| s.msgs).sum();
        report.check(sent * load.subs as u64, got);
        report.subscribers = Some(Side::of(&rx_stats));
    }
    report.latency = Some(Latency::new(load.rate, achieved, hc, hu));
    Ok(report)
}

/// One requester: closed loop (one request outstanding) on a fixed schedule.
async fn request(
    mut c: Conn,
    idx: usize,
    subject: &str,
    size: usize,
    sched: Schedule,
    stop: &AtomicBool,
    progress: &crate::progress::Progress,
) -> Result<(ClientStat, Hists)> {
    let inbox = format!("_INBOX.natrium-bench.{}.{idx}", std::process::id());
    c.write_all(format!("SUB {inbox} 1\r\n").as_bytes()).await?;
    c.flush().await?;
    let mut req = format!("PUB {subject} {inbox} {size}\r\n").into_bytes();
    req.extend(std::iter::repeat_n(b'r', size));
    req.extend_from_slice(b"\r\n");
    let (mut hc, mut hu) = (new_hist(), new_hist());
    let mut st = ClientStat::default();
    let mut i = 0;
    while let Some(intended) = sched.at(i) {
        if stop.load(Relaxed) {
            break;
        }
        wait_until(intended).await;
        let sent = Instant::now();
        c.write_all(&req).await.context("requester")?;
        let mut got = false;
        timeout(IO_TIMEOUT, async {
            while !got {
                c.read_some(&mut |_| got = true).await?;
            }
            Ok::<_, crate::conn::ConnError>(())
        })
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no reply within {} s (is there a responder?)",
                IO_TIMEOUT.as_secs()
            )
        })?
        .context("requester")?;
        let done = Instant::now();
        hc.saturating_record(ns(done - intended));
        hu.saturating_record(ns(done - sent));
        st.msgs += 1;
        st.bytes += size as u64;
        st.elapsed = done - sched.start;
        progress.add(1);
        i += 1;
    }
    Ok((st, (hc, hu)))
}

/// A responder: echoes each request's payload to its reply subject, one write
/// per read batch.
async fn respond(mut c: Conn, stop: &AtomicBool) -> Result<()> {
    let mut out = Vec::with_capacity(64 * 1024);
    let mut num = itoa::Buffer::new();
    while !stop.load(Relaxed) {
        let r = timeout(
            Duration::from_millis(50),
            c.read_some(&mut |m| {
                if let Some(reply) = m.reply {
                    out.extend_from_slice(b"PUB ");
                    out.extend_from_slice(reply);
                    out.push(b' ');
                    out.extend_from_slice(num.format(m.payload.len()).as_bytes());
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(m.payload);
                    out.extend_from_slice(b"\r\n");
                }
            }),
        )
        .await;
        if let Ok(r) = r {
            r.context("responder")?;
        }
        if !out.is_empty() {
            c.write_all(&out).await.context("responder")?;
            out.clear();
        }
    }
    Ok(())
}

/// One-way sender: payload starts with the intended and the actual send time
/// (ns since the schedule's start, little endian).
async fn one_way_tx(
    mut c: Conn,
    subject: &str,
    size: usize,
    sched: Schedule,
    epoch: Instant,
    stop: &AtomicBool,
    progress: &crate::progress::Progress,
) -> Result<(ClientStat, Hists)> {
    let mut msg = format!("PUB {subject} {size}\r\n").into_bytes();
    let at = msg.len();
    msg.extend(std::iter::repeat_n(b'l', size));
    msg.extend_from_slice(b"\r\n");
    let mut st = ClientStat::default();
    let mut i = 0;
    while let Some(intended) = sched.at(i) {
        if stop.load(Relaxed) {
            break;
        }
        wait_until(intended).await;
        let actual = Instant::now();
        msg[at..at + 8].copy_from_slice(&ns(intended - epoch).to_le_bytes());
        msg[at + 8..at + 16].copy_from_slice(&ns(actual - epoch).to_le_bytes());
        c.write_all(&msg).await.context("latency publisher")?;
        c.poll().await.context("latency publisher")?;
        st.msgs += 1;
        st.bytes += size as u64;
        st.elapsed = actual - sched.start;
        progress.add(1);
        i += 1;
    }
    c.flush().await.context("latency publisher")?;
    Ok((st, (new_hist(), new_hist())))
}

/// One-way receiver: records arrival minus the stamps in each payload.
async fn one_way_rx(
    mut c: Conn,
    epoch: Instant,
    stop: &AtomicBool,
    received: &AtomicU64,
    _progress: &crate::progress::Progress,
) -> Result<(ClientStat, Hists)> {
    let (mut hc, mut hu) = (new_hist(), new_hist());
    let mut st = ClientStat::default();
    while !stop.load(Relaxed) {
        let (mut n, mut bytes) = (0, 0);
        let r = timeout(
            Duration::from_millis(50),
            c.read_some(&mut |m| {
                let now = ns(epoch.elapsed());
                if m.payload.len() >= 16 {
                    let stamp = |r: std::ops::Range<usize>| {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&m.payload[r]);
                        u64::from_le_bytes(b)
                    };
                    hc.saturating_record(now.saturating_sub(stamp(0..8)).max(1));
                    hu.saturating_record(now.saturating_sub(stamp(8..16)).max(1));
                }
                n += 1;
                bytes += m.payload.len() as u64;
            }),
        )
        .await;
        if n > 0 {
            st.msgs += n;
            st.bytes += bytes;
            st.elapsed = epoch.elapsed();
            received.fetch_add(n, Relaxed);
        }
        if let Ok(r) = r {
            r.context("latency subscriber")?;
        }
    }
    Ok((st, (hc, hu)))
}
