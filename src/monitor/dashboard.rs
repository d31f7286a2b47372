//! The live dashboard on the monitoring port: `/` (one embedded page),
//! `/dashboard.js` and `/dashboard/data` (everything the page draws, as JSON).
//!
//! Owns a once-a-second sampler that keeps five minutes of server-wide rates
//! and the per-connection message rates, built only from the snapshots the
//! other endpoints use, plus the sampled subjects and latency histogram that
//! `conn::sample` keeps. It must not touch the message path: the page's cost
//! is the sampler's one pass over the connection snapshots per second and one
//! JSON answer per poll.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::conn::sample::{LatencyHist, SubjectCount, DELIVERY_LATENCY, SAMPLE_EVERY};
use crate::state::{ServerState, VERSION};
use crate::sync::Mutex;

use super::Monitor;

pub(super) const PAGE: &str = include_str!("dashboard.html");
pub(super) const SCRIPT: &str = include_str!("dashboard.js");

/// Five minutes of one-second points.
const HISTORY: usize = 300;
/// Connections listed, busiest first.
const TOP_CONNS: usize = 50;
/// Recently closed connections listed.
const RECENT_CLOSED: usize = 20;

/// One second of the whole server.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Point {
    /// Unix milliseconds.
    pub t: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub connections: usize,
    pub subscriptions: usize,
    pub slow_consumers: u64,
}

/// One row of the connections table.
#[derive(Debug, Clone, Serialize)]
pub struct ConnRow {
    pub cid: u64,
    pub name: String,
    pub addr: String,
    pub subscriptions: u64,
    pub pending_bytes: usize,
    pub rtt_us: u64,
    /// Messages in plus out per second over the last sampler second.
    pub msgs_per_s: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClosedRow {
    pub cid: u64,
    pub name: String,
    pub addr: String,
    pub reason: &'static str,
    /// Unix milliseconds.
    pub stop: u64,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    /// What the histogram measures, for the page's caption.
    pub what: &'static str,
    pub sample_every: u64,
    /// Bucket `i` counts samples in `[2^i, 2^(i+1))` ns.
    pub buckets: Vec<u64>,
    pub count: u64,
    pub p50_ns: Option<u64>,
    pub p90_ns: Option<u64>,
    pub p99_ns: Option<u64>,
    pub p999_ns: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Identity {
    pub server_id: String,
    pub server_name: String,
    pub version: &'static str,
    pub start_ms: u64,
    pub now_ms: u64,
    pub config_file: String,
    pub config_load_ms: u64,
    pub max_payload: usize,
}

/// Everything one poll of the page needs.
#[derive(Debug, Serialize)]
pub struct Data {
    pub server: Identity,
    /// Oldest first; rates are per second.
    pub series: Vec<Point>,
    pub connections: Vec<ConnRow>,
    pub closed: Vec<ClosedRow>,
    pub subjects: Vec<SubjectCount>,
    pub subjects_sample_every: u64,
    pub latency: Latency,
}

/// The sampler's memory between ticks.
#[derive(Default)]
pub(crate) struct Dashboard {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    series: VecDeque<Point>,
    last_totals: Option<(u64, u64, u64, u64)>,
    /// cid → messages in + out at the previous tick.
    last_msgs: HashMap<u64, u64>,
    conns: Vec<ConnRow>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Dashboard {
    /// Starts the once-a-second sampler for `mon` (stops when it is dropped).
    pub(super) fn start(mon: &Arc<Monitor>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<Monitor> = Arc::downgrade(mon);
        rt.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(mon) = weak.upgrade() else { return };
                mon.dashboard.sample(&mon.server);
            }
        });
    }

    fn sample(&self, srv: &ServerState) {
        let c = srv.counts();
        let totals = (c.in_msgs, c.out_msgs, c.in_bytes, c.out_bytes);
        let clients = srv.clients();
        // Snapshots first: the sampler's own lock stays a leaf lock.
        let snaps: Vec<_> = clients.iter().map(|c| c.snapshot(false)).collect();
        let mut rows = Vec::with_capacity(snaps.len());
        let mut msgs = HashMap::with_capacity(snaps.len());
        let mut inner = self.inner.lock();
        for s in snaps {
            let total = s.in_msgs + s.out_msgs;
            let before = inner.last_msgs.get(&s.cid).copied().unwrap_or(total);
            msgs.insert(s.cid, total);
            rows.push(ConnRow {
                cid: s.cid,
                name: s.name,
                addr: format!("{}:{}", s.ip, s.port),
                subscriptions: s.subscriptions,
                pending_bytes: s.pending_bytes,
                rtt_us: s.rtt.as_micros() as u64,
                msgs_per_s: total.saturating_sub(before),
                in_msgs: s.in_msgs,
                out_msgs: s.out_msgs,
            });
        }
        rows.sort_by(|a, b| b.msgs_per_s.cmp(&a.msgs_per_s).then(a.cid.cmp(&b.cid)));
        rows.truncate(TOP_CONNS);
        let prev = inner.last_totals.unwrap_or(totals);
        let point = Point {
            t: unix_ms(SystemTime::now()),
            in_msgs: totals.0.saturating_sub(prev.0),
            out_msgs: totals.1.saturating_sub(prev.1),
            in_bytes: totals.2.saturating_sub(prev.2),
            out_bytes: totals.3.saturating_sub(prev.3),
            connections: clients.len(),
            subscriptions: srv.accounts.client_subscriptions(),
            slow_consumers: srv.slow_consumers.load(Ordering::Relaxed),
        };
        inner.last_totals = Some(totals);
        inner.last_msgs = msgs;
        inner.conns = rows;
        if inner.series.len() == HISTORY {
            inner.series.pop_front();
        }
        inner.series.push_back(point);
        drop(inner);
        srv.top_subjects.decay();
    }

    pub(super) fn data(&self, srv: &ServerState) -> Data {
        let (series, connections) = {
            let inner = self.inner.lock();
            (inner.series.iter().copied().collect(), inner.conns.clone())
        };
        let closed = srv
            .closed_connections()
            .into_iter()
            .rev()
            .take(RECENT_CLOSED)
            .map(|s| ClosedRow {
                cid: s.cid,
                name: s.name,
                addr: format!("{}:{}", s.ip, s.port),
                reason: s.reason.unwrap_or(""),
                stop: s.stop.map_or(0, unix_ms),
            })
            .collect();
        let buckets = DELIVERY_LATENCY.counts();
        let q = |p| LatencyHist::quantile(&buckets, p);
        let opts = srv.opts();
        Data {
            server: Identity {
                server_id: srv.server_id.clone(),
                server_name: opts
                    .server_name
                    .clone()
                    .unwrap_or_else(|| srv.server_id.clone()),
                version: VERSION,
                start_ms: unix_ms(srv.start),
                now_ms: unix_ms(SystemTime::now()),
                config_file: opts
                    .config_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                config_load_ms: unix_ms(srv.config_load_time()),
                max_payload: opts.max_payload,
            },
            series,
            connections,
            closed,
            subjects: srv.top_subjects.snapshot(),
            subjects_sample_every: SAMPLE_EVERY,
            latency: Latency {
                what: "sampled PUB accepted → its MSG written to the subscriber's socket",
                sample_every: SAMPLE_EVERY,
                count: buckets.iter().sum(),
                p50_ns: q(0.5),
                p90_ns: q(0.9),
                p99_ns: q(0.99),
                p999_ns: q(0.999),
                buckets,
            },
        }
    }
}
