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

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::ser::{Error as _, Serialize, Serializer};

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
                // Encoded before the scope is borrowed: a sealed field
                // inside `v` seals through the same scope.
                let plain = postcard::to_allocvec(v).map_err(S::Error::custom)?;
                with_scope(|scope| scope.seal(&plain)).map_err(S::Error::custom)?
            }
        };
        serializer.serialize_bytes(&sealed)
    }
}

impl<'de, V: serde::de::DeserializeOwned> Deserialize<'de> for Sealed<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let sealed: Vec<u8> = serde_bytes_vec(deserializer)?;
        match with_scope(|scope| scope.open(&sealed)).map_err(D::Error::custom)? {
            Opened::Erased => Ok(Sealed {
                state: State::Erased(sealed),
            }),
            Opened::Plain(plain) => {
                let v = postcard::from_bytes(&plain).map_err(D::Error::custom)?;
                Ok(Sealed::new(v))
            }
        }
    }
}

/// Reads a byte string (postcard writes `serialize_bytes` as one).
fn serde_bytes_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct Bytes;
    impl<'de> serde::de::Visitor<'de> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("sealed bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
    d.deserialize_byte_buf(Bytes)
}

/// What opening a sealed field gave.
enum Opened {
    Plain(Vec<u8>),
    Erased,
}

/// Where the sealed fields of the record being encoded or decoded on this
/// thread are sealed: the database, the field key, the record's binding.
pub(crate) struct SealScope {
    db: Db,
    /// `None`: the database has no key, so nothing can be sealed.
    key: Option<KeyId>,
    binding: Vec<u8>,
    /// The first error met, with its type (serde carries only a message).
    error: Option<Error>,
    /// The fields opened, in order: the key each header names.
    opened: Vec<OpenedField>,
}

/// A sealed field a decode met.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenedField {
    /// The field key its header names.
    pub(crate) key: KeyId,
    /// The key is destroyed: the field was not authenticated, only found
    /// to name a destroyed key.
    pub(crate) erased: bool,
}

/// What an encode or a decode met in its sealed fields.
#[derive(Debug, Default)]
pub(crate) struct ScopeOutcome {
    /// The first typed error.
    pub(crate) error: Option<Error>,
    /// The fields opened (a decode).
    pub(crate) opened: Vec<OpenedField>,
}

impl SealScope {
    pub(crate) fn new(db: &Db, key: Option<KeyId>, binding: Vec<u8>) -> Self {
        SealScope {
            db: db.clone(),
            key,
            binding,
            error: None,
            opened: Vec::new(),
        }
    }

    fn fail(&mut self, e: Error) -> &'static str {
        let msg = match &e {
            Error::SealedOutsideCollection => "sealed field without a key",
            _ => "sealed field failed",
        };
        self.error.get_or_insert(e);
        msg
    }

    fn seal(&mut self, plain: &[u8]) -> Result<Vec<u8>, &'static str> {
        let Some(key) = self.key else {
            return Err(self.fail(Error::SealedOutsideCollection));
        };
        self.db
            .seal_field(key, &self.binding, plain)
            .map_err(|e| self.fail(e.into()))
    }

    fn open(&mut self, sealed: &[u8]) -> Result<Opened, &'static str> {
        let key = match field::header(sealed) {
            Ok(header) => header.key_id,
            Err(e) => return Err(self.fail(sealkv::Error::Field(e).into())),
        };
        // Whether the key is the record's is decided by the caller, once
        // the record (and so its tenant) is known.
        let (opened, erased) = match self.db.open_field(&self.binding, sealed) {
            Ok(plain) => (Ok(Opened::Plain(plain)), false),
            Err(sealkv::Error::KeyDestroyed(_)) => (Ok(Opened::Erased), true),
            Err(e) => (Err(self.fail(e.into())), false),
        };
        self.opened.push(OpenedField { key, erased });
        opened
    }
}

thread_local! {
    /// The scope of the record being encoded or decoded on this thread.
    static SCOPE: RefCell<Option<SealScope>> = const { RefCell::new(None) };
    /// Counts reads of sealed values, to catch a key extractor reading one.
    static SEALED_READS: Cell<u64> = const { Cell::new(0) };
}

fn with_scope<R>(f: impl FnOnce(&mut SealScope) -> Result<R, &'static str>) -> Result<R, String> {
    SCOPE.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_mut() {
            Some(scope) => f(scope).map_err(str::to_owned),
            None => Err("a Sealed field is serialized only by a collection".to_owned()),
        }
    })
}

/// Runs `f` (an encode or a decode) with `scope` installed on this thread;
/// returns its result and what its sealed fields met.
pub(crate) fn within<R>(scope: SealScope, f: impl FnOnce() -> R) -> (R, ScopeOutcome) {
    let previous = SCOPE.with(|cell| cell.borrow_mut().replace(scope));
    // Restored even if `f` unwinds.
    struct Restore(Option<Option<SealScope>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.0.take() {
                let _ = SCOPE.try_with(|cell| *cell.borrow_mut() = previous);
            }
        }
    }
    let mut restore = Restore(Some(previous));
    let out = f();
    let mine = SCOPE.with(|cell| {
        let previous = restore.0.take().flatten();
        std::mem::replace(&mut *cell.borrow_mut(), previous)
    });
    let outcome = mine.map_or_else(ScopeOutcome::default, |s| ScopeOutcome {
        error: s.error,
        opened: s.opened,
    });
    (out, outcome)
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
