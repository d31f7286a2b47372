//! Routes: internal subscriptions that carry a message from one account's
//! subject space into another (stream and service imports, the replies of
//! service imports) or to the system account's request handler.
//!
//! Owns the route table (route subscription sid → what to do) and its
//! installation from the configuration; `client::deliver` follows a route
//! when a match hits a subscription of the internal client. Must not deliver.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;

use super::check::import_map;
use super::{Account, AccountError, SubjectMap};
use crate::auth::is_subset;
use crate::conn::{ConnShared, SubRef, Subscription};
use crate::options::{Options, ResponseType, ShareKind};
use crate::sync::Mutex;

/// What the system account answers (`$SYS.REQ.SERVER.…`), as nats-server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemKind {
    Statsz,
    Varz,
    Connz,
    Subsz,
    Healthz,
    Leafz,
    Accountz,
    Routez,
    Gatewayz,
    Jsz,
    Idz,
    /// `$SYS.REQ.USER.INFO`: who the requester is (any account may ask).
    UserInfo,
}

impl SystemKind {
    /// Every request kind and the subject token naming it.
    pub const ALL: [(SystemKind, &'static str); 11] = [
        (SystemKind::Statsz, "STATSZ"),
        (SystemKind::Varz, "VARZ"),
        (SystemKind::Connz, "CONNZ"),
        (SystemKind::Subsz, "SUBSZ"),
        (SystemKind::Healthz, "HEALTHZ"),
        (SystemKind::Leafz, "LEAFZ"),
        (SystemKind::Accountz, "ACCOUNTZ"),
        (SystemKind::Routez, "ROUTEZ"),
        (SystemKind::Gatewayz, "GATEWAYZ"),
        (SystemKind::Jsz, "JSZ"),
        (SystemKind::Idz, "IDZ"),
    ];
}

/// One `$SYS.REQ.…` request handed to the system task.
pub struct SysRequest {
    pub kind: SystemKind,
    /// The request's subject (`$SYS.REQ.SERVER.<id>.VARZ`, …).
    pub subject: Bytes,
    /// Sent to every server (`PING…`): the body may filter which answer.
    pub ping: bool,
    pub reply: Bytes,
    pub payload: Bytes,
    /// The account the answer is about (an account's own system import).
    pub account: Option<Arc<str>>,
    /// Who asked (`$SYS.REQ.USER.INFO`).
    pub requester: Option<Arc<ConnShared>>,
}

/// What a match on a route subscription does.
pub enum Route {
    /// Stream import: re-published into `to` under the mapped subject.
    Stream { to: Arc<Account>, map: SubjectMap },
    /// Service import: forwarded into the exporter `to`, the reply replaced
    /// by a `_R_.…` subject that leads back.
    Service {
        /// The importer, where the answer goes back to.
        from: Arc<Account>,
        to: Arc<Account>,
        map: SubjectMap,
        response: ResponseType,
    },
    /// `_R_.>` in an account that exports services: answers go back.
    Responses { acc: Arc<Account> },
    /// A system account request; `account` set for the requests every
    /// account may make about itself (nats-server's system imports).
    System {
        kind: SystemKind,
        ping: bool,
        account: Option<Arc<str>>,
    },
}

struct Installed {
    acc: Arc<Account>,
    sub: SubRef,
    fixed: bool,
}

/// What every account but the system account may ask the system about
/// itself, as nats-server's `registerSystemImports`: its connections
/// (`$SYS.REQ.ACCOUNT.PING.CONNZ`, `$SYS.REQ.SERVER.PING.CONNZ`), its
/// statistics (`$SYS.REQ.ACCOUNT.PING.STATZ`) and who the requester is
/// (`$SYS.REQ.USER.INFO`).
fn system_imports(acc: &Arc<Account>) -> Vec<(Arc<Account>, String, Route)> {
    let own = Some(acc.name.clone());
    [
        ("$SYS.REQ.ACCOUNT.PING.CONNZ", SystemKind::Connz),
        ("$SYS.REQ.SERVER.PING.CONNZ", SystemKind::Connz),
        ("$SYS.REQ.ACCOUNT.PING.STATZ", SystemKind::Statsz),
        ("$SYS.REQ.USER.INFO", SystemKind::UserInfo),
    ]
    .into_iter()
    .map(|(subject, kind)| {
        let route = Route::System {
            kind,
            ping: true,
            account: own.clone(),
        };
        (acc.clone(), subject.to_string(), route)
    })
    .collect()
}

/// Route subscriptions a reconfiguration removed and added, with their
/// accounts' names.
#[derive(Default)]
pub struct RouteChanges {
    pub removed: Vec<(Arc<str>, Arc<Subscription>)>,
    pub added: Vec<(Arc<str>, Arc<Subscription>)>,
}

/// Route subscriptions by sid, and what was installed where.
#[derive(Default)]
pub(super) struct RouteTable {
    by_sid: ArcSwap<HashMap<Bytes, Arc<Route>>>,
    installed: Mutex<Vec<Installed>>,
    next: AtomicU64,
    /// Route subscriptions ever removed (inserts are `next`): `/subsz`
    /// counts clients' inserts and removes, not the server's own.
    removed: AtomicU64,
}

impl RouteTable {
    /// Route subscriptions ever inserted and removed.
    pub(super) fn churn(&self) -> (u64, u64) {
        (
            self.next.load(Ordering::Relaxed),
            self.removed.load(Ordering::Relaxed),
        )
    }

