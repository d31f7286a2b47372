//! Literal interest: full literal subject → its subscribers, in a sharded hash
//! map. Subscriptions without wildcards (the vast majority in practice, and
//! every one in the concurrency workload) live here instead of in the trie, so
//! matching them is one hash of the whole subject and one map probe instead of
//! a per-token trie walk.
//!
//! Owns the literal maps, their locks and the per-shard counters (inserts,
//! removes, and hits/misses of the direct path). Must not touch the wildcard
//! trie or the merged-result cache.
//!
//! An entry with one plain subscriber holds just that subscriber (a match
//! clones the handle); any other entry keeps its subscribers *as* a ready
//! `Arc<MatchResult>`: a match clones that `Arc` (no allocation), a change
//! mutates it in place when no reader holds it (`Arc::make_mut`) and copies
//! it otherwise (copy-on-write).
//!
//! Shards bound what a reader can wait for: a writer holds one shard's mutex
//! for one map operation; a map resize copies only that shard's entries
//! (1/`SHARDS` of the literal subscriptions).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use crossbeam_utils::CachePadded;

use super::hash::FastBuild;
use super::trie::{push_tight, remove_one};
use super::{MatchResult, Matched, QueueGroup};

/// Number of shards (power of two). 256 × 128 B padded = 32 KiB per engine.
pub(crate) const SHARDS: usize = 256;

/// One literal subject's subscribers: a lone plain subscriber by value (the
/// common case: no result allocated), else a ready shared result (kept, once
/// made, until the subject has no subscriber left). `warm`:
/// served by the direct path since its last change, so the next direct
/// match is counted as a cache hit (the entry *is* the cached result).
pub(crate) enum Lit<T> {
    One {
        sub: T,
        warm: bool,
    },
    Many {
        result: Arc<MatchResult<T>>,
        warm: bool,
    },
}

impl<T: Clone> Lit<T> {
    /// What a match of this subject returns (no allocation).
    #[inline]
    pub(crate) fn matched(&self) -> Matched<T> {
        match self {
            Lit::One { sub, .. } => Matched::one(sub.clone()),
            Lit::Many { result, .. } => Matched::shared(Arc::clone(result)),
        }
    }
}

impl<T> Lit<T> {
    #[inline]
    pub(crate) fn warm(&self) -> bool {
        match self {
            Lit::One { warm, .. } | Lit::Many { warm, .. } => *warm,
        }
    }

    fn warm_mut(&mut self) -> &mut bool {
        match self {
            Lit::One { warm, .. } | Lit::Many { warm, .. } => warm,
        }
    }

    fn len(&self) -> usize {
        match self {
            Lit::One { .. } => 1,
            Lit::Many { result, .. } => result.len(),
        }
    }
}

/// Warm entries of a shard (the direct path's "cache"), kept incrementally so
/// statistics never walk the map. `max` is a high-water mark, reset when the
/// shard has no warm entry left.
#[derive(Default)]
pub(crate) struct Warm {
    pub(crate) entries: usize,
    pub(crate) fanout: usize,
    pub(crate) max: usize,
}

impl Warm {
    /// Marks `lit` warm (first direct match since its last change).
    #[inline]
    pub(crate) fn heat<T>(&mut self, lit: &mut Lit<T>) {
        let f = lit.len();
        *lit.warm_mut() = true;
        self.entries += 1;
        self.fanout += f;
        self.max = self.max.max(f);
    }

    /// Marks `lit` cold before it changes.
    #[inline]
    fn cool<T>(&mut self, lit: &mut Lit<T>) {
        if lit.warm() {
            *lit.warm_mut() = false;
            self.entries -= 1;
            self.fanout -= lit.len();
            if self.entries == 0 {
                self.max = 0;
            }
        }
    }
}

pub(crate) struct Shard<T> {
    pub(crate) map: HashMap<Box<[u8]>, Lit<T>, FastBuild>,
    pub(crate) warm: Warm,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) inserts: u64,
    pub(crate) removes: u64,
}

pub(crate) struct Literal<T> {
    shards: Box<[CachePadded<Mutex<Shard<T>>>]>,
}

impl<T> Literal<T> {
    pub(crate) fn new() -> Self {
        Literal {
            shards: (0..SHARDS)
                .map(|_| {
                    CachePadded::new(Mutex::new(Shard {
                        map: HashMap::with_hasher(FastBuild),
                        warm: Warm::default(),
                        hits: 0,
                        misses: 0,
                        inserts: 0,
                        removes: 0,
                    }))
                })
                .collect(),
        }
    }

