//! Checking a client's CONNECT credentials against the configured mode: none,
//! token, single user/password, or a users list (passwords or nkeys), with
//! `no_auth_user`. Built once from `Options`, rebuilt on reload, shared (`Arc`)
//! by every connection; holds no per-connection state.

use std::collections::HashMap;
use std::sync::Arc;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::permissions::{CompiledPermissions, PermissionChecker};
use super::AuthError;
use crate::options::{Options, UserConfig, GLOBAL_ACCOUNT};
use crate::protocol::connect::ConnectInfo;

/// Random bytes in a nonce; 11 bytes encode to 15 base64url characters, like
/// nats-server's nonces.
const NONCE_RAW_LEN: usize = 11;

/// A client that passed authentication: its name for logs and monitoring (user
/// name, public nkey, or empty for token/anonymous; never a secret) and its
/// permissions (`None` = unrestricted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthedUser {
    pub name: String,
    pub permissions: Option<Arc<CompiledPermissions>>,
    /// The account the connection joins (`$G` outside any `accounts` block).
    pub account: Arc<str>,
}

impl AuthedUser {
    /// A fresh per-connection checker for this user's permissions.
    pub fn permission_checker(&self) -> PermissionChecker {
        PermissionChecker::new(self.permissions.clone())
    }
}

/// A configured secret: plain text (constant-time compare) or a bcrypt hash.
#[derive(Clone)]
enum Secret {
    Plain(Box<[u8]>),
    Bcrypt(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::Plain(_) => "Secret::Plain(..)",
            Secret::Bcrypt(_) => "Secret::Bcrypt(..)",
        })
    }
}

impl Secret {
    fn new(s: &str) -> Self {
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p)) {
            Secret::Bcrypt(s.to_string())
        } else {
            Secret::Plain(s.as_bytes().into())
        }
    }

    fn is_bcrypt(&self) -> bool {
        matches!(self, Secret::Bcrypt(_))
    }

    /// Compares the client's value; bcrypt errors (malformed hash) mean "no".
    fn verify(&self, given: Option<&str>) -> bool {
        let given = given.unwrap_or_default();
        match self {
            Secret::Plain(want) => constant_time_eq(want, given.as_bytes()),
            Secret::Bcrypt(hash) => bcrypt::verify(given, hash).unwrap_or(false),
        }
    }
}

/// Byte equality whose time depends only on the lengths, not on where the first
/// difference is (so a client cannot guess a token byte by byte).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[derive(Debug)]
struct PasswordUser {
    secret: Option<Secret>,
    user: Arc<AuthedUser>,
}

#[derive(Debug)]
struct NkeyUser {
    key: nkeys::KeyPair,
    user: Arc<AuthedUser>,
}

#[derive(Debug)]
enum Mode {
    Open,
    Token(Secret),
    Single {
        user: String,
        secret: Secret,
    },
    Users {
        by_name: HashMap<String, PasswordUser>,
        by_nkey: HashMap<String, NkeyUser>,
        no_auth: Option<Arc<AuthedUser>>,
    },
}

/// The server's authentication policy. Build with [`Authenticator::from_options`]
/// at start and on every reload; share it behind an `Arc`.
///
/// [`authenticate`](Self::authenticate) may run bcrypt (50–100 ms of CPU at cost
/// 10+): when [`is_expensive`](Self::is_expensive) is true the caller must run it
/// on a blocking thread (`tokio::task::spawn_blocking`), never on the reactor,
/// so failed logins cannot stall authenticated clients.
#[derive(Debug)]
pub struct Authenticator {
    mode: Mode,
    anonymous: Arc<AuthedUser>,
}

