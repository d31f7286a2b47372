//! `/varz`: server identity, limits and counters with nats-server's field names
//! and types (durations as integer nanoseconds where Go marshals
//! `time.Duration`, times as RFC 3339, `uptime` as `1d2h3m4s`), plus process
//! memory and CPU read from `/proc/self`.
//!
//! Reads options and counters only; must not write server state.

use crate::sync::Mutex;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::Monitor;
use crate::state::{ServerState, VERSION};
use crate::time::{rfc3339, since, uptime};

/// `/varz` response, as nats-server's `Varz` (no cluster/gateway/leaf/JetStream).
#[derive(Debug, Serialize)]
pub struct Varz {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub proto: u32,
    pub go: String,
    pub host: String,
    pub port: u16,
    pub auth_required: bool,
    pub tls_required: bool,
    pub max_connections: usize,
    pub max_subscriptions: usize,
    /// Nanoseconds (Go `time.Duration`).
    pub ping_interval: u64,
    pub ping_max: u32,
    pub http_host: String,
    pub http_port: u16,
    pub http_base_path: String,
    pub https_port: u16,
    /// Seconds, fractional (Go `float64`).
    pub auth_timeout: f64,
    pub max_control_line: usize,
    pub max_payload: usize,
    pub max_pending: usize,
    /// Seconds, fractional.
    pub tls_timeout: f64,
    /// Nanoseconds (Go `time.Duration`).
    pub write_deadline: u64,
    pub start: String,
    pub now: String,
    pub uptime: String,
    /// Resident set size in bytes.
    pub mem: u64,
    pub cores: usize,
    pub gomaxprocs: usize,
    /// Percent of one core since the previous `/varz` (can exceed 100).
    pub cpu: f64,
    pub connections: usize,
    pub total_connections: u64,
    pub routes: u64,
    pub remotes: u64,
    pub leafnodes: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub slow_consumers: u64,
    pub subscriptions: u64,
    pub http_req_stats: BTreeMap<&'static str, u64>,
    pub config_load_time: String,
    /// The system account's name (`$SYS` unless `system_account` is set).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system_account: String,
    pub slow_consumer_stats: SlowConsumersStats,
    /// Sections for features natrium does not have: nats-server writes them
    /// as empty objects when they are not configured.
    pub cluster: Unconfigured,
    pub gateway: Unconfigured,
    pub leaf: Unconfigured,
    pub mqtt: Unconfigured,
    pub websocket: Unconfigured,
    pub jetstream: Unconfigured,
}

/// Serialises as `{}`.
#[derive(Debug, Default, Serialize)]
pub struct Unconfigured {}

/// Slow consumers by connection kind; natrium has only clients.
#[derive(Debug, Serialize)]
pub struct SlowConsumersStats {
    pub clients: u64,
    pub routes: u64,
    pub gateways: u64,
    pub leafs: u64,
}

/// The name INFO reports: the configured one, else the server id.
pub(crate) fn server_name(s: &ServerState) -> String {
    s.opts()
        .server_name
        .clone()
        .unwrap_or_else(|| s.server_id.clone())
}

