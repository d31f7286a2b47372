//! The NATS client protocol as bytes: ops, the resumable parser, the encoders for
//! what the server sends, and the exact `-ERR` texts.
//!
//! Owns wire formats only. It must not touch sockets, the interest graph or any
//! server state: everything here is a pure function of bytes in and bytes out, so
//! it can be tested by feeding input one byte at a time.

// Peer and file bytes reach this code: no unchecked indexing or unwrap (tests may).
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]

pub mod connect;
pub mod encode;
pub mod errors;
pub mod info;
pub mod leaf;
pub mod parser;
pub mod server_ops;

pub use connect::ConnectInfo;
pub use errors::ProtocolError;
pub use info::ServerInfo;
pub use leaf::{LeafError, LeafOp, LeafParser, QueueNames};
pub use parser::{Op, Parser, PubArgs};
