//! The errors of the page store.

use sealkv_crypto_envelope::CryptoError;
use sealkv_fileio::FileError;

/// Everything that can go wrong in the page store.
///
/// Page numbers name the page at fault (page 0 is the file header, 1 and 2
/// the meta slots). No variant carries key material or page contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A page failed authentication (or its checksum) or a structural check.
    #[error("page file corrupt at page {page}: {what}")]
    Corruption {
        /// The bad page.
        page: u64,
        /// What is wrong with it.
        what: String,
    },
    /// A page authenticates but is not the version its parent (or the meta
    /// page) expects: an older copy was put back. Tampering, not bit rot.
    #[error("page {page} is a stale but validly sealed version (rollback)")]
    Rollback {
        /// The replaced page.
        page: u64,
    },
    /// A value longer than [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN).
    #[error("value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A key longer than [`Store::max_key_len`](crate::Store::max_key_len).
    #[error("key of {len} bytes exceeds the limit of {max} bytes for this page size")]
    KeyTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Application metadata longer than [`MAX_APP_META`](crate::MAX_APP_META).
    #[error("application metadata of {len} bytes exceeds {max} bytes")]
    AppMetaTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A page size that is not a power of two from 4 KiB to 64 KiB.
    #[error("page size {0} is not a power of two from 4096 to 65536")]
    InvalidPageSize(u32),
    /// The file's format version is not one this build reads.
    #[error("page file format version {0} is not supported")]
    UnsupportedVersion(u16),
    /// The store was opened read-only.
    #[error("the store is open read-only")]
    ReadOnly,
    /// A write through a handle opened by another process: this one is a
    /// child forked after the open, which must open the store itself.
    #[error(
        "the page file was opened by process {opened_by}; process {current} (forked after the open) must open it itself to write"
    )]
    ForkedProcess {
        /// The process that opened the store.
        opened_by: u32,
        /// The process that tried to write.
        current: u32,
    },
    /// Another handle or process holds the file's lock.
    #[error("the page file is locked by another handle or process")]
    Locked,
    /// This thread already holds the store's write transaction.
    #[error("this thread already holds the write transaction")]
    WriteInProgress,
    /// An earlier write or fsync failed; the store takes no more writes until
    /// it is reopened (the outcome of that commit is unknown).
    #[error("an earlier write failed; reopen the store")]
    Poisoned,
    /// The file belongs to another database.
    #[error("the page file belongs to another database")]
    WrongDatabase,
    /// The file was sealed with another algorithm than the active key's.
    #[error("the page file uses algorithm {file}, the active data key uses {key}")]
    AlgorithmMismatch {
        /// The file's algorithm id.
        file: u16,
        /// The key's algorithm id.
        key: u16,
    },
    /// A page's clear header names a data key the keyring does not hold.
    /// The id is read before anything authenticates it: a damaged header
    /// and a keyring from an older registry look alike here.
    #[error("page {page} names data key {dek}, which the keyring does not hold")]
    MissingKey {
        /// The page.
        page: u64,
        /// The data key its header names.
        dek: sealkv_crypto_envelope::KeyId,
    },
    /// The store is encrypted and was opened without a keyring.
    #[error("the page file is encrypted; a keyring is required")]
    EncryptedStore,
    /// A keyring was given for a plaintext store.
    #[error("the page file is not encrypted, but a keyring was given")]
    NotEncrypted,
    /// Sealing failed (no active key, exhausted session, RNG failure).
    #[error("sealing failed: {0}")]
    Crypto(#[from] CryptoError),
    /// An I/O error, with its path and operation.
    #[error(transparent)]
    Io(#[from] FileError),
}

impl StoreError {
    pub(crate) fn corrupt(page: u64, what: impl Into<String>) -> Self {
        StoreError::Corruption {
            page,
            what: what.into(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
