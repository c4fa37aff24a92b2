//! Optimistic validation: the write sets of recent commits, checked against
//! what a transaction read.
//!
//! Every batch that enters the log — a blind write or a transaction's
//! commit — records the keys it writes here under the sequence number it
//! gets, while the log's reservation lock is held, so the window is in
//! sequence order and holds every batch the moment it is numbered (before it
//! is durable or visible). A read-write transaction with snapshot `S`
//! commits only if no batch numbered after `S` wrote a key it read or a key
//! inside a range it iterated: then it read exactly what it would have read
//! at its own position in the log, which makes every committed transaction
//! serializable in sequence-number order.
//!
//! Batches leave the window once no open read-write transaction can need
//! them (numbered at or below the oldest open snapshot, and visible). A
//! window that grows past its byte bound drops its oldest batches anyway;
//! a transaction whose snapshot is older than what was dropped can no
//! longer be checked and fails with a conflict (and is retried).

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use crate::iter::OwnedRange;
use crate::memtable::Seq;

/// The keys one batch wrote, copied into one buffer as they come; sorted
/// (an index, built the first time a transaction is checked against the
/// batch) only if some transaction needs it, since most batches leave the
/// window unchecked.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeySet {
    bytes: Vec<u8>,
    /// End offset of each key in `bytes`, in the order added.
    ends: Vec<usize>,
    /// Indices into `ends` in key order, once built.
    order: Option<Vec<usize>>,
}

