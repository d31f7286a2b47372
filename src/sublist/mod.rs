//! The matching engine: which subscriptions does a published subject reach.
//!
//! Owns the interest graph (a token trie, `trie.rs`), the bounded match cache
//! (`cache.rs`) and its statistics. Must not touch I/O, async or protocol
//! concerns; subjects are validated with `crate::subject`.
//!
//! # Concurrency design (measured in docs/PERFORMANCE.md)
//! - Literal subscriptions live in a 256-shard map (`literal.rs`), subject →
//!   its lone plain subscriber or a ready `Arc<MatchResult>`; wildcard ones
//!   in a trie under one `RwLock`. A match returns a [`Matched`].
//! - While no wildcard subscription exists, a match is one literal lookup (one
//!   shard mutex, a handle clone). Otherwise the sharded cache (`cache.rs`) is
//!   consulted first; a miss merges the literal entry and the trie walk.
//! - Writers hold one literal shard for one map operation, or the trie lock
//!   for one O(tokens) walk; freed results are dropped after unlocking.
//! - Invalidation is targeted: a literal change drops one cache entry and bumps
//!   that cache shard's epoch (a racing miss then skips its store); a wildcard
//!   change bumps a wildcard generation that makes every older entry stale.
//!   Until the first miss prepares to store, writers skip invalidation (a
//!   SeqCst-fence handshake, see `Cache::will_store`).

mod cache;
mod hash;
mod literal;
mod result;
mod stats;
mod trie;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};

use crossbeam_utils::CachePadded;

pub use result::{MatchResult, Matched, QueueGroup};
pub use stats::SublistStats;

use crate::subject::{self, SubjectError};
use cache::Cache;
use hash::hash_bytes;
use literal::Literal;
use result::merge;
/// The plain interest trie (no lock, no cache): what `Sublist` wraps, exposed so
/// benchmarks can measure the talk's "one lock around a trie" design against it.
pub use trie::Trie;

/// Default cache size in subjects: bounded, but sized for real working sets
/// (nats-server uses 1,024; the throughput workload touches ~16k subjects).
/// Costs ~100-200 B per entry when full (see cache.rs), only while wildcard
/// subscriptions exist.
pub const DEFAULT_CACHE_CAPACITY: usize = 32_768;

/// Why an insert or remove was refused.
#[derive(Debug, thiserror::Error)]
pub enum SublistError {
    /// The subject is not a valid SUB subject.
    #[error("invalid subject: {0}")]
    InvalidSubject(#[from] SubjectError),
    /// The queue group name is empty or holds whitespace.
    #[error("invalid queue group name")]
    InvalidQueue,
    /// No such (subject, queue, subscriber) was stored.
    #[error("subscription not found")]
    NotFound,
}

/// How writers keep the cache correct. `Global` exists only to be measured
/// against `Targeted` (see docs/PERFORMANCE.md).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// Literal changes drop one entry; wildcard changes bump the generation.
    Targeted,
    /// Every change bumps the generation (the whole cache goes stale).
    Global,
}

/// Engine knobs, for benchmarks and tests; the server uses `new()`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct SublistConfig {
    pub cache_capacity: usize,
    pub cache_shards: usize,
    pub invalidation: Invalidation,
}

impl SublistConfig {
    /// Default shape for a given capacity: about 64 entries per shard, at most
    /// 16 shards (8x the cores we expect; contention on a hit is per shard).
    pub fn with_capacity(cache_capacity: usize) -> Self {
        SublistConfig {
            cache_capacity,
            cache_shards: (cache_capacity / 64).clamp(1, 16),
            invalidation: Invalidation::Targeted,
        }
    }
}

/// The wildcard trie and its writer-only counters, under one `RwLock`.
struct Wild<T> {
    trie: Trie<T>,
    inserts: u64,
    removes: u64,
}

