//! Leaf links as the rest of the server sees them: which links are up, what
//! interest each has been told about, and the propagation of local interest
//! changes to every link as deduplicated `LS+`/`LS-`.
//!
//! Owns the link registry (leaf links are not in the client registry: `/connz`
//! does not list them, as nats-server) and the per-link interest counts, of
//! interest the link's inbound rules let it tell (`auth::LinkPerms`). It
//! must not read from links or deliver messages (that is `leaf`); subscription
//! handlers only call [`LeafLinks::changed`] after changing the sublist.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;

use crate::auth::CompiledPermissions;
use crate::conn::{ConnShared, Subscription};
use crate::protocol::encode;
use crate::sync::Mutex;

/// A subject and optional queue group: the unit of leaf interest.
pub type InterestKey = (Bytes, Option<Bytes>);

/// The interest key of `sub` (copied: a leaf's counts outlive no subscription,
/// but they are kept by subject, not by subscription).
pub fn interest_key(sub: &Subscription) -> InterestKey {
    (
        Bytes::copy_from_slice(sub.subject()),
        sub.queue().map(Bytes::copy_from_slice),
    )
}

/// One subscription's identity (its address while it lives): counting by
/// identity makes counting in and out idempotent, so the full sync at link
/// start and concurrent changes cannot count a subscription twice.
pub type SubId = usize;

/// The identity [`LeafLink::note`] counts `sub` under.
pub fn sub_id(sub: &Subscription) -> SubId {
    sub as *const Subscription as usize
}

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
    /// The configured remotes being dialled (reload adds and removes them).
    pub remotes: super::remotes::Remotes,
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

/// The interest counted for one link's peer.
#[derive(Default)]
struct Told {
    /// The subscriptions behind each subject (+ queue).
    counts: HashMap<InterestKey, HashSet<SubId>>,
    /// [`LeafLink::tell_all`] has run: changes go out as they come. Before,
    /// they are only counted (a dialled link waits for the hub's answer to
    /// CONNECT, which may restrict what it tells).
    open: bool,
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
    /// What we told the peer: the subscriptions behind each subject (+ queue).
    told: Mutex<Told>,
    /// What the peer told us (its `LS+`), as subscriptions in our sublist.
    /// Written only by the link's reader.
    pub remote: Mutex<HashMap<InterestKey, Arc<Subscription>>>,
    /// The link's inbound rules, when restricted: interest in what the peer
    /// may not send us is not told (nats-server's `canSubscribe` before an
    /// `LS+`). Set before the link is registered.
    pub inbound: OnceLock<Arc<CompiledPermissions>>,
}

