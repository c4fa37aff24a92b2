#![doc = include_str!("../README.md")]
//!
//! # The API at a glance
//!
//! - [`Vfs`] and [`VfsFile`]: the seam; [`OpenMode`], [`LockKind`] and
//!   [`VfsLock`] for opening and locking.
//! - [`StdVfs`]: the real file system.
//! - [`FaultyVfs`] with [`FaultPlan`] and [`FaultKind`]: injected failures;
//!   [`OpCounts`] per [`OpKind`].
//! - [`SimVfs`]: durable bytes tracked apart from written ones;
//!   [`SimVfs::crash`], [`SimVfs::crash_torn`] (writes torn at [`SECTOR`]
//!   boundaries).
//! - [`write_atomic`], [`read_whole`], [`read_bounded`].
//! - [`FileError`]: an I/O error with its operation ([`FileOp`]) and path.
//! - [`SplitMix64`]: the simulations' seeded generator.

mod atomic;
mod error;
mod faulty;
mod process;
mod rng;
mod scratch;
mod sim;
mod std_vfs;
mod vfs;

pub use atomic::{read_bounded, read_whole, write_atomic};
pub use error::{FileError, FileOp};
pub use faulty::{FaultKind, FaultPlan, FaultyVfs, OpCounts, OpKind};
pub use process::{Forked, OpenedBy};
pub use rng::SplitMix64;
pub use scratch::{Scratch, ScratchKind};
pub use sim::{SECTOR, SimVfs};
pub use std_vfs::StdVfs;
pub use vfs::{LockKind, OpenMode, Vfs, VfsFile, VfsLock};
