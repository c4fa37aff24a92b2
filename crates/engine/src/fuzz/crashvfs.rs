//! A simulated disk that can lose power at a chosen write.
//!
//! [`CrashVfs`] wraps one [`SimVfs`] (one instance's disk) and counts every
//! operation that changes it — writes, fsyncs, length changes, renames,
//! removals, directory fsyncs, opens that may create — on a counter shared
//! by every disk of a run ([`CrashPlan`]). When the count reaches the
//! plan's crash point, the disk as a power cut would leave it *before* that
//! operation (unsynced writes kept, lost or torn per sector, as
//! [`SimVfs::fork_crashed_torn`]) is set aside for the harness to reopen,
//! and the operation and every later one of this instance fail: the process
//! is dead. The count is deterministic as long as only one thread does I/O
//! at a time, which the harness's deterministic mode ensures.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use sealkv_fileio::{LockKind, OpenMode, SimVfs, Vfs, VfsFile, VfsLock};

/// Where a run crashes, and what it left behind.
#[derive(Debug, Default)]
pub(crate) struct CrashPlan {
    /// Disk-changing operations so far (of live instances).
    count: AtomicU64,
    /// The operation (1-based) at which the power goes out.
    at: Option<u64>,
    /// Drives which unsynced writes survive.
    seed: u64,
    /// The disk found after the crash, until the harness takes it.
    found: Mutex<Option<SimVfs>>,
}

impl CrashPlan {
    pub(crate) fn new(at: Option<u64>, seed: u64) -> Arc<Self> {
        Arc::new(CrashPlan {
            at,
            seed,
            ..CrashPlan::default()
        })
    }

    /// Disk-changing operations counted so far.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// The crash point.
    pub(crate) fn at(&self) -> Option<u64> {
        self.at
    }

    /// Whether the power went out.
    pub(crate) fn fired(&self) -> bool {
        self.at.is_some_and(|at| self.count() >= at)
    }

    /// The disk the crash left, once (then `None` again).
    pub(crate) fn take_crashed(&self) -> Option<SimVfs> {
        self.found.lock().take()
    }
}

/// One instance's view of its disk (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct CrashVfs {
    sim: SimVfs,
    plan: Arc<CrashPlan>,
    dead: Arc<AtomicBool>,
}

fn dead_error() -> io::Error {
    io::Error::other("simulated power cut: this instance is dead")
}

impl CrashVfs {
    pub(crate) fn new(sim: SimVfs, plan: Arc<CrashPlan>) -> Self {
        CrashVfs {
            sim,
            plan,
            dead: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The disk underneath.
    pub(crate) fn sim(&self) -> &SimVfs {
        &self.sim
    }

    /// Kills this instance: every later operation fails and none is
    /// counted (what its threads still try must not move the count).
    pub(crate) fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
    }

    /// Counts one disk-changing operation; fails it if the instance is
    /// dead or this is the crash point.
    fn tick(&self) -> io::Result<()> {
        tick(&self.sim, &self.plan, &self.dead)
    }

    fn alive(&self) -> io::Result<()> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(dead_error());
        }
        Ok(())
    }
}

fn tick(sim: &SimVfs, plan: &CrashPlan, dead: &AtomicBool) -> io::Result<()> {
    if dead.load(Ordering::SeqCst) {
        return Err(dead_error());
    }
    let n = plan.count.fetch_add(1, Ordering::SeqCst) + 1;
    if plan.at == Some(n) {
        let found = sim.fork_crashed_torn(plan.seed);
        *plan.found.lock() = Some(found);
        dead.store(true, Ordering::SeqCst);
        return Err(dead_error());
    }
    Ok(())
}

#[derive(Debug)]
struct CrashFile {
    inner: Arc<dyn VfsFile>,
    sim: SimVfs,
    plan: Arc<CrashPlan>,
    dead: Arc<AtomicBool>,
}

impl CrashFile {
    fn alive(&self) -> io::Result<()> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(dead_error());
        }
        Ok(())
    }
    fn tick(&self) -> io::Result<()> {
        tick(&self.sim, &self.plan, &self.dead)
    }
}

impl VfsFile for CrashFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.alive()?;
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.tick()?;
        self.inner.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.tick()?;
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.tick()?;
        self.inner.sync_all()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.tick()?;
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.alive()?;
        self.inner.len()
    }
}

impl Vfs for CrashVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        if mode.writable() {
            self.tick()?;
        } else {
            self.alive()?;
        }
        let inner = self.sim.open(path, mode)?;
        Ok(Arc::new(CrashFile {
            inner,
            sim: self.sim.clone(),
            plan: self.plan.clone(),
            dead: self.dead.clone(),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.tick()?;
        self.sim.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.tick()?;
        self.sim.rename(from, to)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.tick()?;
        self.sim.create_dir_all(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.tick()?;
        self.sim.remove_dir(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        self.alive()?;
        self.sim.read_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.alive()?;
        self.sim.exists(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.tick()?;
        self.sim.sync_dir(path)
    }
    fn lock(&self, path: &Path, kind: LockKind) -> io::Result<Box<dyn VfsLock>> {
        self.alive()?;
        self.sim.lock(path, kind)
    }
}
