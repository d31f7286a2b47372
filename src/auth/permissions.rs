//! Per-user publish/subscribe permissions, compiled once per user and checked per
//! connection with a bounded cache of publish decisions.
//!
//! Semantics follow nats-server: an absent allow list allows everything, a
//! present one (even empty) allows only what it matches, and deny wins. See
//! [`PermissionChecker::can_subscribe`] for wildcard subscriptions and queues.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::rules::{intersects, is_subset, queue_matches};
use super::AuthError;
use crate::options::Permissions;
use crate::subject::{has_wildcard, subject_matches, validate_queue, validate_subscribe};

/// Publish decisions kept per connection before the cache is pruned.
pub const PUB_CACHE_MAX: usize = 1024;
/// Outstanding reply grants kept per connection (nats-server's `replyPermLimit`).
pub const REPLY_GRANTS_MAX: usize = 4096;
/// Responses allowed per received request (nats-server's default `max: 1`).
pub const RESPONSE_MAX_MSGS: u32 = 1;
/// How long a reply grant lives (nats-server's default `expires: 2m`).
pub const RESPONSE_EXPIRES: Duration = Duration::from_secs(120);

/// One subscribe rule: `subject` or `subject queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SubRule {
    pub(super) subject: Box<[u8]>,
    pub(super) queue: Option<Box<[u8]>>,
}

/// A user's permissions, validated and split into byte rules; shared by all of
/// that user's connections (`Arc`), rebuilt on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledPermissions {
    // Visible to `auth::link`, which builds a leaf link's rules from them.
    pub(super) pub_allow: Option<Vec<Box<[u8]>>>,
    pub(super) pub_deny: Vec<Box<[u8]>>,
    pub(super) sub_allow: Option<Vec<SubRule>>,
    pub(super) sub_deny: Vec<SubRule>,
    pub(super) allow_responses: bool,
}

fn pub_rules(list: &[String]) -> Result<Vec<Box<[u8]>>, AuthError> {
    list.iter()
        .map(|s| {
            validate_subscribe(s.as_bytes())
                .map_err(|_| AuthError::InvalidPermissionSubject(s.clone()))?;
            Ok(s.as_bytes().into())
        })
        .collect()
}

fn sub_rules(list: &[String]) -> Result<Vec<SubRule>, AuthError> {
    list.iter()
        .map(|s| {
            let bad = || AuthError::InvalidPermissionSubject(s.clone());
            let mut fields = s.split_whitespace();
            let subject = fields.next().ok_or_else(bad)?;
            let queue = fields.next();
            if fields.next().is_some() {
                return Err(bad());
            }
            validate_subscribe(subject.as_bytes()).map_err(|_| bad())?;
            if let Some(q) = queue {
                validate_queue(q.as_bytes()).map_err(|_| bad())?;
            }
            Ok(SubRule {
                subject: subject.as_bytes().into(),
                queue: queue.map(|q| q.as_bytes().into()),
            })
        })
        .collect()
}

impl CompiledPermissions {
    /// Validates every subject once so per-message checks cannot fail.
    /// `allow_responses` without a publish allow list turns publishing off except
    /// for responses, as nats-server does.
    pub fn compile(p: &Permissions) -> Result<Arc<Self>, AuthError> {
        let mut pub_allow = p.publish_allow.as_deref().map(pub_rules).transpose()?;
        if p.allow_responses && pub_allow.is_none() {
            pub_allow = Some(Vec::new());
        }
        Ok(Arc::new(CompiledPermissions {
            pub_allow,
            pub_deny: pub_rules(p.publish_deny.as_deref().unwrap_or_default())?,
            sub_allow: p.subscribe_allow.as_deref().map(sub_rules).transpose()?,
            sub_deny: sub_rules(p.subscribe_deny.as_deref().unwrap_or_default())?,
            allow_responses: p.allow_responses,
        }))
    }

    /// Whether replies to delivered requests may be published (`allow_responses`):
    /// the delivery path records reply subjects only for such users.
    pub fn allows_responses(&self) -> bool {
        self.allow_responses
    }

