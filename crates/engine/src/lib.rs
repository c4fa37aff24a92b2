#![doc = include_str!("../README.md")]
//!
//! # The API at a glance
//!
//! - Opening: [`Config`] (every option with its default; [`Config::open`]),
//!   [`Db::open`]; the directory's files: [`layout`].
//! - Data: [`Db::get`], [`Db::put`], [`Db::delete`], [`Db::write`] of a
//!   [`WriteBatch`], [`Db::iter`], [`Db::range`], [`Db::prefix`] (each a
//!   double-ended [`DbIter`]), [`Db::snapshot`] ([`Snapshot`]).
//! - Keys: [`Db::rekey`], [`Db::rotate_data_key`], [`Db::reencrypt`]
//!   ([`ReencryptReport`]), [`Db::key_coverage`]; field keys:
//!   [`Db::create_field_key`], [`Db::put_sealed`], [`Db::get_sealed`],
//!   [`Db::destroy_field_key`]; for values stored elsewhere
//!   [`Db::seal_field`], [`Db::open_field`], [`Db::blind_index_key`].
//! - Checking and watching: [`Db::verify`] ([`VerifyReport`] of
//!   [`Finding`]s), [`Db::stats`] ([`Stats`]).
//! - Backups: [`Db::backup_to`], [`Db::backup_with`] ([`BackupOptions`]).
//! - What goes wrong: [`Error`]; the layers' own types through [`crypto`],
//!   [`fileio`], [`wal`] and [`store`].

pub use sealkv_core_store as store;
pub use sealkv_core_wal as wal;
pub use sealkv_crypto_envelope as crypto;
pub use sealkv_fileio as fileio;

pub mod anchor;
mod backup;
mod batch;
mod blindkeys;
mod bulk;
mod compact;
mod config;
mod db;
mod errmap;
mod error;
mod fieldsessions;
mod fieldvalues;
mod flush;
mod freshness;
#[cfg(feature = "fuzzing")]
mod fuzz;
mod iter;
mod keycommit;
mod keyfilter;
mod keyops;
mod keys;
mod keyspace;
pub mod layout;
pub mod leftovers;
mod memtable;
mod merge;
mod meta;
mod open;
mod poison;
mod publish;
mod reencrypt;
mod snapshot;
mod stats;
mod storeglue;
mod tree;
mod txn;
mod verify;
mod walglue;
mod write;

pub use backup::{BackupOptions, BackupProgress, BackupReport};
pub use batch::{MAX_BATCH_LEN, MAX_VALUE_LEN, WriteBatch};
pub use config::{Config, DEFAULT_CACHE_SIZE, DEFAULT_TRANSACTION_RETRIES, RecoveryMode, SyncMode};
pub use db::Db;
pub use error::Error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use fuzz::{FuzzOptions, FuzzRun, OpRecord, fuzz_ops, fuzz_ops_with};
pub use iter::DbIter;
pub use keyspace::{Keyspace, MAX_KEYSPACE_NAME_LEN};
pub use poison::PoisonCause;
pub use reencrypt::{DataKeyCoverage, KeyCoverage, ReencryptProgress, ReencryptReport};
pub use sealkv_core_store::CompactReport;
pub use sealkv_core_wal::Durability;
pub use snapshot::Snapshot;
pub use stats::{EncryptionStatus, Stats};
pub use txn::{CompareAndSwapError, EntryRef, Transaction, TxnIter, TxnReader};
pub use verify::{Finding, VerifyReport};
