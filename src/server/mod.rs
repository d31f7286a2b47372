//! The server: listener, accept loop, client registry, cached INFO, server-wide
//! counters and graceful shutdown.
//!
//! Owns everything shared by all connections. It must not parse client input or
//! deliver messages (that is `client`); connections reach it only through
//! `ServerState`'s methods.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, Guard};
use crossbeam_utils::CachePadded;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::client::{self, ClientShared, CloseReason, ConnSnapshot, SubRef};
use crate::options::Options;
use crate::protocol::errors::text;
use crate::protocol::ServerInfo;
use crate::sublist::Sublist;

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
    pub sublist: Sublist<SubRef>,
    pub server_id: String,
    info_prefix: ArcSwap<Vec<u8>>,
    clients: Mutex<HashMap<u64, Arc<ClientShared>>>,
    next_cid: AtomicU64,
    batch_ids: CachePadded<AtomicU64>,
    pub slow_consumers: CachePadded<AtomicU64>,
    pub total_connections: AtomicU64,
    pub closed_totals: Totals,
    pub start: SystemTime,
    shutting_down: AtomicBool,
    /// The last `MAX_CLOSED` closed connections, oldest first, for `/connz`.
    closed: Mutex<VecDeque<ConnSnapshot>>,
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
    fn new(opts: Options, port: u16) -> Self {
        let server_id = make_server_id();
        let state = ServerState {
            max_pending: AtomicUsize::new(opts.max_pending),
            opts: ArcSwap::from_pointee(opts),
            sublist: Sublist::new(),
            server_id,
            info_prefix: ArcSwap::from_pointee(Vec::new()),
            clients: Mutex::new(HashMap::new()),
            next_cid: AtomicU64::new(1),
            batch_ids: CachePadded::new(AtomicU64::new(1)),
            slow_consumers: CachePadded::new(AtomicU64::new(0)),
            total_connections: AtomicU64::new(0),
            closed_totals: Totals::default(),
            start: SystemTime::now(),
            shutting_down: AtomicBool::new(false),
            closed: Mutex::new(VecDeque::new()),
        };
        state.rebuild_info(port);
        state
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
            auth_required: false,
            tls_required: false,
            tls_verify: false,
            tls_available: false,
            max_payload: o.max_payload,
            nonce: None,
            connect_urls: Vec::new(),
            ldm: false,
        };
        self.info_prefix.store(Arc::new(info.prefix()));
    }

    /// The INFO line for one new client.
    pub fn info_line(&self, cid: u64, addr: &SocketAddr) -> Vec<u8> {
        ServerInfo::line_for_client(&self.info_prefix.load(), cid, &addr.ip().to_string())
    }

    pub fn note_slow_consumer(&self, client: &ClientShared) {
        self.slow_consumers.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            "{} - cid:{} - Slow Consumer Detected",
            client.addr,
            client.cid
        );
    }

    /// Live connections, for monitoring and shutdown.
    pub fn clients(&self) -> Vec<Arc<ClientShared>> {
        self.lock_clients().values().cloned().collect()
    }

    pub fn num_connections(&self) -> usize {
        self.lock_clients().len()
    }

    fn lock_clients(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ClientShared>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closed connections, oldest first.
    pub fn closed_connections(&self) -> Vec<ConnSnapshot> {
        let closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
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
            let st = client.out.lock();
            c.out_msgs += st.out_msgs;
            c.out_bytes += st.out_bytes;
        }
        c
    }

    /// True once shutdown has begun (health checks report it).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Called by a connection's task when it has fully closed.
    pub fn unregister(&self, client: &ClientShared, reason: CloseReason) {
        self.lock_clients().remove(&client.cid);
        let mut snap = client.snapshot(true);
        snap.stop = Some(SystemTime::now());
        snap.reason = Some(reason.as_str());
        {
            let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
            if closed.len() >= MAX_CLOSED {
                closed.pop_front();
            }
            closed.push_back(snap);
        }
        let t = &self.closed_totals;
        t.in_msgs
            .fetch_add(client.in_msgs.load(Ordering::Relaxed), Ordering::Relaxed);
        t.in_bytes
            .fetch_add(client.in_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
        let st = client.out.lock();
        t.out_msgs.fetch_add(st.out_msgs, Ordering::Relaxed);
        t.out_bytes.fetch_add(st.out_bytes, Ordering::Relaxed);
        drop(st);
        tracing::debug!(
            "{} - cid:{} - Client connection closed: {}",
            client.addr,
            client.cid,
            reason.as_str()
        );
    }
}

