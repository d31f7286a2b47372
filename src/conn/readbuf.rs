//! The reader's buffers: where socket bytes land and payloads are split from.
//!
//! Owns buffer sizing and recycling. Payloads handed to subscribers are slices
//! of these buffers, so a buffer is busy until every subscriber has written its
//! slice. Instead of allocating a fresh buffer each time the current one is full,
//! a few retired buffers are kept and reused once they are no longer shared:
//! steady-state publishing then allocates nothing. It must not parse.

use std::collections::VecDeque;

use bytes::BytesMut;

/// An idle connection's first buffer: small, so idle clients cost little
/// (nats-server starts at 512 B too); a read that fills it switches to `LARGE`.
const INITIAL: usize = 512;
/// A busy publisher's buffer size.
const LARGE: usize = 64 * 1024;
/// Retired buffers kept for reuse.
const SPARES: usize = 8;

/// The current read buffer plus retired ones waiting to become reusable.
pub struct ReadBuf {
    pub cur: BytesMut,
    spares: VecDeque<BytesMut>,
    size: usize,
}

impl Default for ReadBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl ReadBuf {
    pub fn new() -> Self {
        ReadBuf {
            cur: BytesMut::with_capacity(INITIAL),
            spares: VecDeque::new(),
            size: INITIAL,
        }
    }

    /// Makes room for a read: at least `need` bytes in total (a large payload) and
    /// a useful amount of free space. Moves unconsumed bytes to a recycled buffer
    /// when the current one is full.
    pub fn prepare(&mut self, need: usize) {
        let free = self.cur.capacity() - self.cur.len();
        let want_total = need.max(self.cur.len() + self.size / 4);
        if free >= self.size / 8 && self.cur.capacity() >= want_total {
            return;
        }
        // Cheap path: nobody else holds the current buffer; reuse it in place.
        // Power-of-two size classes make retired buffers interchangeable.
        let target = want_total.max(self.size).next_power_of_two();
        if self.cur.try_reclaim(target - self.cur.len()) {
            return;
        }
        let mut next = self.take_spare(target);
        next.extend_from_slice(&self.cur);
        self.cur.clear();
        let old = std::mem::replace(&mut self.cur, next);
        if self.spares.len() < SPARES {
            self.spares.push_back(old);
        }
    }

    /// Called after a read of `n` bytes: a read that filled the buffer means a
    /// busy publisher, so later buffers are large.
    pub fn note_read(&mut self, n: usize, free_before: usize) {
        if n == free_before && self.size < LARGE {
            self.size = LARGE;
        }
    }

    fn take_spare(&mut self, cap: usize) -> BytesMut {
        for _ in 0..self.spares.len() {
            if let Some(mut b) = self.spares.pop_front() {
                b.clear();
                if b.try_reclaim(cap) {
                    return b;
                }
                self.spares.push_back(b);
            }
        }
        BytesMut::with_capacity(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_buffers_once_payload_slices_are_dropped() {
        let mut rb = ReadBuf::new();
        rb.size = LARGE;
        let mut held = Vec::new();
        for round in 0..40 {
            rb.prepare(0);
            let free = rb.cur.capacity() - rb.cur.len();
            rb.cur.extend_from_slice(&vec![round as u8; free - 10]);
            held.push(rb.cur.split().freeze());
            if held.len() > 2 {
                held.remove(0);
            }
        }
        assert!(rb.spares.len() <= SPARES);
        // Everything still readable.
        assert!(held.iter().all(|b| !b.is_empty()));
    }

    #[test]
    fn keeps_unconsumed_bytes_when_switching() {
        let mut rb = ReadBuf::new();
        rb.cur.extend_from_slice(&vec![1u8; INITIAL - 5]);
        let _hold = rb.cur.split_to(INITIAL - 8).freeze();
        rb.prepare(100);
        assert_eq!(&rb.cur[..], &[1, 1, 1]);
        assert!(rb.cur.capacity() >= 100);
    }
}
