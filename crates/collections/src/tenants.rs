//! [`Tenants`]: the field key of each tenant, and erasure.
//!
//! A collection declared with [`Schema::tenant`](crate::Schema::tenant)
//! seals each record's [`Sealed`](crate::Sealed) fields, and tags its blind
//! index values, under the field key of the record's tenant. The key is a
//! random field key of the engine's key registry, created the first time a
//! record of the tenant is written and recorded in the keyspace
//! `sealkv.tenants`, shared by every collection of the database.
//!
//! Erasing a tenant marks it erased (its records are refused writes from
//! then on) and destroys its field key ([`sealkv::Db::destroy_field_key`]):
//! its sealed values read back erased, and its blind index entries can no
//! longer be matched to any value (nobody can compute a tag any more).
//! What stays: its records' fields that were not sealed, and the primary
//! keys and plain index values. Older backups, exports and copies of the
//! key registry still hold the key.

use sealkv::crypto::KeyId;
use sealkv::{Db, Keyspace, Transaction};

use crate::error::Error;
use crate::key::SortKey;
use crate::keyref::{Checked, Owner, StoredKey};
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
    /// one works. Returns whether the tenant had a key. A tenant whose
    /// stored key is not this database's (copied from another database)
    /// is [`Error::KeyMismatch`], and nothing is destroyed.
    ///
    /// It marks the tenant erased in `sealkv.tenants` first, in a
    /// transaction (a writer of the tenant that raced it conflicts, reruns
    /// and sees the mark), then destroys the key. If it fails in between,
    /// the tenant is refused writes already; call it again to destroy the
    /// key.
    pub fn erase(&self, tenant: &(impl SortKey + ?Sized)) -> Result<bool, Error> {
        let tenant = tenant.to_key_bytes();
        let checked = Checked::default();
        let marked = self.db.transaction(|tx| {
            let Some((stored, _)) = stored_key(tx.get_in(&self.ks, &tenant)?)? else {
                return Ok(None);
            };
            let id = checked.verify(&self.db, stored, Owner::Tenant(&tenant), TENANTS_KEYSPACE)?;
            tx.put_in(&self.ks, &tenant, stored.to_tenant_bytes(true))?;
            Ok::<_, Error>(Some(id))
        })?;
        let Some(id) = marked else {
            return Ok(false);
        };
        match self.db.destroy_field_key(id) {
            Ok(()) | Err(sealkv::Error::KeyDestroyed(_)) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// The field key of `tenant`, if it has one ([`Error::KeyMismatch`] if
    /// the stored one is not this database's).
    pub fn key_of(&self, tenant: &(impl SortKey + ?Sized)) -> Result<Option<KeyId>, Error> {
        let tenant = tenant.to_key_bytes();
        let Some((stored, _)) = stored_key(self.ks.get(&tenant)?)? else {
            return Ok(None);
        };
        Checked::default()
            .verify(&self.db, stored, Owner::Tenant(&tenant), TENANTS_KEYSPACE)
            .map(Some)
    }
}

/// A tenant's stored key and whether it is erased.
fn stored_key(value: Option<Vec<u8>>) -> Result<Option<(StoredKey, bool)>, Error> {
    let Some(v) = value else { return Ok(None) };
    StoredKey::from_tenant_bytes(&v)
        .map(Some)
        .ok_or_else(|| Error::Corruption {
            collection: TENANTS_KEYSPACE.into(),
            what: "a tenant's stored key is damaged or of an unknown format".into(),
        })
}

/// A tenant's field key as a transaction sees it, checked against this
/// database. With `create` (a write), a tenant without one gets a new key:
/// returned with its stored form, which the caller records with [`record`]
/// when it writes (a key created by a transaction that then fails is left
/// unused in the registry); and an erased tenant is
/// [`sealkv::Error::KeyDestroyed`], whether or not its records hold
/// anything sealed.
pub(crate) fn key_in(
    db: &Db,
    checked: &Checked,
    tx: &mut Transaction,
    ks: &Keyspace,
    tenant: &[u8],
    create: bool,
) -> Result<Option<(KeyId, Option<StoredKey>)>, Error> {
    if let Some((stored, erased)) = stored_key(tx.get_in(ks, tenant)?)? {
        let id = checked.verify(db, stored, Owner::Tenant(tenant), TENANTS_KEYSPACE)?;
        if erased && create {
            return Err(sealkv::Error::KeyDestroyed(id).into());
        }
        return Ok(Some((id, None)));
    }
    if !create {
        return Ok(None);
    }
    let id = db.create_field_key()?;
    let stored = StoredKey::new(db, id, Owner::Tenant(tenant))?;
    Ok(Some((id, Some(stored))))
}

/// A tenant's field key in the committed state, checked against this
/// database. A committed tenant's key never changes (a transaction gives a
/// tenant a key only where it sees none, and conflicts if another gave it
/// one meanwhile), so it is kept per handle once read.
pub(crate) fn committed_key(
    db: &Db,
    checked: &Checked,
    ks: &Keyspace,
    tenant: &[u8],
) -> Result<Option<KeyId>, Error> {
    let owner = Owner::Tenant(tenant);
    if let Some(id) = checked.committed(owner) {
        return Ok(Some(id));
    }
    match stored_key(ks.get(tenant)?)? {
        Some((stored, _)) => {
            let id = checked.verify(db, stored, owner, TENANTS_KEYSPACE)?;
            checked.note_committed(owner, id);
            Ok(Some(id))
        }
        None => Ok(None),
    }
}

/// Records a tenant's new key in the transaction.
pub(crate) fn record(
    tx: &mut Transaction,
    ks: &Keyspace,
    tenant: &[u8],
    stored: StoredKey,
) -> Result<(), Error> {
    tx.put_in(ks, tenant, stored.to_tenant_bytes(false))?;
    Ok(())
}
