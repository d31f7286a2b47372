//! One leaf link once its handshake is done, whichever side dialled: the read
//! loop, the handlers of `LS+`/`LS-`/`LMSG`/`HMSG`/PING/PONG/INFO/-ERR,
//! keep-alive, loop detection, the link's permissions (`auth::LinkPerms`)
//! and the removal of the link's interest at close.
//!
//! Owns the peer's interest as subscriptions in our sublist (one per subject
//! or queue group, addressed to the link), the link's counters, and the
//! checks of what the peer sends against its permissions: a denied `LMSG`
//! or literal `LS+` is dropped by a leaf side and closes the link on a hub
//! side, as nats-server (`leafPermViolation`). It must not write to the
//! socket (the writer does) nor dial or accept (`solicit`, `accept`);
//! messages go out only through the fan-out (`client::Fanout`), whose
//! delivery filter applies the outbound rules.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::handshake::PeerInfo;
use crate::account::Account;
use crate::auth::LinkPerms;
use crate::client::{ConnAuth, Fanout, Message};
use crate::conn::readbuf::ReadBuf;
use crate::conn::{CloseReason, ConnShared, SubRef, Subscription};
use crate::protocol::{encode, LeafError, LeafOp, LeafParser};
use crate::state::{LeafLink, ServerState};
use crate::subject;

/// How a link ended, for the dialler's back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEnd {
    /// Closed for `reason`; the dialler retries after its usual delay.
    Closed(CloseReason),
    /// The peer refused our credentials: retry, but back off.
    Refused,
    /// The peer (or we) found a loop: wait longer before the next try.
    Loop,
}

/// Where a link's permissions come from (the mapping: `auth::LinkPerms`).
pub enum LinkRules {
    /// We accepted it: built from the user it signed in as.
    Hub(LinkPerms),
    /// We dialled it: the remote's deny lists. The hub's INFO answering our
    /// CONNECT may add its own, so, as nats-server, the link tells its
    /// interest only once that INFO (or the PONG to our PING) is in.
    Spoke {
        deny_imports: Vec<String>,
        deny_exports: Vec<String>,
    },
}

/// nats-server's delay after a loop is detected.
pub const LOOP_DELAY: Duration = Duration::from_secs(30);

static SEED: AtomicU64 = AtomicU64::new(0x51_7C_C1_B7_27_22_0A_95);

/// The loop-detection subject this server announces on every link.
pub fn lds_subject(srv: &ServerState) -> Bytes {
    let id = srv.server_id.get(1..23).unwrap_or(&srv.server_id);
    Bytes::from(format!("$LDS.{id}"))
}

/// Runs a link whose handshake is done until it ends. `buf` holds bytes read
/// after the handshake. Registers the link under `rules`, tells the peer all
/// local interest it may hear of, and at the end removes the peer's interest
/// and the registration.
pub async fn run<R: AsyncRead + Unpin + Send + 'static>(
    srv: Arc<ServerState>,
    rec: Arc<LeafLink>,
    rd: R,
    buf: BytesMut,
    rules: LinkRules,
) -> LinkEnd {
    let me = rec.conn.clone();
    // Bound by the dialler or acceptor (a remote's `account`); else `$G`.
    let acc = me
        .account
        .get_or_init(|| srv.accounts.global().clone())
        .clone();
    let opts = srv.opts();
    let hub = matches!(rules, LinkRules::Hub(_));
    let mut link = Link {
        parser: LeafParser::new(opts.max_control_line, opts.max_payload),
        fanout: Fanout::new(SEED.fetch_add(0x9E37_79B9, Ordering::Relaxed) ^ me.cid),
        lds: lds_subject(&srv),
        srv: srv.clone(),
        me: me.clone(),
        rec: rec.clone(),
        acc: acc.clone(),
        auth: ConnAuth::new(None),
        rules: Some(rules),
        pings_out: 0,
        ping_sent: None,
        in_msgs: 0,
        in_bytes: 0,
        end: None,
        trace: opts.trace,
    };
    let (interval, ping_max) = (opts.ping_interval, opts.ping_max);
    drop(opts);
    // Registered at once (changes are counted from now on); told once the
    // link's rules are known.
    srv.leafs.add(rec.clone());
    if hub {
        link.start(None);
    }
    // The reader runs on its own task so that a panic in it (a bug; peer
    // input must never cause one) still ends here, with the cleanup below.
    let reader = tokio::spawn(async move {
        let reason = link.read_loop(rd, buf, interval, ping_max).await;
        (reason, link.end)
    });
    let (reason, end) = match reader.await {
        Ok(done) => done,
        Err(e) => {
            if e.is_panic() {
                tracing::error!("{} leaf link task panicked", me.log());
            }
            (CloseReason::InternalError, None)
        }
    };
    me.out.close_with(reason, None);
    srv.leafs.remove(&me);
    let remote: Vec<Arc<Subscription>> = rec.remote.lock().drain().map(|(_, s)| s).collect();
    for sub in &remote {
        if acc
            .sublist
            .remove(sub.subject(), sub.queue(), &SubRef(sub.clone()))
            .is_ok()
        {
            srv.leafs.changed(sub, false);
        }
    }
    let final_reason = me.out.lock().close_reason().unwrap_or(reason);
    tracing::info!(
        "{} Leafnode connection closed: {} - Remote: {}",
        me.log(),
        final_reason.as_str(),
        rec.remote_name
    );
    end.unwrap_or(LinkEnd::Closed(final_reason))
}

