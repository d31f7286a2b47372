//! Direct writes: at the end of a read batch the publisher writes a
//! subscriber's queue to its socket itself, without blocking, instead of
//! waking the subscriber's writer task. A delivery to a subscriber that keeps
//! up then costs no wake-up and no context switch. When the socket would
//! block (or another writer holds the queue's bytes, or the connection is TLS
//! or closing) the writer task takes over, and what was not written goes back
//! in front of the queue, so order is kept whichever path writes.
//!
//! Owns the non-blocking write and the hand-back. It must not wait: nothing
//! here awaits or holds the queue's lock across the write.

use std::io::IoSlice;

use super::writer::{advance, gather, MAX_IOV};
use super::{Bufs, Chunk, OutState, Outbound};
use crate::conn::sample::DELIVERY_LATENCY;
use crate::conn::CloseReason;

/// A publisher's buffers for direct writes: swapped with a subscriber's
/// queue, written, emptied and kept for the next one (no allocation once
/// they have grown to their working size).
#[derive(Default)]
pub struct FlushBufs(Bufs);

/// Larger scratch buffers are given back after a direct write (a burst's
/// buffers would otherwise travel from queue to queue).
const KEEP_SCRATCH: usize = 256 * 1024;

/// What a direct flush did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything queued was written from the caller's task.
    Written,
    /// Nothing to do: the queue is empty, or another writer holds its bytes
    /// (and wakes the writer task if anything is left after it).
    Idle,
    /// The writer task must run (socket would block, TLS, closing, failed):
    /// the caller wakes it.
    Wake,
}

impl Outbound {
    /// Writes what is queued straight to the socket when nobody else is
    /// writing and the socket takes it without blocking; see the module doc.
    pub fn flush_direct(&self, scratch: &mut FlushBufs) -> Flushed {
        let sock = {
            let mut st = self.lock();
            if st.busy || st.q.is_empty() {
                return Flushed::Idle;
            }
            let sock = match &st.direct {
                Some(s) if !st.handoff && st.closing.is_none() => s.clone(),
                _ => return Flushed::Wake,
            };
            st.busy = true;
            std::mem::swap(&mut st.q, &mut scratch.0);
            sock
        };
        let bufs = &mut scratch.0;
        let mut head = 0;
        let mut written = 0;
        let mut failed = false;
        while head < bufs.chunks.len() {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = gather(&bufs.inline, &bufs.chunks[head..], &mut iov);
            match sock.try_write_vectored(&iov[..n]) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(wrote) => {
                    written += wrote;
                    advance(&mut bufs.chunks, &mut head, wrote);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        drop(sock);
        let done = head == bufs.chunks.len();
        if done {
            if let Some(t) = bufs.sampled_at.take() {
                DELIVERY_LATENCY.record_since(t);
            }
        }
        let result = {
            let mut st = self.lock();
            st.pending_sub(written);
            st.busy = false;
            if failed {
                st.close(CloseReason::WriteError);
                None
            } else if !done {
                // A connection cut meanwhile as a slow consumer loses it all.
                if !st.closing.is_some_and(|r| r.discards_pending()) {
                    st.put_back(bufs, head);
                }
                st.handoff = true;
                Some(Flushed::Wake)
            } else if st.q.is_empty() && st.closing.is_none() {
                Some(Flushed::Written)
            } else {
                // Queued meanwhile by another publisher (who saw us busy),
                // or closing: the writer task takes it from here.
                Some(Flushed::Wake)
            }
        };
        bufs.clear();
        if bufs.inline.capacity() > KEEP_SCRATCH {
            bufs.inline = Vec::new();
        }
        if written > 0 {
            self.drained.notify_waiters();
        }
        result.unwrap_or_else(|| {
            self.notify_closed();
            Flushed::Idle
        })
    }
}

impl OutState {
    /// Puts `rem.chunks[head..]` (not yet written; the first maybe in part)
    /// back in front of the queue, before whatever was queued meanwhile.
    /// `rem` is left empty, with the queue's former buffers.
    pub(super) fn put_back(&mut self, rem: &mut Bufs, head: usize) {
        std::mem::swap(&mut self.q, rem);
        self.q.chunks.drain(..head);
        // `rem` now holds what was queued while we wrote: append it.
        for c in rem.chunks.drain(..) {
            match c {
                Chunk::Inline { start, end } => {
                    let at = self.q.inline.len();
                    self.q
                        .inline
                        .extend_from_slice(rem.inline.get(start..end).unwrap_or_default());
                    let to = self.q.inline.len();
                    self.q.note_inline(at, to);
                }
                Chunk::Shared(b) => self.q.chunks.push(Chunk::Shared(b)),
            }
        }
        rem.inline.clear();
        self.q.sampled_at = match (self.q.sampled_at, rem.sampled_at.take()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}
