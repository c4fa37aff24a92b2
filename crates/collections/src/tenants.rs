//! [`Tenants`]: the field key of each tenant, and erasure.
//!
//! A collection declared with [`Schema::tenant`](crate::Schema::tenant)
//! seals each record's [`Sealed`](crate::Sealed) fields, and tags its blind
//! index values, under the field key of the record's tenant. The key is a
//! random field key of the engine's key registry, created the first time a
//! record of the tenant is written and recorded in the keyspace
//! `sealkv.tenants`, shared by every collection of the database.
//!
//! Erasing a tenant destroys its field key ([`sealkv::Db::destroy_field_key`]):
//! its sealed values read back erased, and its blind index entries can no
//! longer be matched to any value (nobody can compute a tag any more).
//! What stays: its records' fields that were not sealed, and the primary
//! keys and plain index values. Older backups, exports and copies of the
//! key registry still hold the key.

use sealkv::crypto::KeyId;
use sealkv::{Db, Keyspace, Transaction};

use crate::error::Error;
use crate::key::SortKey;
use crate::layout::TENANTS_KEYSPACE;

/// The tenants of a database: see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Tenants {
    db: Db,
    ks: Keyspace,
}

impl Tenants {
    /// The tenants of `db`.
    pub fn open(db: &Db) -> Result<Tenants, Error> {
        Ok(Tenants {
            db: db.clone(),
            ks: db.keyspace(TENANTS_KEYSPACE)?,
        })
    }

    /// Destroys the field key of `tenant` (of the type the schemas'
    /// [`tenant`](crate::Schema::tenant) functions return), durably: its
    /// sealed fields read back erased from now on, in every collection, and
    /// its blind index entries become unlinkable. Writing a record of an
    /// erased tenant fails with [`sealkv::Error::KeyDestroyed`]; deleting
    /// one works. Returns whether the tenant had a key.
    pub fn erase(&self, tenant: &(impl SortKey + ?Sized)) -> Result<bool, Error> {
        let Some(id) = stored_key(self.ks.get(tenant.to_key_bytes())?)? else {
            return Ok(false);
        };
        match self.db.destroy_field_key(id) {
            Ok(()) | Err(sealkv::Error::KeyDestroyed(_)) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// The field key of `tenant`, if it has one.
    pub fn key_of(&self, tenant: &(impl SortKey + ?Sized)) -> Result<Option<KeyId>, Error> {
        stored_key(self.ks.get(tenant.to_key_bytes())?)
    }
}

fn stored_key(value: Option<Vec<u8>>) -> Result<Option<KeyId>, Error> {
    let Some(v) = value else { return Ok(None) };
    let bytes: [u8; 4] = v.as_slice().try_into().map_err(|_| Error::Corruption {
        collection: TENANTS_KEYSPACE.into(),
        what: "a tenant's key id is not 4 bytes".into(),
    })?;
    Ok(Some(KeyId(u32::from_be_bytes(bytes))))
}

/// A tenant's field key as a transaction sees it. With `create`, a tenant
/// without one gets a new key: returned as `(id, true)`, and the caller
/// records it with [`record`] when it writes (a key created by a
/// transaction that then fails is left unused in the registry).
pub(crate) fn key_in(
    db: &Db,
    tx: &mut Transaction,
    ks: &Keyspace,
    tenant: &[u8],
    create: bool,
) -> Result<Option<(KeyId, bool)>, Error> {
    if let Some(id) = stored_key(tx.get_in(ks, tenant)?)? {
        return Ok(Some((id, false)));
    }
    if !create {
        return Ok(None);
    }
    Ok(Some((db.create_field_key()?, true)))
}

/// Records a tenant's new key in the transaction.
pub(crate) fn record(
    tx: &mut Transaction,
    ks: &Keyspace,
    tenant: &[u8],
    id: KeyId,
) -> Result<(), Error> {
    tx.put_in(ks, tenant, id.0.to_be_bytes())?;
    Ok(())
}
