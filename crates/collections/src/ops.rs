//! The operations of a collection: writes that keep every index in step in
//! the same transaction, and reads by primary key or by index.

use std::ops::{Bound, RangeBounds};

use serde::Serialize;
use serde::de::DeserializeOwned;

use sealkv::{Transaction, TxnIter};

use crate::collection::{Active, At, Collection, Encoded};
use crate::error::Error;
use crate::key::{SortKey, kind_of, prefix_successor};
use crate::layout::{self, RECORD_TAG};
use crate::record;
use crate::runs::Runs;
use crate::tenants;

/// How a write treats a record already stored under the primary key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Refuse it.
    Insert,
    /// Replace it.
    Upsert,
}

impl<T, K> Collection<T, K>
where
    T: Serialize + DeserializeOwned + 'static,
    K: SortKey + 'static,
{
    /// See [`Collection::insert`].
    pub(crate) fn insert_at(&self, at: At<'_>, record: &T) -> Result<(), Error> {
        self.run(at, |tx| self.write(tx, record, Mode::Insert).map(|_| ()))
    }

    /// See [`Collection::upsert`].
    pub(crate) fn upsert_at(&self, at: At<'_>, record: &T) -> Result<bool, Error> {
        self.run(at, |tx| self.write(tx, record, Mode::Upsert))
    }

    /// See [`Collection::update`].
    pub(crate) fn update_at(
        &self,
        at: At<'_>,
        key: &K,
        mut change: impl FnMut(&mut T),
    ) -> Result<Option<T>, Error> {
        self.run(at, |tx| {
            let Some(mut record) = self.get_tx(tx, &key.to_key_bytes())? else {
                return Ok(None);
            };
            change(&mut record);
            if self.primary_key_of(&record)? != key.to_key_bytes() {
                return Err(Error::PrimaryKeyChanged {
                    collection: self.collection_name(),
                });
            }
            self.write(tx, &record, Mode::Upsert)?;
            Ok(Some(record))
        })
    }

    /// See [`Collection::delete`].
    pub(crate) fn delete_at(&self, at: At<'_>, key: &K) -> Result<bool, Error> {
        let pk = key.to_key_bytes();
        self.run(at, |tx| {
            let rkey = layout::record_key(&pk);
            let Some(old) = tx.get_in(&self.inner.ks, &rkey)? else {
                return Ok(false);
            };
            let stored = record::split(&old).ok_or_else(|| self.corrupt("a record is damaged"))?;
            for (id, value) in &stored.head.entries {
                if let Some(unique) = self.unique_of(*id) {
                    tx.delete_in(&self.inner.ks, layout::entry_key(*id, unique, value, &pk))?;
                }
            }
            tx.delete_in(&self.inner.ks, rkey)?;
            Ok(true)
        })
    }

    /// See [`Collection::get`].
    pub(crate) fn get_at(&self, at: At<'_>, key: &K) -> Result<Option<T>, Error> {
        let pk = key.to_key_bytes();
        self.run(at, |tx| self.get_tx(tx, &pk))
    }

    /// See [`Collection::contains`].
    pub(crate) fn contains_at(&self, at: At<'_>, key: &K) -> Result<bool, Error> {
        let rkey = layout::record_key(&key.to_key_bytes());
        self.run(at, |tx| Ok(tx.get_in(&self.inner.ks, &rkey)?.is_some()))
    }

    /// See [`Collection::find`].
    pub(crate) fn find_at<V: SortKey + ?Sized>(
        &self,
        at: At<'_>,
        index: &str,
        value: &V,
    ) -> Result<Vec<T>, Error> {
        let index = self.queryable::<V>(index)?;
        if index.decl.spec.blind && self.inner.tenants.is_some() {
            return Err(Error::TenantRequired {
                collection: self.collection_name(),
                index: index.decl.name.clone(),
            });
        }
        let encoded = value.to_key_bytes();
        self.run(at, |tx| self.find_tx(tx, index, &encoded, None))
    }

    /// See [`Collection::find_in_tenant`].
    pub(crate) fn find_in_tenant_at<N: SortKey + ?Sized, V: SortKey + ?Sized>(
        &self,
        at: At<'_>,
        tenant: &N,
        index: &str,
        value: &V,
    ) -> Result<Vec<T>, Error> {
        if self.inner.tenants.is_none() {
            return Err(Error::NoTenants {
                collection: self.collection_name(),
            });
        }
        let queried = kind_of::<N>();
        if let Some(declared) = &self.inner.schema.tenant_kind
            && *declared != queried
        {
            return Err(Error::TenantType {
                collection: self.collection_name(),
                declared: declared.clone(),
                queried,
            });
        }
        let index = self.queryable::<V>(index)?;
        let encoded = value.to_key_bytes();
        let tenant = tenant.to_key_bytes();
        self.run(at, |tx| self.find_tx(tx, index, &encoded, Some(&tenant)))
    }

    /// See [`Collection::find_unique`].
    pub(crate) fn find_unique_at<V: SortKey + ?Sized>(
        &self,
        at: At<'_>,
        index: &str,
        value: &V,
    ) -> Result<Option<T>, Error> {
        Ok(self.find_at(at, index, value)?.into_iter().next())
    }

    /// See [`Collection::range_by`].
    pub(crate) fn range_by_at<V: SortKey>(
        &self,
        at: At<'_>,
        index: &str,
        range: impl RangeBounds<V>,
    ) -> Result<Vec<T>, Error> {
        let index = self.queryable::<V>(index)?;
        if index.decl.spec.blind {
            return Err(Error::BlindRange {
                collection: self.collection_name(),
                index: index.decl.name.clone(),
            });
        }
        let prefix = layout::index_prefix(index.id);
        let with_prefix = |v: &V| {
            let mut k = prefix.clone();
            v.encode_key(&mut k);
            k
        };
        let past = |k: Vec<u8>| prefix_successor(&k).map_or(Bound::Unbounded, Bound::Excluded);
        let lower = match range.start_bound() {
            Bound::Included(v) => Bound::Included(with_prefix(v)),
            Bound::Excluded(v) => match past(with_prefix(v)) {
                Bound::Excluded(k) => Bound::Included(k),
                other => other,
            },
            Bound::Unbounded => Bound::Included(prefix.clone()),
        };
        let upper = match range.end_bound() {
            Bound::Included(v) => past(with_prefix(v)),
            Bound::Excluded(v) => Bound::Excluded(with_prefix(v)),
            Bound::Unbounded => past(prefix.clone()),
        };
        self.run(at, |tx| {
            let mut pks = Runs::default();
            let mut entries = tx.range_in(&self.inner.ks, (lower.clone(), upper.clone()))?;
            while let Some(entry) = entries.next_ref() {
                pks.push(entry?.1);
            }
            drop(entries);
            self.records_of(tx, &pks, None, None)
        })
    }

    /// See [`Collection::count`].
    pub(crate) fn count_at(&self, at: At<'_>) -> Result<u64, Error> {
        self.run(at, |tx| {
            let mut n = 0u64;
            for item in tx.prefix_in(&self.inner.ks, [RECORD_TAG])? {
                item?;
                n += 1;
            }
            Ok(n)
        })
    }

    /// See [`Collection::iter`].
    pub(crate) fn iter_at(&self, at: At<'_>) -> Result<Records<T, K>, Error> {
        self.range_at(at, ..)
    }

    /// See [`Collection::range`].
    pub(crate) fn range_at(
        &self,
        at: At<'_>,
        range: impl RangeBounds<K>,
    ) -> Result<Records<T, K>, Error> {
        let with_tag = |k: &K| layout::record_key(&k.to_key_bytes());
        let past = |k: Vec<u8>| prefix_successor(&k).map_or(Bound::Unbounded, Bound::Excluded);
        let lower = match range.start_bound() {
            Bound::Included(k) => Bound::Included(with_tag(k)),
            Bound::Excluded(k) => Bound::Excluded(with_tag(k)),
            Bound::Unbounded => Bound::Included(vec![RECORD_TAG]),
        };
        let upper = match range.end_bound() {
            Bound::Included(k) => Bound::Included(with_tag(k)),
            Bound::Excluded(k) => Bound::Excluded(with_tag(k)),
            Bound::Unbounded => past(vec![RECORD_TAG]),
        };
        let iter = self.run(at, |tx| {
            Ok(tx.range_in(&self.inner.ks, (lower.clone(), upper.clone()))?)
        })?;
        Ok(Records {
            collection: self.clone(),
            iter,
        })
    }

    /// Reads the record with primary key encoding `pk`.
    pub(crate) fn get_tx(&self, tx: &mut Transaction, pk: &[u8]) -> Result<Option<T>, Error> {
        match tx.get_in(&self.inner.ks, layout::record_key(pk))? {
            None => Ok(None),
            Some(stored) => self.decode(pk, &stored, Some(tx)).map(Some),
        }
    }

    /// Writes `record` and moves its index entries; returns whether it
    /// replaced a record. Every check (duplicates, unique indexes) runs
    /// before the first write, so a refused write leaves the transaction as
    /// it was.
    fn write(&self, tx: &mut Transaction, record: &T, mode: Mode) -> Result<bool, Error> {
        let Encoded {
            pk,
            value,
            entries,
            new_tenant,
        } = self.encode(tx, record)?;
        let ks = &self.inner.ks;
        let rkey = layout::record_key(&pk);
        let old = tx.get_in(ks, &rkey)?;
        if mode == Mode::Insert && old.is_some() {
            return Err(Error::DuplicateKey {
                collection: self.collection_name(),
            });
        }
        let old_entries = match &old {
            None => Vec::new(),
            Some(bytes) => {
                record::split(bytes)
                    .ok_or_else(|| self.corrupt("a record is damaged"))?
                    .head
                    .entries
            }
        };
        for (index, (id, value)) in self.inner.indexes.iter().zip(&entries) {
            if !index.decl.spec.unique {
                continue;
            }
            let holder = tx.get_in(ks, layout::entry_key(*id, true, value, &pk))?;
            if holder.is_some_and(|other| other != pk) {
                return Err(Error::UniqueViolation {
                    collection: self.collection_name(),
                    index: index.decl.name.clone(),
                });
            }
        }
        // Checks done: from here on, only writes.
        if let (Some((tenant, stored)), Some(tks)) = (&new_tenant, &self.inner.tenants) {
            tenants::record(tx, tks, tenant, *stored)?;
        }
        for (id, value) in &old_entries {
            if let Some(unique) = self.unique_of(*id)
                && !entries.iter().any(|(i, v)| i == id && v == value)
            {
                tx.delete_in(ks, layout::entry_key(*id, unique, value, &pk))?;
            }
        }
        for (index, (id, value)) in self.inner.indexes.iter().zip(&entries) {
            let unique = index.decl.spec.unique;
            tx.put_in(ks, layout::entry_key(*id, unique, value, &pk), &pk)?;
        }
        tx.put_in(ks, rkey, value)?;
        Ok(old.is_some())
    }

    /// Whether index `id` is unique; `None` for an index no longer
    /// declared (a record written before it was dropped still lists it;
    /// the drop deletes its entries by prefix).
    pub(crate) fn unique_of(&self, id: u32) -> Option<bool> {
        self.inner
            .indexes
            .iter()
            .find(|i| i.id == id)
            .map(|i| i.decl.spec.unique)
    }

    /// The index `name`, refusing a lookup value of another type.
    fn queryable<V: SortKey + ?Sized>(&self, name: &str) -> Result<&Active<T>, Error> {
        let index = self.index(name)?;
        let queried = kind_of::<V>();
        if queried != index.decl.kind {
            return Err(Error::IndexType {
                collection: self.collection_name(),
                index: name.to_owned(),
                declared: index.decl.kind.clone(),
                queried,
            });
        }
        Ok(index)
    }

    fn find_tx(
        &self,
        tx: &mut Transaction,
        index: &Active<T>,
        value: &[u8],
        tenant: Option<&[u8]>,
    ) -> Result<Vec<T>, Error> {
        let stored_value = if index.decl.spec.blind {
            let key = match self.key_for(tx, tenant, false)? {
                Some((key, _)) => key,
                None => return Ok(Vec::new()),
            };
            match self.tag(key, index, value) {
                Ok(tag) => tag,
                // An erased tenant: no value finds its records any more.
                Err(Error::Db(sealkv::Error::KeyDestroyed(_))) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            }
        } else {
            value.to_vec()
        };
        let mut prefix = layout::index_prefix(index.id);
        prefix.extend_from_slice(&stored_value);
        let mut pks = Runs::default();
        if index.decl.spec.unique {
            if let Some(pk) = tx.get_in(&self.inner.ks, &prefix)? {
                pks.push(&pk);
            }
        } else {
            let mut entries = tx.prefix_in(&self.inner.ks, &prefix)?;
            while let Some(entry) = entries.next_ref() {
                pks.push(entry?.1);
            }
        }
        let recheck = index.decl.spec.blind.then_some((index, value));
        self.records_of(tx, &pks, recheck, tenant)
    }

    /// Reads the records of `pks`. A blind lookup re-checks each record's
    /// value (`recheck`), so a shared tag prefix can never answer a wrong
    /// record; a lookup in a tenant keeps only that tenant's records (a
    /// plain index, and a blind index under a collection key, hold every
    /// tenant's entries).
    fn records_of(
        &self,
        tx: &mut Transaction,
        pks: &Runs,
        recheck: Option<(&Active<T>, &[u8])>,
        tenant: Option<&[u8]>,
    ) -> Result<Vec<T>, Error> {
        // Each record is decoded as it is read, straight from the read
        // buffer; the check of its sealed fields' key, which may read the
        // tenant's key in the transaction, waits until the reads are done.
        // Several records through one reader, which keeps its place in
        // the tree (the primary keys of one index value ascend); one (a
        // unique lookup) by a plain read, which sets up no path to keep.
        let missing = || self.corrupt("an index entry names a missing record");
        let mut decoded = Vec::with_capacity(pks.len());
        if pks.len() == 1 {
            for pk in pks.iter() {
                let value = tx.get_in(&self.inner.ks, layout::record_key(pk))?;
                decoded.push(self.decode_fields(pk, &value.ok_or_else(missing)?)?);
            }
        } else {
            let mut reader = tx.reader_in(&self.inner.ks)?;
            let mut rkey = Vec::new();
            let mut value = Vec::new();
            for pk in pks.iter() {
                rkey.clear();
                rkey.push(RECORD_TAG);
                rkey.extend_from_slice(pk);
                if !reader.get_into(&rkey, &mut value)? {
                    return Err(missing());
                }
                decoded.push(self.decode_fields(pk, &value)?);
            }
        }
        let mut out = Vec::with_capacity(pks.len());
        for (record, opened) in decoded {
            self.check_opened(&record, &opened, Some(tx))?;
            if tenant.is_some() && self.tenant_of(&record)?.as_deref() != tenant {
                continue;
            }
            if let Some((index, value)) = recheck {
                let mut actual = Vec::new();
                (index.decl.extract)(&record, &mut actual);
                if actual != value {
                    continue;
                }
            }
            out.push(record);
        }
        Ok(out)
    }
}

