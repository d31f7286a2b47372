//! A client's outbound side: the bounded queue publishers append to, and the
//! writer task that drains it with vectored writes.
//!
//! Owns write ordering, the `max_pending` bound, the write deadline and closing
//! the socket. It must not parse input or look at subscriptions. The lock on the
//! queue is held only to append or to swap the queue out, never across a write or
//! an `.await`.

use std::io::IoSlice;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

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
        }
    }

    /// Slow consumers lose what is queued: flushing it is what failed.
    fn discards_pending(&self) -> bool {
        matches!(
            self,
            CloseReason::SlowConsumerPendingBytes
                | CloseReason::SlowConsumerWriteDeadline
                | CloseReason::WriteError
        )
    }
}

/// One piece of queued output: bytes in the inline buffer, or a shared payload.
#[derive(Debug, Clone)]
enum Chunk {
    Inline { start: usize, end: usize },
    Shared(Bytes),
}

/// What is queued for the socket. Publishers write into it under the lock; the
/// writer swaps the whole of it for its own empty copy, so buffers are reused and
/// nothing is allocated once they have grown to their working size.
#[derive(Default)]
pub struct OutState {
    /// Control lines (MSG headers, PONG, -ERR), and the chunk list's inline parts.
    inline: Vec<u8>,
    /// Send order of inline ranges and shared payloads.
    chunks: Vec<Chunk>,
    /// Bytes queued plus bytes the writer is writing; bounded by `max_pending`.
    pending: usize,
    /// Set once; the writer flushes (unless discarding) and closes.
    closing: Option<CloseReason>,
    /// The last read batch that registered this client for a wake-up.
    pub flush_mark: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
}

impl OutState {
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
    pub fn has_room(&self, len: usize, max_pending: usize) -> bool {
        self.pending + len <= max_pending
    }

    /// Appends bytes to the inline buffer, extending the last inline chunk.
    pub fn push_inline(&mut self, bytes: &[u8]) {
        self.inline_with(|buf| buf.extend_from_slice(bytes));
    }

    /// Lets an encoder append to the inline buffer directly (no temporary).
    pub fn inline_with(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        let start = self.inline.len();
        encode(&mut self.inline);
        let end = self.inline.len();
        self.pending += end - start;
        match self.chunks.last_mut() {
            Some(Chunk::Inline { end: last_end, .. }) if *last_end == start => *last_end = end,
            _ => self.chunks.push(Chunk::Inline { start, end }),
        }
    }

    /// Queues a shared chunk (a payload) after what is already queued.
    pub fn push_shared(&mut self, chunk: Bytes) {
        self.pending += chunk.len();
        self.chunks.push(Chunk::Shared(chunk));
    }

    /// Marks the connection for closing; the first reason wins.
    pub fn close(&mut self, reason: CloseReason) -> bool {
        if self.closing.is_some() {
            return false;
        }
        self.closing = Some(reason);
        if reason.discards_pending() {
            self.chunks.clear();
            self.inline.clear();
        }
        true
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closing
    }
}

/// The shared outbound of one client: queue plus the writer's wake-up.
pub struct Outbound {
    state: Mutex<OutState>,
    /// Wakes the writer: once per read batch that queued something.
    pub wake: Notify,
    /// Wakes publishers stalled on this client's backlog after each write.
    pub drained: Notify,
}

impl Default for Outbound {
    fn default() -> Self {
        Self::new()
    }
}

impl Outbound {
    pub fn new() -> Self {
        Outbound {
            state: Mutex::new(OutState::default()),
            wake: Notify::new(),
            drained: Notify::new(),
        }
    }

    /// Locks the queue. A poisoned lock (a panic elsewhere) still yields the data:
    /// the queue holds only bytes, which stay consistent.
    pub fn lock(&self) -> MutexGuard<'_, OutState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Queues a last `-ERR` (if any), then closes after flushing.
    pub fn close_with(&self, reason: CloseReason, err: Option<&str>) {
        {
            let mut st = self.lock();
            if st.closing.is_some() {
                return;
            }
            if let Some(text) = err {
                st.inline_with(|b| crate::protocol::encode::err_line(b, text));
            }
            st.close(reason);
        }
        self.wake.notify_one();
    }
}

