//! The state every connection needs and nothing owns alone: options
//! (reloadable), the matching engine, the authenticator, the connection
//! registry, the cached INFO and server-wide counters.
//!
//! Sits below the connection kinds (`client`) and the lifecycle (`server`):
//! it may use `conn` (the handles it registers) but must not import `client`,
//! `server` or `monitor`, and must not parse input or deliver messages.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, Guard};
use crossbeam_utils::CachePadded;

use tokio::sync::watch;

mod leafs;
mod remotes;

pub use leafs::{interest_key, sub_id, InterestKey, LeafLink, LeafLinks, LeafTraffic, SubId};
pub use remotes::{RemoteRun, Remotes};

use crate::account::Accounts;
use crate::auth::Authenticator;
use crate::conn::{CloseReason, ConnShared, ConnSnapshot};
use crate::options::{Options, DEFAULT_SYSTEM_ACCOUNT};
use crate::protocol::ServerInfo;
use crate::sync::{Mutex, MutexGuard};
use crate::time::unix_nanos;

/// The version reported in INFO and `-v`: the nats-server line we are compatible with.
pub const VERSION: &str = "2.10.0";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("config reload: {0} cannot be changed while running")]
    ReloadImmutable(&'static str),
    #[error("config reload: max_payload {payload} is over max_pending {pending}")]
    ReloadInvalid { payload: usize, pending: usize },
    #[error(transparent)]
    Account(#[from] crate::account::AccountError),
    #[error("cannot make a server id: {0}")]
    Random(#[from] crate::rand::RandError),
}

/// Counters summed over closed connections (live ones are summed on demand).
#[derive(Default)]
pub struct Totals {
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub out_msgs: AtomicU64,
    pub out_bytes: AtomicU64,
}

/// State shared by every connection task.
pub struct ServerState {
    opts: ArcSwap<Options>,
    /// Read on every delivery: kept outside `opts` so it costs one relaxed load.
    max_pending: AtomicUsize,
    /// Every account, each with its own matching engine.
    pub accounts: Accounts,
    pub server_id: String,
    info_prefix: ArcSwap<Vec<u8>>,
    clients: Mutex<HashMap<u64, Arc<ConnShared>>>,
    next_cid: AtomicU64,
    batch_ids: CachePadded<AtomicU64>,
    pub slow_consumers: CachePadded<AtomicU64>,
    /// Connection tasks that panicked (a bug; peer input must never cause
    /// one). The supervisor cleans up after each; tests and fuzzers assert 0.
    pub connection_panics: AtomicU64,
    /// Busiest subjects among sampled publishes (the dashboard's list).
    pub top_subjects: crate::conn::sample::TopSubjects,
    pub total_connections: AtomicU64,
    pub closed_totals: Totals,
    pub start: SystemTime,
    shutting_down: AtomicBool,
    auth: ArcSwap<Authenticator>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    reload_tx: watch::Sender<u64>,
    /// Lame duck mode: clients are being asked to move elsewhere.
    lame_duck: AtomicBool,
    /// Bumped on every applied reload; readers refresh their limits when it moves.
    config_gen: AtomicU64,
    /// Unix nanoseconds when the options in force were loaded (start or the
    /// last applied reload): `/varz` `config_load_time`.
    config_loaded: AtomicU64,
    /// The client port actually bound (INFO needs it after a reload).
    port: AtomicU64,
    /// The last `MAX_CLOSED` closed connections, oldest first, for `/connz`.
    closed: Mutex<VecDeque<ConnSnapshot>>,
    /// Leaf links up now and the interest each has been told about.
    pub leafs: LeafLinks,
}

/// Closed connections kept for `/connz?state=closed`, as nats-server.
pub const MAX_CLOSED: usize = 10_000;

/// Server-wide message and byte counts (live connections plus closed ones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
}

impl ServerState {
    pub fn new(opts: Options, port: u16) -> Result<Self, ServerError> {
        let server_id = make_server_id()?;
        let auth = Authenticator::from_options(&opts)?;
        warn_plaintext(&auth);
        let accounts = Accounts::new(&opts)?;
        let tls = match &opts.tls {
            Some(t) => Some(crate::tls::acceptor(t)?),
            None => None,
        };
        let (reload_tx, _) = watch::channel(0);
        let state = ServerState {
            auth: ArcSwap::from_pointee(auth),
            tls,
            reload_tx,
            max_pending: AtomicUsize::new(opts.max_pending),
            opts: ArcSwap::from_pointee(opts),
            accounts,
            server_id,
            info_prefix: ArcSwap::from_pointee(Vec::new()),
            clients: Mutex::new(HashMap::new()),
            next_cid: AtomicU64::new(1),
            batch_ids: CachePadded::new(AtomicU64::new(1)),
            slow_consumers: CachePadded::new(AtomicU64::new(0)),
            connection_panics: AtomicU64::new(0),
            top_subjects: Default::default(),
            total_connections: AtomicU64::new(0),
            closed_totals: Totals::default(),
            start: SystemTime::now(),
            shutting_down: AtomicBool::new(false),
            lame_duck: AtomicBool::new(false),
            config_gen: AtomicU64::new(0),
            config_loaded: AtomicU64::new(unix_nanos()),
            port: AtomicU64::new(port as u64),
            closed: Mutex::new(VecDeque::new()),
            leafs: LeafLinks::default(),
        };
        state.rebuild_info(port);
        Ok(state)
    }

    /// The current authenticator (swapped on reload).
    pub fn authenticator(&self) -> Arc<Authenticator> {
        self.auth.load_full()
    }

    /// The TLS acceptor when TLS is configured (fixed at start).
    pub fn tls(&self) -> Option<&tokio_rustls::TlsAcceptor> {
        self.tls.as_ref()
    }

    /// A receiver that changes on every applied reload (readers re-check their
    /// user and limits, even when idle).
    pub fn subscribe_reload(&self) -> watch::Receiver<u64> {
        self.reload_tx.subscribe()
    }

    /// Current options (cheap; swapped whole on reload).
    pub fn opts(&self) -> Guard<Arc<Options>> {
        self.opts.load()
    }

    pub fn max_pending(&self) -> usize {
        self.max_pending.load(Ordering::Relaxed)
    }

    /// A fresh id for one read batch (used to wake each writer once per batch).
    pub fn next_batch_id(&self) -> u64 {
        self.batch_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Which reload readers have applied: compare with their own copy per batch.
    pub fn config_gen(&self) -> u64 {
        self.config_gen.load(Ordering::Acquire)
    }

    /// Applies a reloaded configuration: limits, log-visible names, INFO. The
    /// listen address cannot change while running (as nats-server).
    pub fn apply_reload(&self, new: Options) -> Result<(), ServerError> {
        let old = self.opts();
        if new.host != old.host || (new.port != old.port && new.port != 0 && old.port != 0) {
            return Err(ServerError::ReloadImmutable("listen address"));
        }
        let leaf_listen = |o: &Options| {
            o.leafnodes
                .as_ref()
                .and_then(|l| l.port.map(|p| (l.host.clone(), p)))
        };
        if leaf_listen(&new) != leaf_listen(&old) {
            return Err(ServerError::ReloadImmutable("leafnodes listen address"));
        }
        if new.max_payload > new.max_pending {
            return Err(ServerError::ReloadInvalid {
                payload: new.max_payload,
                pending: new.max_pending,
            });
        }
        let sys = new
            .system_account
            .as_deref()
            .unwrap_or(DEFAULT_SYSTEM_ACCOUNT);
        if *self.accounts.system().name != *sys {
            return Err(ServerError::ReloadImmutable("system_account"));
        }
        let auth = Authenticator::from_options(&new)?;
        crate::account::check(&new)?;
        warn_plaintext(&auth);
        let changes = self.accounts.configure(&new)?;
        for (acc, sub) in &changes.removed {
            self.leafs.changed_in(acc, sub, false);
        }
        for (acc, sub) in &changes.added {
            self.leafs.changed_in(acc, sub, true);
        }
        let mut new = new;
        new.port = old.port;
        drop(old);
        self.auth.store(Arc::new(auth));
        self.max_pending.store(new.max_pending, Ordering::Relaxed);
        self.opts.store(Arc::new(new));
        self.rebuild_info(self.port.load(Ordering::Relaxed) as u16);
        self.config_loaded.store(unix_nanos(), Ordering::Relaxed);
        let gen = self.config_gen.fetch_add(1, Ordering::AcqRel) + 1;
        self.reload_tx.send_replace(gen);
        Ok(())
    }

    /// When the options in force were loaded: at start or by the last reload.
    pub fn config_load_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.config_loaded.load(Ordering::Relaxed))
    }

    /// The client port actually bound.
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed) as u16
    }

    pub fn is_lame_duck(&self) -> bool {
        self.lame_duck.load(Ordering::Relaxed)
    }

    /// Enters lame duck mode: INFO from now on carries `"ldm":true`.
    pub fn set_lame_duck(&self) {
        self.lame_duck.store(true, Ordering::Relaxed);
        self.rebuild_info(self.port());
    }

    /// Shutdown has begun (`/healthz` reports it).
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// A fresh connection id (`cid`), never reused in the server's life.
    pub fn next_cid(&self) -> u64 {
        self.next_cid.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a new connection unless `max_connections` is reached (then
    /// false: the caller refuses it). Counts it in `total_connections`.
    pub fn register(&self, conn: &Arc<ConnShared>) -> bool {
        let mut clients = self.lock_clients();
        if clients.len() >= self.opts().max_connections {
            return false;
        }
        clients.insert(conn.cid, conn.clone());
        drop(clients);
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn rebuild_info(&self, port: u16) {
        let o = self.opts();
        let info = ServerInfo {
            server_id: self.server_id.clone(),
            server_name: o
                .server_name
                .clone()
                .unwrap_or_else(|| self.server_id.clone()),
            version: VERSION.to_string(),
            proto: 1,
            go: "natrium (rust)".to_string(),
            host: o.host.clone(),
            port,
            headers: true,
            auth_required: self.authenticator().auth_required(),
            tls_required: o.tls.is_some(),
            tls_verify: o.tls.as_ref().is_some_and(|t| t.verify),
            tls_available: o.tls.is_some(),
            max_payload: o.max_payload,
            nonce: None,
            connect_urls: Vec::new(),
            ldm: self.is_lame_duck(),
        };
        self.info_prefix.store(Arc::new(info.prefix()));
    }

    /// The INFO line for one new client.
    pub fn info_line(&self, cid: u64, addr: &SocketAddr, nonce: Option<&str>) -> Vec<u8> {
        ServerInfo::line_for_client(&self.info_prefix.load(), cid, &addr.ip().to_string(), nonce)
    }

    /// Counts and logs one slow-consumer cut, as nats-server does at the cut.
    pub fn note_slow_consumer(&self, conn: &ConnShared, reason: CloseReason) {
        self.slow_consumers.fetch_add(1, Ordering::Relaxed);
        if let Some(acc) = conn.account.get() {
            acc.closed.slow_consumers.fetch_add(1, Ordering::Relaxed);
        }
        let why = match reason {
            CloseReason::SlowConsumerWriteDeadline => "WriteDeadline of",
            _ => "MaxPending of",
        };
        tracing::info!("{} Slow Consumer Detected: {why} exceeded", conn.log());
    }

    /// All interest a new leaf link must be told about: every open client's
    /// live subscriptions and what the other links told us (not `link`'s own).
    /// A closing client is skipped: its interest is being removed.
    pub fn interest_for_link(&self, link: &Arc<ConnShared>) -> Vec<(InterestKey, SubId)> {
        let mut keys = Vec::new();
        let account = link.account_name();
        for c in self.clients() {
            if c.account_name() != account || c.out.lock().is_closing() {
                continue;
            }
            let subs = c.subjects.lock();
            keys.extend(
                subs.values()
                    .filter(|s| !s.is_expired())
                    .map(|s| (interest_key(s), sub_id(s))),
            );
        }
        for l in self.leafs.list() {
            if !Arc::ptr_eq(&l.conn, link) && l.conn.account_name() == account {
                keys.extend(l.remote_interest());
            }
        }
        // Imports from this account: its exports' interest crosses too.
        keys.extend(
            self.accounts
                .route_subscriptions(account)
                .iter()
                .map(|s| (interest_key(s), sub_id(s))),
        );
        keys
    }

    /// Live connections, for monitoring and shutdown.
    pub fn clients(&self) -> Vec<Arc<ConnShared>> {
        self.lock_clients().values().cloned().collect()
    }

    pub fn num_connections(&self) -> usize {
        self.lock_clients().len()
    }

    fn lock_clients(&self) -> MutexGuard<'_, HashMap<u64, Arc<ConnShared>>> {
        self.clients.lock()
    }

    /// Closed connections, oldest first.
    pub fn closed_connections(&self) -> Vec<ConnSnapshot> {
        let closed = self.closed.lock();
        closed.iter().cloned().collect()
    }

    /// Totals over the server's life: closed connections plus live ones.
    pub fn counts(&self) -> Counts {
        let t = &self.closed_totals;
        let mut c = Counts {
            in_msgs: t.in_msgs.load(Ordering::Relaxed),
            in_bytes: t.in_bytes.load(Ordering::Relaxed),
            out_msgs: t.out_msgs.load(Ordering::Relaxed),
            out_bytes: t.out_bytes.load(Ordering::Relaxed),
        };
        for client in self.clients() {
            c.in_msgs += client.in_msgs.load(Ordering::Relaxed);
            c.in_bytes += client.in_bytes.load(Ordering::Relaxed);
            let (msgs, bytes) = client.out.lock().out_counts();
            c.out_msgs += msgs;
            c.out_bytes += bytes;
        }
        // As nats-server's totals: every connection kind, leaf links too.
        let l = self.leafs.traffic();
        c.in_msgs += l.in_msgs;
        c.in_bytes += l.in_bytes;
        c.out_msgs += l.out_msgs;
        c.out_bytes += l.out_bytes;
        c
    }

    /// True once shutdown has begun (health checks report it).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Called by a connection's task when it has fully closed.
    pub fn unregister(&self, client: &ConnShared, reason: CloseReason) {
        self.lock_clients().remove(&client.cid);
        let mut snap = client.snapshot(true);
        snap.stop = Some(SystemTime::now());
        snap.reason = Some(reason.as_str());
        if client.kind == crate::conn::Kind::Client && client.account.get().is_some() {
            self.accounts
                .event(crate::account::SysMsg::Disconnect(Box::new(snap.clone())));
        }
        {
            let mut closed = self.closed.lock();
            if closed.len() >= MAX_CLOSED {
                closed.pop_front();
            }
            closed.push_back(snap);
        }
        client.forget_subscriptions();
        let t = &self.closed_totals;
        t.in_msgs
            .fetch_add(client.in_msgs.load(Ordering::Relaxed), Ordering::Relaxed);
        t.in_bytes
            .fetch_add(client.in_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
        let (msgs, bytes) = client.out.lock().out_counts();
        t.out_msgs.fetch_add(msgs, Ordering::Relaxed);
        t.out_bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(acc) = client.account.get() {
            let a = &acc.closed;
            a.in_msgs
                .fetch_add(client.in_msgs.load(Ordering::Relaxed), Ordering::Relaxed);
            a.in_bytes
                .fetch_add(client.in_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
            a.out_msgs.fetch_add(msgs, Ordering::Relaxed);
            a.out_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        tracing::debug!(
            "{} Client connection closed: {}",
            client.log(),
            reason.as_str()
        );
    }
}

/// nats-server's warning, at start and on each reload, for passwords kept in clear.
fn warn_plaintext(auth: &Authenticator) {
    if auth.has_plaintext_passwords() {
        tracing::warn!("Plaintext passwords detected, use nkeys or bcrypt");
    }
}

/// 56 characters from [A-Z2-7] starting with `N`, like an nkey public key:
/// from the OS random source (server ids must not collide across processes).
fn make_server_id() -> Result<String, crate::rand::RandError> {
    let mut raw = [0u8; 55];
    crate::rand::os_fill(&mut raw)?;
    Ok(format!("N{}", crate::rand::text(&raw, crate::rand::BASE32)))
}