    /// The route subscriptions in the account called `name` (interest a
    /// leaf link bound to it must be told about).
    pub(super) fn subscriptions_in(&self, name: &str) -> Vec<Arc<Subscription>> {
        self.installed
            .lock()
            .iter()
            .filter(|r| &*r.acc.name == name)
            .map(|r| r.sub.0.clone())
            .collect()
    }

    /// Route subscriptions installed now.
    pub(super) fn len(&self) -> usize {
        self.installed.lock().len()
    }

    pub(super) fn get(&self, sid: &[u8]) -> Option<Arc<Route>> {
        self.by_sid.load().get(sid).cloned()
    }

    fn subscribe(
        &self,
        acc: &Arc<Account>,
        internal: &Arc<ConnShared>,
        subject: &str,
    ) -> Option<SubRef> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let sid = format!("r{n}");
        let sub = SubRef(Arc::new(Subscription::new(
            internal.clone(),
            subject.as_bytes(),
            None,
            sid.as_bytes(),
        )));
        acc.sublist
            .insert(sub.0.subject(), None, sub.clone())
            .ok()?;
        Some(sub)
    }

    pub(super) fn add_fixed(
        &self,
        acc: &Arc<Account>,
        internal: &Arc<ConnShared>,
        subject: &str,
        route: Route,
    ) {
        let mut installed = self.installed.lock();
        let Some(sub) = self.subscribe(acc, internal, subject) else {
            return;
        };
        let mut table = HashMap::clone(&self.by_sid.load());
        table.insert(Bytes::copy_from_slice(sub.0.sid()), Arc::new(route));
        self.by_sid.store(Arc::new(table));
        installed.push(Installed {
            acc: acc.clone(),
            sub,
            fixed: true,
        });
    }

    /// Replaces the configured routes with those of `opts` over `accounts`;
    /// returns what was removed and added (leaf links are told).
    pub(super) fn install(
        &self,
        accounts: &HashMap<String, Arc<Account>>,
        internal: &Arc<ConnShared>,
        opts: &Options,
        system: &Arc<Account>,
    ) -> Result<RouteChanges, AccountError> {
        let mut planned: Vec<(Arc<Account>, String, Route)> = Vec::new();
        for acc in accounts.values().filter(|a| !Arc::ptr_eq(a, system)) {
            planned.extend(system_imports(acc));
        }
        for cfg in &opts.accounts {
            let Some(importer) = accounts.get(&cfg.name) else {
                continue;
            };
            for i in &cfg.imports {
                let Some(exporter) = accounts.get(&i.account) else {
                    continue;
                };
                let map = import_map(i)?;
                match i.kind {
                    ShareKind::Stream => planned.push((
                        exporter.clone(),
                        i.subject.clone(),
                        Route::Stream {
                            to: importer.clone(),
                            map,
                        },
                    )),
                    ShareKind::Service => {
                        let response = opts
                            .accounts
                            .iter()
                            .find(|a| a.name == i.account)
                            .and_then(|a| {
                                a.exports.iter().find(|e| {
                                    e.kind == ShareKind::Service
                                        && is_subset(i.subject.as_bytes(), e.subject.as_bytes())
                                })
                            })
                            .map(|e| e.response)
                            .unwrap_or_default();
                        planned.push((
                            importer.clone(),
                            i.local_subject(),
                            Route::Service {
                                from: importer.clone(),
                                to: exporter.clone(),
                                map,
                                response,
                            },
                        ));
                    }
                }
            }
            if cfg.exports.iter().any(|e| e.kind == ShareKind::Service) {
                planned.push((
                    importer.clone(),
                    "_R_.>".to_string(),
                    Route::Responses {
                        acc: importer.clone(),
                    },
                ));
            }
        }
        let mut changes = RouteChanges::default();
        let mut installed = self.installed.lock();
        let mut table = HashMap::clone(&self.by_sid.load());
        installed.retain(|r| {
            if r.fixed {
                return true;
            }
            let _ = r.acc.sublist.remove(r.sub.0.subject(), None, &r.sub);
            self.removed.fetch_add(1, Ordering::Relaxed);
            table.remove(r.sub.0.sid());
            changes.removed.push((r.acc.name.clone(), r.sub.0.clone()));
            false
        });
        for (acc, subject, route) in planned {
            if let Some(sub) = self.subscribe(&acc, internal, &subject) {
                table.insert(Bytes::copy_from_slice(sub.0.sid()), Arc::new(route));
                changes.added.push((acc.name.clone(), sub.0.clone()));
                installed.push(Installed {
                    acc,
                    sub,
                    fixed: false,
                });
            }
        }
        self.by_sid.store(Arc::new(table));
        Ok(changes)
    }
}