impl KeySet {
    /// The set of `keys` (any order, repeats allowed).
    pub(crate) fn new<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut set = KeySet::default();
        for k in keys {
            set.push(k);
        }
        set
    }

    /// The set of `keys`, `count` keys of `bytes` bytes in all, allocated
    /// at that size up front.
    pub(crate) fn with_capacity<'a>(
        count: usize,
        bytes: usize,
        keys: impl IntoIterator<Item = &'a Vec<u8>>,
    ) -> Self {
        let mut set = KeySet {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(count),
            order: None,
        };
        for k in keys {
            set.push(k);
        }
        set
    }

    /// Adds `key` (before the set is sorted): a copy into the one buffer,
    /// so adding key after key allocates only as the buffer grows.
    fn push(&mut self, key: &[u8]) {
        debug_assert!(self.order.is_none(), "a key added to a sorted set");
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
    }

    /// The keys in the order added.
    fn iter_added(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|i| self.added(i))
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// The `i`th key added.
    fn added(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Builds the sorted index if it is not there yet.
    fn sort(&mut self) {
        if self.order.is_none() {
            let mut order: Vec<usize> = (0..self.len()).collect();
            order.sort_unstable_by(|a, b| self.added(*a).cmp(self.added(*b)));
            self.order = Some(order);
        }
    }

    /// The `i`th key in key order (after [`KeySet::sort`]).
    fn key(&self, i: usize) -> &[u8] {
        let j = self.order.as_ref().map_or(i, |o| o[i]);
        self.added(j)
    }

    /// Bytes held, for the window's bound.
    fn weight(&self) -> usize {
        self.bytes.len() + self.ends.len() * std::mem::size_of::<usize>()
    }

    /// Whether `key` is in the set.
    fn contains(&self, key: &[u8]) -> bool {
        let i = self.first_at_or_after(key);
        i < self.len() && self.key(i) == key
    }

    /// Index of the first key `>= key`.
    fn first_at_or_after(&self, key: &[u8]) -> usize {
        self.first_where_not(|k| k < key)
    }

    /// Index of the first key `> key` (past every copy of a key written
    /// more than once).
    fn first_after(&self, key: &[u8]) -> usize {
        self.first_where_not(|k| k <= key)
    }

    /// Index of the first key, in key order, for which `before` is false
    /// (`before` holds for a prefix of the keys in order).
    fn first_where_not(&self, before: impl Fn(&[u8]) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if before(self.key(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Whether some key of the set lies within `(lower, upper)`.
    fn meets(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
        let i = match lower {
            Bound::Unbounded => 0,
            Bound::Included(k) => self.first_at_or_after(k),
            Bound::Excluded(k) => self.first_after(k),
        };
        if i >= self.len() {
            return false;
        }
        let first = self.key(i);
        match upper {
            Bound::Unbounded => true,
            Bound::Included(k) => first <= k,
            Bound::Excluded(k) => first < k,
        }
    }
}

/// What a transaction read: single keys, and the key ranges its iterators
/// covered.
#[derive(Debug, Default, Clone)]
pub(crate) struct ReadSet {
    /// Keys read, in one buffer (no allocation per read).
    keys: KeySet,
    ranges: Vec<OwnedRange>,
}

impl ReadSet {
    /// Records a point read of `key`.
    pub(crate) fn key(&mut self, key: &[u8]) {
        self.keys.push(key);
    }

    /// Records that every key within `(lower, upper)` was read.
    pub(crate) fn range(&mut self, lower: Bound<Vec<u8>>, upper: Bound<Vec<u8>>) {
        self.ranges.push((lower, upper));
    }

    /// Whether nothing was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.len() == 0 && self.ranges.is_empty()
    }

    /// Whether `written` changes anything this set read.
    fn touched_by(&self, written: &KeySet) -> bool {
        self.keys.iter_added().any(|k| written.contains(k))
            || self.ranges.iter().any(|(lo, hi)| {
                written.meets(
                    lo.as_ref().map(Vec::as_slice),
                    hi.as_ref().map(Vec::as_slice),
                )
            })
    }
}

/// Why a transaction may not commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A batch numbered after the snapshot wrote what the transaction read.
    Changed {
        /// That batch's sequence number.
        by: Seq,
    },
    /// Batches after the snapshot were dropped from the window (it hit its
    /// byte bound), so the transaction cannot be checked.
    TooOld,
}

/// The write sets of recent batches and the snapshots of open read-write
/// transactions.
#[derive(Debug)]
pub(crate) struct ConflictWindow {
    recent: VecDeque<(Seq, KeySet)>,
    /// Open read-write transactions, by snapshot: how many at each.
    open: BTreeMap<Seq, usize>,
    /// Every batch numbered at or below this has left the window.
    dropped_to: Seq,
    bytes: usize,
    max_bytes: usize,
}

impl ConflictWindow {
    /// An empty window over a log whose batches up to `last` exist
    /// already, holding at most `max_bytes` of keys.
    pub(crate) fn new(last: Seq, max_bytes: usize) -> Self {
        ConflictWindow {
            recent: VecDeque::new(),
            open: BTreeMap::new(),
            dropped_to: last,
            bytes: 0,
            max_bytes,
        }
    }

    /// Registers an open read-write transaction with snapshot `at`.
    pub(crate) fn open(&mut self, at: Seq) {
        *self.open.entry(at).or_insert(0) += 1;
    }

    /// Unregisters a transaction [`open`](Self::open)ed at `at`.
    pub(crate) fn close(&mut self, at: Seq) {
        if let Some(n) = self.open.get_mut(&at) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&at);
            }
        }
    }

    /// Checks a transaction with snapshot `at` that read `reads`.
    pub(crate) fn check(&mut self, at: Seq, reads: &ReadSet) -> Result<(), Refusal> {
        if reads.is_empty() {
            return Ok(());
        }
        if at < self.dropped_to {
            return Err(Refusal::TooOld);
        }
        // The window is in sequence order: look at what came after `at`.
        let start = self.recent.partition_point(|(seq, _)| *seq <= at);
        for (seq, written) in self.recent.range_mut(start..) {
            written.sort();
            if reads.touched_by(written) {
                return Err(Refusal::Changed { by: *seq });
            }
        }
        Ok(())
    }

    /// Records the keys batch `seq` writes. Sequence numbers come in
    /// ascending order (the caller holds the log's reservation lock).
    pub(crate) fn record(&mut self, seq: Seq, written: KeySet) {
        debug_assert!(self.recent.back().is_none_or(|(s, _)| *s < seq));
        self.bytes += written.weight();
        self.recent.push_back((seq, written));
    }

    /// Drops what no open transaction can need: batches at or below both
    /// the oldest open snapshot and `visible` (a transaction that opens
    /// later takes a snapshot at or above `visible`), then, past the byte
    /// bound, the oldest batches whatever they are.
    pub(crate) fn prune(&mut self, visible: Seq) {
        let floor = self
            .open
            .keys()
            .next()
            .map_or(visible, |&oldest| oldest.min(visible));
        while let Some((seq, _)) = self.recent.front() {
            let seq = *seq;
            if seq > floor && self.bytes <= self.max_bytes {
                break;
            }
            if let Some((_, keys)) = self.recent.pop_front() {
                self.bytes -= keys.weight();
            }
            self.dropped_to = self.dropped_to.max(seq);
        }
    }

    /// Batches held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(keys: &[&[u8]]) -> KeySet {
        let mut s = KeySet::new(keys.iter().copied());
        s.sort();
        s
    }

    #[test]
    fn key_sets_answer_membership_and_ranges() {
        let s = set(&[b"f", b"b", b"d", b"b"]);
        assert_eq!(s.len(), 4);
        assert!(s.contains(b"b") && s.contains(b"f"));
        assert!(!s.contains(b"a") && !s.contains(b"c") && !s.contains(b"g"));
        let inc = |k: &'static [u8]| Bound::Included(k);
        let exc = |k: &'static [u8]| Bound::Excluded(k);
        assert!(s.meets(inc(b"c"), inc(b"d")));
        assert!(!s.meets(inc(b"c"), exc(b"d")));
        assert!(!s.meets(exc(b"d"), exc(b"f")));
        assert!(s.meets(exc(b"d"), Bound::Unbounded));
        assert!(!s.meets(exc(b"f"), Bound::Unbounded));
        assert!(s.meets(Bound::Unbounded, inc(b"b")));
        assert!(!s.meets(Bound::Unbounded, exc(b"b")));
    }

    #[test]
    fn only_batches_after_the_snapshot_conflict() {
        let mut w = ConflictWindow::new(0, usize::MAX);
        w.open(1);
        w.record(1, set(&[b"a"]));
        w.record(2, set(&[b"b"]));
        let mut reads = ReadSet::default();
        reads.key(b"a");
        assert_eq!(w.check(1, &reads), Ok(()));
        assert_eq!(w.check(0, &reads), Err(Refusal::Changed { by: 1 }));
        reads.range(Bound::Included(b"b".to_vec()), Bound::Unbounded);
        assert_eq!(w.check(1, &reads), Err(Refusal::Changed { by: 2 }));
        assert_eq!(w.check(2, &reads), Ok(()));
        // A blind write reads nothing and never conflicts.
        assert_eq!(w.check(0, &ReadSet::default()), Ok(()));
    }

    #[test]
    fn pruning_keeps_what_open_transactions_need() {
        let mut w = ConflictWindow::new(0, usize::MAX);
        w.open(2);
        for seq in 1..=5 {
            w.record(seq, set(&[b"k"]));
        }
        w.prune(5);
        // Batches 3..=5 came after the open snapshot 2.
        assert_eq!(w.len(), 3);
        let mut reads = ReadSet::default();
        reads.key(b"k");
        assert_eq!(w.check(2, &reads), Err(Refusal::Changed { by: 3 }));
        w.close(2);
        w.prune(4);
        // Batch 5 is not visible yet: a transaction opening now reads at 4.
        assert_eq!(w.len(), 1);
        assert_eq!(w.check(4, &reads), Err(Refusal::Changed { by: 5 }));
        assert_eq!(w.check(3, &reads), Err(Refusal::TooOld));
    }

    /// A batch may write one key twice: a range that excludes that key
    /// must skip every copy of it, not only the first.
    #[test]
    fn an_excluded_bound_skips_every_copy_of_a_key_written_twice() {
        let twice = set(&[b"k", b"k"]);
        assert!(!twice.meets(Bound::Excluded(b"k"), Bound::Excluded(b"l")));
        assert!(!twice.meets(Bound::Excluded(b"k"), Bound::Unbounded));
        assert!(twice.meets(Bound::Included(b"k"), Bound::Excluded(b"l")));
        let mut w = ConflictWindow::new(0, usize::MAX);
        w.record(1, set(&[b"k", b"k"]));
        let mut reads = ReadSet::default();
        reads.range(
            Bound::Excluded(b"k".to_vec()),
            Bound::Excluded(b"l".to_vec()),
        );
        assert_eq!(w.check(0, &reads), Ok(()));
    }

    #[test]
    fn a_full_window_drops_old_batches_and_refuses_what_it_cannot_check() {
        let mut w = ConflictWindow::new(0, 64);
        w.open(0);
        for seq in 1..=100 {
            w.record(seq, set(&[b"0123456789"]));
            w.prune(seq);
        }
        assert!(w.bytes <= 64);
        let mut reads = ReadSet::default();
        reads.key(b"other");
        assert_eq!(w.check(0, &reads), Err(Refusal::TooOld));
    }

    proptest! {
        /// The window agrees with a direct check of every batch after the
        /// snapshot, however the reads and writes fall.
        #[test]
        fn check_matches_a_model(
            batches in prop::collection::vec(prop::collection::vec(0u8..16, 0..4), 0..12),
            keys in prop::collection::vec(0u8..16, 0..3),
            ranges in prop::collection::vec((0u8..16, 0u8..16, any::<bool>(), any::<bool>()), 0..2),
            at in 0u64..12,
        ) {
            let mut w = ConflictWindow::new(0, usize::MAX);
            let mut reads = ReadSet::default();
            for k in &keys {
                reads.key(&[*k]);
            }
            for (a, b, a_inc, b_inc) in &ranges {
                let lo = if *a_inc { Bound::Included(vec![*a]) } else { Bound::Excluded(vec![*a]) };
                let hi = if *b_inc { Bound::Included(vec![*b]) } else { Bound::Excluded(vec![*b]) };
                reads.range(lo, hi);
            }
            for (i, b) in batches.iter().enumerate() {
                let owned: Vec<Vec<u8>> = b.iter().map(|k| vec![*k]).collect();
                w.record(i as Seq + 1, KeySet::new(owned.iter().map(Vec::as_slice)));
            }
            let in_range = |k: u8, (a, b, a_inc, b_inc): &(u8, u8, bool, bool)| {
                (if *a_inc { k >= *a } else { k > *a }) && (if *b_inc { k <= *b } else { k < *b })
            };
            let first_hit = batches.iter().enumerate().find_map(|(i, b)| {
                let seq = i as Seq + 1;
                let hit = seq > at
                    && b.iter().any(|k| keys.contains(k) || ranges.iter().any(|r| in_range(*k, r)));
                hit.then_some(seq)
            });
            let want = match first_hit {
                Some(by) => Err(Refusal::Changed { by }),
                None => Ok(()),
            };
            prop_assert_eq!(w.check(at, &reads), want);
        }
    }
}
