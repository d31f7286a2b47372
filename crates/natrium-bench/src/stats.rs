//! What a run measured, and how it is shown: per-client throughput spreads,
//! delivered-count checks, latency percentiles, the human table and JSON.
//!
//! Owns the report shapes and their formatting only; it must not talk to a
//! server. Latency histograms are recorded in nanoseconds.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The percentiles every latency report shows (never a mean alone).
pub const PERCENTILES: [f64; 6] = [50.0, 90.0, 99.0, 99.9, 99.99, 99.999];

/// A histogram for latencies in ns: 1 ns to 1 h, 3 significant digits.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("static bounds are valid")
}

/// What one client did.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientStat {
    pub msgs: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// min/avg/max/stddev of one figure across clients.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Spread {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub stddev: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        let n = values.len() as f64;
        let avg = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - avg).powi(2)).sum::<f64>() / n;
        Spread {
            min: values.iter().cloned().fold(f64::INFINITY, f64::min),
            avg,
            max: values.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            stddev: var.sqrt(),
        }
    }
}

/// Publishers or subscribers, aggregated.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Side {
    pub clients: usize,
    pub msgs: u64,
    pub bytes: u64,
    pub elapsed_s: f64,
    pub msgs_per_s: f64,
    pub bytes_per_s: f64,
    /// Per-client msgs/s.
    pub per_client: Spread,
}

impl Side {
    /// Aggregates clients; the side's time is its slowest client's.
    pub fn of(stats: &[ClientStat]) -> Side {
        let msgs = stats.iter().map(|s| s.msgs).sum();
        let bytes = stats.iter().map(|s| s.bytes).sum();
        let elapsed = stats.iter().map(|s| s.elapsed).max().unwrap_or_default();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let rates: Vec<f64> = stats
            .iter()
            .map(|s| s.msgs as f64 / s.elapsed.as_secs_f64().max(1e-9))
            .collect();
        Side {
            clients: stats.len(),
            msgs,
            bytes,
            elapsed_s: elapsed.as_secs_f64(),
            msgs_per_s: msgs as f64 / secs,
            bytes_per_s: bytes as f64 / secs,
            per_client: Spread::of(&rates),
        }
    }
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pcts {
    pub count: u64,
    pub mean_us: f64,
    /// (percentile, µs) pairs for `PERCENTILES`.
    pub percentiles_us: Vec<(f64, f64)>,
    pub max_us: f64,
}

impl Pcts {
    pub fn of(h: &Histogram<u64>) -> Pcts {
        Pcts {
            count: h.len(),
            mean_us: h.mean() / 1e3,
            percentiles_us: PERCENTILES
                .iter()
                .map(|p| (*p, h.value_at_percentile(*p) as f64 / 1e3))
                .collect(),
            max_us: h.max() as f64 / 1e3,
        }
    }
}

/// Fixed-rate latency results: the corrected and the uncorrected view.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub target_rate: f64,
    pub achieved_rate: f64,
    /// Measured from each request's intended send time (schedule).
    pub corrected: Pcts,
    /// Measured from its actual send time: hides coordinated omission.
    pub uncorrected: Pcts,
    #[serde(skip)]
    pub hist_corrected: Histogram<u64>,
    #[serde(skip)]
    pub hist_uncorrected: Histogram<u64>,
}

impl Latency {
    pub fn new(target_rate: f64, achieved_rate: f64, c: Histogram<u64>, u: Histogram<u64>) -> Self {
        Latency {
            target_rate,
            achieved_rate,
            corrected: Pcts::of(&c),
            uncorrected: Pcts::of(&u),
            hist_corrected: c,
            hist_uncorrected: u,
        }
    }
}

/// One run's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub workload: String,
    pub server: String,
    pub payload_size: usize,
    pub interrupted: bool,
    pub publishers: Option<Side>,
    pub subscribers: Option<Side>,
    /// Messages the subscribers should have received, and did.
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub latency: Option<Latency>,
}

impl Report {
    pub fn new(workload: &str, server: &str, size: usize) -> Report {
        Report {
            workload: workload.into(),
            server: server.into(),
            payload_size: size,
            interrupted: false,
            publishers: None,
            subscribers: None,
            expected: 0,
            received: 0,
            lost: 0,
            duplicated: 0,
            latency: None,
        }
    }

