//! Named keyspaces: separate sets of keys in one database, written together
//! atomically.
//!
//! All keyspaces live in one tree, one log and one set of memtables; each
//! key is stored behind its keyspace's short prefix ([`prefix`]), so a
//! batch or a transaction over several keyspaces is one log record like any
//! other, and every snapshot, backup and flush covers them all. The names
//! live in the catalog ([`catalog`]), a keyspace of its own, sealed like
//! any data: no name appears in clear on disk in an encrypted database.

pub(crate) mod catalog;
pub(crate) mod prefix;

use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::Error;
use crate::batch::WriteBatch;
use crate::db::Db;
use crate::iter::{DbIter, prefix_upper};
use prefix::{KeyspaceId, Prefix};

/// The longest keyspace name, in bytes.
pub const MAX_KEYSPACE_NAME_LEN: usize = 255;

/// One keyspace as the open database knows it.
#[derive(Debug)]
pub(crate) struct KeyspaceState {
    pub(crate) id: KeyspaceId,
    /// Empty for the default keyspace.
    pub(crate) name: String,
    pub(crate) prefix: Prefix,
    /// Set (under the log's reservation lock) by the batch that drops it:
    /// no batch numbered after that one may write to it.
    dropped: AtomicBool,
    /// Which open database the state belongs to (its [`crate::db::Inner`]
    /// instance number): a handle of another database is refused.
    pub(crate) owner: u64,
}

impl KeyspaceState {
    pub(crate) fn new(id: KeyspaceId, name: String, owner: u64) -> Self {
        KeyspaceState {
            id,
            name,
            prefix: Prefix::of(id),
            dropped: AtomicBool::new(false),
            owner,
        }
    }

    pub(crate) fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    pub(crate) fn mark_dropped(&self) {
        self.dropped.store(true, Ordering::Release);
    }
}

/// Checks a keyspace name: 1 to [`MAX_KEYSPACE_NAME_LEN`] bytes.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_KEYSPACE_NAME_LEN {
        return Err(Error::InvalidKeyspaceName {
            len: name.len(),
            max: MAX_KEYSPACE_NAME_LEN,
        });
    }
    Ok(())
}

/// A named keyspace of an open database: its own keys, with the same reads
/// and writes as [`Db`]'s (which are the default keyspace's). Cheap to
/// clone; get one with [`Db::keyspace`].
///
/// Batches ([`WriteBatch::put_in`]), snapshots ([`crate::Snapshot::get_in`])
/// and transactions ([`crate::Transaction::get_in`]) take a keyspace to
/// work in it, and span several keyspaces atomically.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = sealkv::Db::open(dir.path())?;
/// let users = db.keyspace("users")?;
/// let orders = db.keyspace("orders")?;
/// users.put(b"1", b"ada")?;
/// assert_eq!(orders.get(b"1")?, None); // another keyspace, another key
///
/// let mut batch = sealkv::WriteBatch::new();
/// batch.put_in(&users, b"2", b"grace").put_in(&orders, b"2/1", b"tea");
/// db.write(&batch)?; // both or neither
/// assert_eq!(db.keyspaces()?, vec!["orders".to_string(), "users".to_string()]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Keyspace {
    pub(crate) db: Db,
    pub(crate) state: Arc<KeyspaceState>,
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("name", &self.state.name)
            .finish_non_exhaustive()
    }
}

impl Keyspace {
    /// The keyspace's name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Refuses a dropped keyspace.
    pub(crate) fn live(&self) -> Result<&Prefix, Error> {
        self.db.check_open()?;
        if self.state.is_dropped() {
            return Err(Error::KeyspaceDropped {
                name: self.state.name.clone(),
            });
        }
        Ok(&self.state.prefix)
    }

    /// Deletes every key of this keyspace in `range`, in bounded atomic
    /// batches (see [`Db::delete_range`]); returns how many it deleted.
    pub fn delete_range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> Result<u64, Error> {
        let (lo, hi) = bounds(&range);
        self.delete_bounds(lo, hi)
    }

    /// Deletes every key of this keyspace that starts with `prefix` (see
    /// [`Db::delete_range`]); returns how many it deleted.
    pub fn delete_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<u64, Error> {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        self.delete_bounds(lo, hi)
    }

    fn delete_bounds(&self, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> Result<u64, Error> {
        let prefix = self.live()?;
        self.db.check_writable()?;
        crate::bulk::delete_stored_range(
            &self.db.inner,
            prefix.lower(crate::iter::borrowed(&lo)),
            prefix.upper(crate::iter::borrowed(&hi)),
            Some(&self.state),
            sealkv_core_wal::Durability::AsConfigured,
        )
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        let prefix = self.live()?;
        self.db.inner.get(prefix.key(key.as_ref()))
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, Error> {
        Ok(self.get(key)?.is_some())
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        let mut b = WriteBatch::new();
        b.put_in(self, key, value);
        self.db.write(&b)
    }

    /// Removes `key` (no error if it is absent).
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<(), Error> {
        let mut b = WriteBatch::new();
        b.delete_in(self, key);
        self.db.write(&b)
    }

    /// The keys in `range`, in order; reverse with `.rev()`.
    pub fn range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> Result<DbIter, Error> {
        let prefix = *self.live()?;
        let view = self.db.inner.view()?;
        Ok(view.iter_in(&prefix, bounds(&range)))
    }

    /// The keys starting with `prefix`, in order; reverse with `.rev()`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Result<DbIter, Error> {
        let ks = *self.live()?;
        let view = self.db.inner.view()?;
        Ok(view.iter_in(&ks, prefix_bounds(prefix.as_ref())))
    }

    /// Every key, in order; reverse with `.rev()`.
    pub fn iter(&self) -> Result<DbIter, Error> {
        self.range::<&[u8]>(..)
    }
}

/// Owned bounds of user keys.
pub(crate) type UserBounds = crate::iter::OwnedRange;

/// The bounds of `range`, owned.
pub(crate) fn bounds<K: AsRef<[u8]>>(range: &impl RangeBounds<K>) -> UserBounds {
    (
        range.start_bound().map(|k| k.as_ref().to_vec()),
        range.end_bound().map(|k| k.as_ref().to_vec()),
    )
}

/// The bounds of the keys that start with `prefix`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> UserBounds {
    (Bound::Included(prefix.to_vec()), prefix_upper(prefix))
}
