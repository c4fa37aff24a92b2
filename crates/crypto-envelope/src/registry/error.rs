//! [`RegistryError`].

use sealkv_fileio::FileError;

use crate::algorithm::AlgorithmId;
use crate::error::CryptoError;
use crate::keys::{KeyError, KeyId};

/// Problems creating, opening or changing a key registry. No variant
/// carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The file is damaged: a structural check or the hash failed.
    #[error("key registry corrupt at offset {offset}: {what}")]
    Corruption {
        /// What is wrong.
        what: &'static str,
        /// Byte offset of the problem (0 when it concerns the whole file).
        offset: u64,
    },
    /// The master key does not open this registry (the key check failed).
    #[error("wrong master key for this key registry")]
    WrongKey,
    /// A passphrase was given for a raw-key registry, or the reverse.
    #[error("the registry was created with a {expected}, not a {given}")]
    KekKindMismatch {
        /// What the registry needs.
        expected: &'static str,
        /// What was given.
        given: &'static str,
    },
    /// The data key was retired: nothing sealed under it remains.
    #[error("data key {0} is retired")]
    KeyRetired(KeyId),
    /// The field key was destroyed: values sealed under it are gone.
    #[error("field key {0} was destroyed")]
    KeyDestroyed(KeyId),
    /// No key with this id.
    #[error("no key {0} in the registry")]
    UnknownKey(KeyId),
    /// A data key was asked for as a field key, or the reverse.
    #[error("key {0} is not a {1} key")]
    WrongPurpose(KeyId, &'static str),
    /// The active data key cannot be retired.
    #[error("data key {0} is the active one; rotate first")]
    ActiveKey(KeyId),
    /// The Argon2id cost recorded is outside the accepted range.
    #[error("the registry's passphrase cost is refused: {0}")]
    KdfCost(KeyError),
    /// The provider does not offer the algorithm a key names.
    #[error("algorithm {0} is not offered by the crypto provider")]
    UnknownAlgorithm(AlgorithmId),
    /// A format version this build does not read.
    #[error("key registry format version {0} is not supported")]
    UnsupportedVersion(u16),
    /// `create` found a registry already there.
    #[error("a key registry already exists at {}", .0.display())]
    AlreadyExists(std::path::PathBuf),
    /// The registry holds as many keys as it can.
    #[error("the key registry is full")]
    Exhausted,
    /// The master key could not be loaded or derived.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A cipher or randomness failure.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// I/O on the registry file.
    #[error(transparent)]
    Io(#[from] FileError),
}

impl RegistryError {
    pub(crate) fn corrupt(what: &'static str, offset: usize) -> Self {
        RegistryError::Corruption {
            what,
            offset: offset as u64,
        }
    }
}
