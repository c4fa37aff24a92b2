//! The WAL's error type.

use std::sync::Arc;

use sealkv_crypto_envelope::{AlgorithmId, CryptoError, KeyId};
use sealkv_fileio::FileError;

/// Everything that can go wrong opening, replaying or appending to the log.
///
/// Variants about a segment name it by number (its file is
/// `{segment:020}.wal` in the log directory) and, for damage, the byte
/// offset inside it. No variant carries key material or record contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A record or header failed authentication or a structural check where
    /// the recovery mode does not allow cutting or skipping it.
    #[error("WAL corruption in segment {segment} at offset {offset}: {what}")]
    Corruption {
        /// Segment number.
        segment: u64,
        /// Byte offset in the segment file.
        offset: u64,
        /// What was wrong.
        what: &'static str,
    },
    /// An earlier write or fsync failed: the log accepts no appends until it
    /// is reopened (whether the failed writes reached the disk is unknown).
    #[error("the WAL is poisoned by an earlier failure; reopen it: {cause}")]
    Poisoned {
        /// The failure that poisoned the log.
        #[source]
        cause: Arc<Error>,
    },
    /// A segment belongs to another database.
    #[error("WAL segment {segment} belongs to another database")]
    WrongDatabase {
        /// Segment number (0 when the keyring and options disagree).
        segment: u64,
    },
    /// A segment was sealed with another algorithm than its data key has.
    /// Recovery does not return it: the header's algorithm field is not
    /// authenticated when it would be checked, so a key of another
    /// algorithm shows as a header that fails its tag ([`Error::Corruption`]).
    #[error("WAL segment {segment} names algorithm {found}, its data key is {expected}")]
    AlgorithmMismatch {
        /// Segment number.
        segment: u64,
        /// Algorithm in the segment header.
        found: AlgorithmId,
        /// Algorithm of the data key.
        expected: AlgorithmId,
    },
    /// A segment is sealed under a data key the keyring does not hold.
    #[error("WAL segment {segment} is sealed under data key {dek}, which the keyring lacks")]
    MissingKey {
        /// Segment number.
        segment: u64,
        /// The data key named in its header.
        dek: KeyId,
    },
    /// The log is encrypted and was opened without a keyring.
    #[error("WAL segment {segment} is encrypted; open the log with its keyring")]
    EncryptedLog {
        /// Segment number.
        segment: u64,
    },
    /// A keyring was given but the log is plaintext.
    #[error("WAL segment {segment} is plaintext, but a keyring was given")]
    PlaintextLog {
        /// Segment number.
        segment: u64,
    },
    /// A batch too large for one record.
    #[error("a batch of {len} bytes exceeds the record limit of {max} bytes")]
    RecordTooLarge {
        /// Encoded size of the batch.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The log was closed.
    #[error("the WAL is closed")]
    Closed,
    /// A write through a handle opened by another process: this one is a
    /// child forked after the open, which must open the log itself.
    #[error(
        "the WAL was opened by process {opened_by}; process {current} (forked after the open) must open it itself to write"
    )]
    ForkedProcess {
        /// The process that opened the log.
        opened_by: u32,
        /// The process that tried to write.
        current: u32,
    },
    /// The options are inconsistent.
    #[error("invalid WAL options: {0}")]
    InvalidOptions(&'static str),
    /// The replay callback refused a batch.
    #[error("the replay callback failed at sequence {seq}: {source}")]
    Replay {
        /// Sequence number of the batch.
        seq: u64,
        /// The callback's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Sealing failed (for example, the writer session ran out of nonces).
    #[error("sealing a WAL record failed: {0}")]
    Crypto(#[from] CryptoError),
    /// An I/O error, with its file and operation.
    #[error(transparent)]
    Io(#[from] FileError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
