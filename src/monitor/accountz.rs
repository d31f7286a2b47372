//! `/accountz` (the accounts, and one account's detail with `?acc=`) and
//! `/accstatz` (per-account connection and message statistics), in
//! nats-server's `Accountz`/`AccountInfo`/`ExtExport`/`ExtImport` and
//! `AccountStatz`/`AccountStat` shapes. Also the per-account tallies
//! `/metrics` renders, so both report the same numbers.
//!
//! Owns these response shapes and the tally over live connections, leaf
//! links and each account's closed totals. Reads `ServerState` and the
//! accounts through their public API only (one connection's queue locked at
//! a time, nothing held across an `.await`); must not change an account,
//! its configuration or any connection.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::params::{bool_param, get, QueryMap};
use super::{json, Shared};
use crate::account::Account;
use crate::conn::{ConnShared, Kind};
use crate::options::{ExportConfig, ImportConfig, ResponseType, ShareKind};
use crate::state::ServerState;
use crate::sublist::SublistStats;
use crate::time::rfc3339;

/// `/accountz`, as nats-server's `Accountz`: the account names, or with
/// `acc=` one account's detail instead.
#[derive(Debug, Serialize)]
pub struct Accountz {
    pub server_id: String,
    pub now: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system_account: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_detail: Option<AccountInfo>,
}

/// One account, as nats-server's `AccountInfo` without the JWT-only fields
/// (natrium has no operator mode: accounts are never expired or incomplete).
#[derive(Debug, Serialize)]
pub struct AccountInfo {
    pub account_name: String,
    /// When its configuration last changed (creation, or a reload).
    pub update_time: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_system: bool,
    pub expired: bool,
    pub complete: bool,
    pub jetstream_enabled: bool,
    pub leafnode_connections: usize,
    pub client_connections: usize,
    /// Everything in the account's matching engine, import subscriptions
    /// included (nats-server counts its `sl.Count()` the same way).
    pub subscriptions: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<ExtExport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<ExtImport>,
    pub sublist_stats: SublistStats,
}

