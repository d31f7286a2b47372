//! The server's life: the listener and accept loop, the control channel
//! (stop, reload, lame duck), the supervision of connection tasks, and
//! graceful shutdown.
//!
//! Top of the layers: it may use `client` (to run connections) and `state`
//! (what they share). Nothing below imports it, and it does not import
//! `monitor`: the binary passes the monitor in (`Server::run_with_monitor`).

mod lifecycle;
mod os;
mod supervise;

pub use crate::state::{ServerError, ServerState, VERSION};
pub use lifecycle::{Control, ControlHandle, Server};
pub use os::{fd_limit, raise_fd_limit};
