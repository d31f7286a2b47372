//! natrium: a message server speaking the NATS client protocol.
//!
//! Modules are listed in the order bytes flow through the server: subjects are
//! validated, the interest graph (`sublist`) is matched, ops are parsed
//! (`protocol`), clients read and write (`client`), and the server owns the accept
//! loop, registry and lifecycle (`server`).

pub mod auth;
pub mod client;
pub mod config;
pub mod logging;
pub mod monitor;
pub mod options;
pub use natrium_proto as protocol;
pub mod server;
pub mod subject;
pub mod sublist;
pub mod tls;
