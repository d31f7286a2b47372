//! `/subsz` (alias `/subscriptionsz`): the interest graph's statistics and,
//! with `subs=1` or `test=<subject>`, a paged list of subscriptions.
//!
//! The full list is gathered from each client's `subjects` map (locked briefly,
//! one client at a time); `test=` asks the sublist which subscriptions a
//! publish to that subject would reach. Must not modify any subscription.

use std::time::SystemTime;

use serde::Serialize;

use super::params::{bool_param, get, usize_param, QueryMap};
use super::MonitorError;
use crate::account::Account;
use crate::conn::{Kind, SubRef};
use crate::state::ServerState;
use crate::sublist::SublistStats;
use crate::time::rfc3339;

/// nats-server's default page size for `/subsz`.
pub const DEFAULT_LIMIT: usize = 1024;

/// `/subsz` response, as nats-server's `Subsz` (statistics flattened in).
#[derive(Debug, Serialize)]
pub struct Subsz {
    pub server_id: String,
    pub now: String,
    #[serde(flatten)]
    pub stats: SublistStats,
    /// Subscriptions listed before paging (0 unless a list was asked for).
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions_list: Vec<SubDetail>,
}

/// One subscription, as nats-server's `SubDetail`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct SubDetail {
    /// First so that the list sorts by connection, then sid.
    pub cid: u64,
    pub sid: String,
    pub subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub qgroup: String,
    /// Messages delivered to it since SUB.
    pub msgs: u64,
    /// `UNSUB <sid> <max>` limit, omitted when unlimited.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// The subscriber's account (`$G` outside any `accounts` block).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Decoded `/subsz` query.
#[derive(Debug, Clone)]
pub(crate) struct SubszOptions {
    pub subs: bool,
    pub offset: usize,
    pub limit: usize,
    pub test: Option<String>,
    /// `acc=`: only this account's subscriptions (and `test=` matched in it).
    pub acc: Option<String>,
}

impl SubszOptions {
    pub(crate) fn parse(q: &QueryMap) -> Result<SubszOptions, MonitorError> {
        let test = get(q, "test").map(str::to_string);
        if let Some(t) = &test {
            if crate::subject::validate_publish(t.as_bytes()).is_err() {
                return Err(MonitorError::BadTestSubject(t.clone()));
            }
        }
        let limit = match usize_param(q, "limit", DEFAULT_LIMIT)? {
            0 => DEFAULT_LIMIT,
            n => n,
        };
        Ok(SubszOptions {
            subs: bool_param(q, "subs", &["detail"])?,
            offset: usize_param(q, "offset", 0)?,
            limit,
            test,
            acc: get(q, "acc").map(str::to_string),
        })
    }
}

/// Builds `/subsz`. `test=` implies the list (it is what the filter is for).
pub(crate) fn collect(server: &ServerState, o: &SubszOptions) -> Subsz {
    let acc = o.acc.as_deref().and_then(|a| server.accounts.get(a));
    let stats = match &acc {
        Some(a) => a.sublist.stats(),
        None => server.accounts.stats(),
    };
    let mut list = match &o.test {
        Some(subject) => matching(acc.as_ref().unwrap_or(server.accounts.global()), subject),
        None if o.subs => all_subs(server, o.acc.as_deref()),
        None => Vec::new(),
    };
    list.sort();
    let total = list.len();
    let subscriptions_list = list.into_iter().skip(o.offset).take(o.limit).collect();
    Subsz {
        server_id: server.server_id.clone(),
        now: rfc3339(SystemTime::now()),
        stats,
        total,
        offset: o.offset,
        limit: o.limit,
        subscriptions_list,
    }
}

/// Every live subscription, from the clients' sid maps.
fn all_subs(server: &ServerState, acc: Option<&str>) -> Vec<SubDetail> {
    let mut out = Vec::new();
    for client in server.clients() {
        let account = client.account_name();
        if acc.is_some_and(|a| a != account) {
            continue;
        }
        let subs = client.subjects.lock();
        out.extend(subs.values().map(|s| {
            let (msgs, max) = (
                s.delivered.load(std::sync::atomic::Ordering::Relaxed),
                s.max.load(std::sync::atomic::Ordering::Relaxed),
            );
            SubDetail {
                cid: client.cid,
                sid: lossy(s.sid()),
                subject: lossy(s.subject()),
                qgroup: s.queue().map(lossy).unwrap_or_default(),
                msgs,
                max,
                account: account.to_string(),
            }
        }));
    }
    out
}

/// Subscriptions a publish to `subject` would reach (every queue member).
fn matching(acc: &Account, subject: &str) -> Vec<SubDetail> {
    let result = acc.sublist.match_subject(subject.as_bytes());
    let members = result.queues().iter().flat_map(|q| q.members.iter());
    result
        .plain()
        .iter()
        .chain(members)
        .filter(|s| s.0.client.kind != Kind::Internal)
        .map(detail)
        .collect()
}

fn detail(s: &SubRef) -> SubDetail {
    use std::sync::atomic::Ordering::Relaxed;
    let sub = &s.0;
    SubDetail {
        cid: sub.client.cid,
        sid: lossy(sub.sid()),
        subject: lossy(sub.subject()),
        qgroup: sub.queue().map(lossy).unwrap_or_default(),
        msgs: sub.delivered.load(Relaxed),
        max: sub.max.load(Relaxed),
        account: sub.client.account_name().to_string(),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