struct Link {
    srv: Arc<ServerState>,
    me: Arc<ConnShared>,
    rec: Arc<LeafLink>,
    /// The account the link is bound to: its interest and messages stay there.
    acc: Arc<Account>,
    /// What the peer may send us (its `LMSG`/`HMSG`): unrestricted, or the
    /// link's inbound rules, with reply grants for a user's `allow_responses`.
    auth: ConnAuth,
    /// Until the link has started: the rules it will start under.
    rules: Option<LinkRules>,
    parser: LeafParser,
    fanout: Fanout,
    lds: Bytes,
    pings_out: u32,
    ping_sent: Option<Instant>,
    in_msgs: u64,
    in_bytes: u64,
    end: Option<LinkEnd>,
    /// `-V`: every op read is logged as nats-server traces it (`<<- [LS+ foo]`).
    trace: bool,
}

impl Link {
    /// Applies the link's rules and tells the peer the local interest they
    /// let it hear of: at once on a hub side; on a leaf side with the hub's
    /// `info` answering CONNECT (or without it, on the first other op).
    /// Once only.
    fn start(&mut self, info: Option<&PeerInfo>) {
        let Some(rules) = self.rules.take() else {
            return;
        };
        let perms = match rules {
            LinkRules::Hub(perms) => perms,
            LinkRules::Spoke {
                deny_imports,
                deny_exports,
            } => LinkPerms::spoke(
                info.and_then(|i| i.import.as_ref()),
                info.and_then(|i| i.export.as_ref()),
                &deny_imports,
                &deny_exports,
            ),
        };
        // Before the link has interest: a publisher that finds its
        // subscriptions already sees the rules.
        if let Some(out) = perms.outbound {
            let _ = self.me.perms.outbound.set(out);
            self.me.delivery_filter.store(true, Ordering::Relaxed);
        }
        if let Some(inbound) = &perms.inbound {
            let _ = self.rec.inbound.set(inbound.clone());
        }
        self.auth.restrict(&self.me, perms.inbound);
        let (srv, me) = (&self.srv, &self.me);
        self.rec.tell_all(|| {
            let mut interest = srv.interest_for_link(me);
            // Identity 0: no subscription lives there; our loop-detection subject.
            interest.push(((lds_subject(srv), None), 0));
            interest
        });
    }

    /// The peer sent what its permissions forbid. A leaf side drops it (the
    /// hub told us our permissions and filters too); a hub side answers
    /// with the violation and closes the link, as nats-server.
    fn violation(&mut self, publish: bool, subject: &[u8]) -> Result<(), CloseReason> {
        if self.rec.solicited {
            if !publish {
                tracing::debug!(
                    "{} Permissions Violation for Subscription to {:?}",
                    self.me.log(),
                    String::from_utf8_lossy(subject)
                );
            }
            return Ok(());
        }
        let shown = String::from_utf8_lossy(subject);
        let (text, action) = if publish {
            (crate::auth::publish_violation(subject), "Publish")
        } else {
            (
                crate::auth::subscribe_violation(subject, None),
                "Subscription",
            )
        };
        tracing::error!(
            "{} {action} Violation on {shown:?} - Check other side configuration",
            self.me.log()
        );
        self.me
            .out
            .close_with(CloseReason::ProtocolViolation, Some(&text));
        Err(CloseReason::ProtocolViolation)
    }

