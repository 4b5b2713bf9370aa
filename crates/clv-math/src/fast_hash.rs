//! A fast hasher for small keys of floats (rustc's FxHash): the fit aggregates' pattern counts and
//! the CLV memo hash a few u64s per row, where SipHash's DoS resistance buys nothing.

use std::hash::{BuildHasherDefault, Hasher};

/// FxHash's combining step with a final avalanche: keys are f64 bit patterns, whose low bits are
/// often all zero (whole numbers), and hashbrown picks buckets from the low bits.
#[derive(Default)]
pub struct FxHasher(u64);

const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        // murmur3's fmix64: every input bit reaches every output bit.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
    // `[u64; N]` hashes as one byte slice: take it 8 bytes at a time, not byte by byte.
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for b in chunks.remainder() {
            self.write_u64(*b as u64);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(K);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

pub type FxBuild = BuildHasherDefault<FxHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash>(v: &T) -> u64 {
        FxBuild::default().hash_one(v)
    }

    #[test]
    fn whole_numbers_spread_over_low_bits() {
        // Keys that differ only in high bits (whole-number floats) must not share bucket bits.
        let mut buckets = std::collections::HashSet::new();
        for x in 0..1024 {
            buckets.insert(hash(&[(x as f64).to_bits(), 0, 38.0f64.to_bits()]) & 1023);
        }
        assert!(
            buckets.len() > 600,
            "{} distinct low-10-bit buckets of 1024",
            buckets.len()
        );
        assert_ne!(hash(&[1u64, 2, 3]), hash(&[3u64, 2, 1]));
    }
}