    /// The shard for a subject hash (`hash::hash_bytes`).
    #[inline]
    pub(crate) fn shard(&self, hash: u64) -> MutexGuard<'_, Shard<T>> {
        self.shards[(hash >> 32) as usize & (SHARDS - 1)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Every shard in turn (cold paths: statistics).
    pub(crate) fn for_each_shard(&self, mut f: impl FnMut(&Shard<T>)) {
        for s in self.shards.iter() {
            f(&s.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }
}

impl<T: Clone + PartialEq> Shard<T> {
    /// Adds a subscriber.
    pub(crate) fn insert(&mut self, subject: &[u8], queue: Option<&[u8]>, sub: T) {
        let Some(lit) = self.map.get_mut(subject) else {
            let lit = match queue {
                None => Lit::One { sub, warm: false },
                Some(q) => Lit::Many {
                    result: Arc::new(with_sub(MatchResult::new(), Some(q), sub)),
                    warm: false,
                },
            };
            self.map.insert(Box::from(subject), lit);
            self.inserts += 1;
            return;
        };
        self.warm.cool(lit);
        match lit {
            Lit::One { sub: first, .. } => {
                let mut r = MatchResult {
                    plain: Vec::with_capacity(2),
                    queues: Vec::new(),
                };
                r.plain.push(first.clone());
                *lit = Lit::Many {
                    result: Arc::new(with_sub(r, queue, sub)),
                    warm: false,
                };
            }
            Lit::Many { result, .. } => add_sub(Arc::make_mut(result), queue, sub),
        }
        self.inserts += 1;
    }

    /// Removes one occurrence. `Err(())` if absent; `Ok(old)` hands back the
    /// entry if it went away, so the caller frees it after unlocking.
    #[allow(clippy::result_unit_err)]
    pub(crate) fn remove(
        &mut self,
        subject: &[u8],
        queue: Option<&[u8]>,
        sub: &T,
    ) -> Result<Option<Lit<T>>, ()> {
        let Some(lit) = self.map.get_mut(subject) else {
            return Err(());
        };
        // Check before copying a shared result.
        let present = match (&*lit, queue) {
            (Lit::One { sub: s, .. }, None) => s == sub,
            (Lit::One { .. }, Some(_)) => false,
            (Lit::Many { result, .. }, None) => result.plain.contains(sub),
            (Lit::Many { result, .. }, Some(q)) => result
                .queues
                .iter()
                .any(|g| g.name[..] == *q && g.members.contains(sub)),
        };
        if !present {
            return Err(());
        }
        self.warm.cool(lit);
        self.removes += 1;
        let gone = match lit {
            Lit::One { .. } => true,
            Lit::Many { result, .. } => {
                let r = Arc::make_mut(result);
                match queue {
                    None => {
                        remove_one(&mut r.plain, sub);
                    }
                    Some(q) => {
                        if let Some(i) = r.queues.iter().position(|g| g.name[..] == *q) {
                            remove_one(&mut r.queues[i].members, sub);
                            if r.queues[i].members.is_empty() {
                                r.queues.swap_remove(i);
                            }
                        }
                    }
                }
                // Down to one subscriber it stays shared: a subject whose
                // interest goes 1 ↔ 2 does not allocate on every change.
                r.is_empty()
            }
        };
        if !gone {
            return Ok(None);
        }
        let old = self.map.remove(subject);
        let cap = self.map.capacity();
        if cap > 64 && self.map.len() * 4 < cap {
            self.map.shrink_to_fit();
        }
        Ok(old)
    }
}

/// `r` with `sub` added (plain, or to its queue group).
fn with_sub<T>(mut r: MatchResult<T>, queue: Option<&[u8]>, sub: T) -> MatchResult<T> {
    add_sub(&mut r, queue, sub);
    r
}

/// Adds `sub` to `r` (plain, or to its queue group).
fn add_sub<T>(r: &mut MatchResult<T>, queue: Option<&[u8]>, sub: T) {
    match queue {
        None => push_tight(&mut r.plain, sub),
        Some(q) => match r.queues.iter_mut().find(|g| g.name[..] == *q) {
            Some(g) => push_tight(&mut g.members, sub),
            None => push_tight(
                &mut r.queues,
                QueueGroup {
                    name: Bytes::copy_from_slice(q),
                    members: vec![sub],
                },
            ),
        },
    }
}
