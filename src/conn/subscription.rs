//! One subscription as the interest graph and its connection hold it, and a
//! connection's subscriptions by sid.
//!
//! Owns the compact layout (measured in docs/PERFORMANCE.md, ≤ 250 B of
//! server memory per subscription at 1M): a subscription is one allocation
//! when its subject, queue and sid together fit [`INLINE`] bytes, else two
//! (the text in one boxed slice). The sid map is a set of the subscriptions
//! themselves, looked up by their sid, so no key is stored twice. Must not
//! know how subscriptions are matched (`sublist`) or delivered (`client`).

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::ConnShared;

/// Text bytes kept inside the subscription itself: sized so that an
/// `Arc<Subscription>` is one 96-byte malloc chunk.
const INLINE: usize = 38;

/// Subject, queue and sid back to back: inline when short, else boxed.
enum Text {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Text {
    fn new(parts: [&[u8]; 3]) -> Text {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len <= INLINE {
            let mut buf = [0u8; INLINE];
            let mut at = 0;
            for p in parts {
                if let Some(dst) = buf.get_mut(at..at + p.len()) {
                    dst.copy_from_slice(p);
                }
                at += p.len();
            }
            Text::Inline {
                len: len as u8,
                buf,
            }
        } else {
            Text::Heap(parts.concat().into_boxed_slice())
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Text::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or(&[]),
            Text::Heap(b) => b,
        }
    }
}

/// No queue group (`queue_end` equal to this).
const NO_QUEUE: u32 = u32::MAX;

/// One SUB: what the interest graph holds and what delivery needs.
pub struct Subscription {
    pub client: Arc<ConnShared>,
    text: Text,
    /// End of the subject in `text`.
    subject_end: u32,
    /// End of the queue name in `text` (it starts at `subject_end`), or
    /// [`NO_QUEUE`]; the sid is the rest.
    queue_end: u32,
    /// `UNSUB <sid> <max>`: deliveries allowed in total; 0 = unlimited.
    pub max: AtomicU64,
    /// Every delivery since SUB, as nats-server counts them: a later
    /// `UNSUB <sid> <max>` counts what was already delivered against `max`, and
    /// `/connz?subs=detail` and `/subsz?subs=1` report it as `msgs`.
    pub delivered: AtomicU64,
}

impl Subscription {
    /// A subscription of `client` copying the three strings (a slice of the
    /// read buffer would pin it for as long as the subscription lives).
    /// Strings longer than `u32::MAX` cannot reach here (the control line
    /// is bounded far below); they would be cut, never panic.
    pub fn new(
        client: Arc<ConnShared>,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
    ) -> Subscription {
        let q = queue.unwrap_or(&[]);
        let subject_end = u32::try_from(subject.len()).unwrap_or(NO_QUEUE - 1);
        let queue_end = match queue {
            Some(q) => u32::try_from(subject.len() + q.len()).unwrap_or(NO_QUEUE - 1),
            None => NO_QUEUE,
        };
        Subscription {
            client,
            text: Text::new([subject, q, sid]),
            subject_end,
            queue_end,
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        }
    }

    pub fn subject(&self) -> &[u8] {
        self.text
            .bytes()
            .get(..self.subject_end as usize)
            .unwrap_or(&[])
    }

    pub fn queue(&self) -> Option<&[u8]> {
        if self.queue_end == NO_QUEUE {
            return None;
        }
        self.text
            .bytes()
            .get(self.subject_end as usize..self.queue_end as usize)
    }

    pub fn sid(&self) -> &[u8] {
        let start = if self.queue_end == NO_QUEUE {
            self.subject_end
        } else {
            self.queue_end
        };
        self.text.bytes().get(start as usize..).unwrap_or(&[])
    }

    /// Counts one delivery against an auto-unsubscribe limit. Returns `None` if the
    /// limit is already used up, else whether this delivery is the last one.
    /// Called with the subscriber's outbound lock held, which serialises every
    /// delivery to this subscription: without a limit a plain load and store
    /// count it, no atomic read-modify-write on the hot path.
    pub fn take_delivery(&self) -> Option<bool> {
        let max = self.max.load(Ordering::Relaxed);
        if max == 0 {
            let n = self.delivered.load(Ordering::Relaxed);
            self.delivered.store(n + 1, Ordering::Relaxed);
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

/// A subscription in a [`SidMap`]: hashed and compared by its sid, so the
/// set is looked up with `&[u8]` and stores 8 bytes per entry.
struct BySid(Arc<Subscription>);

impl Borrow<[u8]> for BySid {
    fn borrow(&self) -> &[u8] {
        self.0.sid()
    }
}
impl PartialEq for BySid {
    fn eq(&self, other: &Self) -> bool {
        self.0.sid() == other.0.sid()
    }
}
impl Eq for BySid {}
impl Hash for BySid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.sid().hash(state)
    }
}

/// A connection's subscriptions by sid (each sid at most once).
#[derive(Default)]
pub struct SidMap {
    set: HashSet<BySid>,
}

impl SidMap {
    pub fn get(&self, sid: &[u8]) -> Option<&Arc<Subscription>> {
        self.set.get(sid).map(|s| &s.0)
    }

    /// Stores `sub` under its sid, handing back one it replaces.
    pub fn insert(&mut self, sub: Arc<Subscription>) -> Option<Arc<Subscription>> {
        self.set.replace(BySid(sub)).map(|s| s.0)
    }

    pub fn remove(&mut self, sid: &[u8]) -> Option<Arc<Subscription>> {
        self.set.take(sid).map(|s| s.0)
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    pub fn values(&self) -> impl Iterator<Item = &Arc<Subscription>> {
        self.set.iter().map(|s| &s.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Kind;

    fn conn() -> Arc<ConnShared> {
        let addr = "127.0.0.1:1".parse().expect("addr");
        Arc::new(ConnShared::new(Kind::Client, 1, addr))
    }

    #[test]
    fn text_round_trips_inline_and_boxed() {
        let c = conn();
        let long = [b'x'; 100];
        for (subject, queue, sid) in [
            (&b"a.b"[..], None, &b"1"[..]),
            (b"a.b", Some(&b"q"[..]), b"22"),
            (&long[..], Some(&b"grp"[..]), b"333"),
            (b"foo", None, &long[..]),
            (b"x", Some(&b""[..]), b""),
        ] {
            let s = Subscription::new(c.clone(), subject, queue, sid);
            assert_eq!(s.subject(), subject);
            assert_eq!(s.queue(), queue);
            assert_eq!(s.sid(), sid);
        }
    }

    #[test]
    fn one_chunk_when_short() {
        // 88 B with the Arc's two counts: one glibc chunk of 96 (8 B more
        // would take the next size, 112).
        assert_eq!(std::mem::size_of::<Subscription>(), 72);
    }

    #[test]
    fn sid_map_by_sid() {
        let c = conn();
        let mut m = SidMap::default();
        let a = Arc::new(Subscription::new(c.clone(), b"a", None, b"1"));
        let b = Arc::new(Subscription::new(c.clone(), b"b", None, b"1"));
        assert!(m.insert(a.clone()).is_none());
        let old = m.insert(b.clone()).expect("replaced");
        assert!(Arc::ptr_eq(&old, &a));
        assert!(Arc::ptr_eq(m.get(b"1").expect("present"), &b));
        assert_eq!(m.len(), 1);
        assert!(m.remove(b"1").is_some());
        assert!(m.is_empty());
    }
}
