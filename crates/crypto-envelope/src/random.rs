//! The OS CSPRNG, the only source of key material and salts.

use crate::error::CryptoError;

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(CryptoError::Rng)
}
