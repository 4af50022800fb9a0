//! A bounded cache of object data, least recently used dropped first, bounded in bytes. The
//! delta base cache (objects rebuilt on the way to others, by pack and offset) shared by every
//! thread reading the database, and the connectivity walk's recent trees (by id) are two.

use super::fast_map::FastMap;
use std::collections::BTreeMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

struct Slot {
    kind: u8,
    data: Arc<Vec<u8>>,
    stamp: u64,
}

struct Inner<K> {
    map: FastMap<K, Slot>,
    /// stamp -> key, oldest first.
    order: BTreeMap<u64, K>,
    bytes: usize,
    clock: u64,
}

impl<K> Default for Inner<K> {
    fn default() -> Self {
        Inner { map: FastMap::default(), order: BTreeMap::new(), bytes: 0, clock: 0 }
    }
}

pub struct Lru<K> {
    limit: usize,
    inner: Mutex<Inner<K>>,
}

/// Delta bases by (pack, offset).
pub type BaseCache = Lru<(u32, u64)>;

impl<K: Hash + Eq + Copy> Lru<K> {
    pub fn new(limit: usize) -> Lru<K> {
        Lru { limit, inner: Mutex::new(Inner::default()) }
    }

    pub fn get(&self, key: &K) -> Option<(u8, Arc<Vec<u8>>)> {
        let mut g = self.inner.lock().unwrap();
        let inner = &mut *g;
        let slot = inner.map.get_mut(key)?;
        inner.clock += 1;
        inner.order.remove(&slot.stamp);
        slot.stamp = inner.clock;
        inner.order.insert(slot.stamp, *key);
        Some((slot.kind, slot.data.clone()))
    }

    /// Keeps `data` unless it is larger than a quarter of the cache (one object must not flush
    /// everything else).
    pub fn put(&self, key: K, kind: u8, data: &Arc<Vec<u8>>) {
        let size = data.len();
        if size > self.limit / 4 {
            return;
        }
        let mut g = self.inner.lock().unwrap();
        let inner = &mut *g;
        if inner.map.contains_key(&key) {
            return;
        }
        inner.clock += 1;
        let stamp = inner.clock;
        inner.map.insert(key, Slot { kind, data: data.clone(), stamp });
        inner.order.insert(stamp, key);
        inner.bytes += size;
        while inner.bytes > self.limit {
            let (stamp, old_key) = match inner.order.iter().next() {
                Some((s, k)) => (*s, *k),
                None => break,
            };
            inner.order.remove(&stamp);
            if let Some(old) = inner.map.remove(&old_key) {
                inner.bytes -= old.data.len();
            }
        }
    }

    pub fn clear(&self) {
        *self.inner.lock().unwrap() = Inner::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_goes_first_and_bytes_stay_bounded() {
        let c = BaseCache::new(40);
        let v = |n: usize| Arc::new(vec![0u8; n]);
        c.put((0, 1), 3, &v(10));
        c.put((0, 2), 3, &v(10));
        c.put((0, 3), 3, &v(10));
        assert!(c.get(&(0, 1)).is_some()); // 1 is now the most recent
        c.put((0, 4), 3, &v(10));
        c.put((0, 5), 3, &v(10)); // over 40: 2 goes
        assert!(c.get(&(0, 2)).is_none());
        assert!(c.get(&(0, 1)).is_some());
        assert_eq!(c.get(&(0, 5)).unwrap().1.len(), 10);
        c.put((1, 1), 3, &v(11)); // more than a quarter: not kept
        assert!(c.get(&(1, 1)).is_none());
        assert!(c.inner.lock().unwrap().bytes <= 40);
    }
}
