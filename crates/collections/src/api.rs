//! The public operations, twice: on a [`Collection`], each in a
//! transaction of its own (retried on conflict), and on [`InTx`], inside
//! a caller's transaction (several operations on several collections
//! commit or fail together).

use std::ops::RangeBounds;

use serde::Serialize;
use serde::de::DeserializeOwned;

use sealkv::Transaction;

use crate::collection::{At, Collection};
use crate::error::Error;
use crate::key::SortKey;
use crate::ops::Records;

/// A collection inside a caller's transaction: the operations of
/// [`Collection`], written and read with the transaction (its snapshot,
/// its own writes, its conflict check). Get one with
/// [`Collection::in_tx`]; it borrows the transaction for as long as it
/// is used.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # use sealkv_collections::{Collection, Schema};
/// # #[derive(Serialize, Deserialize)] struct Note { id: u32, text: String }
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let db = sealkv::Db::open(dir.path())?;
/// let notes = Collection::open(&db, Schema::new("notes", |n: &Note| n.id))?;
/// notes.insert(&Note { id: 1, text: "on its own".into() })?;
/// db.transaction(|tx| {
///     notes.in_tx(tx).insert(&Note { id: 2, text: "together".into() })?;
///     notes.in_tx(tx).insert(&Note { id: 3, text: "or not at all".into() })
/// })?;
/// assert_eq!(notes.count()?, 3);
/// # Ok(())
/// # }
/// ```
pub struct InTx<'a, T, K> {
    collection: &'a Collection<T, K>,
    tx: &'a mut Transaction,
    /// The schema generation was checked in `tx` (see [`Collection::run`]).
    generation_checked: bool,
}

impl<T, K> std::fmt::Debug for InTx<'_, T, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InTx")
            .field("collection", &self.collection.inner.schema.name)
            .finish_non_exhaustive()
    }
}

impl<T, K> Collection<T, K>
where
    T: Serialize + DeserializeOwned + 'static,
    K: SortKey + 'static,
{
    fn own(&self) -> At<'_> {
        At::Own(&self.inner.db)
    }

    /// This collection inside transaction `tx` (see [`InTx`]).
    pub fn in_tx<'a>(&'a self, tx: &'a mut Transaction) -> InTx<'a, T, K> {
        InTx {
            collection: self,
            tx,
            generation_checked: false,
        }
    }

    /// Stores `record`, which must be new: a record with its primary key is
    /// [`Error::DuplicateKey`], a value a unique index already holds for
    /// another record [`Error::UniqueViolation`]; either way nothing is
    /// written.
    pub fn insert(&self, record: &T) -> Result<(), Error> {
        self.insert_at(self.own(), record)
    }

    /// Stores `record`, replacing the record with its primary key if there
    /// is one (its index entries move with it, atomically); returns whether
    /// one was replaced. A unique index value held by another record is
    /// [`Error::UniqueViolation`], and nothing is written.
    pub fn upsert(&self, record: &T) -> Result<bool, Error> {
        self.upsert_at(self.own(), record)
    }

    /// Changes the record with primary key `key` with `change` and stores
    /// it (its index entries move with it); returns the new record, or
    /// `None` if there is none. `change` must not change the primary key
    /// ([`Error::PrimaryKeyChanged`]), and may run more than once (on
    /// conflict).
    pub fn update(&self, key: &K, change: impl FnMut(&mut T)) -> Result<Option<T>, Error> {
        self.update_at(self.own(), key, change)
    }

    /// Deletes the record with primary key `key` and its index entries;
    /// returns whether there was one. Works for a record whose sealed fields
    /// can no longer be read (its tenant erased).
    pub fn delete(&self, key: &K) -> Result<bool, Error> {
        self.delete_at(self.own(), key)
    }

    /// The record with primary key `key`.
    pub fn get(&self, key: &K) -> Result<Option<T>, Error> {
        self.get_at(self.own(), key)
    }

    /// Whether there is a record with primary key `key`.
    pub fn contains(&self, key: &K) -> Result<bool, Error> {
        self.contains_at(self.own(), key)
    }

    /// The records whose index `index` holds `value`, in primary-key order
    /// (a prefix scan of the index, then a read of each record). `value`
    /// must be of the index's type ([`Error::IndexType`]). For a blind
    /// index of a collection with tenants, use
    /// [`find_in_tenant`](Self::find_in_tenant).
    pub fn find<V: SortKey + ?Sized>(&self, index: &str, value: &V) -> Result<Vec<T>, Error> {
        self.find_at(self.own(), index, value)
    }

    /// [`find`](Self::find) among the records of `tenant` only, for any
    /// index; the way to look up a blind index of a collection with
    /// tenants (each tenant's tags are under its own key). An erased
    /// tenant's records are found by no blind value (plain values still
    /// find them). A collection without tenants is [`Error::NoTenants`];
    /// a tenant of another type than the schema's, [`Error::TenantType`].
    pub fn find_in_tenant<N: SortKey + ?Sized, V: SortKey + ?Sized>(
        &self,
        tenant: &N,
        index: &str,
        value: &V,
    ) -> Result<Vec<T>, Error> {
        self.find_in_tenant_at(self.own(), tenant, index, value)
    }

    /// The record whose unique index `index` holds `value`
    /// ([`find`](Self::find) for a unique index).
    pub fn find_unique<V: SortKey + ?Sized>(
        &self,
        index: &str,
        value: &V,
    ) -> Result<Option<T>, Error> {
        self.find_unique_at(self.own(), index, value)
    }

    /// The records whose value in the plain index `index` lies in `range`,
    /// in value order (then primary-key order): one scan of the index, then
    /// a read of each record. A blind index answers [`Error::BlindRange`].
    pub fn range_by<V: SortKey>(
        &self,
        index: &str,
        range: impl RangeBounds<V>,
    ) -> Result<Vec<T>, Error> {
        self.range_by_at(self.own(), index, range)
    }

    /// How many records the collection holds (a scan of its records'
    /// keys).
    pub fn count(&self) -> Result<u64, Error> {
        self.count_at(self.own())
    }

    /// Every record, in primary-key order: an iterator that decodes each
    /// record as it comes (reverse it with `.rev()`), on a snapshot of now.
    pub fn iter(&self) -> Result<Records<T, K>, Error> {
        self.iter_at(self.own())
    }

    /// The records whose primary key lies in `range`, in primary-key order
    /// (see [`iter`](Self::iter)).
    pub fn range(&self, range: impl RangeBounds<K>) -> Result<Records<T, K>, Error> {
        self.range_at(self.own(), range)
    }
}