/// Max slices per `writev` (Linux IOV_MAX is 1024).
const MAX_IOV: usize = 256;
/// Buffers that grew past this while draining a burst are given back once the
/// burst is over (see [`Trim`]).
const KEEP_CAPACITY: usize = 64 * 1024;
/// Chunk-list entries kept across bursts (32 bytes each).
const KEEP_CHUNKS: usize = 1024;
/// Consecutive small writes that end a burst.
const SMALL_WRITES_TO_TRIM: u32 = 64;
/// An idle writer holding burst-sized buffers gives them back after this long.
const IDLE_TRIM: Duration = Duration::from_secs(1);

/// When to give back burst-sized buffers. Shrinking after every large write
/// (the obvious rule) made a subscriber that stays behind re-grow its buffer on
/// every write: a `mremap` and fresh zeroed pages for each, about a fifth of the
/// server's CPU on the 1→4 128 B benchmark. So buffers shrink only once a burst
/// has clearly ended: after a run of small writes, or after an idle second.
#[derive(Default)]
struct Trim {
    small_writes: u32,
    /// The buffer last handed back to the shared queue is burst-sized.
    shared_big: bool,
}

impl Trim {
    fn is_big(st: &OutState) -> bool {
        st.inline.capacity() > KEEP_CAPACITY || st.chunks.capacity() > KEEP_CHUNKS
    }

    fn shrink(st: &mut OutState) {
        st.inline.shrink_to(KEEP_CAPACITY);
        st.chunks.shrink_to(KEEP_CHUNKS);
    }

    /// After a write of `inline_len` inline bytes in `chunk_count` chunks.
    fn after_write(&mut self, local: &mut OutState, inline_len: usize, chunk_count: usize) {
        if inline_len > KEEP_CAPACITY || chunk_count > KEEP_CHUNKS {
            self.small_writes = 0;
        } else {
            self.small_writes = self.small_writes.saturating_add(1);
        }
        if self.small_writes >= SMALL_WRITES_TO_TRIM && Self::is_big(local) {
            Self::shrink(local);
        }
    }

    /// Does the idle writer hold anything worth giving back?
    fn holds_big(&self, local: &OutState) -> bool {
        self.shared_big || Self::is_big(local)
    }

    /// Idle for [`IDLE_TRIM`]: shrink ours, and take the shared queue's empty
    /// burst-sized buffers out to free them after the lock is released.
    fn idle(&mut self, out: &Outbound, local: &mut OutState) {
        Self::shrink(local);
        let spare = {
            let mut st = out.lock();
            (st.chunks.is_empty() && Self::is_big(&st)).then(|| {
                (
                    std::mem::take(&mut st.inline),
                    std::mem::take(&mut st.chunks),
                )
            })
        };
        drop(spare);
        self.shared_big = false;
    }
}

/// Drains `out` into `sock` until the connection closes. Returns the reason.
pub async fn run_writer<W: AsyncWrite + Unpin>(
    out: &Outbound,
    mut sock: W,
    write_deadline: Duration,
) -> CloseReason {
    let mut local = OutState::default();
    let mut trim = Trim::default();
    loop {
        let handing_back_big = Trim::is_big(&local);
        let closing = {
            let mut st = out.lock();
            std::mem::swap(&mut st.inline, &mut local.inline);
            std::mem::swap(&mut st.chunks, &mut local.chunks);
            st.closing
        };
        trim.shared_big = handing_back_big;
        if local.chunks.is_empty() {
            if let Some(reason) = closing {
                let _ = tokio::time::timeout(write_deadline, sock.shutdown()).await;
                return reason;
            }
            if trim.holds_big(&local) {
                if tokio::time::timeout(IDLE_TRIM, out.wake.notified())
                    .await
                    .is_err()
                {
                    trim.idle(out, &mut local);
                }
            } else {
                out.wake.notified().await;
            }
            continue;
        }
        let (inline_len, chunk_count) = (local.inline.len(), local.chunks.len());
        let written = inline_len
            + local
                .chunks
                .iter()
                .map(|c| match c {
                    Chunk::Shared(b) => b.len(),
                    Chunk::Inline { .. } => 0,
                })
                .sum::<usize>();
        let result = tokio::time::timeout(
            write_deadline,
            write_all(&mut sock, &local.inline, &mut local.chunks),
        )
        .await;
        local.chunks.clear();
        local.inline.clear();
        trim.after_write(&mut local, inline_len, chunk_count);
        match result {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                out.lock().close(CloseReason::WriteError);
                return CloseReason::WriteError;
            }
            Err(_) => {
                out.lock().close(CloseReason::SlowConsumerWriteDeadline);
                return CloseReason::SlowConsumerWriteDeadline;
            }
        }
        out.lock().pending_sub(written);
        out.drained.notify_waiters();
    }
}

