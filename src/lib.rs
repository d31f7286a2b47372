//! natrium: a message server speaking the NATS client protocol.
//!
//! Layers, lowest first; imports only point down (`monitor` reads `state`
//! and `conn` snapshots, and nothing imports it but the binary):
//!
//! 1. foundations: `protocol` (the `natrium-proto` crate), `subject`,
//!    `sublist`, `options`, `config`, `auth`, `tls`, `time`, `rand`, `sync`,
//!    `logging`;
//! 2. `conn`: the machinery every kind of connection shares (handle, kind,
//!    outbound queue and writer, read buffers);
//! 3. `state`: what all connections share (options, matching engine,
//!    authenticator, registry, counters, INFO);
//! 4. `client`: the client kind (read loop, op handlers, handshake, fan-out);
//!    `leaf`: the leaf-node kind (dial, accept, link), on `client`'s fan-out;
//! 5. `server`: listener, accept, supervision, lifecycle; `monitor`: HTTP.

pub mod account;
pub mod auth;
pub mod client;
pub mod config;
pub mod conn;
pub mod leaf;
pub mod logging;
pub mod monitor;
pub mod options;
pub use natrium_proto as protocol;
pub mod rand;
pub mod server;
pub mod state;
pub mod subject;
pub mod sublist;
pub mod sync;
pub mod time;
pub mod tls;
