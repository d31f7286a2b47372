//! The bounded match-result cache: literal subject → [`Matched`](super::Matched), split
//! into independently locked shards. Only consulted while wildcard
//! subscriptions exist (without them the literal map is the answer).
//!
//! Owns cache storage, eviction and the per-shard hit/miss counters. Must not
//! touch the trie or the literal map; whether an entry is still valid is
//! decided by the caller's wildcard generation (stored in each entry) and by
//! targeted invalidation (with a per-shard epoch so a miss that raced with an
//! invalidation does not store its possibly stale result).
//!
//! Entries are keyed by the subject's 64-bit hash (an identity hasher, so the
//! subject is hashed once per match) and hold the subject bytes for the
//! equality check; a different subject with the same hash simply replaces the
//! entry. A hit locks one shard, compares hash, subject and generation and
//! clones a handle: no allocation. Counters live inside the shard, under the
//! lock already held, on the shard's own cache line.
//!
//! Memory per entry: a 48-byte map slot (÷ load factor ≈ 0.6 → ~80 B), the
//! subject bytes, and the result (shared with the literal map when only literal
//! subscriptions match, else ~64 B + 8 B per subscriber).

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crossbeam_utils::CachePadded;

use super::hash::IdBuild;
use super::Matched;

/// A cached result, its subject and the wildcard generation it was computed at.
pub(crate) struct Entry<T> {
    key: Box<[u8]>,
    wc_gen: u64,
    result: Matched<T>,
}

struct Shard<T> {
    map: HashMap<u64, Entry<T>, IdBuild>,
    /// Bumped by every targeted invalidation in this shard.
    epoch: u64,
    hits: u64,
    misses: u64,
}

/// Anything taken out of the cache; dropped by the caller after it released
/// its locks, so freeing a large result never lengthens a critical section.
pub(crate) type Evicted<T> = Option<Entry<T>>;

/// Aggregated counters for `SublistStats`.
#[derive(Default)]
pub(crate) struct CacheCounters {
    pub entries: usize,
    pub hits: u64,
    pub misses: u64,
    pub max_fanout: usize,
    pub total_fanout: usize,
}

/// What a miss hands to the later `put`: the shard epoch it saw.
pub(crate) struct Ticket(u64);

pub(crate) struct Cache<T> {
    /// Set (for good) by the first miss that may store; until then writers
    /// skip invalidation. See `may_hold` and `will_store`.
    used: CachePadded<AtomicBool>,
    shards: Box<[CachePadded<Mutex<Shard<T>>>]>,
    mask: usize,
    per_shard: usize,
}

impl<T: Clone> Cache<T> {
    /// `capacity` total entries (0 = never store) over `shards` shards (rounded
    /// up to a power of two, at least 1).
    pub(crate) fn new(capacity: usize, shards: usize) -> Self {
        let n = shards.clamp(1, 1024).next_power_of_two();
        let per_shard = capacity.div_ceil(n);
        let shards = (0..n)
            .map(|_| {
                CachePadded::new(Mutex::new(Shard {
                    map: HashMap::with_hasher(IdBuild),
                    epoch: 0,
                    hits: 0,
                    misses: 0,
                }))
            })
            .collect();
        Cache {
            used: CachePadded::new(AtomicBool::new(false)),
            shards,
            mask: n - 1,
            per_shard,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.per_shard > 0
    }

    /// Called by a miss before it reads the interest it will store a result
    /// of. With `may_hold` this is Dekker's handshake: either the writer sees
    /// `used` and invalidates, or this reader (after its fence) sees the
    /// writer's change, so skipping invalidation never leaves a stale entry.
    #[inline]
    pub(crate) fn will_store(&self) {
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
    }

    /// Called by a writer after its change is visible: false while no miss has
    /// ever prepared to store, so no entry can need invalidating.
    #[inline]
    pub(crate) fn may_hold(&self) -> bool {
        fence(Ordering::SeqCst);
        self.used.load(Ordering::Relaxed)
    }

    #[inline]
    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard<T>> {
        let i = (hash >> 40) as usize & self.mask;
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns the cached result if present and computed at `wc_gen`; counts a
    /// hit or a miss. On a miss, the ticket must be passed to `put`.
    #[inline]
    pub(crate) fn get(&self, hash: u64, subject: &[u8], wc_gen: u64) -> Result<Matched<T>, Ticket> {
        let mut shard = self.shard(hash);
        if let Some(e) = shard.map.get(&hash) {
            if e.wc_gen == wc_gen && *e.key == *subject {
                let r = e.result.clone();
                shard.hits += 1;
                return Ok(r);
            }
        }
        shard.misses += 1;
        Err(Ticket(shard.epoch))
    }

    /// Stores a result unless a targeted invalidation happened in this shard
    /// since the miss (the result may predate it); evicts an arbitrary entry
    /// if the shard is full.
    pub(crate) fn put(
        &self,
        hash: u64,
        subject: &[u8],
        wc_gen: u64,
        result: &Matched<T>,
        ticket: Ticket,
    ) -> Evicted<T> {
        let mut shard = self.shard(hash);
        if shard.epoch != ticket.0 {
            return None;
        }
        let mut evicted = None;
        if shard.map.len() >= self.per_shard && !shard.map.contains_key(&hash) {
            if let Some(&k) = shard.map.keys().next() {
                evicted = shard.map.remove(&k);
            }
        }
        let e = Entry {
            key: Box::from(subject),
            wc_gen,
            result: result.clone(),
        };
        if let Some(old) = shard.map.insert(hash, e) {
            evicted = Some(old);
        }
        evicted
    }

    /// Drops the entry for exactly `subject` (a literal subscription changed)
    /// and makes in-flight misses of this shard skip their store.
    #[inline]
    pub(crate) fn invalidate(&self, hash: u64) -> Evicted<T> {
        let mut shard = self.shard(hash);
        shard.epoch = shard.epoch.wrapping_add(1);
        if shard.map.is_empty() {
            None
        } else {
            shard.map.remove(&hash)
        }
    }

    /// Sums counters and fan-out over all shards (cold path: `/subsz`).
    pub(crate) fn counters(&self, wc_gen: u64) -> CacheCounters {
        let mut c = CacheCounters::default();
        for s in self.shards.iter() {
            let s = s.lock().unwrap_or_else(PoisonError::into_inner);
            c.hits += s.hits;
            c.misses += s.misses;
            for e in s.map.values().filter(|e| e.wc_gen == wc_gen) {
                let f = e.result.len();
                c.entries += 1;
                c.total_fanout += f;
                c.max_fanout = c.max_fanout.max(f);
            }
        }
        c
    }
}
