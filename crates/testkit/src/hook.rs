//! [`HookVfs`]: a file system that calls a test's hook before every file
//! read, write, fsync and length change, so a test can watch the bytes
//! that reach the disk, pause a thread at an exact operation, or fail one.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv_fileio::{LockKind, OpenMode, Vfs, VfsFile, VfsLock};

/// A file operation about to happen.
#[derive(Debug, Clone, Copy)]
pub enum FileEvent<'a> {
    /// A read of `len` bytes at `offset`.
    Read {
        /// The file.
        path: &'a Path,
        /// Where.
        offset: u64,
        /// How many bytes are asked for.
        len: usize,
    },
    /// A write of `buf` at `offset`.
    Write {
        /// The file.
        path: &'a Path,
        /// Where.
        offset: u64,
        /// The bytes.
        buf: &'a [u8],
    },
    /// An fsync (`sync_data` or `sync_all`).
    Sync {
        /// The file.
        path: &'a Path,
    },
    /// A length change.
    SetLen {
        /// The file.
        path: &'a Path,
        /// The new length.
        len: u64,
    },
}

impl FileEvent<'_> {
    /// The file the operation is on.
    pub fn path(&self) -> &Path {
        match self {
            FileEvent::Read { path, .. }
            | FileEvent::Write { path, .. }
            | FileEvent::Sync { path }
            | FileEvent::SetLen { path, .. } => path,
        }
    }
}

type Hook = dyn Fn(FileEvent<'_>) -> io::Result<()> + Send + Sync;

/// Wraps a [`Vfs`]: the hook runs before every read, write, fsync and
/// length change of a file opened through it (on the calling thread), and
/// an error from the hook fails the operation without doing it. Directory
/// operations, opens and locks go straight to the inner file system.
#[derive(Clone)]
pub struct HookVfs {
    inner: Arc<dyn Vfs>,
    hook: Arc<Hook>,
}

impl HookVfs {
    /// `inner`, with `hook` called before each file operation.
    pub fn new(
        inner: Arc<dyn Vfs>,
        hook: impl Fn(FileEvent<'_>) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        HookVfs {
            inner,
            hook: Arc::new(hook),
        }
    }
}

impl fmt::Debug for HookVfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookVfs")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

struct HookedFile {
    inner: Arc<dyn VfsFile>,
    path: PathBuf,
    hook: Arc<Hook>,
}

impl fmt::Debug for HookedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookedFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl VfsFile for HookedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (self.hook)(FileEvent::Read {
            path: &self.path,
            offset,
            len: buf.len(),
        })?;
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        (self.hook)(FileEvent::Write {
            path: &self.path,
            offset,
            buf,
        })?;
        self.inner.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        (self.hook)(FileEvent::Sync { path: &self.path })?;
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        (self.hook)(FileEvent::Sync { path: &self.path })?;
        self.inner.sync_all()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        (self.hook)(FileEvent::SetLen {
            path: &self.path,
            len,
        })?;
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl Vfs for HookVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        Ok(Arc::new(HookedFile {
            inner: self.inner.open(path, mode)?,
            path: path.to_path_buf(),
            hook: self.hook.clone(),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        self.inner.read_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn lock(&self, path: &Path, kind: LockKind) -> io::Result<Box<dyn VfsLock>> {
        self.inner.lock(path, kind)
    }
}