/// The subscription index shared by all connections as `Arc<Sublist<T>>`.
///
/// `T` is a cheap subscriber handle compared by `Eq` (the server uses a
/// pointer-equality newtype around `Arc<Subscription>`). The same `T` may be
/// stored under several subjects. Inserting the identical (subject, queue, T)
/// twice stores it twice (counted twice, delivered twice, removed one at a
/// time); the engine does not pay for a duplicate check.
pub struct Sublist<T> {
    /// Subscriptions without wildcards, by full subject.
    literal: Literal<T>,
    /// Subscriptions with at least one `*` or `>` token.
    wild: RwLock<Wild<T>>,
    /// Wildcard subscriptions stored (written under the `wild` write lock);
    /// while 0, a match is one literal-map lookup and skips the cache.
    wild_count: CachePadded<AtomicUsize>,
    cache: Cache<T>,
    /// Bumped when a wildcard subscription changes (after the trie changed), or
    /// on every change with `Invalidation::Global`. Read on every cached match.
    wc_gen: CachePadded<AtomicU64>,
    /// Bumped on every insert/remove; the live count beside it.
    generation: CachePadded<(AtomicU64, AtomicU64)>,
    invalidation: Invalidation,
}

impl<T: Clone + Eq + std::hash::Hash + Send + Sync + 'static> Default for Sublist<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Eq + std::hash::Hash + Send + Sync + 'static> Sublist<T> {
    /// An engine with the default cache of [`DEFAULT_CACHE_CAPACITY`] subjects.
    pub fn new() -> Self {
        Self::with_cache_capacity(DEFAULT_CACHE_CAPACITY)
    }

    /// An engine caching up to `cap` subjects; 0 turns the cache off.
    pub fn with_cache_capacity(cap: usize) -> Self {
        Self::with_config(SublistConfig::with_capacity(cap))
    }

    /// An engine with explicit knobs (benchmarks compare designs with this).
    #[doc(hidden)]
    pub fn with_config(cfg: SublistConfig) -> Self {
        Sublist {
            literal: Literal::new(),
            wild: RwLock::new(Wild {
                trie: Trie::default(),
                inserts: 0,
                removes: 0,
            }),
            wild_count: CachePadded::new(AtomicUsize::new(0)),
            cache: Cache::new(cfg.cache_capacity, cfg.cache_shards),
            wc_gen: CachePadded::new(AtomicU64::new(0)),
            generation: CachePadded::new((AtomicU64::new(0), AtomicU64::new(0))),
            invalidation: cfg.invalidation,
        }
    }