/// One export, as nats-server's `ExtExport` (a `jwt.Export` plus who may
/// import it).
#[derive(Debug, Serialize)]
pub struct ExtExport {
    pub subject: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Services only: `Singleton`, `Stream` or `Chunked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_type: Option<&'static str>,
    /// Sorted; omitted for a public export.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approved_accounts: Vec<String>,
}

/// One import, as nats-server's `ExtImport`: `subject` is the exporter's,
/// `local_subject` where it is seen here (a service's deprecated `to` too).
#[derive(Debug, Serialize)]
pub struct ExtImport {
    pub subject: String,
    pub account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub to: String,
    pub local_subject: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Configured imports were checked when loaded: never invalid here.
    pub invalid: bool,
    pub share: bool,
    pub tracking: bool,
}

/// `/accstatz`, as nats-server's `AccountStatz`.
#[derive(Debug, Serialize)]
pub struct AccountStatz {
    pub server_id: String,
    pub now: String,
    pub account_statz: Vec<AccountStat>,
}

/// One account's statistics, as nats-server's `AccountStat`.
#[derive(Debug, Serialize)]
pub struct AccountStat {
    pub acc: String,
    /// nats-server's name tag, which is the account name without JWTs.
    pub name: String,
    pub conns: usize,
    pub leafnodes: usize,
    pub total_conns: usize,
    pub num_subscriptions: u32,
    pub sent: DataStats,
    pub received: DataStats,
    pub slow_consumers: u64,
}

/// Messages and bytes one way, as nats-server's `MsgBytes`.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct MsgBytes {
    pub msgs: u64,
    pub bytes: u64,
}

/// Messages and bytes one way, with the part over each kind of link
/// (nats-server's `DataStats`; natrium has no routes or gateways).
#[derive(Debug, Default, Serialize)]
pub struct DataStats {
    #[serde(flatten)]
    pub total: MsgBytes,
    pub gateways: MsgBytes,
    pub routes: MsgBytes,
    pub leafs: MsgBytes,
}

/// What one account adds up to now: live connections and links plus what
/// its closed connections left in `Account::closed`.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub conns: usize,
    pub leafnodes: usize,
    pub subscriptions: u32,
    /// Into the account (published by its clients and links).
    pub received: DataStats,
    /// Out of the account (delivered to its clients and links).
    pub sent: DataStats,
    pub slow_consumers: u64,
}

/// Every account's tally, by name. Slow consumers are counted among the
/// closed connections the server remembers (the last 10,000): no
/// per-account counter is kept.
pub(crate) fn tally(server: &ServerState) -> BTreeMap<Arc<str>, Tally> {
    let mut out: BTreeMap<Arc<str>, Tally> = server
        .accounts
        .list()
        .into_iter()
        .map(|a| (a.name.clone(), closed_tally(&a)))
        .collect();
    for c in server.clients() {
        let Some(t) = bound(&c).and_then(|a| out.get_mut(&a.name)) else {
            continue;
        };
        t.conns += 1;
        add_traffic(t, &c, false);
    }
    for l in server.leafs.list() {
        let Some(t) = bound(&l.conn).and_then(|a| out.get_mut(&a.name)) else {
            continue;
        };
        t.leafnodes += 1;
        add_traffic(t, &l.conn, true);
    }
    out
}

/// The account a connection is bound to (none before it authenticated).
fn bound(c: &ConnShared) -> Option<&Arc<Account>> {
    c.account.get()
}

fn closed_tally(a: &Account) -> Tally {
    let t = &a.closed;
    let mut tally = Tally {
        subscriptions: u32::try_from(a.sublist.count()).unwrap_or(u32::MAX),
        slow_consumers: t.slow_consumers.load(Relaxed),
        ..Tally::default()
    };
    tally.received.total = MsgBytes {
        msgs: t.in_msgs.load(Relaxed),
        bytes: t.in_bytes.load(Relaxed),
    };
    tally.sent.total = MsgBytes {
        msgs: t.out_msgs.load(Relaxed),
        bytes: t.out_bytes.load(Relaxed),
    };
    tally
}

fn add_traffic(t: &mut Tally, c: &ConnShared, leaf: bool) {
    let inbound = MsgBytes {
        msgs: c.in_msgs.load(Relaxed),
        bytes: c.in_bytes.load(Relaxed),
    };
    let (msgs, bytes) = c.out.lock().out_counts();
    let outbound = MsgBytes { msgs, bytes };
    add(&mut t.received.total, inbound);
    add(&mut t.sent.total, outbound);
    if leaf {
        add(&mut t.received.leafs, inbound);
        add(&mut t.sent.leafs, outbound);
    }
}

fn add(to: &mut MsgBytes, more: MsgBytes) {
    to.msgs = to.msgs.saturating_add(more.msgs);
    to.bytes = to.bytes.saturating_add(more.bytes);
}

fn now() -> String {
    rfc3339(SystemTime::now())
}

/// `/accountz` without `acc=`: every account's name, sorted.
pub(crate) fn list(s: &ServerState) -> Accountz {
    Accountz {
        accounts: s
            .accounts
            .list()
            .iter()
            .map(|a| a.name.to_string())
            .collect(),
        ..list_head(s)
    }
}

/// `/accountz`, with `acc` one account's detail; an unknown account is
/// nats-server's error text (for HTTP and `$SYS.REQ.…ACCOUNTZ` alike).
pub(crate) fn collect(s: &ServerState, acc: Option<&str>) -> Result<Accountz, String> {
    let Some(name) = acc else {
        return Ok(list(s));
    };
    let acc = s
        .accounts
        .get(name)
        .ok_or_else(|| format!("Account {name} does not exist"))?;
    Ok(Accountz {
        account_detail: Some(account_info(s, &acc)),
        ..list_head(s)
    })
}

/// The identity part of an `/accountz` answer.
fn list_head(s: &ServerState) -> Accountz {
    Accountz {
        server_id: s.server_id.clone(),
        now: now(),
        system_account: s.accounts.system().name.to_string(),
        accounts: Vec::new(),
        account_detail: None,
    }
}

/// `GET /accountz[?acc=NAME]`; an unknown account is a 400, as nats-server.
pub(crate) async fn accountz_handler(State(mon): Shared, Query(q): Query<QueryMap>) -> Response {
    mon.count("/accountz");
    match collect(&mon.server, get(&q, "acc")) {
        Ok(a) => json(&a),
        Err(text) => (StatusCode::BAD_REQUEST, text).into_response(),
    }
}

fn account_info(s: &ServerState, acc: &Arc<Account>) -> AccountInfo {
    let in_acc = |c: &ConnShared| bound(c).is_some_and(|a| Arc::ptr_eq(a, acc));
    let clients = s
        .clients()
        .iter()
        .filter(|c| c.kind == Kind::Client && in_acc(c))
        .count();
    let leafs = s.leafs.list().iter().filter(|l| in_acc(&l.conn)).count();
    let cfg = acc.config();
    AccountInfo {
        account_name: acc.name.to_string(),
        update_time: rfc3339(UNIX_EPOCH + Duration::from_nanos(acc.updated())),
        is_system: Arc::ptr_eq(acc, s.accounts.system()),
        expired: false,
        complete: true,
        jetstream_enabled: false,
        leafnode_connections: leafs,
        client_connections: clients,
        subscriptions: u32::try_from(acc.sublist.count()).unwrap_or(u32::MAX),
        exports: cfg.exports.iter().map(ext_export).collect(),
        imports: cfg.imports.iter().map(ext_import).collect(),
        sublist_stats: acc.sublist.stats(),
    }
}

fn ext_export(e: &ExportConfig) -> ExtExport {
    let mut approved = e.accounts.clone().unwrap_or_default();
    approved.sort();
    ExtExport {
        subject: e.subject.clone(),
        kind: e.kind.as_str(),
        response_type: (e.kind == ShareKind::Service).then_some(match e.response {
            ResponseType::Singleton => "Singleton",
            ResponseType::Stream => "Stream",
            ResponseType::Chunked => "Chunked",
        }),
        approved_accounts: approved,
    }
}

/// An import as `/accountz` shows it, with the local subject the account
/// routes install it on.
fn ext_import(i: &ImportConfig) -> ExtImport {
    let local = i.local_subject();
    ExtImport {
        subject: i.subject.clone(),
        account: i.account.clone(),
        to: match i.kind {
            ShareKind::Service => local.clone(),
            ShareKind::Stream => String::new(),
        },
        local_subject: local,
        kind: i.kind.as_str(),
        invalid: false,
        share: false,
        tracking: false,
    }
}

/// `/accstatz`: accounts with a client or leaf connection (every account
/// with `unused`), only those named in `only` when given.
pub(crate) fn statz(s: &ServerState, only: Option<&[&str]>, unused: bool) -> AccountStatz {
    let account_statz = tally(s)
        .into_iter()
        .filter(|(name, _)| only.is_none_or(|o| o.contains(&&**name)))
        .filter(|(_, t)| unused || t.conns != 0 || t.leafnodes != 0)
        .map(|(name, t)| AccountStat {
            acc: name.to_string(),
            name: name.to_string(),
            conns: t.conns,
            leafnodes: t.leafnodes,
            total_conns: t.conns + t.leafnodes,
            num_subscriptions: t.subscriptions,
            sent: t.sent,
            received: t.received,
            slow_consumers: t.slow_consumers,
        })
        .collect();
    AccountStatz {
        server_id: s.server_id.clone(),
        now: now(),
        account_statz,
    }
}

/// `GET /accstatz[?unused=1][&accs=A,B]`. `accs` is natrium's: the account
/// filter nats-server offers only over the system account.
pub(crate) async fn accstatz_handler(State(mon): Shared, Query(q): Query<QueryMap>) -> Response {
    mon.count("/accstatz");
    let unused = match bool_param(&q, "unused", &[]) {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let only: Option<Vec<&str>> = get(&q, "accs").map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    });
    json(&statz(&mon.server, only.as_deref(), unused))
}
