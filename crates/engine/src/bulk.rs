//! Bulk deletes: every key of a range or a prefix, in bounded batches.
//!
//! Each round takes a fresh view, lists the next keys of the range (keys
//! only: no value is copied and no overflow page is read), and deletes them
//! in one ordinary batch of at most [`BULK_KEYS`] keys and [`BULK_BYTES`]
//! bytes of keys: logged, durable as a write is, atomic, checked against
//! transactions like any batch. The next round starts after the last key
//! deleted, so the tombstones just written (over the tree until the next
//! flush) are not walked again. The flush then applies the tombstones in key
//! order; a leaf left empty is freed, and thinned leaves merge with their
//! neighbours.

use std::ops::Bound;
use std::sync::Arc;

use sealkv_core_wal::Durability;

use crate::batch::WriteBatch;
use crate::db::{Inner, View};
use crate::error::Error;
use crate::iter::{DbIter, borrowed};
use crate::keyspace::KeyspaceState;
use crate::merge::SortedSource;
use crate::tree::TreeSource;
use crate::write::Commit;

/// Keys deleted per batch.
pub(crate) const BULK_KEYS: usize = 1024;
/// Bytes of keys deleted per batch.
pub(crate) const BULK_BYTES: usize = 4 << 20;

/// Deletes every stored key within `(lower, upper)` as it stands when each
/// batch is taken; returns how many keys were deleted. `ks`, a named
/// keyspace, refuses the batches once it is dropped.
pub(crate) fn delete_stored_range(
    db: &Arc<Inner>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    ks: Option<&Arc<KeyspaceState>>,
    durability: Durability,
) -> Result<u64, Error> {
    let mut after = lower;
    let mut deleted = 0u64;
    loop {
        let view = db.view()?;
        let mut batch = WriteBatch::new();
        if let Some(ks) = ks {
            batch.note_keyspace(ks);
        }
        let mut bytes = 0;
        let mut last = None;
        for item in keys_in(&view, borrowed(&after), borrowed(&upper)) {
            let (key, _) = item?;
            bytes += key.len();
            batch.raw_delete(&[], &key);
            last = Some(key);
            if batch.len() >= BULK_KEYS || bytes >= BULK_BYTES {
                break;
            }
        }
        drop(view);
        let Some(last) = last else {
            return Ok(deleted);
        };
        db.commit(&batch, Commit::plain(durability))?;
        deleted += batch.len() as u64;
        after = Bound::Excluded(last);
    }
}

/// The live stored keys of `view` within `(lower, upper)`, each with an
/// empty value or its memtable value (the caller wants the keys).
fn keys_in(view: &View, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> DbIter {
    let tree = TreeSource::keys(&view.tree, lower, upper, view.db.clone());
    if view.mems.iter().all(|m| m.approx_bytes() == 0) {
        return DbIter::tree_only(tree, 0);
    }
    let mut sources = view.sources(lower, upper);
    // The last source is the tree: read it for keys only.
    sources.pop();
    sources.push(Box::new(tree) as Box<dyn SortedSource<Error> + Send>);
    DbIter::merged(sources, 0)
}
