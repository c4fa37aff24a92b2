//! [`Sealed`]: a field of a record that is stored field-encrypted.
//!
//! A record type marks its sensitive fields by their type:
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! use sealkv_collections::Sealed;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Patient {
//!     id: u64,
//!     name: String,
//!     national_id: Sealed<String>, // ciphertext on disk, in the log and the memtable
//! }
//! ```
//!
//! In memory a `Sealed<V>` holds its value in clear. When a collection
//! writes the record, each `Sealed` field is serialized on its own (with
//! postcard) and sealed with the engine's field-level encryption
//! ([`sealkv::Db::seal_field`]: randomized, in the handle's field session
//! of the key: a salt per session, a counter nonce per value) under the
//! collection's field key, or the record's tenant's, bound to the record's
//! collection and primary key: moved into another record it does not open.
//! The sealed bytes go into the record in the field's place. So the value
//! stays ciphertext in the memtable, the log and the pages even in a
//! database with `encrypt_at_rest` off, and destroying the key shreds it.
//!
//! A value whose key was destroyed reads back *erased*:
//! [`Sealed::value`] is `None`, and the rest of the record reads as usual.
//! Written back unchanged, an erased value keeps its sealed bytes.
//!
//! Outside a collection (`serde_json::to_string(&patient)`), serializing a
//! `Sealed` fails: a sealed field never leaves in clear by accident. Read
//! it with [`Sealed::value`] and serialize that where it is meant to go.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Error as _, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

use sealkv::Db;
use sealkv::crypto::{KeyId, field};

use crate::error::Error;

/// A field stored field-encrypted: see the [module docs](self). Its
/// `Debug` shows nothing of the value. Comparing two (`==`) reads their
/// values, as [`Sealed::value`] does: a primary key, tenant or plain index
/// that compares one is refused like one that reads it.
#[derive(Clone)]
pub struct Sealed<V> {
    state: State<V>,
}

#[derive(Clone, PartialEq, Eq)]
enum State<V> {
    Open(V),
    /// The key it was sealed under is destroyed: the sealed bytes, kept so
    /// that writing the record back keeps them as they were.
    Erased(Vec<u8>),
}

impl<V> Sealed<V> {
    /// A sealed field holding `value`.
    pub fn new(value: V) -> Self {
        Sealed {
            state: State::Open(value),
        }
    }

    /// The value; `None` if it was erased (its key destroyed).
    pub fn value(&self) -> Option<&V> {
        note_read();
        match &self.state {
            State::Open(v) => Some(v),
            State::Erased(_) => None,
        }
    }

    /// The value, to change in place; `None` if it was erased.
    pub fn value_mut(&mut self) -> Option<&mut V> {
        note_read();
        match &mut self.state {
            State::Open(v) => Some(v),
            State::Erased(_) => None,
        }
    }

    /// The value, if it was not erased.
    pub fn into_value(self) -> Option<V> {
        note_read();
        match self.state {
            State::Open(v) => Some(v),
            State::Erased(_) => None,
        }
    }

    /// Replaces the value (an erased one too).
    pub fn set(&mut self, value: V) {
        self.state = State::Open(value);
    }

    /// Whether the key the value was sealed under is destroyed.
    pub fn is_erased(&self) -> bool {
        matches!(self.state, State::Erased(_))
    }
}

impl<V: PartialEq> PartialEq for Sealed<V> {
    fn eq(&self, other: &Self) -> bool {
        note_read();
        self.state == other.state
    }
}

impl<V: Eq> Eq for Sealed<V> {}

impl<V> From<V> for Sealed<V> {
    fn from(value: V) -> Self {
        Sealed::new(value)
    }
}

impl<V: Default> Default for Sealed<V> {
    fn default() -> Self {
        Sealed::new(V::default())
    }
}

impl<V> fmt::Debug for Sealed<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state {
            State::Open(_) => f.write_str("Sealed(<redacted>)"),
            State::Erased(_) => f.write_str("Sealed(<erased>)"),
        }
    }
}

