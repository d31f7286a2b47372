//! The listener and the server's life: accept, control (stop, reload, lame
//! duck), and graceful shutdown.
//!
//! Owns the order of those steps and the accept loop. It must not parse client
//! input or read config files: a reload arrives here as ready `Options`, and
//! signals are turned into `Control` messages by the binary.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::supervise::supervise;
use crate::client::{self, ConnStart};
use crate::conn::{CloseReason, ConnShared, Kind};
use crate::options::Options;
use crate::protocol::errors::text;
use crate::state::{ServerError, ServerState, VERSION};

/// How many connections the kernel may queue before `accept` (nats-server's
/// 4096; Linux caps it at `net.core.somaxconn`). 128 overflowed under a storm
/// of 500 concurrent handshakes.
const LISTEN_BACKLOG: u32 = 4096;

/// What can be asked of a running server from outside (signals, tests).
#[derive(Debug)]
pub enum Control {
    /// Graceful shutdown: stop accepting, flush, close, return.
    Stop,
    /// Apply a re-read configuration (an invalid one is logged and ignored).
    Reload(Box<Options>),
    /// Lame duck mode: stop accepting, tell clients, close them over time, return.
    LameDuck,
}

/// A cloneable way to send `Control` to a running server.
#[derive(Clone)]
pub struct ControlHandle(mpsc::UnboundedSender<Control>);

impl ControlHandle {
    pub fn stop(&self) {
        let _ = self.0.send(Control::Stop);
    }
    pub fn reload(&self, opts: Options) {
        let _ = self.0.send(Control::Reload(Box::new(opts)));
    }
    pub fn lame_duck(&self) {
        let _ = self.0.send(Control::LameDuck);
    }
}

/// A bound server, ready to run.
pub struct Server {
    pub state: Arc<ServerState>,
    listener: Option<TcpListener>,
    http: Option<TcpListener>,
    /// The leaf-node port, when `leafnodes { port }` is set.
    leaf: Option<TcpListener>,
    addr: SocketAddr,
    control_tx: mpsc::UnboundedSender<Control>,
    control_rx: mpsc::UnboundedReceiver<Control>,
}

async fn bind_addr(hostport: String) -> Result<(TcpListener, SocketAddr), ServerError> {
    let err = |source| ServerError::Listen {
        addr: hostport.clone(),
        source,
    };
    let mut last = None;
    for addr in tokio::net::lookup_host(&hostport).await.map_err(err)? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(err)?;
        socket.set_reuseaddr(true).map_err(err)?;
        if let Err(e) = socket.bind(addr) {
            last = Some(e);
            continue;
        }
        match socket.listen(LISTEN_BACKLOG) {
            Ok(listener) => {
                let bound = listener.local_addr().map_err(err)?;
                return Ok((listener, bound));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address to bind")
    })))
}

/// The monitoring server, passed in by the binary (or a test) so the
/// lifecycle does not depend on it: given the shared state and the bound
/// monitoring listener (`None` without `-m`: it still answers the system
/// account's requests), it serves until the process ends.
pub trait Monitor:
    FnOnce(Arc<ServerState>, Option<TcpListener>) -> Self::Serve + Send + 'static
{
    type Serve: Future<Output = std::io::Result<()>> + Send + 'static;
}

impl<F, Fut> Monitor for F
where
    F: FnOnce(Arc<ServerState>, Option<TcpListener>) -> Fut + Send + 'static,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    type Serve = Fut;
}

