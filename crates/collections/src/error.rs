//! [`Error`]: what goes wrong with a collection.

/// Errors of collections. None carries a record's value, an index value or
/// key material: values may be secrets, so errors name the collection and
/// the index, never what was in them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database failed (I/O, corruption, a conflict that outlived its
    /// retries, a destroyed field key...).
    #[error(transparent)]
    Db(#[from] sealkv::Error),
    /// An insert found a record with the same primary key; nothing was
    /// written.
    #[error("collection {collection:?} already holds a record with this primary key")]
    DuplicateKey {
        /// The collection.
        collection: String,
    },
    /// A write would give a unique index a second record with the same
    /// value; nothing was written.
    #[error("unique index {index:?} of collection {collection:?} already holds this value")]
    UniqueViolation {
        /// The collection.
        collection: String,
        /// The index.
        index: String,
    },
    /// The schema names no index of that name.
    #[error("collection {collection:?} has no index {index:?}")]
    UnknownIndex {
        /// The collection.
        collection: String,
        /// The name asked for.
        index: String,
    },
    /// A lookup's value is not of the type the index was declared with
    /// (such as an `i32` for a `u32` index): the encodings differ, so it
    /// could only ever find nothing.
    #[error("index {index:?} of collection {collection:?} holds {declared} values, not {queried}")]
    IndexType {
        /// The collection.
        collection: String,
        /// The index.
        index: String,
        /// The encoding the index was declared with.
        declared: String,
        /// The encoding of the value looked up.
        queried: String,
    },
    /// A range over a blind index: it stores keyed tags of the values, which
    /// keep equality and lose order.
    #[error(
        "index {index:?} of collection {collection:?} is blind: it answers equality lookups only"
    )]
    BlindRange {
        /// The collection.
        collection: String,
        /// The index.
        index: String,
    },
    /// A lookup in a blind index of a collection whose records belong to
    /// tenants, without naming the tenant (each tenant's tags are under
    /// its own key).
    #[error("index {index:?} of collection {collection:?} is blind per tenant: name the tenant")]
    TenantRequired {
        /// The collection.
        collection: String,
        /// The index.
        index: String,
    },
    /// A lookup in a tenant whose type is not the schema's tenant type:
    /// the encodings differ, so it could only ever find nothing.
    #[error("collection {collection:?} has tenants of {declared} values, not {queried}")]
    TenantType {
        /// The collection.
        collection: String,
        /// The encoding the tenant was declared with.
        declared: String,
        /// The encoding of the tenant looked up.
        queried: String,
    },
    /// A lookup in a tenant of a collection whose records have no tenants.
    #[error("collection {collection:?} has no tenants")]
    NoTenants {
        /// The collection.
        collection: String,
    },
    /// The stored schema contradicts the declared one (an index changed
    /// from unique to not, from blind to plain, or its value type).
    #[error("index {index:?} of collection {collection:?}: {what}; drop it or give it a new name")]
    SchemaMismatch {
        /// The collection.
        collection: String,
        /// The index.
        index: String,
        /// What differs.
        what: String,
    },
    /// The declared schema gives the records tenants and the stored one
    /// does not, or the reverse, or the tenant's value type differs: the
    /// stored records are sealed and tagged under the keys the stored
    /// schema gives, which the declared one would not look for.
    #[error("collection {collection:?}: {what}; tenancy is fixed when a collection is created")]
    TenancyMismatch {
        /// The collection.
        collection: String,
        /// What differs.
        what: String,
    },
    /// Another handle opened the collection with another set of indexes
    /// since this one was opened: this handle would leave those indexes
    /// stale. Open the collection again.
    #[error("collection {collection:?} was opened with another schema since this handle was")]
    SchemaChanged {
        /// The collection.
        collection: String,
    },
    /// A record was written by a newer schema version than this one.
    #[error(
        "collection {collection:?}: a record has schema version {found}, this schema is version {supported}"
    )]
    NewerSchema {
        /// The collection.
        collection: String,
        /// The record's version.
        found: u32,
        /// The declared version.
        supported: u32,
    },
    /// A record of an older schema version with no upgrade declared for it.
    #[error("collection {collection:?}: no upgrade declared from schema version {version}")]
    NoUpgrade {
        /// The collection.
        collection: String,
        /// The record's version.
        version: u32,
    },
    /// A primary key, a plain (not blind) index or a tenant read a
    /// [`Sealed`](crate::Sealed) field: that would store the sealed value
    /// in clear in a key. Index it with a blind index instead.
    #[error(
        "{what} of collection {collection:?} reads a sealed field; only a blind index may index a sealed field"
    )]
    SealedFieldInKey {
        /// The collection.
        collection: String,
        /// The primary key, the tenant, or the index.
        what: String,
    },
    /// A [`Sealed`](crate::Sealed) value was serialized outside a
    /// collection (where it has no key to be sealed under), or a record
    /// with sealed fields was written where no field key is available (a
    /// database opened without a master key).
    #[error("a sealed field can only be stored through a collection of a database with a key")]
    SealedOutsideCollection,
    /// An update changed the record's primary key (delete it and insert
    /// the new one instead).
    #[error("an update of collection {collection:?} changed the record's primary key")]
    PrimaryKeyChanged {
        /// The collection.
        collection: String,
    },
    /// A collection name that is empty or too long.
    #[error("a collection name must be 1 to {max} bytes, not {len}")]
    InvalidName {
        /// Its length in bytes.
        len: usize,
        /// The longest name allowed.
        max: usize,
    },
    /// An index name that is empty or too long.
    #[error("collection {collection:?}: an index name must be 1 to {max} bytes, not {len}")]
    InvalidIndexName {
        /// The collection.
        collection: String,
        /// Its length in bytes.
        len: usize,
        /// The longest name allowed.
        max: usize,
    },
    /// Two indexes of one schema share a name.
    #[error("collection {collection:?} declares index {index:?} twice")]
    DuplicateIndex {
        /// The collection.
        collection: String,
        /// The name.
        index: String,
    },
    /// A record could not be encoded or decoded with its type (its serde
    /// implementation refused it, or the stored bytes do not match the
    /// type).
    #[error("collection {collection:?}: record {operation} failed: {reason}")]
    Codec {
        /// The collection.
        collection: String,
        /// "encode" or "decode".
        operation: &'static str,
        /// The codec's message (never the record's content).
        reason: String,
    },
    /// A stored field key id does not name the key it was recorded with in
    /// this database: the keyspace holding it (a collection's, or
    /// `sealkv.tenants`) was copied from another database, as a logical
    /// import copies it. Field keys stay in their database's key
    /// registry, so the copy can never open what they sealed, and using
    /// the id would share a key of this database. Migrate the records
    /// through the library instead (read them from the source, write
    /// them into this database).
    #[error(
        "{keyspace}: a stored field key belongs to another database (copied by an import?); migrate the records through the library"
    )]
    KeyMismatch {
        /// The keyspace holding the reference (a collection's, or
        /// `sealkv.tenants`).
        keyspace: String,
    },
    /// A stored record, index entry or schema of the collection is not in
    /// the format this version writes.
    #[error("collection {collection:?}: {what}")]
    Corruption {
        /// The collection.
        collection: String,
        /// What is wrong.
        what: String,
    },
}

impl Error {
    /// Whether this is the database's [`sealkv::Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Db(sealkv::Error::Conflict))
    }
}