pub(crate) fn collect(mon: &Monitor) -> Varz {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &mon.server;
    let o = s.opts();
    let now = SystemTime::now();
    let counts = s.counts();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let slow = s.slow_consumers.load(Relaxed);
    let (http_host, http_port) = match mon.http_addr {
        Some(a) => (a.ip().to_string(), a.port()),
        None => (o.http_host.clone(), o.http_port.unwrap_or(0)),
    };
    Varz {
        server_id: s.server_id.clone(),
        server_name: server_name(s),
        version: VERSION.to_string(),
        proto: 1,
        go: "natrium (rust)".to_string(),
        host: o.host.clone(),
        port: client_port(s),
        auth_required: o.username.is_some() || o.token.is_some() || !o.users.is_empty(),
        tls_required: o.tls.is_some(),
        max_connections: o.max_connections,
        max_subscriptions: o.max_subscriptions,
        ping_interval: nanos(o.ping_interval),
        ping_max: o.ping_max,
        http_host,
        http_port,
        http_base_path: String::new(),
        https_port: 0,
        auth_timeout: o.auth_timeout.as_secs_f64(),
        max_control_line: o.max_control_line,
        max_payload: o.max_payload,
        max_pending: o.max_pending,
        tls_timeout: o
            .tls
            .as_ref()
            .and_then(|t| t.timeout)
            .map_or(2.0, |d| d.as_secs_f64()),
        write_deadline: nanos(o.write_deadline),
        start: rfc3339(s.start),
        now: rfc3339(now),
        uptime: uptime(since(now, s.start)),
        mem: rss_bytes(),
        cores,
        gomaxprocs: cores,
        cpu: mon.cpu.percent(),
        connections: s.num_connections(),
        total_connections: s.total_connections.load(Relaxed),
        routes: 0,
        remotes: 0,
        leafnodes: s.leafs.count() as u64,
        in_msgs: counts.in_msgs,
        out_msgs: counts.out_msgs,
        in_bytes: counts.in_bytes,
        out_bytes: counts.out_bytes,
        slow_consumers: slow,
        subscriptions: s.accounts.client_subscriptions() as u64,
        http_req_stats: mon.req_stats(),
        config_load_time: rfc3339(s.config_load_time()),
        system_account: s.accounts.system().name.to_string(),
        slow_consumer_stats: SlowConsumersStats {
            clients: slow,
            routes: 0,
            gateways: 0,
            leafs: 0,
        },
        cluster: Unconfigured::default(),
        gateway: Unconfigured::default(),
        leaf: Unconfigured::default(),
        mqtt: Unconfigured::default(),
        websocket: Unconfigured::default(),
        jetstream: Unconfigured::default(),
    }
}

/// The client port actually bound. `ServerState` keeps it private, so it is
/// read back from the INFO line the server would send (options say 0 when a
/// random port was asked for).
fn client_port(s: &ServerState) -> u16 {
    let probe = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let line = s.info_line(0, &probe, None);
    let json = line
        .strip_prefix(b"INFO ")
        .map(|rest| rest.trim_ascii_end())
        .and_then(|j| serde_json::from_slice::<serde_json::Value>(j).ok());
    json.and_then(|v| v.get("port")?.as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(s.opts().port)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Linux page size; `/proc/self/statm` counts pages.
const PAGE_SIZE: u64 = 4096;
/// Linux `USER_HZ`: `/proc/self/stat` counts CPU time in these ticks.
const TICKS_PER_SEC: f64 = 100.0;

/// Resident set size from `/proc/self/statm`, 0 where unavailable.
pub(crate) fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * PAGE_SIZE)
}

/// User plus system CPU ticks of this process, from `/proc/self/stat`.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU use between successive samples, like nats-server's periodic `pcpu`.
/// Samples closer than `MIN_INTERVAL` reuse the previous figure so that fast
/// pollers do not read noise.
#[derive(Default)]
pub(crate) struct CpuSampler {
    last: Mutex<Option<CpuSample>>,
}

struct CpuSample {
    at: Instant,
    ticks: u64,
    percent: f64,
}

const MIN_INTERVAL: Duration = Duration::from_millis(500);

impl CpuSampler {
    pub(crate) fn percent(&self) -> f64 {
        let Some(ticks) = cpu_ticks() else {
            return 0.0;
        };
        let now = Instant::now();
        let mut last = self.last.lock();
        let percent = match last.as_ref() {
            Some(prev) if now.duration_since(prev.at) < MIN_INTERVAL => return prev.percent,
            Some(prev) => {
                let secs = now.duration_since(prev.at).as_secs_f64();
                let used = ticks.saturating_sub(prev.ticks) as f64 / TICKS_PER_SEC;
                used / secs * 100.0
            }
            // First sample: average over the process's life so far.
            None => process_average(ticks),
        };
        let percent = (percent * 10.0).round() / 10.0;
        *last = Some(CpuSample {
            at: now,
            ticks,
            percent,
        });
        percent
    }
}

/// CPU percent averaged since the process started (`/proc/self/stat` field 22
/// against `/proc/uptime`), 0 if unreadable.
fn process_average(ticks: u64) -> f64 {
    let start_ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.get(s.rfind(')')? + 2..)?.to_string();
            rest.split_whitespace().nth(19)?.parse::<u64>().ok()
        });
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok());
    match (start_ticks, uptime) {
        (Some(st), Some(up)) => {
            let alive = up - st as f64 / TICKS_PER_SEC;
            if alive > 0.0 {
                ticks as f64 / TICKS_PER_SEC / alive * 100.0
            } else {
                0.0
            }
        }
        _ => 0.0,
    }
}