fn user_entry(
    u: &UserConfig,
    by_name: &mut HashMap<String, PasswordUser>,
    by_nkey: &mut HashMap<String, NkeyUser>,
) -> Result<(), AuthError> {
    let permissions = u
        .permissions
        .as_ref()
        .map(CompiledPermissions::compile)
        .transpose()?;
    if let Some(nkey) = &u.nkey {
        if u.password.is_some() {
            return Err(AuthError::NkeyWithPassword(nkey.clone()));
        }
        let key = match nkeys::KeyPair::from_public_key(nkey) {
            Ok(k) if nkey.starts_with('U') => k,
            _ => return Err(AuthError::InvalidConfiguredNkey(nkey.clone())),
        };
        let user = Arc::new(AuthedUser {
            name: nkey.clone(),
            permissions,
            account: account_of(u),
        });
        by_nkey.insert(nkey.clone(), NkeyUser { key, user });
        return Ok(());
    }
    let name = u.user.as_ref().ok_or(AuthError::UserWithoutName)?;
    let user = Arc::new(AuthedUser {
        name: name.clone(),
        permissions,
        account: account_of(u),
    });
    let secret = u.password.as_deref().map(Secret::new);
    by_name.insert(name.clone(), PasswordUser { secret, user });
    Ok(())
}

