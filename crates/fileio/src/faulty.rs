//! A [`Vfs`] wrapper that counts operations and fails chosen ones.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::vfs::{LockKind, OpenMode, Vfs, VfsFile, VfsLock};

/// The kinds of operation [`FaultyVfs`] counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// `read_at`.
    Read,
    /// `write_at`.
    Write,
    /// `sync_data`/`sync_all` of a file.
    Sync,
    /// `sync_dir`.
    SyncDir,
    /// `set_len`.
    SetLen,
    /// `rename`.
    Rename,
    /// `remove_file` and `remove_dir`.
    Remove,
    /// `open`.
    Open,
}

const KINDS: usize = 8;

impl OpKind {
    fn index(self) -> usize {
        self as usize
    }
}

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Fails with an I/O error (EIO).
    Eio,
    /// Fails with "no space left on device" (ENOSPC).
    NoSpace,
    /// For writes: writes only the first half of the buffer and reports it.
    /// Other operations fail with EIO.
    ShortWrite,
    /// Writes nothing but reports success: a lying disk. Other operations
    /// fail with EIO.
    Silent,
}

/// When and how to fail: the `nth` operation of kind `op` (1-based, counted
/// from when the plan is armed) fails with `fault`; with `sticky`, every one
/// after it fails too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPlan {
    /// Which operations to count.
    pub op: OpKind,
    /// Which one fails (1 = the next one).
    pub nth: u64,
    /// What the failure is.
    pub fault: FaultKind,
    /// Whether every later operation of the kind fails too.
    pub sticky: bool,
}

impl FaultPlan {
    /// Fails only the `nth` operation of kind `op` with EIO.
    pub fn once(op: OpKind, nth: u64) -> Self {
        FaultPlan {
            op,
            nth,
            fault: FaultKind::Eio,
            sticky: false,
        }
    }

    /// Fails the `nth` operation of kind `op` and all after it with EIO.
    pub fn from(op: OpKind, nth: u64) -> Self {
        FaultPlan {
            sticky: true,
            ..Self::once(op, nth)
        }
    }

    /// The same plan with another fault.
    #[must_use]
    pub fn with_fault(mut self, fault: FaultKind) -> Self {
        self.fault = fault;
        self
    }
}

/// Operation counts, by kind, since the [`FaultyVfs`] was made or reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    counts: [u64; KINDS],
}

impl OpCounts {
    /// How many operations of `kind` were attempted.
    pub fn get(&self, kind: OpKind) -> u64 {
        self.counts[kind.index()]
    }
}

#[derive(Debug, Default)]
struct State {
    counts: [AtomicU64; KINDS],
    plans: Mutex<Vec<(FaultPlan, u64)>>,
    injected: AtomicU64,
}

