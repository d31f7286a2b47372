//! Accepting: this server as the hub. A leaf that dialled our leaf port gets
//! our INFO (with a fresh nonce, as nats-server always sends one to leaves;
//! with `tls_required` under `leafnodes { tls }`, followed by the TLS
//! handshake — or the handshake first with `handshake_first`), must send
//! CONNECT with the credentials `leafnodes { authorization }` asks for (or,
//! without that block, a client user's, as nats-server) within the timeout,
//! gets the INFO that answers CONNECT (with that user's permissions as
//! `import`/`export`), and then runs as a link bound to the account it
//! authenticated into, under those permissions (`auth::LinkPerms::hub`).
//!
//! Owns the hub side of the handshake, its order and its authorization check.
//! Must not listen (the server's lifecycle does) nor touch interest (the link
//! does).

use std::net::SocketAddr;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::handshake::{info_line, read_op, InfoFlags, PeerConnect};
use super::link::{self, LinkRules};
use super::upgrade::hub_acceptor;
use super::LeafError;
use crate::account::Account;
use crate::auth::{Authenticator, CompiledPermissions, LinkPerms};
use crate::conn::outbound::run_writer;
use crate::conn::{CloseReason, ConnShared, Kind};
use crate::options::{LeafOptions, LeafTls, GLOBAL_ACCOUNT};
use crate::protocol::connect::ConnectInfo;
use crate::protocol::errors::text;
use crate::protocol::{LeafOp, LeafParser};
use crate::state::{LeafLink, ServerState};

/// Runs one accepted leaf connection to its end.
pub async fn serve_accepted(srv: Arc<ServerState>, stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let lo = srv.opts().leafnodes.clone().unwrap_or_default();
    let conn = Arc::new(ConnShared::new(Kind::Leaf, srv.next_cid(), addr));
    let nonce = match Authenticator::new_nonce() {
        Ok(n) => Some(n),
        Err(e) if lo.nkey.is_some() || srv.authenticator().needs_nonce() => {
            // Fail closed: without a nonce an nkey sign-in is replayable.
            tracing::error!("{} leafnode refused: {e}", conn.log());
            return;
        }
        Err(_) => None,
    };
    let flags = InfoFlags {
        auth_required: leaf_auth_configured(&lo) || srv.authenticator().auth_required(),
        connect_info: false,
        nonce: nonce.as_deref(),
        ..InfoFlags::default()
    };
    let info = info_line(&srv, conn.cid, flags);
    tracing::info!("{} Leafnode connection created", conn.log());
    match lo.tls.clone() {
        None => {
            let (rd, wr) = stream.into_split();
            let wr = conn.out.plain(wr);
            conn.out.send_now(&info);
            serve(srv, conn, lo, rd, wr, nonce).await;
        }
        Some(tls) => match secure(&tls, stream, &info).await {
            Ok(secured) => {
                let (rd, wr) = tokio::io::split(secured);
                if tls.handshake_first {
                    conn.out.send_now(&info);
                }
                serve(srv, conn, lo, rd, wr, nonce).await;
            }
            Err(e) => {
                tracing::error!("{} TLS leafnode handshake error: {e}", conn.log());
                tracing::info!(
                    "{} Leafnode connection closed: {}",
                    conn.log(),
                    CloseReason::TlsHandshakeError.as_str()
                );
            }
        },
    }
}

