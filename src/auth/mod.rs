//! Authentication (who is this client?) and authorization (what may it publish
//! and subscribe to?).
//!
//! Owns: turning the `authorization` part of [`Options`](crate::options::Options)
//! into an [`Authenticator`] (token, single user/password, a users list with plain
//! or bcrypt passwords or nkeys, `no_auth_user`), checking a client's CONNECT
//! against it, the nkey nonce, and the per-connection [`PermissionChecker`] with
//! its publish-decision cache, plus the exact `-ERR` texts of permission
//! violations.
//!
//! Must not touch: sockets, timers, INFO building or the connection state machine
//! (that is `client` and `server`, which call into this module), and must never
//! log or put into an error a secret (password, token, signature).

// Peer and file bytes reach this code: no unchecked indexing or unwrap (tests may).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

mod authenticator;
mod link;
mod permissions;
mod rules;

pub(crate) use authenticator::constant_time_eq;
pub use authenticator::{AuthedUser, Authenticator};
pub use link::{LinkPerms, SubjectLists};
pub use permissions::{CompiledPermissions, PermissionChecker};
pub use rules::{intersects, is_subset, queue_matches};

/// Everything that can go wrong building an [`Authenticator`] (a config error:
/// the server refuses to start or to reload) or authenticating a client (the
/// client gets `-ERR 'Authorization Violation'` and is closed). Messages name the
/// user or the public nkey at most, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A `users` entry has neither `user` nor `nkey`.
    #[error("a users entry needs \"user\" or \"nkey\"")]
    UserWithoutName,
    /// A configured nkey is not a valid public user key (`U…`).
    #[error("invalid nkey {0:?}: not a public user key")]
    InvalidConfiguredNkey(String),
    /// An nkey user also has a password; nkey users sign the nonce instead.
    #[error("nkey user {0:?} must not have a password")]
    NkeyWithPassword(String),
    /// `no_auth_user` names nobody in the users list.
    #[error("no_auth_user {0:?} not present as user or nkey in authorization block")]
    UnknownNoAuthUser(String),
    /// A permission entry is not a valid subject (or `subject queue`).
    #[error("invalid subject {0:?} in permissions")]
    InvalidPermissionSubject(String),
    /// The client sent no credentials and there is no `no_auth_user`.
    #[error("no credentials provided")]
    MissingCredentials,
    /// The user name is not configured.
    #[error("unknown user")]
    UnknownUser,
    /// Wrong password for a known user (or the single user).
    #[error("password mismatch")]
    BadPassword,
    /// Wrong or missing token.
    #[error("token mismatch")]
    BadToken,
    /// The CONNECT nkey is not a configured user.
    #[error("unknown nkey {0:?}")]
    UnknownNkey(String),
    /// An nkey CONNECT without a signature, or the server sent no nonce.
    #[error("nkey sign-in without signature or nonce")]
    MissingSignature,
    /// The signature is not base64 or does not verify against the nonce.
    #[error("nkey signature verification failed")]
    BadSignature,
}

/// `-ERR` text for a denied publish; the connection stays open.
pub fn publish_violation(subject: &[u8]) -> String {
    format!(
        "Permissions Violation for Publish to \"{}\"",
        String::from_utf8_lossy(subject)
    )
}

/// `-ERR` text for a denied subscription, with the ` using queue "<queue>"`
/// suffix for queue subscriptions, as nats-server; the connection stays open.
pub fn subscribe_violation(subject: &[u8], queue: Option<&[u8]>) -> String {
    let subject = String::from_utf8_lossy(subject);
    match queue {
        Some(q) => format!(
            "Permissions Violation for Subscription to \"{subject}\" using queue \"{}\"",
            String::from_utf8_lossy(q)
        ),
        None => format!("Permissions Violation for Subscription to \"{subject}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violation_texts_match_reference() {
        assert_eq!(
            publish_violation(b"foo.bar"),
            r#"Permissions Violation for Publish to "foo.bar""#
        );
        assert_eq!(
            subscribe_violation(b"foo.*", None),
            r#"Permissions Violation for Subscription to "foo.*""#
        );
        assert_eq!(
            subscribe_violation(b"foo", Some(b"q1")),
            r#"Permissions Violation for Subscription to "foo" using queue "q1""#
        );
    }

    #[test]
    fn errors_never_carry_secrets() {
        // Variants about secrets have no payload at all.
        for e in [
            AuthError::BadPassword,
            AuthError::BadToken,
            AuthError::BadSignature,
        ] {
            assert!(!e.to_string().contains('"'), "{e}");
        }
    }
}