impl<V: Serialize> Serialize for Sealed<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let sealed = match &self.state {
            State::Erased(bytes) => bytes.clone(),
            State::Open(v) => {
                // Encoded into the scope's buffer, taken out meanwhile (a
                // sealed field inside `v` seals through the same scope),
                // then wiped and kept for the next value.
                let mut plain = with_scope(|scope| Ok(std::mem::take(&mut scope.plain)))
                    .map_err(S::Error::custom)?;
                plain.clear();
                let sealed = postcard::serialize_with_flavor(v, WipingAppend(&mut plain))
                    .map_err(S::Error::custom)
                    .and_then(|()| {
                        with_scope(|scope| scope.seal(&plain)).map_err(S::Error::custom)
                    });
                wipe(&mut plain);
                let _ = with_scope(|scope| {
                    scope.keep_plain(plain);
                    Ok(())
                });
                sealed?
            }
        };
        serializer.serialize_bytes(&sealed)
    }
}

/// A postcard output appending to a plaintext buffer, which it grows by
/// hand: the bytes of an outgrown allocation are wiped before it is freed,
/// where a `Vec`'s own growth would leave them in freed memory.
struct WipingAppend<'a>(&'a mut Vec<u8>);

impl WipingAppend<'_> {
    fn reserve(&mut self, more: usize) {
        let needed = self.0.len().saturating_add(more);
        if needed > self.0.capacity() {
            drop(grow(self.0, needed));
        }
    }
}

/// Moves `buf`'s bytes into an allocation of at least `needed` bytes (and
/// twice the old one, so appends stay amortized); returns the outgrown
/// one, wiped.
fn grow(buf: &mut Vec<u8>, needed: usize) -> Vec<u8> {
    let mut grown = Vec::with_capacity(needed.max(buf.capacity().saturating_mul(2)).max(64));
    grown.extend_from_slice(buf);
    let mut outgrown = std::mem::replace(buf, grown);
    wipe(&mut outgrown);
    outgrown
}

/// Overwrites every byte `buf` holds with zeros, keeping its length. What
/// lies past the length was never written, or was wiped the same way while
/// it was held (every user of a wiped buffer clears it first and wipes
/// what it wrote), so the whole allocation is clean.
fn wipe(buf: &mut Vec<u8>) {
    buf.as_mut_slice().zeroize();
}

impl postcard::ser_flavors::Flavor for WipingAppend<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.reserve(data.len());
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.reserve(1);
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

impl<'de, V: serde::de::DeserializeOwned> Deserialize<'de> for Sealed<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_byte_buf(SealedBytes(PhantomData))
    }
}

/// Reads a sealed field's byte string (postcard writes `serialize_bytes`
/// as one) and opens it where it lies: a decode from a slice lends the
/// bytes, and only an erased value keeps a copy of them.
struct SealedBytes<V>(PhantomData<V>);

impl<'de, V: serde::de::DeserializeOwned> serde::de::Visitor<'de> for SealedBytes<V> {
    type Value = Sealed<V>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sealed bytes")
    }
    fn visit_bytes<E: serde::de::Error>(self, sealed: &[u8]) -> Result<Sealed<V>, E> {
        match with_scope(|scope| scope.open(sealed)).map_err(E::custom)? {
            Opened::Erased => Ok(Sealed {
                state: State::Erased(sealed.to_vec()),
            }),
            Opened::Plain(mut plain) => {
                let v = postcard::from_bytes(&plain);
                // Wiped now, and kept for the next value (a `Zeroizing`
                // buffer is wiped however it is dropped, an unwind
                // included).
                wipe(&mut plain);
                let _ = with_scope(|scope| {
                    scope.keep_plain(plain);
                    Ok(())
                });
                Ok(Sealed::new(v.map_err(E::custom)?))
            }
        }
    }
}

/// What opening a sealed field gave.
enum Opened {
    /// The plaintext, in the scope's buffer (taken out while it is read).
    Plain(Zeroizing<Vec<u8>>),
    Erased,
}

