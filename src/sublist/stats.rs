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

impl SublistStats {
    /// Folds another engine's counters in (a server of several accounts
    /// reports one `/subsz` over all of them, as nats-server).
    pub fn merge(&mut self, o: &SublistStats) {
        let hits =
            self.cache_hit_rate * self.num_matches as f64 + o.cache_hit_rate * o.num_matches as f64;
        let fan =
            self.avg_fanout * f64::from(self.num_cache) + o.avg_fanout * f64::from(o.num_cache);
        self.num_subscriptions = self.num_subscriptions.saturating_add(o.num_subscriptions);
        self.num_cache = self.num_cache.saturating_add(o.num_cache);
        self.num_inserts += o.num_inserts;
        self.num_removes += o.num_removes;
        self.num_matches += o.num_matches;
        self.max_fanout = self.max_fanout.max(o.max_fanout);
        self.cache_hit_rate = if self.num_matches == 0 {
            0.0
        } else {
            hits / self.num_matches as f64
        };
        self.avg_fanout = if self.num_cache == 0 {
            0.0
        } else {
            fan / f64::from(self.num_cache)
        };
    }
}