    async fn read_loop<R: AsyncRead + Unpin>(
        &mut self,
        mut rd: R,
        buf: BytesMut,
        interval: Duration,
        ping_max: u32,
    ) -> CloseReason {
        let mut rb = ReadBuf::new();
        rb.cur.extend_from_slice(&buf);
        let first = tokio::time::Instant::now() + interval.min(Duration::from_secs(1));
        let mut ping = tokio::time::interval_at(first, interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if let Err(reason) = self.process(&mut rb.cur) {
            return reason;
        }
        loop {
            rb.prepare(0);
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
                        self.process(&mut rb.cur)
                    }
                },
                _ = ping.tick() => {
                    if self.pings_out >= ping_max {
                        Err(CloseReason::StaleConnection)
                    } else {
                        if self.pings_out == 0 {
                            self.ping_sent = Some(Instant::now());
                        }
                        self.pings_out += 1;
                        self.me.out.send_now(encode::PING);
                        self.fanout.forget_last_match();
                        Ok(())
                    }
                }
            };
            if let Err(reason) = result {
                return reason;
            }
        }
    }

    fn process(&mut self, buf: &mut BytesMut) -> Result<(), CloseReason> {
        self.fanout.begin_batch(&self.srv);
        let result = self.process_ops(buf);
        // A link never stalls for a subscriber: the peer would stall with it.
        let _ = self.fanout.end_batch();
        self.me.in_msgs.store(self.in_msgs, Ordering::Relaxed);
        self.me.in_bytes.store(self.in_bytes, Ordering::Relaxed);
        self.me
            .last_activity
            .store(crate::time::unix_nanos(), Ordering::Relaxed);
        result
    }

    fn process_ops(&mut self, buf: &mut BytesMut) -> Result<(), CloseReason> {
        loop {
            match self.parser.next_op(buf) {
                Ok(Some(op)) => self.apply(op)?,
                Ok(None) => return Ok(()),
                Err(e) => {
                    tracing::error!("{} {e}", self.me.log());
                    let reason = match e {
                        LeafError::PayloadTooLarge { .. } => CloseReason::MaxPayloadExceeded,
                        LeafError::ControlLineTooLong => CloseReason::MaxControlLineExceeded,
                        _ => CloseReason::ProtocolViolation,
                    };
                    let text = match e {
                        LeafError::UnknownOp | LeafError::BadPayloadEnd => {
                            Some(crate::protocol::errors::text::UNKNOWN_OP)
                        }
                        LeafError::PayloadTooLarge { .. } => {
                            Some(crate::protocol::errors::text::MAX_PAYLOAD)
                        }
                        _ => None,
                    };
                    self.me.out.close_with(reason, text);
                    return Err(reason);
                }
            }
        }
    }

    fn apply(&mut self, op: LeafOp) -> Result<(), CloseReason> {
        if self.trace {
            trace_op(&self.me, &op);
        }
        match op {
            LeafOp::Ping => self.fanout.send(&self.me, encode::PONG),
            LeafOp::Pong => {
                self.start(None);
                self.pings_out = 0;
                if let Some(sent) = self.ping_sent.take() {
                    let rtt = sent.elapsed().as_nanos() as u64;
                    self.me.rtt_nanos.store(rtt.max(1), Ordering::Relaxed);
                }
            }
            LeafOp::Info { frame, json } => {
                if self.rules.is_some() && self.rec.solicited {
                    let info = frame
                        .get(json)
                        .and_then(|j| serde_json::from_slice::<PeerInfo>(j).ok());
                    if let Some(info) = info.filter(|i| i.connect_info) {
                        self.start(Some(&info));
                    }
                }
            }
            LeafOp::Ok | LeafOp::Connect { .. } => {}
            LeafOp::Err { frame, text } => {
                let text = String::from_utf8_lossy(&frame[text]).into_owned();
                tracing::error!("{} Leafnode Error {text}", self.me.log());
                self.end = Some(if text.contains("Loop detected") {
                    LinkEnd::Loop
                } else if text.contains("Authorization Violation") {
                    LinkEnd::Refused
                } else {
                    LinkEnd::Closed(CloseReason::ClientClosed)
                });
                self.me.out.close_with(CloseReason::ClientClosed, None);
                return Err(CloseReason::ClientClosed);
            }
            LeafOp::Sub {
                frame,
                subject,
                queue,
            } => {
                self.start(None);
                let subject = &frame[subject];
                if subject == self.lds.as_ref() {
                    return Err(self.loop_detected());
                }
                let queue = queue.map(|(q, _)| Bytes::copy_from_slice(&frame[q]));
                self.on_sub(Bytes::copy_from_slice(subject), queue)?;
            }
            LeafOp::Unsub {
                frame,
                subject,
                queue,
            } => {
                self.start(None);
                let key = (
                    Bytes::copy_from_slice(&frame[subject]),
                    queue.map(|q| Bytes::copy_from_slice(&frame[q])),
                );
                let removed = self.rec.remote.lock().remove(&key);
                if let Some(sub) = removed {
                    if self
                        .acc
                        .sublist
                        .remove(sub.subject(), sub.queue(), &SubRef(sub.clone()))
                        .is_ok()
                    {
                        self.srv.leafs.changed(&sub, false);
                    }
                }
            }
            LeafOp::Msg {
                frame,
                args,
                queues,
            } => {
                self.start(None);
                self.in_msgs += 1;
                self.in_bytes += args.payload_len as u64;
                let msg = Message::new(&frame, &args).with_queue_filter(&queues);
                // Unrestricted: one branch. Service-import replies pass, as
                // nats-server's `leafMsgAllowed`.
                let subject = msg.subject();
                if !self.auth.can_publish(&self.me, subject) && !subject.starts_with(b"_R_.") {
                    return self.violation(true, subject);
                }
                self.fanout
                    .publish(&self.srv, &self.acc, &self.me, false, &msg);
            }
        }
        Ok(())
    }

    fn on_sub(&mut self, subject: Bytes, queue: Option<Bytes>) -> Result<(), CloseReason> {
        if subject::validate_subscribe(&subject).is_err() {
            tracing::debug!(
                "{} ignoring LS+ with an invalid subject {:?}",
                self.me.log(),
                String::from_utf8_lossy(&subject)
            );
            return Ok(());
        }
        // Interest in what may not go out: a literal is refused here; a
        // wildcard is taken and its deliveries filtered one by one.
        if let Some(out) = self.me.perms.outbound.get() {
            if !subject.starts_with(b"$LDS.")
                && !subject::has_wildcard(&subject)
                && !out.publish_allowed(&subject)
            {
                return self.violation(false, &subject);
            }
        }
        let key = (subject.clone(), queue.clone());
        if self.rec.remote.lock().contains_key(&key) {
            // A queue weight update: one subscription per group is enough.
            return Ok(());
        }
        let sub = Arc::new(Subscription::new(
            self.me.clone(),
            &subject,
            queue.as_deref(),
            b"",
        ));
        if self
            .acc
            .sublist
            .insert(sub.subject(), sub.queue(), SubRef(sub.clone()))
            .is_ok()
        {
            self.rec.remote.lock().insert(key, sub.clone());
            self.srv.leafs.changed(&sub, true);
        }
        Ok(())
    }

    fn loop_detected(&mut self) -> CloseReason {
        let text = format!(
            "Loop detected for leafnode account={:?}. Delaying attempt to reconnect for {:?}",
            &*self.acc.name, LOOP_DELAY
        );
        tracing::error!("{} {text}", self.me.log());
        self.end = Some(LinkEnd::Loop);
        self.me
            .out
            .close_with(CloseReason::ProtocolViolation, Some(&text));
        CloseReason::ProtocolViolation
    }
}

fn trace_op(me: &ConnShared, op: &LeafOp) {
    let line = |frame: &Bytes, end: usize| {
        String::from_utf8_lossy(frame.get(..end).unwrap_or_default().trim_ascii_end()).into_owned()
    };
    let text = match op {
        LeafOp::Ping => "PING".to_string(),
        LeafOp::Pong => "PONG".to_string(),
        LeafOp::Ok => "+OK".to_string(),
        LeafOp::Msg { frame, args, .. } => line(frame, args.payload_start),
        LeafOp::Info { frame, .. }
        | LeafOp::Connect { frame, .. }
        | LeafOp::Err { frame, .. }
        | LeafOp::Sub { frame, .. }
        | LeafOp::Unsub { frame, .. } => line(frame, frame.len()),
    };
    tracing::trace!("{} <<- [{text}]", me.log());
}
