//! How records are stored: log entries under their index as an 8-byte
//! big-endian key (so key order is log order), values in postcard.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

/// The key of log index `index`.
pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The index a log key names.
pub(crate) fn key_index(key: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::Corrupt { what: "log key" })?;
    Ok(u64::from_be_bytes(bytes))
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
