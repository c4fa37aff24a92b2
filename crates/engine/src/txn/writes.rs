//! A transaction's buffered writes.
//!
//! They sit in a hash table by stored key: what a transaction does with
//! them most — put a key, read back a key it may have written — is a point
//! operation, and a hash table does it without comparing keys along a tree
//! path. Each entry keeps its key's hash, so the table grows without
//! hashing its keys again. Order is needed only by an iterator over the
//! transaction's view, which sorts the writes within its range once, when
//! it is made, and by the commit, which sorts them all once.

use std::hash::{BuildHasher, RandomState};
use std::ops::{Bound, RangeBounds};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::memtable::{ScanItem, Slot};

/// One write: the key's hash, the stored key, its value or `None`.
type Write = (u64, Vec<u8>, Slot);

/// A transaction's writes by stored key: a value, or `None` for a delete.
/// Keys are hashed with the standard library's randomly keyed hasher, so
/// keys chosen to collide cannot slow a transaction down.
#[derive(Debug, Default)]
pub(crate) struct WriteSet {
    table: HashTable<Write>,
    hasher: RandomState,
}

impl WriteSet {
    /// The write of `key`, if the transaction made one.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&Slot> {
        // A transaction that has written nothing (every read-only one)
        // skips hashing the key.
        if self.table.is_empty() {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        self.table
            .find(hash, |(h, k, _)| *h == hash && k.as_slice() == key)
            .map(|(_, _, v)| v)
    }

    /// Records a write of `key`, replacing an earlier one.
    pub(crate) fn insert(&mut self, key: Vec<u8>, value: Slot) {
        let hash = self.hasher.hash_one(key.as_slice());
        let found = self
            .table
            .entry(hash, |(h, k, _)| *h == hash && *k == key, |(h, _, _)| *h);
        match found {
            Entry::Occupied(mut o) => o.get_mut().2 = value,
            Entry::Vacant(v) => {
                v.insert((hash, key, value));
            }
        }
    }

    /// Number of keys written.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether nothing was written.
    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The writes, by reference, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Slot)> {
        self.table.iter().map(|(_, k, v)| (k, v))
    }

    /// Copies of the writes within `(lower, upper)`, in key order.
    pub(crate) fn in_range(&self, lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> Vec<ScanItem> {
        let range = (
            lower.as_ref().map(Vec::as_slice),
            upper.as_ref().map(Vec::as_slice),
        );
        let mut items: Vec<ScanItem> = self
            .iter()
            .filter(|(k, _)| range.contains(&k.as_slice()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        items
    }

    /// The writes, owned, in no particular order.
    pub(crate) fn into_writes(self) -> impl Iterator<Item = (Vec<u8>, Slot)> {
        self.table.into_iter().map(|(_, k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::ops::RangeBounds;

    fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
        prop_oneof![
            Just(Bound::Unbounded),
            prop::collection::vec(0u8..4, 0..3).prop_map(Bound::Included),
            prop::collection::vec(0u8..4, 0..3).prop_map(Bound::Excluded),
        ]
    }

    proptest! {
        #[test]
        fn writes_match_an_ordered_model(
            ops in prop::collection::vec(
                (prop::collection::vec(0u8..4, 0..3), prop::option::of(prop::collection::vec(any::<u8>(), 0..3))),
                0..40,
            ),
            probes in prop::collection::vec(prop::collection::vec(0u8..4, 0..3), 0..8),
            lo in bound(),
            hi in bound(),
        ) {
            let mut set = WriteSet::default();
            let mut model: BTreeMap<Vec<u8>, Slot> = BTreeMap::new();
            for (k, v) in &ops {
                set.insert(k.clone(), v.clone());
                model.insert(k.clone(), v.clone());
            }
            prop_assert_eq!(set.len(), model.len());
            for k in model.keys().chain(&probes) {
                prop_assert_eq!(set.get(k), model.get(k));
            }
            // Every range, inverted ones included (they hold nothing).
            let want: Vec<ScanItem> = model
                .iter()
                .filter(|(k, _)| {
                    (lo.as_ref().map(Vec::as_slice), hi.as_ref().map(Vec::as_slice))
                        .contains(k.as_slice())
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            prop_assert_eq!(set.in_range(&lo, &hi), want);
            let mut all: Vec<(Vec<u8>, Slot)> = set.into_writes().collect();
            all.sort();
            prop_assert_eq!(all, model.into_iter().collect::<Vec<_>>());
        }
    }
}
