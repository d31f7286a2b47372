//! Tests of the matching engine through its public API: edge cases of
//! subjects and wildcards, a property test against a naive model, and
//! concurrent subscribe/unsubscribe/match stress.

mod edges;
mod props;
mod stress;
