//! One connection's security state: its nonce, who it authenticated as, its
//! permission checker, and the hand-off of reply grants from publishers. A
//! leaf link uses it too, for what its peer may send (see `leaf::link`).
//!
//! Owns the per-connection side of `auth` (the rules live there). It must not
//! decide protocol order: the reader calls it when CONNECT, PUB and SUB arrive.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::auth::{AuthError, AuthedUser, Authenticator, CompiledPermissions, PermissionChecker};
use crate::conn::ConnShared;
use crate::protocol::ConnectInfo;

/// The reader's security state for its connection.
pub struct ConnAuth {
    pub nonce: Option<String>,
    pub user: Option<Arc<AuthedUser>>,
    checker: PermissionChecker,
}

impl ConnAuth {
    pub fn new(nonce: Option<String>) -> Self {
        ConnAuth {
            nonce,
            user: None,
            checker: PermissionChecker::new(None),
        }
    }

    /// Checks CONNECT credentials; runs bcrypt off the reactor when configured.
    pub async fn authenticate(
        auth: Arc<Authenticator>,
        connect: ConnectInfo,
        nonce: Option<String>,
    ) -> Result<Arc<AuthedUser>, AuthError> {
        if auth.is_expensive() {
            tokio::task::spawn_blocking(move || {
                auth.authenticate(&connect, nonce.as_deref().map(str::as_bytes))
            })
            .await
            .unwrap_or(Err(AuthError::MissingCredentials))
        } else {
            auth.authenticate(&connect, nonce.as_deref().map(str::as_bytes))
        }
    }

    /// Attaches the authenticated user: its permissions apply from now on.
    pub fn set_user(&mut self, me: &ConnShared, user: Arc<AuthedUser>) {
        self.restrict(me, user.permissions.clone());
        me.meta.lock().user = user.name.clone();
        self.user = Some(user);
    }

    /// What this connection may publish from now on (`None`: anything),
    /// without a user: a leaf link's inbound rules (`auth::LinkPerms`).
    pub fn restrict(&mut self, me: &ConnShared, perms: Option<Arc<CompiledPermissions>>) {
        let responses = perms.as_ref().is_some_and(|p| p.allows_responses());
        me.allow_responses.store(responses, Ordering::Relaxed);
        self.checker = PermissionChecker::new(perms);
    }

    /// May this connection publish to `subject`? Reply grants recorded by
    /// publishers since the last check are taken in first when needed.
    pub fn can_publish(&mut self, me: &ConnShared, subject: &[u8]) -> bool {
        if !self.checker.is_restricted() || self.checker.can_publish(subject) {
            return true;
        }
        if !me.allow_responses.load(Ordering::Relaxed) {
            return false;
        }
        let grants: Vec<Bytes> = {
            let mut inbox = me.perms.reply_inbox.lock();
            inbox.drain(..).collect()
        };
        for reply in grants {
            self.checker.note_reply_subject(&reply);
        }
        self.checker.can_publish(subject)
    }

    /// May this connection subscribe? Turns on the shared delivery filter when
    /// the allowed wildcard overlaps a deny entry.
    pub fn can_subscribe(&mut self, me: &ConnShared, subject: &[u8], queue: Option<&[u8]>) -> bool {
        if !self.checker.can_subscribe(subject, queue) {
            return false;
        }
        if self.checker.needs_delivery_filter() && !me.delivery_filter.load(Ordering::Relaxed) {
            if let Some(user) = &self.user {
                *me.perms.perms.lock() = user.permissions.clone();
            }
            me.delivery_filter.store(true, Ordering::Relaxed);
        }
        true
    }
}
