//! A transaction's buffered writes.
//!
//! They sit in a hash table by stored key: what a transaction does with
//! them most — put a key, read back a key it may have written — is a point
//! operation, and a hash table does it without comparing keys along a tree
//! path. Each entry keeps its key's hash, so the table grows without
//! hashing its keys again. Order is needed by an iterator over the
//! transaction's view, which takes the writes within its range when it is
//! made, and by the commit, which sorts them all once. The first iterator
//! filters and sorts the writes; from the second on, the set keeps its
//! keys in order beside the table (a transaction that reads many ranges
//! among many writes would otherwise sort them all for each range).

use std::collections::BTreeSet;
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
#[derive(Default)]
pub(crate) struct WriteSet {
    table: HashTable<Write>,
    hasher: RandomState,
    /// The written keys in order, once a second range has asked for them.
    ordered: Option<BTreeSet<Vec<u8>>>,
    /// Ranges asked for so far (up to the one that builds `ordered`).
    ranges: u8,
}

/// Shows how many keys were written, never the keys or values.
impl std::fmt::Debug for WriteSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteSet")
            .field("len", &self.table.len())
            .finish_non_exhaustive()
    }
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
                if let Some(ordered) = &mut self.ordered {
                    ordered.insert(key.clone());
                }
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
    pub(crate) fn in_range(
        &mut self,
        lower: &Bound<Vec<u8>>,
        upper: &Bound<Vec<u8>>,
    ) -> Vec<ScanItem> {
        let range = (
            lower.as_ref().map(Vec::as_slice),
            upper.as_ref().map(Vec::as_slice),
        );
        if self.ordered.is_none() {
            self.ranges = self.ranges.saturating_add(1);
            if self.ranges < 2 {
                let mut items: Vec<ScanItem> = self
                    .iter()
                    .filter(|(k, _)| range.contains(&k.as_slice()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                return items;
            }
        }
        if holds_nothing(range) {
            return Vec::new();
        }
        let ordered = self
            .ordered
            .get_or_insert_with(|| self.table.iter().map(|(_, k, _)| k.clone()).collect());
        ordered
            .range::<[u8], _>(range)
            .filter_map(|k| {
                let hash = self.hasher.hash_one(k.as_slice());
                self.table
                    .find(hash, |(h, stored, _)| *h == hash && stored == k)
                    .map(|(_, k, v)| (k.clone(), v.clone()))
            })
            .collect()
    }

    /// The writes, owned, in no particular order.
    pub(crate) fn into_writes(self) -> impl Iterator<Item = (Vec<u8>, Slot)> {
        self.table.into_iter().map(|(_, k, v)| (k, v))
    }
}

/// Whether bounds `range` hold no key because they are inverted (or an
/// empty open interval), which `BTreeSet::range` refuses with a panic.
fn holds_nothing((lower, upper): (Bound<&[u8]>, Bound<&[u8]>)) -> bool {
    match (lower, upper) {
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a > b || (a == b && matches!((lower, upper), (Bound::Excluded(_), Bound::Excluded(_))))
        }
        _ => false,
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

    /// One step of a transaction's use of its write set.
    #[derive(Debug, Clone)]
    enum Op {
        Write(Vec<u8>, Slot),
        Get(Vec<u8>),
        Range(Bound<Vec<u8>>, Bound<Vec<u8>>),
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(0u8..4, 0..3)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (key(), prop::option::of(prop::collection::vec(any::<u8>(), 0..3)))
                .prop_map(|(k, v)| Op::Write(k, v)),
            1 => key().prop_map(Op::Get),
            // Inverted ranges included: they hold nothing.
            2 => (bound(), bound()).prop_map(|(lo, hi)| Op::Range(lo, hi)),
        ]
    }

    proptest! {
        /// Writes, reads and ranges in any order (ranges before and after
        /// the set starts keeping its keys in order) answer as an ordered
        /// map does.
        #[test]
        fn writes_match_an_ordered_model(ops in prop::collection::vec(op(), 0..60)) {
            let mut set = WriteSet::default();
            let mut model: BTreeMap<Vec<u8>, Slot> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Write(k, v) => {
                        set.insert(k.clone(), v.clone());
                        model.insert(k, v);
                    }
                    Op::Get(k) => prop_assert_eq!(set.get(&k), model.get(&k)),
                    Op::Range(lo, hi) => {
                        let want: Vec<ScanItem> = model
                            .iter()
                            .filter(|(k, _)| {
                                (lo.as_ref().map(Vec::as_slice), hi.as_ref().map(Vec::as_slice))
                                    .contains(k.as_slice())
                            })
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        prop_assert_eq!(set.in_range(&lo, &hi), want);
                    }
                }
                prop_assert_eq!(set.len(), model.len());
            }
            let mut all: Vec<(Vec<u8>, Slot)> = set.into_writes().collect();
            all.sort();
            prop_assert_eq!(all, model.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_second_range_keeps_the_keys_in_order_and_later_writes_join_them() {
        let mut set = WriteSet::default();
        set.insert(b"b".to_vec(), Some(b"2".to_vec()));
        set.insert(b"a".to_vec(), Some(b"1".to_vec()));
        let all = (Bound::Unbounded, Bound::Unbounded);
        assert_eq!(set.in_range(&all.0, &all.1).len(), 2);
        assert!(set.ordered.is_none(), "one range sorts, keeps nothing");
        assert_eq!(set.in_range(&all.0, &all.1).len(), 2);
        assert_eq!(set.ordered.as_ref().map(BTreeSet::len), Some(2));
        set.insert(b"c".to_vec(), None);
        set.insert(b"a".to_vec(), None);
        assert_eq!(
            set.in_range(&Bound::Excluded(b"a".to_vec()), &Bound::Unbounded),
            vec![(b"b".to_vec(), Some(b"2".to_vec())), (b"c".to_vec(), None)]
        );
        assert_eq!(set.ordered.as_ref().map(BTreeSet::len), Some(3));
        assert_eq!(format!("{set:?}"), "WriteSet { len: 3, .. }");
    }
}
