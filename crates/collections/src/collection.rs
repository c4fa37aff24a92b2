//! [`Collection`]: a typed, indexed set of records in a keyspace of its
//! own; opening one (with its indexes' reconciliation and build).

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use sealkv::crypto::KeyId;
use sealkv::crypto::blind::BlindIndexKey;
use sealkv::{Db, Keyspace, Transaction};

use crate::error::Error;
use crate::key::SortKey;
use crate::keyref::{Checked, Owner, StoredKey};
use crate::layout::{self, IndexMeta, Meta};
use crate::record::{self, Head};
use crate::schema::{IndexDecl, MAX_COLLECTION_NAME_LEN, MAX_INDEX_NAME_LEN, Schema};
use crate::sealed;
use crate::tenants;

/// The length of a stored blind-index tag, in bytes: the first 16 bytes of
/// the HMAC-SHA256 (128 bits: two different values share a tag with
/// probability 2^-128, and a lookup re-checks each record it finds).
pub const BLIND_TAG_LEN: usize = 16;

/// The version of the blind-tag derivation (its scope), stored with each
/// blind index: tags of another version are never compared with these.
pub(crate) const BLIND_TAG_VERSION: u32 = 2;

/// What a declared index's stored tags are: version and length, or
/// `(0, 0)` for a plain index.
fn tags_of(blind: bool) -> (u32, u32) {
    if blind {
        (BLIND_TAG_VERSION, BLIND_TAG_LEN as u32)
    } else {
        (0, 0)
    }
}

/// The key a record's sealed fields must name.
#[derive(Clone, Copy)]
enum Expected {
    /// As the record's transaction sees it (`None`: it has none).
    Exact(Option<KeyId>),
    /// As last committed (`None`: none committed yet).
    Committed(Option<KeyId>),
}

/// Where an operation runs: in a caller's transaction, or in one of its
/// own (retried on conflict).
pub(crate) enum At<'a> {
    /// A caller's transaction; `generation_checked`: an earlier operation
    /// of the same handle has read the schema generation in it already.
    Tx {
        tx: &'a mut Transaction,
        generation_checked: &'a mut bool,
    },
    Own(&'a Db),
}

/// A declared index with its stored id.
pub(crate) struct Active<T> {
    pub(crate) decl: IndexDecl<T>,
    pub(crate) id: u32,
}

pub(crate) struct Inner<T, K> {
    pub(crate) db: Db,
    pub(crate) ks: Keyspace,
    pub(crate) tenants: Option<Keyspace>,
    pub(crate) schema: Schema<T, K>,
    pub(crate) generation: u64,
    pub(crate) field_key: Option<KeyId>,
    pub(crate) indexes: Vec<Active<T>>,
    /// Tenants' stored keys checked by this handle.
    pub(crate) checked: Checked,
}

/// A typed collection of records `T` with primary keys `K`: see the
/// [crate docs](crate). Cheap to clone; open one with
/// [`Collection::open`].
pub struct Collection<T, K> {
    pub(crate) inner: Arc<Inner<T, K>>,
}

impl<T, K> Clone for Collection<T, K> {
    fn clone(&self) -> Self {
        Collection {
            inner: self.inner.clone(),
        }
    }
}

impl<T, K> std::fmt::Debug for Collection<T, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("name", &self.inner.schema.name)
            .finish_non_exhaustive()
    }
}

/// What encoding a record gave: everything its write needs.
pub(crate) struct Encoded {
    pub(crate) pk: Vec<u8>,
    pub(crate) value: Vec<u8>,
    pub(crate) entries: Vec<(u32, Vec<u8>)>,
    /// A tenant key created for this write, to record with it.
    pub(crate) new_tenant: Option<(Vec<u8>, StoredKey)>,
}

