//! Sending on a schedule: the precise wait shared by the latency senders and
//! the paced throughput publishers, and the fixed-rate schedule of a paced
//! publisher (`--rate` on `pub`, `pubsub`, `fanout`, `queue`).
//!
//! Owns timing only; it must not touch a connection.

use std::time::{Duration, Instant};

/// Waits until `t` precisely: the timer for the bulk, then yielding spins, so
/// sends are not late by the timer's slop. Tokio rounds a sleep up to its 1 ms
/// wheel tick and the driver's `epoll_wait` timeout up to a whole millisecond,
/// so a timer aimed at `t - slack` can fire up to ~2 ms after it, plus the
/// wake-up of an idle CPU. With 1.5 ms of slack, sends at 500/s left a median
/// 270 µs late: the corrected percentiles charged the tool's own lateness to the
/// server. 3 ms covers it; the price is a busy CPU for the load generator at
/// rates above ~330/s, which is what a pinned measuring client is for.
pub async fn wait_until(t: Instant) {
    let slack = Duration::from_millis(3);
    if let Some(left) = t.checked_duration_since(Instant::now()) {
        if left > slack {
            tokio::time::sleep_until((t - slack).into()).await;
        }
    }
    while Instant::now() < t {
        tokio::task::yield_now().await;
    }
}

/// A paced publisher writes at most once per tick: everything due by then in
/// one write, as a buffering client flushes. Writing each message the moment
/// it falls due made the server's reads as small as the tool's loop was fast:
/// at 3.3 M msgs/s both servers spent a whole CPU on tiny reads (natrium 297,
/// nats-server 300 ns/msg), so CPU per message measured the arrival grain,
/// not the server.
pub const TICK: Duration = Duration::from_millis(1);

/// One paced publisher's schedule: message `i` is due at
/// `start + offset + i / rate`. A publisher that fell behind sends everything
/// due at once (whole batches), so the offered load over the run stays the
/// rate as long as the tool can reach it.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    start: Instant,
    /// Seconds between two messages of this publisher.
    interval: f64,
}

impl Pacer {
    /// Publisher `idx` of `senders` sharing `total_rate` msgs/s: each sends at
    /// `total_rate / senders`, staggered by `idx / total_rate`.
    pub fn new(start: Instant, total_rate: f64, senders: usize, idx: usize) -> Pacer {
        let total = total_rate.max(1e-6);
        Pacer {
            start: start + Duration::from_secs_f64(idx as f64 / total),
            interval: senders.max(1) as f64 / total,
        }
    }

    /// When message `i` (from 0) is due.
    pub fn at(&self, i: u64) -> Instant {
        self.start + Duration::from_secs_f64(i as f64 * self.interval)
    }

    /// How many messages are due by `now` (message 0 is due at the start).
    pub fn due_by(&self, now: Instant) -> u64 {
        match now.checked_duration_since(self.start) {
            Some(e) => (e.as_secs_f64() / self.interval) as u64 + 1,
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_spreads_publishers_and_counts_what_is_due() {
        let t0 = Instant::now();
        // 1,000 msgs/s over 4 publishers: each every 4 ms, offsets 0..3 ms.
        let p = Pacer::new(t0, 1000.0, 4, 2);
        assert_eq!(p.at(0), t0 + Duration::from_millis(2));
        let late = p.at(3) - t0;
        assert!(late.abs_diff(Duration::from_millis(14)) < Duration::from_micros(1));
        assert_eq!(p.due_by(t0), 0);
        assert_eq!(p.due_by(t0 + Duration::from_millis(2)), 1);
        assert_eq!(p.due_by(t0 + Duration::from_micros(13_900)), 3);
        assert_eq!(p.due_by(t0 + Duration::from_millis(1003)), 251);
    }
}
