//! [`Batch`]: the atomic unit of a WAL record.
//!
//! A batch is kept in its encoded form (like RocksDB's `WriteBatch`), so
//! appending it to the log is one copy and no per-operation work:
//!
//! ```text
//! count u32 LE, then per operation:
//!   1 (put)    | key_len u32 LE | key | value_len u32 LE | value
//!   2 (delete) | key_len u32 LE | key
//! ```

#![deny(clippy::indexing_slicing)]

use std::fmt;

const PUT: u8 = 1;
const DELETE: u8 = 2;
const COUNT_LEN: usize = 4;

/// One operation of a [`Batch`], borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOp<'a> {
    /// Set `key` to `value`.
    Put {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: &'a [u8],
    },
}

/// Why bytes are not a valid encoded batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The bytes end inside an operation, or hold more than `count` says.
    #[error("malformed batch: {0}")]
    Malformed(&'static str),
}

/// An ordered group of puts and deletes that the log records atomically.
#[derive(Clone, PartialEq, Eq)]
pub struct Batch {
    rep: Vec<u8>,
    count: u32,
}

impl fmt::Debug for Batch {
    // Keys and values may be secrets: print only the shape.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("ops", &self.count)
            .field("bytes", &self.rep.len())
            .finish()
    }
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

fn len_u32(n: usize) -> u32 {
    // Callers are bounded by the record limit long before 4 GiB; saturating
    // makes an oversize batch fail `decode` instead of wrapping.
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch {
            rep: vec![0; COUNT_LEN],
            count: 0,
        }
    }

    /// An empty batch with room for `bytes` of operations.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut rep = Vec::with_capacity(COUNT_LEN + bytes);
        rep.extend_from_slice(&[0; COUNT_LEN]);
        Batch { rep, count: 0 }
    }

    fn bump(&mut self) {
        self.count = self.count.saturating_add(1);
        if let Some(c) = self.rep.get_mut(..COUNT_LEN) {
            c.copy_from_slice(&self.count.to_le_bytes());
        }
    }

    /// Adds a put of `key` = `value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.rep.push(PUT);
        self.rep
            .extend_from_slice(&len_u32(key.len()).to_le_bytes());
        self.rep.extend_from_slice(key);
        self.rep
            .extend_from_slice(&len_u32(value.len()).to_le_bytes());
        self.rep.extend_from_slice(value);
        self.bump();
        self
    }

    /// Adds a put of the key `prefix` + `key` = `value`, without joining
    /// the two first (the engine's keyspace prefix).
    pub fn put_prefixed(&mut self, prefix: &[u8], key: &[u8], value: &[u8]) -> &mut Self {
        self.rep.push(PUT);
        self.rep
            .extend_from_slice(&len_u32(prefix.len() + key.len()).to_le_bytes());
        self.rep.extend_from_slice(prefix);
        self.rep.extend_from_slice(key);
        self.rep
            .extend_from_slice(&len_u32(value.len()).to_le_bytes());
        self.rep.extend_from_slice(value);
        self.bump();
        self
    }

    /// Adds a delete of the key `prefix` + `key`.
    pub fn delete_prefixed(&mut self, prefix: &[u8], key: &[u8]) -> &mut Self {
        self.rep.push(DELETE);
        self.rep
            .extend_from_slice(&len_u32(prefix.len() + key.len()).to_le_bytes());
        self.rep.extend_from_slice(prefix);
        self.rep.extend_from_slice(key);
        self.bump();
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.rep.push(DELETE);
        self.rep
            .extend_from_slice(&len_u32(key.len()).to_le_bytes());
        self.rep.extend_from_slice(key);
        self.bump();
        self
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes every operation, keeping the allocation.
    pub fn clear(&mut self) {
        self.rep.clear();
        self.rep.extend_from_slice(&[0; COUNT_LEN]);
        self.count = 0;
    }

    /// The encoded form (what a WAL record carries).
    pub fn encoded(&self) -> &[u8] {
        &self.rep
    }

    /// Decodes and validates an encoded batch.
    pub fn decode(bytes: &[u8]) -> Result<Batch, BatchError> {
        let count = read_u32(bytes, 0).ok_or(BatchError::Malformed("no operation count"))?;
        let mut pos = COUNT_LEN;
        for _ in 0..count {
            pos = next_op(bytes, pos)?.1;
        }
        if pos != bytes.len() {
            return Err(BatchError::Malformed("bytes after the last operation"));
        }
        Ok(Batch {
            rep: bytes.to_vec(),
            count,
        })
    }

    /// The operations, in order.
    pub fn iter(&self) -> BatchIter<'_> {
        BatchIter {
            bytes: &self.rep,
            pos: COUNT_LEN,
            left: self.count,
        }
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

fn take(bytes: &[u8], pos: usize) -> Result<(&[u8], usize), BatchError> {
    let len = read_u32(bytes, pos).ok_or(BatchError::Malformed("truncated length"))? as usize;
    let start = pos + 4;
    let end = start
        .checked_add(len)
        .ok_or(BatchError::Malformed("length overflows"))?;
    let s = bytes
        .get(start..end)
        .ok_or(BatchError::Malformed("truncated key or value"))?;
    Ok((s, end))
}

fn next_op(bytes: &[u8], pos: usize) -> Result<(BatchOp<'_>, usize), BatchError> {
    let kind = *bytes
        .get(pos)
        .ok_or(BatchError::Malformed("fewer operations than counted"))?;
    let (key, pos) = take(bytes, pos + 1)?;
    match kind {
        PUT => {
            let (value, pos) = take(bytes, pos)?;
            Ok((BatchOp::Put { key, value }, pos))
        }
        DELETE => Ok((BatchOp::Delete { key }, pos)),
        _ => Err(BatchError::Malformed("unknown operation kind")),
    }
}

/// Iterator over a [`Batch`]'s operations.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    bytes: &'a [u8],
    pos: usize,
    left: u32,
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = BatchOp<'a>;

    fn next(&mut self) -> Option<BatchOp<'a>> {
        if self.left == 0 {
            return None;
        }
        // A batch is validated when built or decoded, so this cannot fail;
        // stop rather than panic if it somehow did.
        let (op, pos) = next_op(self.bytes, self.pos).ok()?;
        self.pos = pos;
        self.left -= 1;
        Some(op)
    }
}

