//! A transaction's iterator: its own writes over its snapshot, recording
//! what it covers as read.

use std::collections::VecDeque;
use std::ops::Bound;

use super::Covered;
use super::writes::WriteSet;
use crate::Error;
use crate::db::View;
use crate::iter::{DbIter, borrowed};
use crate::keyspace::UserBounds;
use crate::keyspace::prefix::Prefix;
use crate::memtable::ScanItem;
use crate::merge::{KeyValue, SortedSource};

/// A transaction's buffered writes within a range, as a source newer than
/// anything in the snapshot.
struct OwnWrites {
    items: VecDeque<ScanItem>,
}

impl SortedSource<Error> for OwnWrites {
    fn next_front(&mut self) -> Result<Option<ScanItem>, Error> {
        Ok(self.items.pop_front())
    }

    fn next_back(&mut self) -> Result<Option<ScanItem>, Error> {
        Ok(self.items.pop_back())
    }
}

/// The keys of a range as a transaction sees them, in order (or reversed
/// with [`Iterator::rev`]). What it yields — and every key between the
/// range's start and the last key yielded, present or not — counts as read
/// by the transaction once the iterator is dropped: a commit that another
/// transaction's write into that stretch preceded is a conflict. An
/// iterator run to its end covers its whole range.
pub struct TxnIter {
    inner: DbIter,
    prefix: Prefix,
    /// The range, as stored keys.
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    /// The last user key yielded from each end.
    front: Option<Vec<u8>>,
    back: Option<Vec<u8>>,
    /// An end returned `None`: the whole range was seen.
    exhausted: bool,
    covered: Covered,
}

impl std::fmt::Debug for TxnIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnIter").finish_non_exhaustive()
    }
}

impl TxnIter {
    pub(super) fn new(
        view: &View,
        writes: &WriteSet,
        prefix: Prefix,
        (lo, hi): UserBounds,
        covered: Covered,
    ) -> TxnIter {
        let lower = prefix.lower(borrowed(&lo));
        let upper = prefix.upper(borrowed(&hi));
        let items: VecDeque<ScanItem> = writes.in_range(&lower, &upper).into();
        let strip = prefix.as_bytes().len();
        // Without a write of its own in the range, the transaction sees
        // its snapshot's range as it is: no merge with an empty source
        // (and none at all if the memtables hold nothing).
        let inner = if items.is_empty() {
            view.iter_stored_range(borrowed(&lower), borrowed(&upper), strip)
        } else {
            let mut sources = view.sources(borrowed(&lower), borrowed(&upper));
            sources.insert(0, Box::new(OwnWrites { items }));
            DbIter::merged(sources, strip)
        };
        TxnIter {
            inner,
            prefix,
            lower,
            upper,
            front: None,
            back: None,
            exhausted: false,
            covered,
        }
    }

    fn step(&mut self, back: bool) -> Option<Result<KeyValue, Error>> {
        let item = if back {
            self.inner.next_back()
        } else {
            self.inner.next()
        };
        match &item {
            None => self.exhausted = true,
            Some(Ok((k, _))) => {
                let end = if back {
                    &mut self.back
                } else {
                    &mut self.front
                };
                // The last key kept in one buffer, reused key after key.
                match end {
                    Some(last) => {
                        last.clear();
                        last.extend_from_slice(k);
                    }
                    None => *end = Some(k.clone()),
                }
            }
            Some(Err(_)) => {}
        }
        item
    }
}

impl Iterator for TxnIter {
    type Item = Result<(Vec<u8>, Vec<u8>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step(false)
    }
}

impl DoubleEndedIterator for TxnIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.step(true)
    }
}

impl Drop for TxnIter {
    fn drop(&mut self) {
        let mut covered = self.covered.lock();
        if self.exhausted {
            covered.push((self.lower.clone(), self.upper.clone()));
            return;
        }
        if let Some(k) = &self.front {
            covered.push((self.lower.clone(), Bound::Included(self.prefix.key(k))));
        }
        if let Some(k) = &self.back {
            covered.push((Bound::Included(self.prefix.key(k)), self.upper.clone()));
        }
    }
}
