//! [`Error`]: everything that can go wrong opening or using a database.

use std::path::PathBuf;

use sealkv_crypto_envelope::{AlgorithmId, CryptoError, KeyError, KeyId};
use sealkv_fileio::FileError;

use crate::poison::PoisonCause;

/// Errors of the engine. None carries key material.
///
/// The variants a user is expected to act on come first: a key problem, a
/// damaged file, a locked database. Errors from the layers below keep their
/// detail in the `Wal`, `Store` and `Registry` variants, but the cases that
/// matter (wrong key, corruption, rollback) are lifted to the variants of
/// their own, so `matches!(e, Error::WrongKey)` works whichever file told.
///
/// Every type a variant carries can be named through this crate's
/// re-exports ([`crate::crypto`], [`crate::fileio`], [`crate::wal`],
/// [`crate::store`]), so a caller matches every case without depending on
/// the layers:
///
/// ```
/// fn explain(e: &sealkv::Error) -> String {
///     match e {
///         sealkv::Error::Io(io) => format!("I/O on {}", io.path.display()),
///         sealkv::Error::Wal(sealkv::wal::Error::RecordTooLarge { len, .. }) => {
///             format!("a batch of {len} bytes")
///         }
///         sealkv::Error::Store(sealkv::store::StoreError::ReadOnly) => "read-only".into(),
///         sealkv::Error::Key(sealkv::crypto::KeyError::EmptyPassphrase) => "empty".into(),
///         other => other.to_string(),
///     }
/// }
/// # let _ = explain;
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Encryption at rest is on and no key was given.
    #[error("encrypt_at_rest is on but no encryption key was given")]
    MissingKey,
    /// The database is encrypted and was opened without a key.
    #[error("the database is encrypted: open it with its encryption key")]
    EncryptedDatabase,
    /// The key does not open the database's key registry.
    #[error("wrong encryption key for this database")]
    WrongKey,
    /// The database is plaintext and the configuration asks for encryption.
    #[error(
        "the database at {} is not encrypted; to encrypt it, export it and import the export into a new encrypted database (`sealkv export` / `sealkv import`)",
        path.display()
    )]
    PlaintextDatabase {
        /// The database directory.
        path: PathBuf,
    },
    /// The configuration names another algorithm than the database's.
    #[error(
        "the database is sealed with {database}, the configuration asks for {config}; changing algorithm is a migration (export and import)"
    )]
    AlgorithmMismatch {
        /// The database's algorithm.
        database: AlgorithmId,
        /// The configured algorithm.
        config: AlgorithmId,
    },
    /// Another process (or another `Db` in this one) holds the database.
    #[error("the database at {} is locked by another process or handle", path.display())]
    Locked {
        /// The database directory.
        path: PathBuf,
    },
    /// A backup's destination exists and replacing it was not asked for.
    #[error("{} already exists; refusing to overwrite it", path.display())]
    DestinationExists {
        /// The destination.
        path: PathBuf,
    },
    /// The directory holds no database, and creating one was not asked for.
    #[error("no database at {}", path.display())]
    NotFound {
        /// The directory.
        path: PathBuf,
    },
    /// The options contradict each other or are out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The operation needs a database encrypted at rest, and this one is
    /// plaintext: it has no data key to rotate and nothing to re-encrypt.
    #[error(
        "{operation} needs a database encrypted at rest, and this one is plaintext; to encrypt it, export it and import the export into a new encrypted database (`sealkv export` / `sealkv import`)"
    )]
    NotEncrypted {
        /// The operation refused (`rotate_data_key`, `reencrypt`).
        operation: &'static str,
    },
    /// A value sealed with deterministic field encryption was read without
    /// the field id it was sealed for.
    #[error("a deterministically sealed value needs its field id to be opened")]
    MissingFieldId,
    /// A backup destination that cannot be one: it has no directory name,
    /// is a symbolic link, or lies inside the database directory (or holds
    /// it).
    #[error("backup destination {}: {reason}", path.display())]
    InvalidDestination {
        /// The destination given.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A file failed authentication or a structural check.
    #[error("corruption in {}: {what}", file.display())]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// What is wrong, where (offset or page).
        what: String,
    },
    /// An authenticated record shows a newer state than the one presented:
    /// a page that authenticates but is not the version its parent
    /// expects, a key registry older than the page file records, or a
    /// directory older than its freshness anchor. An older copy was put
    /// back (tampering, not bit rot).
    #[error("rollback detected in {}: {what}", file.display())]
    Rollback {
        /// The file (or the database directory, for a whole-directory
        /// rollback).
        file: PathBuf,
        /// What was put back, and the evidence.
        what: String,
    },
    /// A write failed to be made durable: the database accepts no writes
    /// until it is reopened.
    ///
    /// `outcome_unknown` is true for the operation that hit the failure
    /// (its batch may or may not be found after reopening: check), false
    /// for an operation refused because an earlier one failed (it was not
    /// applied). `cause` is that first failure, with its OS error.
    #[error("{}", poisoned_message(cause, *outcome_unknown))]
    Poisoned {
        /// The first failure.
        cause: PoisonCause,
        /// Whether this operation's own writes may have reached the disk.
        outcome_unknown: bool,
    },
    /// A transaction read something that a batch committed after its
    /// snapshot changed: nothing of it was written. Run it again (as
    /// [`Db::transaction`](crate::Db::transaction) does).
    #[error(
        "the transaction conflicts with a write committed after its snapshot; nothing was written"
    )]
    Conflict,
    /// The keyspace was dropped; its handles no longer work.
    #[error("keyspace {name:?} was dropped")]
    KeyspaceDropped {
        /// Its name.
        name: String,
    },
    /// No keyspace of that name (a read-only database cannot create one).
    #[error("no keyspace {name:?} in this database")]
    KeyspaceNotFound {
        /// The name asked for.
        name: String,
    },
    /// A keyspace name that is empty or too long.
    #[error("a keyspace name must be 1 to {max} bytes, not {len}")]
    InvalidKeyspaceName {
        /// Its length in bytes.
        len: usize,
        /// The longest name allowed.
        max: usize,
    },
    /// A keyspace handle of another database (or an earlier open of this
    /// one) was used.
    #[error("keyspace {name:?} belongs to another open database")]
    ForeignKeyspace {
        /// Its name.
        name: String,
    },
    /// The files were written in a format this version does not read.
    #[error(
        "{} is in format {found}, this version of sealkv reads format {supported}: {advice}",
        file.display()
    )]
    UnsupportedFormat {
        /// The file.
        file: PathBuf,
        /// Its format version.
        found: u32,
        /// The version this build reads.
        supported: u32,
        /// What to do about it.
        advice: &'static str,
    },
    /// The database was opened read-only.
    #[error("the database is open read-only")]
    ReadOnly,
    /// The database was closed.
    #[error("the database is closed")]
    Closed,
    /// A write through a handle opened by another process: this process is
    /// a child forked after the open. It holds copies of the handle's
    /// writer sessions and file positions, so writing would reuse nonces
    /// and race the parent. Nothing was written. The child drops the
    /// inherited handle (which then writes nothing) and opens the database
    /// itself once the parent has closed its own.
    #[error(
        "this handle was opened by process {opened_by}; process {current}, forked after the open, must open the database itself to write"
    )]
    ForkedProcess {
        /// The process that opened the handle.
        opened_by: u32,
        /// The process that tried to write.
        current: u32,
    },
    /// A key or value exceeds the limits.
    #[error("{what} of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// "key" or "value".
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A data or field key id the registry does not hold.
    #[error("key {0} is unknown to this database")]
    UnknownKey(KeyId),
    /// A field key was destroyed: the values sealed under it are gone.
    #[error("field key {0} was destroyed; values sealed under it cannot be read")]
    KeyDestroyed(KeyId),
    /// A key could not be loaded or derived.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A cipher or randomness failure.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A field-sealed value could not be opened.
    #[error(transparent)]
    Field(#[from] sealkv_crypto_envelope::field::FieldError),
    /// The key registry failed.
    #[error(transparent)]
    Registry(sealkv_crypto_envelope::registry::RegistryError),
    /// The write-ahead log failed.
    #[error(transparent)]
    Wal(sealkv_core_wal::Error),
    /// The page file failed.
    #[error(transparent)]
    Store(sealkv_core_store::StoreError),
    /// The freshness anchor could not be read or updated, is damaged, or
    /// records another database.
    #[error(transparent)]
    Anchor(crate::anchor::AnchorError),
    /// An I/O error, with its path.
    #[error(transparent)]
    Io(#[from] FileError),
}

impl From<crate::anchor::AnchorError> for Error {
    fn from(e: crate::anchor::AnchorError) -> Self {
        match e {
            crate::anchor::AnchorError::Io(e) => Error::Io(e),
            other => Error::Anchor(other),
        }
    }
}

fn poisoned_message(cause: &PoisonCause, outcome_unknown: bool) -> String {
    if outcome_unknown {
        format!(
            "the write failed and its outcome is unknown: it may or may not be applied (reopen the database and check); no more writes are accepted until it is reopened. Cause: {cause}"
        )
    } else {
        format!(
            "the database stopped accepting writes after a failed write or fsync; reopen it. Cause: {cause}"
        )
    }
}