impl<T, K> Collection<T, K>
where
    T: Serialize + DeserializeOwned + 'static,
    K: SortKey + 'static,
{
    /// Opens (or creates) the collection `schema` declares in `db`.
    ///
    /// The stored schema is reconciled with the declared one: a newly
    /// declared index is built over the records already stored (in steps
    /// of a few hundred records, each a transaction of its own, while other
    /// writers go on: a crash in between resumes the build at the next
    /// open); an index no longer declared is dropped (its entries deleted).
    /// An index declared again with another kind or value type is refused
    /// ([`Error::SchemaMismatch`]), as is a unique index over records that
    /// already share a value ([`Error::UniqueViolation`]; nothing of the
    /// index stays). Handles opened earlier with another set of indexes
    /// answer [`Error::SchemaChanged`] from then on.
    pub fn open(db: &Db, schema: Schema<T, K>) -> Result<Self, Error> {
        check_schema(&schema)?;
        let ks = db.keyspace(&format!("{}{}", layout::KEYSPACE_PREFIX, schema.name))?;
        let tenants = match schema.tenant {
            Some(_) => Some(db.keyspace(layout::TENANTS_KEYSPACE)?),
            None => None,
        };
        let needs_key = schema.tenant.is_some() || schema.indexes.iter().any(|i| i.spec.blind);
        let created_key = if ks.get(layout::META_KEY)?.is_none() {
            match db.create_field_key() {
                Ok(id) => Some(StoredKey::new(db, id, Owner::Collection(&schema.name))?),
                Err(sealkv::Error::MissingKey) if !needs_key => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        let (meta, generation) = db.transaction(|tx| reconcile(tx, &ks, &schema, created_key))?;
        if needs_key && meta.field_key.is_none() {
            return Err(sealkv::Error::MissingKey.into());
        }
        let checked = Checked::default();
        let field_key = match meta.field_key {
            Some(stored) => {
                Some(checked.verify(db, stored, Owner::Collection(&schema.name), ks.name())?)
            }
            None => None,
        };
        let indexes = schema
            .indexes
            .iter()
            .map(|decl| Active {
                id: meta
                    .indexes
                    .iter()
                    .find(|m| m.name == decl.name)
                    .map_or(u32::MAX, |m| m.id),
                decl: IndexDecl {
                    name: decl.name.clone(),
                    spec: decl.spec,
                    kind: decl.kind.clone(),
                    extract: decl.extract.clone(),
                },
            })
            .collect();
        let collection = Collection {
            inner: Arc::new(Inner {
                db: db.clone(),
                ks,
                tenants,
                field_key,
                checked,
                generation,
                indexes,
                schema,
            }),
        };
        collection.finish_drops(&meta)?;
        for index in meta.indexes.iter().filter(|m| !m.built) {
            collection.build_index(index.id)?;
        }
        Ok(collection)
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.inner.schema.name
    }

    /// The database it lives in.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn collection_name(&self) -> String {
        self.inner.schema.name.clone()
    }

    /// Runs `f` where `at` says, once the transaction has checked that no
    /// other handle replaced the schema. A transaction checks once: the
    /// generation it read is part of what it read, so a replacement
    /// committed meanwhile makes it conflict (and run again, checking
    /// again), and nothing inside it changes the generation (only
    /// [`Collection::open`] does, in a transaction of its own).
    pub(crate) fn run<R>(
        &self,
        at: At<'_>,
        mut f: impl FnMut(&mut Transaction) -> Result<R, Error>,
    ) -> Result<R, Error> {
        match at {
            At::Tx {
                tx,
                generation_checked,
            } => {
                if !*generation_checked {
                    self.check_generation(tx)?;
                    *generation_checked = true;
                }
                f(tx)
            }
            At::Own(db) => db.transaction(|tx| {
                self.check_generation(tx)?;
                f(tx)
            }),
        }
    }

    /// Refuses to work on a schema another handle replaced.
    pub(crate) fn check_generation(&self, tx: &mut Transaction) -> Result<(), Error> {
        let stored = tx.get_in(&self.inner.ks, layout::GENERATION_KEY)?;
        if stored.as_deref() != Some(&self.inner.generation.to_be_bytes()[..]) {
            return Err(Error::SchemaChanged {
                collection: self.collection_name(),
            });
        }
        Ok(())
    }

    /// Runs a key extractor, refusing one that reads a sealed field;
    /// `what` names the key in the error (made only then).
    fn plain_key(
        &self,
        what: impl FnOnce() -> String,
        f: impl FnOnce(&mut Vec<u8>),
    ) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        let ((), read_sealed) = sealed::reads_sealed(|| f(&mut out));
        if read_sealed {
            return Err(Error::SealedFieldInKey {
                collection: self.collection_name(),
                what: what(),
            });
        }
        Ok(out)
    }

    /// The encoding of `record`'s primary key.
    pub(crate) fn primary_key_of(&self, record: &T) -> Result<Vec<u8>, Error> {
        let primary = &self.inner.schema.primary;
        self.plain_key(
            || "the primary key".into(),
            |out| primary(record).encode_key(out),
        )
    }

    /// The encoding of `record`'s tenant, if the collection has tenants.
    pub(crate) fn tenant_of(&self, record: &T) -> Result<Option<Vec<u8>>, Error> {
        match &self.inner.schema.tenant {
            None => Ok(None),
            Some(f) => self
                .plain_key(|| "the tenant".into(), |out| f(record, out))
                .map(Some),
        }
    }

    /// What a record's sealed fields are bound to: its collection and
    /// primary key.
    pub(crate) fn write_binding(&self, pk: &[u8], b: &mut Vec<u8>) {
        let name = self.inner.schema.name.as_bytes();
        b.extend_from_slice(b"sealkv/collections/v1/record");
        b.extend_from_slice(&(name.len() as u32).to_be_bytes());
        b.extend_from_slice(name);
        b.extend_from_slice(pk);
    }

    /// The field key of a record (its tenant's, or the collection's).
    /// `create`: a tenant without a key gets one.
    pub(crate) fn key_for(
        &self,
        tx: &mut Transaction,
        tenant: Option<&[u8]>,
        create: bool,
    ) -> Result<Option<(KeyId, Option<StoredKey>)>, Error> {
        match (tenant, &self.inner.tenants) {
            (Some(t), Some(ks)) => {
                tenants::key_in(&self.inner.db, &self.inner.checked, tx, ks, t, create)
            }
            _ => Ok(self.inner.field_key.map(|k| (k, None))),
        }
    }

    /// The blind-index key of `index` under field key `key`. The scope
    /// names the index by its id, never reused: an index dropped and
    /// declared again under the same name gets tags unrelated to the old
    /// one's (in older backups, say).
    pub(crate) fn blind_key(&self, key: KeyId, index: &Active<T>) -> Result<BlindIndexKey, Error> {
        let id = index.id.to_be_bytes();
        let scope: [&[u8]; 3] = [
            b"sealkv-collections/v2/blind",
            self.inner.schema.name.as_bytes(),
            &id,
        ];
        Ok(self.inner.db.blind_index_key(key, &scope)?)
    }

    /// The stored value of `index` for `record`: its encoding, or for a
    /// blind index its tag under `key`.
    pub(crate) fn index_value(
        &self,
        index: &Active<T>,
        record: &T,
        key: Option<KeyId>,
    ) -> Result<Vec<u8>, Error> {
        let extract = &index.decl.extract;
        if !index.decl.spec.blind {
            let what = || format!("plain index {:?}", index.decl.name);
            return self.plain_key(what, |out| extract(record, out));
        }
        let mut value = Vec::new();
        extract(record, &mut value);
        let key = key.ok_or(Error::SealedOutsideCollection)?;
        self.tag(key, index, &value)
    }

    /// The stored tag of an encoded value in a blind index.
    pub(crate) fn tag(
        &self,
        key: KeyId,
        index: &Active<T>,
        value: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let tag = self.blind_key(key, index)?.tag(value);
        Ok(tag[..BLIND_TAG_LEN].to_vec())
    }

    /// Encodes `record` for writing: primary key, stored value (sealed
    /// fields sealed), index entries.
    pub(crate) fn encode(&self, tx: &mut Transaction, record: &T) -> Result<Encoded, Error> {
        let pk = self.primary_key_of(record)?;
        let tenant = self.tenant_of(record)?;
        let key = self.key_for(tx, tenant.as_deref(), true)?;
        let new_tenant = match (&tenant, key) {
            (Some(t), Some((_, Some(stored)))) => Some((t.clone(), stored)),
            _ => None,
        };
        let key = key.map(|(id, _)| id);
        let mut entries = Vec::with_capacity(self.inner.indexes.len());
        for index in &self.inner.indexes {
            entries.push((index.id, self.index_value(index, record, key)?));
        }
        let head = Head {
            version: self.inner.schema.version,
            entries,
        };
        let start = record::start(&head).map_err(|e| self.codec("encode", &e))?;
        let (value, outcome) = sealed::within(
            &self.inner.db,
            key,
            |b| self.write_binding(&pk, b),
            || postcard::to_extend(record, start),
        );
        let value = match (value, outcome.error) {
            (_, Some(e)) => return Err(e),
            (Ok(v), None) => v,
            (Err(e), None) => return Err(self.codec("encode", &e)),
        };
        Ok(Encoded {
            pk,
            value,
            entries: head.entries,
            new_tenant,
        })
    }

    /// Decodes a stored record with primary key `pk`, and checks that each
    /// of its sealed fields is sealed under the record's key (its
    /// tenant's, or the collection's). `tx`: the transaction it was read
    /// in, where the tenant's key is looked up (without one, in the
    /// committed state).
    pub(crate) fn decode(
        &self,
        pk: &[u8],
        stored: &[u8],
        tx: Option<&mut Transaction>,
    ) -> Result<T, Error> {
        let (record, opened) = self.decode_fields(pk, stored)?;
        self.check_opened(&record, &opened, tx)?;
        Ok(record)
    }

    /// Refuses a decoded record whose sealed fields (`opened`) were not
    /// all sealed under the record's key; `tx` as for [`Self::decode`].
    pub(crate) fn check_opened(
        &self,
        record: &T,
        opened: &sealed::OpenedFields,
        tx: Option<&mut Transaction>,
    ) -> Result<(), Error> {
        if opened.is_empty() {
            return Ok(());
        }
        let expected = match (&self.inner.tenants, self.tenant_of(record)?) {
            (Some(tks), Some(tenant)) => match tx {
                // Exactly the key this transaction sees (its own new
                // tenant's too).
                Some(tx) => {
                    Expected::Exact(self.key_for(tx, Some(&tenant), false)?.map(|(k, _)| k))
                }
                None => Expected::Committed(tenants::committed_key(
                    &self.inner.db,
                    &self.inner.checked,
                    tks,
                    &tenant,
                )?),
            },
            _ => Expected::Exact(self.inner.field_key),
        };
        for field in opened.iter() {
            let right = match expected {
                Expected::Exact(key) => Some(field.key) == key,
                // An iteration sees the committed key, and the transaction
                // it runs in may have given the tenant a key of its own
                // (it conflicts when it commits): a field that opened, and
                // so was authenticated under the key it names, is taken.
                // Only the record's own key may read as erased.
                Expected::Committed(key) => !field.erased || Some(field.key) == key,
            };
            if !right {
                return Err(self.corrupt("a sealed field is not sealed under its record's key"));
            }
        }
        Ok(())
    }

    /// Decodes a stored record; returns it with the sealed fields it met.
    pub(crate) fn decode_fields(
        &self,
        pk: &[u8],
        stored: &[u8],
    ) -> Result<(T, sealed::OpenedFields), Error> {
        let (version, body) =
            record::body_of(stored).ok_or_else(|| self.corrupt("a record is damaged"))?;
        let current = self.inner.schema.version;
        let db = &self.inner.db;
        let bind = |b: &mut Vec<u8>| self.write_binding(pk, b);
        let (decoded, outcome) = if version == current {
            sealed::within(db, None, bind, || postcard::from_bytes::<T>(body))
        } else if version > current {
            return Err(Error::NewerSchema {
                collection: self.collection_name(),
                found: version,
                supported: current,
            });
        } else {
            let upgrade =
                self.inner
                    .schema
                    .upgrades
                    .get(&version)
                    .ok_or_else(|| Error::NoUpgrade {
                        collection: self.collection_name(),
                        version,
                    })?;
            sealed::within(db, None, bind, || upgrade(body))
        };
        match (decoded, outcome.error) {
            // A sealed field that does not open: changed, or moved from
            // another record.
            (_, Some(Error::Db(sealkv::Error::Field(_)))) => Err(self
                .corrupt("a sealed field does not open (changed, or moved from another record)")),
            (_, Some(Error::Db(sealkv::Error::UnknownKey(_)))) => {
                Err(self.corrupt("a sealed field names a key this database does not hold"))
            }
            (_, Some(e)) => Err(e),
            (Ok(t), None) => Ok((t, outcome.opened)),
            (Err(e), None) => Err(self.codec("decode", &e)),
        }
    }

    pub(crate) fn codec(&self, operation: &'static str, e: &postcard::Error) -> Error {
        Error::Codec {
            collection: self.collection_name(),
            operation,
            reason: e.to_string(),
        }
    }

    pub(crate) fn corrupt(&self, what: &str) -> Error {
        Error::Corruption {
            collection: self.collection_name(),
            what: what.to_owned(),
        }
    }

    /// The declared index `name`.
    pub(crate) fn index(&self, name: &str) -> Result<&Active<T>, Error> {
        self.inner
            .indexes
            .iter()
            .find(|i| i.decl.name == name)
            .ok_or_else(|| Error::UnknownIndex {
                collection: self.collection_name(),
                index: name.to_owned(),
            })
    }
}

