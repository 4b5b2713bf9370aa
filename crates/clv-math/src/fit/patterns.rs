//! Counts of distinct customer patterns (three f64 columns, as bit patterns) with summed weights:
//! the sufficient statistics a fit aggregate keeps, so its memory grows with distinct rows, not
//! with customers.
//!
//! Why not a `HashMap`: a million customers summarised in days have ~150k distinct patterns, a
//! table of several MB, and every row lands on a random slot of it - the aggregate then runs at
//! the speed of cache misses, one after another. Here rows are buffered and inserted a batch at a
//! time: the slots of the whole batch are prefetched first, so the misses overlap instead of
//! queueing. Open addressing with linear probing, load factor at most 3/4; weights are > 0, so a
//! weight of 0 marks an empty slot.

use crate::fast_hash::FxHasher;
use std::hash::Hasher;

pub type Key = [u64; 3];

#[derive(Clone, Copy, Default)]
struct Slot {
    key: Key,
    w: f64,
}

/// An odd step: visits every slot of a power-of-two table once, in an order unrelated to the hash.
const STRIDE: usize = 0x9E37_79B9_7F4A_7C15_u64 as usize | 1;

/// Rows buffered before a batch insert: enough to keep many misses in flight, small enough to
/// stay in L1.
const BATCH: usize = 64;

#[derive(Clone, Default)]
pub struct PatternCounts {
    slots: Vec<Slot>,
    len: usize,
    pending: Vec<(Key, f64)>,
}

fn hash(k: &Key) -> u64 {
    let mut h = FxHasher::default();
    for v in k {
        h.write_u64(*v);
    }
    h.finish()
}

