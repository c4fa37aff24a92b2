//! Where a collection keeps what, inside its keyspace, and the stored
//! schema.
//!
//! Each collection has a keyspace of its own, named
//! `sealkv.collection.<name>` (keyspace names are sealed on disk like any
//! data). Inside it, the first byte of every key says what it is:
//!
//! | key | value |
//! |---|---|
//! | `00 00` | the stored schema ([`Meta`], postcard) |
//! | `00 01` | the schema generation (u64 BE), bumped when the set of indexes changes |
//! | `01` pk | a record (see [`crate::record`]) |
//! | `02` id value | a unique index entry: the primary key |
//! | `02` id value pk | a non-unique index entry: the primary key |
//!
//! `pk` and `value` are [`SortKey`](crate::SortKey) encodings (a blind
//! index's value is its tag), `id` the index's number (u32 BE, never
//! reused). Both encodings are prefix-free, so the entries of one value
//! are one prefix and a range of values is a range of keys.
//!
//! Tenants' field keys live in the keyspace `sealkv.tenants`: the tenant's
//! encoding → its stored key (format byte 2 live or 3 erased, field key
//! id u32 BE, key check: see [`crate::keyref`]).

use serde::{Deserialize, Serialize};

use crate::keyref::StoredKey;

/// The keyspace name prefix of collections.
pub(crate) const KEYSPACE_PREFIX: &str = "sealkv.collection.";
/// The keyspace of tenants' field keys.
pub(crate) const TENANTS_KEYSPACE: &str = "sealkv.tenants";

pub(crate) const META_KEY: &[u8] = &[0x00, 0x00];
pub(crate) const GENERATION_KEY: &[u8] = &[0x00, 0x01];
pub(crate) const RECORD_TAG: u8 = 0x01;
pub(crate) const INDEX_TAG: u8 = 0x02;

/// The stored schema's format version.
pub(crate) const META_FORMAT: u32 = 4;

/// The key of the record with primary key encoding `pk`.
pub(crate) fn record_key(pk: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + pk.len());
    k.push(RECORD_TAG);
    k.extend_from_slice(pk);
    k
}

/// The prefix of index `id`'s entries.
pub(crate) fn index_prefix(id: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(5);
    k.push(INDEX_TAG);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The key of an index entry: `02 id value`, then `pk` unless unique.
pub(crate) fn entry_key(id: u32, unique: bool, value: &[u8], pk: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + value.len() + pk.len());
    k.push(INDEX_TAG);
    k.extend_from_slice(&id.to_be_bytes());
    k.extend_from_slice(value);
    if !unique {
        k.extend_from_slice(pk);
    }
    k
}

/// The stored schema of a collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub(crate) format: u32,
    /// The collection's own field key (for records without a tenant), if
    /// the database has a key, with its check.
    pub(crate) field_key: Option<StoredKey>,
    /// The encoding of the tenant's values if records belong to tenants
    /// ([`SortKey::describe`](crate::SortKey::describe)), fixed when the
    /// collection is created.
    pub(crate) tenant: Option<String>,
    /// The next index id to give.
    pub(crate) next_index: u32,
    pub(crate) indexes: Vec<IndexMeta>,
    /// Ids of dropped indexes whose entries are still being deleted.
    pub(crate) dropping: Vec<u32>,
}

/// One stored index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IndexMeta {
    pub(crate) name: String,
    pub(crate) id: u32,
    pub(crate) unique: bool,
    pub(crate) blind: bool,
    /// A blind index's tags: the derivation's version
    /// ([`BLIND_TAG_VERSION`](crate::collection::BLIND_TAG_VERSION)) and
    /// their length in bytes; `(0, 0)` for a plain index.
    pub(crate) tags: (u32, u32),
    /// The encoding of its values ([`SortKey::describe`](crate::SortKey::describe)).
    pub(crate) kind: String,
    /// Every record has its entry (the build has finished).
    pub(crate) built: bool,
}
