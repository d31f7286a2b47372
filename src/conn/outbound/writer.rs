//! The writer task: drains a connection's queue into its socket when the
//! publishers' direct writes cannot (TLS, a socket that would block, a
//! closing connection, a flush past the publisher's budget).
//!
//! Owns waiting for the socket, the write deadline, giving back buffers that
//! grew in a burst, and shutting the socket at close. It must not decide what
//! is queued. It takes the queue's bytes only while no other writer holds
//! them (`busy`), and never holds the queue's lock while writing.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Buf;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;

use super::{Bufs, Chunk, CloseReason, OutState, Outbound};
use crate::conn::sample::DELIVERY_LATENCY;

/// Max slices per `writev` (Linux IOV_MAX is 1024).
pub(super) const MAX_IOV: usize = 256;
/// Buffers that grew past this while draining a burst are given back once the
/// burst is over (see [`Trim`]).
pub(super) const KEEP_CAPACITY: usize = 64 * 1024;
/// Chunk-list entries kept across bursts (32 bytes each).
pub(super) const KEEP_CHUNKS: usize = 1024;
/// Consecutive small writes that end a burst.
pub(super) const SMALL_WRITES_TO_TRIM: u32 = 64;
/// An idle writer holding burst-sized buffers gives them back after this long.
pub(super) const IDLE_TRIM: Duration = Duration::from_secs(1);

/// The writer task's handle on a plain TCP socket that publishers may also
/// write to directly (`Outbound::plain`). Writes wait for writability on the
/// shared socket; the socket is shut for writing when the last handle drops
/// (the queue gives up its handle when the connection starts closing).
pub struct PlainWrite(Arc<OwnedWriteHalf>);

impl PlainWrite {
    pub(super) fn new(sock: Arc<OwnedWriteHalf>) -> Self {
        PlainWrite(sock)
    }
}

