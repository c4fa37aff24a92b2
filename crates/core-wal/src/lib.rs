#![doc = include_str!("../README.md")]
//!
//! # The API at a glance
//!
//! - The log: [`Wal::open`], [`Wal::append`], [`Wal::sync`], [`Wal::roll`],
//!   [`Wal::retire`], [`Wal::new_session`], [`Wal::replay_read_only`],
//!   [`Wal::close`].
//! - What goes in: [`Batch`] of [`BatchOp`]s, numbered by [`Seq`].
//! - How it is opened: [`WalOptions`] with a [`SyncMode`] and a
//!   [`RecoveryMode`]; what recovery did: [`RecoveryReport`] ([`TornTail`],
//!   [`Skipped`]); counters: [`WalStats`].
//! - What goes wrong: [`Error`] ([`Error::Poisoned`] after a failed write or
//!   fsync, [`Error::Corruption`] for damage that was provably durable).
//! - Where: [`segment_path`] names segment `n`'s file.

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
