//! The listener and the server's life: accept, control (stop, reload, lame
//! duck), and graceful shutdown.
//!
//! Owns the order of those steps and the accept loop. It must not parse client
//! input or read config files: a reload arrives here as ready `Options`, and
//! signals are turned into `Control` messages by the binary.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{ServerError, ServerState, VERSION};
use crate::client::{self, ClientShared, CloseReason, ConnStart};
use crate::options::Options;
use crate::protocol::errors::text;

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
    addr: SocketAddr,
    control_tx: mpsc::UnboundedSender<Control>,
    control_rx: mpsc::UnboundedReceiver<Control>,
}

async fn bind_addr(hostport: String) -> Result<(TcpListener, SocketAddr), ServerError> {
    let listener = TcpListener::bind(&hostport)
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
    Ok((listener, addr))
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
        let state = Arc::new(ServerState::new(opts, addr.port())?);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        Ok(Server {
            state,
            listener: Some(listener),
            http,
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

    pub fn control(&self) -> ControlHandle {
        ControlHandle(self.control_tx.clone())
    }

    /// Accepts clients until stopped or lame duck mode ends, then closes every
    /// client after flushing what is queued for it.
    pub async fn run(mut self) {
        self.log_startup();
        if let Some(http) = self.http.take() {
            if let Ok(a) = http.local_addr() {
                tracing::info!("Starting http monitor on {a}");
            }
            let state = self.state.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::monitor::serve(state, http).await {
                    tracing::error!("Monitoring server stopped: {e}");
                }
            });
        }
        tracing::info!(
            "Listening for client connections on {}:{}",
            self.state.opts().host,
            self.addr.port()
        );
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
                        Ok(()) => tracing::info!("Reloaded server configuration"),
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
        self.state.shutting_down.store(true, Ordering::Relaxed);
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
        self.state.lame_duck.store(true, Ordering::Relaxed);
        self.state.rebuild_info(self.addr.port());
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
        if over_limit {
            tracing::error!("{addr} - cid:{cid} - maximum connections exceeded");
            let (_, wr) = stream.into_split();
            tokio::spawn(async move {
                let info = state.info_line(cid, &addr, None);
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
        let nonce = state
            .authenticator()
            .needs_nonce()
            .then(crate::auth::Authenticator::new_nonce);
        if state.tls().is_some() {
            tokio::spawn(accept_tls(state, shared, stream, nonce));
        } else {
            let (rd, wr) = stream.into_split();
            tokio::spawn(client::serve(
                state,
                shared,
                rd,
                wr,
                ConnStart {
                    nonce,
                    info_sent: false,
                },
            ));
        }
    }
}

/// The NATS order for TLS: INFO in plain text, then the client's handshake. A
/// client that answers in plain text is told TLS is required and closed.
async fn accept_tls(
    state: Arc<ServerState>,
    shared: Arc<ClientShared>,
    mut stream: TcpStream,
    nonce: Option<String>,
) {
    use tokio::io::AsyncWriteExt;
    let (Some(acceptor), Some(tls_opts)) = (state.tls().cloned(), state.opts().tls.clone()) else {
        return;
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
                client::serve(
                    state,
                    shared,
                    rd,
                    wr,
                    ConnStart {
                        nonce,
                        info_sent: true,
                    },
                )
                .await;
                return;
            }
            Err(e) => {
                tracing::error!(
                    "{} - cid:{} - TLS handshake error: {e}",
                    shared.addr,
                    shared.cid
                );
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
    state.unregister(&shared, reason);
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
