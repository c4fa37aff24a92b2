//! The page file's tree as a [`SortedSource`] for the merging iterator.

use std::ops::Bound;
use std::sync::Arc;

use sealkv_core_store::{Range, ReadTxn};

use crate::Error;
use crate::db::Inner;
use crate::memtable::ScanItem;
use crate::merge::{KeyValue, SortedSource};

/// A range of one page-file snapshot. Its front and back never cross (the
/// store's iterator guarantees it), and after an error it ends.
pub(crate) struct TreeSource {
    range: Range,
    db: Arc<Inner>,
}

impl TreeSource {
    pub(crate) fn new(
        tree: &ReadTxn,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        db: Arc<Inner>,
    ) -> Self {
        TreeSource {
            range: tree.range(lower, upper),
            db,
        }
    }
}

impl TreeSource {
    /// [`TreeSource::new`] yielding keys with empty values (no value
    /// copied, no overflow page read).
    pub(crate) fn keys(
        tree: &ReadTxn,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        db: Arc<Inner>,
    ) -> Self {
        TreeSource {
            range: tree.range_keys(lower, upper),
            db,
        }
    }

    /// The next entry from the front, as a [`DbIter`](crate::DbIter) item
    /// (for a view with nothing in its memtables); after an error, `None`.
    #[inline]
    pub(crate) fn next_entry(&mut self) -> Option<Result<KeyValue, Error>> {
        Some(self.range.next()?.map_err(|e| self.db.store_error(e)))
    }

    /// The next entry from the front copied into `key` (without its first
    /// `strip` bytes) and `value`, both cleared first: no allocation but
    /// while they grow; after an error, `None`.
    #[inline]
    pub(crate) fn next_into(
        &mut self,
        strip: usize,
        key: &mut Vec<u8>,
        value: &mut Vec<u8>,
    ) -> Option<Result<(), Error>> {
        let copied = self.range.next_with(|k, v| {
            key.clear();
            key.extend_from_slice(k.get(strip.min(k.len())..).unwrap_or_default());
            value.clear();
            value.extend_from_slice(v);
        })?;
        Some(copied.map_err(|e| self.db.store_error(e)))
    }

    /// The next entry from the back, like [`TreeSource::next_entry`].
    #[inline]
    pub(crate) fn next_back_entry(&mut self) -> Option<Result<KeyValue, Error>> {
        Some(self.range.next_back()?.map_err(|e| self.db.store_error(e)))
    }
}

impl SortedSource<Error> for TreeSource {
    fn next_front(&mut self) -> Result<Option<ScanItem>, Error> {
        match self.range.next() {
            None => Ok(None),
            Some(Ok((k, v))) => Ok(Some((k, Some(v)))),
            Some(Err(e)) => Err(self.db.store_error(e)),
        }
    }

    fn next_back(&mut self) -> Result<Option<ScanItem>, Error> {
        match self.range.next_back() {
            None => Ok(None),
            Some(Ok((k, v))) => Ok(Some((k, Some(v)))),
            Some(Err(e)) => Err(self.db.store_error(e)),
        }
    }
}
