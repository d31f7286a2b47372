//! Accounts: isolated subject spaces inside one server, and the subjects they
//! share through exports and imports (nats-server's multi-tenancy).
//!
//! Owns each account's matching engine, the registry of accounts (built from
//! `Options` at start and on reload, keeping live accounts' subscriptions),
//! the routes that carry messages across accounts (`routes`), and the
//! validation of the configured accounts (`check`). A connection is in exactly
//! one account, fixed when it authenticates. Must not parse input, read or
//! write sockets, or deliver messages itself: `client::deliver` follows routes.
//!
//! ```text
//!   account A (sublist)                      account B (sublist)
//!   pub foo.x ──▶ internal sub "foo.>" ──route Stream──▶ publish "a.foo.x"
//!   _R_.k     ◀── responder            ◀─route Service── pub svc.x (reply r)
//!   pub _R_.k ──▶ internal sub "_R_.>" ──route Responses──▶ publish "r"
//! ```

mod check;
mod mapping;
mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;

pub use check::check;
pub use mapping::SubjectMap;
pub use routes::{Route, RouteChanges, SysRequest, SystemKind};

use crate::conn::{ConnShared, Kind, SubRef};
use crate::options::{
    AccountConfig, Options, ResponseType, DEFAULT_SYSTEM_ACCOUNT, GLOBAL_ACCOUNT,
};
use crate::sublist::Sublist;
use crate::sync::Mutex;

/// Configured accounts that do not fit together; the text starts with where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// Pending response mappings an account keeps at most: a requester flooding
/// a service that never answers must not grow memory without bound.
pub const MAX_PENDING_RESPONSES: usize = 100_000;
/// How long a response mapping waits for its answer (nats-server's default
/// response threshold).
pub const RESPONSE_TTL: Duration = Duration::from_secs(120);
/// Reply subjects of service imports start with this, as in nats-server.
pub const REPLY_PREFIX: &[u8] = b"_R_.";

/// Message and byte counts of an account's closed connections.
#[derive(Default)]
pub struct AccountTotals {
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_msgs: AtomicU64,
    pub out_bytes: AtomicU64,
    pub total_connections: AtomicU64,
    /// Its connections cut as slow consumers (counted when cut).
    pub slow_consumers: AtomicU64,
}

/// Where the answer to one forwarded request goes.
pub struct Pending {
    pub to: Arc<Account>,
    pub reply: Bytes,
    pub response: ResponseType,
    expires: Instant,
}

/// One account: a name and its own subject space.
pub struct Account {
    pub name: Arc<str>,
    pub sublist: Sublist<SubRef>,
    /// The configuration it was last built from (exports, imports), for `/accountz`.
    config: ArcSwap<AccountConfig>,
    /// `_R_.…` reply subjects handed to this account's responders.
    responses: Mutex<HashMap<Bytes, Pending>>,
    response_seq: AtomicU64,
    /// Random part of this account's reply subjects (unique per server run).
    reply_tag: String,
    pub closed: AccountTotals,
    pub created: SystemTime,
    updated: AtomicU64,
}

impl Account {
    fn new(name: &str, config: AccountConfig) -> Account {
        let mut raw = [0u8; 6];
        // A fixed tag only costs uniqueness across servers, never safety.
        let _ = crate::rand::os_fill(&mut raw);
        let reply_tag = crate::rand::text(&raw, crate::rand::BASE32);
        Account {
            name: name.into(),
            sublist: Sublist::new(),
            config: ArcSwap::from_pointee(config),
            responses: Mutex::new(HashMap::new()),
            response_seq: AtomicU64::new(1),
            reply_tag,
            closed: AccountTotals::default(),
            created: SystemTime::now(),
            updated: AtomicU64::new(crate::time::unix_nanos()),
        }
    }

    /// Exports and imports as configured now.
    pub fn config(&self) -> Arc<AccountConfig> {
        self.config.load_full()
    }

    /// When its configuration last changed (Unix nanoseconds).
    pub fn updated(&self) -> u64 {
        self.updated.load(Ordering::Relaxed)
    }

