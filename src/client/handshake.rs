//! The authentication handshake of a client connection and its re-check on
//! reload: CONNECT's credentials are checked (bcrypt off the reactor), and a
//! reload re-checks an authenticated connection so removed users lose access.
//!
//! Owns the order "CONNECT, credentials, then the ops behind it" and the
//! wording of authentication log lines. The rules live in `auth`; it must not
//! apply any other op.

use super::auth::ConnAuth;
use super::read::{Close, Reader};
use crate::conn::CloseReason;
use crate::protocol::errors::text;
use crate::protocol::ConnectInfo;

use bytes::BytesMut;

impl Reader {
    /// Processes the buffer, pausing for credential checks when a CONNECT
    /// needs them, then goes on with the ops that followed it.
    pub(super) async fn process_all(&mut self, buf: &mut BytesMut) -> Result<(), Close> {
        loop {
            self.process(buf)?;
            let Some(info) = self.pending_auth.take() else {
                return Ok(());
            };
            let auth = self.srv.authenticator();
            // Boxed: this future (bcrypt off the reactor) would otherwise
            // be part of every connection's reader task, idle or not.
            let check = Box::pin(ConnAuth::authenticate(
                auth,
                ConnectInfo::clone(&info),
                self.auth.nonce.clone(),
            ));
            match check.await {
                Ok(user) => {
                    let Some(acc) = self.srv.accounts.get(&user.account) else {
                        tracing::error!(
                            "{} authentication error - account {:?} not found",
                            self.me.log(),
                            user.account
                        );
                        return Err(Close(
                            CloseReason::AuthenticationViolation,
                            Some(text::AUTH_VIOLATION),
                        ));
                    };
                    let _ = self.me.account.set(acc.clone());
                    self.acc = acc;
                    self.auth.set_user(&self.me, user);
                    self.authed = true;
                    self.finish_connect(*info);
                }
                Err(e) => {
                    // nats-server's line names who tried, never why; the
                    // reason stays at debug level.
                    tracing::debug!("{} authentication error: {e}", self.me.log());
                    tracing::error!(
                        "{} authentication error - {}",
                        self.me.log(),
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
    pub(super) async fn on_reload(&mut self) -> Result<(), Close> {
        self.refresh_limits();
        let auth = self.srv.authenticator();
        if !self.authed || !auth.auth_required() {
            return Ok(());
        }
        let check = Box::pin(ConnAuth::authenticate(
            auth,
            self.connect.clone(),
            self.auth.nonce.clone(),
        ));
        match check.await {
            // A connection cannot change account: moved users reconnect.
            Ok(user) if *user.account == *self.acc.name => {
                self.auth.set_user(&self.me, user);
                Ok(())
            }
            // As nats-server: a client whose user moved to another account
            // is closed (`Client Closed`, no -ERR) and reconnects into it.
            Ok(_) => {
                tracing::info!("{} account changed by reload", self.me.log());
                Err(Close(CloseReason::ClientClosed, None))
            }
            Err(_) => {
                tracing::info!("{} credentials no longer valid after reload", self.me.log());
                Err(Close(
                    CloseReason::AuthenticationViolation,
                    Some(text::AUTH_VIOLATION),
                ))
            }
        }
    }
}

/// Who a connection claims to be, in nats-server's log wording: `Nkey "…"` or
/// `User "…"` (empty without a name). Never a password or token.
pub(super) fn auth_user_label(info: &ConnectInfo) -> String {
    match (&info.nkey, &info.user) {
        (Some(nkey), _) => format!("Nkey {nkey:?}"),
        (None, user) => format!("User {:?}", user.as_deref().unwrap_or_default()),
    }
}
