//! The bounded match-result cache: literal subject → `Arc<MatchResult>`, split
//! into independently locked shards.
//!
//! Owns cache storage, eviction and the per-shard hit/miss counters. Must not
//! touch the trie; whether an entry is still valid is decided by the caller's
//! wildcard generation (stored in each entry) and by targeted invalidation.
//!
//! A hit locks one shard (a few ns uncontended), compares the generation and
//! clones an `Arc`: no allocation. Counters live inside the shard, under the
//! lock already held, on the shard's own cache line: no shared atomic on a hit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crossbeam_utils::CachePadded;

use super::hash::{hash_bytes, FastBuild};
use super::MatchResult;

/// A cached result and the wildcard generation it was computed at.
pub(crate) struct Entry<T> {
    wc_gen: u64,
    result: Arc<MatchResult<T>>,
}

struct Shard<T> {
    map: HashMap<Box<[u8]>, Entry<T>, FastBuild>,
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

pub(crate) struct Cache<T> {
    shards: Box<[CachePadded<Mutex<Shard<T>>>]>,
    mask: usize,
    per_shard: usize,
}

impl<T> Cache<T> {
    /// `capacity` total entries (0 = never store) over `shards` shards (rounded
    /// up to a power of two, at least 1).
    pub(crate) fn new(capacity: usize, shards: usize) -> Self {
        let n = shards.clamp(1, 1024).next_power_of_two();
        let per_shard = capacity.div_ceil(n);
        let shards = (0..n)
            .map(|_| {
                CachePadded::new(Mutex::new(Shard {
                    map: HashMap::with_hasher(FastBuild),
                    hits: 0,
                    misses: 0,
                }))
            })
            .collect();
        Cache {
            shards,
            mask: n - 1,
            per_shard,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.per_shard > 0
    }

    #[inline]
    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard<T>> {
        let i = (hash >> 40) as usize & self.mask;
        self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns the cached result if present and computed at `wc_gen`; counts a
    /// hit or a miss. A stale entry is removed and handed back for dropping.
    #[inline]
    pub(crate) fn get(
        &self,
        hash: u64,
        subject: &[u8],
        wc_gen: u64,
    ) -> Result<Arc<MatchResult<T>>, Evicted<T>> {
        let mut shard = self.shard(hash);
        match shard.map.get(subject) {
            Some(e) if e.wc_gen == wc_gen => {
                let r = Arc::clone(&e.result);
                shard.hits += 1;
                Ok(r)
            }
            Some(_) => {
                shard.misses += 1;
                Err(shard.map.remove(subject))
            }
            None => {
                shard.misses += 1;
                Err(None)
            }
        }
    }

    /// Counts a miss without looking (used when the cache is off).
    pub(crate) fn count_miss(&self, hash: u64) {
        self.shard(hash).misses += 1;
    }

    /// Stores a result, evicting one arbitrary entry if the shard is full.
    pub(crate) fn put(
        &self,
        hash: u64,
        subject: &[u8],
        wc_gen: u64,
        result: Arc<MatchResult<T>>,
    ) -> Evicted<T> {
        let mut shard = self.shard(hash);
        let mut evicted = None;
        if shard.map.len() >= self.per_shard && !shard.map.contains_key(subject) {
            let victim: Option<Box<[u8]>> = shard.map.keys().next().cloned();
            if let Some(k) = victim {
                evicted = shard.map.remove(&k);
            }
        }
        if let Some(old) = shard
            .map
            .insert(Box::from(subject), Entry { wc_gen, result })
        {
            evicted = Some(old);
        }
        evicted
    }

    /// Drops the entry for exactly `subject` (a literal subscription changed).
    #[inline]
    pub(crate) fn invalidate(&self, subject: &[u8]) -> Evicted<T> {
        self.shard(hash_bytes(subject)).map.remove(subject)
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
