//! How records are stored: log entries under their index as an 8-byte
//! big-endian key (so key order is log order), values in postcard.
//!
//! An entry too large for one value is split: its postcard bytes go in
//! parts under `index || parts || part` (8 + 4 + 4 bytes, big-endian),
//! which sort after the index and before the next one.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

/// The key of log index `index`.
pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The key of part `part` of the `parts` parts of split entry `index`.
pub(crate) fn part_key(index: u64, parts: u32, part: u32) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&index.to_be_bytes());
    key[8..12].copy_from_slice(&parts.to_be_bytes());
    key[12..].copy_from_slice(&part.to_be_bytes());
    key
}

/// What a key of the log keyspace names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogKey {
    /// A whole entry.
    Whole(u64),
    /// One part of a split entry.
    Part {
        /// The entry's index.
        index: u64,
        /// How many parts the entry has.
        parts: u32,
        /// Which part this is, from 0.
        part: u32,
    },
}

impl LogKey {
    /// The log index the key belongs to.
    pub(crate) fn index(self) -> u64 {
        match self {
            LogKey::Whole(index) | LogKey::Part { index, .. } => index,
        }
    }
}

/// What log key `key` names.
pub(crate) fn log_key(key: &[u8]) -> Result<LogKey, StoreError> {
    let corrupt = || StoreError::Corrupt { what: "log key" };
    let be64 = |b: &[u8]| b.try_into().map(u64::from_be_bytes).map_err(|_| corrupt());
    let be32 = |b: &[u8]| b.try_into().map(u32::from_be_bytes).map_err(|_| corrupt());
    match key.len() {
        8 => Ok(LogKey::Whole(be64(key)?)),
        16 => {
            let (index, parts, part) = (be64(&key[..8])?, be32(&key[8..12])?, be32(&key[12..])?);
            if parts < 2 || part >= parts {
                return Err(corrupt());
            }
            Ok(LogKey::Part { index, parts, part })
        }
        _ => Err(corrupt()),
    }
}

/// `value` in postcard.
pub(crate) fn encode<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>, StoreError> {
    // Serializing our own types into a vector fails only on a type postcard
    // cannot express, which would be a bug found by the first test.
    postcard::to_allocvec(value).map_err(|_| StoreError::Corrupt { what })
}

/// A value stored by [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|_| StoreError::Corrupt { what })
}