impl<T, K> InTx<'_, T, K>
where
    T: Serialize + DeserializeOwned + 'static,
    K: SortKey + 'static,
{
    fn at(&mut self) -> At<'_> {
        At::Tx {
            tx: self.tx,
            generation_checked: &mut self.generation_checked,
        }
    }

    /// [`Collection::insert`] in this transaction. A refused insert leaves
    /// the transaction as it was.
    pub fn insert(&mut self, record: &T) -> Result<(), Error> {
        let c = self.collection;
        c.insert_at(self.at(), record)
    }

    /// [`Collection::upsert`] in this transaction.
    pub fn upsert(&mut self, record: &T) -> Result<bool, Error> {
        let c = self.collection;
        c.upsert_at(self.at(), record)
    }

    /// [`Collection::update`] in this transaction (`change` runs once).
    pub fn update(&mut self, key: &K, change: impl FnMut(&mut T)) -> Result<Option<T>, Error> {
        let c = self.collection;
        c.update_at(self.at(), key, change)
    }

    /// [`Collection::delete`] in this transaction.
    pub fn delete(&mut self, key: &K) -> Result<bool, Error> {
        let c = self.collection;
        c.delete_at(self.at(), key)
    }

    /// [`Collection::get`] in this transaction.
    pub fn get(&mut self, key: &K) -> Result<Option<T>, Error> {
        let c = self.collection;
        c.get_at(self.at(), key)
    }

    /// [`Collection::contains`] in this transaction.
    pub fn contains(&mut self, key: &K) -> Result<bool, Error> {
        let c = self.collection;
        c.contains_at(self.at(), key)
    }

    /// [`Collection::find`] in this transaction.
    pub fn find<V: SortKey + ?Sized>(&mut self, index: &str, value: &V) -> Result<Vec<T>, Error> {
        let c = self.collection;
        c.find_at(self.at(), index, value)
    }

    /// [`Collection::find_in_tenant`] in this transaction.
    pub fn find_in_tenant<N: SortKey + ?Sized, V: SortKey + ?Sized>(
        &mut self,
        tenant: &N,
        index: &str,
        value: &V,
    ) -> Result<Vec<T>, Error> {
        let c = self.collection;
        c.find_in_tenant_at(self.at(), tenant, index, value)
    }

    /// [`Collection::find_unique`] in this transaction.
    pub fn find_unique<V: SortKey + ?Sized>(
        &mut self,
        index: &str,
        value: &V,
    ) -> Result<Option<T>, Error> {
        let c = self.collection;
        c.find_unique_at(self.at(), index, value)
    }

    /// [`Collection::range_by`] in this transaction.
    pub fn range_by<V: SortKey>(
        &mut self,
        index: &str,
        range: impl RangeBounds<V>,
    ) -> Result<Vec<T>, Error> {
        let c = self.collection;
        c.range_by_at(self.at(), index, range)
    }

    /// [`Collection::count`] in this transaction.
    pub fn count(&mut self) -> Result<u64, Error> {
        let c = self.collection;
        c.count_at(self.at())
    }

    /// [`Collection::iter`] in this transaction (what it yields counts as
    /// read).
    pub fn iter(&mut self) -> Result<Records<T, K>, Error> {
        let c = self.collection;
        c.iter_at(self.at())
    }

    /// [`Collection::range`] in this transaction.
    pub fn range(&mut self, range: impl RangeBounds<K>) -> Result<Records<T, K>, Error> {
        let c = self.collection;
        c.range_at(self.at(), range)
    }
}