/// Where the sealed fields of the record being encoded or decoded on this
/// thread are sealed: the database, the field key, the record's binding.
/// Scopes are kept per thread and used again, so a record decoded costs
/// no allocation here.
#[derive(Default)]
struct SealScope {
    /// `None` only while the scope is kept unused (so a kept scope holds no
    /// database open).
    db: Option<Db>,
    /// `None`: the database has no key, so nothing can be sealed.
    key: Option<KeyId>,
    binding: Vec<u8>,
    /// The first error met, with its type (serde carries only a message).
    error: Option<Error>,
    /// The fields opened: the key each header names.
    opened: OpenedFields,
    /// The buffer a sealed value is opened into, wiped between values.
    plain: Zeroizing<Vec<u8>>,
}

/// A sealed field a decode met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenedField {
    /// The field key its header names.
    pub(crate) key: KeyId,
    /// The key is destroyed: the field was not authenticated, only found
    /// to name a destroyed key.
    pub(crate) erased: bool,
}

/// The distinct [`OpenedField`]s a decode met (what the record's key
/// check needs): the first kept inline, since a record's sealed fields
/// almost always share one key.
#[derive(Debug, Default)]
pub(crate) struct OpenedFields {
    first: Option<OpenedField>,
    others: Vec<OpenedField>,
}

impl OpenedFields {
    fn note(&mut self, field: OpenedField) {
        match self.first {
            None => self.first = Some(field),
            Some(first) if first == field => {}
            Some(_) => {
                if !self.others.contains(&field) {
                    self.others.push(field);
                }
            }
        }
    }

    /// Whether no sealed field was met.
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Each distinct field met.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &OpenedField> {
        self.first.iter().chain(&self.others)
    }
}

/// What an encode or a decode met in its sealed fields.
#[derive(Debug, Default)]
pub(crate) struct ScopeOutcome {
    /// The first typed error.
    pub(crate) error: Option<Error>,
    /// The fields opened (a decode).
    pub(crate) opened: OpenedFields,
}

impl SealScope {
    fn fail(&mut self, e: Error) -> &'static str {
        let msg = match &e {
            Error::SealedOutsideCollection => "sealed field without a key",
            _ => "sealed field failed",
        };
        self.error.get_or_insert(e);
        msg
    }

    fn seal(&mut self, plain: &[u8]) -> Result<Vec<u8>, &'static str> {
        let (Some(db), Some(key)) = (&self.db, self.key) else {
            return Err(self.fail(Error::SealedOutsideCollection));
        };
        db.seal_field(key, &self.binding, plain)
            .map_err(|e| self.fail(e.into()))
    }

    /// Keeps `plain` (wiped) as the buffer of the next open, unless it
    /// grew past what a scope keeps.
    fn keep_plain(&mut self, plain: Zeroizing<Vec<u8>>) {
        if plain.capacity() <= KEPT_BINDING {
            self.plain = plain;
        }
    }

    fn open(&mut self, sealed: &[u8]) -> Result<Opened, &'static str> {
        let key = match field::header(sealed) {
            Ok(header) => header.key_id,
            Err(e) => return Err(self.fail(sealkv::Error::Field(e).into())),
        };
        let Some(db) = &self.db else {
            return Err(self.fail(Error::SealedOutsideCollection));
        };
        // Whether the key is the record's is decided by the caller, once
        // the record (and so its tenant) is known.
        let mut plain = std::mem::take(&mut self.plain);
        let (opened, erased) = match db.open_field_into(&self.binding, sealed, &mut plain) {
            Ok(()) => (Ok(Opened::Plain(plain)), false),
            // Nothing opened is left in the buffer; wiped all the same.
            Err(sealkv::Error::KeyDestroyed(_)) => {
                wipe(&mut plain);
                self.plain = plain;
                (Ok(Opened::Erased), true)
            }
            Err(e) => {
                wipe(&mut plain);
                self.plain = plain;
                (Err(self.fail(e.into())), false)
            }
        };
        self.opened.note(OpenedField { key, erased });
        opened
    }
}

/// The scopes of this thread, kept in place and used again: the first
/// `depth` are in use (a decode inside a decode, say in a schema upgrade,
/// uses the next one), the rest are spare.
struct Scopes {
    pool: Vec<SealScope>,
    depth: usize,
}

/// The scopes a thread keeps, and the largest binding buffer kept with
/// one.
const KEPT_SCOPES: usize = 4;
const KEPT_BINDING: usize = 4096;

