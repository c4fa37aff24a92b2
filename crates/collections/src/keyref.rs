//! [`StoredKey`]: a field key id as a collection stores it, bound to the
//! database and to the key itself by a key check.
//!
//! Every database's key registry numbers its keys from the start, and a
//! logical export copies a collection's keyspace and `sealkv.tenants` as
//! they are, without the field keys (they stay in the source's registry).
//! A bare id copied that way would name whatever key the copy gives that
//! number: two tenants would share a key, and erasing one would destroy
//! the other's. So a stored id travels with its check:
//!
//! ```text
//! check key = HKDF-SHA256(ikm = field key, salt = database id,
//!                         info = "sealkv/v1/field/blind-index"
//!                                || u32 BE len || "sealkv-collections/v2/key-check")
//! check     = first 16 bytes of HMAC-SHA256(check key, u32 BE len || owner kind || owner)
//! ```
//!
//! (the engine's blind-index derivation with a scope of its own), where
//! the owner is the collection's name or the tenant's encoding. A check
//! that does not match (or an id this database never gave) is
//! [`Error::KeyMismatch`]. A destroyed key cannot be checked any more;
//! nothing can be sealed or opened under it either, so its id is taken as
//! it is.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use sealkv::Db;
use sealkv::crypto::KeyId;
use sealkv::crypto::registry::RegistryError;

use crate::error::Error;

/// The length of a stored key check, in bytes.
pub(crate) const CHECK_LEN: usize = 16;

/// The scope of the key check's derivation.
const CHECK_SCOPE: &[u8] = b"sealkv-collections/v2/key-check";

/// The format byte of a tenant's stored key: live.
const TENANT_LIVE: u8 = 2;
/// The format byte of a tenant's stored key: erased (the key destroyed, or
/// about to be).
const TENANT_ERASED: u8 = 3;

/// What a stored key belongs to.
#[derive(Clone, Copy)]
pub(crate) enum Owner<'a> {
    /// The collection of this name (its own field key).
    Collection(&'a str),
    /// The tenant of this encoding.
    Tenant(&'a [u8]),
}

impl Owner<'_> {
    fn message(&self) -> Vec<u8> {
        let (kind, bytes): (&[u8], &[u8]) = match self {
            Owner::Collection(name) => (b"collection", name.as_bytes()),
            Owner::Tenant(t) => (b"tenant", t),
        };
        let mut m = Vec::with_capacity(4 + kind.len() + bytes.len());
        m.extend_from_slice(&(kind.len() as u32).to_be_bytes());
        m.extend_from_slice(kind);
        m.extend_from_slice(bytes);
        m
    }
}

/// A field key id with its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct StoredKey {
    pub(crate) id: u32,
    pub(crate) check: [u8; CHECK_LEN],
}

impl StoredKey {
    /// The stored form of `id`, a key of `db`, owned by `owner`.
    pub(crate) fn new(db: &Db, id: KeyId, owner: Owner<'_>) -> Result<StoredKey, Error> {
        Ok(StoredKey {
            id: id.0,
            check: check(db, id, owner)?,
        })
    }

    /// A tenant's stored key: format byte (live or erased), id (u32 BE),
    /// check.
    pub(crate) fn to_tenant_bytes(self, erased: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 4 + CHECK_LEN);
        out.push(if erased { TENANT_ERASED } else { TENANT_LIVE });
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.check);
        out
    }

    /// Reads a tenant's stored key and whether the tenant is erased;
    /// `None` if it is not one.
    pub(crate) fn from_tenant_bytes(bytes: &[u8]) -> Option<(StoredKey, bool)> {
        let (&format, rest) = bytes.split_first()?;
        let erased = match format {
            TENANT_LIVE => false,
            TENANT_ERASED => true,
            _ => return None,
        };
        if rest.len() != 4 + CHECK_LEN {
            return None;
        }
        let (id, check) = rest.split_at(4);
        let key = StoredKey {
            id: u32::from_be_bytes(id.try_into().ok()?),
            check: check.try_into().ok()?,
        };
        Some((key, erased))
    }
}

fn check(db: &Db, id: KeyId, owner: Owner<'_>) -> Result<[u8; CHECK_LEN], sealkv::Error> {
    let tag = db
        .blind_index_key(id, &[CHECK_SCOPE])?
        .tag(&owner.message());
    let mut out = [0; CHECK_LEN];
    out.copy_from_slice(&tag[..CHECK_LEN]);
    Ok(out)
}

/// Stored keys already checked, so that reads and writes of a tenant pay
/// for the check once per handle. Keyed by owner: a check is valid only
/// for the owner it was computed for.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    seen: Mutex<HashMap<Vec<u8>, StoredKey>>,
    /// Keys read from the committed state, by owner: a committed tenant's
    /// key never changes (a transaction gives a tenant a key only where it
    /// sees none), so these hold for every later transaction too. Keys seen
    /// only inside a transaction are not kept here: it may not commit.
    committed: Mutex<HashMap<Vec<u8>, KeyId>>,
}

impl Checked {
    /// The key `stored` names, once its check matches in `db` for `owner`;
    /// `keyspace` names where it is stored, for the error.
    pub(crate) fn verify(
        &self,
        db: &Db,
        stored: StoredKey,
        owner: Owner<'_>,
        keyspace: &str,
    ) -> Result<KeyId, Error> {
        let id = KeyId(stored.id);
        let message = owner.message();
        if self.lock().get(&message) == Some(&stored) {
            return Ok(id);
        }
        let mismatch = || Error::KeyMismatch {
            keyspace: keyspace.to_owned(),
        };
        match check(db, id, owner) {
            Ok(expected) if constant_time_eq(&expected, &stored.check) => {
                self.lock().insert(message, stored);
                Ok(id)
            }
            Ok(_)
            | Err(
                sealkv::Error::UnknownKey(_)
                | sealkv::Error::Registry(RegistryError::WrongPurpose { .. }),
            ) => Err(mismatch()),
            // Not checkable any more, and nothing can be done with it.
            Err(sealkv::Error::KeyDestroyed(_)) => Ok(id),
            Err(e) => Err(e.into()),
        }
    }

    /// The committed key of `owner`, if one was recorded.
    pub(crate) fn committed(&self, owner: Owner<'_>) -> Option<KeyId> {
        lock(&self.committed).get(&owner.message()).copied()
    }

    /// Records `owner`'s key, read (and checked) from the committed state.
    pub(crate) fn note_committed(&self, owner: Owner<'_>, id: KeyId) {
        lock(&self.committed).insert(owner.message(), id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, StoredKey>> {
        lock(&self.seen)
    }
}

fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    // The maps hold only checked facts: one a panicking thread left is
    // still right.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_key_reads_back_and_refuses_other_formats() {
        let k = StoredKey {
            id: 7,
            check: [3; CHECK_LEN],
        };
        let bytes = k.to_tenant_bytes(false);
        assert_eq!(StoredKey::from_tenant_bytes(&bytes), Some((k, false)));
        let erased = k.to_tenant_bytes(true);
        assert_eq!(StoredKey::from_tenant_bytes(&erased), Some((k, true)));
        assert_eq!(StoredKey::from_tenant_bytes(&7u32.to_be_bytes()), None);
        assert_eq!(
            StoredKey::from_tenant_bytes(&bytes[..bytes.len() - 1]),
            None
        );
        let mut other = bytes.clone();
        other[0] = 4;
        assert_eq!(StoredKey::from_tenant_bytes(&other), None);
    }
}
