//! `/connz`: connection list with nats-server's paging (`offset`, `limit`),
//! ordering (`sort`), filters (`state`, `cid`, `acc`, `user`),
//! `subs=1|detail` subscription lists and `auth=1` (each connection's user
//! and account).
//!
//! Open connections are snapshotted one at a time (each snapshot briefly locks
//! only that client's queue); closed ones come from the server's ring of the
//! last 10,000. Must not keep anything between requests.

use std::cmp::Ordering;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::params::{bool_param, get, u64_param, usize_param, QueryMap};
use super::subsz::SubDetail;
use super::MonitorError;
use crate::conn::{ConnSnapshot, SubSnapshot};
use crate::options::GLOBAL_ACCOUNT;
use crate::state::ServerState;
use crate::time::{go_duration, rfc3339, since, uptime};

/// nats-server's `DefaultConnListSize`.
pub const DEFAULT_LIMIT: usize = 1024;

/// `/connz` response, as nats-server's `Connz`.
#[derive(Debug, Serialize)]
pub struct Connz {
    pub server_id: String,
    pub now: String,
    /// Connections in this page.
    pub num_connections: usize,
    /// Connections matching the filters, before paging.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub connections: Vec<ConnInfo>,
}

/// One connection, as nats-server's `ConnInfo` (client connections only).
#[derive(Debug, Serialize)]
pub struct ConnInfo {
    pub cid: u64,
    pub kind: &'static str,
    #[serde(rename = "type")]
    pub conn_type: &'static str,
    pub ip: String,
    pub port: u16,
    pub start: String,
    pub last_activity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub rtt: String,
    pub uptime: String,
    pub idle: String,
    pub pending_bytes: usize,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lang: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// With `auth=1`: the user it authenticated as.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub authorized_user: String,
    /// Its account, with `auth=1` only and never `$G` (as nats-server).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list_detail: Vec<SubDetail>,
    /// With `auth=1`: the account's name tag, which without JWTs is its
    /// name (`$G` included while open, as nats-server).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name_tag: String,
}

/// `subs=`: no list, subjects only (`1`/`true`), or `detail` (sid, queue,
/// messages delivered and max for each, as nats-server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubsLevel {
    None,
    List,
    Detail,
}

/// Which connections to list (`state=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnState {
    Open,
    Closed,
    Any,
}

/// `sort=` orderings; all but `cid`, `start` and `reason` put the largest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortBy {
    Cid,
    Start,
    Subs,
    Pending,
    MsgsTo,
    MsgsFrom,
    BytesTo,
    BytesFrom,
    Last,
    Idle,
    Uptime,
    Rtt,
    Stop,
    Reason,
}

impl SortBy {
    fn parse(s: &str) -> Result<SortBy, MonitorError> {
        Ok(match s {
            "cid" => SortBy::Cid,
            "start" => SortBy::Start,
            "subs" => SortBy::Subs,
            "pending" => SortBy::Pending,
            "msgs_to" => SortBy::MsgsTo,
            "msgs_from" => SortBy::MsgsFrom,
            "bytes_to" => SortBy::BytesTo,
            "bytes_from" => SortBy::BytesFrom,
            "last" => SortBy::Last,
            "idle" => SortBy::Idle,
            "uptime" => SortBy::Uptime,
            "rtt" => SortBy::Rtt,
            "stop" => SortBy::Stop,
            "reason" => SortBy::Reason,
            other => return Err(MonitorError::BadSort(other.to_string())),
        })
    }
}

/// Decoded `/connz` query.
#[derive(Debug, Clone)]
pub(crate) struct ConnzOptions {
    pub offset: usize,
    pub limit: usize,
    pub sort: SortBy,
    pub subs: SubsLevel,
    pub state: ConnState,
    pub cid: Option<u64>,
    /// `acc=`: only connections bound to this account.
    pub acc: Option<String>,
    /// `user=`: only connections authenticated as this user.
    pub user: Option<String>,
    /// `auth=1`: name each connection's user and account.
    pub auth: bool,
}

