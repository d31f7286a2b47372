//! A small, fast, per-process seeded hasher for the byte-string keys of the trie
//! and of the match cache.
//!
//! Owns only hashing. std's SipHash costs more than the whole cache lookup we
//! aim for (≤ 50 ns), and the builder must be zero-sized so every trie node's map
//! stays 32 bytes. The seed is random per process, so clients cannot precompute
//! colliding subjects; it is not a cryptographic hash.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::OnceLock;

const K: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xd6e8_feb8_6659_fd93;

static SEED: OnceLock<u64> = OnceLock::new();

#[inline]
fn seed() -> u64 {
    *SEED.get_or_init(|| RandomState::new().hash_one(K) | 1)
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Zero-sized builder for [`FastHasher`]; see the module docs for why.
#[derive(Clone, Copy, Default, Debug)]
pub struct FastBuild;

impl BuildHasher for FastBuild {
    type Hasher = FastHasher;
    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher { h: seed() }
    }
}

/// Folded-multiply hasher consuming 8 bytes per step.
#[derive(Clone, Copy, Debug)]
pub struct FastHasher {
    h: u64,
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.h;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = fold_mul(h ^ u64::from_le_bytes(w), K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            h = fold_mul(h ^ u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56), K2);
        }
        self.h = h;
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.h = fold_mul(self.h ^ n as u64, K);
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.h = fold_mul(self.h ^ n, K);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold_mul(self.h, K2 ^ seed())
    }
}

/// Passes a precomputed 64-bit hash through (keys that carry their hash:
/// the cache's subject hashes, the trie's token keys).
#[derive(Default, Clone, Copy, Debug)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, _: &[u8]) {
        unreachable!("IdHasher only hashes precomputed u64 hashes")
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Zero-sized builder for [`IdHasher`].
#[derive(Default, Clone, Copy, Debug)]
pub struct IdBuild;

impl BuildHasher for IdBuild {
    type Hasher = IdHasher;
    #[inline]
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

/// Hash of a key exactly as the maps hash a `Box<[u8]>`/`[u8]` key (length
/// prefix, then bytes), so the cache can pick a shard from the same value.
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    FastBuild.hash_one(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_inputs_spread() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..10_000u32 {
            let s = format!("foo.{i}.bar");
            seen.insert(hash_bytes(s.as_bytes()) & 0xffff_ffff);
        }
        assert!(seen.len() > 9_990);
        assert_ne!(hash_bytes(b""), hash_bytes(b"\0"));
        assert_ne!(hash_bytes(b"abcdefgh"), hash_bytes(b"abcdefgh\0"));
    }
}
