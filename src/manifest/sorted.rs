//! [`SortedMap`]: the credentials' map built from entries that arrive in name order, as a
//! manifest lists them, with full B-tree nodes. Inserted one at a time, a map's nodes end
//! half full: 4.7 MB for 10,000 entries where full nodes hold them in 2.6 MB.

use std::collections::{BTreeMap, btree_map};

/// A map under construction: entries after the last one wait in a chunk, which is added
/// to the map at once (rebuilding it, with full nodes, freeing the old ones as it goes),
/// so that neither a vector of every entry nor two maps are held. A chunk of a sixteenth
/// of the map keeps the rebuilding linear in all, and what it holds twice small. Entries
/// out of order (a hand-edited file) wait in a map of their own, merged in once at the end:
/// a rebuild for each would be quadratic in a file whose names alternate.
pub struct SortedMap<V> {
    map: BTreeMap<String, V>,
    chunk: Vec<(String, V)>,
    strays: BTreeMap<String, V>,
}

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        SortedMap {
            map: BTreeMap::new(),
            chunk: Vec::new(),
            strays: BTreeMap::new(),
        }
    }
}

impl<V> SortedMap<V> {
    /// Add an entry after the last; `false` (and nothing added) when `key` is not after it.
    pub fn push(&mut self, key: String, value: V) -> bool {
        if !self.after_last(&key) {
            return false;
        }
        self.chunk.push((key, value));
        if self.chunk.len() >= (self.map.len() / 16).max(1024) {
            self.map
                .append(&mut std::mem::take(&mut self.chunk).into_iter().collect());
        }
        true
    }

    /// Add an entry anywhere; `false` (and nothing changed) when `key` is there already.
    pub fn insert(&mut self, key: String, value: V) -> bool {
        if self.after_last(&key) {
            return self.push(key, value);
        }
        // A key after every stray's is never a stray's: only this path adds strays.
        let known = self.map.contains_key(&key)
            || (self.chunk)
                .binary_search_by(|(k, _)| k.as_str().cmp(&key))
                .is_ok();
        match self.strays.entry(key) {
            btree_map::Entry::Vacant(slot) if !known => {
                slot.insert(value);
                true
            }
            _ => false,
        }
    }

    fn after_last(&self, key: &str) -> bool {
        let last = self.chunk.last().map(|(last, _)| last);
        last.or(self.map.last_key_value().map(|(last, _)| last))
            .is_none_or(|last| last.as_str() < key)
    }

    pub fn finish(mut self) -> BTreeMap<String, V> {
        self.map.append(&mut self.chunk.into_iter().collect());
        self.map.append(&mut self.strays);
        self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the order, the map holds what a `BTreeMap` given the same inserts holds,
        /// and a key given twice is refused the second time.
        #[test]
        fn same_as_a_btreemap(keys in proptest::collection::vec(0u16..3000, 0..5000), sorted: bool) {
            let mut keys: Vec<String> = keys.iter().map(|k| format!("key-{k}")).collect();
            if sorted {
                keys.sort();
            }
            let mut built = SortedMap::default();
            let mut expected = BTreeMap::new();
            for (i, key) in keys.into_iter().enumerate() {
                let fresh = !expected.contains_key(&key);
                if fresh {
                    expected.insert(key.clone(), i);
                }
                prop_assert_eq!(built.insert(key, i), fresh);
            }
            prop_assert_eq!(built.finish(), expected);
        }
    }

    /// Names from two runs, interleaved (`dev-a, prod-a, dev-b, prod-b, ...`): each
    /// second one is out of order; they wait as strays (no rebuild of the map for each,
    /// which made this quadratic) and all end up in the map.
    #[test]
    fn alternating_runs_are_all_kept() {
        let mut built = SortedMap::default();
        for i in 0..20_000 {
            let key = format!("{}-{:05}", if i % 2 == 0 { "dev" } else { "prod" }, i / 2);
            assert!(built.insert(key, i));
        }
        let map = built.finish();
        assert_eq!(map.len(), 20_000);
        assert!(map.keys().zip(map.keys().skip(1)).all(|(a, b)| a < b));
    }

    #[test]
    fn push_refuses_what_is_not_after_the_last() {
        let mut map = SortedMap::default();
        assert!(map.push("b".to_string(), 1));
        assert!(!map.push("a".to_string(), 2));
        assert!(!map.push("b".to_string(), 3));
        assert!(map.push("c".to_string(), 4));
        assert_eq!(
            map.finish().into_iter().collect::<Vec<_>>(),
            [("b".to_string(), 1), ("c".to_string(), 4)]
        );
    }
}