    /// Stores a subscription. The subject must be a valid SUB subject and the
    /// queue (if any) a valid queue name.
    pub fn insert(&self, subject: &[u8], queue: Option<&[u8]>, sub: T) -> Result<(), SublistError> {
        subject::validate_subscribe(subject)?;
        if let Some(q) = queue {
            subject::validate_queue(q).map_err(|_| SublistError::InvalidQueue)?;
        }
        if subject::has_wildcard(subject) {
            let mut w = self.wild.write().unwrap_or_else(PoisonError::into_inner);
            w.trie.insert(subject, queue, sub);
            w.inserts += 1;
            self.wild_count.store(w.trie.count(), Ordering::Release);
            self.wc_gen.fetch_add(1, Ordering::Release);
            drop(w);
        } else {
            let hash = hash_bytes(subject);
            self.literal.shard(hash).insert(subject, queue, sub);
            let evicted = self.after_literal_change(hash);
            drop(evicted);
        }
        self.generation.0.fetch_add(1, Ordering::Release);
        self.generation.1.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Removes one stored occurrence of (subject, queue, sub).
    pub fn remove(
        &self,
        subject: &[u8],
        queue: Option<&[u8]>,
        sub: &T,
    ) -> Result<(), SublistError> {
        subject::validate_subscribe(subject)?;
        if subject::has_wildcard(subject) {
            let mut w = self.wild.write().unwrap_or_else(PoisonError::into_inner);
            if !w.trie.remove(subject, queue, sub) {
                return Err(SublistError::NotFound);
            }
            w.removes += 1;
            self.wild_count.store(w.trie.count(), Ordering::Release);
            self.wc_gen.fetch_add(1, Ordering::Release);
            drop(w);
        } else {
            let hash = hash_bytes(subject);
            let old = self.literal.shard(hash).remove(subject, queue, sub);
            let Ok(old) = old else {
                return Err(SublistError::NotFound);
            };
            drop(old);
            let evicted = self.after_literal_change(hash);
            drop(evicted);
        }
        self.generation.0.fetch_add(1, Ordering::Release);
        self.generation.1.fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }

    /// Called after a literal entry changed (its shard lock released):
    /// invalidate the one cached subject, or everything with `Global`.
    #[inline]
    fn after_literal_change(&self, hash: u64) -> cache::Evicted<T> {
        if self.invalidation == Invalidation::Global {
            self.wc_gen.fetch_add(1, Ordering::Release);
            None
        } else if self.cache.enabled() && self.cache.may_hold() {
            self.cache.invalidate(hash)
        } else {
            None
        }
    }

    /// Literal map only: the entry *is* the cached result. Counted as a hit
    /// when served before since its last change, else as a miss.
    #[inline]
    fn match_direct(&self, hash: u64, subject: &[u8]) -> Matched<T> {
        let mut guard = self.literal.shard(hash);
        let shard = &mut *guard;
        match shard.map.get_mut(subject) {
            Some(lit) => {
                if lit.warm() {
                    shard.hits += 1;
                } else {
                    shard.warm.heat(lit);
                    shard.misses += 1;
                }
                lit.matched()
            }
            None => {
                shard.misses += 1;
                Matched::empty()
            }
        }
    }

    /// Literal lookup plus wildcard-trie walk, no cache; `count_miss` when the
    /// cache is off (the miss is counted in the literal shard, already locked).
    #[inline]
    fn compute(&self, hash: u64, subject: &[u8], count_miss: bool) -> Matched<T> {
        let lit = {
            let mut shard = self.literal.shard(hash);
            if count_miss {
                shard.misses += 1;
            }
            shard.map.get(subject).map(literal::Lit::matched)
        };
        let mut w = MatchResult::new();
        self.wild
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .trie
            .collect(subject, &mut w);
        merge(lit, w)
    }

    /// All subscriptions matching the literal `subject` (wildcard semantics of
    /// the stored patterns apply). A cache hit only clones a handle.
    #[inline]
    pub fn match_subject(&self, subject: &[u8]) -> Matched<T> {
        let hash = hash_bytes(subject);
        if self.wild_count.load(Ordering::Acquire) == 0 {
            return self.match_direct(hash, subject);
        }
        if !self.cache.enabled() {
            return self.compute(hash, subject, true);
        }
        // Read before the miss's trie walk: a result is tagged with a
        // generation no newer than the trie it was computed from.
        let wc_gen = self.wc_gen.load(Ordering::Acquire);
        let ticket = match self.cache.get(hash, subject, wc_gen) {
            Ok(hit) => return hit,
            Err(t) => t,
        };
        self.cache.will_store();
        let out = self.compute(hash, subject, false);
        let evicted = self.cache.put(hash, subject, wc_gen, &out, ticket);
        drop(evicted);
        out
    }

    /// Live subscriptions (lock-free read).
    pub fn count(&self) -> usize {
        self.generation.1.load(Ordering::Relaxed) as usize
    }

    /// Changes on every successful insert/remove, so callers can validate
    /// their own caches with one atomic load.
    pub fn generation(&self) -> u64 {
        self.generation.0.load(Ordering::Acquire)
    }

    /// Counters for `/subsz`; walks the cache and every literal shard, so keep
    /// it off hot paths.
    pub fn stats(&self) -> SublistStats {
        let (wild_count, mut inserts, mut removes) = {
            let w = self.wild.read().unwrap_or_else(PoisonError::into_inner);
            (w.trie.count(), w.inserts, w.removes)
        };
        let mut c = self.cache.counters(self.wc_gen.load(Ordering::Acquire));
        let count = self.count();
        self.literal.for_each_shard(|s| {
            inserts += s.inserts;
            removes += s.removes;
            c.hits += s.hits;
            c.misses += s.misses;
            // Warm literal entries are the cache while no wildcard exists.
            if wild_count == 0 {
                c.entries += s.warm.entries;
                c.total_fanout += s.warm.fanout;
                c.max_fanout = c.max_fanout.max(s.warm.max);
            }
        });
        let matches = c.hits + c.misses;
        SublistStats {
            num_subscriptions: u32::try_from(count).unwrap_or(u32::MAX),
            num_cache: u32::try_from(c.entries).unwrap_or(u32::MAX),
            num_inserts: inserts,
            num_removes: removes,
            num_matches: matches,
            cache_hit_rate: if matches == 0 {
                0.0
            } else {
                c.hits as f64 / matches as f64
            },
            max_fanout: u32::try_from(c.max_fanout).unwrap_or(u32::MAX),
            avg_fanout: if c.entries == 0 {
                0.0
            } else {
                c.total_fanout as f64 / c.entries as f64
            },
        }
    }
}

#[cfg(test)]
mod tests;