    /// A fresh reply subject for one forwarded request, remembered until it
    /// is answered (singleton) or times out. `None` when the table is full.
    pub fn new_response(
        &self,
        to: &Arc<Account>,
        reply: &[u8],
        response: ResponseType,
    ) -> Option<Bytes> {
        let seq = self.response_seq.fetch_add(1, Ordering::Relaxed);
        let mut subject = Vec::with_capacity(32);
        subject.extend_from_slice(REPLY_PREFIX);
        subject.extend_from_slice(self.reply_tag.as_bytes());
        subject.push(b'.');
        subject.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
        let subject = Bytes::from(subject);
        let now = Instant::now();
        let mut map = self.responses.lock();
        if map.len() >= MAX_PENDING_RESPONSES || seq % 1024 == 0 {
            map.retain(|_, p| p.expires > now);
        }
        if map.len() >= MAX_PENDING_RESPONSES {
            return None;
        }
        map.insert(
            subject.clone(),
            Pending {
                to: to.clone(),
                reply: Bytes::copy_from_slice(reply),
                response,
                expires: now + RESPONSE_TTL,
            },
        );
        Some(subject)
    }

    /// Where a response published on `subject` goes; a singleton mapping is
    /// used up by it.
    pub fn take_response(&self, subject: &[u8]) -> Option<(Arc<Account>, Bytes)> {
        let mut map = self.responses.lock();
        let p = map.get(subject)?;
        if p.expires <= Instant::now() {
            map.remove(subject);
            return None;
        }
        let found = (p.to.clone(), p.reply.clone());
        if p.response == ResponseType::Singleton {
            map.remove(subject);
        }
        Some(found)
    }

    /// Response mappings waiting for an answer (monitoring, tests).
    pub fn pending_responses(&self) -> usize {
        self.responses.lock().len()
    }
}

/// What the system account's task is handed: a request to answer, or a
/// client connection event to announce on `$SYS.ACCOUNT.<acc>.…`.
pub enum SysMsg {
    Request(SysRequest),
    Connect(Arc<ConnShared>),
    /// The closed connection's final record (its `reason` set).
    Disconnect(Box<crate::conn::ConnSnapshot>),
}

/// Every account of the server and the routes between them.
pub struct Accounts {
    by_name: ArcSwap<HashMap<String, Arc<Account>>>,
    global: Arc<Account>,
    system: Arc<Account>,
    /// The one internal client every route subscription belongs to.
    pub internal: Arc<ConnShared>,
    routes: routes::RouteTable,
    /// Where `$SYS.REQ.…` requests and connection events go (set once the
    /// system task runs; without it the system account is silent).
    pub system_tx: OnceLock<tokio::sync::mpsc::Sender<SysMsg>>,
    /// Serialises reconfiguration (start and reloads).
    configuring: Mutex<()>,
}

impl Accounts {
    /// The accounts of `opts` (already checked), with their routes installed.
    pub fn new(opts: &Options) -> Result<Accounts, AccountError> {
        check(opts)?;
        let sys_name = opts
            .system_account
            .clone()
            .unwrap_or_else(|| DEFAULT_SYSTEM_ACCOUNT.to_string());
        let global = Arc::new(Account::new(GLOBAL_ACCOUNT, AccountConfig::default()));
        let system = match opts.accounts.iter().find(|a| a.name == sys_name) {
            Some(cfg) => Arc::new(Account::new(&sys_name, cfg.clone())),
            None if sys_name == GLOBAL_ACCOUNT => global.clone(),
            None => Arc::new(Account::new(
                &sys_name,
                AccountConfig {
                    name: sys_name.clone(),
                    ..AccountConfig::default()
                },
            )),
        };
        let addr = SocketAddr::from(([0, 0, 0, 0], 0));
        let accounts = Accounts {
            by_name: ArcSwap::from_pointee(HashMap::new()),
            global,
            system,
            internal: Arc::new(ConnShared::new(Kind::Internal, 0, addr)),
            routes: routes::RouteTable::default(),
            system_tx: OnceLock::new(),
            configuring: Mutex::new(()),
        };
        accounts.configure(opts)?;
        Ok(accounts)
    }