impl ConnzOptions {
    pub(crate) fn parse(q: &QueryMap) -> Result<ConnzOptions, MonitorError> {
        let state = match get(q, "state") {
            None | Some("open") => ConnState::Open,
            Some("closed") => ConnState::Closed,
            Some("any") | Some("all") => ConnState::Any,
            Some(other) => {
                return Err(MonitorError::BadParam {
                    param: "state",
                    value: other.to_string(),
                    expected: "open, closed or any",
                })
            }
        };
        let sort = get(q, "sort").map_or(Ok(SortBy::Cid), SortBy::parse)?;
        if state != ConnState::Closed {
            match sort {
                SortBy::Stop => return Err(MonitorError::SortNeedsClosed("stop")),
                SortBy::Reason => return Err(MonitorError::SortNeedsClosed("reason")),
                _ => {}
            }
        }
        let limit = match usize_param(q, "limit", DEFAULT_LIMIT)? {
            0 => DEFAULT_LIMIT,
            n => n,
        };
        Ok(ConnzOptions {
            offset: usize_param(q, "offset", 0)?,
            limit,
            sort,
            subs: match get(q, "subs") {
                Some("detail") => SubsLevel::Detail,
                _ if bool_param(q, "subs", &[])? => SubsLevel::List,
                _ => SubsLevel::None,
            },
            state,
            cid: u64_param(q, "cid")?,
            acc: get(q, "acc").map(str::to_string),
            user: get(q, "user").map(str::to_string),
            auth: bool_param(q, "auth", &[])?,
        })
    }
}

/// Builds one page of `/connz` from fresh snapshots.
pub(crate) fn collect(server: &ServerState, o: &ConnzOptions) -> Connz {
    let now = SystemTime::now();
    let mut conns: Vec<ConnSnapshot> = Vec::new();
    let in_acc = |name: &str| o.acc.as_deref().is_none_or(|a| a == name);
    if o.state != ConnState::Closed {
        for c in server.clients() {
            // An account filter skips clients not bound yet (nats-server's
            // account lists only authenticated ones).
            let bound = c.account.get().map(|a| &*a.name);
            let acc_ok = o.acc.is_none() || bound.is_some_and(in_acc);
            if acc_ok && o.cid.is_none_or(|cid| cid == c.cid) {
                conns.push(c.snapshot(o.subs != SubsLevel::None));
            }
        }
    }
    if o.state != ConnState::Open && (o.cid.is_none() || conns.is_empty()) {
        let closed = server.closed_connections();
        conns.extend(
            closed
                .into_iter()
                .filter(|c| o.cid.is_none_or(|cid| cid == c.cid) && in_acc(&c.account)),
        );
    }
    if let Some(user) = &o.user {
        conns.retain(|c| c.user == *user);
    }
    sort(&mut conns, o.sort, now);
    let total = conns.len();
    let connections: Vec<ConnInfo> = conns
        .into_iter()
        .skip(o.offset)
        .take(o.limit)
        .map(|c| conn_info(c, o, now))
        .collect();
    Connz {
        server_id: server.server_id.clone(),
        now: rfc3339(now),
        num_connections: connections.len(),
        total,
        offset: o.offset,
        limit: o.limit,
        connections,
    }
}

/// How long a connection lived (to its stop, or to now while open).
fn lifetime(c: &ConnSnapshot, now: SystemTime) -> Duration {
    since(c.stop.unwrap_or(now), c.start)
}

/// How long since its last activity (at its stop, or now while open).
fn idle(c: &ConnSnapshot, now: SystemTime) -> Duration {
    since(c.stop.unwrap_or(now), c.last_activity)
}

/// A comparison between two connection snapshots.
type Compare = Box<dyn Fn(&ConnSnapshot, &ConnSnapshot) -> Ordering>;