impl Server {
    /// Binds the client listener (port 0 picks a free one) and, when configured,
    /// the monitoring listener.
    pub async fn bind(opts: Options) -> Result<Server, ServerError> {
        let (listener, addr) = bind_addr(format!("{}:{}", opts.host, opts.port)).await?;
        let http = match opts.http_port {
            Some(port) => Some(bind_addr(format!("{}:{}", opts.http_host, port)).await?.0),
            None => None,
        };
        let leaf = match opts.leafnodes.as_ref().and_then(|l| l.port.map(|p| (l, p))) {
            Some((l, port)) => Some(bind_addr(format!("{}:{}", l.host, port)).await?.0),
            None => None,
        };
        let state = Arc::new(ServerState::new(opts, addr.port())?);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        Ok(Server {
            state,
            listener: Some(listener),
            http,
            leaf,
            addr,
            control_tx,
            control_rx,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The monitoring address, when monitoring is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The leaf-node listener's address, when listening.
    pub fn leaf_addr(&self) -> Option<SocketAddr> {
        self.leaf.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn control(&self) -> ControlHandle {
        ControlHandle(self.control_tx.clone())
    }

    /// Accepts clients until stopped or lame duck mode ends, then closes every
    /// client after flushing what is queued for it. Without a monitor the
    /// monitoring port (if configured) is bound but not served.
    pub async fn run(self) {
        self.run_inner(None::<fn(Arc<ServerState>, Option<TcpListener>) -> NoMonitor>)
            .await
    }

    /// As [`run`](Self::run), serving `monitor` on the monitoring listener.
    pub async fn run_with_monitor<M: Monitor>(self, monitor: M) {
        self.run_inner(Some(monitor)).await
    }

    async fn run_inner<M: Monitor>(mut self, monitor: Option<M>) {
        self.log_startup();
        super::os::spawn_memory_return(self.state.clone());
        if let Some(monitor) = monitor {
            let http = self.http.take();
            if let Some(a) = http.as_ref().and_then(|h| h.local_addr().ok()) {
                tracing::info!("Starting http monitor on {a}");
            }
            let serve = monitor(self.state.clone(), http);
            tokio::spawn(async move {
                if let Err(e) = serve.await {
                    tracing::error!("Monitoring server stopped: {e}");
                }
            });
        }
        tracing::info!(
            "Listening for client connections on {}:{}",
            self.state.opts().host,
            self.addr.port()
        );
        if let Some(leaf) = self.leaf.take() {
            if let Ok(a) = leaf.local_addr() {
                tracing::info!("Listening for leafnode connections on {a}");
            }
            tokio::spawn(accept_leafs(self.state.clone(), leaf));
        }
        crate::leaf::spawn_remotes(&self.state);
        tracing::info!("Server is ready");
        let Some(listener) = self.listener.take() else {
            return;
        };
        let lame_duck = loop {
            tokio::select! {
                c = self.control_rx.recv() => match c {
                    None | Some(Control::Stop) => break false,
                    Some(Control::LameDuck) => break true,
                    Some(Control::Reload(opts)) => match self.state.apply_reload(*opts) {
                        Ok(()) => {
                            crate::leaf::reload_remotes(&self.state);
                            tracing::info!("Reloaded server configuration")
                        }
                        Err(e) => tracing::error!("Failed to reload server configuration: {e}"),
                    },
                },
                r = listener.accept() => match r {
                    Ok((stream, addr)) => self.accept(stream, addr),
                    Err(e) => {
                        tracing::error!("Error accepting client connection: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        };
        drop(listener);
        if lame_duck {
            self.lame_duck().await;
        }
        self.state.set_shutting_down();
        for link in self.state.leafs.list() {
            link.conn.close(CloseReason::ServerShutdown, None);
        }
        shutdown_clients(&self.state).await;
        tracing::info!("Server Exiting..");
    }

    fn log_startup(&self) {
        let opts = self.state.opts();
        tracing::info!("Starting nats-server (natrium)");
        tracing::info!("  Version:  {}", VERSION);
        tracing::info!(
            "  Name:     {}",
            opts.server_name.as_deref().unwrap_or(&self.state.server_id)
        );
        tracing::info!("  ID:       {}", self.state.server_id);
        if let Some(cfg) = &opts.config_file {
            tracing::info!("Using configuration file: {}", cfg.display());
        }
    }

    /// Tells every client (INFO with `ldm`), waits the grace period, then closes
    /// clients spread over `lame_duck_duration`. Commands still work meanwhile,
    /// except `Stop`, which ends it early.
    async fn lame_duck(&mut self) {
        let (grace, duration) = {
            let o = self.state.opts();
            (o.lame_duck_grace_period, o.lame_duck_duration)
        };
        tracing::info!("Entering lame duck mode, stop accepting new clients");
        self.state.set_lame_duck();
        for c in self.state.clients() {
            let info = self.state.info_line(c.cid, &c.addr, None);
            c.out.send_now(&info);
        }
        if self.wait_or_stop(grace).await {
            return;
        }
        let clients = self.state.clients();
        if clients.is_empty() {
            return;
        }
        let step = duration / clients.len() as u32;
        tracing::info!(
            "Closing {} existing clients over {:?}",
            clients.len(),
            duration
        );
        for c in clients {
            c.close(CloseReason::LameDuck, None);
            if self.wait_or_stop(step).await {
                return;
            }
        }
    }

    /// Sleeps `d` unless a `Stop` arrives first (returns true then).
    async fn wait_or_stop(&mut self, d: Duration) -> bool {
        let sleep = tokio::time::sleep(d);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return false,
                c = self.control_rx.recv() => match c {
                    None | Some(Control::Stop) => return true,
                    Some(Control::Reload(opts)) => {
                        if let Err(e) = self.state.apply_reload(*opts) {
                            tracing::error!("Failed to reload server configuration: {e}");
                        }
                    }
                    Some(Control::LameDuck) => {}
                }
            }
        }
    }

    fn accept(&self, stream: TcpStream, addr: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let state = self.state.clone();
        let conn = Arc::new(ConnShared::new(Kind::Client, state.next_cid(), addr));
        if !state.register(&conn) {
            tracing::error!("{} maximum connections exceeded", conn.log());
            refuse(state, conn, stream, CloseReason::MaxConnectionsExceeded);
            return;
        }
        tracing::debug!("{} Client connection created", conn.log());
        let nonce = if state.authenticator().needs_nonce() {
            match crate::auth::Authenticator::new_nonce() {
                Ok(n) => Some(n),
                Err(e) => {
                    // Fail closed: without a nonce nkey sign-in is replayable.
                    tracing::error!("{} refused: {e}", conn.log());
                    conn.out.close_with(CloseReason::ServerShutdown, None);
                    state.unregister(&conn, CloseReason::ServerShutdown);
                    return;
                }
            }
        } else {
            None
        };
        let task_state = state.clone();
        let task_conn = conn.clone();
        if state.tls().is_some() {
            supervise(
                state,
                conn,
                accept_tls(task_state, task_conn, stream, nonce),
            );
        } else {
            let (rd, wr) = stream.into_split();
            let wr = conn.out.plain(wr);
            let start = ConnStart {
                nonce,
                info_sent: false,
            };
            supervise(
                state,
                conn,
                client::serve(task_state, task_conn, rd, wr, start),
            );
        }
    }
}

/// Accepts leaf connections until shutdown; each runs on its own task.
async fn accept_leafs(state: Arc<ServerState>, listener: TcpListener) {
    while !state.is_shutting_down() {
        match listener.accept().await {
            Ok((stream, addr)) => {
                tokio::spawn(crate::leaf::serve_accepted(state.clone(), stream, addr));
            }
            Err(e) => {
                tracing::error!("Error accepting leafnode connection: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// A stand-in monitor type for [`Server::run`] (never called).
type NoMonitor = std::future::Ready<std::io::Result<()>>;

/// Over `max_connections`: INFO, the -ERR, close (as nats-server); the
/// connection was never registered.
fn refuse(state: Arc<ServerState>, conn: Arc<ConnShared>, stream: TcpStream, reason: CloseReason) {
    let (_, wr) = stream.into_split();
    tokio::spawn(async move {
        let info = state.info_line(conn.cid, &conn.addr, None);
        conn.out.send_now(&info);
        conn.out.close_with(reason, Some(text::MAX_CONNECTIONS));
        let deadline = state.opts().write_deadline;
        crate::conn::outbound::run_writer(&conn.out, wr, deadline).await;
    });
}

/// The NATS order for TLS: INFO in plain text, then the client's handshake. A
/// client that answers in plain text is told TLS is required and closed.
/// Returns how the connection ended; the supervisor unregisters it.
async fn accept_tls(
    state: Arc<ServerState>,
    shared: Arc<ConnShared>,
    mut stream: TcpStream,
    nonce: Option<String>,
) -> client::Ended {
    use tokio::io::AsyncWriteExt;
    let (Some(acceptor), Some(tls_opts)) = (state.tls().cloned(), state.opts().tls.clone()) else {
        return CloseReason::TlsHandshakeError.into();
    };
    let timeout = crate::tls::handshake_timeout(&tls_opts);
    let info = state.info_line(shared.cid, &shared.addr, nonce.as_deref());
    let mut first = [0u8; 1];
    let peeked = async {
        stream.write_all(&info).await?;
        stream.peek(&mut first).await
    };
    let reason = match tokio::time::timeout(timeout, peeked).await {
        Ok(Ok(1)) if first[0] == 0x16 => match crate::tls::accept(&acceptor, stream, timeout).await
        {
            Ok(tls) => {
                let (rd, wr) = tokio::io::split(tls);
                let start = ConnStart {
                    nonce,
                    info_sent: true,
                };
                return client::serve(state, shared, rd, wr, start).await;
            }
            Err(e) => {
                tracing::error!("{} TLS handshake error: {e}", shared.log());
                CloseReason::TlsHandshakeError
            }
        },
        Ok(Ok(n)) if n > 0 => {
            let mut line = Vec::new();
            crate::protocol::encode::err_line(&mut line, text::TLS_REQUIRED);
            let _ = tokio::time::timeout(timeout, stream.write_all(&line)).await;
            CloseReason::TlsRequired
        }
        Ok(_) => CloseReason::ClientClosed,
        Err(_) => CloseReason::TlsHandshakeError,
    };
    shared.out.close_with(reason, None);
    reason.into()
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