/// Records in primary-key order, decoded as they come: from
/// [`Collection::iter`] and [`Collection::range`]. Inside a transaction,
/// what it yields counts as read (a commit after a concurrent write there
/// is a conflict), as [`sealkv::TxnIter`] says.
pub struct Records<T, K> {
    collection: Collection<T, K>,
    iter: TxnIter,
}

impl<T, K> std::fmt::Debug for Records<T, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").finish_non_exhaustive()
    }
}

impl<T, K> Records<T, K>
where
    T: Serialize + DeserializeOwned + 'static,
    K: SortKey + 'static,
{
    fn decoded(&self, item: Option<<TxnIter as Iterator>::Item>) -> Option<Result<T, Error>> {
        Some(match item? {
            Err(e) => Err(e.into()),
            Ok((key, value)) => match key.split_first() {
                Some((&RECORD_TAG, pk)) => self.collection.decode(pk, &value, None),
                _ => Err(self.collection.corrupt("a record key is damaged")),
            },
        })
    }
}

impl<T, K> Iterator for Records<T, K>
where
    T: Serialize + DeserializeOwned + 'static,
    K: SortKey + 'static,
{
    type Item = Result<T, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.iter.next();
        self.decoded(item)
    }
}

impl<T, K> DoubleEndedIterator for Records<T, K>
where
    T: Serialize + DeserializeOwned + 'static,
    K: SortKey + 'static,
{
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.iter.next_back();
        self.decoded(item)
    }
}