impl State {
    /// Counts one operation and says which fault, if any, it must suffer.
    fn tick(&self, op: OpKind) -> Option<FaultKind> {
        self.counts[op.index()].fetch_add(1, Ordering::SeqCst);
        let mut plans = self.plans.lock();
        let mut hit = None;
        for (plan, seen) in plans.iter_mut() {
            if plan.op != op {
                continue;
            }
            *seen += 1;
            if *seen == plan.nth || (plan.sticky && *seen > plan.nth) {
                hit = Some(plan.fault);
            }
        }
        if hit.is_some() {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        hit
    }
}

fn fault_error(fault: FaultKind) -> io::Error {
    match fault {
        FaultKind::NoSpace => io::Error::new(
            io::ErrorKind::StorageFull,
            "injected fault: no space left on device",
        ),
        _ => io::Error::other("injected fault: I/O error"),
    }
}

/// Called with a file's path when an fsync of it fails by injection.
type SyncFaultHook = Arc<dyn Fn(&Path) + Send + Sync>;

/// Wraps a [`Vfs`], counting every operation and failing those a
/// [`FaultPlan`] names. Clones share counters and plans.
#[derive(Clone)]
pub struct FaultyVfs {
    inner: Arc<dyn Vfs>,
    state: Arc<State>,
    on_sync_fault: Option<SyncFaultHook>,
}

impl fmt::Debug for FaultyVfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyVfs")
            .field("inner", &self.inner)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl FaultyVfs {
    /// Wraps `inner`, with no fault armed. An injected fsync failure only
    /// returns an error; the writes it covered stay pending in `inner`.
    pub fn new(inner: Arc<dyn Vfs>) -> Self {
        FaultyVfs {
            inner,
            state: Arc::new(State::default()),
            on_sync_fault: None,
        }
    }

    /// Wraps a [`SimVfs`](crate::SimVfs) so that an injected fsync failure
    /// also behaves as on Linux: the writes that fsync should have made
    /// durable are dropped from what will ever reach the disk
    /// ([`SimVfs::forget_unsynced`](crate::SimVfs::forget_unsynced)), while
    /// readers still see them. Retrying the fsync cannot bring them back.
    pub fn over_sim(sim: &crate::SimVfs) -> Self {
        let hook_sim = sim.clone();
        FaultyVfs {
            inner: Arc::new(sim.clone()),
            state: Arc::new(State::default()),
            on_sync_fault: Some(Arc::new(move |path: &Path| hook_sim.forget_unsynced(path))),
        }
    }

    /// Arms `plan` in addition to any already armed.
    pub fn arm(&self, plan: FaultPlan) {
        self.state.plans.lock().push((plan, 0));
    }

    /// Removes every armed plan.
    pub fn disarm(&self) {
        self.state.plans.lock().clear();
    }

    /// Operation counts so far.
    pub fn counts(&self) -> OpCounts {
        let mut out = OpCounts::default();
        for (i, c) in self.state.counts.iter().enumerate() {
            out.counts[i] = c.load(Ordering::SeqCst);
        }
        out
    }

    /// How many faults have been injected so far.
    pub fn injected(&self) -> u64 {
        self.state.injected.load(Ordering::SeqCst)
    }
}

struct FaultyFile {
    inner: Arc<dyn VfsFile>,
    state: Arc<State>,
    path: PathBuf,
    on_sync_fault: Option<SyncFaultHook>,
}

impl FaultyFile {
    fn sync_failed(&self, fault: FaultKind) -> io::Error {
        if let Some(hook) = &self.on_sync_fault {
            hook(&self.path);
        }
        fault_error(fault)
    }
}

impl fmt::Debug for FaultyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyFile")
            .field("inner", &self.inner)
            .finish()
    }
}

