//! The default random source, the operating system's CSPRNG, and the salts
//! sealkv draws.
//!
//! Code that holds a [`CryptoProvider`] draws keys from the provider's
//! random source ([`CryptoProvider::fill_random`]); [`fill`] is for the few
//! constructors that take none ([`SecretKey::random`](crate::SecretKey::random)
//! for a new master key, say).
//!
//! Salts are drawn differently: a writer session's salt, a randomized field
//! value's salt, an archive's salt and a passphrase's Argon2id salt are the
//! provider's random bytes XOR the operating system's. A salt is what keeps
//! two writer sessions (or two archives, or two field values) from sealing
//! under one subkey at one counter, so it must be fresh even when a
//! provider's random source is not: a deterministic generator seeded the
//! same way in every process, or cloned by a `fork`, passes the random
//! source's self-test (its draws differ from one another) yet would give
//! the first session of every process one salt. XOR with an independent
//! draw is uniform if either draw is, so mixing never weakens a good source.

use crate::error::CryptoError;
use crate::primitives::SecureRandom;
use crate::provider::CryptoProvider;

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    crate::rustcrypto::OsRandom
        .fill(buf)
        .map_err(CryptoError::Rng)
}

/// A fresh salt: `provider`'s random bytes XOR the operating system's (the
/// module docs say why).
pub(crate) fn salt<const N: usize>(provider: &CryptoProvider) -> Result<[u8; N], CryptoError> {
    let mut salt = [0u8; N];
    provider.fill_random(&mut salt)?;
    let mut os = [0u8; N];
    fill(&mut os)?;
    for (s, o) in salt.iter_mut().zip(os) {
        *s ^= o;
    }
    Ok(salt)
}
