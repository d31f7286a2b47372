//! The client protocol's op handlers: CONNECT, PUB/HPUB, SUB, UNSUB, PING,
//! PONG, as nats-server applies them (verbose, pedantic, echo, permissions,
//! no_responders, auto-unsubscribe).
//!
//! Owns the meaning of each client op and the connection's subscriptions by
//! sid. Must not read or write the socket, and must not deliver except through
//! the fan-out (`deliver`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::conn::sample::SAMPLE_EVERY;

use super::deliver::Message;
use super::handshake::auth_user_label;
use super::read::{Close, Reader};
use crate::conn::{CloseReason, ConnShared, SubRef, Subscription};
use crate::protocol::errors::text;
use crate::protocol::{encode, ConnectInfo, Op};
use crate::subject;

/// Test-only fault hook: a publish to this subject panics the connection's
/// task, so tests can prove a panic is harmless (see `server::supervise`).
#[cfg(test)]
pub(crate) const FAULT_PANIC_SUBJECT: &[u8] = b"_NATRIUM_TEST.panic";

impl Reader {
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

    pub(super) fn apply(&mut self, op: Op) -> Result<(), Close> {
        if self.trace {
            trace_op(&self.me, &op);
        }
        if !self.authed && !matches!(op, Op::Connect { .. }) {
            // With auth configured, the first op must be CONNECT; nats-server
            // logs it as a failed login by nobody.
            tracing::error!("{} authentication error - User \"\"", self.me.log());
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
                let msg = Message::new(&frame, &args);
                self.on_pub(&msg);
                Ok(())
            }
            Op::Sub {
                frame,
                subject,
                queue,
                sid,
            } => {
                // The subscription copies what it keeps (`Subscription::new`).
                let queue = queue.and_then(|q| frame.get(q));
                match (frame.get(subject), frame.get(sid)) {
                    (Some(subject), Some(sid)) => self.on_sub(subject, queue, sid),
                    _ => self.send_err(text::INVALID_SUBJECT),
                }
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
            self.pending_auth = Some(Box::new(info));
            return Ok(());
        }
        self.finish_connect(info);
        Ok(())
    }

    pub(super) fn finish_connect(&mut self, mut info: ConnectInfo) {
        self.me.headers.store(info.headers, Ordering::Relaxed);
        {
            // Moved, not copied: only monitoring reads them.
            let mut meta = self.me.meta.lock();
            meta.name = info.name.take().unwrap_or_default();
            meta.lang = info.lang.take().unwrap_or_default();
            meta.version = info.version.take().unwrap_or_default();
        }
        self.connect = info;
        self.srv
            .accounts
            .event(crate::account::SysMsg::Connect(self.me.clone()));
        self.ok();
    }

    fn on_pub(&mut self, msg: &Message) {
        let subject = msg.subject();
        #[cfg(test)]
        if subject == FAULT_PANIC_SUBJECT {
            panic!("fault hook: publish to {FAULT_PANIC_SUBJECT:?}");
        }
        self.in_msgs += 1;
        self.in_bytes += msg.args.payload_len as u64;
        if !self.auth.can_publish(&self.me, subject) {
            tracing::error!(
                "{} Publish Violation - {}, Subject \"{}\"",
                self.me.log(),
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
        // One publish in SAMPLE_EVERY feeds the dashboard: its subject, and
        // the time until each subscriber's socket write of it completes.
        if self.in_msgs % SAMPLE_EVERY == 0 {
            self.fanout.sample = Some(std::time::Instant::now());
            self.srv.top_subjects.record(subject);
        }
        let delivered = self
            .fanout
            .publish(&self.srv, &self.acc, &self.me, self.connect.echo, msg);
        self.fanout.sample = None;
        if delivered == 0 && self.connect.no_responders && !msg.reply().is_empty() {
            self.fanout.no_responders(&self.acc, &self.me, msg);
        }
    }

    fn on_sub(&mut self, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
        if subject::validate_subscribe(subject).is_err()
            || queue.is_some_and(|q| subject::validate_queue(q).is_err())
        {
            self.send_err(text::INVALID_SUBJECT);
            return;
        }
        if !self.auth.can_subscribe(&self.me, subject, queue) {
            let queue_part = queue.map_or(String::new(), |q| {
                format!(", Queue: \"{}\"", String::from_utf8_lossy(q))
            });
            tracing::error!(
                "{} Subscription Violation - {}, Subject \"{}\"{queue_part}, SID {}",
                self.me.log(),
                auth_user_label(&self.connect),
                String::from_utf8_lossy(subject),
                String::from_utf8_lossy(sid)
            );
            self.send_err(&crate::auth::subscribe_violation(subject, queue));
            return;
        }
        let held = {
            let mut subs = self.me.subjects.lock();
            let live = subs.get(sid).map(|old| !old.is_expired());
            if live == Some(false) {
                subs.remove(sid);
            }
            (live == Some(true), subs.len())
        };
        if held.0 {
            self.ok();
            return;
        }
        let max_subs = self.srv.opts().max_subscriptions;
        if max_subs > 0 && held.1 >= max_subs {
            tracing::error!("{} maximum subscriptions exceeded", self.me.log());
            self.send_err(text::MAX_SUBSCRIPTIONS);
            return;
        }
        let sub = Arc::new(Subscription::new(self.me.clone(), subject, queue, sid));
        match self
            .acc
            .sublist
            .insert(sub.subject(), sub.queue(), SubRef(sub.clone()))
        {
            Ok(()) => {
                self.me.num_subs.fetch_add(1, Ordering::Relaxed);
                let old = self.me.subjects.lock().insert(sub.clone());
                drop(old);
                self.srv.leafs.changed(&sub, true);
                self.ok();
            }
            Err(_) => self.send_err(text::INVALID_SUBJECT),
        }
    }

    fn on_unsub(&mut self, sid: &[u8], max: Option<u64>) {
        let found = self.me.subjects.lock().get(sid).cloned();
        if let Some(sub) = found {
            match max {
                Some(max) if max > 0 && sub.delivered.load(Ordering::Relaxed) < max => {
                    sub.max.store(max, Ordering::Relaxed);
                }
                _ => self.remove_from_sublist(&sub),
            }
        }
        self.ok();
    }

    fn remove_from_sublist(&self, sub: &Arc<Subscription>) {
        let removed = self.me.subjects.lock().remove(sub.sid());
        drop(removed);
        if self
            .acc
            .sublist
            .remove(sub.subject(), sub.queue(), &SubRef(sub.clone()))
            .is_ok()
        {
            self.me.num_subs.fetch_sub(1, Ordering::Relaxed);
            self.srv.leafs.changed(sub, false);
        }
    }

    /// Removes the closed connection's interest. Its subscription count and
    /// list stay as they were, so `/connz?state=closed` shows them (as nats-server).
    /// Returns them so the caller decides when they are freed.
    pub(super) fn drop_subscriptions(&mut self) -> Vec<Arc<Subscription>> {
        let held: Vec<_> = self.me.subjects.lock().values().cloned().collect();
        let mut dropped = Vec::with_capacity(held.len());
        for sub in held {
            if self
                .acc
                .sublist
                .remove(sub.subject(), sub.queue(), &SubRef(sub.clone()))
                .is_ok()
            {
                self.srv.leafs.changed(&sub, false);
            }
            dropped.push(sub);
        }
        dropped
    }
}

fn trace_op(me: &ConnShared, op: &Op) {
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
    tracing::trace!("{} <<- [{line}]", me.log());
}
