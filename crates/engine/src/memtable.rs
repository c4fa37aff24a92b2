//! The memtable: recent writes, many versions per key, readable as of any
//! sequence number.
//!
//! Entries are ordered by user key ascending, then sequence number
//! descending, in a lock-free skip list, so readers never block writers and
//! a read "as of sequence S" finds the first version of its key with a
//! sequence number at most S.

use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};

use crossbeam_skiplist::SkipMap;
use crossbeam_skiplist::map::{Entry, Iter};

use crate::keyfilter::{KeyFilter, KeyHash};

/// A sequence number: every batch written gets the next one.
pub(crate) type Seq = u64;

/// Bytes of bookkeeping counted per entry on top of key and value, so the
/// size bound also holds for many tiny entries.
pub(crate) const ENTRY_OVERHEAD: usize = 64;

/// A user key at a sequence number. Ordered by key ascending, then sequence
/// number descending (newest version first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InternalKey {
    key: Vec<u8>,
    seq: Seq,
}

impl InternalKey {
    /// The search key for versions of `key` at or below `at`.
    pub(crate) fn search(key: Vec<u8>, at: Seq) -> Self {
        InternalKey { key, seq: at }
    }

    /// The key searched for.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }
}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .cmp(&other.key)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What a key maps to: a value, or a tombstone (`None`).
pub(crate) type Slot = Option<Vec<u8>>;

/// One key's visible state in a scan: the key and its value or tombstone.
pub(crate) type ScanItem = (Vec<u8>, Slot);

/// Most items a scan allocates room for up front.
const MAX_PREALLOC: usize = 256;

/// Recent writes, shared by reference (`Arc`) between the writer, readers,
/// iterators and the flusher.
#[derive(Debug)]
pub(crate) struct Memtable {
    map: SkipMap<InternalKey, Slot>,
    /// Every key inserted, so most reads of a key not here skip the map.
    filter: KeyFilter,
    bytes: AtomicUsize,
    max_seq: AtomicU64,
}

fn lower_bound(b: Bound<&[u8]>) -> Bound<InternalKey> {
    match b {
        Bound::Unbounded => Bound::Unbounded,
        // Every version of `k`: start at its newest possible version.
        Bound::Included(k) => Bound::Included(InternalKey {
            key: k.to_vec(),
            seq: Seq::MAX,
        }),
        // Skip every version of `k`: its oldest possible version is seq 0.
        Bound::Excluded(k) => Bound::Excluded(InternalKey {
            key: k.to_vec(),
            seq: 0,
        }),
    }
}

fn upper_bound(b: Bound<&[u8]>) -> Bound<InternalKey> {
    match b {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(k) => Bound::Included(InternalKey {
            key: k.to_vec(),
            seq: 0,
        }),
        Bound::Excluded(k) => Bound::Excluded(InternalKey {
            key: k.to_vec(),
            seq: Seq::MAX,
        }),
    }
}

