//! sealkv's write-ahead log: numbered segments of sealed records, group
//! commit, sync modes and honest recovery.
//!
//! Every write of the engine lands here first, as one record per [`Batch`]
//! with a dense sequence number ([`Seq`]). With a keyring, each record is
//! sealed in place with the AEAD of the writer session's WAL subkey (a new
//! session, with a fresh salt, for every open), its AAD binding the database
//! id, segment number, session, sequence number, format version, algorithm
//! and data key, so a record that is dropped, duplicated, reordered or
//! spliced from elsewhere fails to open. Without a keyring the same layout
//! carries a CRC32C instead of a tag.
//!
//! - [`Wal::append`] returns once the record is durable per the
//!   [`SyncMode`]; concurrent appenders seal in parallel and share one write
//!   and one fsync (group commit).
//! - A failed write or fsync poisons the log: every waiting caller gets the
//!   error and later appends get [`Error::Poisoned`] until it is reopened.
//! - [`Wal::open`] replays valid records in order and applies the
//!   [`RecoveryMode`] to damage: a torn tail is cut durably and reported in
//!   the [`RecoveryReport`]; damage that was provably fsynced is
//!   [`Error::Corruption`] unless a lenient mode was chosen.
//! - [`Wal::roll`] starts a new segment; [`Wal::retire`] removes segments a
//!   flush made obsolete; [`Wal::new_session`] moves to a new writer session
//!   (after a data-key rotation, and by itself when a session has spent its
//!   2^32 nonces).
//!
//! All file access goes through [`sealkv_fileio::Vfs`]. The on-disk format
//! is in `docs/FORMAT.md`, the semantics in `docs/WAL.md`.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use sealkv_core_wal::{Batch, Seq, Wal, WalOptions};
//! use sealkv_crypto_envelope::{
//!     CryptoProvider, DataKey, DbId, EncryptionAlgorithm, KeyId, Keyring, SecretKey,
//! };
//! use sealkv_fileio::{SimVfs, Vfs};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let db_id = DbId::random()?;
//! let keyring = Arc::new(Keyring::new(db_id, Arc::new(CryptoProvider::default())));
//! keyring.insert(DataKey::new(KeyId(1), EncryptionAlgorithm::Aes256Gcm.id(), SecretKey::random()?));
//! keyring.set_active(KeyId(1))?;
//! let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new());
//! let options = WalOptions::new(db_id).sealed(keyring);
//!
//! let (wal, _report) = Wal::open(vfs.clone(), "/db/wal", options.clone(), |_, _| {
//!     Ok::<(), std::io::Error>(())
//! })?;
//! let mut batch = Batch::new();
//! batch.put(b"key", b"value").delete(b"old");
//! assert_eq!(wal.append(&batch)?, Seq(1));
//! wal.close()?;
//!
//! let mut seen = Vec::new();
//! let (_wal, report) = Wal::open(vfs, "/db/wal", options, |seq, batch| {
//!     seen.push((seq, batch));
//!     Ok::<(), std::io::Error>(())
//! })?;
//! assert_eq!(seen, vec![(Seq(1), batch)]);
//! assert_eq!(report.records_replayed, 1);
//! # Ok(())
//! # }
//! ```

mod batch;
mod error;
mod format;
#[cfg(feature = "fuzzing")]
mod fuzz;
mod options;
mod reader;
mod recovery;
mod seal;
mod wal;

pub use batch::{Batch, BatchError, BatchIter, BatchOp};
pub use error::{Error, Result};
pub use format::segment_path;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use fuzz::{fuzz_replay, fuzz_replay_one_mode};
pub use options::{
    DEFAULT_SEGMENT_SIZE, RecoveryMode, RecoveryReport, Seq, Skipped, SyncMode, TornTail,
    WalOptions, WalStats,
};
pub use wal::Wal;