    /// Uncached publish decision: some allow entry matches and no deny entry does.
    pub fn publish_allowed(&self, subject: &[u8]) -> bool {
        let allowed = match &self.pub_allow {
            Some(list) => list.iter().any(|p| subject_matches(p, subject)),
            None => true,
        };
        allowed && !self.pub_deny.iter().any(|p| subject_matches(p, subject))
    }

    /// May interest in `subject` (wildcards allowed) be told to a leaf peer
    /// whose messages these publish rules admit? nats-server's `canSubscribe`
    /// on a leaf connection: a literal must match an allow entry, a wildcard
    /// only overlap one (its deliveries are filtered one by one); denied when
    /// a deny entry covers the whole subject.
    pub fn interest_allowed(&self, subject: &[u8]) -> bool {
        let wild = has_wildcard(subject);
        let allowed = match &self.pub_allow {
            None => true,
            Some(list) => list.iter().any(|p| {
                if wild {
                    intersects(subject, p)
                } else {
                    subject_matches(p, subject)
                }
            }),
        };
        allowed && !self.pub_deny.iter().any(|p| is_subset(subject, p))
    }

    /// True if a message on literal `subject` must not be delivered because a
    /// subscribe deny entry matches it (only consulted once a wildcard
    /// subscription overlapping a deny entry was allowed).
    pub fn delivery_denied(&self, subject: &[u8]) -> bool {
        self.sub_deny
            .iter()
            .any(|r| r.queue.is_none() && subject_matches(&r.subject, subject))
    }
}

/// Per-connection permission state: the user's compiled rules, a bounded cache
/// of publish decisions, and reply grants for `allow_responses`. Owned by the
/// connection (`&mut self`), so no locking on the publish path.
#[derive(Debug, Default)]
pub struct PermissionChecker {
    perms: Option<Arc<CompiledPermissions>>,
    /// Last subject decided and its decision (`None` = nothing yet); the buffer
    /// is reused so a publisher rotating subjects does not allocate per message.
    last: Vec<u8>,
    last_decision: Option<bool>,
    cache: HashMap<Box<[u8]>, bool>,
    replies: HashMap<Box<[u8]>, (Instant, u32)>,
    delivery_filter: bool,
}

impl PermissionChecker {
    /// A checker for a user's rules; `None` means everything is allowed and every
    /// check returns `true` at once.
    pub fn new(perms: Option<Arc<CompiledPermissions>>) -> Self {
        PermissionChecker {
            perms,
            ..Default::default()
        }
    }

    /// Convenience for callers holding raw options (tests, tools).
    pub fn from_permissions(p: Option<&Permissions>) -> Result<Self, AuthError> {
        Ok(Self::new(p.map(CompiledPermissions::compile).transpose()?))
    }

    /// True if this connection has any rules at all (cheap branch for callers).
    pub fn is_restricted(&self) -> bool {
        self.perms.is_some()
    }

    /// May this connection publish to literal `subject`? Decided once per subject
    /// and cached (last subject first, then a bounded map); a reply grant from
    /// [`note_reply_subject`](Self::note_reply_subject) allows one otherwise
    /// denied publish and is used up.
    pub fn can_publish(&mut self, subject: &[u8]) -> bool {
        let Some(perms) = &self.perms else {
            return true;
        };
        let allowed = match self.last_decision {
            Some(d) if self.last == subject => d,
            _ => {
                let d = match self.cache.get(subject) {
                    Some(&d) => d,
                    None => {
                        let d = perms.publish_allowed(subject);
                        if self.cache.len() >= PUB_CACHE_MAX {
                            prune(&mut self.cache, PUB_CACHE_MAX / 2);
                        }
                        self.cache.insert(subject.into(), d);
                        d
                    }
                };
                self.last.clear();
                self.last.extend_from_slice(subject);
                self.last_decision = Some(d);
                d
            }
        };
        allowed || (perms.allow_responses && self.use_reply_grant(subject))
    }

