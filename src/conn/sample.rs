//! Cheap, sampled views of the message flow for the live dashboard: the
//! publish→delivered latency histogram and the busiest subjects.
//!
//! Owns the two data structures only. The reader samples one publish in
//! [`SAMPLE_EVERY`] (a counter it already has); nothing here runs for the other
//! messages, and nothing here allocates after creation. It must not know about
//! sockets or the monitor that reads it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sync::Mutex;

/// One publish in this many (per connection) is sampled.
pub const SAMPLE_EVERY: u64 = 64;

/// Log2 buckets of nanoseconds: bucket `i` holds samples in `[2^i, 2^(i+1))`.
const BUCKETS: usize = 40;

/// A histogram of durations in power-of-two buckets, updated with one relaxed
/// atomic add per sample.
pub struct LatencyHist {
    buckets: [AtomicU64; BUCKETS],
}

/// Time from a sampled PUB being parsed to the write of its MSG into the
/// subscriber's socket completing (the first sampled message of a write).
/// Process-wide: the writer records into it without knowing its server.
pub static DELIVERY_LATENCY: LatencyHist = LatencyHist::new();

impl LatencyHist {
    pub const fn new() -> Self {
        LatencyHist {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
        }
    }

    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        let i = (63 - ns.leading_zeros() as usize).min(BUCKETS - 1);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn record_since(&self, t: Instant) {
        self.record(t.elapsed());
    }

    /// Counts per bucket (bucket `i` starts at `2^i` ns).
    pub fn counts(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    /// The upper bound (ns) of the bucket holding quantile `q` of `counts`.
    pub fn quantile(counts: &[u64], q: f64) -> Option<u64> {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(1u64 << (i + 1).min(63));
            }
        }
        None
    }
}

impl Default for LatencyHist {
    fn default() -> Self {
        Self::new()
    }
}

/// Subjects longer than this are kept truncated (and marked by `truncated`).
const SUBJECT_MAX: usize = 96;
const SLOTS: usize = 32;

#[derive(Clone, Copy)]
struct Slot {
    subject: [u8; SUBJECT_MAX],
    len: u8,
    truncated: bool,
    count: u64,
}

const EMPTY: Slot = Slot {
    subject: [0; SUBJECT_MAX],
    len: 0,
    truncated: false,
    count: 0,
};

/// The busiest subjects among sampled publishes: a space-saving sketch of
/// fixed size (a new subject replaces the smallest count and inherits it, so
/// heavy hitters are kept), decayed by the monitor's sampler so counts follow
/// recent traffic. Touched only for sampled messages; never allocates.
pub struct TopSubjects {
    slots: Mutex<[Slot; SLOTS]>,
}

/// One subject of [`TopSubjects::snapshot`] with its sampled count.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SubjectCount {
    pub subject: String,
    pub truncated: bool,
    pub count: u64,
}

impl Default for TopSubjects {
    fn default() -> Self {
        TopSubjects {
            slots: Mutex::new([EMPTY; SLOTS]),
        }
    }
}

impl TopSubjects {
    pub fn record(&self, subject: &[u8]) {
        let cut = subject.get(..SUBJECT_MAX).unwrap_or(subject);
        let mut slots = self.slots.lock();
        let mut min_i = 0;
        let mut min = u64::MAX;
        for (i, s) in slots.iter_mut().enumerate() {
            if s.count > 0 && s.subject.get(..usize::from(s.len)) == Some(cut) {
                s.count += 1;
                return;
            }
            if s.count < min {
                min = s.count;
                min_i = i;
            }
        }
        if let Some(s) = slots.get_mut(min_i) {
            if let Some(dst) = s.subject.get_mut(..cut.len()) {
                dst.copy_from_slice(cut);
            }
            s.len = cut.len() as u8;
            s.truncated = subject.len() > cut.len();
            s.count = min.saturating_add(1).max(1);
        }
    }

    /// Halves every count (the sampler calls it each second: a moving window).
    pub fn decay(&self) {
        for s in self.slots.lock().iter_mut() {
            s.count /= 2;
        }
    }

    /// The subjects with a count, busiest first.
    pub fn snapshot(&self) -> Vec<SubjectCount> {
        let slots = *self.slots.lock();
        let mut out: Vec<SubjectCount> = slots
            .iter()
            .filter(|s| s.count > 0)
            .map(|s| SubjectCount {
                subject: String::from_utf8_lossy(
                    s.subject.get(..usize::from(s.len)).unwrap_or(&[]),
                )
                .into_owned(),
                truncated: s.truncated,
                count: s.count,
            })
            .collect();
        out.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.subject.cmp(&b.subject))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        let h = LatencyHist::new();
        for _ in 0..90 {
            h.record(Duration::from_nanos(1500)); // bucket 10: [1024, 2048)
        }
        for _ in 0..10 {
            h.record(Duration::from_micros(100)); // bucket 16: [65536, 131072)
        }
        let c = h.counts();
        assert_eq!(c[10], 90);
        assert_eq!(c[16], 10);
        assert_eq!(LatencyHist::quantile(&c, 0.5), Some(2048));
        assert_eq!(LatencyHist::quantile(&c, 0.95), Some(131_072));
        assert_eq!(LatencyHist::quantile(&[0; 4], 0.5), None);
        h.record(Duration::ZERO);
        assert_eq!(h.counts()[0], 1);
    }

    #[test]
    fn heavy_hitters_survive_many_rare_subjects() {
        let t = TopSubjects::default();
        for i in 0..10_000u32 {
            t.record(b"orders.hot");
            if i % 2 == 0 {
                t.record(b"orders.warm");
            }
            t.record(format!("rare.{i}").as_bytes());
        }
        let top = t.snapshot();
        assert_eq!(top[0].subject, "orders.hot");
        assert_eq!(top[1].subject, "orders.warm");
        assert!(top.len() <= SLOTS);
        t.decay();
        assert!(t.snapshot()[0].count >= top[0].count / 2);
    }

    #[test]
    fn long_subjects_are_truncated_not_split() {
        let t = TopSubjects::default();
        let long = vec![b'a'; 300];
        t.record(&long);
        t.record(&long);
        let top = t.snapshot();
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].count, 2);
        assert!(top[0].truncated);
        assert_eq!(top[0].subject.len(), SUBJECT_MAX);
    }
}
