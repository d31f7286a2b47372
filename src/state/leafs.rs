//! Leaf links as the rest of the server sees them: which links are up, what
//! interest each has been told about, and the propagation of local interest
//! changes to every link as deduplicated `LS+`/`LS-`.
//!
//! Owns the link registry (leaf links are not in the client registry: `/connz`
//! does not list them, as nats-server) and the per-link interest counts. It
//! must not read from links or deliver messages (that is `leaf`); subscription
//! handlers only call [`LeafLinks::changed`] after changing the sublist.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use crate::conn::{ConnShared, Subscription};
use crate::protocol::encode;
use crate::sync::Mutex;

/// A subject and optional queue group: the unit of leaf interest.
pub type InterestKey = (Bytes, Option<Bytes>);

/// Every leaf link up now, and counters over the server's life.
#[derive(Default)]
pub struct LeafLinks {
    links: Mutex<Vec<Arc<LeafLink>>>,
    /// `links.len()`, read without the lock on every subscription change.
    up: AtomicUsize,
    /// Links that came up (solicited or accepted), for `/varz` and metrics.
    pub connects: AtomicU64,
    /// Traffic of links that have closed (live ones are summed on demand).
    closed: [AtomicU64; 4],
}

/// Leaf traffic over the server's life, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeafTraffic {
    pub connects: u64,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
}

fn conn_traffic(c: &ConnShared) -> [u64; 4] {
    let (out_msgs, out_bytes) = c.out.lock().out_counts();
    [
        c.in_msgs.load(Ordering::Relaxed),
        c.in_bytes.load(Ordering::Relaxed),
        out_msgs,
        out_bytes,
    ]
}

/// One leaf link's shared record: its connection and both directions of interest.
pub struct LeafLink {
    pub conn: Arc<ConnShared>,
    /// We dialled it (we are the leaf); false when it dialled us (we are the hub).
    pub solicited: bool,
    /// The peer's server name and id, from its INFO or CONNECT.
    pub remote_name: String,
    pub remote_id: String,
    pub since: SystemTime,
    /// What we told the peer: local interest counted per subject (+ queue).
    told: Mutex<HashMap<InterestKey, u32>>,
    /// What the peer told us (its `LS+`), as subscriptions in our sublist.
    /// Written only by the link's reader.
    pub remote: Mutex<HashMap<InterestKey, Arc<Subscription>>>,
}

impl LeafLink {
    pub fn new(
        conn: Arc<ConnShared>,
        solicited: bool,
        remote_name: String,
        remote_id: String,
    ) -> Self {
        LeafLink {
            conn,
            solicited,
            remote_name,
            remote_id,
            since: SystemTime::now(),
            told: Mutex::new(HashMap::new()),
            remote: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one subscription in or out and tells the peer when that changes
    /// what it must know: the first/last plain subscription on a subject, and
    /// every change of a queue group's weight. The line is queued under the
    /// count lock, so concurrent changes reach the peer in count order.
    pub fn note(&self, subject: &Bytes, queue: Option<&Bytes>, added: bool) {
        let mut told = self.told.lock();
        let key = (subject.clone(), queue.cloned());
        let n = match told.get_mut(&key) {
            Some(n) => {
                if added {
                    *n += 1;
                } else {
                    *n = n.saturating_sub(1);
                }
                *n
            }
            None if added => {
                told.insert(key.clone(), 1);
                1
            }
            None => return,
        };
        let mut line = Vec::with_capacity(subject.len() + 32);
        match queue {
            None if added && n == 1 => encode::ls_line(&mut line, true, subject, None),
            None if n == 0 => encode::ls_line(&mut line, false, subject, None),
            None => {}
            Some(q) if n > 0 => encode::ls_line(&mut line, true, subject, Some((q, n))),
            Some(q) => encode::ls_line(&mut line, false, subject, Some((q, 0))),
        }
        if n == 0 {
            told.remove(&key);
        }
        if !line.is_empty() {
            self.conn.out.send_now(&line);
        }
    }

    /// Tells the peer all of `interest` at once (link start): one line per
    /// subject, queue groups with their weights.
    pub fn tell_all(&self, interest: impl IntoIterator<Item = InterestKey>) {
        let mut told = self.told.lock();
        for key in interest {
            *told.entry(key).or_insert(0) += 1;
        }
        let mut lines = Vec::new();
        for ((subject, queue), n) in told.iter() {
            let q = queue.as_ref().map(|q| (q.as_ref(), *n));
            encode::ls_line(&mut lines, true, subject, q);
        }
        self.conn.out.send_now(&lines);
    }

    /// Interest keys the peer has told us about (for other links and `/leafz`).
    pub fn remote_keys(&self) -> Vec<InterestKey> {
        self.remote.lock().keys().cloned().collect()
    }
}

impl LeafLinks {
    pub fn add(&self, link: Arc<LeafLink>) {
        let mut links = self.links.lock();
        links.push(link);
        self.up.store(links.len(), Ordering::Relaxed);
        self.connects.fetch_add(1, Ordering::Relaxed);
    }

    pub fn remove(&self, conn: &Arc<ConnShared>) {
        {
            let mut links = self.links.lock();
            links.retain(|l| !Arc::ptr_eq(&l.conn, conn));
            self.up.store(links.len(), Ordering::Relaxed);
        }
        for (total, n) in self.closed.iter().zip(conn_traffic(conn)) {
            total.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Connects and traffic over the server's life: closed links plus live ones.
    pub fn traffic(&self) -> LeafTraffic {
        let mut t = [0u64; 4];
        for (slot, total) in t.iter_mut().zip(&self.closed) {
            *slot = total.load(Ordering::Relaxed);
        }
        for l in self.list() {
            for (slot, n) in t.iter_mut().zip(conn_traffic(&l.conn)) {
                *slot += n;
            }
        }
        let [in_msgs, in_bytes, out_msgs, out_bytes] = t;
        LeafTraffic {
            connects: self.connects.load(Ordering::Relaxed),
            in_msgs,
            in_bytes,
            out_msgs,
            out_bytes,
        }
    }

    pub fn list(&self) -> Vec<Arc<LeafLink>> {
        self.links.lock().clone()
    }

    pub fn count(&self) -> usize {
        self.up.load(Ordering::Relaxed)
    }

    /// `sub` entered (`added`) or left the sublist: every link but its own
    /// hears about it. Costs one relaxed load when no link is up.
    pub fn changed(&self, sub: &Subscription, added: bool) {
        if self.count() == 0 {
            return;
        }
        for link in self.list() {
            if !Arc::ptr_eq(&link.conn, &sub.client) {
                link.note(&sub.subject, sub.queue.as_ref(), added);
            }
        }
    }
}
