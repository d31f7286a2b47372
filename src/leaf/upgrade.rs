//! TLS on leaf links: a remote's client configuration (built at the first dial
//! that needs it, then reused by that remote's dial loop) and the hub's
//! acceptor for `leafnodes { tls }` (built once per distinct configuration, so
//! a reload that changes it takes effect for the next leaf).
//!
//! Owns which configuration a link upgrades with and its handshake timeout.
//! Must not decide when to upgrade (INFO first or TLS first is `solicit`'s and
//! `accept`'s order), nor read or write NATS ops.

use std::sync::Arc;

use rustls::ClientConfig;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::options::{LeafRemote, LeafTls, TlsConfig};
use crate::sync::Mutex;
use crate::tls::{self, TlsError};

/// A remote's TLS: its `tls` block, and the client configuration once built.
pub struct RemoteTls {
    tls: Option<LeafTls>,
    config: Option<Arc<ClientConfig>>,
}

impl RemoteTls {
    /// Nothing is read yet: a remote whose hub never asks for TLS never loads
    /// the system CAs.
    pub fn new(remote: &LeafRemote) -> RemoteTls {
        RemoteTls {
            tls: remote.tls.clone(),
            config: None,
        }
    }

    /// The remote has a `tls` block: upgrade whatever the hub's INFO says.
    pub fn configured(&self) -> bool {
        self.tls.is_some()
    }

    /// `tls { handshake_first: true }`: TLS before the hub's INFO.
    pub fn handshake_first(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.handshake_first)
    }

    fn client_config(&mut self) -> Result<Arc<ClientConfig>, TlsError> {
        if let Some(c) = &self.config {
            return Ok(c.clone());
        }
        // Without a block (the hub required TLS): the system's CAs, as
        // nats-server's default client configuration.
        let c = match &self.tls {
            Some(t) => tls::client_config(&t.config, t.insecure)?,
            None => tls::client_config(&TlsConfig::default(), false)?,
        };
        self.config = Some(c.clone());
        Ok(c)
    }

    /// The client handshake on a dialled connection to `host` (the name or
    /// address in the remote's URL, which the hub's certificate must carry).
    pub async fn connect(
        &mut self,
        host: &str,
        stream: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, TlsError> {
        let config = self.client_config()?;
        let timeout = self
            .tls
            .as_ref()
            .map(|t| tls::handshake_timeout(&t.config))
            .unwrap_or(tls::DEFAULT_HANDSHAKE_TIMEOUT);
        tracing::debug!("Starting TLS leafnode client handshake with {host}");
        tls::connect(&config, host, stream, timeout).await
    }
}

/// The acceptors built so far, by configuration. Several servers may run in
/// one process (tests), each with its own; a handful is plenty.
static ACCEPTORS: Mutex<Vec<(TlsConfig, TlsAcceptor)>> = Mutex::new(Vec::new());
const MAX_ACCEPTORS: usize = 8;

/// The hub's acceptor for `leafnodes { tls }`: the certificate files are read
/// once per configuration, not per leaf.
pub fn hub_acceptor(config: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    if let Some((_, a)) = ACCEPTORS.lock().iter().find(|(c, _)| c == config) {
        return Ok(a.clone());
    }
    let acceptor = tls::acceptor(config)?;
    let mut cache = ACCEPTORS.lock();
    if cache.len() >= MAX_ACCEPTORS {
        cache.remove(0);
    }
    cache.push((config.clone(), acceptor.clone()));
    Ok(acceptor)
}
