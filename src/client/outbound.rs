//! A client's outbound side: the bounded queue publishers append to, and the
//! writer task that drains it with vectored writes.
//!
//! Owns write ordering, the `max_pending` bound, the write deadline and closing
//! the socket. It must not parse input or look at subscriptions. The lock on the
//! queue is held only to append or to swap the queue out, never across a write or
//! an `.await`.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
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

/// What is queued for the socket. Publishers write into it under the lock.
pub struct OutState {
    /// Chunks in send order: MSG lines (split from `scratch`) and shared payloads.
    chunks: VecDeque<Bytes>,
    /// Where small control lines are encoded before they become a chunk.
    pub scratch: BytesMut,
    /// Bytes queued or being written; bounded by `max_pending`.
    pending: usize,
    /// Set once; the writer flushes (unless discarding) and closes.
    closing: Option<CloseReason>,
    /// The last read batch that registered this client for a wake-up.
    pub flush_mark: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
}

impl OutState {
    /// Bytes queued, for `/connz` `pending_bytes`.
    pub fn pending(&self) -> usize {
        self.pending + self.scratch.len()
    }

    pub fn is_closing(&self) -> bool {
        self.closing.is_some()
    }

    /// Room for `len` more bytes under `max_pending`?
    pub fn has_room(&self, len: usize, max_pending: usize) -> bool {
        self.pending + self.scratch.len() + len <= max_pending
    }

    /// Moves what `scratch` holds into the chunk list so a shared payload can follow.
    pub fn seal_scratch(&mut self) {
        if !self.scratch.is_empty() {
            let chunk = self.scratch.split().freeze();
            self.pending += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// Queues a shared chunk (a payload) after what is already queued.
    pub fn push_shared(&mut self, chunk: Bytes) {
        self.seal_scratch();
        self.pending += chunk.len();
        self.chunks.push_back(chunk);
    }

    /// Marks the connection for closing; the first reason wins.
    pub fn close(&mut self, reason: CloseReason) -> bool {
        if self.closing.is_some() {
            return false;
        }
        self.closing = Some(reason);
        if reason.discards_pending() {
            self.chunks.clear();
            self.scratch.clear();
            self.pending = 0;
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
}

impl Default for Outbound {
    fn default() -> Self {
        Self::new()
    }
}

impl Outbound {
    pub fn new() -> Self {
        Outbound {
            state: Mutex::new(OutState {
                chunks: VecDeque::new(),
                scratch: BytesMut::new(),
                pending: 0,
                closing: None,
                flush_mark: 0,
                out_msgs: 0,
                out_bytes: 0,
            }),
            wake: Notify::new(),
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
            st.scratch.extend_from_slice(bytes);
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
                crate::protocol::encode::err_line(&mut st.scratch, text);
            }
            st.close(reason);
        }
        self.wake.notify_one();
    }
}

/// Max slices per `writev` (Linux IOV_MAX is 1024).
const MAX_IOV: usize = 256;
/// Keep the scratch buffer at least this big so MSG lines rarely reallocate.
const SCRATCH_MIN: usize = 16 * 1024;

/// Drains `out` into `sock` until the connection closes. Returns the reason.
pub async fn run_writer<W: AsyncWrite + Unpin>(
    out: &Outbound,
    mut sock: W,
    write_deadline: Duration,
) -> CloseReason {
    let mut local: VecDeque<Bytes> = VecDeque::new();
    loop {
        let closing = {
            let mut st = out.lock();
            st.seal_scratch();
            if st.scratch.capacity() < SCRATCH_MIN {
                st.scratch.reserve(SCRATCH_MIN);
            }
            std::mem::swap(&mut st.chunks, &mut local);
            st.closing
        };
        if local.is_empty() {
            if let Some(reason) = closing {
                let _ = tokio::time::timeout(write_deadline, sock.shutdown()).await;
                return reason;
            }
            out.wake.notified().await;
            continue;
        }
        let written: usize = local.iter().map(|c| c.len()).sum();
        match tokio::time::timeout(write_deadline, write_all_vectored(&mut sock, &mut local)).await
        {
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
        let mut st = out.lock();
        st.pending = st.pending.saturating_sub(written);
    }
}

async fn write_all_vectored<W: AsyncWrite + Unpin>(
    sock: &mut W,
    chunks: &mut VecDeque<Bytes>,
) -> std::io::Result<()> {
    while !chunks.is_empty() {
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let mut n = 0;
        for c in chunks.iter().take(MAX_IOV) {
            iov[n] = IoSlice::new(c);
            n += 1;
        }
        let mut wrote = sock.write_vectored(&iov[..n]).await?;
        if wrote == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while wrote > 0 {
            let Some(front) = chunks.front_mut() else { break };
            if front.len() <= wrote {
                wrote -= front.len();
                chunks.pop_front();
            } else {
                front.advance(wrote);
                wrote = 0;
            }
        }
    }
    Ok(())
}