fn account_of(u: &UserConfig) -> Arc<str> {
    u.account.as_deref().unwrap_or(GLOBAL_ACCOUNT).into()
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

impl Authenticator {
    /// Builds the policy. Precedence when several are set (the config parser
    /// already refuses most mixes): users list, then token, then single user.
    /// Errors: invalid nkeys or permission subjects, `no_auth_user` naming nobody.
    pub fn from_options(opts: &Options) -> Result<Self, AuthError> {
        let mode = if !opts.users.is_empty() {
            let mut by_name = HashMap::new();
            let mut by_nkey = HashMap::new();
            for u in &opts.users {
                user_entry(u, &mut by_name, &mut by_nkey)?;
            }
            let no_auth = match &opts.no_auth_user {
                None => None,
                Some(n) => Some(
                    by_name
                        .get(n)
                        .map(|u| u.user.clone())
                        .or_else(|| by_nkey.get(n).map(|u| u.user.clone()))
                        .ok_or_else(|| AuthError::UnknownNoAuthUser(n.clone()))?,
                ),
            };
            Mode::Users {
                by_name,
                by_nkey,
                no_auth,
            }
        } else if let Some(n) = &opts.no_auth_user {
            return Err(AuthError::UnknownNoAuthUser(n.clone()));
        } else if let Some(t) = &opts.token {
            Mode::Token(Secret::new(t))
        } else if let Some(u) = &opts.username {
            Mode::Single {
                user: u.clone(),
                secret: Secret::new(opts.password.as_deref().unwrap_or_default()),
            }
        } else {
            Mode::Open
        };
        Ok(Authenticator {
            mode,
            anonymous: Arc::new(AuthedUser {
                name: String::new(),
                permissions: None,
                account: GLOBAL_ACCOUNT.into(),
            }),
        })
    }

    /// `auth_required` for INFO: any mode but open. With only a `no_auth_user`
    /// the server still requires auth (clients without credentials get that user).
    pub fn auth_required(&self) -> bool {
        !matches!(self.mode, Mode::Open)
    }

    /// True when nkey users exist: INFO must carry a fresh [`new_nonce`](Self::new_nonce)
    /// per connection, and the same bytes must be passed to `authenticate`.
    pub fn needs_nonce(&self) -> bool {
        matches!(&self.mode, Mode::Users { by_nkey, .. } if !by_nkey.is_empty())
    }

    /// True when some configured secret is a bcrypt hash, so `authenticate` can
    /// take tens of milliseconds: run it with `spawn_blocking`. Plain secrets and
    /// nkey signatures (tens of microseconds) are fine inline.
    pub fn is_expensive(&self) -> bool {
        match &self.mode {
            Mode::Open => false,
            Mode::Token(s) | Mode::Single { secret: s, .. } => s.is_bcrypt(),
            Mode::Users { by_name, .. } => by_name
                .values()
                .any(|u| u.secret.as_ref().is_some_and(Secret::is_bcrypt)),
        }
    }

    /// True when a user password is stored in clear (tokens do not count), for
    /// nats-server's start-up warning "Plaintext passwords detected, use nkeys
    /// or bcrypt".
    pub fn has_plaintext_passwords(&self) -> bool {
        match &self.mode {
            Mode::Open | Mode::Token(_) => false,
            Mode::Single { secret, .. } => !secret.is_bcrypt(),
            Mode::Users { by_name, .. } => by_name
                .values()
                .any(|u| u.secret.as_ref().is_some_and(|s| !s.is_bcrypt())),
        }
    }

    /// A random nonce for INFO: 11 bytes of OS randomness as unpadded base64url
    /// (15 characters), as nats-server. Fails closed: without the OS source
    /// there is no nonce, and the caller refuses the connection.
    pub fn new_nonce() -> Result<String, crate::rand::RandError> {
        let mut raw = [0u8; NONCE_RAW_LEN];
        crate::rand::os_fill(&mut raw)?;
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Checks a CONNECT. `nonce` is the exact nonce text sent in this
    /// connection's INFO (needed only for nkey sign-in). Returns the user to
    /// attach to the connection; any error means `Authorization Violation`.
    /// May be slow, see [`is_expensive`](Self::is_expensive).
    pub fn authenticate(
        &self,
        c: &ConnectInfo,
        nonce: Option<&[u8]>,
    ) -> Result<Arc<AuthedUser>, AuthError> {
        match &self.mode {
            Mode::Open => Ok(self.anonymous.clone()),
            Mode::Token(secret) => match non_empty(&c.auth_token) {
                Some(t) if secret.verify(Some(t)) => Ok(self.anonymous.clone()),
                _ => Err(AuthError::BadToken),
            },
            Mode::Single { user, secret } => {
                let given = non_empty(&c.user).ok_or(AuthError::MissingCredentials)?;
                if given != user {
                    return Err(AuthError::UnknownUser);
                }
                if !secret.verify(c.pass.as_deref()) {
                    return Err(AuthError::BadPassword);
                }
                Ok(Arc::new(AuthedUser {
                    name: user.clone(),
                    permissions: None,
                    account: GLOBAL_ACCOUNT.into(),
                }))
            }
            Mode::Users {
                by_name,
                by_nkey,
                no_auth,
            } => {
                if let Some(nkey) = non_empty(&c.nkey) {
                    let u = by_nkey
                        .get(nkey)
                        .ok_or_else(|| AuthError::UnknownNkey(nkey.to_string()))?;
                    let sig = non_empty(&c.sig).ok_or(AuthError::MissingSignature)?;
                    let nonce = nonce.ok_or(AuthError::MissingSignature)?;
                    let sig = decode_sig(sig).ok_or(AuthError::BadSignature)?;
                    u.key
                        .verify(nonce, &sig)
                        .map_err(|_| AuthError::BadSignature)?;
                    return Ok(u.user.clone());
                }
                let Some(name) = non_empty(&c.user) else {
                    let anonymous =
                        non_empty(&c.pass).is_none() && non_empty(&c.auth_token).is_none();
                    return match no_auth {
                        Some(u) if anonymous => Ok(u.clone()),
                        _ => Err(AuthError::MissingCredentials),
                    };
                };
                let u = by_name.get(name).ok_or(AuthError::UnknownUser)?;
                match &u.secret {
                    Some(s) if !s.verify(c.pass.as_deref()) => Err(AuthError::BadPassword),
                    // No password configured: only an empty one matches, as
                    // nats-server compares against the empty string.
                    None if non_empty(&c.pass).is_some() => Err(AuthError::BadPassword),
                    _ => Ok(u.user.clone()),
                }
            }
        }
    }
}

/// Decodes a CONNECT `sig`: base64url raw or padded (what nats clients send),
/// falling back to standard base64 like nats-server.
fn decode_sig(sig: &str) -> Option<Vec<u8>> {
    let cfg = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&alphabet::URL_SAFE, cfg)
        .decode(sig)
        .or_else(|_| GeneralPurpose::new(&alphabet::STANDARD, cfg).decode(sig))
        .ok()
}

#[cfg(test)]
#[path = "authenticator_tests.rs"]
mod tests;
