//! A double-ended merge of sorted sources, newest source first.
//!
//! Each source yields each key at most once, in ascending order from the
//! front and descending from the back, with its value or a tombstone. Where
//! several sources hold a key, the one listed first (the newest: the live
//! memtable, then frozen memtables, then the tree) wins; tombstones hide the
//! key. Front and back may be interleaved and never yield a key twice.

use crate::memtable::ScanItem;

/// A visible key and its value.
pub(crate) type KeyValue = (Vec<u8>, Vec<u8>);

/// A sorted stream of unique keys, readable from both ends, that may fail
/// (a page that does not authenticate).
pub(crate) trait SortedSource<E> {
    /// The next key from the front.
    fn next_front(&mut self) -> Result<Option<ScanItem>, E>;
    /// The next key from the back.
    fn next_back(&mut self) -> Result<Option<ScanItem>, E>;
}

struct Peeked<E> {
    source: Box<dyn SortedSource<E> + Send>,
    /// The element fetched from the source's front and not yet consumed.
    front: Option<ScanItem>,
    /// The element fetched from the source's back and not yet consumed.
    back: Option<ScanItem>,
    /// The source has nothing left: what remains is in `front`/`back`.
    exhausted: bool,
}

/// Which end of the merge a step reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Front,
    Back,
}

impl End {
    /// Whether key `a` comes before key `b` when reading from this end.
    fn before(self, a: &[u8], b: &[u8]) -> bool {
        match self {
            End::Front => a < b,
            End::Back => a > b,
        }
    }
}

impl<E> Peeked<E> {
    /// This end's slot and the other one.
    fn slots(&mut self, end: End) -> (&mut Option<ScanItem>, &mut Option<ScanItem>) {
        match end {
            End::Front => (&mut self.front, &mut self.back),
            End::Back => (&mut self.back, &mut self.front),
        }
    }

    /// Fetches the next element from `end` unless one is waiting there.
    /// Once the source is exhausted, the last element may sit in either
    /// slot.
    fn fetch(&mut self, end: End) -> Result<(), E> {
        if self.slots(end).0.is_none() && !self.exhausted {
            let item = match end {
                End::Front => self.source.next_front()?,
                End::Back => self.source.next_back()?,
            };
            self.exhausted = item.is_none();
            *self.slots(end).0 = item;
        }
        Ok(())
    }

    /// The unconsumed element nearest `end` (after [`Peeked::fetch`]).
    fn peek(&self, end: End) -> Option<&ScanItem> {
        match end {
            End::Front => self.front.as_ref().or(self.back.as_ref()),
            End::Back => self.back.as_ref().or(self.front.as_ref()),
        }
    }

    /// Consumes the element `peek(end)` returned.
    fn take(&mut self, end: End) -> Option<ScanItem> {
        let (near, far) = self.slots(end);
        near.take().or_else(|| far.take())
    }
}

/// The merged view of several sorted sources.
pub(crate) struct MergeIter<E> {
    sources: Vec<Peeked<E>>,
    /// The last key yielded from the front / back: the two ends stop when
    /// they meet.
    front_last: Option<Vec<u8>>,
    back_last: Option<Vec<u8>>,
    failed: bool,
}

impl<E> MergeIter<E> {
    /// Merges `sources`, newest first.
    pub(crate) fn new(sources: Vec<Box<dyn SortedSource<E> + Send>>) -> Self {
        MergeIter {
            sources: sources
                .into_iter()
                .map(|source| Peeked {
                    source,
                    front: None,
                    back: None,
                    exhausted: false,
                })
                .collect(),
            front_last: None,
            back_last: None,
            failed: false,
        }
    }

    /// The index of the source whose head at `end` comes first — the
    /// smallest key from the front, the largest from the back — the first
    /// (newest) source on a tie. Every head must have been fetched.
    fn winner(&self, end: End) -> Option<usize> {
        let mut best: Option<(usize, &[u8])> = None;
        for (i, s) in self.sources.iter().enumerate() {
            if let Some((k, _)) = s.peek(end)
                && best.is_none_or(|(_, b)| end.before(k, b))
            {
                best = Some((i, k));
            }
        }
        best.map(|(i, _)| i)
    }

    /// The next visible key and value from `end`.
    fn step(&mut self, end: End) -> Result<Option<KeyValue>, E> {
        loop {
            for s in &mut self.sources {
                s.fetch(end)?;
            }
            // The first key at any source's `end`; the first (newest)
            // source holding it wins, the others' copies are dropped.
            let Some(winner) = self.winner(end) else {
                return Ok(None);
            };
            // Meeting the other end stops before anything is consumed.
            let other_last = match end {
                End::Front => &self.back_last,
                End::Back => &self.front_last,
            };
            let head = self.sources.get(winner).and_then(|s| s.peek(end));
            if let (Some((k, _)), Some(last)) = (head, other_last)
                && !end.before(k, last)
            {
                return Ok(None);
            }
            let Some((key, value)) = self.sources.get_mut(winner).and_then(|s| s.take(end)) else {
                return Ok(None);
            };
            for s in &mut self.sources {
                if s.peek(end).is_some_and(|(k, _)| *k == key) {
                    s.take(end);
                }
            }
            let last = match end {
                End::Front => &mut self.front_last,
                End::Back => &mut self.back_last,
            };
            remember(last, &key);
            if let Some(v) = value {
                return Ok(Some((key, v)));
            }
            // A tombstone: the key is deleted; look further.
        }
    }
}

