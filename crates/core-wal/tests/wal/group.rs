//! Group commit: concurrent durable appenders share fsyncs.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

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

/// A gate that holds every fsync while it is closed, and says when one is
/// waiting at it.
#[derive(Debug, Default)]
struct SyncGate {
    state: Mutex<GateState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    waiting: u64,
}

impl SyncGate {
    fn set_closed(&self, closed: bool) {
        self.state.lock().unwrap().closed = closed;
        self.cv.notify_all();
    }

    /// Called by an fsync: waits while the gate is closed.
    fn pass(&self) {
        let mut st = self.state.lock().unwrap();
        st.waiting += 1;
        self.cv.notify_all();
        st = self.cv.wait_while(st, |s| s.closed).unwrap();
        st.waiting -= 1;
    }

    /// Waits until an fsync is held at the gate.
    fn wait_for_a_held_fsync(&self) {
        let st = self.state.lock().unwrap();
        let (st, timeout) = self
            .cv
            .wait_timeout_while(st, Duration::from_secs(60), |s| s.waiting == 0)
            .unwrap();
        assert!(
            !timeout.timed_out() && st.waiting > 0,
            "no fsync reached the gate"
        );
    }
}

/// A disk whose fsyncs pass through a [`SyncGate`].
#[derive(Debug)]
struct GatedSync(Arc<dyn Vfs>, Arc<SyncGate>);
#[derive(Debug)]
struct GatedFile(Arc<dyn VfsFile>, Arc<SyncGate>);

impl VfsFile for GatedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.0.write_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.1.pass();
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
}

impl Vfs for GatedSync {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        Ok(Arc::new(GatedFile(
            self.0.open(path, mode)?,
            self.1.clone(),
        )))
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

/// Eight threads append one durable record each per round, 100 rounds. In
/// each round the first group's fsync is held at a gate until all eight
/// records are in the log (seven appenders waiting behind a pending
/// fsync), so the round's records must share at most two fsyncs: the held
/// one and the one the leader then makes for everything queued.
#[test]
fn eight_durable_appenders_share_fsyncs() {
    const THREADS: u64 = 8;
    const ROUNDS: u64 = 100;
    for prot in PROTECTIONS {
        let opts = options(prot);
        let sim = SimVfs::new();
        let faulty = FaultyVfs::new(Arc::new(sim.clone()));
        let gate = Arc::new(SyncGate::default());
        let v: Arc<dyn Vfs> = Arc::new(GatedSync(Arc::new(faulty.clone()), gate.clone()));
        let (wal, _, _) = open(&v, &opts).unwrap();
        let wal = Arc::new(wal);
        let rounds = Arc::new(Barrier::new(THREADS as usize + 1));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (wal, rounds) = (wal.clone(), rounds.clone());
                std::thread::spawn(move || {
                    let mut seqs = Vec::new();
                    for r in 0..ROUNDS {
                        rounds.wait();
                        seqs.push(wal.append(&batch(t * 1000 + r, 64)).unwrap());
                        // Acknowledged means durable.
                        assert!(wal.durable_seq() >= *seqs.last().unwrap());
                        rounds.wait();
                    }
                    seqs
                })
            })
            .collect();
        let first = faulty.counts().get(OpKind::Sync);
        let mut syncs_before = first;
        let mut most = 0;
        for r in 0..ROUNDS {
            gate.set_closed(true);
            rounds.wait();
            gate.wait_for_a_held_fsync();
            // Every record of the round is in the log: the fsync held is
            // the first group's, the others wait behind it.
            let deadline = Instant::now() + Duration::from_secs(60);
            while wal.stats().appends < THREADS * (r + 1) {
                assert!(Instant::now() < deadline, "round {r}: appends stuck");
                std::thread::yield_now();
            }
            gate.set_closed(false);
            rounds.wait();
            let syncs = faulty.counts().get(OpKind::Sync);
            most = most.max(syncs - syncs_before);
            syncs_before = syncs;
        }
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .map(|s| s.0)
            .collect();
        all.sort();
        assert_eq!(all, (1..=THREADS * ROUNDS).collect::<Vec<_>>());
        assert!(
            most <= 2,
            "{prot:?}: a round of 8 appends took {most} fsyncs"
        );
        let syncs = syncs_before - first;
        let markers = wal.stats().sync_markers;
        // Sync markers are written only when the log goes idle: once a
        // round at most.
        assert!(markers <= ROUNDS, "{prot:?}: {markers} markers");
        assert!(syncs <= 2 * ROUNDS, "{prot:?}: {syncs} fsyncs");
        Arc::try_unwrap(wal).unwrap().close().unwrap();
        sim.crash();
        let (_w, _, seen) = open(&v, &opts).unwrap();
        assert_eq!(seen.len() as u64, THREADS * ROUNDS);
    }
}

