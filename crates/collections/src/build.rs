//! Building a newly declared index over the records already stored, and
//! deleting the entries of a dropped one: in steps, each a transaction of
//! its own, while other writers go on.
//!
//! A build reads records in primary-key order, a step of [`STEP`] at a
//! time, and gives each record that lacks it its entry (and lists it in the
//! record). A writer that stores a record meanwhile writes the new entry
//! itself (its handle declares the index), and the step that reads that
//! record conflicts and reruns, so no record is missed or indexed twice.
//! Only when every record has its entry is the index marked built. A crash
//! in between leaves it unbuilt, and the next [`Collection::open`] that
//! declares it goes on (records that have their entry are skipped).

use std::ops::Bound;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::collection::{Collection, read_meta, write_meta};
use crate::error::Error;
use crate::key::{SortKey, prefix_successor};
use crate::layout::{self, Meta, RECORD_TAG};
use crate::record::{self, Head};
use crate::tenants;

/// Records (or index entries) handled per transaction.
pub(crate) const STEP: usize = 256;

impl<T, K> Collection<T, K>
where
    T: Serialize + DeserializeOwned + 'static,
    K: SortKey + 'static,
{
    /// Deletes the entries of every dropped index, then forgets it.
    pub(crate) fn finish_drops(&self, meta: &Meta) -> Result<(), Error> {
        let ks = &self.inner.ks;
        for &id in &meta.dropping {
            let prefix = layout::index_prefix(id);
            loop {
                let deleted = self.inner.db.transaction(|tx| {
                    let keys = tx
                        .prefix_in(ks, &prefix)?
                        .take(STEP)
                        .map(|item| item.map(|(k, _)| k))
                        .collect::<Result<Vec<_>, _>>()?;
                    for k in &keys {
                        tx.delete_in(ks, k)?;
                    }
                    Ok::<_, Error>(keys.len())
                })?;
                if deleted < STEP {
                    break;
                }
            }
            self.edit_meta(|m| m.dropping.retain(|d| *d != id))?;
        }
        Ok(())
    }

    /// Changes the stored schema without changing its generation.
    fn edit_meta(&self, mut edit: impl FnMut(&mut Meta)) -> Result<(), Error> {
        let ks = &self.inner.ks;
        let name = self.collection_name();
        self.inner.db.transaction(|tx| {
            let (mut meta, _) = read_meta(tx, ks, &name)?
                .ok_or_else(|| self.corrupt("the stored schema is missing"))?;
            edit(&mut meta);
            write_meta(tx, ks, &meta, None)
        })
    }

    /// Builds index `id` over the stored records; a unique index over
    /// records that share a value is dropped again and refused.
    pub(crate) fn build_index(&self, id: u32) -> Result<(), Error> {
        match self.fill_index(id) {
            Ok(()) => self.edit_meta(|m| {
                for index in m.indexes.iter_mut().filter(|i| i.id == id) {
                    index.built = true;
                }
            }),
            Err(e) => {
                self.abandon_index(id)?;
                Err(e)
            }
        }
    }

    fn fill_index(&self, id: u32) -> Result<(), Error> {
        let ks = &self.inner.ks;
        let Some(index) = self.inner.indexes.iter().find(|i| i.id == id) else {
            return Ok(());
        };
        let unique = index.decl.spec.unique;
        let upper = prefix_successor(&[RECORD_TAG]).map_or(Bound::Unbounded, Bound::Excluded);
        let mut after: Option<Vec<u8>> = None;
        loop {
            let lower = after
                .clone()
                .map_or(Bound::Included(vec![RECORD_TAG]), Bound::Excluded);
            let (last, more) = self.inner.db.transaction(|tx| {
                self.check_generation(tx)?;
                let items = tx
                    .range_in(ks, (lower.clone(), upper.clone()))?
                    .take(STEP)
                    .collect::<Result<Vec<_>, _>>()?;
                for (rkey, stored) in &items {
                    let pk = rkey.get(1..).unwrap_or_default();
                    let split =
                        record::split(stored).ok_or_else(|| self.corrupt("a record is damaged"))?;
                    if split.head.entries.iter().any(|(i, _)| *i == id) {
                        continue;
                    }
                    let record = self.decode(pk, stored, Some(tx))?;
                    let tenant = self.tenant_of(&record)?;
                    let key = match self.key_for(tx, tenant.as_deref(), true) {
                        // An erased tenant's record: its plain values are
                        // indexed still.
                        Err(Error::Db(sealkv::Error::KeyDestroyed(id))) => Some((id, None)),
                        other => other?,
                    };
                    if let (Some(t), Some((_, Some(stored))), Some(tks)) =
                        (&tenant, key, &self.inner.tenants)
                    {
                        tenants::record(tx, tks, t, stored)?;
                    }
                    let value = match self.index_value(index, &record, key.map(|(k, _)| k)) {
                        Ok(v) => v,
                        // An erased tenant's record: its value is gone, so
                        // nothing can be looked up by it.
                        Err(Error::Db(sealkv::Error::KeyDestroyed(_))) => continue,
                        Err(e) => return Err(e),
                    };
                    let entry = layout::entry_key(id, unique, &value, pk);
                    if unique && tx.get_in(ks, &entry)?.is_some_and(|other| other != pk) {
                        return Err(Error::UniqueViolation {
                            collection: self.collection_name(),
                            index: index.decl.name.clone(),
                        });
                    }
                    tx.put_in(ks, &entry, pk)?;
                    let mut head: Head = split.head.clone();
                    head.entries.push((id, value));
                    let rewritten =
                        record::join(&head, split.body).map_err(|e| self.codec("encode", &e))?;
                    tx.put_in(ks, rkey, rewritten)?;
                }
                Ok::<_, Error>((items.last().map(|(k, _)| k.clone()), items.len() == STEP))
            })?;
            if !more {
                return Ok(());
            }
            after = last;
        }
    }

    /// Takes index `id` out of the stored schema and deletes its entries.
    fn abandon_index(&self, id: u32) -> Result<(), Error> {
        let ks = &self.inner.ks;
        let name = self.collection_name();
        let meta = self.inner.db.transaction(|tx| {
            let (mut meta, generation) = read_meta(tx, ks, &name)?
                .ok_or_else(|| self.corrupt("the stored schema is missing"))?;
            meta.indexes.retain(|i| i.id != id);
            meta.dropping.push(id);
            write_meta(tx, ks, &meta, Some(generation + 1))?;
            Ok::<_, Error>(meta)
        })?;
        self.finish_drops(&meta)
    }
}
