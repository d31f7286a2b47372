//! The leaf-node kind of connection: links between this server and other NATS
//! servers, as nats-server's leaf nodes. `solicit` dials the hubs configured in
//! `leafnodes { remotes }` (this server is the leaf), `accept` takes links on the
//! leaf port (this server is the hub), `link` runs a link once its handshake is
//! done, either way. `upgrade` holds the TLS configurations of links, `creds`
//! the nkey/creds-file signatures a leaf proves itself with.
//!
//! Builds on `conn` (outbound, writer, read buffers), `state` (sublist, link
//! registry and interest propagation), `tls` and `client`'s fan-out; must not
//! import `server` or `monitor`. No compression, no websocket links.

mod accept;
pub mod creds;
mod handshake;
mod link;
mod solicit;
mod upgrade;

pub use accept::serve_accepted;
pub use link::{lds_subject, LinkEnd};
pub use solicit::{reload_remotes, spawn_remotes};

/// Why a link could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LeafError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("connection closed during the handshake")]
    Closed,
    #[error("expected {expected}, got something else")]
    Unexpected { expected: &'static str },
    #[error(transparent)]
    Protocol(#[from] crate::protocol::LeafError),
    #[error("malformed {0} JSON")]
    Json(&'static str),
    #[error("refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Creds(#[from] creds::CredsError),
}