fn check_schema<T, K>(schema: &Schema<T, K>) -> Result<(), Error> {
    let len = schema.name.len();
    if len == 0 || len > MAX_COLLECTION_NAME_LEN {
        return Err(Error::InvalidName {
            len,
            max: MAX_COLLECTION_NAME_LEN,
        });
    }
    for (i, index) in schema.indexes.iter().enumerate() {
        let len = index.name.len();
        if len == 0 || len > MAX_INDEX_NAME_LEN {
            return Err(Error::InvalidIndexName {
                collection: schema.name.clone(),
                len,
                max: MAX_INDEX_NAME_LEN,
            });
        }
        if schema.indexes[..i].iter().any(|o| o.name == index.name) {
            return Err(Error::DuplicateIndex {
                collection: schema.name.clone(),
                index: index.name.clone(),
            });
        }
    }
    Ok(())
}

pub(crate) fn read_meta(
    tx: &mut Transaction,
    ks: &Keyspace,
    collection: &str,
) -> Result<Option<(Meta, u64)>, Error> {
    let corrupt = |what: &str| Error::Corruption {
        collection: collection.to_owned(),
        what: what.to_owned(),
    };
    let Some(bytes) = tx.get_in(ks, layout::META_KEY)? else {
        return Ok(None);
    };
    let meta: Meta =
        postcard::from_bytes(&bytes).map_err(|_| corrupt("the stored schema is damaged"))?;
    if meta.format != layout::META_FORMAT {
        return Err(corrupt("the stored schema is of an unknown format"));
    }
    let generation = tx
        .get_in(ks, layout::GENERATION_KEY)?
        .and_then(|g| <[u8; 8]>::try_from(g.as_slice()).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt("the schema generation is missing"))?;
    Ok(Some((meta, generation)))
}

