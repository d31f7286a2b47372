//! One client connection: its shared handle (what publishers on other
//! connections touch), its subscriptions, its reader and its writer.
//!
//! Owns per-connection state and the per-connection tasks. It must not own
//! server-wide state (registry, limits, INFO): that lives in `server` and is read
//! through `ServerState`.

mod deliver;
pub mod outbound;
mod readbuf;
mod reader;

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::Notify;

pub use outbound::{CloseReason, Outbound};
pub use reader::serve;

/// What other connections may touch of a client: its outbound queue, the flags
/// publishers need to deliver to it, and counters for monitoring.
pub struct ClientShared {
    pub cid: u64,
    pub addr: SocketAddr,
    pub start: SystemTime,
    pub out: Outbound,
    /// Negotiated in CONNECT; publishers strip headers for clients without them.
    pub headers: AtomicBool,
    /// Wakes the reader when someone else closes this connection.
    pub kill: Notify,
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub num_subs: AtomicU64,
    /// CONNECT `name`, `lang`, `version`, set once.
    pub meta: Mutex<ClientMeta>,
    /// Unix nanoseconds of the last op read.
    pub last_activity: AtomicU64,
}

/// Descriptive fields from CONNECT, for `/connz`.
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    pub name: String,
    pub lang: String,
    pub version: String,
}

impl ClientShared {
    pub fn new(cid: u64, addr: SocketAddr) -> Self {
        ClientShared {
            cid,
            addr,
            start: SystemTime::now(),
            out: Outbound::new(),
            headers: AtomicBool::new(false),
            kill: Notify::new(),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            num_subs: AtomicU64::new(0),
            meta: Mutex::new(ClientMeta::default()),
            last_activity: AtomicU64::new(0),
        }
    }

    /// Closes this connection from outside its reader (slow consumer, shutdown).
    pub fn close(&self, reason: CloseReason, err: Option<&str>) {
        self.out.close_with(reason, err);
        self.kill.notify_one();
    }

    pub fn wants_headers(&self) -> bool {
        self.headers.load(Ordering::Relaxed)
    }
}

/// One SUB: what the interest graph holds and what delivery needs.
pub struct Subscription {
    pub client: Arc<ClientShared>,
    pub subject: Bytes,
    pub queue: Option<Bytes>,
    pub sid: Bytes,
    /// `UNSUB <sid> <max>`: deliveries allowed in total; 0 = unlimited.
    pub max: AtomicU64,
    pub delivered: AtomicU64,
}

impl Subscription {
    /// Counts one delivery against an auto-unsubscribe limit. Returns `None` if the
    /// limit is already used up, else whether this delivery is the last one.
    pub fn take_delivery(&self) -> Option<bool> {
        let max = self.max.load(Ordering::Relaxed);
        if max == 0 {
            return Some(false);
        }
        let n = self.delivered.fetch_add(1, Ordering::Relaxed) + 1;
        if n > max {
            None
        } else {
            Some(n == max)
        }
    }

    /// An auto-unsubscribed subscription whose limit is reached.
    pub fn is_expired(&self) -> bool {
        let max = self.max.load(Ordering::Relaxed);
        max != 0 && self.delivered.load(Ordering::Relaxed) >= max
    }
}

/// The handle the interest graph stores: pointer identity, cheap to clone.
#[derive(Clone)]
pub struct SubRef(pub Arc<Subscription>);

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for SubRef {}
impl Hash for SubRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state)
    }
}
