//! Hazardous materials: raw ciphers, chosen nonces, chosen salts.
//!
//! Everything in this module lets the caller pick a nonce or a salt, which
//! the rest of sealkv never does: writer sessions draw a salt and hand out
//! counter nonces as single-use tickets, and an archive's keys draw their
//! own salt and number their own chunks. Sealing two messages under one key
//! and one nonce with AES-GCM or ChaCha20-Poly1305 gives away the XOR of the
//! plaintexts and lets anyone forge tags under that key; deriving two
//! archives' keys from one salt makes their chunk nonces collide.
//!
//! What this module is for: known-answer tests and benchmarks of a cipher,
//! a plugin that wraps a built-in cipher, interop with a format sealkv does
//! not define, and tests that need fixed bytes. Nothing sealkv writes to
//! disk goes through it.

use crate::aead::{Aead, AeadAlgorithm};
use crate::algorithm::{AlgorithmId, EncryptionAlgorithm};
use crate::archive::{ARCHIVE_SALT_LEN, ArchiveKeys};
use crate::error::CryptoError;
use crate::keys::{MasterKey, SecretKey};
use crate::provider::CryptoProvider;
use crate::session::NONCE_LEN;

/// A raw cipher for algorithm `id` of `provider`, keyed with `key`, that
/// seals under any nonce it is given (after the algorithm's self-test).
///
/// ```
/// use sealkv_crypto_envelope::{CryptoProvider, EncryptionAlgorithm, SecretKey, hazmat};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let key = SecretKey::from_bytes(&[7; 32])?;
/// let aead = hazmat::new_aead(&CryptoProvider::default(), EncryptionAlgorithm::Aes256Gcm.id(), &key)?;
/// let mut buf = b"page".to_vec();
/// let mut tag = [0u8; 16];
/// aead.seal_in_place_detached(&hazmat::nonce_for(1), b"aad", &mut buf, &mut tag)?;
/// aead.open_in_place_detached(&hazmat::nonce_for(1), b"aad", &mut buf, &tag)?;
/// assert_eq!(buf, b"page");
/// # Ok(())
/// # }
/// ```
pub fn new_aead(
    provider: &CryptoProvider,
    id: AlgorithmId,
    key: &SecretKey,
) -> Result<Box<dyn Aead>, CryptoError> {
    provider.new_aead(id, key)
}

/// [`new_aead`] for a built-in algorithm.
pub fn builtin(
    provider: &CryptoProvider,
    algorithm: EncryptionAlgorithm,
    key: &SecretKey,
) -> Result<Box<dyn Aead>, CryptoError> {
    provider.new_aead(algorithm.id(), key)
}

/// The factory of algorithm `id` in `provider`, after its self-test: it
/// builds raw ciphers like [`new_aead`].
pub fn aead_algorithm(
    provider: &CryptoProvider,
    id: AlgorithmId,
) -> Result<&dyn AeadAlgorithm, CryptoError> {
    provider.aead_algorithm(id)
}

/// The nonce sealkv's writer sessions use for counter `counter`:
/// `0x00000000 || counter` (u64, big-endian).
pub fn nonce_for(counter: u64) -> [u8; NONCE_LEN] {
    crate::session::nonce_for(counter)
}

/// An archive's keys derived from a chosen `salt` instead of a fresh one.
/// Two archives sealed with keys from one salt and one key reuse every
/// chunk nonce: only for tests that need fixed bytes.
pub fn archive_keys_with_salt(
    provider: &CryptoProvider,
    key: &MasterKey,
    salt: [u8; ARCHIVE_SALT_LEN],
) -> Result<ArchiveKeys, CryptoError> {
    ArchiveKeys::with_salt(provider, key, salt)
}
