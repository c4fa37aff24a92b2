//! [`Snapshot`]: reads at one fixed point.

use std::ops::{Bound, RangeBounds};

use crate::Error;
use crate::db::View;
use crate::iter::{DbIter, borrowed as as_ref, prefix_upper};

/// A consistent read-only view of the database as of the moment it was
/// taken: later writes, flushes and key rotations do not change what it
/// reads. It keeps the pages it reads from being reused while it lives, so
/// drop long-lived snapshots when done.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = sealkv::Db::open(dir.path())?;
/// db.put(b"k", b"old")?;
/// let snap = db.snapshot()?;
/// db.put(b"k", b"new")?;
/// assert_eq!(snap.get(b"k")?.as_deref(), Some(&b"old"[..]));
/// assert_eq!(db.get(b"k")?.as_deref(), Some(&b"new"[..]));
/// # Ok(())
/// # }
/// ```
pub struct Snapshot {
    view: View,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("seq", &self.view.at)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    pub(crate) fn new(view: View) -> Self {
        Snapshot { view }
    }

    /// The sequence number of the last batch this snapshot sees.
    pub fn seq(&self) -> u64 {
        self.view.at
    }

    /// The value of `key` as of the snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.view.get(key.as_ref())
    }

    /// Every key as of the snapshot, in order; reverse with `.rev()`.
    pub fn iter(&self) -> DbIter {
        self.view.iter(Bound::Unbounded, Bound::Unbounded)
    }

    /// The keys in `range` as of the snapshot.
    pub fn range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> DbIter {
        let lower = range.start_bound().map(|k| k.as_ref().to_vec());
        let upper = range.end_bound().map(|k| k.as_ref().to_vec());
        self.view.iter(as_ref(&lower), as_ref(&upper))
    }

    /// The keys starting with `prefix` as of the snapshot.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> DbIter {
        let prefix = prefix.as_ref();
        let upper = prefix_upper(prefix);
        self.view.iter(Bound::Included(prefix), as_ref(&upper))
    }
}
