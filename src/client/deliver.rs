//! Fan-out: one published message into the outbound queues of its subscribers.
//!
//! Owns the per-subscriber delivery rules (echo, auto-unsubscribe, header
//! stripping, queue-group choice, slow-consumer bound) and the once-per-batch
//! wake-up of writers. It runs on the publisher's task and must not block or
//! `.await`: each subscriber's queue lock is held only to append.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::{ClientShared, CloseReason, SubRef};
use crate::protocol::encode;
use crate::protocol::PubArgs;
use crate::server::ServerState;
use crate::sublist::MatchResult;

/// Payloads up to this size (with CRLF) are copied next to their MSG line
/// instead of queued as a shared slice: see docs/PERFORMANCE.md for the measurement.
const INLINE_MAX: usize = 256;

/// A parsed PUB/HPUB seen through its frame.
pub struct Message<'a> {
    pub frame: &'a Bytes,
    pub args: &'a PubArgs,
}

impl Message<'_> {
    pub fn subject(&self) -> &[u8] {
        &self.frame[self.args.subject.clone()]
    }
    pub fn reply(&self) -> &[u8] {
        match &self.args.reply {
            Some(r) => &self.frame[r.clone()],
            None => b"",
        }
    }
}

/// Per-reader fan-out state, reused for every message: the writers to wake at
/// the end of the batch and a cheap random source for queue groups.
pub struct Fanout {
    wake: Vec<Arc<ClientShared>>,
    /// A subscriber whose backlog is over half its bound: the publisher pauses
    /// for it (briefly, bounded) at the end of the batch.
    stall: Option<Arc<ClientShared>>,
    batch: u64,
    rng: u64,
    /// The last subject published and its match, valid while the sublist's
    /// generation is unchanged: a publisher repeating a subject skips the
    /// shared cache entirely (one compare and one atomic load).
    last: LastMatch,
}

#[derive(Default)]
struct LastMatch {
    subject: Vec<u8>,
    generation: u64,
    result: Option<Arc<MatchResult<SubRef>>>,
}

impl Fanout {
    pub fn new(seed: u64) -> Self {
        Fanout {
            wake: Vec::with_capacity(16),
            stall: None,
            last: LastMatch::default(),
            batch: 0,
            rng: seed | 1,
        }
    }

    /// Drops the remembered match (an idle publisher must not keep closed
    /// subscribers alive through it).
    pub fn forget_last_match(&mut self) {
        self.last = LastMatch::default();
    }

    /// Starts a read batch: registrations from now on wake writers once.
    pub fn begin_batch(&mut self, srv: &ServerState) {
        self.batch = srv.next_batch_id();
    }

    /// Wakes every writer that got something in this batch, once. Returns a
    /// subscriber the publisher should wait for before reading more.
    pub fn end_batch(&mut self) -> Option<Arc<ClientShared>> {
        for c in self.wake.drain(..) {
            c.out.wake.notify_one();
        }
        self.stall.take()
    }

    /// Registers `client` for the end-of-batch wake-up (the caller holds its lock).
    fn mark(&mut self, client: &Arc<ClientShared>, mark: &mut u64) {
        if *mark != self.batch {
            *mark = self.batch;
            self.wake.push(client.clone());
        }
    }