    /// Applies a (reloaded) configuration: accounts still configured keep
    /// their subject space and connections; imports are installed afresh
    /// (the route subscriptions removed and added are returned).
    pub fn configure(&self, opts: &Options) -> Result<RouteChanges, AccountError> {
        check(opts)?;
        let _one_at_a_time = self.configuring.lock();
        let old = self.by_name.load_full();
        let mut map: HashMap<String, Arc<Account>> = HashMap::new();
        map.insert(GLOBAL_ACCOUNT.to_string(), self.global.clone());
        map.insert(self.system.name.to_string(), self.system.clone());
        for cfg in &opts.accounts {
            let acc = match map.get(&cfg.name).or_else(|| old.get(&cfg.name)) {
                Some(a) => {
                    if *a.config() != *cfg {
                        a.config.store(Arc::new(cfg.clone()));
                        a.updated
                            .store(crate::time::unix_nanos(), Ordering::Relaxed);
                    }
                    a.clone()
                }
                None => Arc::new(Account::new(&cfg.name, cfg.clone())),
            };
            map.insert(cfg.name.clone(), acc);
        }
        let changes = self
            .routes
            .install(&map, &self.internal, opts, &self.system)?;
        self.by_name.store(Arc::new(map));
        Ok(changes)
    }

    /// The account called `name`, if configured.
    pub fn get(&self, name: &str) -> Option<Arc<Account>> {
        self.by_name.load().get(name).cloned()
    }

    /// `$G`: connections without an account.
    pub fn global(&self) -> &Arc<Account> {
        &self.global
    }

    /// Hands a connection event to the system task (dropped when none runs
    /// or its queue is full: events are advisory, never back-pressure).
    pub fn event(&self, m: SysMsg) {
        if let Some(tx) = self.system_tx.get() {
            let _ = tx.try_send(m);
        }
    }

    /// The account `c` is in: its own once bound, else `$G`.
    pub fn of<'a>(&'a self, c: &'a ConnShared) -> &'a Arc<Account> {
        c.account.get().unwrap_or(&self.global)
    }

    /// The system account (`system_account`, default `$SYS`).
    pub fn system(&self) -> &Arc<Account> {
        &self.system
    }

    /// Every account, sorted by name.
    pub fn list(&self) -> Vec<Arc<Account>> {
        let mut v: Vec<_> = self.by_name.load().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Route subscriptions in the account called `name`.
    pub fn route_subscriptions(&self, name: &str) -> Vec<Arc<crate::conn::Subscription>> {
        self.routes.subscriptions_in(name)
    }

    /// The route a route subscription (by its sid) stands for.
    pub fn route(&self, sid: &[u8]) -> Option<Arc<Route>> {
        self.routes.get(sid)
    }

    /// Adds a route that reloads keep (the system account's request handlers).
    pub fn add_fixed_route(&self, acc: &Arc<Account>, subject: &str, route: Route) {
        self.routes.add_fixed(acc, &self.internal, subject, route);
    }

    /// Subscriptions over all accounts, route subscriptions included.
    pub fn total_subscriptions(&self) -> usize {
        self.list().iter().map(|a| a.sublist.count()).sum()
    }

    /// Subscriptions of clients and links (what `/varz` counts): the
    /// server's own route subscriptions left out.
    pub fn client_subscriptions(&self) -> usize {
        self.total_subscriptions().saturating_sub(self.routes.len())
    }

    /// `/subsz` counters over every account's engine.
    pub fn stats(&self) -> crate::sublist::SublistStats {
        let mut all = crate::sublist::SublistStats::default();
        for a in self.list() {
            all.merge(&a.sublist.stats());
        }
        let routes = u32::try_from(self.routes.len()).unwrap_or(u32::MAX);
        all.num_subscriptions = all.num_subscriptions.saturating_sub(routes);
        let (inserted, removed) = self.routes.churn();
        all.num_inserts = all.num_inserts.saturating_sub(inserted);
        all.num_removes = all.num_removes.saturating_sub(removed);
        all
    }
}
