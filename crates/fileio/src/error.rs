//! An I/O error that names its file and what was being done.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The operation an I/O error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    /// Opening or creating a file.
    Open,
    /// Reading.
    Read,
    /// Writing.
    Write,
    /// `fsync`/`fdatasync` of a file.
    Sync,
    /// `fsync` of a directory.
    SyncDir,
    /// Changing a file's length.
    SetLen,
    /// Renaming.
    Rename,
    /// Removing a file.
    Remove,
    /// Listing or creating a directory.
    Dir,
    /// Taking a lock.
    Lock,
}

impl fmt::Display for FileOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileOp::Open => "open",
            FileOp::Read => "read",
            FileOp::Write => "write",
            FileOp::Sync => "fsync",
            FileOp::SyncDir => "fsync directory",
            FileOp::SetLen => "set length of",
            FileOp::Rename => "rename",
            FileOp::Remove => "remove",
            FileOp::Dir => "list or create directory",
            FileOp::Lock => "lock",
        })
    }
}

/// An I/O error with its path and operation, for error messages that tell an
/// operator which file is at fault.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}: {source}", path.display())]
pub struct FileError {
    /// What was being done.
    pub op: FileOp,
    /// The file or directory.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl FileError {
    /// Wraps `source` with its operation and path.
    pub fn new(op: FileOp, path: impl AsRef<Path>, source: io::Error) -> Self {
        FileError {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A closure for `map_err` that attaches `op` and `path`.
    pub fn with(op: FileOp, path: &Path) -> impl FnOnce(io::Error) -> FileError + '_ {
        move |source| FileError::new(op, path, source)
    }

    /// The kind of the underlying error.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}
