//! Fan-out: one published message into the outbound queues of its subscribers.
//!
//! Owns the per-subscriber delivery rules (echo, auto-unsubscribe, header
//! stripping, queue-group choice, slow-consumer bound), the leaf-link rules: one `LMSG` per link per
//! message carrying the queue groups chosen across it, local queue members
//! preferred, never back to the link a message came from; at the end of a
//! batch, the direct writes (or writer wake-ups) of the queues it filled. It
//! runs on the publisher's task and must not block or `.await`: each
//! subscriber's queue lock is held only to append or swap.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

pub use super::message::Message;
use crate::account::{Account, Route, SysMsg, SysRequest};
use crate::conn::outbound::{Appended, FlushBufs, Flushed};
use crate::conn::{ConnShared, Delivery, Kind, SubRef};
use crate::protocol::encode;
use crate::rand::XorShift64;
use crate::state::ServerState;
use crate::sublist::Matched;

/// How many imports one message may cross (cycles are refused at load; this
/// bounds what a reload race could still build).
const MAX_ROUTE_HOPS: usize = 8;

/// How long a publisher spends writing its subscribers' queues itself at the
/// end of a batch before leaving the rest to their writer tasks (the budget
/// nats-server's `flushClients` takes; its client read loop no longer flushes
/// in place and always signals the writer).
const DIRECT_BUDGET: std::time::Duration = std::time::Duration::from_micros(500);

/// Per-reader fan-out state, reused for every message: the writers to wake at
/// the end of the batch and a cheap random source for queue groups.
pub struct Fanout {
    /// Subscribers that got data in this batch: flushed directly at its end
    /// (within [`DIRECT_BUDGET`]), their writer tasks woken otherwise.
    wake: Vec<Arc<ConnShared>>,
    /// The buffers direct flushes swap in and write from.
    scratch: FlushBufs,
    /// A subscriber whose backlog is over half its bound: the publisher pauses
    /// for it (briefly, bounded) at the end of the batch.
    stall: Option<Arc<ConnShared>>,
    batch: u64,
    rng: XorShift64,
    /// The last subject published and its match, valid while the sublist's
    /// generation is unchanged: a publisher repeating a subject skips the
    /// shared cache entirely (one compare and one atomic load).
    last: LastMatch,
    /// Set by the reader while it publishes a sampled message: when it was
    /// parsed (each subscriber queue taking it is marked; `conn::sample`).
    pub sample: Option<std::time::Instant>,
    /// Leaf links this message goes to, and the queue groups each serves.
    leaf_targets: Vec<SubRef>,
    /// The queue groups each target serves: (index into `leaf_targets`,
    /// group name). Kept apart so that no list is allocated per message.
    leaf_queues: Vec<(usize, Bytes)>,
    /// Buffers for subjects mapped by imports, reused (one per hop in use):
    /// a stream import costs no allocation per message once warm.
    mapped: Vec<Vec<u8>>,
}

#[derive(Default)]
struct LastMatch {
    /// The account matched in (by address): a leaf or client never changes
    /// account, but routed publishes must not use another account's match.
    account: usize,
    subject: Vec<u8>,
    generation: u64,
    result: Option<Matched<SubRef>>,
}

