//! Randomness, in the two strengths natrium needs: the OS source for anything
//! a peer must not predict (nonces, the server id), and a cheap xorshift for
//! spreading load (queue-group member choice), where speed matters and
//! secrecy does not.
//!
//! Owns no state beyond a generator's own word; must not fall back from the OS
//! source to anything weaker: callers fail closed instead.

/// The OS random source failed: nothing that needs unpredictability may go on.
#[derive(Debug, thiserror::Error)]
#[error("OS random source failed: {0}")]
pub struct RandError(String);

/// Fills `buf` from the OS random source (getrandom(2) on Linux).
pub fn os_fill(buf: &mut [u8]) -> Result<(), RandError> {
    getrandom::getrandom(buf).map_err(|e| RandError(e.to_string()))
}

/// The base32 alphabet of server ids and reply tags (nats-server's nkey-like ids).
pub const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Random bytes as text over `alphabet` (one character per byte, `byte %
/// alphabet.len()`): ids, tags and event ids built from `os_fill` output.
pub fn text(raw: &[u8], alphabet: &[u8]) -> String {
    raw.iter()
        .filter_map(|b| alphabet.get(usize::from(*b) % alphabet.len().max(1)))
        .map(|c| char::from(*c))
        .collect()
}

/// xorshift64: one word of state, three shifts per draw. For spreading choices
/// (which queue member starts), never for secrets.
#[derive(Debug, Clone)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator from any seed (zero is mapped to a non-zero state: zero is
    /// xorshift's one fixed point).
    pub fn new(seed: u64) -> Self {
        XorShift64(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n` (`n > 0`; the slight modulo bias is irrelevant for
    /// spreading load).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_spreads_over_small_ranges() {
        let mut r = XorShift64::new(0);
        let mut seen = [0u32; 4];
        for _ in 0..4000 {
            seen[r.below(4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    #[test]
    fn os_source_fills() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        os_fill(&mut a).expect("os random");
        os_fill(&mut b).expect("os random");
        assert_ne!(a, b);
    }
}
