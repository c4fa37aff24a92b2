//! [`WriteBatch`]: several puts and deletes applied atomically.
//!
//! It is the WAL's encoded batch underneath, so a write appends it to the
//! log without another copy. Its keys are stored keys: each behind its
//! keyspace's prefix.

use std::sync::Arc;

use sealkv_core_wal::{Batch, BatchOp};

use crate::keyspace::prefix::{DEFAULT, Prefix};
use crate::keyspace::{Keyspace, KeyspaceState};

/// Largest value accepted (bytes). Keys are bounded by the page size
/// instead: a quarter of a page less overhead ([`crate::Db::max_key_len`];
/// 964 bytes with 4 KiB pages), so every node holds at least four.
pub const MAX_VALUE_LEN: usize = 16 << 20;
/// Largest batch accepted (bytes of keys and values).
pub const MAX_BATCH_LEN: usize = 128 << 20;

/// Puts and deletes applied all together or not at all: after a crash a
/// batch is either wholly present or wholly absent. Later operations on the
/// same key win. [`put`](Self::put) and [`delete`](Self::delete) work in the
/// default keyspace, [`put_in`](Self::put_in) and
/// [`delete_in`](Self::delete_in) in a named one; one batch may span
/// several.
///
/// ```
/// let mut batch = sealkv::WriteBatch::new();
/// batch.put(b"a", b"1").put(b"b", b"2").delete(b"c");
/// assert_eq!(batch.len(), 3);
/// ```
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub(crate) inner: Batch,
    /// The first value over the limit, found while building.
    too_large: Option<(&'static str, usize, usize)>,
    /// The longest user key added (prefix not counted).
    pub(crate) max_key: usize,
    bytes: usize,
    /// The named keyspaces written to: each must belong to the database
    /// and be live when the batch is admitted.
    keyspaces: Vec<Arc<KeyspaceState>>,
}

impl PartialEq for WriteBatch {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
            && self.too_large == other.too_large
            && self.keyspaces.len() == other.keyspaces.len()
            && self
                .keyspaces
                .iter()
                .zip(&other.keyspaces)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Eq for WriteBatch {}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    fn note(&mut self, what: &'static str, len: usize, limit: usize) {
        if len > limit && self.too_large.is_none() {
            self.too_large = Some((what, len, limit));
        }
    }

    /// Adds a put of `key` -> `value` in the default keyspace.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.max_key = self.max_key.max(key.len());
        self.raw_put(Prefix::of(DEFAULT).as_bytes(), key, value)
    }

    /// Adds a delete of `key` in the default keyspace.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref();
        self.max_key = self.max_key.max(key.len());
        self.raw_delete(Prefix::of(DEFAULT).as_bytes(), key)
    }

    /// Adds a put of `key` -> `value` in keyspace `ks`.
    pub fn put_in(
        &mut self,
        ks: &Keyspace,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> &mut Self {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.max_key = self.max_key.max(key.len());
        self.note_keyspace(&ks.state);
        self.raw_put(ks.state.prefix.as_bytes(), key, value)
    }

    /// Adds a delete of `key` in keyspace `ks`.
    pub fn delete_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref();
        self.max_key = self.max_key.max(key.len());
        self.note_keyspace(&ks.state);
        self.raw_delete(ks.state.prefix.as_bytes(), key)
    }

    /// An empty batch with room for `ops` operations of `bytes` bytes of
    /// stored keys and values in all, so building it allocates once.
    pub(crate) fn with_capacity(ops: usize, bytes: usize) -> Self {
        // The log's encoding adds at most a tag and two u32 lengths per
        // operation (a hint: a wrong one costs a reallocation, no more).
        const OP_OVERHEAD: usize = 9;
        WriteBatch {
            inner: Batch::with_capacity(bytes.saturating_add(ops.saturating_mul(OP_OVERHEAD))),
            ..Self::default()
        }
    }

    /// Adds a put of the stored key `prefix` + `key`, checked for nothing
    /// but the value's size (the engine's own records).
    pub(crate) fn raw_put(&mut self, prefix: &[u8], key: &[u8], value: &[u8]) -> &mut Self {
        self.note("value", value.len(), MAX_VALUE_LEN);
        self.bytes += prefix.len() + key.len() + value.len();
        self.inner.put_prefixed(prefix, key, value);
        self
    }

    /// Adds a delete of the stored key `prefix` + `key`.
    pub(crate) fn raw_delete(&mut self, prefix: &[u8], key: &[u8]) -> &mut Self {
        self.bytes += prefix.len() + key.len();
        self.inner.delete_prefixed(prefix, key);
        self
    }

    /// Records that the batch writes to keyspace `ks`.
    pub(crate) fn note_keyspace(&mut self, ks: &Arc<KeyspaceState>) {
        if !self.keyspaces.iter().any(|k| Arc::ptr_eq(k, ks)) {
            self.keyspaces.push(ks.clone());
        }
    }

    /// The named keyspaces the batch writes to.
    pub(crate) fn keyspaces(&self) -> impl Iterator<Item = &Arc<KeyspaceState>> {
        self.keyspaces.iter()
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Removes every operation.
    pub fn clear(&mut self) {
        self.inner.clear();
        self.too_large = None;
        self.max_key = 0;
        self.bytes = 0;
        self.keyspaces.clear();
    }

    /// Bytes of keys and values held.
    pub fn size_in_bytes(&self) -> usize {
        self.bytes
    }

    /// The operations, in order.
    pub(crate) fn ops(&self) -> impl Iterator<Item = BatchOp<'_>> {
        self.inner.iter()
    }

    /// Refuses a batch holding a key, a value or a total over the limits.
    pub(crate) fn check(&self, max_key: usize) -> Result<(), crate::Error> {
        if let Some((what, len, limit)) = self.too_large {
            return Err(crate::Error::TooLarge { what, len, limit });
        }
        if self.max_key > max_key {
            return Err(crate::Error::TooLarge {
                what: "key",
                len: self.max_key,
                limit: max_key,
            });
        }
        if self.bytes > MAX_BATCH_LEN {
            return Err(crate::Error::TooLarge {
                what: "batch",
                len: self.bytes,
                limit: MAX_BATCH_LEN,
            });
        }
        Ok(())
    }
}