impl Fanout {
    pub fn new(seed: u64) -> Self {
        Fanout {
            wake: Vec::new(),
            scratch: FlushBufs::default(),
            stall: None,
            last: LastMatch::default(),
            batch: 0,
            rng: XorShift64::new(seed),
            sample: None,
            leaf_targets: Vec::new(),
            leaf_queues: Vec::new(),
            mapped: Vec::new(),
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

    /// Writes out what this batch queued: each subscriber's queue directly to
    /// its socket from this task while that takes no longer than
    /// [`DIRECT_BUDGET`] in all (no wake-up, no context switch), and wakes the
    /// writer task of the rest and of any whose socket would block. Returns a
    /// subscriber the publisher should wait for before reading more.
    pub fn end_batch(&mut self) -> Option<Arc<ConnShared>> {
        if !self.wake.is_empty() {
            let start = std::time::Instant::now();
            let mut direct = true;
            for c in self.wake.drain(..) {
                let flushed = if direct {
                    let f = c.out.flush_direct(&mut self.scratch);
                    direct = start.elapsed() < DIRECT_BUDGET;
                    f
                } else {
                    Flushed::Wake
                };
                if flushed == Flushed::Wake {
                    c.out.wake.notify_one();
                }
            }
        }
        self.stall.take()
    }

    /// Queues raw bytes to `client` (PONG, +OK, -ERR) in batch order.
    pub fn send(&mut self, client: &Arc<ConnShared>, bytes: &[u8]) {
        let wake = client
            .out
            .lock()
            .append_raw(self.batch, |b| b.extend_from_slice(bytes));
        if wake {
            self.wake.push(client.clone());
        }
    }

    /// Delivers `msg` to everyone interested in `acc`, and across the
    /// account's imports; returns how many got it.
    pub fn publish(
        &mut self,
        srv: &ServerState,
        acc: &Arc<Account>,
        me: &Arc<ConnShared>,
        echo: bool,
        msg: &Message,
    ) -> usize {
        let subject = msg.subject();
        let generation = acc.sublist.generation();
        let id = Arc::as_ptr(acc) as usize;
        let last = &mut self.last;
        let result = match &last.result {
            Some(r)
                if last.generation == generation
                    && last.account == id
                    && last.subject == subject =>
            {
                r.clone()
            }
            _ => {
                let r = acc.sublist.match_subject(subject);
                last.subject.clear();
                last.subject.extend_from_slice(subject);
                last.generation = generation;
                last.account = id;
                last.result = Some(r.clone());
                r
            }
        };
        self.deliver_matches(srv, &result, me, echo, msg, 0)
    }

    /// Delivers `msg` to the subscribers of one match result; route
    /// subscriptions (the internal client's) carry it into other accounts.
    fn deliver_matches(
        &mut self,
        srv: &ServerState,
        result: &Matched<SubRef>,
        me: &Arc<ConnShared>,
        echo: bool,
        msg: &Message,
        hops: usize,
    ) -> usize {
        let mut delivered = 0;
        // A routed (nested) delivery keeps its own targets above `base`:
        // the outer message's links are not lost or mixed with them.
        let base = self.leaf_targets.len();
        // The usual case, one link and no queue group, is delivered from
        // here without collecting targets (no reference count, no push).
        let mut one_link: Option<&SubRef> = None;
        for sub in result.plain() {
            let to = &sub.0.client;
            if Arc::ptr_eq(to, me) && (!echo || me.kind == Kind::Leaf) {
                continue;
            }
            if to.kind == Kind::Internal {
                delivered += self.follow_route(srv, sub, me, msg, hops);
            } else if to.kind == Kind::Leaf {
                match one_link {
                    None => one_link = Some(sub),
                    Some(first) if Arc::ptr_eq(&first.0.client, to) => {}
                    Some(first) => {
                        self.add_leaf_target(base, first, None);
                        self.add_leaf_target(base, sub, None);
                        one_link = None;
                    }
                }
            } else if self.deliver_one(srv, sub, msg, &[]) {
                delivered += 1;
            }
        }
        if self.leaf_targets.len() > base {
            // More than one link: the single-link shortcut no longer applies.
            if let Some(first) = one_link.take() {
                self.add_leaf_target(base, first, None);
            }
        }
        for group in result.queues() {
            let n = group.members.len();
            if n == 0 || !msg.wants_group(&group.name) {
                continue;
            }
            // Local members first; a leaf link only when none of them takes it.
            let start = self.rng.below(n);
            let mut taken = false;
            for i in 0..n {
                let Some(sub) = group.members.get((start + i) % n) else {
                    continue;
                };
                let to = &sub.0.client;
                if to.kind == Kind::Leaf || (!echo && Arc::ptr_eq(to, me)) {
                    continue;
                }
                if self.deliver_one(srv, sub, msg, &[]) {
                    delivered += 1;
                    taken = true;
                    break;
                }
            }
            if taken {
                continue;
            }
            let link = (0..n)
                .filter_map(|i| group.members.get((start + i) % n))
                .find(|s| {
                    let c = &s.0.client;
                    // A link whose rules would drop it is passed over, so
                    // the group still gets the message through another.
                    c.kind == Kind::Leaf
                        && !Arc::ptr_eq(c, me)
                        && (!c.delivery_filter.load(Ordering::Relaxed)
                            || c.perms.can_receive(msg.subject()))
                });
            if let Some(sub) = link {
                if let Some(first) = one_link.take() {
                    self.add_leaf_target(base, first, None);
                }
                self.add_leaf_target(base, sub, Some(&group.name));
            }
        }
        if let Some(sub) = one_link {
            if self.deliver_one(srv, sub, msg, &[]) {
                delivered += 1;
            }
        }
        let mut targets = std::mem::take(&mut self.leaf_targets);
        let mut queues = std::mem::take(&mut self.leaf_queues);
        let qbase = queues
            .iter()
            .position(|(i, _)| *i >= base)
            .unwrap_or(queues.len());
        for (i, sub) in targets.iter().enumerate().skip(base) {
            // Up to 16 group names on the stack; more (rare) in a list.
            let names = queues.get(qbase..).unwrap_or_default();
            let mut few: [&[u8]; 16] = [&[]; 16];
            let mut n = 0;
            let mut many: Vec<&[u8]> = Vec::new();
            for (_, q) in names.iter().filter(|(t, _)| *t == i) {
                match few.get_mut(n) {
                    Some(slot) => *slot = q.as_ref(),
                    None => {
                        if many.is_empty() {
                            many.extend_from_slice(&few);
                        }
                        many.push(q.as_ref());
                    }
                }
                n += 1;
            }
            let qs: &[&[u8]] = if many.is_empty() {
                few.get(..n).unwrap_or_default()
            } else {
                &many
            };
            if self.deliver_one(srv, sub, msg, qs) {
                delivered += 1;
            }
        }
        targets.truncate(base);
        queues.truncate(qbase);
        self.leaf_targets = targets;
        self.leaf_queues = queues;
        delivered
    }

    /// Follows one route subscription: a stream or service import carries
    /// the message into another account under its mapped subject; a response
    /// goes back to the requester's account; a system request to its task.
    fn follow_route(
        &mut self,
        srv: &ServerState,
        sub: &SubRef,
        me: &Arc<ConnShared>,
        msg: &Message,
        hops: usize,
    ) -> usize {
        if hops >= MAX_ROUTE_HOPS {
            return 0;
        }
        let Some(route) = srv.accounts.route(sub.0.sid()) else {
            return 0;
        };
        let mut subject = self.mapped.pop().unwrap_or_default();
        let n = self.route_into(srv, &route, me, msg, hops, &mut subject);
        self.mapped.push(subject);
        n
    }

    fn route_into(
        &mut self,
        srv: &ServerState,
        route: &Route,
        me: &Arc<ConnShared>,
        msg: &Message,
        hops: usize,
        subject: &mut Vec<u8>,
    ) -> usize {
        let internal = &srv.accounts.internal;
        match route {
            Route::Stream { to, map } => {
                map.apply(msg.subject(), subject);
                let reply = msg.reply();
                let m = msg.mapped(subject, reply);
                let r = to.sublist.match_subject(subject);
                self.deliver_matches(srv, &r, internal, true, &m, hops + 1)
            }
            Route::Service {
                from,
                to,
                map,
                response,
            } => {
                map.apply(msg.subject(), subject);
                let reply = match msg.reply() {
                    b"" => None,
                    r => match to.new_response(from, r, *response) {
                        Some(mapped) => Some(mapped),
                        None => return 0,
                    },
                };
                let m = msg.mapped(subject, reply.as_deref().unwrap_or_default());
                let r = to.sublist.match_subject(subject);
                let n = self.deliver_matches(srv, &r, internal, true, &m, hops + 1);
                if n == 0 {
                    if let Some(mapped) = &reply {
                        to.take_response(mapped);
                    }
                }
                n
            }
            Route::Responses { acc } => {
                let Some((to, reply)) = acc.take_response(msg.subject()) else {
                    return 0;
                };
                let m = msg.mapped(&reply, b"");
                let r = to.sublist.match_subject(&reply);
                self.deliver_matches(srv, &r, internal, true, &m, hops + 1)
            }
            Route::System {
                kind,
                ping,
                account,
            } => {
                let Some(tx) = srv.accounts.system_tx.get() else {
                    return 0;
                };
                let body = msg.args.payload_start + msg.args.header_len.unwrap_or(0)
                    ..msg.args.payload_start + msg.args.payload_len;
                let req = SysRequest {
                    kind: *kind,
                    ping: *ping,
                    subject: Bytes::copy_from_slice(msg.subject()),
                    reply: Bytes::copy_from_slice(msg.reply()),
                    payload: msg.frame.slice(body),
                    account: account.clone(),
                    requester: (me.kind == Kind::Client).then(|| me.clone()),
                };
                usize::from(tx.try_send(SysMsg::Request(req)).is_ok())
            }
        }
    }

    /// One `LMSG` per link: a second match on the same link adds its queue
    /// group (if any) to the first instead of sending again.
    fn add_leaf_target(&mut self, base: usize, sub: &SubRef, queue: Option<&Bytes>) {
        let found = self
            .leaf_targets
            .iter()
            .skip(base)
            .position(|s| Arc::ptr_eq(&s.0.client, &sub.0.client))
            .map(|p| p + base);
        let i = match found {
            Some(i) => i,
            None => {
                self.leaf_targets.push(sub.clone());
                self.leaf_targets.len() - 1
            }
        };
        if let Some(q) = queue {
            self.leaf_queues.push((i, q.clone()));
        }
    }

    /// Appends one MSG/HMSG to `sub`'s client. False if it could not take it.
    fn deliver_one(
        &mut self,
        srv: &ServerState,
        subref: &SubRef,
        msg: &Message,
        queues: &[&[u8]],
    ) -> bool {
        let sub = &subref.0;
        let client = &sub.client;
        let args = msg.args;
        let (hdr_len, body_start) = match args.header_len {
            Some(h) if client.wants_headers() => (Some(h), args.payload_start),
            Some(h) => (None, args.payload_start + h),
            None => (None, args.payload_start),
        };
        if client.kind == Kind::Leaf {
            let max = client.peer_max_payload.load(Ordering::Relaxed);
            if max != 0 && args.payload_len > max {
                return false;
            }
        }
        let reply = msg.reply();
        let delivery = Delivery {
            subject: msg.subject(),
            sid: sub.sid(),
            reply,
            queues,
            hdr_len,
            frame: msg.frame,
            body: body_start..args.payload_start + args.payload_len,
        };
        let mut st = client.out.lock();
        if st.is_closing() {
            return false;
        }
        // Only a delivery that is really due may count against the bound: a
        // subscriber is never cut for a message it would not have received.
        if client.delivery_filter.load(Ordering::Relaxed)
            && !client.perms.can_receive(delivery.subject)
        {
            drop(st);
            if client.kind == Kind::Leaf {
                tracing::debug!(
                    "{} Not permitted to deliver to {:?}",
                    client.log(),
                    String::from_utf8_lossy(delivery.subject)
                );
            }
            return false;
        }
        let Some(last) = sub.take_delivery() else {
            return false;
        };
        // Before the writer can send it: the answer may come back at once.
        if !reply.is_empty() && client.allow_responses.load(Ordering::Relaxed) {
            client.perms.note_reply(reply);
        }
        match st.append_delivery(&delivery, self.batch, srv.max_pending()) {
            Appended::Queued { wake, stall, flush } => {
                if let Some(t) = self.sample {
                    st.mark_sample(t);
                }
                drop(st);
                if wake {
                    self.wake.push(client.clone());
                }
                if flush && client.out.flush_direct(&mut self.scratch) == Flushed::Wake {
                    client.out.wake.notify_one();
                }
                if stall && self.stall.is_none() {
                    self.stall = Some(client.clone());
                }
            }
            Appended::SlowConsumer => {
                drop(st);
                client.out.notify_closed();
                srv.note_slow_consumer(client, crate::conn::CloseReason::SlowConsumerPendingBytes);
                return false;
            }
            Appended::Closed => return false,
        }
        if last
            && srv
                .accounts
                .of(client)
                .sublist
                .remove(sub.subject(), sub.queue(), subref)
                .is_ok()
        {
            client.num_subs.fetch_sub(1, Ordering::Relaxed);
            client.subjects.lock().remove(sub.sid());
            srv.leafs.changed(sub, false);
        }
        true
    }

    /// Tells a requester nobody listens (no_responders): a 503 HMSG on `reply`
    /// to each of `me`'s own subscriptions matching it.
    pub fn no_responders(&mut self, acc: &Account, me: &Arc<ConnShared>, msg: &Message) {
        let reply = msg.reply();
        let result = acc.sublist.match_subject(reply);
        for sub in result
            .plain()
            .iter()
            .chain(result.queues().iter().flat_map(|g| g.members.iter()))
        {
            if !Arc::ptr_eq(&sub.0.client, me) {
                continue;
            }
            let mut hdr = Vec::with_capacity(64);
            let n = encode::no_responders_headers(&mut hdr, msg.subject());
            let wake = me.out.lock().append_raw(self.batch, |b| {
                encode::hmsg_line(b, reply, sub.0.sid(), b"", n, n);
                b.extend_from_slice(&hdr);
                b.extend_from_slice(b"\r\n");
            });
            if wake {
                self.wake.push(me.clone());
            }
        }
    }
}

#[cfg(test)]
#[path = "deliver_tests.rs"]
mod tests;
