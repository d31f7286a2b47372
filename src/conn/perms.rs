//! What publishers on other connections consult of a subscriber's
//! permissions: the deny list for deliveries (a leaf link: the rules of what
//! may go out on it) and the reply subjects an `allow_responses` subscriber
//! may answer.
//!
//! Owns only this shared hand-off; the rules live in `auth` and the
//! connection's own checker in `client::auth`. Must not decide anything on
//! the connection's behalf.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::auth::CompiledPermissions;
use crate::sync::Mutex;

/// Reply subjects remembered for an `allow_responses` client between two
/// publishes of its own; older ones are dropped first.
const REPLY_INBOX_MAX: usize = 1024;

/// What publishers on other connections need to know of a subscriber's
/// permissions: set once it authenticated, read on delivery.
#[derive(Default)]
pub struct SharedPerms {
    /// Set when a wildcard SUB overlapping a deny entry was allowed: deliveries
    /// must then be checked against the deny list.
    pub perms: Mutex<Option<Arc<CompiledPermissions>>>,
    /// A leaf link's outbound rules (`auth::LinkPerms`): every message to it
    /// must be allowed by them. Set once, before the link has any interest.
    pub outbound: OnceLock<Arc<CompiledPermissions>>,
    /// Reply subjects of requests delivered to an `allow_responses` client.
    pub reply_inbox: Mutex<VecDeque<Bytes>>,
}

impl SharedPerms {
    /// May a message on `subject` be delivered (delivery filter on)?
    pub fn can_receive(&self, subject: &[u8]) -> bool {
        if let Some(rules) = self.outbound.get() {
            return rules.publish_allowed(subject);
        }
        let perms = self.perms.lock();
        !perms.as_ref().is_some_and(|p| p.delivery_denied(subject))
    }

    /// Records a delivered request's reply subject for an `allow_responses` client.
    pub fn note_reply(&self, reply: &[u8]) {
        let mut inbox = self.reply_inbox.lock();
        if inbox.len() >= REPLY_INBOX_MAX {
            inbox.pop_front();
        }
        inbox.push_back(Bytes::copy_from_slice(reply));
    }
}
