//! [`Snapshot`]: reads at one fixed point.

use std::ops::RangeBounds;

use crate::Error;
use crate::db::{View, default_prefix};
use crate::iter::DbIter;
use crate::keyspace::prefix::Prefix;
use crate::keyspace::{Keyspace, bounds, prefix_bounds};

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

    /// The prefix of `ks`, refusing a keyspace of another database. (A
    /// keyspace dropped after the snapshot was taken is still read as of
    /// the snapshot.)
    fn prefix_of(&self, ks: &Keyspace) -> Result<Prefix, Error> {
        if ks.state.owner != self.view.db.instance {
            return Err(Error::ForeignKeyspace {
                name: ks.state.name.clone(),
            });
        }
        Ok(ks.state.prefix)
    }

    /// The value of `key` as of the snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.view.get(&default_prefix().key(key.as_ref()))
    }

    /// The keys in `range` as of the snapshot.
    pub fn range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> DbIter {
        self.view.iter_in(&default_prefix(), bounds(&range))
    }

    /// The keys starting with `prefix` as of the snapshot.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> DbIter {
        self.view
            .iter_in(&default_prefix(), prefix_bounds(prefix.as_ref()))
    }

    /// Every key of the default keyspace as of the snapshot.
    pub fn iter(&self) -> DbIter {
        self.range::<&[u8]>(..)
    }

    /// The value of `key` in keyspace `ks` as of the snapshot.
    pub fn get_in(&self, ks: &Keyspace, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.view.get(&self.prefix_of(ks)?.key(key.as_ref()))
    }

    /// The keys of keyspace `ks` in `range` as of the snapshot.
    pub fn range_in<K: AsRef<[u8]>>(
        &self,
        ks: &Keyspace,
        range: impl RangeBounds<K>,
    ) -> Result<DbIter, Error> {
        Ok(self.view.iter_in(&self.prefix_of(ks)?, bounds(&range)))
    }

    /// The keys of keyspace `ks` starting with `prefix` as of the snapshot.
    pub fn prefix_in(&self, ks: &Keyspace, prefix: impl AsRef<[u8]>) -> Result<DbIter, Error> {
        Ok(self
            .view
            .iter_in(&self.prefix_of(ks)?, prefix_bounds(prefix.as_ref())))
    }

    /// The names of the named keyspaces as of the snapshot, in order.
    pub fn keyspaces(&self) -> Result<Vec<String>, Error> {
        Ok(crate::keyspace::catalog::read(&self.view)?
            .names
            .into_keys()
            .collect())
    }

    /// Every key of the keyspace called `name` as it was when the snapshot
    /// was taken (whether or not it still exists, or was dropped and made
    /// again since): [`Error::KeyspaceNotFound`] if it did not exist then.
    pub fn iter_named(&self, name: &str) -> Result<DbIter, Error> {
        let id = crate::keyspace::catalog::read(&self.view)?
            .names
            .get(name)
            .copied()
            .ok_or_else(|| Error::KeyspaceNotFound { name: name.into() })?;
        Ok(self.view.iter_in(
            &Prefix::of(id),
            (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
        ))
    }

    /// Every key of keyspace `ks` as of the snapshot.
    pub fn iter_in(&self, ks: &Keyspace) -> Result<DbIter, Error> {
        self.range_in::<&[u8]>(ks, ..)
    }
}
