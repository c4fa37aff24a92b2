//! [`WriteBatch`]: several puts and deletes applied atomically.
//!
//! It is the WAL's encoded batch underneath, so a write appends it to the
//! log without another copy.

use sealkv_core_wal::{Batch, BatchOp};

/// Largest value accepted (bytes). Keys are bounded by the page size
/// instead: a quarter of a page less overhead ([`crate::Db::max_key_len`];
/// 964 bytes with 4 KiB pages), so every node holds at least four.
pub const MAX_VALUE_LEN: usize = 16 << 20;
/// Largest batch accepted (bytes of keys and values).
pub const MAX_BATCH_LEN: usize = 128 << 20;

/// Puts and deletes applied all together or not at all: after a crash a
/// batch is either wholly present or wholly absent. Later operations on the
/// same key win.
///
/// ```
/// let mut batch = sealkv::WriteBatch::new();
/// batch.put(b"a", b"1").put(b"b", b"2").delete(b"c");
/// assert_eq!(batch.len(), 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub(crate) inner: Batch,
    /// The first value over the limit, found while building.
    too_large: Option<(&'static str, usize, usize)>,
    /// The longest key added.
    pub(crate) max_key: usize,
    bytes: usize,
}

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

    /// Adds a put of `key` -> `value`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.max_key = self.max_key.max(key.len());
        self.note("value", value.len(), MAX_VALUE_LEN);
        self.bytes += key.len() + value.len();
        self.inner.put(key, value);
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref();
        self.max_key = self.max_key.max(key.len());
        self.bytes += key.len();
        self.inner.delete(key);
        self
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
