//! A connection's outbound side: the bounded queue publishers append to, and
//! the two ways it reaches the socket: the publisher's own task writing it
//! directly when the socket takes it at once (`direct`), and the writer task
//! that drains it with vectored writes otherwise (`writer`).
//!
//! Owns write ordering, the encoding of a delivery for the connection's kind,
//! the choice between copying a payload and sharing it, the `max_pending`
//! bound, the write deadline and closing the socket. It must not parse input
//! or decide who receives a message. The lock on the queue is held only to
//! append or to swap the queue out, never across a write or an `.await`;
//! whoever takes the queue's bytes out to write them holds `busy` (a flag
//! under the lock) until they are written or handed back in front of the
//! queue, so two writers never interleave.

mod direct;
mod writer;

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

use super::Kind;
use crate::sync::{Mutex, MutexGuard};

pub use direct::{FlushBufs, Flushed};
pub use writer::{run_writer, PlainWrite};

/// Payloads up to this size (with CRLF) are copied next to their MSG line
/// instead of queued as a shared slice: see docs/PERFORMANCE.md for the measurement.
const INLINE_MAX: usize = 256;

/// A queue that grows past this within one read batch is written at once
/// instead of at the end of the batch. On wide fan-out every subscriber's
/// queue is written to in turn; kept this small they stay in cache: 1→100
/// 128 B, 141 → 93 ns of server CPU per message (1→4: 89 → 76; 1→1 16 B
/// 67 → 72, within noise), same runs; 64 KiB gave back most of the gain.
const FLUSH_AT: usize = 32 * 1024;

/// Bytes a delivery's control line adds beyond its subject, sid, reply and
/// queues (op name, blanks, two sizes, CRLF): the bound checked before encoding.
const LINE_OVERHEAD: usize = 64;

/// Why a connection was closed; shown in logs and `/connz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ClientClosed,
    ReadError,
    WriteError,
    SlowConsumerPendingBytes,
    SlowConsumerWriteDeadline,
    ProtocolViolation,
    ParseError,
    StaleConnection,
    MaxPayloadExceeded,
    MaxControlLineExceeded,
    MaxConnectionsExceeded,
    AuthenticationViolation,
    AuthenticationTimeout,
    ServerShutdown,
    LameDuck,
    TlsHandshakeError,
    TlsRequired,
    /// The connection's task panicked (a bug): closed by its supervisor.
    InternalError,
}

impl CloseReason {
    /// nats-server's wording, as `/connz` reports it.
    pub fn as_str(&self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::ReadError => "Read Error",
            CloseReason::WriteError => "Write Error",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::ParseError => "Parse Error",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::MaxPayloadExceeded => "Maximum Payload Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::AuthenticationViolation => "Authentication Failure",
            CloseReason::AuthenticationTimeout => "Authentication Timeout",
            CloseReason::ServerShutdown => "Server Shutdown",
            CloseReason::LameDuck => "Lame Duck Mode",
            CloseReason::TlsHandshakeError => "TLS Handshake Failure",
            CloseReason::TlsRequired => "Secure Connection - TLS Required",
            CloseReason::InternalError => "Internal Error",
        }
    }

    /// A slow-consumer cut: counted in `/varz` `slow_consumers` and logged.
    pub fn is_slow_consumer(&self) -> bool {
        matches!(
            self,
            CloseReason::SlowConsumerPendingBytes | CloseReason::SlowConsumerWriteDeadline
        )
    }

    /// Slow consumers lose what is queued: flushing it is what failed.
    fn discards_pending(&self) -> bool {
        matches!(
            self,
            CloseReason::SlowConsumerPendingBytes
                | CloseReason::SlowConsumerWriteDeadline
                | CloseReason::WriteError
                | CloseReason::InternalError
        )
    }
}

/// One piece of queued output: bytes in the inline buffer, or a shared payload.
#[derive(Debug, Clone)]
enum Chunk {
    Inline { start: usize, end: usize },
    Shared(Bytes),
}

/// One message for one receiver, seen through the publisher's read frame: the
/// payload is a slice of `frame`, shared (not copied) when it is large.
pub struct Delivery<'a> {
    pub subject: &'a [u8],
    /// The client subscription it is addressed to (empty for a leaf link).
    pub sid: &'a [u8],
    pub reply: &'a [u8],
    /// Queue groups a leaf link may pick a member of (empty for clients).
    pub queues: &'a [&'a [u8]],
    /// Header length, when headers are sent (they lead the body).
    pub hdr_len: Option<usize>,
    pub frame: &'a Bytes,
    /// The body in `frame`, headers included when sent, without its CRLF
    /// (which must follow it in `frame`).
    pub body: Range<usize>,
}

/// What appending a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Queued. `wake`: first data of this batch, register the writer for the
    /// end-of-batch wake-up. `stall`: the backlog is over half its bound.
    /// `flush`: the queue just grew past [`FLUSH_AT`]: write it now rather
    /// than at the end of the batch.
    Queued {
        wake: bool,
        stall: bool,
        flush: bool,
    },
    /// It would exceed `max_pending`: the connection is now closed as a slow
    /// consumer (queue discarded); the caller wakes it and counts it.
    SlowConsumer,
    /// The connection is already closing; nothing was queued.
    Closed,
}