/// Sets `slot` to a copy of `key`, reusing its buffer (no allocation per
/// step once the first key is remembered).
fn remember(slot: &mut Option<Vec<u8>>, key: &[u8]) {
    match slot {
        Some(buf) => {
            buf.clear();
            buf.extend_from_slice(key);
        }
        None => *slot = Some(key.to_vec()),
    }
}

impl<E> Iterator for MergeIter<E> {
    type Item = Result<KeyValue, E>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step(End::Front) {
            Ok(item) => item.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl<E> DoubleEndedIterator for MergeIter<E> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step(End::Back) {
            Ok(item) => item.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, VecDeque};

    /// A source over a sorted vector.
    struct VecSource(VecDeque<ScanItem>, Option<usize>);

    impl SortedSource<String> for VecSource {
        fn next_front(&mut self) -> Result<Option<ScanItem>, String> {
            if let Some(n) = self.1.as_mut() {
                if *n == 0 {
                    return Err("injected".into());
                }
                *n -= 1;
            }
            Ok(self.0.pop_front())
        }
        fn next_back(&mut self) -> Result<Option<ScanItem>, String> {
            Ok(self.0.pop_back())
        }
    }

    fn sources(
        layers: &[BTreeMap<Vec<u8>, Option<Vec<u8>>>],
    ) -> Vec<Box<dyn SortedSource<String> + Send>> {
        layers
            .iter()
            .map(|l| {
                Box::new(VecSource(l.clone().into_iter().collect(), None))
                    as Box<dyn SortedSource<String> + Send>
            })
            .collect()
    }

    fn layer() -> impl Strategy<Value = BTreeMap<Vec<u8>, Option<Vec<u8>>>> {
        prop::collection::btree_map(
            prop::collection::vec(0u8..6, 0..2),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..3)),
            0..8,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn interleaved_front_and_back_match_the_model(
            layers in prop::collection::vec(layer(), 0..4),
            dirs in prop::collection::vec(any::<bool>(), 0..40),
        ) {
            // Model: newest layer first wins; tombstones hide.
            let mut model: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
            for l in layers.iter().rev() {
                for (k, v) in l {
                    model.insert(k.clone(), v.clone());
                }
            }
            let mut want: VecDeque<(Vec<u8>, Vec<u8>)> =
                model.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
            let mut it = MergeIter::new(sources(&layers));
            for d in dirs.iter().chain(std::iter::repeat_n(&true, 64)) {
                let (got, exp) = if *d {
                    (it.next(), want.pop_front())
                } else {
                    (it.next_back(), want.pop_back())
                };
                prop_assert_eq!(got.map(Result::unwrap), exp);
            }
            prop_assert!(it.next().is_none());
            prop_assert!(it.next_back().is_none());
        }
    }

    #[test]
    fn last_element_of_a_source_is_found_from_either_end() {
        // Regression: a source's last element, fetched by the front, must
        // still be found from the back once the other source is used up.
        let l0: BTreeMap<_, _> = [
            (vec![], Some(vec![])),
            (vec![0], Some(vec![])),
            (vec![4], Some(vec![])),
        ]
        .into_iter()
        .collect();
        let l1: BTreeMap<_, _> = [(vec![1], Some(vec![]))].into_iter().collect();
        let mut it = MergeIter::new(sources(&[l0, l1]));
        assert_eq!(it.next().unwrap().unwrap().0, Vec::<u8>::new());
        assert_eq!(it.next_back().unwrap().unwrap().0, vec![4]);
        assert_eq!(it.next().unwrap().unwrap().0, vec![0]);
        assert_eq!(it.next_back().unwrap().unwrap().0, vec![1]);
        assert!(it.next().is_none() && it.next_back().is_none());
    }

    #[test]
    fn an_error_is_yielded_once_then_the_iterator_ends() {
        let src = VecSource(vec![(b"a".to_vec(), Some(b"1".to_vec()))].into(), Some(0));
        let mut it = MergeIter::new(vec![Box::new(src) as Box<dyn SortedSource<String> + Send>]);
        assert_eq!(it.next(), Some(Err("injected".to_string())));
        assert_eq!(it.next(), None);
        assert_eq!(it.next_back(), None);
    }
}