impl LeafLink {
    /// A link's record, created once its handshake is done.
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
            told: Mutex::new(Told::default()),
            remote: Mutex::new(HashMap::new()),
            inbound: OnceLock::new(),
        }
    }

    /// May interest in `subject` be told to the peer? Always for our
    /// loop-detection subject.
    fn may_tell(&self, subject: &[u8]) -> bool {
        match self.inbound.get() {
            None => true,
            Some(rules) => subject.starts_with(b"$LDS.") || rules.interest_allowed(subject),
        }
    }

    /// Counts `sub` in or out and tells the peer when that changes what it
    /// must know: the first/last plain subscription on a subject, and every
    /// change of a queue group's weight. The line is queued under the count
    /// lock, so concurrent changes reach the peer in count order.
    pub fn note(&self, sub: &Subscription, added: bool) {
        // Never counted in, so its removal finds nothing to tell either.
        if added && !self.may_tell(sub.subject()) {
            return;
        }
        let mut guard = self.told.lock();
        let Told { counts: told, open } = &mut *guard;
        let key = interest_key(sub);
        let id = sub_id(sub);
        let n = if added {
            let set = told.entry(key.clone()).or_default();
            if !set.insert(id) {
                return;
            }
            set.len()
        } else {
            let Some(set) = told.get_mut(&key) else {
                return;
            };
            if !set.remove(&id) {
                return;
            }
            set.len()
        };
        if n == 0 {
            told.remove(&key);
        }
        if !*open {
            return;
        }
        let (subject, queue) = (&key.0, key.1.as_ref());
        let weight = u32::try_from(n).unwrap_or(u32::MAX);
        let mut line = Vec::with_capacity(subject.len() + 32);
        match queue {
            None if added && n == 1 => encode::ls_line(&mut line, true, subject, None),
            None if n == 0 => encode::ls_line(&mut line, false, subject, None),
            None => {}
            Some(q) if n > 0 => encode::ls_line(&mut line, true, subject, Some((q, weight))),
            Some(q) => encode::ls_line(&mut line, false, subject, Some((q, 0))),
        }
        if !line.is_empty() {
            self.conn.out.send_now(&line);
        }
    }

    /// Tells the peer everything `snapshot` returns at once (link start): one
    /// line per subject, queue groups with their weights. The snapshot is
    /// taken under the count lock, after the link is registered: a change
    /// racing with it is either in the snapshot or counted after it, and by
    /// identity, so never twice and never left behind. What was counted
    /// before the link's rules were known is filtered by them here.
    pub fn tell_all(&self, snapshot: impl FnOnce() -> Vec<(InterestKey, SubId)>) {
        let mut guard = self.told.lock();
        let told = &mut guard.counts;
        for (key, id) in snapshot() {
            told.entry(key).or_default().insert(id);
        }
        told.retain(|(subject, _), _| {
            let ok = self.may_tell(subject);
            if !ok {
                tracing::debug!(
                    "{} Not permitted to subscribe to {:?} on behalf of {}",
                    self.conn.log(),
                    String::from_utf8_lossy(subject),
                    self.conn.account_name()
                );
            }
            ok
        });
        guard.open = true;
        let mut lines = Vec::new();
        for ((subject, queue), set) in guard.counts.iter() {
            let w = u32::try_from(set.len()).unwrap_or(u32::MAX);
            encode::ls_line(
                &mut lines,
                true,
                subject,
                queue.as_ref().map(|q| (q.as_ref(), w)),
            );
        }
        self.conn.out.send_now(&lines);
    }

    /// What the peer has told us about, as (key, identity) for other links.
    pub fn remote_interest(&self) -> Vec<(InterestKey, SubId)> {
        self.remote
            .lock()
            .iter()
            .map(|(k, s)| (k.clone(), sub_id(s)))
            .collect()
    }
}

impl LeafLinks {
    /// Registers a link whose handshake is done (counted in `connects`).
    pub fn add(&self, link: Arc<LeafLink>) {
        let mut links = self.links.lock();
        links.push(link);
        self.up.store(links.len(), Ordering::Relaxed);
        self.connects.fetch_add(1, Ordering::Relaxed);
    }

