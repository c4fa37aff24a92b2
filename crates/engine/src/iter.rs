//! Iterators over a database: the memtables and the tree merged, newest
//! first, read from either end.

use std::ops::Bound;
use std::sync::Arc;

use crate::Error;
use crate::memtable::{Memtable, ScanItem, Seq};
use crate::merge::{KeyValue, MergeIter, SortedSource};
use crate::tree::TreeSource;

/// Keys fetched from a memtable in the first chunk of each end: a short
/// scan (a few keys from a start) copies little more than it yields.
const FIRST_CHUNK: usize = 8;
/// Each later chunk doubles, up to this many keys: a long scan pays one
/// skip-list seek per this many keys.
const MAX_CHUNK: usize = 256;

fn owned(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A range of keys with owned bounds.
pub(crate) type OwnedRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

pub(crate) fn borrowed(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A memtable as a [`SortedSource`]: scanned in chunks, the front chunk
/// bounded by what the back has taken and the reverse, so the two ends never
/// yield one key twice; `None` from either end means nothing is left.
pub(crate) struct MemSource {
    mem: Arc<Memtable>,
    at: Seq,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    front: std::vec::IntoIter<ScanItem>,
    back: std::vec::IntoIter<ScanItem>,
    /// The size of the next chunk from the front and from the back.
    front_chunk: usize,
    back_chunk: usize,
}

impl MemSource {
    pub(crate) fn new(
        mem: Arc<Memtable>,
        at: Seq,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Self {
        MemSource {
            mem,
            at,
            lower: owned(lower),
            upper: owned(upper),
            front: Vec::new().into_iter(),
            back: Vec::new().into_iter(),
            front_chunk: FIRST_CHUNK,
            back_chunk: FIRST_CHUNK,
        }
    }
}

impl MemSource {
    /// The next key from the front (`reverse` false) or the back: from the
    /// buffered chunk, else from a new chunk between the two ends, else from
    /// the far end of the other side's chunk, so `None` means empty.
    fn next_from(&mut self, reverse: bool) -> Option<ScanItem> {
        let (mine, other, size) = if reverse {
            (&mut self.back, &mut self.front, &mut self.back_chunk)
        } else {
            (&mut self.front, &mut self.back, &mut self.front_chunk)
        };
        if let Some(item) = mine.next() {
            return Some(item);
        }
        let limit = *size;
        *size = (limit * 2).min(MAX_CHUNK);
        let chunk = self.mem.scan(
            borrowed(&self.lower),
            borrowed(&self.upper),
            self.at,
            limit,
            reverse,
        );
        let Some((last, _)) = chunk.last() else {
            return other.next_back();
        };
        let bound = Bound::Excluded(last.clone());
        if reverse {
            self.upper = bound;
        } else {
            self.lower = bound;
        }
        *mine = chunk.into_iter();
        mine.next()
    }
}

impl SortedSource<Error> for MemSource {
    fn next_front(&mut self) -> Result<Option<ScanItem>, Error> {
        Ok(self.next_from(false))
    }

    fn next_back(&mut self) -> Result<Option<ScanItem>, Error> {
        Ok(self.next_from(true))
    }
}

/// An iterator over the keys of a range, in key order (or reversed with
/// [`Iterator::rev`]), as of the moment it was created. Items
/// are `Result`s: a page that fails authentication ends the iteration with
/// its error, never with wrong data.
pub struct DbIter {
    inner: Sources,
    /// Bytes of keyspace prefix cut from each key.
    strip: usize,
}

/// What a [`DbIter`] reads.
enum Sources {
    /// Memtables and the tree, merged newest first.
    Merge(MergeIter<Error>),
    /// The tree alone, read straight through: every memtable of the view
    /// was empty, so none can hold a version the view sees (a memtable
    /// only grows, and writers insert before they publish).
    Tree(TreeSource),
}

impl DbIter {
    /// The merge of `sources`, newest first, yielding keys without their
    /// first `strip` bytes.
    pub(crate) fn merged(sources: Vec<Box<dyn SortedSource<Error> + Send>>, strip: usize) -> Self {
        DbIter {
            inner: Sources::Merge(MergeIter::new(sources)),
            strip,
        }
    }

    /// The tree alone, when no memtable can hold a visible version.
    pub(crate) fn tree_only(tree: TreeSource, strip: usize) -> Self {
        DbIter {
            inner: Sources::Tree(tree),
            strip,
        }
    }

    /// Cuts the keyspace prefix off an item's key (in place: no copy).
    #[inline]
    fn user(&self, item: Option<Result<KeyValue, Error>>) -> Option<Result<KeyValue, Error>> {
        match item {
            Some(Ok((mut k, v))) if self.strip > 0 => {
                k.drain(..self.strip.min(k.len()));
                Some(Ok((k, v)))
            }
            other => other,
        }
    }
}

impl DbIter {
    /// The next entry from the front into `key` and `value` (both
    /// replaced): what [`Iterator::next`] yields, without allocating per
    /// entry when only the tree is read.
    #[inline]
    pub(crate) fn next_into(
        &mut self,
        key: &mut Vec<u8>,
        value: &mut Vec<u8>,
    ) -> Option<Result<(), Error>> {
        match &mut self.inner {
            Sources::Tree(t) => t.next_into(self.strip, key, value),
            Sources::Merge(m) => match m.next()? {
                Ok((k, v)) => {
                    key.clear();
                    key.extend_from_slice(k.get(self.strip.min(k.len())..).unwrap_or_default());
                    *value = v;
                    Some(Ok(()))
                }
                Err(e) => Some(Err(e)),
            },
        }
    }
}

impl Iterator for DbIter {
    type Item = Result<(Vec<u8>, Vec<u8>), Error>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let item = match &mut self.inner {
            Sources::Merge(m) => m.next(),
            Sources::Tree(t) => t.next_entry(),
        };
        self.user(item)
    }
}

impl DoubleEndedIterator for DbIter {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = match &mut self.inner {
            Sources::Merge(m) => m.next_back(),
            Sources::Tree(t) => t.next_back_entry(),
        };
        self.user(item)
    }
}

/// The upper bound of the keys that start with `prefix`: the prefix with
/// its last byte below 0xff incremented and what follows dropped, or no
/// bound if it is all 0xff.
pub(crate) fn prefix_upper(prefix: &[u8]) -> Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_upper_bounds() {
        assert_eq!(prefix_upper(b"ab"), Bound::Excluded(b"ac".to_vec()));
        assert_eq!(prefix_upper(b"a\xff"), Bound::Excluded(b"b".to_vec()));
        assert_eq!(prefix_upper(b"\xff\xff"), Bound::Unbounded);
        assert_eq!(prefix_upper(b""), Bound::Unbounded);
    }

    #[test]
    fn mem_source_front_and_back_meet_without_repeats() {
        let mem = Arc::new(Memtable::new());
        for i in 0..1000u32 {
            mem.insert(&i.to_be_bytes(), u64::from(i) + 1, Some(b"v"));
        }
        let mut s = MemSource::new(mem, u64::MAX, Bound::Unbounded, Bound::Unbounded);
        let mut seen = Vec::new();
        let mut flip = false;
        loop {
            flip = !flip;
            let item = if flip { s.next_front() } else { s.next_back() };
            match item.unwrap() {
                Some((k, _)) => seen.push(k),
                None => break,
            }
        }
        // `None` from one end means nothing is left at either.
        assert!(s.next_front().unwrap().is_none());
        assert!(s.next_back().unwrap().is_none());
        let n = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!((n, seen.len()), (1000, 1000));
    }
}
