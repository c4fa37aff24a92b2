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

/// A key and its value borrowed from a [`TxnIter`] until its next call
/// (what [`TxnIter::next_ref`] yields).
pub type EntryRef<'a> = (&'a [u8], &'a [u8]);

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
    /// The key [`TxnIter::next_ref`] reads into before it becomes
    /// `front` (the two swap places: neither is allocated per entry).
    scratch: Vec<u8>,
    /// The value [`TxnIter::next_ref`] yielded last.
    value: Vec<u8>,
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
        writes: &mut WriteSet,
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
            scratch: Vec::new(),
            value: Vec::new(),
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

impl TxnIter {
    /// The next entry from the front, borrowed from the iterator until
    /// its next call: what [`Iterator::next`] yields (and counting as
    /// read the same way), without allocating a key and a value per
    /// entry. A loop over a range reads with
    /// `while let Some(entry) = iter.next_ref() { let (key, value) = entry?; … }`;
    /// it mixes freely with [`Iterator::next`] and
    /// [`DoubleEndedIterator::next_back`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = sealkv::Db::open(dir.path())?;
    /// db.put(b"a", b"1")?;
    /// db.put(b"b", b"22")?;
    /// db.transaction(|tx| {
    ///     let mut iter = tx.range::<&[u8]>(..)?;
    ///     let mut seen = Vec::new();
    ///     while let Some(entry) = iter.next_ref() {
    ///         let (key, value) = entry?;
    ///         seen.push((key.to_vec(), value.len()));
    ///     }
    ///     assert_eq!(seen, [(b"a".to_vec(), 1), (b"b".to_vec(), 2)]);
    ///     Ok::<_, sealkv::Error>(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn next_ref(&mut self) -> Option<Result<EntryRef<'_>, Error>> {
        match self.inner.next_into(&mut self.scratch, &mut self.value) {
            None => {
                self.exhausted = true;
                None
            }
            Some(Err(e)) => Some(Err(e)),
            Some(Ok(())) => {
                // The key read becomes the last one yielded from the
                // front; the one before it is the next scratch buffer.
                let last = self.front.get_or_insert_with(Vec::new);
                std::mem::swap(last, &mut self.scratch);
                Some(Ok((last.as_slice(), self.value.as_slice())))
            }
        }
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
