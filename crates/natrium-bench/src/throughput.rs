//! Throughput workloads: `pub`, `sub`, `pubsub`, `fanout` and `queue`.
//!
//! Owns the publisher and subscriber loops and the delivered-count check. It
//! must not format output (stats does) or parse the wire (conn does).
//! Publishers write pre-built batches of PUBs (~64 KiB, one write each) and only
//! poll the socket between batches, so the tool is never the bottleneck. With
//! `--rate` they are paced instead: the same batches, cut at the messages due
//! so far (equal offered load for servers of different speeds).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::conn::Conn;
use crate::pace::{wait_until, Pacer, TICK};
use crate::stats::{ClientStat, Report, Side};
use crate::{Ctx, Load, Workload};

/// Pre-built PUBs: each chunk is one write; `ends[i]` is where message i+1 ends.
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub ends: Vec<usize>,
}

/// Builds the publish batches, cycling through `subjects` subjects when > 1
/// (defeats the server's match cache when publishing into many subscriptions).
pub fn plan(subject: &str, subjects: usize, size: usize) -> Vec<Chunk> {
    const TARGET: usize = 64 * 1024;
    let payload = vec![b'x'; size];
    let mut num = itoa::Buffer::new();
    let mut chunks = Vec::new();
    let mut cur = Chunk {
        bytes: Vec::with_capacity(TARGET + size + 64),
        ends: Vec::new(),
    };
    // One subject: repeat it to fill a chunk. Many: each subject once.
    let count = if subjects > 1 {
        subjects
    } else {
        // "PUB <subject> <size>\r\n<payload>\r\n"
        let per_msg = 4 + subject.len() + 1 + num.format(size).len() + 2 + size + 2;
        (TARGET / per_msg).max(1)
    };
    for k in 0..count {
        cur.bytes.extend_from_slice(b"PUB ");
        cur.bytes.extend_from_slice(subject.as_bytes());
        if subjects > 1 {
            cur.bytes.push(b'.');
            cur.bytes.extend_from_slice(num.format(k).as_bytes());
        }
        cur.bytes.push(b' ');
        cur.bytes.extend_from_slice(num.format(size).as_bytes());
        cur.bytes.extend_from_slice(b"\r\n");
        cur.bytes.extend_from_slice(&payload);
        cur.bytes.extend_from_slice(b"\r\n");
        cur.ends.push(cur.bytes.len());
        if cur.bytes.len() >= TARGET && k + 1 < count {
            chunks.push(std::mem::replace(
                &mut cur,
                Chunk {
                    bytes: Vec::with_capacity(TARGET + size + 64),
                    ends: Vec::new(),
                },
            ));
        }
    }
    chunks.push(cur);
    chunks
}

/// Creates `n` subscriptions with wildcards on one connection that never
/// match `subject.<k>`, so the server's interest graph is large but deliveries
/// stay zero. Returned connection must stay open for the run.
pub async fn hold_subscriptions(load: &Load, n: usize) -> Result<Conn> {
    let mut c = Conn::connect(&load.servers[0], "natrium-bench-holder").await?;
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut num = itoa::Buffer::new();
    for i in 0..n {
        let s = num.format(i);
        // Alternate: `<subject>.<i>.*` and `<subject>.*.<i>.x` (4+ tokens).
        batch.extend_from_slice(b"SUB ");
        batch.extend_from_slice(load.subject.as_bytes());
        if i % 2 == 0 {
            batch.extend_from_slice(format!(".{s}.* ").as_bytes());
        } else {
            batch.extend_from_slice(format!(".*.{s}.x ").as_bytes());
        }
        batch.extend_from_slice(num.format(i + 1).as_bytes());
        batch.extend_from_slice(b"\r\n");
        if batch.len() >= 60 * 1024 {
            c.write_all(&batch).await?;
            c.poll().await?;
            batch.clear();
        }
    }
    c.write_all(&batch).await?;
    c.flush_with(Duration::from_secs(60), &mut |_| {})
        .await
        .context("creating the extra subscriptions")?;
    Ok(c)
}

