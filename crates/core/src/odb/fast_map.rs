//! A fast hasher for the walk's and the cache's tables. Object ids are already uniform, so
//! SipHash (std's default) is wasted work there: it was most of the connectivity walk's time.
//! Keys still go through a multiply-and-fold with a per-process random seed, so that ids a
//! hostile server picked for colliding low bits do not pile up in one bucket.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::Once;

const K: u64 = 0x9E37_79B9_7F4A_7C15;

fn seed() -> u64 {
    static INIT: Once = Once::new();
    static mut SEED: u64 = 0;
    // SAFETY: written once, inside call_once, before any read (call_once synchronizes).
    unsafe {
        INIT.call_once(|| SEED = std::collections::hash_map::RandomState::new().build_hasher().finish() | 1);
        SEED
    }
}

#[derive(Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, w: u64) {
        let h = (self.0 ^ w).wrapping_mul(K);
        self.0 = h ^ (h >> 29);
    }
    fn write_u32(&mut self, w: u32) {
        self.write_u64(w as u64);
    }
    fn write_u8(&mut self, w: u8) {
        self.write_u64(w as u64);
    }
    /// Slice and array lengths (the same for every key of a table) add nothing.
    fn write_usize(&mut self, _: usize) {}
    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Clone, Copy, Default)]
pub struct FastState;

impl BuildHasher for FastState {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(seed())
    }
}

/// An object id as a table key: hashed from its first 16 bytes, compared as three words
/// (no call to memcmp per probe).
#[derive(Clone, Copy, Debug)]
pub struct Id(pub [u8; 20]);

impl Id {
    fn words(&self) -> (u64, u64, u32) {
        let b = &self.0;
        (u64::from_ne_bytes(b[..8].try_into().unwrap()), u64::from_ne_bytes(b[8..16].try_into().unwrap()), u32::from_ne_bytes(b[16..].try_into().unwrap()))
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Id) -> bool {
        self.words() == other.words()
    }
}

impl Eq for Id {}

impl std::hash::Hash for Id {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (a, b, _) = self.words();
        state.write_u64(a);
        state.write_u64(b);
    }
}

pub type FastMap<K, V> = HashMap<K, V, FastState>;
pub type FastSet<K> = HashSet<K, FastState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differing_anywhere_hash_apart() {
        let base = [7u8; 20];
        let h = |k: &[u8; 20]| {
            let mut hasher = FastState.build_hasher();
            std::hash::Hash::hash(k, &mut hasher);
            hasher.finish()
        };
        for i in 0..20 {
            let mut k = base;
            k[i] ^= 1;
            assert_ne!(h(&k), h(&base), "byte {}", i);
        }
        let mut s: FastSet<[u8; 20]> = FastSet::default();
        for i in 0..1000u32 {
            let mut k = [0u8; 20];
            k[16..].copy_from_slice(&i.to_be_bytes());
            assert!(s.insert(k));
        }
        assert_eq!(s.len(), 1000);
        let mut ids: FastSet<Id> = FastSet::default();
        for i in 0..1000u32 {
            let mut k = [0u8; 20];
            k[16..].copy_from_slice(&i.to_be_bytes()); // differ only past the hashed bytes
            assert!(ids.insert(Id(k)));
        }
        assert!(!ids.insert(Id([0u8; 20])));
        assert_eq!(ids.len(), 1000);
    }
}
