//! The machinery every kind of connection shares: its shared handle (what
//! publishers on other connections touch), its kind, subscriptions as the
//! interest graph stores them, the bounded outbound queue and its writer, the
//! read buffers, and the per-connection log prefix.
//!
//! Owns per-connection data that others read. It must not know server-wide
//! state (registry, limits, INFO: `state`) nor how any kind parses its ops
//! (`client`, later `leaf`); it imports neither.

mod kind;
pub mod outbound;
mod perms;
pub mod readbuf;
pub mod sample;
mod subscription;

pub use kind::Kind;
pub use perms::SharedPerms;
pub use subscription::{SidMap, SubRef, Subscription};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use outbound::{CloseReason, Delivery, Outbound};

use crate::account::Account;
use crate::sync::Mutex;

/// What other connections may touch of a client: its outbound queue, the flags
/// publishers need to deliver to it, and counters for monitoring.
pub struct ConnShared {
    /// Client, leaf, …: decides how deliveries are encoded and how logs name it.
    pub kind: Kind,
    pub cid: u64,
    pub addr: SocketAddr,
    pub start: SystemTime,
    pub out: Outbound,
    /// Negotiated in CONNECT; publishers strip headers for clients without them.
    pub headers: AtomicBool,
    /// A leaf link's peer `max_payload` (its INFO): larger messages are not
    /// sent across (the peer would close the link). 0 = no limit known.
    pub peer_max_payload: AtomicUsize,
    pub in_msgs: AtomicU64,
    pub in_bytes: AtomicU64,
    pub num_subs: AtomicU64,
    /// CONNECT `name`, `lang`, `version`, set once.
    pub meta: Mutex<ClientMeta>,
    /// Unix nanoseconds of the last op read.
    pub last_activity: AtomicU64,
    /// Round trip of the last server PING, in nanoseconds (0 = not measured yet).
    pub rtt_nanos: AtomicU64,
    /// The user has `allow_responses`: deliveries record reply subjects for it.
    pub allow_responses: AtomicBool,
    /// Deliveries must be checked against the user's deny list (see `auth`).
    pub delivery_filter: AtomicBool,
    /// Permission state publishers consult when the flags above are set.
    pub perms: SharedPerms,
    /// sid → subscription: the connection's one sid map, used by its reader
    /// (SUB/UNSUB), by auto-unsubscribe, and by `/connz?subs=…` and `/subsz`.
    /// Kept after close so the closed record lists them; the strong
    /// references (a cycle through `Subscription::client`) are dropped by
    /// [`ConnShared::forget_subscriptions`] once that record is taken.
    pub subjects: Mutex<SidMap>,
    /// The account it is in: set once, when it authenticates (a client) or
    /// its link is bound (a leaf). Its subscriptions are in that account's
    /// sublist. Only a handle: `conn` never calls into the account.
    pub account: OnceLock<Arc<Account>>,
}

/// One subscription in a [`ConnSnapshot`].
#[derive(Debug, Clone)]
pub struct SubSnapshot {
    pub sid: String,
    pub subject: String,
    pub queue: Option<String>,
    pub msgs: u64,
    pub max: u64,
}

/// A point-in-time copy of one connection, for monitoring. Taking it locks the
/// client's outbound queue once, briefly; delivery is never blocked longer.
#[derive(Debug, Clone)]
pub struct ConnSnapshot {
    pub cid: u64,
    pub ip: String,
    pub port: u16,
    pub start: SystemTime,
    pub last_activity: SystemTime,
    pub rtt: Duration,
    pub pending_bytes: usize,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub subscriptions: u64,
    /// Subscriptions by subject then sid, when asked for.
    pub subs: Vec<SubSnapshot>,
    pub name: String,
    pub lang: String,
    pub version: String,
    /// Its account's name (empty before it authenticated).
    pub account: String,
    /// The authenticated user (empty without auth).
    pub user: String,
    /// Set for closed connections.
    pub stop: Option<SystemTime>,
    pub reason: Option<&'static str>,
}

/// Descriptive fields from CONNECT, for `/connz`.
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    /// The authenticated user (never a secret); empty without auth.
    pub user: String,
    pub name: String,
    pub lang: String,
    pub version: String,
}

