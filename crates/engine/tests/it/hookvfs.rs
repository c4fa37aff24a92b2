//! A simulated disk whose page file calls a test's hook before each write
//! and fsync (used to pause the flusher, or to cut the power, at an exact
//! point of a commit).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv_fileio::{LockKind, OpenMode, SimVfs, Vfs, VfsFile, VfsLock};

/// A page-file (`data.sealkv`) operation about to happen.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PageFileOp<'a> {
    /// A write of `buf` at `offset`.
    Write { offset: u64, buf: &'a [u8] },
    /// An fsync.
    Sync,
}

type Hook = dyn Fn(PageFileOp<'_>) -> io::Result<()> + Send + Sync;

/// `sim`, with `hook` called before every page-file write and fsync; an
/// error from the hook fails the operation without doing it. Every other
/// file and operation goes straight to `sim`.
#[derive(Clone)]
pub(crate) struct HookVfs {
    pub(crate) sim: SimVfs,
    hook: Arc<Hook>,
}

impl HookVfs {
    pub(crate) fn new(
        sim: SimVfs,
        hook: impl Fn(PageFileOp<'_>) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        HookVfs {
            sim,
            hook: Arc::new(hook),
        }
    }
}

impl fmt::Debug for HookVfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookVfs").field("sim", &self.sim).finish()
    }
}

#[derive(Debug)]
struct File {
    inner: Arc<dyn VfsFile>,
    vfs: HookVfs,
    data: bool,
}

impl VfsFile for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        if self.data {
            (self.vfs.hook)(PageFileOp::Write { offset, buf })?;
        }
        self.inner.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.data {
            (self.vfs.hook)(PageFileOp::Sync)?;
        }
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl Vfs for HookVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        Ok(Arc::new(File {
            inner: self.sim.open(path, mode)?,
            vfs: self.clone(),
            data: path.ends_with("data.sealkv"),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.sim.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.sim.rename(from, to)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.sim.create_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        self.sim.read_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.sim.exists(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.sim.sync_dir(path)
    }
    fn lock(&self, path: &Path, kind: LockKind) -> io::Result<Box<dyn VfsLock>> {
        self.sim.lock(path, kind)
    }
}
