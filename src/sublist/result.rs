//! What a match returns: the subscribers a published subject reaches.
//!
//! Owns the result types and how a literal and a wildcard result are merged.
//! Must not touch locks, the trie or the maps.
//!
//! A [`Matched`] is an empty result, one plain subscriber held by value, or
//! a shared `Arc<MatchResult>`: the literal map stores a subject with one
//! plain subscriber (the common case) as that subscriber alone, with no
//! result allocated for it (≈ 112 B per subject at 1M subscriptions), and a
//! match still clones one handle and allocates nothing.

use std::sync::Arc;

use bytes::Bytes;

/// Subscribers that share a queue group name; one of them gets each message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueGroup<T> {
    /// Queue group name, shared (refcounted) with the trie.
    pub name: Bytes,
    /// Members from every matching pattern with this queue name.
    pub members: Vec<T>,
}

/// Everything a published subject reaches, when more than one plain
/// subscriber or any queue group does. Shared read-only through an `Arc`
/// so cache hits cost a refcount increment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchResult<T> {
    /// Subscribers without a queue group: each gets the message. A subscriber
    /// stored under two matching subjects appears twice.
    pub plain: Vec<T>,
    /// Queue groups, one entry per distinct name.
    pub queues: Vec<QueueGroup<T>>,
}

impl<T> MatchResult<T> {
    /// An empty result.
    pub fn new() -> Self {
        MatchResult {
            plain: Vec::new(),
            queues: Vec::new(),
        }
    }

    /// True if nobody is interested (the no-responders case).
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty()
    }

    /// Deliveries one message makes: plain subscribers plus one per queue group
    /// (this is also the fan-out counted in the statistics).
    pub fn len(&self) -> usize {
        self.plain.len() + self.queues.len()
    }
}

impl<T> Default for MatchResult<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The result of `Sublist::match_subject`: cheap to clone (no allocation),
/// read through [`Matched::plain`] and [`Matched::queues`].
#[derive(Debug, Clone)]
pub struct Matched<T>(Repr<T>);

#[derive(Debug, Clone)]
enum Repr<T> {
    Empty,
    One(T),
    Shared(Arc<MatchResult<T>>),
}

impl<T> Matched<T> {
    /// Nobody.
    pub fn empty() -> Self {
        Matched(Repr::Empty)
    }

    /// One plain subscriber.
    pub fn one(sub: T) -> Self {
        Matched(Repr::One(sub))
    }

    /// A shared result (an empty one reads as [`Matched::empty`]).
    pub fn shared(r: Arc<MatchResult<T>>) -> Self {
        Matched(Repr::Shared(r))
    }

    /// Subscribers without a queue group: each gets the message.
    #[inline]
    pub fn plain(&self) -> &[T] {
        match &self.0 {
            Repr::Empty => &[],
            Repr::One(s) => std::slice::from_ref(s),
            Repr::Shared(r) => &r.plain,
        }
    }

    /// Queue groups, one entry per distinct name.
    #[inline]
    pub fn queues(&self) -> &[QueueGroup<T>] {
        match &self.0 {
            Repr::Shared(r) => &r.queues,
            _ => &[],
        }
    }

    /// True if nobody is interested (the no-responders case).
    pub fn is_empty(&self) -> bool {
        self.plain().is_empty() && self.queues().is_empty()
    }

    /// Deliveries one message makes: plain subscribers plus one per queue
    /// group.
    pub fn len(&self) -> usize {
        self.plain().len() + self.queues().len()
    }
}

#[cfg(test)]
impl<T> Matched<T> {
    /// Both are the same shared result (tests: a hit copies nothing).
    pub(crate) fn same_shared(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Shared(a), Repr::Shared(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl<T> From<MatchResult<T>> for Matched<T> {
    fn from(r: MatchResult<T>) -> Self {
        if r.is_empty() {
            Matched::empty()
        } else {
            Matched::shared(Arc::new(r))
        }
    }
}

/// Literal-map result plus wildcard-trie result. Reuses the literal result
/// when the trie added nothing (no allocation).
pub(super) fn merge<T: Clone>(lit: Option<Matched<T>>, wild: MatchResult<T>) -> Matched<T> {
    let lit = match lit {
        None => return Matched::from(wild),
        Some(l) if wild.is_empty() => return l,
        Some(l) => l,
    };
    let mut plain = Vec::with_capacity(lit.plain().len() + wild.plain.len());
    plain.extend_from_slice(lit.plain());
    plain.extend(wild.plain);
    let mut queues = Vec::with_capacity(lit.queues().len() + wild.queues.len());
    queues.extend_from_slice(lit.queues());
    for g in wild.queues {
        match queues
            .iter_mut()
            .find(|q: &&mut QueueGroup<T>| q.name == g.name)
        {
            Some(q) => q.members.extend(g.members),
            None => queues.push(g),
        }
    }
    Matched::shared(Arc::new(MatchResult { plain, queues }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact() {
        assert_eq!(std::mem::size_of::<Matched<Arc<u8>>>(), 16);
    }

    #[test]
    fn views() {
        let e: Matched<u32> = Matched::empty();
        assert!(e.is_empty());
        let one = Matched::one(7u32);
        assert_eq!(one.plain(), [7]);
        assert_eq!(one.len(), 1);
        let m = merge(Some(one), MatchResult::new());
        assert_eq!(m.plain(), [7]);
        let mut w = MatchResult::new();
        w.plain.push(8);
        w.queues.push(QueueGroup {
            name: Bytes::from_static(b"q"),
            members: vec![9],
        });
        let m = merge(Some(m), w);
        assert_eq!(m.plain(), [7, 8]);
        assert_eq!(m.queues().len(), 1);
        assert_eq!(m.len(), 3);
    }
}
