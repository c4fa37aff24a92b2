//! [`RegistryError`]: what can go wrong creating, opening, changing or
//! storing a key registry.

use std::path::PathBuf;

use sealkv_fileio::FileError;

use crate::algorithm::AlgorithmId;
use crate::error::CryptoError;
use crate::ids::DbId;
use crate::keys::{KeyError, KeyId};

use super::{KekKind, KeyPurpose};

/// Errors of the key registry.
///
/// No variant carries key material, and none is formatted from it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The registry bytes are damaged or malformed: a bad magic, a length
    /// that does not add up, a hash mismatch, a MAC mismatch, a field with an
    /// impossible value, or a wrapped key that does not open.
    #[error("key registry is corrupt at offset {offset}: {what}")]
    Corruption {
        /// What failed.
        what: &'static str,
        /// Byte offset in the registry of the part that failed.
        offset: u64,
    },
    /// The master key (KEK) is not the one this registry was made with: the
    /// key-check value does not match.
    #[error("wrong master key: it does not open this key registry")]
    WrongKey,
    /// A passphrase was given for a registry made with a raw key, or the
    /// other way round.
    #[error("the registry's master key is a {registry}, but a {given} was given")]
    KekKindMismatch {
        /// What the registry records.
        registry: KekKind,
        /// What was given.
        given: KekKind,
    },
    /// The data key was retired: its material is gone from the registry.
    #[error("data key {0} is retired")]
    KeyRetired(KeyId),
    /// The field key was destroyed: its material is gone for good.
    #[error("field key {0} was destroyed")]
    KeyDestroyed(KeyId),
    /// No key with this id was ever in the registry.
    #[error("no key {0} in the registry")]
    UnknownKey(KeyId),
    /// The key exists but serves the other purpose.
    #[error("key {id} is a {actual} key, not a {expected} key")]
    WrongPurpose {
        /// The key.
        id: KeyId,
        /// The purpose the operation needs.
        expected: KeyPurpose,
        /// The key's purpose.
        actual: KeyPurpose,
    },
    /// The operation is refused for the active data key (rotate first).
    #[error("data key {0} is the active data key; rotate before retiring it")]
    ActiveKey(KeyId),
    /// Passphrase KDF cost below the floor or above the ceiling (also when
    /// read from a registry: a tampered header cannot weaken the KDF or make
    /// opening allocate gigabytes).
    #[error("passphrase KDF cost refused")]
    KdfCost(#[source] KeyError),
    /// The crypto provider does not offer this algorithm.
    #[error("algorithm {algorithm} is not offered by the crypto provider")]
    UnknownAlgorithm {
        /// The algorithm id.
        algorithm: AlgorithmId,
    },
    /// The registry was written by a format version this build cannot read.
    #[error("key registry format version {0} is not supported (this build reads versions 1 and 2)")]
    UnsupportedVersion(u16),
    /// The registry file exists already.
    #[error("key registry {} exists already", .0.display())]
    AlreadyExists(PathBuf),
    /// The registry belongs to another database than the keyring.
    #[error("key registry of database {registry} cannot fill the keyring of database {keyring}")]
    DbMismatch {
        /// The registry's database.
        registry: DbId,
        /// The keyring's database.
        keyring: DbId,
    },
    /// Key ids or the generation number are exhausted (2^32 keys, 2^64
    /// changes).
    #[error("key registry {0} exhausted")]
    Exhausted(&'static str),
    /// An I/O error on the registry file.
    #[error(transparent)]
    Io(#[from] FileError),
    /// A cryptographic operation failed (RNG, cipher construction).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The master key could not be obtained (key provider, passphrase).
    #[error(transparent)]
    Key(#[from] KeyError),
}
