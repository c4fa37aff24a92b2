//! sealkv: an embedded key-value storage engine with encryption at rest.
//!
//! Open a directory, write and read byte keys and values, iterate ranges
//! both ways, take consistent snapshots. With `encrypt_at_rest` on, every
//! byte the engine writes — WAL, pages, metadata, the key registry — is
//! sealed with an AEAD; the API is the same either way.
//!
//! ```
//! use sealkv::{Config, Db, WriteBatch};
//! use sealkv::crypto::MasterKey;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let key = MasterKey::from_hex(&"42".repeat(32))?;
//! let db = Db::open_with_config(Config::new(dir.path()).encryption_key(key.clone()))?;
//!
//! let mut batch = WriteBatch::new();
//! batch.put(b"user/1", b"ada").put(b"user/2", b"grace");
//! db.write(&batch)?;
//! let users: Vec<_> = db.prefix(b"user/")?.collect::<Result<_, _>>()?;
//! assert_eq!(users.len(), 2);
//! db.close()?;
//!
//! // Without the key, the database does not open.
//! assert!(matches!(
//!     Db::open(dir.path()),
//!     Err(sealkv::Error::EncryptedDatabase)
//! ));
//! # Ok(())
//! # }
//! ```
//!
//! The layers below are crates of their own: [`crypto`]
//! (`sealkv-crypto-envelope`: ciphers, keys, the key registry), the
//! write-ahead log (`sealkv-core-wal`) and the page file (`sealkv-core-store`).

pub use sealkv_crypto_envelope as crypto;

pub mod anchor;
mod backup;
mod batch;
mod config;
mod db;
mod errmap;
mod error;
mod flush;
mod freshness;
#[cfg(feature = "fuzzing")]
mod fuzz;
mod iter;
mod keycommit;
mod keyops;
mod keys;
mod memtable;
mod merge;
mod meta;
mod open;
mod publish;
mod reencrypt;
mod snapshot;
mod stats;
mod storeglue;
mod tree;
mod verify;
mod walglue;

pub use backup::{BackupOptions, BackupProgress, BackupReport};
pub use batch::{MAX_BATCH_LEN, MAX_VALUE_LEN, WriteBatch};
pub use config::{Config, DEFAULT_CACHE_SIZE, RecoveryMode, SyncMode};
pub use db::Db;
pub use error::Error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use fuzz::{FuzzOptions, FuzzRun, OpRecord, fuzz_ops, fuzz_ops_with};
pub use iter::DbIter;
pub use reencrypt::{DataKeyCoverage, KeyCoverage, ReencryptProgress, ReencryptReport};
pub use snapshot::Snapshot;
pub use stats::{EncryptionStatus, Stats};
pub use verify::{Finding, VerifyReport};
