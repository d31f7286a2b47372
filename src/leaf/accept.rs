//! Accepting: this server as the hub. A leaf that dialled our leaf port gets
//! our INFO, must send CONNECT (with the credentials `leafnodes {
//! authorization }` asks for) within the timeout, gets the INFO that answers
//! CONNECT, and then runs as a link.
//!
//! Owns the hub side of the handshake and its authorization check. Must not
//! listen (the server's lifecycle does) nor touch interest (the link does).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::net::TcpStream;

use super::handshake::{info_line, read_op, PeerConnect};
use super::link;
use super::LeafError;
use crate::conn::outbound::run_writer;
use crate::conn::{CloseReason, ConnShared, Kind};
use crate::options::LeafOptions;
use crate::protocol::errors::text;
use crate::protocol::{LeafOp, LeafParser};
use crate::state::{LeafLink, ServerState};

/// Runs one accepted leaf connection to its end.
pub async fn serve_accepted(srv: Arc<ServerState>, stream: TcpStream, addr: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let lo = srv.opts().leafnodes.clone().unwrap_or_default();
    let conn = Arc::new(ConnShared::new(Kind::Leaf, srv.next_cid(), addr));
    let (mut rd, wr) = stream.into_split();
    let auth_required = lo.username.is_some() || lo.token.is_some() || !lo.users.is_empty();
    conn.out
        .send_now(&info_line(&srv, conn.cid, auth_required, false));
    let writer = {
        let (conn, deadline) = (conn.clone(), srv.opts().write_deadline);
        tokio::spawn(async move { run_writer(&conn.out, wr, deadline).await })
    };
    tracing::info!("{} Leafnode connection created", conn.log());
    match handshake(&srv, &conn, &lo, &mut rd).await {
        Ok((rec, buf)) => {
            link::run(srv.clone(), rec, rd, buf).await;
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

async fn handshake(
    srv: &Arc<ServerState>,
    conn: &Arc<ConnShared>,
    lo: &LeafOptions,
    rd: &mut tokio::net::tcp::OwnedReadHalf,
) -> Result<(Arc<LeafLink>, BytesMut), (CloseReason, LeafError)> {
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
    let c: PeerConnect = serde_json::from_slice(&frame[json])
        .map_err(|_| (CloseReason::ParseError, LeafError::Json("CONNECT")))?;
    // bcrypt takes tens of milliseconds: off the runtime's workers.
    let (lo2, user, pass, token) = (
        lo.clone(),
        c.user.clone(),
        c.pass.clone(),
        c.auth_token.clone(),
    );
    let ok = tokio::task::spawn_blocking(move || authorized(&lo2, user, pass, token))
        .await
        .unwrap_or(false);
    if !ok {
        let who = c.user.clone().unwrap_or_default();
        return Err((
            CloseReason::AuthenticationViolation,
            LeafError::Refused(format!("authentication error - User \"{who}\"")),
        ));
    }
    conn.headers
        .store(c.headers, std::sync::atomic::Ordering::Relaxed);
    conn.meta.lock().name = c.name.clone();
    conn.out.send_now(&info_line(srv, conn.cid, false, true));
    let name = if c.name.is_empty() {
        c.server_id.clone()
    } else {
        c.name.clone()
    };
    Ok((
        Arc::new(LeafLink::new(conn.clone(), false, name, c.server_id)),
        buf,
    ))
}

/// `leafnodes { authorization }`: a token, a user/password, a users list
/// (passwords plain or bcrypt), or nothing.
fn authorized(
    lo: &LeafOptions,
    user: Option<String>,
    pass: Option<String>,
    token: Option<String>,
) -> bool {
    if let Some(want) = &lo.token {
        return secret_matches(want, token.as_deref());
    }
    let user = user.unwrap_or_default();
    if let Some(want) = &lo.username {
        if *want == user {
            return secret_matches(lo.password.as_deref().unwrap_or(""), pass.as_deref());
        }
    }
    if let Some((_, want)) = lo.users.iter().find(|(u, _)| *u == user) {
        return secret_matches(want, pass.as_deref());
    }
    lo.username.is_none() && lo.users.is_empty()
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

    fn check(
        lo: &LeafOptions,
        user: Option<&str>,
        pass: Option<&str>,
        token: Option<&str>,
    ) -> bool {
        authorized(
            lo,
            user.map(String::from),
            pass.map(String::from),
            token.map(String::from),
        )
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
            users: vec![("c".into(), bcrypt::hash("d", 4).expect("hash"))],
            ..LeafOptions::default()
        };
        assert!(check(&users, Some("a"), Some("b"), None));
        assert!(check(&users, Some("c"), Some("d"), None));
        assert!(!check(&users, Some("c"), Some("b"), None));
        assert!(!check(&users, Some("z"), Some("d"), None));
        assert!(!check(&users, None, None, None));
    }
}