impl ConnShared {
    pub fn new(kind: Kind, cid: u64, addr: SocketAddr) -> Self {
        ConnShared {
            kind,
            cid,
            addr,
            start: SystemTime::now(),
            out: Outbound::new(kind),
            headers: AtomicBool::new(false),
            peer_max_payload: AtomicUsize::new(0),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            num_subs: AtomicU64::new(0),
            meta: Mutex::new(ClientMeta::default()),
            last_activity: AtomicU64::new(crate::time::unix_nanos()),
            rtt_nanos: AtomicU64::new(0),
            allow_responses: AtomicBool::new(false),
            delivery_filter: AtomicBool::new(false),
            perms: SharedPerms::default(),
            subjects: Mutex::new(SidMap::default()),
            account: OnceLock::new(),
        }
    }

    /// Drops the sid map's subscriptions (and with them the cycle back to
    /// this connection) once the closed record has been taken.
    pub fn forget_subscriptions(&self) {
        let gone = std::mem::take(&mut *self.subjects.lock());
        drop(gone);
    }

    /// Copies what monitoring shows of this connection.
    pub fn snapshot(&self, with_subs: bool) -> ConnSnapshot {
        let (pending_bytes, (out_msgs, out_bytes), reason) = {
            let st = self.out.lock();
            (st.pending(), st.out_counts(), st.close_reason())
        };
        let meta = self.meta.lock().clone();
        let subs = if with_subs {
            let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let map = self.subjects.lock();
            let mut list: Vec<SubSnapshot> = map
                .values()
                .map(|s| SubSnapshot {
                    sid: lossy(s.sid()),
                    subject: lossy(s.subject()),
                    queue: s.queue().map(lossy),
                    msgs: s.delivered.load(Ordering::Relaxed),
                    max: s.max.load(Ordering::Relaxed),
                })
                .collect();
            list.sort_by(|a, b| (&a.subject, &a.sid).cmp(&(&b.subject, &b.sid)));
            list
        } else {
            Vec::new()
        };
        ConnSnapshot {
            cid: self.cid,
            ip: self.addr.ip().to_string(),
            port: self.addr.port(),
            start: self.start,
            last_activity: UNIX_EPOCH
                + Duration::from_nanos(self.last_activity.load(Ordering::Relaxed)),
            rtt: Duration::from_nanos(self.rtt_nanos.load(Ordering::Relaxed)),
            pending_bytes,
            in_msgs: self.in_msgs.load(Ordering::Relaxed),
            out_msgs,
            in_bytes: self.in_bytes.load(Ordering::Relaxed),
            out_bytes,
            subscriptions: self.num_subs.load(Ordering::Relaxed),
            subs,
            name: meta.name,
            lang: meta.lang,
            version: meta.version,
            user: meta.user,
            account: self
                .account
                .get()
                .map(|a| a.name.to_string())
                .unwrap_or_default(),
            stop: None,
            reason: reason.map(|r| r.as_str()),
        }
    }

    /// Closes this connection from outside its reader (slow consumer, shutdown):
    /// the writer flushes (unless the reason discards) and the reader wakes.
    pub fn close(&self, reason: CloseReason, err: Option<&str>) {
        self.out.close_with(reason, err);
    }

    /// The prefix of every log line about this connection, as nats-server
    /// writes it: `127.0.0.1:5432 - cid:7 -` (`lid:` for a leaf).
    pub fn log(&self) -> LogPrefix {
        LogPrefix {
            addr: self.addr,
            kind: self.kind,
            id: self.cid,
        }
    }

    /// The account's name for monitoring and events (`$G` until bound).
    pub fn account_name(&self) -> &str {
        self.account
            .get()
            .map_or(crate::options::GLOBAL_ACCOUNT, |a| &a.name)
    }

    pub fn wants_headers(&self) -> bool {
        self.headers.load(Ordering::Relaxed)
    }
}

/// `addr - cid:N -`: formatted only when a line is actually written.
#[derive(Debug, Clone, Copy)]
pub struct LogPrefix {
    addr: SocketAddr,
    kind: Kind,
    id: u64,
}

impl std::fmt::Display for LogPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} - {}:{} -", self.addr, self.kind.id_label(), self.id)
    }
}
