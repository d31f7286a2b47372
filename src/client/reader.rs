//! The reader task of one connection: reads batches, parses ops, applies them.
//!
//! Owns the connection's protocol state (CONNECT options, subscriptions by sid,
//! keep-alive) and the order of effects: everything before a PING is applied
//! before its PONG is queued. It must not write to the socket (the writer does)
//! and must not wait on other clients: delivery only appends to their queues.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::auth::ConnAuth;
use super::deliver::{Fanout, Message};
use super::outbound::run_writer;
use super::readbuf::ReadBuf;
use super::{ClientShared, CloseReason, SubEntry, SubRef, Subscription};
use crate::protocol::errors::text;
use crate::protocol::{encode, ConnectInfo, Op, Parser, ProtocolError};
use crate::server::ServerState;
use crate::subject;

/// The first server PING, as nats-server: soon after connect, to measure RTT.
const FIRST_PING: Duration = Duration::from_secs(2);

/// How a connection starts: its INFO nonce (nkey auth) and whether INFO was
/// already written (TLS sends it before the handshake).
pub struct ConnStart {
    pub nonce: Option<String>,
    pub info_sent: bool,
}

/// Runs one client connection to its end: INFO, reader loop, close, cleanup.
pub async fn serve<R, W>(
    srv: Arc<ServerState>,
    shared: Arc<ClientShared>,
    rd: R,
    wr: W,
    start: ConnStart,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    if !start.info_sent {
        let info = srv.info_line(shared.cid, &shared.addr, start.nonce.as_deref());
        shared.out.send_now(&info);
    }
    let writer = {
        let shared = shared.clone();
        let deadline = srv.opts().write_deadline;
        tokio::spawn(async move { run_writer(&shared.out, wr, deadline).await })
    };
    let mut reader = Reader::new(srv.clone(), shared.clone(), start.nonce);
    let reason = reader.run(rd).await;
    shared.out.close_with(reason, None);
    // Held until the closed snapshot is taken, so it keeps their counts.
    let dropped = reader.drop_subscriptions();
    let final_reason = writer.await.unwrap_or(reason);
    let reason = shared.out.lock().close_reason().unwrap_or(final_reason);
    srv.unregister(&shared, reason);
    drop(dropped);
}

struct Reader {
    srv: Arc<ServerState>,
    me: Arc<ClientShared>,
    parser: Parser,
    connect: ConnectInfo,
    subs: HashMap<Bytes, Arc<Subscription>>,
    fanout: Fanout,
    stall: Option<Arc<ClientShared>>,
    pings_out: u32,
    ping_sent: Option<std::time::Instant>,
    in_msgs: u64,
    in_bytes: u64,
    trace: bool,
    /// The reload generation whose limits `parser` enforces.
    config_gen: u64,
    /// Who this connection is and what it may do.
    auth: ConnAuth,
    /// CONNECT was accepted (always true when no auth is configured).
    authed: bool,
    /// A CONNECT waiting for (possibly slow) credential checks.
    pending_auth: Option<ConnectInfo>,
}

