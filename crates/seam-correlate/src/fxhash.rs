//! A fast hasher for maps keyed by trace ids and pre-hashed keys. Trace ids are random, and
//! string keys are hashed with xxh3 before they reach a map, so SipHash's flood resistance buys
//! nothing here and costs a tenth of the matcher's time.

use std::hash::{BuildHasherDefault, Hasher};

/// The Fx multiply-rotate hasher (as in rustc), word at a time.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    /// Ends with murmur3's avalanche: Fx alone leaves the low bits (the table index) weak when
    /// ids vary only in their high bytes, as counters and time-prefixed ids do.
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Builds [`FxHasher`]s for `HashMap`/`HashSet`.
pub type FxBuild = BuildHasherDefault<FxHasher>;

/// A `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuild>;

/// A `HashSet` with [`FxHasher`].
pub type FxHashSet<T> = std::collections::HashSet<T, FxBuild>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn ids_differing_only_in_high_bytes_spread_over_low_bits() {
        let b = FxBuild::default();
        let mut low = std::collections::HashSet::new();
        for flow in 0u64..4096 {
            let mut t = [0u8; 16];
            t[..8].copy_from_slice(&flow.to_be_bytes());
            low.insert(b.hash_one(t) & 0xfff);
        }
        assert!(low.len() > 2500, "{}", low.len());
    }
}