/// `leafnodes { tls }`: the INFO in plain text (so the leaf learns TLS is
/// required), then the server handshake; or the handshake alone when
/// `handshake_first` (the INFO then goes over TLS).
async fn secure(
    tls: &LeafTls,
    mut stream: TcpStream,
    info: &[u8],
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, LeafError> {
    let acceptor = hub_acceptor(&tls.config)?;
    let timeout = crate::tls::handshake_timeout(&tls.config);
    if !tls.handshake_first {
        tokio::time::timeout(timeout, stream.write_all(info))
            .await
            .map_err(|_| LeafError::Timeout("the INFO to be written"))??;
    }
    Ok(crate::tls::accept(&acceptor, stream, timeout).await?)
}

async fn serve<R, W>(
    srv: Arc<ServerState>,
    conn: Arc<ConnShared>,
    lo: LeafOptions,
    mut rd: R,
    wr: W,
    nonce: Option<String>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let writer = {
        let (conn, deadline) = (conn.clone(), srv.opts().write_deadline);
        tokio::spawn(async move { run_writer(&conn.out, wr, deadline).await })
    };
    match handshake(&srv, &conn, &lo, &mut rd, nonce).await {
        Ok((rec, buf, perms, signed_in)) => {
            let recheck = tokio::spawn(recheck_on_reload(srv.clone(), conn.clone(), signed_in));
            link::run(srv.clone(), rec, rd, buf, LinkRules::Hub(perms)).await;
            recheck.abort();
        }
        Err((reason, e)) => {
            tracing::error!("{} {e}", conn.log());
            let err =
                (reason == CloseReason::AuthenticationViolation).then_some(text::AUTH_VIOLATION);
            conn.out.close_with(reason, err);
            tracing::info!(
                "{} Leafnode connection closed: {}",
                conn.log(),
                reason.as_str()
            );
        }
    }
    let _ = writer.await;
}

/// What an accepted leaf signed in with, kept to check it again on reload.
struct SignedIn {
    connect: PeerConnect,
    json: Vec<u8>,
    nonce: Option<String>,
    /// The permissions it runs under (compared by value after a reload).
    perms: Option<Arc<CompiledPermissions>>,
}

/// On every reload, the leaf's credentials are checked again against the
/// new configuration (as nats-server re-authorizes leaf connections): a
/// removed user or a changed password closes the link with `Authorization
/// Violation`; a move to another account, or changed permissions, closes it
/// as `Client Closed` (nats-server's reason for a moved account), and the
/// leaf reconnects under the new rules. Ends with the link (aborted by
/// `serve`).
async fn recheck_on_reload(srv: Arc<ServerState>, conn: Arc<ConnShared>, s: SignedIn) {
    let mut reloads = srv.subscribe_reload();
    while reloads.changed().await.is_ok() {
        let lo = srv.opts().leafnodes.clone().unwrap_or_default();
        let still = authorize(&srv, &lo, &s.connect, &s.json, s.nonce.clone()).await;
        let Some((acc, perms)) = still else {
            tracing::info!(
                "{} leafnode credentials no longer valid after reload",
                conn.log()
            );
            conn.out.close_with(
                CloseReason::AuthenticationViolation,
                Some(text::AUTH_VIOLATION),
            );
            return;
        };
        if !Arc::ptr_eq(&acc, srv.accounts.of(&conn)) || perms != s.perms {
            tracing::info!(
                "{} leafnode account or permissions changed by reload",
                conn.log()
            );
            conn.out.close_with(CloseReason::ClientClosed, None);
            return;
        }
    }
}

async fn handshake<R: AsyncRead + Unpin>(
    srv: &Arc<ServerState>,
    conn: &Arc<ConnShared>,
    lo: &LeafOptions,
    rd: &mut R,
    nonce: Option<String>,
) -> Result<(Arc<LeafLink>, BytesMut, LinkPerms, SignedIn), (CloseReason, LeafError)> {
    let opts = srv.opts();
    let mut parser = LeafParser::new(opts.max_control_line, opts.max_payload);
    drop(opts);
    let mut buf = BytesMut::with_capacity(4096);
    let op = read_op(rd, &mut buf, &mut parser, lo.auth_timeout, "CONNECT")
        .await
        .map_err(|e| match e {
            LeafError::Timeout(_) => (CloseReason::AuthenticationTimeout, e),
            _ => (CloseReason::ProtocolViolation, e),
        })?;
    let LeafOp::Connect { frame, json } = op else {
        return Err((
            CloseReason::ProtocolViolation,
            LeafError::Unexpected {
                expected: "CONNECT",
            },
        ));
    };
    let json = &frame[json];
    let c: PeerConnect = serde_json::from_slice(json)
        .map_err(|_| (CloseReason::ParseError, LeafError::Json("CONNECT")))?;
    let Some((acc, user_perms)) = authorize(srv, lo, &c, json, nonce.clone()).await else {
        let who = match (&c.user, &c.nkey) {
            (Some(u), _) => format!("User \"{u}\""),
            (None, Some(k)) => format!("Nkey \"{k}\""),
            (None, None) => "User \"\"".to_string(),
        };
        return Err((
            CloseReason::AuthenticationViolation,
            LeafError::Refused(format!("authentication error - {who}")),
        ));
    };
    // Bound before the link starts: it keeps this account (`$G` by default).
    let account = acc.name.clone();
    let _ = conn.account.set(acc);
    conn.headers
        .store(c.headers, std::sync::atomic::Ordering::Relaxed);
    conn.meta.lock().name = c.name.clone();
    let deny_pub = c.deny_pub.as_deref().unwrap_or_default();
    let perms = LinkPerms::hub(user_perms.as_ref(), deny_pub);
    let (import, export) = user_perms
        .as_deref()
        .map(LinkPerms::hub_info)
        .unwrap_or_default();
    let flags = InfoFlags {
        connect_info: true,
        account: Some(&account),
        import: import.as_ref(),
        export: export.as_ref(),
        ..InfoFlags::default()
    };
    conn.out.send_now(&info_line(srv, conn.cid, flags));
    let name = if c.name.is_empty() {
        c.server_id.clone()
    } else {
        c.name.clone()
    };
    let signed_in = SignedIn {
        json: json.to_vec(),
        nonce,
        connect: c.clone(),
        perms: user_perms.clone(),
    };
    Ok((
        Arc::new(LeafLink::new(conn.clone(), false, name, c.server_id)),
        buf,
        perms,
        signed_in,
    ))
}

/// Any of the leaf authorization forms is configured.
fn leaf_auth_configured(lo: &LeafOptions) -> bool {
    lo.token.is_some() || lo.username.is_some() || lo.nkey.is_some() || !lo.users.is_empty()
}

/// The account the leaf may bind to and the permissions it gets, or `None`
/// when refused. With `leafnodes { authorization }` that block decides (no
/// permissions: nats-server's leaf users have none); without it the
/// server's client authorization does, and the leaf joins its user's
/// account under its user's permissions, as nats-server
/// (`isLeafNodeAuthorized` → `isClientAuthorized`).
async fn authorize(
    srv: &Arc<ServerState>,
    lo: &LeafOptions,
    c: &PeerConnect,
    json: &[u8],
    nonce: Option<String>,
) -> Option<(Arc<Account>, Option<Arc<CompiledPermissions>>)> {
    let mut perms = None;
    let account: Arc<str> = if leaf_auth_configured(lo) {
        // bcrypt takes tens of milliseconds: off the runtime's workers.
        let (lo, c) = (lo.clone(), c.clone());
        tokio::task::spawn_blocking(move || authorized(&lo, &c, nonce.as_deref()))
            .await
            .ok()??
    } else {
        let auth = srv.authenticator();
        if !auth.auth_required() {
            return Some((srv.accounts.global().clone(), None));
        }
        let info = ConnectInfo::parse(json)?;
        let check = move || auth.authenticate(&info, nonce.as_deref().map(str::as_bytes));
        let user = tokio::task::spawn_blocking(check).await.ok()?.ok()?;
        perms = user.permissions.clone();
        user.account.clone()
    };
    let acc = if &*account == GLOBAL_ACCOUNT {
        srv.accounts.global().clone()
    } else {
        srv.accounts.get(&account)?
    };
    Some((acc, perms))
}

/// `leafnodes { authorization }`: a token, a user/password, an nkey (the
/// leaf signs our nonce), a users list (passwords plain or bcrypt), or nothing.
fn authorized(lo: &LeafOptions, c: &PeerConnect, nonce: Option<&str>) -> Option<Arc<str>> {
    let block: Arc<str> = lo.account.as_deref().unwrap_or(GLOBAL_ACCOUNT).into();
    let admit = |ok: bool| ok.then(|| block.clone());
    if let Some(want) = &lo.token {
        return admit(secret_matches(want, c.auth_token.as_deref()));
    }
    let user = c.user.as_deref().unwrap_or_default();
    if let Some(want) = &lo.username {
        if want == user {
            return admit(secret_matches(
                lo.password.as_deref().unwrap_or(""),
                c.pass.as_deref(),
            ));
        }
    }
    if let Some(key) = &lo.nkey {
        if c.nkey.as_deref() == Some(key.as_str()) {
            return admit(nkey_signed(key, c.sig.as_deref(), nonce));
        }
    }
    if let Some(u) = lo.users.iter().find(|u| u.user == user) {
        let account = u.account.as_deref().map_or(block.clone(), Arc::from);
        return secret_matches(&u.password, c.pass.as_deref()).then_some(account);
    }
    admit(!leaf_auth_configured(lo))
}

/// `sig` is `key`'s signature of the nonce we sent (unpadded base64url as
/// nats-server's leaves send it; padded and standard base64 are taken too).
fn nkey_signed(key: &str, sig: Option<&str>, nonce: Option<&str>) -> bool {
    let (Some(sig), Some(nonce)) = (sig, nonce) else {
        return false;
    };
    let Some(raw) = [URL_SAFE_NO_PAD, URL_SAFE, STANDARD]
        .iter()
        .find_map(|e| e.decode(sig).ok())
    else {
        return false;
    };
    nkeys::KeyPair::from_public_key(key)
        .and_then(|k| k.verify(nonce.as_bytes(), &raw))
        .is_ok()
}

fn secret_matches(want: &str, given: Option<&str>) -> bool {
    let given = given.unwrap_or_default();
    if ["$2a$", "$2b$", "$2y$"].iter().any(|p| want.starts_with(p)) {
        bcrypt::verify(given, want).unwrap_or(false)
    } else {
        crate::auth::constant_time_eq(want.as_bytes(), given.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::LeafUser;

    fn check(
        lo: &LeafOptions,
        user: Option<&str>,
        pass: Option<&str>,
        token: Option<&str>,
    ) -> bool {
        let c = PeerConnect {
            user: user.map(String::from),
            pass: pass.map(String::from),
            auth_token: token.map(String::from),
            ..PeerConnect::default()
        };
        authorized(lo, &c, None).is_some()
    }

    #[test]
    fn leaf_nkey_signs_our_nonce() {
        let kp = nkeys::KeyPair::new_user();
        let lo = LeafOptions {
            nkey: Some(kp.public_key()),
            ..LeafOptions::default()
        };
        let signed = |nonce: &str, key: &nkeys::KeyPair| PeerConnect {
            nkey: Some(kp.public_key()),
            sig: Some(URL_SAFE_NO_PAD.encode(key.sign(nonce.as_bytes()).expect("sign"))),
            ..PeerConnect::default()
        };
        assert!(authorized(&lo, &signed("n0nce", &kp), Some("n0nce")).is_some());
        assert!(authorized(&lo, &signed("other", &kp), Some("n0nce")).is_none());
        let stranger = nkeys::KeyPair::new_user();
        assert!(authorized(&lo, &signed("n0nce", &stranger), Some("n0nce")).is_none());
        assert!(authorized(&lo, &signed("n0nce", &kp), None).is_none());
        let unsigned = PeerConnect {
            nkey: Some(kp.public_key()),
            ..PeerConnect::default()
        };
        assert!(authorized(&lo, &unsigned, Some("n0nce")).is_none());
        assert!(authorized(&lo, &PeerConnect::default(), Some("n0nce")).is_none());
    }

    #[test]
    fn leaf_authorization_forms() {
        let open = LeafOptions::default();
        assert!(check(&open, None, None, None));
        let token = LeafOptions {
            token: Some("t".into()),
            ..LeafOptions::default()
        };
        assert!(check(&token, None, None, Some("t")));
        assert!(!check(&token, None, None, Some("x")));
        let users = LeafOptions {
            username: Some("a".into()),
            password: Some("b".into()),
            users: vec![LeafUser {
                user: "c".into(),
                password: bcrypt::hash("d", 4).expect("hash"),
                account: Some("A".into()),
            }],
            account: Some("B".into()),
            ..LeafOptions::default()
        };
        let bound = |u, p| {
            let c = PeerConnect {
                user: Some(String::from(u)),
                pass: Some(String::from(p)),
                ..PeerConnect::default()
            };
            authorized(&users, &c, None).map(|a| a.to_string())
        };
        // A users entry names its account; the single user gets the block's.
        assert_eq!(bound("c", "d").as_deref(), Some("A"));
        assert_eq!(bound("a", "b").as_deref(), Some("B"));
        assert!(check(&users, Some("a"), Some("b"), None));
        assert!(check(&users, Some("c"), Some("d"), None));
        assert!(!check(&users, Some("c"), Some("b"), None));
        assert!(!check(&users, Some("z"), Some("d"), None));
        assert!(!check(&users, None, None, None));
    }
}