/// Appenders race with roll, sync, new_session and retire from another
/// thread: every acknowledged batch is replayed under its sequence number,
/// nothing else is, and numbering is dense.
#[test]
fn appends_race_with_roll_sync_new_session_and_retire() {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    for (round, prot) in PROTECTIONS.into_iter().enumerate() {
        for sync in [
            sealkv_core_wal::SyncMode::Never,
            sealkv_core_wal::SyncMode::Always,
        ] {
            let mut opts = with_sync(options(prot), sync);
            opts.segment_size = 4096;
            let (_s, v) = sim();
            let (wal, _, _) = open(&v, &opts).unwrap();
            let wal = Arc::new(wal);
            let acked = Arc::new(Mutex::new(BTreeMap::new()));
            let writers: Vec<_> = (0..6u64)
                .map(|t| {
                    let wal = wal.clone();
                    let acked = acked.clone();
                    std::thread::spawn(move || {
                        for i in 0..150u64 {
                            let b = batch(t * 10_000 + i, (i as usize * 37) % 700);
                            let seq = wal.append(&b).unwrap();
                            assert!(acked.lock().unwrap().insert(seq.0, b).is_none());
                        }
                    })
                })
                .collect();
            let admin = {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    let mut retired = 0;
                    for k in 0..60u32 {
                        match k % 4 {
                            0 => {
                                wal.roll().unwrap();
                            }
                            1 => wal.sync().unwrap(),
                            2 if prot.is_some() => {
                                wal.new_session().unwrap();
                            }
                            _ => {
                                let d = wal.durable_seq();
                                wal.sync().unwrap();
                                wal.retire(Seq(d.0 / 2)).unwrap();
                                retired = retired.max(d.0 / 2);
                            }
                        }
                        std::thread::yield_now();
                    }
                    retired
                })
            };
            for h in writers {
                h.join().unwrap();
            }
            let retired = admin.join().unwrap();
            let acked = Arc::try_unwrap(acked).unwrap().into_inner().unwrap();
            assert_eq!(acked.len(), 900);
            assert_eq!(*acked.keys().next_back().unwrap(), 900);
            Arc::try_unwrap(wal).unwrap().close().unwrap();
            // Replay from just past what was retired, as the engine would.
            opts.first_seq = Seq(retired + 1);
            let (_w, report, seen) = open(&v, &opts).unwrap();
            assert_eq!(report.torn_tail, None, "round {round}");
            assert_eq!(seen.len() as u64, 900 - retired);
            assert_eq!(seen.first().map(|(s, _)| s.0), Some(retired + 1));
            for (seq, b) in &seen {
                assert_eq!(Some(b), acked.get(&seq.0), "seq {seq}");
            }
        }
    }
}