/// Bytes on their way to a socket: inline bytes plus the chunk list that
/// orders them with shared payloads. The queue holds one set; whoever writes
/// swaps it for its own empty set, so buffers are reused and nothing is
/// allocated once they have grown to their working size.
#[derive(Default)]
struct Bufs {
    /// Control lines (MSG headers, PONG, -ERR), and the chunk list's inline parts.
    inline: Vec<u8>,
    /// Send order of inline ranges and shared payloads.
    chunks: Vec<Chunk>,
    /// When the earliest sampled message in here was parsed (see
    /// `conn::sample`); its latency is recorded once it is written.
    sampled_at: Option<Instant>,
}

impl Bufs {
    fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Bytes in here (inline and shared).
    fn len(&self) -> usize {
        self.inline.len()
            + self
                .chunks
                .iter()
                .map(|c| match c {
                    Chunk::Shared(b) => b.len(),
                    Chunk::Inline { .. } => 0,
                })
                .sum::<usize>()
    }

    fn clear(&mut self) {
        self.inline.clear();
        self.chunks.clear();
    }

    /// Records an inline range `start..end` (already in `inline`) in send
    /// order, extending the last inline chunk when they touch.
    fn note_inline(&mut self, start: usize, end: usize) {
        match self.chunks.last_mut() {
            Some(Chunk::Inline { end: last_end, .. }) if *last_end == start => *last_end = end,
            _ => self.chunks.push(Chunk::Inline { start, end }),
        }
    }
}

/// What is queued for the socket. Publishers write into it under the lock;
/// a writer (the writer task, or a publisher flushing directly) swaps the
/// bytes out and writes them with the lock released.
pub struct OutState {
    kind: Kind,
    q: Bufs,
    /// Bytes queued plus bytes being written; bounded by `max_pending`.
    pending: usize,
    /// A writer holds bytes taken from the queue: nobody else may take or
    /// write any until it releases them (written, or put back in front).
    busy: bool,
    /// The last direct write would have blocked: the writer task drains the
    /// queue until it is empty, and publishers leave the socket alone.
    handoff: bool,
    /// The plain TCP socket publishers may write to directly (`None` for
    /// TLS and test streams, and once closing).
    direct: Option<Arc<OwnedWriteHalf>>,
    /// Set once; the writer flushes (unless discarding) and closes.
    closing: Option<CloseReason>,
    /// The last read batch that registered this connection for a wake-up.
    flush_mark: u64,
    out_msgs: u64,
    out_bytes: u64,
}

impl OutState {
    fn new(kind: Kind) -> Self {
        OutState {
            kind,
            q: Bufs::default(),
            pending: 0,
            busy: false,
            handoff: false,
            direct: None,
            closing: None,
            flush_mark: 0,
            out_msgs: 0,
            out_bytes: 0,
        }
    }

    /// A sampled message was just queued: its publish→written latency is
    /// measured from `parsed` (the earliest such message per write wins).
    pub fn mark_sample(&mut self, parsed: Instant) {
        self.q.sampled_at.get_or_insert(parsed);
    }

    /// Messages and payload bytes queued for this connection so far.
    pub fn out_counts(&self) -> (u64, u64) {
        (self.out_msgs, self.out_bytes)
    }

    /// Registers read batch `batch`'s first append: true the first time only,
    /// so each writer is woken once per batch.
    fn mark(&mut self, batch: u64) -> bool {
        let first = self.flush_mark != batch;
        self.flush_mark = batch;
        first
    }

    /// Appends one delivery in the connection kind's encoding, unless that
    /// would take the backlog past `max_pending` (then the connection is cut
    /// as a slow consumer). Call it only for a delivery that is really due:
    /// permission and auto-unsubscribe checks come first, so nobody is cut
    /// for a message they would not have received.
    pub fn append_delivery(&mut self, d: &Delivery, batch: u64, max_pending: usize) -> Appended {
        if self.closing.is_some() {
            return Appended::Closed;
        }
        let body_len = d.body.end - d.body.start;
        let queues: usize = d.queues.iter().map(|q| q.len() + 1).sum();
        let line_max = LINE_OVERHEAD + d.subject.len() + d.sid.len() + d.reply.len() + queues;
        if !self.has_room(line_max + body_len + 2, max_pending) {
            self.close(CloseReason::SlowConsumerPendingBytes);
            return Appended::SlowConsumer;
        }
        let before = self.pending;
        let kind = self.kind;
        self.inline_with(|b| {
            kind.encode_delivery(b, d.subject, d.sid, d.reply, d.queues, d.hdr_len, body_len)
        });
        let with_crlf = d.body.start..d.body.end + 2;
        match d.frame.get(with_crlf.clone()) {
            Some(body) if body.len() <= INLINE_MAX => self.push_inline(body),
            Some(_) => self.push_shared(d.frame.slice(with_crlf)),
            // A frame without the body's CRLF is the caller's bug; queue the
            // body and a CRLF rather than a torn frame.
            None => {
                self.push_shared(d.frame.slice(d.body.clone()));
                self.push_inline(b"\r\n");
            }
        }
        self.out_msgs += 1;
        self.out_bytes += body_len as u64;
        Appended::Queued {
            wake: self.mark(batch),
            stall: self.wants_stall(max_pending),
            flush: self.pending >= FLUSH_AT && before < FLUSH_AT,
        }
    }