impl<'a> IntoIterator for &'a Batch {
    type Item = BatchOp<'a>;
    type IntoIter = BatchIter<'a>;
    fn into_iter(self) -> BatchIter<'a> {
        self.iter()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_garbage() {
        let mut b = Batch::new();
        b.put(b"k1", b"v1").delete(b"k2").put(b"", b"");
        let d = Batch::decode(b.encoded()).unwrap_or_default();
        assert_eq!(d, b);
        let ops: Vec<_> = d.iter().collect();
        assert_eq!(
            ops,
            vec![
                BatchOp::Put {
                    key: b"k1",
                    value: b"v1"
                },
                BatchOp::Delete { key: b"k2" },
                BatchOp::Put {
                    key: b"",
                    value: b""
                },
            ]
        );
        for cut in 0..b.encoded().len() {
            assert!(Batch::decode(&b.encoded()[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = b.encoded().to_vec();
        extra.push(0);
        assert!(Batch::decode(&extra).is_err());
    }

    #[test]
    fn prefixed_operations_encode_as_the_joined_key() {
        let mut joined = Batch::new();
        joined.put(b"\x02user", b"v").delete(b"\x02gone");
        let mut parts = Batch::new();
        parts
            .put_prefixed(b"\x02", b"user", b"v")
            .delete_prefixed(b"\x02", b"gone");
        assert_eq!(parts, joined);
    }
}
