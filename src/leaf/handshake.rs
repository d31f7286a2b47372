//! The first ops of a link: read one op under a deadline, and the JSON of the
//! INFO and CONNECT that leaf links exchange (the fields nats-server sends).
//!
//! Owns the handshake wire content only; it must not register links or touch
//! interest.

use std::time::Duration;

use bytes::BytesMut;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::creds::Proof;
use super::LeafError;
use crate::auth::SubjectLists;
use crate::protocol::{LeafOp, LeafParser};
use crate::state::{ServerState, VERSION};

/// Reads until one complete op is in `buf` (leftover bytes stay there).
pub async fn read_op<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    parser: &mut LeafParser,
    timeout: Duration,
    what: &'static str,
) -> Result<LeafOp, LeafError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(op) = parser.next_op(buf)? {
            return Ok(op);
        }
        if buf.len() > 64 * 1024 {
            return Err(LeafError::Unexpected { expected: what });
        }
        buf.reserve(4096);
        match tokio::time::timeout_at(deadline, rd.read_buf(buf)).await {
            Err(_) => return Err(LeafError::Timeout(what)),
            Ok(Ok(0)) => return Err(LeafError::Closed),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
    }
}

/// What we use of a peer's INFO.
#[derive(Debug, Default, Deserialize)]
pub struct PeerInfo {
    #[serde(default)]
    pub server_id: String,
    #[serde(default)]
    pub server_name: String,
    #[serde(default)]
    pub headers: bool,
    #[serde(default)]
    pub max_payload: usize,
    /// What a remote with `nkey` or `credentials` signs.
    #[serde(default)]
    pub nonce: Option<String>,
    /// The hub wants TLS even from a remote without a `tls` block.
    #[serde(default)]
    pub tls_required: bool,
    /// The INFO that answers our CONNECT (it may carry our permissions).
    #[serde(default)]
    pub connect_info: bool,
    /// What the hub lets us send it (its user's publish permissions).
    #[serde(default)]
    pub export: Option<SubjectLists>,
    /// What the hub sends us (its user's subscribe permissions).
    #[serde(default)]
    pub import: Option<SubjectLists>,
}

/// What we use of a leaf's CONNECT.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct PeerConnect {
    #[serde(default)]
    pub server_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub headers: bool,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub pass: Option<String>,
    #[serde(default)]
    pub auth_token: Option<String>,
    /// Public user key, for `leafnodes { authorization { nkey } }`.
    #[serde(default)]
    pub nkey: Option<String>,
    /// The leaf's signature of our INFO nonce.
    #[serde(default)]
    pub sig: Option<String>,
    /// The leaf's `deny_imports`: we must not send it those subjects.
    #[serde(default)]
    pub deny_pub: Option<Vec<String>>,
}

fn name(srv: &ServerState) -> String {
    srv.opts()
        .server_name
        .clone()
        .unwrap_or_else(|| srv.server_id.clone())
}

/// The credentials a soliciting leaf puts in CONNECT.
#[derive(Debug, Default)]
pub struct Hello<'a> {
    /// The local account the link is bound to (`remote_account`).
    pub account: &'a str,
    pub user: Option<&'a str>,
    pub pass: Option<&'a str>,
    pub token: Option<&'a str>,
    pub proof: Proof,
    /// The remote's `deny_imports`, which the hub enforces too.
    pub deny_pub: &'a [String],
}

/// The CONNECT a soliciting leaf sends, as nats-server's (`sendLeafConnect`):
/// a user without a password goes as the token too (how nats-server reads a
/// `nats-leaf://token@host` URL).
pub fn connect_line(srv: &ServerState, hello: &Hello) -> Vec<u8> {
    let mut v = serde_json::json!({
        "version": VERSION,
        "server_id": srv.server_id,
        "name": name(srv),
        "headers": true,
        "remote_account": hello.account,
        "protocol": 1,
    });
    let token = hello.token.or(match (hello.user, hello.pass) {
        (Some(u), None) => Some(u),
        _ => None,
    });
    let fields = [
        ("user", hello.user),
        ("pass", hello.pass),
        ("auth_token", token),
        ("jwt", hello.proof.jwt.as_deref()),
        ("nkey", hello.proof.nkey.as_deref()),
        ("sig", hello.proof.sig.as_deref()),
    ];
    if let Some(obj) = v.as_object_mut() {
        for (key, value) in fields {
            if let Some(value) = value {
                obj.insert(key.into(), value.into());
            }
        }
        if !hello.deny_pub.is_empty() {
            obj.insert("deny_pub".into(), hello.deny_pub.into());
        }
    }
    format!("CONNECT {v}\r\n").into_bytes()
}

/// What varies in the INFO a hub sends a leaf.
#[derive(Debug, Default, Clone, Copy)]
pub struct InfoFlags<'a> {
    pub auth_required: bool,
    /// The reply to CONNECT (carries `connect_info` and the account).
    pub connect_info: bool,
    /// The account the accepted link was bound to (with `connect_info`).
    pub account: Option<&'a str>,
    /// The nonce a leaf signing with an nkey signs (nats-server always sends one).
    pub nonce: Option<&'a str>,
    /// With `connect_info`: the authorizing user's subscribe permissions,
    /// which the leaf enforces on what it tells us and takes from us.
    pub import: Option<&'a SubjectLists>,
    /// With `connect_info`: its publish permissions, for what the leaf sends.
    pub export: Option<&'a SubjectLists>,
}

/// The INFO a hub sends a new leaf; `tls_required` when `leafnodes { tls }`.
pub fn info_line(srv: &ServerState, lid: u64, flags: InfoFlags) -> Vec<u8> {
    let o = srv.opts();
    let lo = o.leafnodes.clone().unwrap_or_default();
    let mut v = serde_json::json!({
        "server_id": srv.server_id,
        "server_name": name(srv),
        "version": VERSION,
        "proto": 1,
        "go": "natrium (rust)",
        "host": lo.host,
        "port": lo.port.unwrap_or(0),
        "headers": true,
        "max_payload": o.max_payload,
        "client_id": lid,
        "info_on_connect": true,
        // A nats-server leaf takes an INFO without these for a client port's.
        "leafnode_urls": [format!("{}:{}", lo.host, lo.port.unwrap_or(0))],
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(tls) = &lo.tls {
            obj.insert("tls_required".into(), true.into());
            obj.insert("tls_verify".into(), tls.config.verify.into());
        }
        if flags.auth_required {
            obj.insert("auth_required".into(), true.into());
        }
        if let Some(nonce) = flags.nonce {
            obj.insert("nonce".into(), nonce.into());
        }
        if flags.connect_info {
            obj.insert("connect_info".into(), true.into());
            let acc = flags.account.unwrap_or(crate::options::GLOBAL_ACCOUNT);
            obj.insert("remote_account".into(), acc.into());
            for (key, lists) in [("import", flags.import), ("export", flags.export)] {
                if let Some(v) = lists.and_then(|l| serde_json::to_value(l).ok()) {
                    obj.insert(key.into(), v);
                }
            }
        }
    }
    format!("INFO {v}\r\n").into_bytes()
}
