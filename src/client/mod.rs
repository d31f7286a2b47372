//! The client kind of connection: what an application's NATS connection
//! speaks (INFO/CONNECT/PUB/HPUB/SUB/UNSUB/PING/PONG in, MSG/HMSG out).
//!
//! Split by concern: `read` (the read loop, keep-alive, close), `ops` (one
//! handler per client op), `handshake` (authentication and its re-check on
//! reload), `auth` (the connection's permission state), `deliver` (fan-out
//! into subscribers' outbound queues), `message` (the published message it
//! fans out). It builds on `conn` (the machinery all
//! kinds share) and `state` (what all connections share); it must not import
//! `server` or `monitor`.

mod auth;
mod deliver;
mod handshake;
mod message;
mod ops;
mod read;

pub use auth::ConnAuth;
pub use deliver::{Fanout, Message};
pub use read::{serve, ConnStart, Ended};

#[cfg(test)]
pub(crate) use ops::FAULT_PANIC_SUBJECT;

#[cfg(test)]
mod idle_size_tests;