/// How handling an op ended the connection.
struct Close(CloseReason, Option<&'static str>);

static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

impl Reader {
    fn new(srv: Arc<ServerState>, me: Arc<ClientShared>, nonce: Option<String>) -> Self {
        let authed = !srv.authenticator().auth_required();
        let srv_gen = srv.config_gen();
        let opts = srv.opts();
        let parser = Parser::new(opts.max_control_line, opts.max_payload);
        let trace = opts.trace;
        drop(opts);
        let seed = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ me.cid;
        Reader {
            srv,
            me,
            parser,
            // Before CONNECT, nats-server's defaults apply (verbose and
            // pedantic on): a SUB or PUB sent first gets its +OK, as there.
            connect: ConnectInfo::default(),
            subs: HashMap::new(),
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
        let auth_deadline = tokio::time::sleep(auth_timeout);
        tokio::pin!(auth_deadline);
        let mut reloads = self.srv.subscribe_reload();
        loop {
            rb.prepare(self.parser.bytes_needed().unwrap_or(0));
            let free = rb.cur.capacity() - rb.cur.len();
            let result = tokio::select! {
                biased;
                _ = self.me.kill.notified() => {
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
                _ = &mut auth_deadline, if !self.authed => {
                    tracing::error!("{} - cid:{} - Authentication Timeout", self.me.addr, self.me.cid);
                    Err(Close(CloseReason::AuthenticationTimeout, Some(text::AUTH_TIMEOUT)))
                }
                Ok(()) = reloads.changed() => self.on_reload().await,
            };
            if let Err(Close(reason, err)) = result {
                self.me.out.close_with(reason, err);
                return reason;
            }
            if let Some(target) = self.stall.take() {
                stall_for(&target, self.srv.max_pending()).await;
            }
        }
    }

    /// Processes the buffer, pausing for credential checks when a CONNECT
    /// needs them, then goes on with the ops that followed it.
    async fn process_all(&mut self, buf: &mut BytesMut) -> Result<(), Close> {
        loop {
            self.process(buf)?;
            let Some(info) = self.pending_auth.take() else {
                return Ok(());
            };
            let auth = self.srv.authenticator();
            match ConnAuth::authenticate(auth, info.clone(), self.auth.nonce.clone()).await {
                Ok(user) => {
                    self.auth.set_user(&self.me, user);
                    self.authed = true;
                    self.finish_connect(info);
                }
                Err(e) => {
                    // nats-server's line names who tried, never why; the
                    // reason stays at debug level.
                    tracing::debug!(
                        "{} - cid:{} - authentication error: {e}",
                        self.me.addr,
                        self.me.cid
                    );
                    tracing::error!(
                        "{} - cid:{} - authentication error - {}",
                        self.me.addr,
                        self.me.cid,
                        auth_user_label(&info)
                    );
                    return Err(Close(
                        CloseReason::AuthenticationViolation,
                        Some(text::AUTH_VIOLATION),
                    ));
                }
            }
        }
    }

    /// A reload happened: new limits apply, and an authenticated connection is
    /// checked again, so removed users and changed passwords lose access.
    async fn on_reload(&mut self) -> Result<(), Close> {
        self.refresh_limits();
        let auth = self.srv.authenticator();
        if !self.authed || !auth.auth_required() {
            return Ok(());
        }
        match ConnAuth::authenticate(auth, self.connect.clone(), self.auth.nonce.clone()).await {
            Ok(user) => {
                self.auth.set_user(&self.me, user);
                Ok(())
            }
            Err(_) => {
                tracing::info!(
                    "{} - cid:{} - credentials no longer valid after reload",
                    self.me.addr,
                    self.me.cid
                );
                Err(Close(
                    CloseReason::AuthenticationViolation,
                    Some(text::AUTH_VIOLATION),
                ))
            }
        }
    }

    fn refresh_limits(&mut self) {
        let gen = self.srv.config_gen();
        if gen != self.config_gen {
            self.config_gen = gen;
            let o = self.srv.opts();
            self.parser.set_limits(o.max_control_line, o.max_payload);
            self.trace = o.trace;
        }
    }

    /// Applies every complete op in `buf`, then wakes the writers that got data.
    fn process(&mut self, buf: &mut BytesMut) -> Result<(), Close> {
        self.refresh_limits();
        self.fanout.begin_batch(&self.srv);
        let result = self.process_ops(buf);
        self.stall = self.fanout.end_batch();
        self.me.in_msgs.store(self.in_msgs, Ordering::Relaxed);
        self.me.in_bytes.store(self.in_bytes, Ordering::Relaxed);
        self.me
            .last_activity
            .store(crate::server::unix_nanos(), Ordering::Relaxed);
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
                            "{} - cid:{} - maximum payload exceeded: {size} vs {max}",
                            self.me.addr,
                            self.me.cid
                        ),
                        ProtocolError::ControlLineTooLong(max) => tracing::error!(
                            "{} - cid:{} - maximum control line exceeded: max_control_line {max}",
                            self.me.addr,
                            self.me.cid
                        ),
                        _ => tracing::debug!(
                            "{} - cid:{} - Client parser ERROR: {}",
                            self.me.addr,
                            self.me.cid,
                            e
                        ),
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

    fn ok(&mut self) {
        if self.connect.verbose {
            self.fanout.send(&self.me, encode::OK);
        }
    }

    fn send_err(&mut self, text: &str) {
        let mut line = Vec::with_capacity(text.len() + 10);
        encode::err_line(&mut line, text);
        self.fanout.send(&self.me, &line);
    }

    fn apply(&mut self, op: Op) -> Result<(), Close> {
        if self.trace {
            trace_op(&self.me.addr, self.me.cid, &op);
        }
        if !self.authed && !matches!(op, Op::Connect { .. }) {
            // With auth configured, the first op must be CONNECT; nats-server
            // logs it as a failed login by nobody.
            tracing::error!(
                "{} - cid:{} - authentication error - User \"\"",
                self.me.addr,
                self.me.cid
            );
            return Err(Close(
                CloseReason::AuthenticationViolation,
                Some(text::AUTH_VIOLATION),
            ));
        }
        match op {
            Op::Ping => {
                self.fanout.send(&self.me, encode::PONG);
                Ok(())
            }
            Op::Pong => {
                self.pings_out = 0;
                if let Some(sent) = self.ping_sent.take() {
                    let rtt = sent.elapsed().as_nanos() as u64;
                    self.me.rtt_nanos.store(rtt.max(1), Ordering::Relaxed);
                }
                Ok(())
            }
            Op::Ignored => Ok(()),
            Op::Connect { frame, json } => self.on_connect(&frame[json]),
            Op::Pub { frame, args } => {
                if args.header_len.is_some() && !self.connect.headers {
                    return Err(Close(CloseReason::ProtocolViolation, None));
                }
                let msg = Message {
                    frame: &frame,
                    args: &args,
                };
                self.on_pub(&msg);
                Ok(())
            }
            Op::Sub {
                frame,
                subject,
                queue,
                sid,
            } => {
                let queue = queue.map(|q| frame.slice(q));
                self.on_sub(frame.slice(subject), queue, frame.slice(sid));
                Ok(())
            }
            Op::Unsub { frame, sid, max } => {
                self.on_unsub(&frame[sid], max);
                Ok(())
            }
        }
    }

    fn on_connect(&mut self, json: &[u8]) -> Result<(), Close> {
        let Some(info) = ConnectInfo::parse(json) else {
            return Err(Close(CloseReason::ParseError, None));
        };
        if !(0..=1).contains(&info.protocol) {
            return Err(Close(
                CloseReason::ProtocolViolation,
                Some(text::INVALID_PROTOCOL),
            ));
        }
        if info.no_responders && !info.headers {
            return Err(Close(
                CloseReason::ProtocolViolation,
                Some(text::NO_RESPONDERS_HEADERS),
            ));
        }
        if !self.authed {
            // Credentials are checked by `process_all`, which may await bcrypt.
            self.pending_auth = Some(info);
            return Ok(());
        }
        self.finish_connect(info);
        Ok(())
    }

    fn finish_connect(&mut self, info: ConnectInfo) {
        self.me.headers.store(info.headers, Ordering::Relaxed);
        if let Ok(mut meta) = self.me.meta.lock() {
            meta.name = info.name.clone().unwrap_or_default();
            meta.lang = info.lang.clone().unwrap_or_default();
            meta.version = info.version.clone().unwrap_or_default();
        }
        self.connect = info;
        self.ok();
    }

    fn on_pub(&mut self, msg: &Message) {
        let subject = msg.subject();
        self.in_msgs += 1;
        self.in_bytes += msg.args.payload_len as u64;
        if !self.auth.can_publish(&self.me, subject) {
            tracing::error!(
                "{} - cid:{} - Publish Violation - {}, Subject \"{}\"",
                self.me.addr,
                self.me.cid,
                auth_user_label(&self.connect),
                String::from_utf8_lossy(subject)
            );
            self.send_err(&crate::auth::publish_violation(subject));
            return;
        }
        // As nats-server 2.9.10 (checked side by side): a pedantic client gets
        // the -ERR, then a verbose one its +OK. A subject with an empty token
        // reaches nobody. One with wildcard tokens is still delivered, its
        // tokens taken literally by the match (a `foo.*` subscription gets a
        // publish to `foo.>`, a `foo.bar` one does not get `foo.*`).
        let kind = subject::classify_publish(subject);
        if self.connect.pedantic && (kind.wildcard || kind.empty_token) {
            self.send_err(text::INVALID_PUB_SUBJECT);
        }
        self.ok();
        if kind.empty_token {
            return;
        }
        let delivered = self
            .fanout
            .publish(&self.srv, &self.me, self.connect.echo, msg);
        if delivered == 0 && self.connect.no_responders && !msg.reply().is_empty() {
            self.fanout.no_responders(&self.srv, &self.me, msg);
        }
    }

    fn on_sub(&mut self, subject: Bytes, queue: Option<Bytes>, sid: Bytes) {
        if subject::validate_subscribe(&subject).is_err()
            || queue
                .as_ref()
                .is_some_and(|q| subject::validate_queue(q).is_err())
        {
            self.send_err(text::INVALID_SUBJECT);
            return;
        }
        if !self
            .auth
            .can_subscribe(&self.me, &subject, queue.as_deref())
        {
            let queue_part = queue.as_deref().map_or(String::new(), |q| {
                format!(", Queue: \"{}\"", String::from_utf8_lossy(q))
            });
            tracing::error!(
                "{} - cid:{} - Subscription Violation - {}, Subject \"{}\"{queue_part}, SID {}",
                self.me.addr,
                self.me.cid,
                auth_user_label(&self.connect),
                String::from_utf8_lossy(&subject),
                String::from_utf8_lossy(&sid)
            );
            self.send_err(&crate::auth::subscribe_violation(
                &subject,
                queue.as_deref(),
            ));
            return;
        }
        if let Some(old) = self.subs.get(&sid) {
            if !old.is_expired() {
                self.ok();
                return;
            }
            self.subs.remove(&sid);
        }
        let max_subs = self.srv.opts().max_subscriptions;
        if max_subs > 0 && self.subs.len() >= max_subs {
            tracing::error!(
                "{} - cid:{} - maximum subscriptions exceeded",
                self.me.addr,
                self.me.cid
            );
            self.send_err(text::MAX_SUBSCRIPTIONS);
            return;
        }
        let sub = Arc::new(Subscription {
            client: self.me.clone(),
            subject,
            queue,
            sid: sid.clone(),
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        });
        match self
            .srv
            .sublist
            .insert(&sub.subject, sub.queue.as_deref(), SubRef(sub.clone()))
        {
            Ok(()) => {
                self.me.num_subs.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut list) = self.me.subjects.lock() {
                    list.insert(sid.clone(), SubEntry::new(&sub));
                }
                self.subs.insert(sid, sub);
                self.ok();
            }
            Err(_) => self.send_err(text::INVALID_SUBJECT),
        }
    }

    fn on_unsub(&mut self, sid: &[u8], max: Option<u64>) {
        if let Some(sub) = self.subs.get(sid) {
            match max {
                Some(max) if max > 0 && sub.delivered.load(Ordering::Relaxed) < max => {
                    sub.max.store(max, Ordering::Relaxed);
                }
                _ => {
                    if let Some(sub) = self.subs.remove(sid) {
                        self.remove_from_sublist(&sub);
                    }
                }
            }
        }
        self.ok();
    }

    fn remove_from_sublist(&self, sub: &Arc<Subscription>) {
        if let Ok(mut list) = self.me.subjects.lock() {
            list.remove(&sub.sid);
        }
        if self
            .srv
            .sublist
            .remove(&sub.subject, sub.queue.as_deref(), &SubRef(sub.clone()))
            .is_ok()
        {
            self.me.num_subs.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Removes the closed connection's interest. Its subscription count and
    /// list stay as they were, so `/connz?state=closed` shows them (as nats-server).
    /// Returns them so the caller decides when they are freed.
    fn drop_subscriptions(&mut self) -> Vec<Arc<Subscription>> {
        let mut dropped = Vec::with_capacity(self.subs.len());
        for (_, sub) in self.subs.drain() {
            let _ =
                self.srv
                    .sublist
                    .remove(&sub.subject, sub.queue.as_deref(), &SubRef(sub.clone()));
            dropped.push(sub);
        }
        dropped
    }
}

/// Who a connection claims to be, in nats-server's log wording: `Nkey "…"` or
/// `User "…"` (empty without a name). Never a password or token.
fn auth_user_label(info: &ConnectInfo) -> String {
    match (&info.nkey, &info.user) {
        (Some(nkey), _) => format!("Nkey {nkey:?}"),
        (None, user) => format!("User {:?}", user.as_deref().unwrap_or_default()),
    }
}

/// Longest a publisher pauses for one backlogged subscriber (as nats-server's
/// producer stall): long enough for the writer to drain, short enough that a
/// stuck subscriber only costs the publisher this much before it is cut off.
const STALL_MAX: Duration = Duration::from_millis(20);

/// Waits until `target`'s backlog is under half its bound, its connection
/// closes, or `STALL_MAX` passes.
async fn stall_for(target: &ClientShared, max_pending: usize) {
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

fn trace_op(addr: &SocketAddr, cid: u64, op: &Op) {
    let line = match op {
        Op::Ping => "PING".to_string(),
        Op::Pong => "PONG".to_string(),
        Op::Ignored => return,
        Op::Connect { frame, json } => {
            format!("CONNECT {}", String::from_utf8_lossy(&frame[json.clone()]))
        }
        Op::Pub { frame, args } => {
            String::from_utf8_lossy(frame[..args.payload_start].trim_ascii_end()).into_owned()
        }
        Op::Sub { frame, .. } | Op::Unsub { frame, .. } => {
            String::from_utf8_lossy(frame.trim_ascii_end()).into_owned()
        }
    };
    tracing::trace!("{addr} - cid:{cid} - <<- [{line}]");
}
