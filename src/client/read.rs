//! The read loop of a client connection: reads batches, hands them to the op
//! handlers (`ops`), keeps the connection alive (server PINGs, stale
//! detection), and ends it (closed by anyone, auth timeout, read error).
//!
//! Owns the loop and its timers, and the producer stall. It must not write to
//! the socket (the writer does) and must not wait on other connections beyond
//! the bounded stall.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::auth::ConnAuth;
use super::deliver::Fanout;
use crate::account::Account;
use crate::conn::outbound::run_writer;
use crate::conn::readbuf::ReadBuf;
use crate::conn::{CloseReason, ConnShared, Subscription};
use crate::protocol::errors::text;
use crate::protocol::{encode, ConnectInfo, Parser, ProtocolError};
use crate::state::ServerState;

/// The first server PING, as nats-server: soon after connect, to measure RTT.
const FIRST_PING: Duration = Duration::from_secs(2);

/// How a connection starts: its INFO nonce (nkey auth) and whether INFO was
/// already written (TLS sends it before the handshake).
pub struct ConnStart {
    pub nonce: Option<String>,
    pub info_sent: bool,
}

/// How a connection ended: the reason, and its subscriptions, held until the
/// supervisor has taken the closed record (so it keeps their counts).
pub struct Ended {
    pub reason: CloseReason,
    _subs: Vec<Arc<Subscription>>,
}

impl From<CloseReason> for Ended {
    fn from(reason: CloseReason) -> Self {
        Ended {
            reason,
            _subs: Vec::new(),
        }
    }
}

/// Runs one client connection to its end: INFO, reader loop, close, removal of
/// its interest. The caller (the server's supervisor) unregisters it.
pub async fn serve<R, W>(
    srv: Arc<ServerState>,
    shared: Arc<ConnShared>,
    rd: R,
    wr: W,
    start: ConnStart,
) -> Ended
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    if !start.info_sent {
        let info = srv.info_line(shared.cid, &shared.addr, start.nonce.as_deref());
        shared.out.send_now(&info);
    }
    let writer = {
        let (srv, shared) = (srv.clone(), shared.clone());
        let deadline = srv.opts().write_deadline;
        tokio::spawn(async move {
            let reason = run_writer(&shared.out, wr, deadline).await;
            if reason == CloseReason::SlowConsumerWriteDeadline {
                srv.note_slow_consumer(&shared, reason);
            }
            reason
        })
    };
    let mut reader = Reader::new(srv.clone(), shared.clone(), start.nonce);
    let reason = reader.run(rd).await;
    shared.out.close_with(reason, None);
    // Held until the closed snapshot is taken, so it keeps their counts.
    let dropped = reader.drop_subscriptions();
    let final_reason = writer.await.unwrap_or(reason);
    let reason = shared.out.lock().close_reason().unwrap_or(final_reason);
    Ended {
        reason,
        _subs: dropped,
    }
}

pub(super) struct Reader {
    pub(super) srv: Arc<ServerState>,
    pub(super) me: Arc<ConnShared>,
    pub(super) parser: Parser,
    pub(super) connect: ConnectInfo,
    pub(super) fanout: Fanout,
    pub(super) stall: Option<Arc<ConnShared>>,
    pub(super) pings_out: u32,
    pub(super) ping_sent: Option<std::time::Instant>,
    pub(super) in_msgs: u64,
    pub(super) in_bytes: u64,
    pub(super) trace: bool,
    /// The reload generation whose limits `parser` enforces.
    pub(super) config_gen: u64,
    /// Who this connection is and what it may do.
    pub(super) auth: ConnAuth,
    /// CONNECT was accepted (always true when no auth is configured).
    pub(super) authed: bool,
    /// A CONNECT waiting for (possibly slow) credential checks (boxed: an
    /// idle connection's task should not carry its room).
    pub(super) pending_auth: Option<Box<ConnectInfo>>,
    /// The account whose subject space its PUB and SUB use: `$G` until
    /// CONNECT authenticates it into another.
    pub(super) acc: Arc<Account>,
}