thread_local! {
    static SCOPES: RefCell<Scopes> = const {
        RefCell::new(Scopes {
            pool: Vec::new(),
            depth: 0,
        })
    };
    /// Counts reads of sealed values, to catch a key extractor reading one.
    static SEALED_READS: Cell<u64> = const { Cell::new(0) };
}

fn with_scope<R>(f: impl FnOnce(&mut SealScope) -> Result<R, &'static str>) -> Result<R, String> {
    SCOPES.with(|cell| {
        let mut scopes = cell.borrow_mut();
        let depth = scopes.depth;
        match depth
            .checked_sub(1)
            .and_then(|top| scopes.pool.get_mut(top))
        {
            Some(scope) => f(scope).map_err(str::to_owned),
            None => Err("a Sealed field is serialized only by a collection".to_owned()),
        }
    })
}

/// Ends the scope in use last on this thread; returns what its sealed
/// fields met. A scope ends holding no database handle.
fn end_scope(cell: &RefCell<Scopes>) -> ScopeOutcome {
    let mut scopes = cell.borrow_mut();
    let Some(top) = scopes.depth.checked_sub(1) else {
        return ScopeOutcome::default();
    };
    scopes.depth = top;
    let Some(scope) = scopes.pool.get_mut(top) else {
        return ScopeOutcome::default();
    };
    let outcome = ScopeOutcome {
        error: scope.error.take(),
        opened: std::mem::take(&mut scope.opened),
    };
    scope.db = None;
    if scope.binding.capacity() > KEPT_BINDING {
        scope.binding = Vec::new();
    }
    if top >= KEPT_SCOPES {
        scopes.pool.truncate(top);
    }
    outcome
}

/// Runs `f` (an encode or a decode) with a scope of `db` and field key
/// `key` in use on this thread, its binding written by `bind`; returns
/// `f`'s result and what its sealed fields met.
pub(crate) fn within<R>(
    db: &Db,
    key: Option<KeyId>,
    bind: impl FnOnce(&mut Vec<u8>),
    f: impl FnOnce() -> R,
) -> (R, ScopeOutcome) {
    SCOPES.with(|cell| {
        let mut scopes = cell.borrow_mut();
        let depth = scopes.depth;
        if scopes.pool.len() == depth {
            scopes.pool.push(SealScope::default());
        }
        scopes.depth = depth + 1;
        if let Some(scope) = scopes.pool.get_mut(depth) {
            scope.db = Some(db.clone());
            scope.key = key;
            scope.binding.clear();
            bind(&mut scope.binding);
        }
    });
    // Ended even if `f` unwinds.
    struct End(bool);
    impl Drop for End {
        fn drop(&mut self) {
            if self.0 {
                let _ = SCOPES.try_with(end_scope);
            }
        }
    }
    let mut end = End(true);
    let out = f();
    end.0 = false;
    (out, SCOPES.with(end_scope))
}

fn note_read() {
    let _ = SEALED_READS.try_with(|c| c.set(c.get().wrapping_add(1)));
}

