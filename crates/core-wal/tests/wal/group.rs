//! Group commit: concurrent durable appenders share fsyncs.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sealkv_fileio::{FaultyVfs, LockKind, OpKind, OpenMode, SimVfs, Vfs, VfsFile, VfsLock};

use crate::*;

/// A disk whose fsync takes a millisecond, like a real one.
#[derive(Debug)]
struct SlowSync(Arc<dyn Vfs>);
#[derive(Debug)]
struct SlowFile(Arc<dyn VfsFile>);

impl VfsFile for SlowFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.0.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        std::thread::sleep(Duration::from_millis(1));
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
}

impl Vfs for SlowSync {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        Ok(Arc::new(SlowFile(self.0.open(path, mode)?)))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.0.create_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        self.0.read_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.0.exists(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.sync_dir(path)
    }
    fn lock(&self, path: &Path, kind: LockKind) -> io::Result<Box<dyn VfsLock>> {
        self.0.lock(path, kind)
    }
}

#[test]
fn eight_durable_appenders_share_fsyncs() {
    for prot in PROTECTIONS {
        let opts = options(prot);
        let sim = SimVfs::new();
        let faulty = FaultyVfs::new(Arc::new(sim.clone()));
        let v: Arc<dyn Vfs> = Arc::new(SlowSync(Arc::new(faulty.clone())));
        let (wal, _, _) = open(&v, &opts).unwrap();
        let wal = Arc::new(wal);
        let before = faulty.counts();
        let per_thread = 100u64;
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    let mut seqs = Vec::new();
                    for i in 0..per_thread {
                        seqs.push(wal.append(&batch(t * 1000 + i, 64)).unwrap());
                        // Acknowledged means durable.
                        assert!(wal.durable_seq() >= *seqs.last().unwrap());
                    }
                    seqs
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .map(|s| s.0)
            .collect();
        all.sort();
        assert_eq!(all, (1..=800).collect::<Vec<_>>());
        let after = faulty.counts();
        let syncs = after.get(OpKind::Sync) - before.get(OpKind::Sync);
        let writes = after.get(OpKind::Write) - before.get(OpKind::Write);
        assert!(syncs * 2 < 800, "{prot:?}: {syncs} fsyncs for 800 appends");
        assert!(
            writes * 2 < 800,
            "{prot:?}: {writes} writes for 800 appends"
        );
        assert_eq!(wal.stats().syncs, syncs);
        Arc::try_unwrap(wal).unwrap().close().unwrap();
        sim.crash();
        let (_w, _, seen) = open(&v, &opts).unwrap();
        assert_eq!(seen.len(), 800);
    }
}