/// Writes the stored schema, and with `generation` a new generation (when
/// the set of indexes changed: handles of the old one stop working).
pub(crate) fn write_meta(
    tx: &mut Transaction,
    ks: &Keyspace,
    meta: &Meta,
    generation: Option<u64>,
) -> Result<(), Error> {
    let bytes = postcard::to_allocvec(meta).map_err(|e| Error::Codec {
        collection: ks.name().to_owned(),
        operation: "encode",
        reason: e.to_string(),
    })?;
    tx.put_in(ks, layout::META_KEY, bytes)?;
    if let Some(generation) = generation {
        tx.put_in(ks, layout::GENERATION_KEY, generation.to_be_bytes())?;
    }
    Ok(())
}

/// Brings the stored schema in line with the declared one; returns it and
/// its generation.
fn reconcile<T, K>(
    tx: &mut Transaction,
    ks: &Keyspace,
    schema: &Schema<T, K>,
    created_key: Option<StoredKey>,
) -> Result<(Meta, u64), Error> {
    let (mut meta, mut generation, mut changed) = match read_meta(tx, ks, &schema.name)? {
        Some((meta, generation)) => (meta, generation, false),
        None => (
            Meta {
                format: layout::META_FORMAT,
                field_key: created_key,
                tenant: schema.tenant_kind.clone(),
                next_index: 0,
                indexes: Vec::new(),
                dropping: Vec::new(),
            },
            0,
            true,
        ),
    };
    if meta.tenant != schema.tenant_kind {
        let describe = |t: &Option<String>| match t {
            Some(kind) => format!("tenants of {kind} values"),
            None => "no tenants".to_owned(),
        };
        return Err(Error::TenancyMismatch {
            collection: schema.name.clone(),
            what: format!(
                "declared with {}, stored with {}",
                describe(&schema.tenant_kind),
                describe(&meta.tenant)
            ),
        });
    }
    for decl in &schema.indexes {
        match meta.indexes.iter().find(|m| m.name == decl.name) {
            Some(stored) => {
                let what = if stored.unique != decl.spec.unique {
                    Some("declared unique and stored not, or the reverse".to_owned())
                } else if stored.blind != decl.spec.blind {
                    Some("declared blind and stored plain, or the reverse".to_owned())
                } else if stored.tags != tags_of(decl.spec.blind) {
                    Some(format!(
                        "its blind tags are of version {} and {} bytes, this version writes version {} and {} bytes",
                        stored.tags.0, stored.tags.1, BLIND_TAG_VERSION, BLIND_TAG_LEN
                    ))
                } else if stored.kind != decl.kind {
                    Some(format!(
                        "declared over {} values, stored over {}",
                        decl.kind, stored.kind
                    ))
                } else {
                    None
                };
                if let Some(what) = what {
                    return Err(Error::SchemaMismatch {
                        collection: schema.name.clone(),
                        index: decl.name.clone(),
                        what,
                    });
                }
            }
            None => {
                meta.indexes.push(IndexMeta {
                    name: decl.name.clone(),
                    id: meta.next_index,
                    unique: decl.spec.unique,
                    blind: decl.spec.blind,
                    tags: tags_of(decl.spec.blind),
                    kind: decl.kind.clone(),
                    built: false,
                });
                meta.next_index += 1;
                changed = true;
            }
        }
    }
    let (kept, dropped): (Vec<_>, Vec<_>) = meta
        .indexes
        .into_iter()
        .partition(|m| schema.indexes.iter().any(|d| d.name == m.name));
    meta.indexes = kept;
    if !dropped.is_empty() {
        meta.dropping.extend(dropped.iter().map(|m| m.id));
        changed = true;
    }
    if changed {
        generation += 1;
        write_meta(tx, ks, &meta, Some(generation))?;
    }
    Ok((meta, generation))
}
