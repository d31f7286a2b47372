//! The statistics `/subsz` publishes, with nats-server's field names.
//!
//! Owns only the data shape; the numbers are gathered by `Sublist::stats` from
//! counters kept where they are cheapest (writer counters under the trie lock,
//! match counters inside each cache shard). Must not touch hot-path state.

/// Snapshot of the engine's counters, serialised as `/subsz` fields.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct SublistStats {
    /// Live subscriptions.
    pub num_subscriptions: u32,
    /// Valid entries in the match cache.
    pub num_cache: u32,
    /// Successful inserts since creation.
    pub num_inserts: u64,
    /// Successful removes since creation.
    pub num_removes: u64,
    /// `match_subject` calls since creation.
    pub num_matches: u64,
    /// Cache hits / matches, 0 when nothing was matched.
    pub cache_hit_rate: f64,
    /// Largest fan-out (plain subscribers + one per queue group) among cached
    /// results, as nats-server computes it.
    pub max_fanout: u32,
    /// Mean fan-out among cached results.
    pub avg_fanout: f64,
}
