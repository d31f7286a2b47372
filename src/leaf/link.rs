//! One leaf link once its handshake is done, whichever side dialled: the read
//! loop, the handlers of `LS+`/`LS-`/`LMSG`/`HMSG`/PING/PONG/INFO/-ERR,
//! keep-alive, loop detection and the removal of the link's interest at close.
//!
//! Owns the peer's interest as subscriptions in our sublist (one per subject
//! or queue group, addressed to the link) and the link's counters. It must not
//! write to the socket (the writer does) nor dial or accept (`solicit`,
//! `accept`); messages go out only through the fan-out (`client::Fanout`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::account::Account;
use crate::client::{Fanout, Message};
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

/// nats-server's delay after a loop is detected.
pub const LOOP_DELAY: Duration = Duration::from_secs(30);

static SEED: AtomicU64 = AtomicU64::new(0x51_7C_C1_B7_27_22_0A_95);

/// The loop-detection subject this server announces on every link.
pub fn lds_subject(srv: &ServerState) -> Bytes {
    let id = srv.server_id.get(1..23).unwrap_or(&srv.server_id);
    Bytes::from(format!("$LDS.{id}"))
}

/// Runs a link whose handshake is done until it ends. `buf` holds bytes read
/// after the handshake. Registers the link, tells the peer all local
/// interest, and at the end removes the peer's interest and the registration.
pub async fn run<R: AsyncRead + Unpin + Send + 'static>(
    srv: Arc<ServerState>,
    rec: Arc<LeafLink>,
    rd: R,
    buf: BytesMut,
) -> LinkEnd {
    let me = rec.conn.clone();
    // Bound by the dialler or acceptor (a remote's `account`); else `$G`.
    let acc = me
        .account
        .get_or_init(|| srv.accounts.global().clone())
        .clone();
    srv.leafs.add(rec.clone());
    rec.tell_all(|| {
        let mut interest = srv.interest_for_link(&me);
        // Identity 0: no subscription lives there; our loop-detection subject.
        interest.push(((lds_subject(&srv), None), 0));
        interest
    });
    let opts = srv.opts();
    let mut link = Link {
        parser: LeafParser::new(opts.max_control_line, opts.max_payload),
        fanout: Fanout::new(SEED.fetch_add(0x9E37_79B9, Ordering::Relaxed) ^ me.cid),
        lds: lds_subject(&srv),
        srv: srv.clone(),
        me: me.clone(),
        rec: rec.clone(),
        acc: acc.clone(),
        pings_out: 0,
        ping_sent: None,
        in_msgs: 0,
        in_bytes: 0,
        end: None,
        trace: opts.trace,
    };
    let (interval, ping_max) = (opts.ping_interval, opts.ping_max);
    drop(opts);
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
            .remove(&sub.subject, sub.queue.as_deref(), &SubRef(sub.clone()))
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
                self.pings_out = 0;
                if let Some(sent) = self.ping_sent.take() {
                    let rtt = sent.elapsed().as_nanos() as u64;
                    self.me.rtt_nanos.store(rtt.max(1), Ordering::Relaxed);
                }
            }
            LeafOp::Ok | LeafOp::Info { .. } | LeafOp::Connect { .. } => {}
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
                let subject = &frame[subject];
                if subject == self.lds.as_ref() {
                    return Err(self.loop_detected());
                }
                let queue = queue.map(|(q, _)| Bytes::copy_from_slice(&frame[q]));
                self.on_sub(Bytes::copy_from_slice(subject), queue);
            }
            LeafOp::Unsub {
                frame,
                subject,
                queue,
            } => {
                let key = (
                    Bytes::copy_from_slice(&frame[subject]),
                    queue.map(|q| Bytes::copy_from_slice(&frame[q])),
                );
                let removed = self.rec.remote.lock().remove(&key);
                if let Some(sub) = removed {
                    if self
                        .acc
                        .sublist
                        .remove(&sub.subject, sub.queue.as_deref(), &SubRef(sub.clone()))
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
                self.in_msgs += 1;
                self.in_bytes += args.payload_len as u64;
                let msg = Message::new(&frame, &args).with_queue_filter(&queues);
                self.fanout
                    .publish(&self.srv, &self.acc, &self.me, false, &msg);
            }
        }
        Ok(())
    }

    fn on_sub(&mut self, subject: Bytes, queue: Option<Bytes>) {
        if subject::validate_subscribe(&subject).is_err() {
            tracing::debug!(
                "{} ignoring LS+ with an invalid subject {:?}",
                self.me.log(),
                String::from_utf8_lossy(&subject)
            );
            return;
        }
        let key = (subject.clone(), queue.clone());
        if self.rec.remote.lock().contains_key(&key) {
            // A queue weight update: one subscription per group is enough.
            return;
        }
        let sub = Arc::new(Subscription {
            client: self.me.clone(),
            subject,
            queue,
            sid: Bytes::new(),
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        });
        if self
            .acc
            .sublist
            .insert(&sub.subject, sub.queue.as_deref(), SubRef(sub.clone()))
            .is_ok()
        {
            self.rec.remote.lock().insert(key, sub.clone());
            self.srv.leafs.changed(&sub, true);
        }
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
