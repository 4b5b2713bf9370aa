//! A fast hasher for small keys of floats (rustc's FxHash): the fit aggregates' pattern counts and
//! the CLV memo hash a few u64s per row, where SipHash's DoS resistance buys nothing.

use std::hash::{BuildHasherDefault, Hasher};

/// FxHash (rustc's hasher): CLV memo keys are a few floats, SipHash would cost more than a lookup saves.
#[derive(Default)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(*b as u64);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub type FxBuild = BuildHasherDefault<FxHasher>;