/// How handling an op ended the connection.
pub(super) struct Close(pub(super) CloseReason, pub(super) Option<&'static str>);

static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

impl Reader {
    fn new(srv: Arc<ServerState>, me: Arc<ConnShared>, nonce: Option<String>) -> Self {
        let authed = !srv.authenticator().auth_required();
        let srv_gen = srv.config_gen();
        let opts = srv.opts();
        let parser = Parser::new(opts.max_control_line, opts.max_payload);
        let trace = opts.trace;
        drop(opts);
        let seed = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ me.cid;
        let acc = srv.accounts.global().clone();
        if authed {
            let _ = me.account.set(acc.clone());
        }
        Reader {
            srv,
            me,
            parser,
            // Before CONNECT, nats-server's defaults apply (verbose and
            // pedantic on): a SUB or PUB sent first gets its +OK, as there.
            connect: ConnectInfo::default(),
            fanout: Fanout::new(seed),
            stall: None,
            pings_out: 0,
            ping_sent: None,
            in_msgs: 0,
            in_bytes: 0,
            trace,
            config_gen: srv_gen,
            auth: ConnAuth::new(nonce),
            authed,
            pending_auth: None,
            acc,
        }
    }

    async fn run<R: AsyncRead + Unpin>(&mut self, mut rd: R) -> CloseReason {
        let mut rb = ReadBuf::new();
        let (interval, ping_max, auth_timeout) = {
            let o = self.srv.opts();
            (o.ping_interval, o.ping_max, o.auth_timeout)
        };
        let first = tokio::time::Instant::now() + FIRST_PING.min(interval);
        let mut ping = tokio::time::interval_at(first, interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Boxed, and only while unauthenticated: a connection's reader task
        // keeps no room for a timer it no longer needs.
        let mut auth_deadline = (!self.authed).then(|| Box::pin(tokio::time::sleep(auth_timeout)));
        let mut reloads = self.srv.subscribe_reload();
        loop {
            rb.prepare(self.parser.bytes_needed().unwrap_or(0));
            let free = rb.cur.capacity() - rb.cur.len();
            let result = tokio::select! {
                biased;
                _ = self.me.out.closed.notified() => {
                    return self.me.out.lock().close_reason().unwrap_or(CloseReason::ServerShutdown);
                }
                r = rd.read_buf(&mut rb.cur) => match r {
                    Ok(0) => return CloseReason::ClientClosed,
                    Err(_) => return CloseReason::ReadError,
                    Ok(n) => {
                        rb.note_read(n, free);
                        self.process_all(&mut rb.cur).await
                    }
                },
                _ = ping.tick() => {
                    if self.pings_out >= ping_max {
                        Err(Close(CloseReason::StaleConnection, Some(text::STALE_CONNECTION)))
                    } else {
                        if self.pings_out == 0 {
                            self.ping_sent = Some(std::time::Instant::now());
                        }
                        self.pings_out += 1;
                        self.me.out.send_now(encode::PING);
                        self.fanout.forget_last_match();
                        Ok(())
                    }
                }
                Some(()) = async { auth_deadline.as_mut()?.await; Some(()) }, if !self.authed => {
                    tracing::error!("{} Authentication Timeout", self.me.log());
                    Err(Close(CloseReason::AuthenticationTimeout, Some(text::AUTH_TIMEOUT)))
                }
                Ok(()) = reloads.changed() => self.on_reload().await,
            };
            if let Err(Close(reason, err)) = result {
                self.me.out.close_with(reason, err);
                return reason;
            }
            if self.authed {
                auth_deadline = None;
            }
            if let Some(target) = self.stall.take() {
                // Boxed: rare (a backlogged subscriber), and its timer would
                // otherwise be room in every connection's reader task.
                Box::pin(stall_for(&target, self.srv.max_pending())).await;
            }
        }
    }

    pub(super) fn refresh_limits(&mut self) {
        let gen = self.srv.config_gen();
        if gen != self.config_gen {
            self.config_gen = gen;
            let o = self.srv.opts();
            self.parser.set_limits(o.max_control_line, o.max_payload);
            self.trace = o.trace;
        }
    }

    /// Applies every complete op in `buf`, then wakes the writers that got data.
    pub(super) fn process(&mut self, buf: &mut BytesMut) -> Result<(), Close> {
        self.refresh_limits();
        self.fanout.begin_batch(&self.srv);
        let result = self.process_ops(buf);
        self.stall = self.fanout.end_batch();
        self.me.in_msgs.store(self.in_msgs, Ordering::Relaxed);
        self.me.in_bytes.store(self.in_bytes, Ordering::Relaxed);
        self.me
            .last_activity
            .store(crate::time::unix_nanos(), Ordering::Relaxed);
        result
    }

    fn process_ops(&mut self, buf: &mut BytesMut) -> Result<(), Close> {
        loop {
            match self.parser.next_op(buf) {
                Ok(Some(op)) => {
                    self.apply(op)?;
                    if self.pending_auth.is_some() {
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    match &e {
                        ProtocolError::PayloadTooLarge { size, max } => tracing::error!(
                            "{} maximum payload exceeded: {size} vs {max}",
                            self.me.log()
                        ),
                        ProtocolError::ControlLineTooLong(max) => tracing::error!(
                            "{} maximum control line exceeded: max_control_line {max}",
                            self.me.log()
                        ),
                        _ => tracing::debug!("{} Client parser ERROR: {e}", self.me.log()),
                    }
                    let reason = match e {
                        ProtocolError::PayloadTooLarge { .. } => CloseReason::MaxPayloadExceeded,
                        ProtocolError::ControlLineTooLong(_) => CloseReason::MaxControlLineExceeded,
                        _ => CloseReason::ParseError,
                    };
                    return Err(Close(reason, e.err_text()));
                }
            }
        }
    }
}

/// Longest a publisher pauses for one backlogged subscriber (as nats-server's
/// producer stall): long enough for the writer to drain, short enough that a
/// stuck subscriber only costs the publisher this much before it is cut off.
const STALL_MAX: Duration = Duration::from_millis(20);

/// Waits until `target`'s backlog is under half its bound, its connection
/// closes, or `STALL_MAX` passes.
async fn stall_for(target: &ConnShared, max_pending: usize) {
    let deadline = tokio::time::Instant::now() + STALL_MAX;
    loop {
        let drained = target.out.drained.notified();
        tokio::pin!(drained);
        drained.as_mut().enable();
        {
            let st = target.out.lock();
            if st.is_closing() || !st.wants_stall(max_pending) {
                return;
            }
        }
        if tokio::time::timeout_at(deadline, drained).await.is_err() {
            return;
        }
    }
}