impl AsyncWrite for PlainWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            ready!(self.0.as_ref().as_ref().poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// The shutdown itself happens when the last handle drops.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// When to give back burst-sized buffers. Shrinking after every large write
/// (the obvious rule) made a subscriber that stays behind re-grow its buffer on
/// every write: a `mremap` and fresh zeroed pages for each, about a fifth of the
/// server's CPU on the 1→4 128 B benchmark. So buffers shrink only once a burst
/// has clearly ended: after a run of small writes, or after an idle second.
#[derive(Default)]
pub(super) struct Trim {
    small_writes: u32,
    /// The buffer last handed back to the shared queue is burst-sized.
    shared_big: bool,
}

impl Trim {
    pub(super) fn is_big(b: &Bufs) -> bool {
        b.inline.capacity() > KEEP_CAPACITY || b.chunks.capacity() > KEEP_CHUNKS
    }

    pub(super) fn shrink(b: &mut Bufs) {
        b.inline.shrink_to(KEEP_CAPACITY);
        b.chunks.shrink_to(KEEP_CHUNKS);
    }

    /// After a write of `inline_len` inline bytes in `chunk_count` chunks.
    pub(super) fn after_write(&mut self, local: &mut Bufs, inline_len: usize, chunk_count: usize) {
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
    fn holds_big(&self, local: &Bufs) -> bool {
        self.shared_big || Self::is_big(local)
    }

    /// Idle for [`IDLE_TRIM`]: shrink ours, and take the shared queue's empty
    /// burst-sized buffers out to free them after the lock is released.
    fn idle(&mut self, out: &Outbound, local: &mut Bufs) {
        Self::shrink(local);
        let spare = {
            let mut st = out.lock();
            (!st.busy && st.q.is_empty() && Self::is_big(&st.q)).then(|| std::mem::take(&mut st.q))
        };
        drop(spare);
        self.shared_big = false;
    }
}

/// What the writer found when it looked at the queue.
enum Took {
    /// Another writer holds bytes: it wakes us if anything is left after it.
    Busy,
    /// Bytes to write (we hold `busy` now).
    Bytes,
    /// Nothing queued; closing with this reason, if any.
    Empty(Option<CloseReason>),
}

/// Takes the queue's bytes into `local` unless another writer holds some.
/// `written`: what our previous write took off `pending` (and releases `busy`).
fn take(st: &mut OutState, local: &mut Bufs, written: Option<usize>) -> Took {
    if let Some(n) = written {
        st.pending_sub(n);
        st.busy = false;
    }
    if st.busy {
        return Took::Busy;
    }
    std::mem::swap(&mut st.q.inline, &mut local.inline);
    std::mem::swap(&mut st.q.chunks, &mut local.chunks);
    local.sampled_at = st.q.sampled_at.take();
    if local.is_empty() {
        // Caught up: publishers may write directly again.
        st.handoff = false;
        Took::Empty(st.closing)
    } else {
        st.busy = true;
        Took::Bytes
    }
}

/// Drains `out` into `sock` until the connection closes. Returns the reason.
pub async fn run_writer<W: AsyncWrite + Unpin>(
    out: &Outbound,
    mut sock: W,
    write_deadline: Duration,
) -> CloseReason {
    let mut local = Bufs::default();
    let mut trim = Trim::default();
    let mut written = None;
    loop {
        let handing_back_big = Trim::is_big(&local);
        let took = take(&mut out.lock(), &mut local, written.take());
        match took {
            Took::Busy => {
                out.wake.notified().await;
                continue;
            }
            Took::Empty(Some(reason)) => {
                let _ = tokio::time::timeout(write_deadline, sock.shutdown()).await;
                return reason;
            }
            Took::Empty(None) => {
                trim.shared_big = handing_back_big;
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
            Took::Bytes => trim.shared_big = handing_back_big,
        }
        let (inline_len, chunk_count) = (local.inline.len(), local.chunks.len());
        let len = local.len();
        let result = tokio::time::timeout(
            write_deadline,
            write_all(&mut sock, &local.inline, &mut local.chunks),
        )
        .await;
        local.clear();
        trim.after_write(&mut local, inline_len, chunk_count);
        if let (Some(t), Ok(Ok(()))) = (local.sampled_at.take(), &result) {
            DELIVERY_LATENCY.record_since(t);
        }
        match result {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return writer_failed(out, CloseReason::WriteError),
            Err(_) => return writer_failed(out, CloseReason::SlowConsumerWriteDeadline),
        }
        written = Some(len);
        out.drained.notify_waiters();
    }
}

/// The writer gave up: the connection closes at once (queue discarded, reader
/// woken). Returns the reason the connection ends with (an earlier one wins).
fn writer_failed(out: &Outbound, reason: CloseReason) -> CloseReason {
    let won = out.lock().close(reason);
    out.notify_closed();
    if won {
        reason
    } else {
        out.lock().close_reason().unwrap_or(reason)
    }
}

/// Fills `iov` with up to [`MAX_IOV`] slices of `chunks`; returns how many.
pub(super) fn gather<'a>(inline: &'a [u8], chunks: &'a [Chunk], iov: &mut [IoSlice<'a>]) -> usize {
    let mut n = 0;
    for (slot, c) in iov.iter_mut().zip(chunks) {
        *slot = IoSlice::new(match c {
            Chunk::Inline { start, end } => inline.get(*start..*end).unwrap_or_default(),
            Chunk::Shared(b) => b,
        });
        n += 1;
    }
    n
}

/// Drops `wrote` bytes from the front of `chunks[*head..]`, advancing `head`
/// past whole chunks and into a partly written one.
pub(super) fn advance(chunks: &mut [Chunk], head: &mut usize, mut wrote: usize) {
    while wrote > 0 && *head < chunks.len() {
        let c = &mut chunks[*head];
        let len = match c {
            Chunk::Inline { start, end } => *end - *start,
            Chunk::Shared(b) => b.len(),
        };
        if len <= wrote {
            wrote -= len;
            *head += 1;
        } else {
            match c {
                Chunk::Inline { start, .. } => *start += wrote,
                Chunk::Shared(b) => b.advance(wrote),
            }
            wrote = 0;
        }
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
        // Slices are gathered on the stack at each poll, not kept in this
        // future: every connection's writer task would carry the 4 KiB
        // array while idle.
        let wrote = std::future::poll_fn(|cx| {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = gather(inline, &chunks[head..], &mut iov);
            Pin::new(&mut *sock).poll_write_vectored(cx, &iov[..n])
        })
        .await?;
        if wrote == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        advance(chunks, &mut head, wrote);
    }
    Ok(())
}
