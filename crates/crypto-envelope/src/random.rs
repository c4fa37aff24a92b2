//! The default random source: the operating system's CSPRNG.
//!
//! Code that holds a [`CryptoProvider`](crate::CryptoProvider) draws from
//! the provider's random source
//! ([`CryptoProvider::fill_random`](crate::CryptoProvider::fill_random));
//! this is for the few constructors that take none
//! ([`SecretKey::random`](crate::SecretKey::random) for a new master key,
//! say).

use crate::error::CryptoError;
use crate::primitives::SecureRandom;

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    crate::rustcrypto::OsRandom
        .fill(buf)
        .map_err(CryptoError::Rng)
}