fn sort(conns: &mut [ConnSnapshot], by: SortBy, now: SystemTime) {
    let desc =
        |f: fn(&ConnSnapshot) -> u64| move |a: &ConnSnapshot, b: &ConnSnapshot| f(b).cmp(&f(a));
    let key: Compare = match by {
        SortBy::Cid => Box::new(|a, b| a.cid.cmp(&b.cid)),
        SortBy::Start => Box::new(|a, b| a.start.cmp(&b.start)),
        SortBy::Subs => Box::new(desc(|c| c.subscriptions)),
        SortBy::Pending => Box::new(desc(|c| c.pending_bytes as u64)),
        SortBy::MsgsTo => Box::new(desc(|c| c.out_msgs)),
        SortBy::MsgsFrom => Box::new(desc(|c| c.in_msgs)),
        SortBy::BytesTo => Box::new(desc(|c| c.out_bytes)),
        SortBy::BytesFrom => Box::new(desc(|c| c.in_bytes)),
        SortBy::Last => Box::new(|a, b| b.last_activity.cmp(&a.last_activity)),
        SortBy::Idle => Box::new(move |a, b| idle(b, now).cmp(&idle(a, now))),
        SortBy::Uptime => Box::new(move |a, b| lifetime(b, now).cmp(&lifetime(a, now))),
        SortBy::Rtt => Box::new(|a, b| b.rtt.cmp(&a.rtt)),
        SortBy::Stop => Box::new(|a, b| b.stop.cmp(&a.stop)),
        SortBy::Reason => Box::new(|a, b| a.reason.cmp(&b.reason)),
    };
    // Ties broken by cid so paging is stable between requests.
    conns.sort_by(|a, b| key(a, b).then(a.cid.cmp(&b.cid)));
}

fn conn_info(c: ConnSnapshot, o: &ConnzOptions, now: SystemTime) -> ConnInfo {
    let (lived, idle_for) = (lifetime(&c, now), idle(&c, now));
    let closed = c.stop.is_some();
    let subs = o.subs;
    let account = c.account.clone();
    let global = account == GLOBAL_ACCOUNT;
    let name_tag = match o.auth {
        true if !(closed && global) => account.clone(),
        _ => String::new(),
    };
    ConnInfo {
        cid: c.cid,
        kind: "Client",
        conn_type: "nats",
        ip: c.ip,
        port: c.port,
        start: rfc3339(c.start),
        last_activity: rfc3339(c.last_activity),
        stop: c.stop.map(rfc3339),
        reason: c.reason.unwrap_or_default().to_string(),
        rtt: go_duration(c.rtt),
        uptime: uptime(lived),
        idle: uptime(idle_for),
        pending_bytes: c.pending_bytes,
        in_msgs: c.in_msgs,
        out_msgs: c.out_msgs,
        in_bytes: c.in_bytes,
        out_bytes: c.out_bytes,
        subscriptions: c.subscriptions,
        name: c.name,
        lang: c.lang,
        version: c.version,
        authorized_user: match o.auth {
            true => c.user,
            false => String::new(),
        },
        account: match o.auth && !global {
            true => account.clone(),
            false => String::new(),
        },
        subscriptions_list: match subs {
            SubsLevel::List => c.subs.iter().map(|s| s.subject.clone()).collect(),
            _ => Vec::new(),
        },
        subscriptions_list_detail: match subs {
            SubsLevel::Detail => c
                .subs
                .into_iter()
                .map(|s| detail(c.cid, closed, &account, s))
                .collect(),
            _ => Vec::new(),
        },
        name_tag,
    }
}

/// nats-server names the account and drops `max` only in the details it
/// kept for a closed connection.
fn detail(cid: u64, closed: bool, account: &str, s: SubSnapshot) -> SubDetail {
    SubDetail {
        cid,
        sid: s.sid,
        subject: s.subject,
        qgroup: s.queue.unwrap_or_default(),
        msgs: s.msgs,
        max: if closed { 0 } else { s.max },
        account: if closed {
            account.to_string()
        } else {
            String::new()
        },
    }
}