#[inline]
fn prefetch(p: *const Slot) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl PatternCounts {
    /// Adds `w` (> 0, finite: the caller validates) to the pattern's weight.
    #[inline]
    pub fn add(&mut self, key: Key, w: f64) {
        self.pending.push((key, w));
        if self.pending.len() >= BATCH {
            self.flush();
        }
    }

    /// Number of distinct patterns.
    pub fn len(&mut self) -> usize {
        self.flush();
        self.len
    }

    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Every (pattern, summed weight), in table order.
    pub fn entries(&mut self) -> impl Iterator<Item = (Key, f64)> + '_ {
        self.flush();
        self.slots
            .iter()
            .filter(|s| s.w != 0.0)
            .map(|s| (s.key, s.w))
    }

    /// An empty table with room for `n` patterns (decoding a stored state: no regrowth).
    pub fn with_capacity(n: usize) -> Self {
        let mut p = PatternCounts::default();
        p.reserve(n);
        p
    }

    /// Every (pattern, summed weight) in an order unrelated to the hash (see `merge`): what a
    /// stored state lists, so that decoding it does not insert in hash order either.
    pub fn entries_scattered(&mut self) -> impl Iterator<Item = (Key, f64)> + '_ {
        self.flush();
        let n = self.slots.len();
        (0..n)
            .map(move |i| i.wrapping_mul(STRIDE) & (n.max(1) - 1))
            .map(|i| self.slots[i])
            .filter(|s| s.w != 0.0)
            .map(|s| (s.key, s.w))
    }

    /// Adds every pattern of `other`.
    ///
    /// Not in `other`'s table order: that order follows the hash, and keys inserted in hash
    /// order into a smaller table pile up in one run of slots, so every insert probes the whole
    /// run (Citus combining 32 partial states of a fit took 43 s instead of a fraction of one).
    /// An odd stride visits every slot once, in an order unrelated to the hash.
    pub fn merge(&mut self, other: &mut PatternCounts) {
        other.flush();
        self.flush();
        self.reserve(other.len);
        let n = other.slots.len();
        let mut i = 0usize;
        for _ in 0..n {
            let s = other.slots[i];
            if s.w != 0.0 {
                self.add(s.key, s.w);
            }
            i = i.wrapping_add(STRIDE) & (n - 1);
        }
        self.flush();
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.reserve(self.pending.len());
        let mask = self.slots.len() - 1;
        let mut hashes = [0usize; BATCH];
        let pending = std::mem::take(&mut self.pending);
        for chunk in pending.chunks(BATCH) {
            for (h, (k, _)) in hashes.iter_mut().zip(chunk) {
                *h = hash(k) as usize & mask;
                prefetch(&self.slots[*h]);
            }
            for (&h, &(k, w)) in hashes.iter().zip(chunk) {
                self.insert_at(h, k, w);
            }
        }
        self.pending = pending;
        self.pending.clear();
    }

    #[inline]
    fn insert_at(&mut self, mut i: usize, k: Key, w: f64) {
        let mask = self.slots.len() - 1;
        loop {
            let s = &mut self.slots[i];
            if s.w == 0.0 {
                *s = Slot { key: k, w };
                self.len += 1;
                return;
            }
            if s.key == k {
                s.w += w;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Room for `extra` more patterns at a load factor of at most 3/4.
    fn reserve(&mut self, extra: usize) {
        let need = (self.len + extra) * 4 / 3 + 1;
        if need <= self.slots.len() {
            return;
        }
        let cap = need.next_power_of_two().max(64);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); cap]);
        self.len = 0;
        let mask = cap - 1;
        // Rehashing millions of patterns (random writes into a table of hundreds of MB) takes
        // about a second: check for interrupts on the way (an interrupted state is dropped).
        let mut ticker = crate::interrupt::Ticker::new();
        for s in old.into_iter().filter(|s| s.w != 0.0) {
            ticker.tick();
            self.insert_at(hash(&s.key) as usize & mask, s.key, s.w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn same_counts_as_a_hash_map() {
        let mut p = PatternCounts::default();
        let mut m: HashMap<Key, f64> = HashMap::new();
        // Many repeats of few patterns, then many distinct ones: crosses growth and batches.
        for i in 0..200_000u64 {
            let k = if i % 2 == 0 {
                [i % 37, 0, (i % 11) << 52]
            } else {
                [i, i / 3, 7]
            };
            let w = 1.0 + (i % 4) as f64;
            p.add(k, w);
            *m.entry(k).or_insert(0.0) += w;
        }
        assert_eq!(p.len(), m.len());
        let mut got: Vec<(Key, f64)> = p.entries().collect();
        got.sort_by_key(|e| e.0);
        let mut want: Vec<(Key, f64)> = m.into_iter().collect();
        want.sort_by_key(|e| e.0);
        assert_eq!(got, want);
    }

    #[test]
    fn merging_many_partial_tables_equals_one_table() {
        // 32 partial states of distinct patterns (as Citus combines a distributed fit's), merged
        // one by one into a growing table.
        let mut whole = PatternCounts::default();
        let mut merged = PatternCounts::default();
        for part in 0..32u64 {
            let mut p = PatternCounts::default();
            for i in 0..5_000u64 {
                let k = [part * 5_000 + i, i % 7, 3];
                p.add(k, 1.0);
                whole.add(k, 1.0);
            }
            merged.merge(&mut p);
        }
        assert_eq!(merged.len(), 160_000);
        let mut a: Vec<(Key, f64)> = merged.entries().collect();
        let mut b: Vec<(Key, f64)> = whole.entries().collect();
        a.sort_by_key(|e| e.0);
        b.sort_by_key(|e| e.0);
        assert_eq!(a, b);
    }

    #[test]
    fn merge_adds_weights() {
        let mut a = PatternCounts::default();
        let mut b = PatternCounts::default();
        a.add([1, 2, 3], 1.0);
        b.add([1, 2, 3], 2.5);
        b.add([4, 5, 6], 1.0);
        a.merge(&mut b);
        let mut e: Vec<(Key, f64)> = a.entries().collect();
        e.sort_by_key(|x| x.0);
        assert_eq!(e, vec![([1, 2, 3], 3.5), ([4, 5, 6], 1.0)]);
        assert!(PatternCounts::default().is_empty());
    }
}
