//! The [`Vfs`] and [`VfsFile`] traits.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How [`Vfs::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Open an existing file for reading only.
    Read,
    /// Open an existing file for reading and writing.
    ReadWrite,
    /// Create a new file for reading and writing; fail with
    /// [`io::ErrorKind::AlreadyExists`] if it exists.
    CreateNew,
    /// Open for reading and writing, creating the file if it does not exist.
    CreateOrOpen,
}

impl OpenMode {
    /// Whether this mode allows writing.
    pub fn writable(self) -> bool {
        !matches!(self, OpenMode::Read)
    }
}

/// Kind of advisory lock taken by [`Vfs::lock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Many holders may share it; excludes [`LockKind::Exclusive`].
    Shared,
    /// One holder only; excludes every other lock on the file.
    Exclusive,
}

/// A held lock; dropping it releases the lock.
pub trait VfsLock: Send + Sync + fmt::Debug {}

/// A file opened through a [`Vfs`]. All I/O is positional, so one handle can
/// be shared by many threads without a seek position to fight over.
pub trait VfsFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read
    /// (0 at or past the end of the file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Writes up to `buf.len()` bytes at `offset`; returns how many were
    /// written. The bytes are not durable until [`VfsFile::sync_data`].
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;

    /// Makes the file's data (and the metadata needed to read it back, such as
    /// its length) durable: `fdatasync` on Linux, `F_FULLFSYNC` on macOS.
    fn sync_data(&self) -> io::Result<()>;

    /// Makes the file's data and all of its metadata durable.
    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }

    /// Sets the file's length, truncating or extending it with zeros.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// The file's current length in bytes.
    fn len(&self) -> io::Result<u64>;

    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Reads exactly `buf.len()` bytes at `offset`; a short file gives
    /// [`io::ErrorKind::UnexpectedEof`].
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file ended before the requested range",
                    ));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes all of `buf` at `offset`, retrying short writes; a write that
    /// makes no progress gives [`io::ErrorKind::WriteZero`].
    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the file system accepted no bytes",
                    ));
                }
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The file system as sealkv sees it.
///
/// Paths are used as given; implementations do not resolve them against a
/// working directory of their own.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Opens (or creates, per `mode`) the file at `path`.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>>;

    /// Removes the file at `path`. Not durable until [`Vfs::sync_dir`] of its
    /// directory.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Renames `from` to `to`, atomically replacing `to` if it exists. Not
    /// durable until [`Vfs::sync_dir`] of the directory.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Creates `path` and any missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Removes the empty directory `path`. Not durable until
    /// [`Vfs::sync_dir`] of its parent. The default refuses with
    /// [`io::ErrorKind::Unsupported`] (for test file systems that never
    /// remove directories).
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("removing the directory {} is not supported", path.display()),
        ))
    }

    /// Lists the entries of the directory `path` (full paths), sorted.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>>;

    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> io::Result<bool>;

    /// Makes the directory's entries (files created, renamed or removed in
    /// it) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Takes an advisory lock on the file or directory at `path` (a file
    /// is created if missing) without waiting. A lock held elsewhere gives
    /// [`io::ErrorKind::WouldBlock`]. Locking needs no write access to an
    /// existing file ([`StdVfs`](crate::StdVfs) opens it read-only), so a
    /// database on read-only media can be locked for reading.
    fn lock(&self, path: &Path, kind: LockKind) -> io::Result<Box<dyn VfsLock>>;
}

impl<V: Vfs + ?Sized> Vfs for Arc<V> {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        (**self).open(path, mode)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        (**self).remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        (**self).rename(from, to)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        (**self).create_dir_all(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        (**self).remove_dir(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        (**self).read_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        (**self).exists(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        (**self).sync_dir(path)
    }
    fn lock(&self, path: &Path, kind: LockKind) -> io::Result<Box<dyn VfsLock>> {
        (**self).lock(path, kind)
    }
}