/// A failed fsync reaches every appender waiting on it, and every later
/// append fails; acknowledged records survive a power cut.
#[test]
fn a_failed_group_fsync_reaches_every_waiter() {
    use sealkv_fileio::FaultPlan;
    use std::sync::Mutex;
    let opts = options(Some(sealkv_crypto_envelope::EncryptionAlgorithm::Aes256Gcm));
    let sim = SimVfs::new();
    let faulty = FaultyVfs::over_sim(&sim);
    let v: Arc<dyn Vfs> = Arc::new(SlowSync(Arc::new(faulty.clone())));
    let (wal, _, _) = open(&v, &opts).unwrap();
    let wal = Arc::new(wal);
    faulty.arm(FaultPlan::once(OpKind::Sync, 6));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let wal = wal.clone();
            let acked = acked.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    match wal.append(&batch(t * 1000 + i, 32)) {
                        Ok(s) => acked.lock().unwrap().push(s.0),
                        Err(e) => return e,
                    }
                }
                unreachable!()
            })
        })
        .collect();
    for h in threads {
        let e = h.join().unwrap();
        assert!(matches!(e, sealkv_core_wal::Error::Poisoned { .. }), "{e}");
    }
    assert!(matches!(
        wal.sync(),
        Err(sealkv_core_wal::Error::Poisoned { .. })
    ));
    let durable = wal.durable_seq().0;
    let acked = acked.lock().unwrap().clone();
    assert!(acked.iter().all(|&s| s <= durable));
    drop(wal);
    sim.crash();
    let (_w, _, seen) = open(&v, &opts).unwrap();
    assert!(seen.len() as u64 >= durable);
}

/// `roll` and `new_session` run from two threads while appenders keep
/// going on a disk with slow fsyncs: a segment reserved under one session
/// must be created with that session's header even when another thread
/// rotates the session while the roll is fsyncing. Every acknowledged
/// record is replayed after reopening, and the open finds no corruption.
#[test]
fn concurrent_roll_and_new_session_keep_segment_headers_right() {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    // The race needs a reservation inside a 1 ms window; a few rounds make
    // it all but certain.
    for round in 0..6 {
        let alg = if round % 2 == 0 {
            sealkv_crypto_envelope::EncryptionAlgorithm::Aes256Gcm
        } else {
            sealkv_crypto_envelope::EncryptionAlgorithm::ChaCha20Poly1305
        };
        let opts = with_sync(options(Some(alg)), sealkv_core_wal::SyncMode::Never);
        let sim = SimVfs::new();
        let v: Arc<dyn Vfs> = Arc::new(SlowSync(Arc::new(sim.clone())));
        let (wal, _, _) = open(&v, &opts).unwrap();
        let wal = Arc::new(wal);
        let acked = Arc::new(Mutex::new(BTreeMap::new()));
        let done = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4u64)
            .map(|t| {
                let wal = wal.clone();
                let acked = acked.clone();
                std::thread::spawn(move || {
                    for i in 0..300u64 {
                        let b = batch(t * 10_000 + i, 48);
                        let seq = wal.append(&b).unwrap();
                        assert!(acked.lock().unwrap().insert(seq.0, b).is_none());
                    }
                })
            })
            .collect();
        let admins: Vec<_> = [false, true]
            .into_iter()
            .map(|rotate| {
                let wal = wal.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        if rotate {
                            wal.new_session().unwrap();
                        } else {
                            wal.roll().unwrap();
                        }
                        std::thread::sleep(Duration::from_micros(300));
                    }
                })
            })
            .collect();
        for h in writers {
            h.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        for h in admins {
            h.join().unwrap();
        }
        let acked = Arc::try_unwrap(acked).unwrap().into_inner().unwrap();
        assert_eq!(acked.len(), 1200);
        Arc::try_unwrap(wal).unwrap().close().unwrap();
        let (_w, report, seen) = open(&v, &opts).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(report.torn_tail, None);
        assert_eq!(seen.len(), 1200);
        for (seq, b) in &seen {
            assert_eq!(Some(b), acked.get(&seq.0), "seq {seq}");
        }
    }
}
