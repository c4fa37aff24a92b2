//! The provider parts besides the ciphers: key derivation, MAC, password
//! hashing and the random source.
//!
//! A [`CryptoProvider`](crate::CryptoProvider) holds one of each, as trait
//! objects, like the ciphers: the default is RustCrypto's (`hkdf`, `hmac`,
//! `argon2`) and the operating system's random generator (`getrandom`); the
//! `ring` provider takes `ring`'s HKDF, HMAC and random generator (`ring` has
//! no Argon2id). A user swaps one part and keeps the rest, with
//! [`CryptoProvider::with_kdf`](crate::CryptoProvider::with_kdf) and its
//! siblings; each part passes its published known-answer vectors before it
//! is accepted.
//!
//! The algorithms are fixed, because the bytes on disk depend on them:
//! HKDF-SHA256, HMAC-SHA256 and Argon2id version 0x13. A part is another
//! implementation of the same function (a FIPS-validated module, a hardware
//! token), never another function: a database written with one provider
//! opens with any other.

use crate::keys::KdfParams;

/// Why a part could not compute its output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrimitiveError {
    /// An output length the function does not produce.
    #[error("unsupported output length")]
    OutputLength,
    /// Parameters the implementation refuses.
    #[error("parameters refused: {0}")]
    Parameters(&'static str),
    /// Not enough memory (the password hash's working memory).
    #[error("not enough memory")]
    OutOfMemory,
}

/// The random source failed. Carries no output bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the random source {source_name} failed: {reason}")]
pub struct RandomError {
    source_name: &'static str,
    reason: String,
}

impl RandomError {
    /// A failure of source `source_name`, for `reason` (never include
    /// output bytes).
    pub fn new(source_name: &'static str, reason: impl std::fmt::Display) -> Self {
        RandomError {
            source_name,
            reason: reason.to_string(),
        }
    }
}

/// HKDF-SHA256 (RFC 5869): every subkey sealkv derives.
pub trait Kdf: Send + Sync {
    /// A short name for `Debug` and error messages.
    fn name(&self) -> &'static str;

    /// Extracts with `salt` from `ikm`, then expands the concatenation of
    /// the `info` parts into `out` (1 to 8160 bytes).
    fn hkdf_sha256(
        &self,
        ikm: &[u8],
        salt: &[u8],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), PrimitiveError>;
}

/// HMAC-SHA256 (RFC 2104): the registry's key check and MAC, and the
/// archives' key check.
pub trait Mac: Send + Sync {
    /// A short name for `Debug` and error messages.
    fn name(&self) -> &'static str;

    /// The MAC under `key` (any length) of the concatenation of `parts`.
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32];

    /// `key` prepared for many MACs: HMAC's two pad states hashed once, so
    /// each MAC under it hashes only its data (a blind index tags one value
    /// per record under one key). `None`, the default, when the part
    /// cannot keep the states wiped on drop: callers then use
    /// [`Mac::hmac_sha256`] with the key each time. What it returns must
    /// give exactly [`Mac::hmac_sha256`]'s MACs (the self-test checks) and
    /// wipe its states when dropped: they are as secret as the key.
    fn keyed(&self, key: &[u8]) -> Option<Box<dyn KeyedMac>> {
        let _ = key;
        None
    }
}

/// HMAC-SHA256 under one key, its pad states hashed once ([`Mac::keyed`]).
/// Dropping it wipes them.
pub trait KeyedMac: Send + Sync {
    /// The MAC of the concatenation of `parts`.
    fn hmac_sha256(&self, parts: &[&[u8]]) -> [u8; 32];
}

/// Argon2id, version 0x13 (RFC 9106), without secret or associated data:
/// a master key from a passphrase.
pub trait PasswordHash: Send + Sync {
    /// A short name for `Debug` and error messages.
    fn name(&self) -> &'static str;

    /// Hashes `passphrase` under `salt` with `params` into `out`. The
    /// caller has checked `params` against sealkv's floor and ceiling; the
    /// self-test calls it with smaller, published parameters. Working
    /// memory holds values derived from the passphrase: wipe it before it
    /// is freed.
    fn argon2id(
        &self,
        passphrase: &[u8],
        salt: &[u8],
        params: KdfParams,
        out: &mut [u8],
    ) -> Result<(), PrimitiveError>;
}

/// A cryptographically secure random generator: every key, salt and
/// database id sealkv draws while it works through a provider.
pub trait SecureRandom: Send + Sync {
    /// A short name for `Debug` and error messages.
    fn name(&self) -> &'static str;

    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError>;
}
