//! [`Schema`]: what a collection stores and how it is indexed, declared
//! once in code.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::key::{SortKey, kind_of};

/// The longest collection name, in bytes (the keyspace holding it adds a
/// short prefix to it).
pub const MAX_COLLECTION_NAME_LEN: usize = 200;

/// The longest index name, in bytes (every index's name is stored in the
/// collection's schema, which is one value).
pub const MAX_INDEX_NAME_LEN: usize = 200;

/// How an index is kept: unique or not, plain or blind.
///
/// ```
/// use sealkv_collections::Index;
/// let email = Index::unique().blind(); // one record per value; keyed tags on disk
/// let city = Index::plain();           // many records per value; ranges work
/// # let _ = (email, city);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub(crate) unique: bool,
    pub(crate) blind: bool,
}

impl Index {
    /// A non-unique index storing the values as they are (ordered: lookups
    /// and ranges).
    pub fn plain() -> Self {
        Index {
            unique: false,
            blind: false,
        }
    }

    /// A unique index: two records with the same value are refused with
    /// [`Error::UniqueViolation`](crate::Error::UniqueViolation).
    pub fn unique() -> Self {
        Index {
            unique: true,
            blind: false,
        }
    }

    /// Makes the index blind: it stores a keyed tag of each value
    /// (HMAC-SHA256 under an index key of its own, truncated to
    /// [`BLIND_TAG_LEN`](crate::BLIND_TAG_LEN) bytes) instead of the value,
    /// so it answers equality lookups while neither the value nor a
    /// deterministic ciphertext of it is on disk. What it leaks: which
    /// records share a value, and how many do. The index to use over a
    /// [`Sealed`](crate::Sealed) field.
    pub fn blind(mut self) -> Self {
        self.blind = true;
        self
    }
}

/// Extracts a key's encoding from a record.
pub(crate) type Extract<T> = Arc<dyn Fn(&T, &mut Vec<u8>) + Send + Sync>;
/// Decodes a record of an older schema version (already unsealed scope).
pub(crate) type Upgrade<T> = Arc<dyn Fn(&[u8]) -> Result<T, postcard::Error> + Send + Sync>;

/// One declared index.
pub(crate) struct IndexDecl<T> {
    pub(crate) name: String,
    pub(crate) spec: Index,
    pub(crate) kind: String,
    pub(crate) extract: Extract<T>,
}

/// A collection's declaration: its name, its record type `T`, its primary
/// key of type `K`, its indexes, the tenant each record belongs to (if
/// any) and its schema version.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// use sealkv_collections::{Index, Schema, Sealed};
///
/// #[derive(Serialize, Deserialize)]
/// struct User { id: u64, tenant: String, email: Sealed<String>, city: String }
///
/// let schema = Schema::new("users", |u: &User| u.id)
///     .tenant(|u| u.tenant.clone())
///     .index("email", Index::unique().blind(), |u| {
///         u.email.value().map(|e| e.to_lowercase()) // normalized before it is tagged
///     })
///     .index("city", Index::plain(), |u| u.city.clone());
/// # let _ = schema;
/// ```
pub struct Schema<T, K> {
    pub(crate) name: String,
    pub(crate) version: u32,
    pub(crate) primary: Arc<dyn Fn(&T) -> K + Send + Sync>,
    pub(crate) indexes: Vec<IndexDecl<T>>,
    pub(crate) tenant: Option<Extract<T>>,
    /// The encoding of the tenant's values ([`SortKey::describe`]).
    pub(crate) tenant_kind: Option<String>,
    pub(crate) upgrades: BTreeMap<u32, Upgrade<T>>,
}

impl<T, K> std::fmt::Debug for Schema<T, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("name", &self.name)
            .field("version", &self.version)
            .field(
                "indexes",
                &self.indexes.iter().map(|i| &i.name).collect::<Vec<_>>(),
            )
            .field("tenant", &self.tenant.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: 'static, K: SortKey + 'static> Schema<T, K> {
    /// A collection named `name` (1 to [`MAX_COLLECTION_NAME_LEN`] bytes,
    /// checked when it is opened) whose records are identified by
    /// `primary_key`, at schema version 1.
    pub fn new(
        name: impl Into<String>,
        primary_key: impl Fn(&T) -> K + Send + Sync + 'static,
    ) -> Self {
        Schema {
            name: name.into(),
            version: 1,
            primary: Arc::new(primary_key),
            indexes: Vec::new(),
            tenant: None,
            tenant_kind: None,
            upgrades: BTreeMap::new(),
        }
    }

    /// Declares an index named `name` (1 to [`MAX_INDEX_NAME_LEN`] bytes,
    /// checked when the collection is opened) over the value `key` gives for each
    /// record. The value is whatever `key` computes: a field, a normalized
    /// field (lower-cased, trimmed), several fields as a tuple. An
    /// `Option` value of `None` is indexed like any other value, so a
    /// unique index holds at most one record without one.
    ///
    /// Only a blind index may read a [`Sealed`](crate::Sealed) field: a
    /// plain index that does is refused when a record is written.
    pub fn index<V: SortKey + 'static>(
        mut self,
        name: impl Into<String>,
        spec: Index,
        key: impl Fn(&T) -> V + Send + Sync + 'static,
    ) -> Self {
        self.indexes.push(IndexDecl {
            name: name.into(),
            spec,
            kind: kind_of::<V>(),
            extract: Arc::new(move |t, out| key(t).encode_key(out)),
        });
        self
    }

    /// Declares that each record belongs to the tenant `tenant` gives: its
    /// sealed fields are sealed, and its blind index values tagged, under
    /// that tenant's own field key, which
    /// [`Tenants::erase`](crate::Tenants::erase) destroys (an erasure
    /// request). Tenants are shared by every collection of the database.
    ///
    /// Whether a collection has tenants, and their value type, is stored
    /// with it: opening it later with another answer is
    /// [`Error::TenancyMismatch`](crate::Error::TenancyMismatch), since its
    /// records are sealed under the keys the stored answer gives.
    pub fn tenant<V: SortKey + 'static>(
        mut self,
        tenant: impl Fn(&T) -> V + Send + Sync + 'static,
    ) -> Self {
        self.tenant = Some(Arc::new(move |t, out| tenant(t).encode_key(out)));
        self.tenant_kind = Some(kind_of::<V>());
        self
    }

    /// Sets the schema version written with each record (1 by default).
    /// Raise it when `T`'s serialized form changes, and declare an
    /// [`upgrade`](Self::upgrade) from each older version still stored.
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Reads records of schema version `from` as `Old` and turns them into
    /// `T` with `upgrade`. A record is rewritten in the current version
    /// the next time it is written.
    pub fn upgrade<Old: DeserializeOwned + 'static>(
        mut self,
        from: u32,
        upgrade: impl Fn(Old) -> T + Send + Sync + 'static,
    ) -> Self {
        self.upgrades.insert(
            from,
            Arc::new(move |bytes| postcard::from_bytes::<Old>(bytes).map(&upgrade)),
        );
        self
    }
}