    fn use_reply_grant(&mut self, subject: &[u8]) -> bool {
        let Some((at, n)) = self.replies.get_mut(subject) else {
            return false;
        };
        let ok = at.elapsed() <= RESPONSE_EXPIRES;
        *n += 1;
        if !ok || *n >= RESPONSE_MAX_MSGS {
            self.replies.remove(subject);
        }
        ok
    }

    /// Records the reply subject of a message delivered to this connection, so
    /// that with `allow_responses` it may answer once. A no-op otherwise.
    pub fn note_reply_subject(&mut self, reply: &[u8]) {
        if !self.perms.as_ref().is_some_and(|p| p.allow_responses) || reply.is_empty() {
            return;
        }
        if self.replies.len() >= REPLY_GRANTS_MAX {
            self.replies
                .retain(|_, (at, _)| at.elapsed() <= RESPONSE_EXPIRES);
            if self.replies.len() >= REPLY_GRANTS_MAX {
                prune(&mut self.replies, REPLY_GRANTS_MAX / 2);
            }
        }
        self.replies.insert(reply.into(), (Instant::now(), 0));
    }

    /// May this connection subscribe to `subject` (wildcards allowed), optionally
    /// in queue group `queue`?
    ///
    /// - Allow list: the subject must be a *subset* of a plain allow entry
    ///   ([`is_subset`]). If allow entries with a queue (`"foo.> q"`) cover the
    ///   subject and the SUB has a queue, the queue must match one of them
    ///   (overriding plain entries); a SUB without a queue ignores queue entries.
    /// - Deny list: denied if the subject is a subset of a plain deny entry, or
    ///   (queue SUB) of a queue deny entry whose queue matches.
    /// - A wildcard SUB allowed but *intersecting* a plain deny entry (`foo.*` vs
    ///   deny `foo.secret`) stays allowed, and turns on the delivery filter
    ///   ([`can_receive`](Self::can_receive)), as nats-server does.
    pub fn can_subscribe(&mut self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let Some(perms) = &self.perms else {
            return true;
        };
        if let Some(allow) = &perms.sub_allow {
            let mut allowed = allow
                .iter()
                .any(|r| r.queue.is_none() && is_subset(subject, &r.subject));
            if let Some(q) = queue {
                let mut covering = allow
                    .iter()
                    .filter(|r| r.queue.is_some() && is_subset(subject, &r.subject))
                    .peekable();
                if covering.peek().is_some() {
                    allowed =
                        covering.any(|r| r.queue.as_deref().is_some_and(|p| queue_matches(q, p)));
                }
            }
            if !allowed {
                return false;
            }
        }
        let denied = perms.sub_deny.iter().any(|r| match (&r.queue, queue) {
            (None, _) => is_subset(subject, &r.subject),
            (Some(p), Some(q)) => is_subset(subject, &r.subject) && queue_matches(q, p),
            (Some(_), None) => false,
        });
        if denied {
            return false;
        }
        if has_wildcard(subject)
            && perms
                .sub_deny
                .iter()
                .any(|r| r.queue.is_none() && intersects(subject, &r.subject))
        {
            self.delivery_filter = true;
        }
        true
    }

    /// True once a wildcard subscription overlapping a deny entry was allowed:
    /// from then on the delivery path must ask [`can_receive`](Self::can_receive).
    pub fn needs_delivery_filter(&self) -> bool {
        self.delivery_filter
    }

    /// May a message on literal `subject` be delivered to this connection? Only
    /// denies when the delivery filter is on and a subscribe deny entry matches.
    pub fn can_receive(&self, subject: &[u8]) -> bool {
        match &self.perms {
            Some(p) if self.delivery_filter => !p.delivery_denied(subject),
            _ => true,
        }
    }
}

/// Drops arbitrary entries until `keep` remain (HashMap order is unspecified,
/// which is as good as random for a cache that any subject may refill).
fn prune<V>(map: &mut HashMap<Box<[u8]>, V>, keep: usize) {
    let mut n = 0;
    map.retain(|_, _| {
        n += 1;
        n <= keep
    });
}

#[cfg(test)]
#[path = "permissions_tests.rs"]
mod tests;
