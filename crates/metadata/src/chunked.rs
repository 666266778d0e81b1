//! [`ChunkedMap`]: a sorted map whose copies share storage, so that changing one entry of a copy
//! costs a chunk, not the map.
//!
//! Images are copied for every delta. With plain `BTreeMap`s a delta that changes one topic of
//! 10,000 clones 10,000 entries; here it clones the chunk index (one `Arc` per [`CHUNK`]
//! entries) and the one chunk it changes (at most `2 * CHUNK` entries).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Bound, Index};
use std::sync::Arc;

/// Entries per chunk after a split; a chunk holds at most twice as many.
pub const CHUNK: usize = 64;

type Chunk<K, V> = Arc<BTreeMap<K, V>>;

/// A sorted map of chunks, each shared between copies until one of them changes it.
///
/// The chunk index is keyed by each chunk's first key. Every chunk is non-empty.
#[derive(Clone)]
pub struct ChunkedMap<K, V> {
    chunks: Arc<BTreeMap<K, Chunk<K, V>>>,
    len: usize,
}

impl<K, V> Default for ChunkedMap<K, V> {
    fn default() -> Self {
        Self {
            chunks: Arc::default(),
            len: 0,
        }
    }
}

impl<K: Ord + Clone, V: Clone> ChunkedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first key of the chunk that holds (or would hold) `key`.
    fn chunk_key<Q>(&self, key: &Q) -> Option<&K>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.chunks
            .range::<Q, _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
            .or_else(|| self.chunks.iter().next())
            .map(|(k, _)| k)
    }

    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let first = self.chunk_key(key)?;
        self.chunks.get(first.borrow())?.get(key)
    }

    /// True when `key` has a value.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Takes the chunk keyed `first` out of the index, for changing.
    fn take_chunk(&mut self, first: &K) -> BTreeMap<K, V> {
        let chunk = Arc::make_mut(&mut self.chunks)
            .remove(first)
            .unwrap_or_default();
        Arc::try_unwrap(chunk).unwrap_or_else(|shared| (*shared).clone())
    }

    /// Puts a changed chunk back, split in two when it grew past `2 * CHUNK`.
    fn put_chunk(&mut self, mut chunk: BTreeMap<K, V>) {
        let chunks = Arc::make_mut(&mut self.chunks);
        if chunk.len() > 2 * CHUNK {
            let middle = chunk
                .keys()
                .nth(chunk.len() / 2)
                .cloned()
                .expect("a chunk over 2 * CHUNK has a middle key");
            let upper = chunk.split_off(&middle);
            chunks.insert(middle, Arc::new(upper));
        }
        if let Some(first) = chunk.keys().next().cloned() {
            chunks.insert(first, Arc::new(chunk));
        }
    }

    /// The value of `key`, to change in place (its chunk is copied first if shared).
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let first = self.chunk_key(key)?.clone();
        let chunk = Arc::make_mut(&mut self.chunks).get_mut::<K>(&first)?;
        if !chunk.contains_key(key) {
            return None;
        }
        Arc::make_mut(chunk).get_mut(key)
    }

    /// The value of `key`, inserted from `default` when absent, to change in place.
    pub fn get_or_insert_with(&mut self, key: K, default: impl FnOnce() -> V) -> &mut V {
        if !self.contains_key(&key) {
            self.insert(key.clone(), default());
        }
        self.get_mut(&key).expect("the entry was inserted above")
    }

    /// Sets `key` to `value`; returns the previous value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let Some(first) = self.chunk_key(&key).cloned() else {
            self.put_chunk(BTreeMap::from([(key, value)]));
            self.len = 1;
            return None;
        };
        let mut chunk = self.take_chunk(&first);
        let old = chunk.insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        self.put_chunk(chunk);
        old
    }

    /// Removes `key`; returns its value. A chunk left small is merged into its predecessor.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let first = self.chunk_key(key)?.clone();
        if !self.chunks.get::<K>(&first)?.contains_key(key) {
            return None;
        }
        let mut chunk = self.take_chunk(&first);
        let old = chunk.remove(key);
        self.len -= 1;
        if chunk.len() < CHUNK / 4 {
            let before = self
                .chunks
                .range::<K, _>(..&first)
                .next_back()
                .map(|(k, _)| k.clone());
            if let Some(before) = before {
                let mut merged = self.take_chunk(&before);
                merged.append(&mut chunk);
                chunk = merged;
            }
        }
        self.put_chunk(chunk);
        old
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.chunks.values().flat_map(|c| c.iter())
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }
}

impl<K: Ord + Clone, V: Clone + PartialEq> PartialEq for ChunkedMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<K: Ord + Clone, V: Clone + Eq> Eq for ChunkedMap<K, V> {}

impl<K: Ord + Clone + fmt::Debug, V: Clone + fmt::Debug> fmt::Debug for ChunkedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K, V, Q> Index<&Q> for ChunkedMap<K, V>
where
    K: Ord + Clone + Borrow<Q>,
    V: Clone,
    Q: Ord + ?Sized,
{
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry for the key in ChunkedMap")
    }
}

impl<'a, K: Ord + Clone, V: Clone> IntoIterator for &'a ChunkedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Box<dyn Iterator<Item = (&'a K, &'a V)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl<K: Ord + Clone, V: Clone> FromIterator<(K, V)> for ChunkedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = Self::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u32),
        Remove(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u16..600, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            2 => (0u16..600).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// The map answers exactly as a BTreeMap fed the same operations, and copies taken
        /// along the way keep their contents.
        #[test]
        fn behaves_as_a_btreemap(ops in proptest::collection::vec(op(), 0..1500)) {
            let mut map = ChunkedMap::new();
            let mut model = BTreeMap::new();
            let mut copies = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                match *op {
                    Op::Insert(k, v) => prop_assert_eq!(map.insert(k, v), model.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(map.remove(&k), model.remove(&k)),
                }
                if i % 100 == 0 {
                    copies.push((map.clone(), model.clone()));
                }
            }
            prop_assert_eq!(map.len(), model.len());
            prop_assert!(map.iter().eq(model.iter()));
            for k in 0u16..600 {
                prop_assert_eq!(map.get(&k), model.get(&k));
            }
            for (copy, then) in copies {
                prop_assert!(copy.iter().eq(then.iter()));
                prop_assert_eq!(copy.len(), then.len());
            }
            for chunk in map.chunks.values() {
                prop_assert!(!chunk.is_empty() && chunk.len() <= 2 * CHUNK);
            }
            for (first, chunk) in map.chunks.iter() {
                prop_assert_eq!(chunk.keys().next(), Some(first));
            }
        }
    }

    #[test]
    fn a_change_copies_one_chunk_of_a_shared_map() {
        let map: ChunkedMap<u32, u32> = (0..10_000).map(|k| (k, k)).collect();
        let mut copy = map.clone();
        copy.insert(5_000, 0);
        let shared = map
            .chunks
            .values()
            .zip(copy.chunks.values())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(
            shared,
            map.chunks.len() - 1,
            "only the changed chunk is copied"
        );
        assert_eq!(map[&5_000], 5_000);
        assert_eq!(copy[&5_000], 0);
    }
}
