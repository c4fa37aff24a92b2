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
    front: Option<ScanItem>,
    back: Option<ScanItem>,
    front_done: bool,
    back_done: bool,
}

impl<E> Peeked<E> {
    /// The source's smallest unconsumed key, fetching it if needed. When the
    /// source's own front is exhausted, its last element may be sitting in
    /// `back`.
    fn peek_front(&mut self) -> Result<Option<&ScanItem>, E> {
        if self.front.is_none() && !self.front_done {
            match self.source.next_front()? {
                Some(item) => self.front = Some(item),
                None => {
                    self.front_done = true;
                    self.front = self.back.take();
                }
            }
        }
        Ok(self.front.as_ref())
    }

    fn peek_back(&mut self) -> Result<Option<&ScanItem>, E> {
        if self.back.is_none() && !self.back_done {
            match self.source.next_back()? {
                Some(item) => self.back = Some(item),
                None => {
                    self.back_done = true;
                    self.back = self.front.take();
                }
            }
        }
        Ok(self.back.as_ref())
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
                    front_done: false,
                    back_done: false,
                })
                .collect(),
            front_last: None,
            back_last: None,
            failed: false,
        }
    }

    /// The next visible key and value from the front.
    fn step_front(&mut self) -> Result<Option<KeyValue>, E> {
        loop {
            // The smallest key at any source's front; the first source
            // holding it wins.
            for s in self.sources.iter_mut() {
                s.peek_front()?;
            }
            let mut best: Option<(usize, &[u8])> = None;
            for (i, s) in self.sources.iter().enumerate() {
                if let Some((k, _)) = &s.front
                    && best.is_none_or(|(_, b)| k.as_slice() < b)
                {
                    best = Some((i, k.as_slice()));
                }
            }
            let Some((winner, key)) = best else {
                return Ok(None);
            };
            if self.back_last.as_deref().is_some_and(|b| key >= b) {
                return Ok(None);
            }
            let key = key.to_vec();
            let mut value = None;
            for (i, s) in self.sources.iter_mut().enumerate() {
                if s.front.as_ref().is_some_and(|(k, _)| *k == key)
                    && let Some((_, v)) = s.front.take()
                    && i == winner
                {
                    value = Some(v);
                }
            }
            self.front_last = Some(key.clone());
            if let Some(Some(v)) = value {
                return Ok(Some((key, v)));
            }
            // A tombstone: the key is deleted; look further.
        }
    }

    /// The next visible key and value from the back.
    fn step_back(&mut self) -> Result<Option<KeyValue>, E> {
        loop {
            for s in self.sources.iter_mut() {
                s.peek_back()?;
            }
            let mut best: Option<(usize, &[u8])> = None;
            for (i, s) in self.sources.iter().enumerate() {
                if let Some((k, _)) = &s.back
                    && best.is_none_or(|(_, b)| k.as_slice() > b)
                {
                    best = Some((i, k.as_slice()));
                }
            }
            let Some((winner, key)) = best else {
                return Ok(None);
            };
            if self.front_last.as_deref().is_some_and(|f| key <= f) {
                return Ok(None);
            }
            let key = key.to_vec();
            let mut value = None;
            for (i, s) in self.sources.iter_mut().enumerate() {
                if s.back.as_ref().is_some_and(|(k, _)| *k == key)
                    && let Some((_, v)) = s.back.take()
                    && i == winner
                {
                    value = Some(v);
                }
            }
            self.back_last = Some(key.clone());
            if let Some(Some(v)) = value {
                return Ok(Some((key, v)));
            }
        }
    }
}

impl<E> Iterator for MergeIter<E> {
    type Item = Result<KeyValue, E>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step_front() {
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
        match self.step_back() {
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
        #![proptest_config(ProptestConfig::with_cases(256))]

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
    fn an_error_is_yielded_once_then_the_iterator_ends() {
        let src = VecSource(vec![(b"a".to_vec(), Some(b"1".to_vec()))].into(), Some(0));
        let mut it = MergeIter::new(vec![Box::new(src) as Box<dyn SortedSource<String> + Send>]);
        assert_eq!(it.next(), Some(Err("injected".to_string())));
        assert_eq!(it.next(), None);
        assert_eq!(it.next_back(), None);
    }
}