    /// Queues raw bytes to `client` (PONG, +OK, -ERR) in batch order.
    pub fn send(&mut self, client: &Arc<ClientShared>, bytes: &[u8]) {
        let mut st = client.out.lock();
        if st.is_closing() {
            return;
        }
        st.push_inline(bytes);
        let mut mark = st.flush_mark;
        self.mark(client, &mut mark);
        st.flush_mark = mark;
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64: queue-group start positions need spread, not secrecy.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Delivers `msg` to everyone interested; returns how many got it.
    pub fn publish(
        &mut self,
        srv: &ServerState,
        me: &Arc<ClientShared>,
        echo: bool,
        msg: &Message,
    ) -> usize {
        let subject = msg.subject();
        let generation = srv.sublist.generation();
        let last = &mut self.last;
        let result = match &last.result {
            Some(r) if last.generation == generation && last.subject == subject => r.clone(),
            _ => {
                let r = srv.sublist.match_subject(subject);
                last.subject.clear();
                last.subject.extend_from_slice(subject);
                last.generation = generation;
                last.result = Some(r.clone());
                r
            }
        };
        let mut delivered = 0;
        for sub in &result.plain {
            if (echo || !Arc::ptr_eq(&sub.0.client, me)) && self.deliver_one(srv, sub, msg) {
                delivered += 1;
            }
        }
        for group in &result.queues {
            let n = group.members.len();
            if n == 0 {
                continue;
            }
            let start = (self.next_rand() % n as u64) as usize;
            for i in 0..n {
                let sub = &group.members[(start + i) % n];
                if !echo && Arc::ptr_eq(&sub.0.client, me) {
                    continue;
                }
                if self.deliver_one(srv, sub, msg) {
                    delivered += 1;
                    break;
                }
            }
        }
        delivered
    }

    /// Appends one MSG/HMSG to `sub`'s client. False if it could not take it.
    fn deliver_one(&mut self, srv: &ServerState, subref: &SubRef, msg: &Message) -> bool {
        let sub = &subref.0;
        let client = &sub.client;
        let args = msg.args;
        let wants_headers = client.wants_headers();
        let (hdr_len, body_start) = match args.header_len {
            Some(h) if wants_headers => (Some(h), args.payload_start),
            Some(h) => (None, args.payload_start + h),
            None => (None, args.payload_start),
        };
        let body_end = args.payload_start + args.payload_len;
        let body_len = body_end - body_start;
        let subject = msg.subject();
        let reply = msg.reply();
        let line_max = 24 + subject.len() + sub.sid.len() + reply.len() + 40;
        let mut st = client.out.lock();
        if st.is_closing() {
            return false;
        }
        if !st.has_room(line_max + body_len, srv.max_pending()) {
            st.close(CloseReason::SlowConsumerPendingBytes);
            drop(st);
            client.kill.notify_one();
            client.out.wake.notify_one();
            srv.note_slow_consumer(client);
            return false;
        }
        if client.delivery_filter.load(Ordering::Relaxed) && !client.perms.can_receive(subject) {
            return false;
        }
        let Some(last) = sub.take_delivery() else {
            return false;
        };
        if !reply.is_empty() && client.allow_responses.load(Ordering::Relaxed) {
            client.perms.note_reply(reply);
        }
        st.inline_with(|b| match hdr_len {
            Some(h) => encode::hmsg_line(b, subject, &sub.sid, reply, h, body_len),
            None => encode::msg_line(b, subject, &sub.sid, reply, body_len),
        });
        let body = &msg.frame[body_start..body_end + 2];
        if body.len() <= INLINE_MAX {
            st.push_inline(body);
        } else {
            st.push_shared(msg.frame.slice(body_start..body_end + 2));
        }
        st.out_msgs += 1;
        st.out_bytes += body_len as u64;
        if self.stall.is_none() && st.wants_stall(srv.max_pending()) {
            self.stall = Some(client.clone());
        }
        let mut mark = st.flush_mark;
        self.mark(client, &mut mark);
        st.flush_mark = mark;
        drop(st);
        if last
            && srv
                .sublist
                .remove(&sub.subject, sub.queue.as_deref(), subref)
                .is_ok()
        {
            client.num_subs.fetch_sub(1, Ordering::Relaxed);
            if let Ok(mut list) = client.subjects.lock() {
                list.remove(&sub.sid);
            }
        }
        true
    }

    /// Tells a requester nobody listens (no_responders): a 503 HMSG on `reply`
    /// to each of `me`'s own subscriptions matching it.
    pub fn no_responders(&mut self, srv: &ServerState, me: &Arc<ClientShared>, msg: &Message) {
        let reply = msg.reply();
        let result = srv.sublist.match_subject(reply);
        for sub in result
            .plain
            .iter()
            .chain(result.queues.iter().flat_map(|g| g.members.iter()))
        {
            if !Arc::ptr_eq(&sub.0.client, me) {
                continue;
            }
            let mut hdr = Vec::with_capacity(64);
            let n = encode::no_responders_headers(&mut hdr, msg.subject());
            let mut st = me.out.lock();
            if st.is_closing() {
                return;
            }
            st.inline_with(|b| {
                encode::hmsg_line(b, reply, &sub.0.sid, b"", n, n);
                b.extend_from_slice(&hdr);
                b.extend_from_slice(b"\r\n");
            });
            let mut mark = st.flush_mark;
            self.mark(me, &mut mark);
            st.flush_mark = mark;
        }
    }
}