    /// Unregisters a closed link and folds its traffic into the totals.
    pub fn remove(&self, conn: &Arc<ConnShared>) {
        {
            let mut links = self.links.lock();
            links.retain(|l| !Arc::ptr_eq(&l.conn, conn));
            self.up.store(links.len(), Ordering::Relaxed);
        }
        let traffic = conn_traffic(conn);
        for (total, n) in self.closed.iter().zip(traffic) {
            total.fetch_add(n, Ordering::Relaxed);
        }
        // The link's account keeps its traffic too (`/accstatz`).
        if let Some(acc) = conn.account.get() {
            let [in_msgs, in_bytes, out_msgs, out_bytes] = traffic;
            let t = &acc.closed;
            t.in_msgs.fetch_add(in_msgs, Ordering::Relaxed);
            t.in_bytes.fetch_add(in_bytes, Ordering::Relaxed);
            t.out_msgs.fetch_add(out_msgs, Ordering::Relaxed);
            t.out_bytes.fetch_add(out_bytes, Ordering::Relaxed);
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

    /// The links up now (a copy: no lock is held while using them).
    pub fn list(&self) -> Vec<Arc<LeafLink>> {
        self.links.lock().clone()
    }

    /// How many links are up (`/varz` `leafnodes`), without the lock.
    pub fn count(&self) -> usize {
        self.up.load(Ordering::Relaxed)
    }

    /// `sub` entered (`added`) or left the sublist: every link but its own
    /// hears about it. Costs one relaxed load when no link is up.
    pub fn changed(&self, sub: &Subscription, added: bool) {
        self.changed_in(sub.client.account_name(), sub, added);
    }

    /// As [`changed`](Self::changed) for a subscription of `account` whose
    /// owner is in no account of its own (an import's route subscription).
    pub fn changed_in(&self, account: &str, sub: &Subscription, added: bool) {
        if self.count() == 0 {
            return;
        }
        for link in self.list() {
            if !Arc::ptr_eq(&link.conn, &sub.client) && link.conn.account_name() == account {
                link.note(sub, added);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::conn::Kind;

    fn sub(
        client: &Arc<ConnShared>,
        subject: &'static str,
        queue: Option<&'static str>,
    ) -> Arc<Subscription> {
        Arc::new(Subscription::new(
            client.clone(),
            subject.as_bytes(),
            queue.map(str::as_bytes),
            b"1",
        ))
    }

    /// A dialled link and a client whose subscriptions it hears of.
    fn link_and_client() -> (LeafLink, Arc<ConnShared>) {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let link = LeafLink::new(
            Arc::new(ConnShared::new(Kind::Leaf, 1, addr)),
            true,
            "hub".into(),
            "id".into(),
        );
        (link, Arc::new(ConnShared::new(Kind::Client, 2, addr)))
    }

    fn queued(link: &LeafLink) -> usize {
        link.conn.out.lock().pending()
    }

    #[test]
    fn counting_is_by_identity_and_deduplicated() {
        let (link, client) = link_and_client();
        let (a, b) = (sub(&client, "foo", None), sub(&client, "foo", None));
        // Told at sync and again by the racing hook: one LS+ foo.
        link.tell_all(|| vec![(("foo".into(), None), sub_id(&a))]);
        let after_sync = queued(&link);
        assert_eq!(after_sync, b"LS+ foo\r\n".len());
        link.note(&a, true);
        link.note(&b, true);
        assert_eq!(queued(&link), after_sync, "second sub on foo needs no line");
        link.note(&a, false);
        link.note(&a, false);
        assert_eq!(queued(&link), after_sync, "one left: no LS- yet");
        link.note(&b, false);
        assert_eq!(queued(&link), after_sync + b"LS- foo\r\n".len());
        // Queue groups: every weight change is told.
        let q1 = sub(&client, "w", Some("g"));
        let q2 = sub(&client, "w", Some("g"));
        let before = queued(&link);
        link.note(&q1, true);
        link.note(&q2, true);
        link.note(&q2, false);
        link.note(&q1, false);
        let lines = "LS+ w g 1\r\nLS+ w g 2\r\nLS+ w g 1\r\nLS- w g\r\n";
        assert_eq!(queued(&link), before + lines.len());
    }

    #[test]
    fn interest_is_counted_before_start_and_filtered_by_the_inbound_rules() {
        let (link, client) = link_and_client();
        let (secret, public) = (sub(&client, "secret.x", None), sub(&client, "public", None));
        // Before the link starts: counted, nothing sent.
        link.note(&secret, true);
        link.note(&public, true);
        assert_eq!(queued(&link), 0);
        let rules = crate::auth::CompiledPermissions::compile(&crate::options::Permissions {
            publish_deny: Some(vec!["secret.>".into()]),
            ..Default::default()
        })
        .expect("rules");
        let _ = link.inbound.set(rules);
        link.tell_all(|| vec![(("$LDS.x".into(), None), 0)]);
        let start = "LS+ public\r\nLS+ $LDS.x\r\n".len();
        assert_eq!(queued(&link), start, "the denied subject was dropped");
        // After: a denied subject is neither told nor later untold.
        let more = sub(&client, "secret.y", None);
        link.note(&more, true);
        link.note(&more, false);
        link.note(&secret, false);
        assert_eq!(queued(&link), start);
        let wide = sub(&client, ">", None);
        link.note(&wide, true);
        assert_eq!(queued(&link), start + "LS+ >\r\n".len());
    }
}