/// Writes every chunk, many per `writev`, resuming after partial writes.
async fn write_all<W: AsyncWrite + Unpin>(
    sock: &mut W,
    inline: &[u8],
    chunks: &mut [Chunk],
) -> std::io::Result<()> {
    let mut head = 0;
    while head < chunks.len() {
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let mut n = 0;
        for c in chunks[head..].iter().take(MAX_IOV) {
            iov[n] = IoSlice::new(match c {
                Chunk::Inline { start, end } => &inline[*start..*end],
                Chunk::Shared(b) => b,
            });
            n += 1;
        }
        let mut wrote = sock.write_vectored(&iov[..n]).await?;
        if wrote == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while wrote > 0 && head < chunks.len() {
            let c = &mut chunks[head];
            let len = match c {
                Chunk::Inline { start, end } => *end - *start,
                Chunk::Shared(b) => b.len(),
            };
            if len <= wrote {
                wrote -= len;
                head += 1;
            } else {
                match c {
                    Chunk::Inline { start, .. } => *start += wrote,
                    Chunk::Shared(b) => b.advance(wrote),
                }
                wrote = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn burst(st: &mut OutState, bytes: usize) {
        st.inline_with(|b| b.resize(b.len() + bytes, b'x'));
    }

    #[test]
    fn burst_buffers_survive_a_lagging_stream_then_shrink_after_small_writes() {
        let mut trim = Trim::default();
        let mut local = OutState::default();
        for _ in 0..10 {
            burst(&mut local, 1 << 20);
            let len = local.inline.len();
            local.inline.clear();
            local.chunks.clear();
            trim.after_write(&mut local, len, 1);
            assert!(local.inline.capacity() >= 1 << 20, "kept while bursting");
        }
        for i in 0..SMALL_WRITES_TO_TRIM {
            burst(&mut local, 100);
            local.inline.clear();
            local.chunks.clear();
            trim.after_write(&mut local, 100, 1);
            let shrunk = local.inline.capacity() <= KEEP_CAPACITY;
            assert_eq!(shrunk, i + 1 == SMALL_WRITES_TO_TRIM, "write {i}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_writer_gives_back_both_buffers() {
        let out = std::sync::Arc::new(Outbound::new());
        let (client, server) = tokio::io::duplex(4 << 20);
        let writer = {
            let out = out.clone();
            tokio::spawn(async move { run_writer(&out, server, Duration::from_secs(30)).await })
        };
        let (mut rd, _wr) = tokio::io::split(client);
        let mut sink = vec![0u8; 4 << 20];
        for _ in 0..3 {
            burst(&mut out.lock(), 2 << 20);
            out.wake.notify_one();
            rd.read_exact(&mut sink[..2 << 20]).await.unwrap();
        }
        tokio::task::yield_now().await;
        assert!(
            out.lock().inline.capacity() > KEEP_CAPACITY,
            "shared buffer is burst-sized"
        );
        tokio::time::sleep(IDLE_TRIM * 2).await;
        assert!(out.lock().inline.capacity() <= KEEP_CAPACITY);
        out.close_with(CloseReason::ServerShutdown, None);
        assert_eq!(writer.await.unwrap(), CloseReason::ServerShutdown);
    }
}