/// Runs one throughput workload against `load.servers` (round-robin).
pub async fn run(load: &Load, ctx: &Ctx) -> Result<Report> {
    let wl = load.workload;
    let server = load.servers[0].url.clone();
    let mut report = Report::new(wl.name(), &server, load.size);
    let (npubs, nsubs) = match wl {
        Workload::Pub => (load.pubs, 0),
        Workload::Sub => (0, load.subs),
        Workload::Fanout => (1, load.subs),
        _ => (load.pubs, load.subs),
    };
    let queue = (wl == Workload::Queue).then(|| load.queue.clone());
    let _holder = match load.extra_subs {
        0 => None,
        n => Some(hold_subscriptions(load, n).await?),
    };

    // Subscribers first, each confirmed by a PONG before anyone publishes.
    // `target` is each subscriber's (or the queue group's) expected count.
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let group_total = Arc::new(AtomicU64::new(0));
    let pubs_done = Arc::new(AtomicU64::new(0));
    if wl == Workload::Sub {
        target.store(load.msgs.unwrap_or(u64::MAX), Relaxed);
    }
    let mut subs = Vec::new();
    for i in 0..nsubs {
        let ep = &load.servers[i % load.servers.len()];
        let mut c = Conn::connect(ep, &format!("natrium-bench-sub-{i}")).await?;
        let mut line = format!("SUB {} ", load.subject);
        if let Some(q) = &queue {
            line.push_str(q);
            line.push(' ');
        }
        line.push_str("1\r\n");
        c.write_all(line.as_bytes()).await?;
        c.flush().await?;
        subs.push(c);
    }
    let mut pubs = Vec::new();
    for i in 0..npubs {
        let ep = &load.servers[i % load.servers.len()];
        pubs.push(Conn::connect(ep, &format!("natrium-bench-pub-{i}")).await?);
    }

    let start = Instant::now();
    ctx.progress.start(start);
    let mut sub_set = JoinSet::new();
    for c in subs {
        let (t, g, d, stop) = (
            target.clone(),
            group_total.clone(),
            pubs_done.clone(),
            ctx.stop.clone(),
        );
        let (grouped, wait, deadline) = (queue.is_some(), load.wait, load.duration);
        let progress = ctx.progress.clone();
        sub_set.spawn(async move {
            let mut st = ClientStat::default();
            let mut c = c;
            let mut last_seen = (Instant::now(), 0u64);
            loop {
                let mine = if grouped { g.load(Relaxed) } else { st.msgs };
                if mine >= t.load(Relaxed) || stop.load(Relaxed) {
                    break;
                }
                if deadline.is_some_and(|d| start.elapsed() >= d) && npubs == 0 {
                    break;
                }
                if d.load(Relaxed) == npubs as u64 && npubs > 0 {
                    // Publishers are done: stop once no message came for `wait`.
                    if last_seen.1 != st.msgs {
                        last_seen = (Instant::now(), st.msgs);
                    } else if last_seen.0.elapsed() >= wait {
                        break;
                    }
                }
                let mut n = 0u64;
                let mut bytes = 0u64;
                let r = timeout(
                    Duration::from_millis(50),
                    c.read_some(&mut |m| {
                        n += 1;
                        bytes += m.payload.len() as u64;
                    }),
                )
                .await;
                if n > 0 {
                    st.msgs += n;
                    st.bytes += bytes;
                    st.elapsed = start.elapsed();
                    g.fetch_add(n, Relaxed);
                    if npubs == 0 {
                        progress.add(n);
                    }
                }
                if let Ok(Err(e)) = r {
                    return Err(anyhow::Error::from(e).context("subscriber"));
                }
            }
            Ok(st)
        });
    }

    let mut pub_set = JoinSet::new();
    for (i, c) in pubs.into_iter().enumerate() {
        let chunks = plan(&load.subject, load.subjects, load.size);
        let (msgs, dur, stop) = (load.msgs, load.duration, ctx.stop.clone());
        let pacer = load.pace.map(|rate| Pacer::new(start, rate, npubs, i));
        let (done, progress, size) = (pubs_done.clone(), ctx.progress.clone(), load.size);
        pub_set.spawn(async move {
            let r = publish(c, &chunks, msgs, dur, pacer, &stop, &progress, start).await;
            done.fetch_add(1, Relaxed);
            r.map(|(msgs, elapsed)| ClientStat {
                msgs,
                bytes: msgs * size as u64,
                elapsed,
            })
        });
    }
    let mut pub_stats = Vec::new();
    let mut first_err = None;
    while let Some(r) = pub_set.join_next().await {
        match r.context("publisher task")? {
            Ok(s) => pub_stats.push(s),
            Err(e) => {
                ctx.stop.store(true, Relaxed);
                first_err.get_or_insert(e);
            }
        }
    }
    let published: u64 = pub_stats.iter().map(|s| s.msgs).sum();
    if npubs > 0 {
        // Each subscriber expects every message; a queue group, all together.
        target.store(published, Relaxed);
    }
    let mut sub_stats = Vec::new();
    while let Some(r) = sub_set.join_next().await {
        match r.context("subscriber task")? {
            Ok(s) => sub_stats.push(s),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    report.interrupted = ctx.stop.load(Relaxed);
    if npubs > 0 {
        report.publishers = Some(Side::of(&pub_stats));
    }
    if nsubs > 0 {
        let received = sub_stats.iter().map(|s| s.msgs).sum();
        let expected = match (npubs, &queue) {
            (0, _) => load.msgs.map_or(received, |m| m * nsubs as u64),
            (_, Some(_)) => published,
            _ => published * nsubs as u64,
        };
        report.check(expected, received);
        report.subscribers = Some(Side::of(&sub_stats));
    }
    Ok(report)
}

/// One publisher: batches until `msgs` or `dur`, then a PING/PONG flush.
/// Unpaced, each write is a whole pre-built batch; paced (`pacer`), each write
/// is what was due at the start of the current `pace::TICK` (written in as
/// many batch-sized writes as it takes), then the publisher waits for the
/// next tick.
/// Returns messages sent and the time until the server confirmed them.
#[allow(clippy::too_many_arguments)]
async fn publish(
    mut c: Conn,
    chunks: &[Chunk],
    msgs: Option<u64>,
    dur: Option<Duration>,
    pacer: Option<Pacer>,
    stop: &std::sync::atomic::AtomicBool,
    progress: &crate::progress::Progress,
    start: Instant,
) -> Result<(u64, Duration)> {
    let limit = msgs.unwrap_or(u64::MAX);
    let end = dur.map(|d| start + d);
    let mut sent = 0u64;
    // Cursor: message `mi` of chunk `ci` is the next to send.
    let (mut ci, mut mi) = (0, 0);
    // Paced: the current tick began at `tick`; by its end `target` are sent.
    let (mut tick, mut target) = (start.checked_sub(TICK).unwrap_or(start), 0);
    while sent < limit && !stop.load(Relaxed) {
        if end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        let chunk = &chunks[ci];
        let mut n = ((chunk.ends.len() - mi) as u64).min(limit - sent);
        if let Some(p) = &pacer {
            if sent >= target {
                // This tick's messages are out: wait for the next tick.
                let next = p.at(sent).max(tick + TICK);
                if end.is_some_and(|e| next >= e) {
                    break;
                }
                wait_until(next).await;
                tick = Instant::now();
                target = p.due_by(tick);
                continue;
            }
            n = n.min(target - sent);
        }
        let from = if mi == 0 { 0 } else { chunk.ends[mi - 1] };
        let to = chunk.ends[mi + n as usize - 1];
        c.write_all(&chunk.bytes[from..to])
            .await
            .context("publisher")?;
        sent += n;
        mi += n as usize;
        if mi == chunk.ends.len() {
            (ci, mi) = ((ci + 1) % chunks.len(), 0);
        }
        progress.add(n);
        c.poll().await.context("publisher")?;
    }
    c.flush_with(Duration::from_secs(30), &mut |_| {})
        .await
        .context("publisher final flush")?;
    Ok((sent, start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_cuts_exact_messages() {
        let chunks = plan("a", 1, 16);
        let c = &chunks[0];
        assert_eq!(chunks.len(), 1);
        assert_eq!(c.ends[0], b"PUB a 16\r\n".len() + 18);
        assert!(c.bytes.len() >= 60 * 1024);
        let many = plan("s", 5000, 8);
        let total: usize = many.iter().map(|c| c.ends.len()).sum();
        assert_eq!(total, 5000);
        assert!(many.len() > 1);
    }
}
