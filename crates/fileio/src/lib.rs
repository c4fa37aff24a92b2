//! The narrow file-system seam that every sealkv layer does its I/O through.
//!
//! sealkv never calls `std::fs` from its storage layers directly. It goes
//! through the [`Vfs`] and [`VfsFile`] traits defined here, which offer just
//! what a storage engine needs: positional reads and writes, `fsync` of a file
//! and of a directory, atomic rename, and advisory file locks. Keeping the seam
//! this narrow is what lets the tests swap the real file system for
//!
//! - [`StdVfs`], the real one (Linux first; macOS uses `F_FULLFSYNC` through
//!   `File::sync_all`);
//! - [`FaultyVfs`], which wraps any other `Vfs` and fails the *k*-th write,
//!   read, fsync or rename with the error of your choice (EIO, ENOSPC, a short
//!   write), and counts every operation so tests can assert on fsync counts;
//! - [`SimVfs`], an in-memory file system that tracks which bytes are durable
//!   and can [`crash`](SimVfs::crash), dropping everything that was not
//!   fsynced — the way a power cut would.
//!
//! # Example
//!
//! ```
//! use sealkv_fileio::{OpenMode, StdVfs, Vfs};
//!
//! # fn main() -> std::io::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let vfs = StdVfs::new();
//! let path = dir.path().join("data");
//! let file = vfs.open(&path, OpenMode::CreateNew)?;
//! file.write_all_at(b"hello", 0)?;
//! file.sync_data()?;
//! vfs.sync_dir(dir.path())?;
//!
//! let mut buf = [0u8; 5];
//! file.read_exact_at(&mut buf, 0)?;
//! assert_eq!(&buf, b"hello");
//! # Ok(())
//! # }
//! ```

mod atomic;
mod error;
mod faulty;
mod rng;
mod scratch;
mod sim;
mod std_vfs;
mod vfs;

pub use atomic::{read_bounded, read_whole, write_atomic};
pub use error::{FileError, FileOp};
pub use faulty::{FaultKind, FaultPlan, FaultyVfs, OpCounts, OpKind};
pub use rng::SplitMix64;
pub use scratch::{Scratch, ScratchKind};
pub use sim::{SECTOR, SimVfs};
pub use std_vfs::StdVfs;
pub use vfs::{LockKind, OpenMode, Vfs, VfsFile, VfsLock};