impl VfsFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        match self.state.tick(OpKind::Read) {
            Some(f) => Err(fault_error(f)),
            None => self.inner.read_at(buf, offset),
        }
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        match self.state.tick(OpKind::Write) {
            Some(FaultKind::ShortWrite) if buf.len() > 1 => {
                let half = buf.len() / 2;
                self.inner.write_at(&buf[..half], offset)
            }
            Some(FaultKind::Silent) => Ok(buf.len()),
            Some(f) => Err(fault_error(f)),
            None => self.inner.write_at(buf, offset),
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        match self.state.tick(OpKind::Sync) {
            Some(f) => Err(self.sync_failed(f)),
            None => self.inner.sync_data(),
        }
    }

    fn sync_all(&self) -> io::Result<()> {
        match self.state.tick(OpKind::Sync) {
            Some(f) => Err(self.sync_failed(f)),
            None => self.inner.sync_all(),
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        match self.state.tick(OpKind::SetLen) {
            Some(f) => Err(fault_error(f)),
            None => self.inner.set_len(len),
        }
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl Vfs for FaultyVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        if let Some(f) = self.state.tick(OpKind::Open) {
            return Err(fault_error(f));
        }
        let inner = self.inner.open(path, mode)?;
        Ok(Arc::new(FaultyFile {
            inner,
            state: self.state.clone(),
            // The path the file was opened under: a file renamed while open
            // is not found by the sync-fault hook (none of sealkv's files
            // is renamed while it is being written).
            path: path.to_path_buf(),
            on_sync_fault: self.on_sync_fault.clone(),
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        match self.state.tick(OpKind::Remove) {
            Some(f) => Err(fault_error(f)),
            None => self.inner.remove_file(path),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        match self.state.tick(OpKind::Rename) {
            Some(f) => Err(fault_error(f)),
            None => self.inner.rename(from, to),
        }
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        match self.state.tick(OpKind::Remove) {
            Some(f) => Err(fault_error(f)),
            None => self.inner.remove_dir(path),
        }
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        self.inner.read_dir(path)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        match self.state.tick(OpKind::SyncDir) {
            Some(f) => Err(fault_error(f)),
            None => self.inner.sync_dir(path),
        }
    }

    fn lock(&self, path: &Path, kind: LockKind) -> io::Result<Box<dyn VfsLock>> {
        self.inner.lock(path, kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimVfs;

    #[test]
    fn fails_the_nth_write_only_and_counts() {
        let sim = SimVfs::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        let vfs = FaultyVfs::new(Arc::new(sim.clone()));
        vfs.arm(FaultPlan::once(OpKind::Write, 2).with_fault(FaultKind::NoSpace));
        let f = vfs.open(Path::new("/d/f"), OpenMode::CreateNew).unwrap();
        f.write_all_at(b"a", 0).unwrap();
        let err = f.write_all_at(b"b", 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        f.write_all_at(b"c", 1).unwrap();
        assert_eq!(vfs.counts().get(OpKind::Write), 3);
        assert_eq!(vfs.injected(), 1);
        assert_eq!(sim.read_file(Path::new("/d/f")).unwrap(), b"ac");
    }

    #[test]
    fn sticky_sync_failure_keeps_failing() {
        let sim = SimVfs::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        let vfs = FaultyVfs::new(Arc::new(sim));
        vfs.arm(FaultPlan::from(OpKind::Sync, 1));
        let f = vfs.open(Path::new("/d/f"), OpenMode::CreateNew).unwrap();
        assert!(f.sync_data().is_err());
        assert!(f.sync_all().is_err());
        vfs.disarm();
        f.sync_data().unwrap();
        assert_eq!(vfs.counts().get(OpKind::Sync), 3);
    }

    #[test]
    fn short_write_is_completed_by_write_all() {
        let sim = SimVfs::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        let vfs = FaultyVfs::new(Arc::new(sim.clone()));
        vfs.arm(FaultPlan::once(OpKind::Write, 1).with_fault(FaultKind::ShortWrite));
        let f = vfs.open(Path::new("/d/f"), OpenMode::CreateNew).unwrap();
        f.write_all_at(b"abcdef", 0).unwrap();
        assert_eq!(sim.read_file(Path::new("/d/f")).unwrap(), b"abcdef");
        assert_eq!(vfs.counts().get(OpKind::Write), 2);
    }

    #[test]
    fn failed_fsync_over_sim_loses_the_writes_it_covered() {
        let sim = crate::SimVfs::new();
        let dir = Path::new("/db");
        sim.create_dir_all(dir).unwrap();
        let path = dir.join("log");
        sim.write_file(&path, b"");
        let vfs = FaultyVfs::over_sim(&sim);
        let f = vfs.open(&path, OpenMode::ReadWrite).unwrap();
        f.write_all_at(b"acked?", 0).unwrap();
        vfs.arm(FaultPlan::once(OpKind::Sync, 1));
        assert!(f.sync_data().is_err());
        // The retry "succeeds", as on Linux, but the data is gone.
        f.sync_data().unwrap();
        let mut seen = [0u8; 6];
        f.read_exact_at(&mut seen, 0).unwrap();
        assert_eq!(&seen, b"acked?", "readers still see the lost write");
        sim.crash();
        assert_eq!(sim.read_file(&path).unwrap(), b"");
    }
}
