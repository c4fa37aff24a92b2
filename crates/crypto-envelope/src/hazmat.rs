//! Hazardous materials: raw ciphers, chosen nonces, chosen salts.
//!
//! Everything in this module lets the caller pick a nonce or a salt, which
//! the rest of sealkv never does: writer sessions draw a salt and hand out
//! counter nonces as single-use tickets, an archive's keys draw their own
//! salt and number their own chunks, and a passphrase is stretched under a
//! salt drawn for what it seals. Sealing two messages under one key and one
//! nonce with AES-GCM or ChaCha20-Poly1305 gives away the XOR of the
//! plaintexts and lets anyone forge tags under that key; deriving two
//! archives' keys from one salt makes their chunk nonces collide; one
//! passphrase salt for many users lets one precomputed table guess all of
//! their passphrases.
//!
//! What this module is for: known-answer tests and benchmarks of a cipher,
//! a plugin that wraps a built-in cipher, interop with a format sealkv does
//! not define, tests that need fixed bytes, and reading a header that
//! records a passphrase's salt (the archive reader does). Nothing sealkv
//! writes to disk goes through it.
//!
//! Outside this module nothing takes a caller's salt for a passphrase: the
//! key types have no such constructor, and a
//! [`KeySource`](crate::KeySource) gives a passphrase's key only under a
//! salt it draws itself
//! ([`KeySource::resolve_new`](crate::KeySource::resolve_new)). Neither of
//! these compiles:
//!
//! ```compile_fail
//! use sealkv_crypto_envelope::{KdfParams, MasterKey, Passphrase};
//!
//! let passphrase = Passphrase::new("correct horse").unwrap();
//! let _ = MasterKey::from_passphrase(&passphrase, &[0; 32], KdfParams::FLOOR);
//! ```
//!
//! ```compile_fail
//! use sealkv_crypto_envelope::{CryptoProvider, KdfParams, KeySource, Passphrase};
//!
//! let source = KeySource::passphrase(Passphrase::new("correct horse").unwrap());
//! let provider = CryptoProvider::default();
//! let _ = source.resolve_with(&provider, Some((&[0; 32], KdfParams::FLOOR)));
//! ```

use crate::aead::{Aead, AeadAlgorithm};
use crate::algorithm::{AlgorithmId, EncryptionAlgorithm};
use crate::archive::{ARCHIVE_SALT_LEN, ArchiveKeys};
use crate::error::CryptoError;
use crate::keys::{KdfParams, KeyError, MasterKey, Passphrase, SecretKey};
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
/// builds raw ciphers like [`new_aead`], checked against the answers the
/// self-test saw and wiping the buffer after a failed open (a refusal is
/// [`AeadError::InvalidLength`](crate::AeadError::InvalidLength)).
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

/// The master key `passphrase` gives under a chosen `salt` and cost
/// `params`, stretched with `provider`'s Argon2id (a cost outside
/// [`KdfParams::FLOOR`]..=[`KdfParams::CEILING`] is refused).
///
/// For reading what a header records (the salt and cost written beside an
/// archive sealed under a passphrase, say). For something new, never pick
/// the salt: [`KeySource::resolve_new`](crate::KeySource::resolve_new)
/// draws one and returns it to be recorded.
///
/// ```
/// use sealkv_crypto_envelope::archive::{ArchiveKeys, ArchiveReadKeys};
/// use sealkv_crypto_envelope::{CryptoProvider, KdfParams, KeySource, Passphrase, hazmat};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let provider = CryptoProvider::default();
/// let passphrase = Passphrase::new("correct horse battery staple")?;
/// let source = KeySource::Passphrase { passphrase: passphrase.clone(), params: KdfParams::FLOOR };
/// // Writing: the salt is drawn, and recorded beside what the key seals.
/// let (key, kdf) = source.resolve_new(&provider)?;
/// let kdf = kdf.expect("a passphrase has a KDF");
/// let archive = ArchiveKeys::generate(&provider, &key)?;
/// let check = archive.key_check(b"header");
/// // Reading: the recorded salt gives the same key.
/// let again = hazmat::master_key_from_passphrase(&provider, &passphrase, &kdf.salt, kdf.params)?;
/// let read = ArchiveReadKeys::derive(&provider, &again, archive.salt())?;
/// assert!(read.verify_key_check(b"header", &check));
/// # Ok(())
/// # }
/// ```
pub fn master_key_from_passphrase(
    provider: &CryptoProvider,
    passphrase: &Passphrase,
    salt: &[u8; 32],
    params: KdfParams,
) -> Result<MasterKey, KeyError> {
    MasterKey::from_passphrase_with(provider, passphrase, salt, params)
}