/// Runs `f` and says whether it read a sealed value.
pub(crate) fn reads_sealed<R>(f: impl FnOnce() -> R) -> (R, bool) {
    let before = SEALED_READS.with(Cell::get);
    let out = f();
    (out, SEALED_READS.with(Cell::get) != before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes_in_use() -> (usize, bool) {
        SCOPES.with(|cell| {
            let scopes = cell.borrow();
            let holds_db = scopes.pool.iter().any(|s| s.db.is_some());
            (scopes.depth, holds_db)
        })
    }

    #[test]
    fn a_scope_inside_a_scope_keeps_its_own_outcome_and_no_database_after() {
        let dir = tempfile::tempdir().unwrap();
        let db = sealkv::Config::new(dir.path()).open().unwrap();
        let (inner, outer) = within(
            &db,
            None,
            |b| b.extend_from_slice(b"outer"),
            || {
                let (encoded, inner) = within(
                    &db,
                    None,
                    |b| b.extend_from_slice(b"inner"),
                    || postcard::to_allocvec(&Sealed::new(7u8)),
                );
                assert!(encoded.is_err(), "no key: nothing seals");
                with_scope(|scope| {
                    assert_eq!(scope.binding, b"outer");
                    Ok(())
                })
                .unwrap();
                inner
            },
        );
        assert!(matches!(inner.error, Some(Error::SealedOutsideCollection)));
        assert!(outer.error.is_none(), "the inner scope's error stays there");
        assert!(outer.opened.is_empty());
        assert_eq!(scopes_in_use(), (0, false));
        // No scope kept a handle: the database closes and opens again.
        db.close().unwrap();
        sealkv::Config::new(dir.path()).open().unwrap();
    }

    #[test]
    fn a_scope_ends_when_its_decode_unwinds() {
        let dir = tempfile::tempdir().unwrap();
        let db = sealkv::Config::new(dir.path()).open().unwrap();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            within(&db, None, |_| {}, || panic!("a decode that panics"))
        }));
        assert!(unwound.is_err());
        assert_eq!(scopes_in_use(), (0, false));
    }

    #[test]
    fn wiping_append_writes_what_postcard_writes() {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            name: &'a str,
            tags: Vec<u32>,
        }
        for len in [0, 1, 63, 64, 65, 1_000, 10_000] {
            let name = "x".repeat(len);
            let row = Row {
                name: &name,
                tags: (0..u32::try_from(len % 97).unwrap()).collect(),
            };
            let mut out = Vec::with_capacity(3);
            out.push(9);
            postcard::serialize_with_flavor(&row, WipingAppend(&mut out)).unwrap();
            let mut want = vec![9];
            want.extend(postcard::to_allocvec(&row).unwrap());
            assert_eq!(out, want, "{len} bytes");
        }
    }

    #[test]
    fn a_sealed_value_leaves_the_kept_plaintext_buffer_wiped() {
        let dir = tempfile::tempdir().unwrap();
        let db = sealkv::Config::new(dir.path())
            .encryption_key(sealkv::crypto::MasterKey::from_bytes(&[7; 32]).unwrap())
            .open()
            .unwrap();
        let key = db.create_field_key().unwrap();
        // Kept (not dropped), holding the last value's length, all zeros.
        let plain_buffers_wiped = || {
            SCOPES.with(|cell| {
                let scopes = cell.borrow();
                scopes.pool.iter().any(|s| !s.plain.is_empty())
                    && scopes.pool.iter().all(|s| s.plain.iter().all(|&b| b == 0))
            })
        };
        let bind = |b: &mut Vec<u8>| b.extend_from_slice(b"record 1");
        let value = Sealed::new("a secret value".to_string());
        let (encoded, outcome) = within(&db, Some(key), bind, || postcard::to_allocvec(&value));
        assert!(outcome.error.is_none());
        let encoded = encoded.unwrap();
        assert!(!encoded.windows(6).any(|w| w == b"secret"));
        assert!(plain_buffers_wiped());
        let (decoded, outcome) = within(&db, None, bind, || {
            postcard::from_bytes::<Sealed<String>>(&encoded)
        });
        assert!(outcome.error.is_none());
        assert_eq!(outcome.opened.iter().count(), 1);
        assert_eq!(
            decoded.unwrap().into_value().as_deref(),
            Some("a secret value")
        );
        assert!(plain_buffers_wiped());
    }

    #[test]
    fn an_outgrown_buffer_is_wiped_and_its_bytes_moved() {
        let mut buf = Vec::with_capacity(4);
        buf.extend_from_slice(b"abcd");
        let outgrown = grow(&mut buf, 5);
        assert_eq!(outgrown, [0; 4]);
        assert_eq!(buf, b"abcd");
        assert!(buf.capacity() >= 64);
    }

    #[test]
    fn distinct_opened_fields_are_each_kept_once() {
        let mut opened = OpenedFields::default();
        assert!(opened.is_empty());
        let a = OpenedField {
            key: KeyId(1),
            erased: false,
        };
        let b = OpenedField {
            key: KeyId(2),
            erased: true,
        };
        for f in [a, a, b, a, b] {
            opened.note(f);
        }
        assert!(!opened.is_empty());
        assert_eq!(opened.iter().copied().collect::<Vec<_>>(), [a, b]);
    }
}