    /// Sets expected/received and the loss figures from them.
    pub fn check(&mut self, expected: u64, received: u64) {
        self.expected = expected;
        self.received = received;
        self.lost = expected.saturating_sub(received);
        self.duplicated = received.saturating_sub(expected);
    }

    /// Flat metrics for `--compare` (name, value, higher-is-better).
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let mut m = Vec::new();
        let mut overall = 0.0;
        if let Some(p) = &self.publishers {
            m.push(("pub msgs/s".into(), p.msgs_per_s));
            m.push(("pub MB/s".into(), p.bytes_per_s / 1e6));
            overall += p.msgs as f64 / p.elapsed_s.max(1e-9);
        }
        if let Some(s) = &self.subscribers {
            m.push(("sub msgs/s".into(), s.msgs_per_s));
            m.push(("sub MB/s".into(), s.bytes_per_s / 1e6));
            overall += s.msgs as f64 / s.elapsed_s.max(1e-9);
        }
        if self.publishers.is_some() || self.subscribers.is_some() {
            m.push(("total msgs/s".into(), overall));
        }
        if let Some(l) = &self.latency {
            for (p, v) in &l.corrected.percentiles_us {
                m.push((format!("p{p} µs"), *v));
            }
            m.push(("max µs".into(), l.corrected.max_us));
            for (p, v) in &l.uncorrected.percentiles_us {
                m.push((format!("p{p} µs (uncorr.)"), *v));
            }
        }
        m
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{} against {} ({} B payload){}",
            self.workload,
            self.server,
            self.payload_size,
            if self.interrupted {
                " — INTERRUPTED, partial results"
            } else {
                ""
            }
        );
        let sides = [
            ("publishers", &self.publishers),
            ("subscribers", &self.subscribers),
        ];
        if sides.iter().any(|(_, s)| s.is_some()) {
            let _ = writeln!(
                o,
                "  {:<12} {:>7} {:>12} {:>8} {:>13} {:>10}   per-client msgs/s min/avg/max/stddev",
                "", "clients", "msgs", "secs", "msgs/s", "MB/s"
            );
        }
        for (name, side) in sides {
            if let Some(s) = side {
                let pc = &s.per_client;
                let _ = writeln!(
                    o,
                    "  {:<12} {:>7} {:>12} {:>8.3} {:>13.0} {:>10.2}   {:.0} / {:.0} / {:.0} / {:.0}",
                    name, s.clients, s.msgs, s.elapsed_s, s.msgs_per_s, s.bytes_per_s / 1e6,
                    pc.min, pc.avg, pc.max, pc.stddev
                );
            }
        }
        if self.subscribers.is_some() {
            let _ = writeln!(
                o,
                "  delivered {} of {} expected",
                self.received, self.expected
            );
        }
        if let Some(l) = &self.latency {
            let _ = writeln!(
                o,
                "  latency at {:.0}/s target ({:.0}/s achieved), {} samples, µs:",
                l.target_rate, l.achieved_rate, l.corrected.count
            );
            let _ = write!(o, "  {:<14}", "");
            for p in PERCENTILES {
                let _ = write!(o, " {:>10}", format!("p{p}"));
            }
            let _ = writeln!(o, " {:>10}", "max");
            for (name, p) in [("corrected", &l.corrected), ("uncorrected", &l.uncorrected)] {
                let _ = write!(o, "  {name:<14}");
                for (_, v) in &p.percentiles_us {
                    let _ = write!(o, " {v:>10.1}");
                }
                let _ = writeln!(o, " {:>10.1}", p.max_us);
            }
        }
        if self.lost > 0 {
            let _ = writeln!(
                o,
                "  !!! LOST {} of {} messages ({:.3}%) !!!",
                self.lost,
                self.expected,
                100.0 * self.lost as f64 / self.expected.max(1) as f64
            );
        }
        if self.duplicated > 0 {
            let _ = writeln!(
                o,
                "  !!! {} MORE messages than expected !!!",
                self.duplicated
            );
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_known_values() {
        let s = Spread::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!((s.min, s.avg, s.max, s.stddev), (2.0, 5.0, 9.0, 2.0));
    }

    #[test]
    fn loss_is_reported_loudly() {
        let mut r = Report::new("pubsub", "x", 16);
        r.subscribers = Some(Side::default());
        r.check(10, 7);
        assert_eq!(r.lost, 3);
        assert!(r.table().contains("LOST 3 of 10"));
    }
}
