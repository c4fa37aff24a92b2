//! The default random source, the operating system's CSPRNG, and how sealkv
//! draws keys, ids and salts.
//!
//! Code that holds a [`CryptoProvider`] draws every key, id and salt with
//! [`mixed_fill`]: the provider's random bytes XOR the operating system's.
//! [`fill`] is for the few constructors that take no provider
//! ([`SecretKey::random`](crate::SecretKey::random) for a new master key,
//! say).
//!
//! Why mix: a writer session's salt keeps two sessions from sealing under
//! one subkey at one counter, and a data key, a field key or a database id
//! must be unpredictable, so each must be fresh even when a provider's
//! random source is not. A deterministic generator seeded the same way in
//! every process, or cloned by a `fork`, passes the random source's
//! self-test (its draws differ from one another) yet would give the first
//! session of every process one salt and every new database one key. XOR
//! with an independent draw is uniform if either draw is, so mixing never
//! weakens a good source.

use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::primitives::SecureRandom;
use crate::provider::CryptoProvider;

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    crate::rustcrypto::OsRandom
        .fill(buf)
        .map_err(CryptoError::Rng)
}

/// Fills `buf` with `provider`'s random bytes XOR the operating system's
/// (the module docs say why): what every key, id and salt sealkv draws is
/// made of. The operating system's share is wiped once mixed in.
pub fn mixed_fill(provider: &CryptoProvider, buf: &mut [u8]) -> Result<(), CryptoError> {
    provider.fill_random(buf)?;
    let mut os = Zeroizing::new([0u8; 64]);
    for chunk in buf.chunks_mut(64) {
        let os = &mut os[..chunk.len()];
        fill(os)?;
        for (b, o) in chunk.iter_mut().zip(os.iter()) {
            *b ^= o;
        }
    }
    Ok(())
}

/// A fresh salt drawn with [`mixed_fill`].
pub(crate) fn salt<const N: usize>(provider: &CryptoProvider) -> Result<[u8; N], CryptoError> {
    let mut salt = [0u8; N];
    mixed_fill(provider, &mut salt)?;
    Ok(salt)
}