impl Memtable {
    /// An empty memtable with the smallest key filter.
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::sized_for(0)
    }

    /// An empty memtable whose key filter suits a size bound of
    /// `memtable_bytes`.
    pub(crate) fn sized_for(memtable_bytes: u64) -> Self {
        Memtable {
            map: SkipMap::new(),
            filter: KeyFilter::sized_for(memtable_bytes),
            bytes: AtomicUsize::new(0),
            max_seq: AtomicU64::new(0),
        }
    }

    /// Records `key` -> `value` (`None`: a delete) at `seq`.
    pub(crate) fn insert(&self, key: &[u8], seq: Seq, value: Option<&[u8]>) {
        let size = key.len() + value.map_or(0, <[u8]>::len) + ENTRY_OVERHEAD;
        self.filter.insert(KeyHash::of(key));
        self.map.insert(
            InternalKey {
                key: key.to_vec(),
                seq,
            },
            value.map(<[u8]>::to_vec),
        );
        self.bytes.fetch_add(size, AtomicOrdering::Relaxed);
        self.max_seq.fetch_max(seq, AtomicOrdering::Relaxed);
    }

    /// [`insert`](Self::insert) of buffers the memtable keeps as they are.
    pub(crate) fn insert_owned(&self, key: Vec<u8>, seq: Seq, value: Slot) {
        let size = key.len() + value.as_ref().map_or(0, Vec::len) + ENTRY_OVERHEAD;
        self.filter.insert(KeyHash::of(&key));
        self.map.insert(InternalKey { key, seq }, value);
        self.bytes.fetch_add(size, AtomicOrdering::Relaxed);
        self.max_seq.fetch_max(seq, AtomicOrdering::Relaxed);
    }

    /// The newest version of `key` with a sequence number at most `at`:
    /// `None` if the memtable has none, `Some(None)` for a tombstone.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &[u8], at: Seq) -> Option<Slot> {
        if !self.may_hold(KeyHash::of(key)) {
            return None;
        }
        self.get_at(&InternalKey::search(key.to_vec(), at))
    }

    /// False if this memtable holds no version, at or below the reader's
    /// sequence number, of a key with hash `hash`: then
    /// [`get_at`](Self::get_at) would answer `None`, and need not run.
    pub(crate) fn may_hold(&self, hash: KeyHash) -> bool {
        // An empty table holds nothing: a writer adds to the byte count
        // (and sets the key's filter bits) after its insert and before it
        // publishes its batch, and the reader loaded `at` (acquire) after
        // that publication, so a count of zero means no version at or
        // below `at`. (Not the skip list's `len`, which crossbeam documents
        // as approximate under concurrent change.)
        self.approx_bytes() != 0 && self.filter.may_hold(hash)
    }

    /// The newest version at or below `search`'s sequence number of its
    /// key (the caller builds the search key once for every memtable, and
    /// skips those that [`may_hold`](Self::may_hold) rules out).
    pub(crate) fn get_at(&self, search: &InternalKey) -> Option<Slot> {
        if self.approx_bytes() == 0 {
            return None;
        }
        let entry = self.map.range(search..).next()?;
        (entry.key().key == search.key).then(|| entry.value().clone())
    }

    /// Approximate memory held, in bytes.
    pub(crate) fn approx_bytes(&self) -> usize {
        self.bytes.load(AtomicOrdering::Relaxed)
    }

    /// Whether nothing has been written.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The highest sequence number written.
    pub(crate) fn max_seq(&self) -> Seq {
        self.max_seq.load(AtomicOrdering::Relaxed)
    }

    /// Every key's newest version (tombstones included), in ascending key
    /// order, by reference: the flusher reads a frozen memtable through
    /// this without copying it.
    pub(crate) fn newest(&self) -> Newest<'_> {
        Newest {
            iter: self.map.iter(),
            last: None,
        }
    }

    /// Up to `limit` keys within `(lower, upper)` as of `at`, each with its
    /// newest visible version (tombstones included), in ascending key order,
    /// or descending with `reverse`.
    pub(crate) fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        at: Seq,
        limit: usize,
        reverse: bool,
    ) -> Vec<ScanItem> {
        let range = self.map.range((lower_bound(lower), upper_bound(upper)));
        let mut out: Vec<ScanItem> = Vec::with_capacity(limit.min(MAX_PREALLOC));
        if !reverse {
            for e in range {
                if out.len() >= limit {
                    break;
                }
                let ik = e.key();
                if ik.seq > at || out.last().is_some_and(|(k, _)| *k == ik.key) {
                    continue;
                }
                out.push((ik.key.clone(), e.value().clone()));
            }
            return out;
        }
        // Backwards, a key's versions come oldest first: keep the newest
        // visible one seen so far and emit it when the key changes.
        let mut pending: Option<ScanItem> = None;
        let mut pending_key: Option<Vec<u8>> = None;
        for e in range.rev() {
            let ik = e.key();
            if pending_key.as_deref() != Some(&ik.key[..]) {
                if let Some(item) = pending.take() {
                    out.push(item);
                    if out.len() >= limit {
                        return out;
                    }
                }
                pending_key = Some(ik.key.clone());
            }
            if ik.seq <= at {
                pending = Some((ik.key.clone(), e.value().clone()));
            }
        }
        if let Some(item) = pending
            && out.len() < limit
        {
            out.push(item);
        }
        out
    }
}

/// The iterator of [`Memtable::newest`].
pub(crate) struct Newest<'a> {
    iter: Iter<'a, InternalKey, Slot>,
    last: Option<Entry<'a, InternalKey, Slot>>,
}

/// One key's newest version, borrowed from the memtable.
pub(crate) struct NewestEntry<'a>(Entry<'a, InternalKey, Slot>);

impl NewestEntry<'_> {
    /// The user key.
    pub(crate) fn key(&self) -> &[u8] {
        &self.0.key().key
    }

    /// The value, or `None` for a tombstone.
    pub(crate) fn value(&self) -> Option<&[u8]> {
        self.0.value().as_deref()
    }

    /// The bytes this entry counts for in the memtable's size.
    pub(crate) fn counted_bytes(&self) -> usize {
        self.key().len() + self.value().map_or(0, <[u8]>::len) + ENTRY_OVERHEAD
    }
}

impl<'a> Iterator for Newest<'a> {
    type Item = NewestEntry<'a>;