/// Unix time in nanoseconds, for activity stamps.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn make_server_id() -> String {
    // 56 chars from [A-Z2-7], like an nkey public key; unique enough per process.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut x = unix_nanos() ^ ((std::process::id() as u64) << 32) | 1;
    let mut id = String::with_capacity(56);
    id.push('N');
    for _ in 1..56 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        id.push(ALPHABET[(x % 32) as usize] as char);
    }
    id
}

/// A running server: its address and the switch to stop it.
pub struct Server {
    pub state: Arc<ServerState>,
    listener: TcpListener,
    addr: SocketAddr,
    stop_tx: watch::Sender<bool>,
}

/// Stops a running server from another task (signals, tests).
#[derive(Clone)]
pub struct StopHandle(watch::Sender<bool>);

impl StopHandle {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl Server {
    /// Binds the listener (port 0 picks a free one) and prepares the state.
    pub async fn bind(opts: Options) -> Result<Server, ServerError> {
        let hostport = format!("{}:{}", opts.host, opts.port);
        let listener =
            TcpListener::bind(&hostport)
                .await
                .map_err(|source| ServerError::Listen {
                    addr: hostport.clone(),
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServerError::Listen {
                addr: hostport,
                source,
            })?;
        let state = Arc::new(ServerState::new(opts, addr.port()));
        let (stop_tx, _) = watch::channel(false);
        Ok(Server {
            state,
            listener,
            addr,
            stop_tx,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop_tx.clone())
    }

    /// Accepts clients until stopped, then flushes and closes every client.
    pub async fn run(self) {
        let opts = self.state.opts();
        tracing::info!("Starting nats-server (natrium)");
        tracing::info!("  Version:  {}", VERSION);
        tracing::info!(
            "  Name:     {}",
            opts.server_name.as_deref().unwrap_or(&self.state.server_id)
        );
        tracing::info!("  ID:       {}", self.state.server_id);
        tracing::info!(
            "Listening for client connections on {}:{}",
            opts.host,
            self.addr.port()
        );
        tracing::info!("Server is ready");
        drop(opts);
        let mut stop_rx = self.stop_tx.subscribe();
        loop {
            tokio::select! {
                _ = stop_rx.changed() => break,
                r = self.listener.accept() => match r {
                    Ok((stream, addr)) => self.accept(stream, addr),
                    Err(e) => {
                        tracing::error!("Error accepting client connection: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
        drop(self.listener);
        self.state.shutting_down.store(true, Ordering::Relaxed);
        shutdown_clients(&self.state).await;
        tracing::info!("Server Exiting..");
    }

    fn accept(&self, stream: TcpStream, addr: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let state = self.state.clone();
        let cid = state.next_cid.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(ClientShared::new(cid, addr));
        let over_limit = {
            let mut clients = state.lock_clients();
            if clients.len() >= state.opts().max_connections {
                true
            } else {
                clients.insert(cid, shared.clone());
                false
            }
        };
        let (rd, wr) = stream.into_split();
        if over_limit {
            tracing::error!("{addr} - cid:{cid} - maximum connections exceeded");
            tokio::spawn(async move {
                let info = state.info_line(cid, &addr);
                shared.out.send_now(&info);
                shared.out.close_with(
                    CloseReason::MaxConnectionsExceeded,
                    Some(text::MAX_CONNECTIONS),
                );
                let deadline = state.opts().write_deadline;
                client::outbound::run_writer(&shared.out, wr, deadline).await;
            });
            return;
        }
        state.total_connections.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("{addr} - cid:{cid} - Client connection created");
        tokio::spawn(client::serve(state, shared, rd, wr));
    }
}

/// Closes every client after flushing what is queued for it; waits a bounded time.
async fn shutdown_clients(state: &Arc<ServerState>) {
    for c in state.clients() {
        c.close(CloseReason::ServerShutdown, None);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while state.num_connections() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