    /// Appends bytes the server itself sends in batch order (PONG, +OK, -ERR,
    /// a no-responders status), written by `encode`. Returns whether the writer
    /// needs registering for the batch's wake-up; false when closing.
    pub fn append_raw(&mut self, batch: u64, encode: impl FnOnce(&mut Vec<u8>)) -> bool {
        if self.closing.is_some() {
            return false;
        }
        self.inline_with(encode);
        self.mark(batch)
    }

    /// Bytes queued, for `/connz` `pending_bytes` and the slow-consumer bound.
    pub fn pending(&self) -> usize {
        self.pending
    }

    pub fn is_closing(&self) -> bool {
        self.closing.is_some()
    }

    fn pending_sub(&mut self, written: usize) {
        self.pending = self.pending.saturating_sub(written);
    }

    /// Over half of `max_pending`: publishers should pause briefly (flow control
    /// before the hard slow-consumer cut).
    pub fn wants_stall(&self, max_pending: usize) -> bool {
        self.pending > max_pending / 2
    }

    /// Room for `len` more bytes under `max_pending`?
    fn has_room(&self, len: usize, max_pending: usize) -> bool {
        self.pending + len <= max_pending
    }

    /// Appends bytes to the inline buffer, extending the last inline chunk.
    fn push_inline(&mut self, bytes: &[u8]) {
        self.inline_with(|buf| buf.extend_from_slice(bytes));
    }

    /// Lets an encoder append to the inline buffer directly (no temporary).
    fn inline_with(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        let start = self.q.inline.len();
        encode(&mut self.q.inline);
        let end = self.q.inline.len();
        self.pending += end - start;
        self.q.note_inline(start, end);
    }

    /// Queues a shared chunk (a payload) after what is already queued.
    fn push_shared(&mut self, chunk: Bytes) {
        self.pending += chunk.len();
        self.q.chunks.push(Chunk::Shared(chunk));
    }

    /// Marks the connection for closing; the first reason wins.
    pub fn close(&mut self, reason: CloseReason) -> bool {
        if self.closing.is_some() {
            return false;
        }
        self.closing = Some(reason);
        // Publishers no longer write directly; the writer task flushes (or
        // not) and shuts the socket with its own handle.
        self.direct = None;
        if reason.discards_pending() {
            self.q.clear();
        }
        true
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closing
    }
}

/// The shared outbound of one connection: queue plus the wake-ups around it.
pub struct Outbound {
    state: Mutex<OutState>,
    /// Wakes the writer: once per read batch that queued something.
    pub wake: Notify,
    /// Wakes publishers stalled on this connection's backlog after each write.
    pub drained: Notify,
    /// Wakes the connection's reader once the connection is closing, whoever
    /// closed it (a publisher's slow-consumer cut, the writer, shutdown).
    pub closed: Notify,
}

impl Outbound {
    pub fn new(kind: Kind) -> Self {
        Outbound {
            state: Mutex::new(OutState::new(kind)),
            wake: Notify::new(),
            drained: Notify::new(),
            closed: Notify::new(),
        }
    }

    /// Registers a plain TCP socket for direct writes and returns the
    /// writer task's handle on the same socket.
    pub fn plain(&self, wr: OwnedWriteHalf) -> PlainWrite {
        let sock = Arc::new(wr);
        self.lock().direct = Some(sock.clone());
        PlainWrite::new(sock)
    }

    /// Locks the queue (poisoning is ignored: see `crate::sync`).
    pub fn lock(&self) -> MutexGuard<'_, OutState> {
        self.state.lock()
    }

    /// After closing under the lock: wakes the writer (to flush or discard and
    /// shut the socket) and the reader (to stop reading and clean up).
    pub fn notify_closed(&self) {
        self.wake.notify_one();
        self.closed.notify_one();
    }

    /// Queues raw bytes (INFO, PONG, -ERR) and wakes the writer now.
    pub fn send_now(&self, bytes: &[u8]) {
        {
            let mut st = self.lock();
            if st.closing.is_some() {
                return;
            }
            st.push_inline(bytes);
        }
        self.wake.notify_one();
    }

    /// Queues a last `-ERR` (if any), then closes after flushing (unless the
    /// reason discards). The first reason wins; returns whether this one did.
    pub fn close_with(&self, reason: CloseReason, err: Option<&str>) -> bool {
        {
            let mut st = self.lock();
            if st.closing.is_some() {
                return false;
            }
            if let Some(text) = err {
                st.inline_with(|b| crate::protocol::encode::err_line(b, text));
            }
            st.close(reason);
        }
        self.notify_closed();
        true
    }
}

#[cfg(test)]
mod tests;