    fn next(&mut self) -> Option<NewestEntry<'a>> {
        loop {
            let e = self.iter.next()?;
            // Versions of a key come newest first: skip the older ones.
            if self
                .last
                .as_ref()
                .is_some_and(|l| l.key().key == e.key().key)
            {
                continue;
            }
            self.last = Some(e.clone());
            return Some(NewestEntry(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn versions_are_read_as_of_a_sequence_number() {
        let m = Memtable::new();
        m.insert(b"a", 1, Some(b"1"));
        m.insert(b"a", 3, Some(b"3"));
        m.insert(b"a", 5, None);
        m.insert(b"b", 2, Some(b"b2"));
        assert_eq!(m.get(b"a", 0), None);
        assert_eq!(m.get(b"a", 1), Some(Some(b"1".to_vec())));
        assert_eq!(m.get(b"a", 4), Some(Some(b"3".to_vec())));
        assert_eq!(m.get(b"a", 5), Some(None));
        assert_eq!(m.get(b"b", 1), None);
        assert_eq!(m.get(b"c", 9), None);
        assert_eq!(m.max_seq(), 5);
        assert!(m.approx_bytes() >= 4 * ENTRY_OVERHEAD);
    }

    /// The model: for each key, its versions by sequence number.
    type Model = BTreeMap<Vec<u8>, BTreeMap<Seq, Slot>>;

    fn model_scan(
        model: &Model,
        lo: &Bound<Vec<u8>>,
        hi: &Bound<Vec<u8>>,
        at: Seq,
        reverse: bool,
    ) -> Vec<ScanItem> {
        let mut out: Vec<ScanItem> = model
            .range::<Vec<u8>, _>((lo.clone(), hi.clone()))
            .filter_map(|(k, versions)| {
                versions
                    .range(..=at)
                    .next_back()
                    .map(|(_, v)| (k.clone(), v.clone()))
            })
            .collect();
        if reverse {
            out.reverse();
        }
        out
    }

    fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
        prop_oneof![
            Just(Bound::Unbounded),
            prop::collection::vec(0u8..4, 0..3).prop_map(Bound::Included),
            prop::collection::vec(0u8..4, 0..3).prop_map(Bound::Excluded),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn scans_and_gets_match_a_model(
            ops in prop::collection::vec(
                (prop::collection::vec(0u8..4, 0..3), prop::option::of(prop::collection::vec(any::<u8>(), 0..4))),
                0..40,
            ),
            at_frac in 0.0f64..=1.0,
            lo in bound(),
            hi in bound(),
            limit in 1usize..8,
            reverse in any::<bool>(),
            probes in prop::collection::vec(prop::collection::vec(0u8..5, 0..4), 0..8),
        ) {
            let m = Memtable::new();
            let mut model = Model::new();
            for (i, (k, v)) in ops.iter().enumerate() {
                let seq = i as Seq + 1;
                m.insert(k, seq, v.as_deref());
                model.entry(k.clone()).or_default().insert(seq, v.clone());
            }
            let at = (ops.len() as f64 * at_frac) as Seq;
            // Keys written and keys perhaps never written (the key filter
            // must rule out only the latter).
            for k in model.keys().chain(&probes) {
                let want = model
                    .get(k)
                    .and_then(|versions| versions.range(..=at).next_back())
                    .map(|(_, v)| v.clone());
                prop_assert_eq!(m.get(k, at), want);
            }
            // Valid bounds only (BTreeMap::range panics on inverted ones).
            let lo_key = match &lo { Bound::Included(k) | Bound::Excluded(k) => Some(k.clone()), Bound::Unbounded => None };
            let hi_key = match &hi { Bound::Included(k) | Bound::Excluded(k) => Some(k.clone()), Bound::Unbounded => None };
            if let (Some(a), Some(b)) = (&lo_key, &hi_key) {
                prop_assume!(a < b || (a == b && matches!((&lo, &hi), (Bound::Included(_), Bound::Included(_)))));
            }
            // The flusher's view: every key's newest version, in order.
            let newest: Vec<ScanItem> = m
                .newest()
                .map(|e| (e.key().to_vec(), e.value().map(<[u8]>::to_vec)))
                .collect();
            prop_assert_eq!(newest, model_scan(&model, &Bound::Unbounded, &Bound::Unbounded, Seq::MAX, false));
            let want = model_scan(&model, &lo, &hi, at, reverse);
            // Chunked scanning, as iterators do it, must reassemble the whole.
            let mut got = Vec::new();
            let (mut cur_lo, mut cur_hi) = (lo.clone(), hi.clone());
            loop {
                let chunk = m.scan(
                    cur_lo.as_ref().map(Vec::as_slice),
                    cur_hi.as_ref().map(Vec::as_slice),
                    at, limit, reverse,
                );
                let Some((last, _)) = chunk.last() else { break };
                if reverse { cur_hi = Bound::Excluded(last.clone()); } else { cur_lo = Bound::Excluded(last.clone()); }
                let n = chunk.len();
                got.extend(chunk);
                if n < limit { break; }
            }
            prop_assert_eq!(got, want);
        }
    }
}
