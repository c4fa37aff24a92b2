//! The [`Wal`]: group commit over the current segment.
//!
//! # How an append flows
//!
//! 1. The caller encodes its batch into a pooled record buffer (no lock).
//! 2. Under the lock it reserves a sequence number, a nonce ticket, the
//!    segment the record goes to, and the segment's durable mark
//!    (reservations are in sequence order, so records, nonces and segments
//!    line up).
//! 3. Outside the lock it seals the record in place: many appenders seal in
//!    parallel.
//! 4. Under the lock it puts the sealed record in its slot. Whoever finds
//!    no leader and the oldest slot ready becomes the leader: it takes
//!    every ready record in order, writes them with one write, fsyncs once
//!    (per the sync mode), and wakes everyone it covered.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sealkv_crypto_envelope::{
    AlgorithmId, CryptoError, DbId, Domain, KeyId, Keyring, SessionSalt, TAG_LEN,
};
use sealkv_fileio::{FileError, FileOp, OpenMode, Vfs, VfsFile};

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::format::{
    CTX_LEN, HEADER_LEN, RECORD_HEADER_LEN, RECORD_OVERHEAD, RecordHeader, SegmentHeader,
    segment_path,
};
use crate::options::{RecoveryReport, Seq, SyncMode, WalOptions, WalStats};
use crate::recovery::{MAX_BODY_LEN, Recovery, ReplayError};
use crate::seal::Protect;

/// Whether [`Shared::sync_current`] writes a sync marker after its fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    No,
    Yes,
    /// Only if no record is reserved (the log is idle).
    IfIdle,
}

/// Record buffers kept for reuse, and the largest one kept.
const POOL_MAX: usize = 64;
const POOL_BUF_MAX: usize = 1 << 20;
/// A commit group stops growing past this many bytes.
const GROUP_MAX: usize = 4 << 20;

/// A sealed record waiting for its turn to be written. (No `Debug`:
/// buffers hold record bytes.)
struct Ready {
    seq: u64,
    segment: u64,
    buf: Vec<u8>,
    /// The session it was sealed under (its segment's header names it).
    sealing: Arc<Sealing>,
}

struct State {
    /// The writer session new reservations seal under.
    sealing: Arc<Sealing>,
    /// Next sequence number to reserve.
    next_seq: u64,
    /// Sequence number of `slots[0]`.
    slot_base: u64,
    /// Reserved records in sequence order; `None` while being sealed.
    slots: VecDeque<Option<Ready>>,
    /// Segment and end offset reservations are laid out in.
    res_segment: u64,
    res_end: u64,
    res_ctx: [u8; CTX_LEN],
    /// The session of each segment reserved but not yet created: its
    /// header must name the session its records were sealed under, which
    /// may no longer be `sealing` by the time it is created.
    res_sealing: BTreeMap<u64, Arc<Sealing>>,
    /// Where the current segment is known durable.
    synced_segment: u64,
    synced_end: u64,
    /// Last sequence written to the OS and last made durable.
    written_seq: u64,
    durable_seq: u64,
    leader: bool,
    /// Threads sleeping on `cond`.
    waiters: usize,
    poisoned: Option<Arc<Error>>,
    closed: bool,
    /// Live segments and their first sequence numbers.
    segments: BTreeMap<u64, u64>,
    pool: Vec<Vec<u8>>,
    stats: WalStats,
}

/// What only the leader touches.
struct Current {
    segment: u64,
    path: PathBuf,
    file: Arc<dyn VfsFile>,
    /// The session the segment's header names, and its record context:
    /// what a sync marker is sealed under.
    sealing: Arc<Sealing>,
    ctx: [u8; CTX_LEN],
    /// Sequence number of the next record in this segment.
    next_seq: u64,
    end: u64,
    synced: u64,
    /// End of the last record (not marker) written, and the durable mark
    /// the last sync marker claimed: a marker is due when an fsync covered
    /// records no marker vouches for yet.
    records_end: u64,
    claimed: u64,
    group: Vec<u8>,
    taken: Vec<Ready>,
    last_sync: Instant,
}

#[derive(Debug)]
struct Session {
    db_id: DbId,
    sealed: bool,
    algorithm: AlgorithmId,
    dek: KeyId,
    salt: SessionSalt,
}

/// One writer session: how it seals and what its headers record.
#[derive(Debug)]
struct Sealing {
    protect: Protect,
    session: Session,
}

impl Sealing {
    /// Starts a new writer session (a fresh salt) under the active key, or
    /// the plaintext "session".
    fn start(keyring: Option<&Arc<Keyring>>, db_id: DbId) -> Result<Sealing> {
        let Some(ring) = keyring else {
            return Ok(Sealing {
                protect: Protect::Plain,
                session: Session {
                    db_id,
                    sealed: false,
                    algorithm: AlgorithmId(0),
                    dek: KeyId(0),
                    salt: SessionSalt([0; 32]),
                },
            });
        };
        if *ring.db_id() != db_id {
            return Err(Error::WrongDatabase { segment: 0 });
        }
        let ws = ring.start_session()?;
        let sealer = ws.sealer(Domain::Wal).clone();
        if sealer.tag_len() != TAG_LEN {
            return Err(Error::InvalidOptions("the algorithm's tag is not 16 bytes"));
        }
        Ok(Sealing {
            protect: Protect::Sealed(sealer),
            session: Session {
                db_id,
                sealed: true,
                algorithm: ws.algorithm(),
                dek: ws.dek(),
                salt: *ws.salt(),
            },
        })
    }
}

impl Session {
    fn header(&self, segment: u64, first_seq: u64, counter: u64) -> SegmentHeader {
        SegmentHeader {
            version: crate::format::VERSION,
            sealed: self.sealed,
            algorithm: self.algorithm,
            dek: self.dek,
            segment,
            first_seq,
            counter,
            db_id: self.db_id,
            salt: self.salt,
        }
    }
}

struct Shared {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    sync_mode: SyncMode,
    segment_size: u64,
    keyring: Option<Arc<Keyring>>,
    db_id: DbId,
    state: Mutex<State>,
    cond: Condvar,
    current: Mutex<Current>,
    stop: AtomicBool,
}

/// A sealed, segmented write-ahead log (see the crate docs).
///
/// `Wal` is `Send + Sync`: share it (`Arc<Wal>`) and append from many
/// threads; concurrent appends are committed together.
pub struct Wal {
    shared: Arc<Shared>,
    syncer: Option<JoinHandle<()>>,
}

impl fmt::Debug for Wal {
    // Record buffers never reach `Debug`: only the log's position.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.shared.state);
        f.debug_struct("Wal")
            .field("dir", &self.shared.dir)
            .field("sync_mode", &self.shared.sync_mode)
            .field("sealed", &st.sealing.session.sealed)
            .field("next_seq", &st.next_seq)
            .field("durable_seq", &st.durable_seq)
            .field("segment", &st.res_segment)
            .finish_non_exhaustive()
    }
}

fn io_err(op: FileOp, path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io(FileError::new(op, path, e))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Wal {
    /// Opens (creating if needed) the log in directory `dir`: replays every
    /// valid record at or after [`WalOptions::first_seq`] into `replay` in
    /// sequence order, repairs a torn tail per the recovery mode, then
    /// starts a new writer session in a new segment.
    pub fn open<F, E>(
        vfs: Arc<dyn Vfs>,
        dir: impl AsRef<Path>,
        options: WalOptions,
        mut replay: F,
    ) -> Result<(Wal, RecoveryReport)>
    where
        F: FnMut(Seq, Batch) -> std::result::Result<(), E>,
        E: Into<ReplayError>,
    {
        let dir = dir.as_ref().to_path_buf();
        if options.first_seq.0 == 0 || options.first_seq.0 > crate::format::MAX_SEQ {
            return Err(Error::InvalidOptions("first_seq must be in 1..=i64::MAX"));
        }
        if options.segment_size < (HEADER_LEN + RECORD_OVERHEAD) as u64 {
            return Err(Error::InvalidOptions(
                "segment_size is smaller than one record",
            ));
        }
        if let SyncMode::Interval(d) = options.sync_mode
            && d.is_zero()
        {
            return Err(Error::InvalidOptions("the sync interval must not be zero"));
        }
        // A new session for every open: never seal again under an earlier
        // session's subkey.
        let sealing = Arc::new(Sealing::start(options.keyring.as_ref(), options.db_id)?);
        let session = &sealing.session;
        if !vfs.exists(&dir).map_err(io_err(FileOp::Dir, &dir))? {
            vfs.create_dir_all(&dir)
                .map_err(io_err(FileOp::Dir, &dir))?;
            if let Some(parent) = dir.parent() {
                vfs.sync_dir(parent)
                    .map_err(io_err(FileOp::SyncDir, parent))?;
            }
        }
        let recovered = Recovery {
            vfs: vfs.as_ref(),
            dir: &dir,
            opts: &options,
            read_only: false,
        }
        .run(&mut |seq, batch| replay(seq, batch).map_err(Into::into))?;
        let mut report = recovered.report;
        let segment = recovered.max_segment + 1;
        let first_seq = recovered.next_seq;
        let (file, path) = create_segment(&*vfs, &dir, &sealing, segment, first_seq)?;
        report.write_segment = segment;
        let mut segments = recovered.segments;
        segments.insert(segment, first_seq);
        let res_ctx = session.header(segment, first_seq, 0).context();
        let stats = WalStats {
            segments_created: 1,
            ..WalStats::default()
        };
        let shared = Arc::new(Shared {
            vfs,
            dir,
            sync_mode: options.sync_mode,
            segment_size: options.segment_size,
            keyring: options.keyring.clone(),
            db_id: options.db_id,
            state: Mutex::new(State {
                sealing: sealing.clone(),
                next_seq: first_seq,
                slot_base: first_seq,
                slots: VecDeque::new(),
                res_segment: segment,
                res_end: HEADER_LEN as u64,
                res_ctx,
                res_sealing: BTreeMap::new(),
                synced_segment: segment,
                synced_end: HEADER_LEN as u64,
                written_seq: first_seq - 1,
                durable_seq: first_seq - 1,
                leader: false,
                waiters: 0,
                poisoned: None,
                closed: false,
                segments,
                pool: Vec::new(),
                stats,
            }),
            cond: Condvar::new(),
            current: Mutex::new(Current {
                segment,
                path,
                file,
                sealing: sealing.clone(),
                ctx: res_ctx,
                next_seq: first_seq,
                end: HEADER_LEN as u64,
                synced: HEADER_LEN as u64,
                records_end: HEADER_LEN as u64,
                claimed: HEADER_LEN as u64,
                group: Vec::new(),
                taken: Vec::new(),
                last_sync: Instant::now(),
            }),
            stop: AtomicBool::new(false),
        });
        let syncer = match options.sync_mode {
            SyncMode::Interval(d) => Some(spawn_syncer(Arc::downgrade(&shared), d)),
            _ => None,
        };
        Ok((Wal { shared, syncer }, report))
    }

    /// Appends `batch` as one record and returns its sequence number once
    /// it is durable per the [`SyncMode`]. Concurrent appends share writes
    /// and fsyncs. An error means the outcome is unknown: the record may
    /// or may not be found after reopening.
    pub fn append(&self, batch: &Batch) -> Result<Seq> {
        let sh = &*self.shared;
        let body = batch.encoded();
        if body.len() > MAX_BODY_LEN {
            return Err(Error::RecordTooLarge {
                len: body.len(),
                max: MAX_BODY_LEN,
            });
        }
        let total = body.len() + RECORD_OVERHEAD;
        let mut st = lock(&sh.state);
        if let Some(p) = &st.poisoned {
            return Err(Error::Poisoned { cause: p.clone() });
        }
        if st.closed {
            return Err(Error::Closed);
        }
        let ticket = match st.sealing.protect.draw() {
            Ok(t) => t,
            // A session that has spent its nonces is replaced (brief 3.3);
            // its records go to a new segment.
            Err(Error::Crypto(CryptoError::SessionExhausted(_))) => {
                sh.rotate_session(&mut st)?;
                st.sealing.protect.draw()?
            }
            Err(e) => return Err(e),
        };
        let sealing = st.sealing.clone();
        let mut buf = st.pool.pop().unwrap_or_default();
        // Reserve: sequence, segment (rotating by size), durable mark.
        if st.res_end > HEADER_LEN as u64 && st.res_end + total as u64 > sh.segment_size {
            st.res_segment += 1;
            st.res_end = HEADER_LEN as u64;
            st.res_ctx = sealing.session.header(st.res_segment, 0, 0).context();
            let n = st.res_segment;
            st.res_sealing.insert(n, sealing.clone());
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let segment = st.res_segment;
        let durable_mark = if st.synced_segment == segment {
            st.synced_end
        } else {
            HEADER_LEN as u64
        };
        debug_assert!(durable_mark <= st.res_end);
        st.res_end += total as u64;
        let ctx = st.res_ctx;
        st.slots.push_back(None);
        drop(st);

        // Encode and seal outside the lock.
        buf.clear();
        buf.reserve(total);
        buf.resize(RECORD_HEADER_LEN, 0);
        buf.extend_from_slice(body);
        buf.resize(total, 0);
        let hdr = RecordHeader {
            len: body.len() as u32,
            marker: false,
            seq,
            counter: ticket.as_ref().map_or(0, |t| t.counter()),
            durable_mark,
        };
        hdr.encode_into(&mut buf);
        let sealed = sealing.protect.seal_record(ticket, &ctx, &mut buf);

        let mut st = lock(&sh.state);
        if let Err(e) = sealed {
            // The sequence number is lost; later records can never be
            // written in order. Poison the log.
            let e = Arc::new(e);
            st.poisoned.get_or_insert(e.clone());
            sh.cond.notify_all();
            return Err(Error::Poisoned { cause: e });
        }
        let idx = (seq - st.slot_base) as usize;
        if let Some(slot) = st.slots.get_mut(idx) {
            *slot = Some(Ready {
                seq,
                segment,
                buf,
                sealing,
            });
        }
        st.stats.appends += 1;
        let always = sh.sync_mode == SyncMode::Always;
        self.wait(st, seq, always)?;
        Ok(Seq(seq))
    }

    /// Waits until `seq` is written (or durable, with `durable`), leading
    /// commit groups whenever nobody else is.
    fn wait<'a>(&'a self, mut st: MutexGuard<'a, State>, seq: u64, durable: bool) -> Result<()> {
        let sh = &*self.shared;
        loop {
            let done = if durable {
                st.durable_seq >= seq
            } else {
                st.written_seq >= seq
            };
            if done {
                return Ok(());
            }
            if let Some(p) = &st.poisoned {
                return Err(Error::Poisoned { cause: p.clone() });
            }
            if !st.leader && matches!(st.slots.front(), Some(Some(_))) {
                st.leader = true;
                drop(st);
                self.shared.lead();
                st = lock(&sh.state);
                continue;
            }
            st = sh.wait_on(st);
        }
    }

    /// Takes the leader role once every reserved record is written; runs
    /// `f` on the current segment, then leads whatever queued meanwhile.
    fn exclusive<T>(&self, f: impl FnOnce(&Shared, &mut Current) -> Result<T>) -> Result<T> {
        let sh = &*self.shared;
        let mut st = lock(&sh.state);
        loop {
            if let Some(p) = &st.poisoned {
                return Err(Error::Poisoned { cause: p.clone() });
            }
            if !st.leader {
                if st.slots.is_empty() {
                    break;
                }
                if matches!(st.slots.front(), Some(Some(_))) {
                    st.leader = true;
                    drop(st);
                    sh.lead();
                    st = lock(&sh.state);
                    continue;
                }
            }
            st = sh.wait_on(st);
        }
        st.leader = true;
        drop(st);
        let out = {
            let mut cur = lock(&sh.current);
            f(sh, &mut cur)
        };
        let out = out.map_err(|e| {
            // A failed fsync, write or segment creation: the state of the
            // file is unknown, so the log takes no more appends.
            let e = Arc::new(e);
            lock(&sh.state).poisoned.get_or_insert(e.clone());
            Error::Poisoned { cause: e }
        });
        sh.lead();
        out
    }

    /// Makes every record appended so far durable (and writes a sync
    /// marker after them, see `docs/WAL.md`).
    pub fn sync(&self) -> Result<()> {
        self.exclusive(|sh, cur| sh.sync_current(cur, Mark::Yes))
    }

    /// Replays the log in `dir` without changing anything: for a database
    /// opened read-only. Delivers the same batches [`Wal::open`] would and
    /// reports what it would repair (a torn tail is left out of the replay
    /// but not cut; segments it would remove are listed, not removed). A
    /// missing directory is an empty log.
    pub fn replay_read_only<F, E>(
        vfs: Arc<dyn Vfs>,
        dir: impl AsRef<Path>,
        options: WalOptions,
        mut replay: F,
    ) -> Result<RecoveryReport>
    where
        F: FnMut(Seq, Batch) -> std::result::Result<(), E>,
        E: Into<ReplayError>,
    {
        let dir = dir.as_ref();
        if options.first_seq.0 == 0 {
            return Err(Error::InvalidOptions("first_seq must be at least 1"));
        }
        if !vfs.exists(dir).map_err(io_err(FileOp::Dir, dir))? {
            return Ok(RecoveryReport::default());
        }
        let recovered = Recovery {
            vfs: vfs.as_ref(),
            dir,
            opts: &options,
            read_only: true,
        }
        .run(&mut |seq, batch| replay(seq, batch).map_err(Into::into))?;
        Ok(recovered.report)
    }

    /// Starts a new segment: the current one is fsynced, and every later
    /// record goes to a fresh segment (the engine rolls at each memtable
    /// freeze, so a flush can [`retire`](Wal::retire) whole segments).
    /// Returns the new segment's number. Rolling an empty segment is a
    /// no-op that returns it.
    pub fn roll(&self) -> Result<u64> {
        let sh = &*self.shared;
        let target = {
            let mut st = lock(&sh.state);
            if st.res_end > HEADER_LEN as u64 {
                st.res_segment += 1;
                st.res_end = HEADER_LEN as u64;
                st.res_ctx = st.sealing.session.header(st.res_segment, 0, 0).context();
                let (n, sealing) = (st.res_segment, st.sealing.clone());
                st.res_sealing.insert(n, sealing);
                st.stats.rolls += 1;
            }
            st.res_segment
        };
        self.create_reserved(target)
    }

    /// Starts a new writer session (a fresh salt, under the keyring's
    /// active data key) in a new segment, which it returns. The engine
    /// calls it after rotating the data key, so new records are sealed
    /// under the new key; the log also does it by itself when a session
    /// has spent its nonces.
    pub fn new_session(&self) -> Result<u64> {
        let sh = &*self.shared;
        let target = {
            let mut st = lock(&sh.state);
            if let Some(p) = &st.poisoned {
                return Err(Error::Poisoned { cause: p.clone() });
            }
            sh.rotate_session(&mut st)?;
            st.res_segment
        };
        self.create_reserved(target)
    }

    /// Syncs the current segment and creates segment `target` (reserved
    /// by the caller) unless a record already did.
    fn create_reserved(&self, target: u64) -> Result<u64> {
        // Every record reserved before is written once we lead; records
        // reserved after belong to `target` or later.
        self.exclusive(|sh, cur| {
            sh.seal_tail(cur)?;
            if cur.segment < target {
                // The session `target` was reserved under, not the current
                // one: another thread may have rotated it since.
                let (first_seq, sealing) = {
                    let st = lock(&sh.state);
                    let sealing = st.res_sealing.get(&target).unwrap_or(&st.sealing);
                    (st.slot_base, sealing.clone())
                };
                sh.switch(cur, target, first_seq, &sealing)?;
            }
            Ok(target)
        })
    }

    /// Removes every segment whose records all have sequence numbers at or
    /// below `up_to` (a flush made them obsolete), never the one being
    /// written; the directory is fsynced after. Returns how many.
    pub fn retire(&self, up_to: Seq) -> Result<usize> {
        let sh = &*self.shared;
        let victims: Vec<u64> = {
            let st = lock(&sh.state);
            let firsts: Vec<(u64, u64)> = st.segments.iter().map(|(a, b)| (*a, *b)).collect();
            firsts
                .windows(2)
                .filter(|w| w[1].1 <= up_to.0.saturating_add(1))
                .map(|w| w[0].0)
                .collect()
        };
        if victims.is_empty() {
            return Ok(0);
        }
        for n in &victims {
            let path = segment_path(&sh.dir, *n);
            sh.vfs
                .remove_file(&path)
                .map_err(io_err(FileOp::Remove, &path))?;
            let mut st = lock(&sh.state);
            st.segments.remove(n);
            st.stats.segments_retired += 1;
        }
        sh.vfs
            .sync_dir(&sh.dir)
            .map_err(io_err(FileOp::SyncDir, &sh.dir))?;
        tracing::debug!(
            up_to_seq = up_to.0,
            segments = ?victims,
            "WAL segments retired"
        );
        Ok(victims.len())
    }

    /// How many live segments (not yet retired) each data key id sealed,
    /// read from their headers (0 is plaintext). Used to decide when a
    /// data key can be retired: a segment under it must be retired first.
    pub fn key_usage(&self) -> Result<BTreeMap<KeyId, u64>> {
        let sh = &*self.shared;
        let live: Vec<u64> = lock(&sh.state).segments.keys().copied().collect();
        let mut usage = BTreeMap::new();
        for n in live {
            let path = segment_path(&sh.dir, n);
            let file = match sh.vfs.open(&path, OpenMode::Read) {
                Ok(f) => f,
                // Retired meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(FileOp::Open, &path)(e)),
            };
            let mut bytes = [0u8; HEADER_LEN];
            file.read_exact_at(&mut bytes, 0)
                .map_err(io_err(FileOp::Read, &path))?;
            let h = SegmentHeader::decode(&bytes).ok_or(Error::Corruption {
                segment: n,
                offset: 0,
                what: "not a segment header of this format",
            })?;
            *usage.entry(h.dek).or_insert(0) += 1;
        }
        Ok(usage)
    }

    /// The sequence number the next append will get.
    pub fn next_seq(&self) -> Seq {
        Seq(lock(&self.shared.state).next_seq)
    }

    /// The last sequence number known durable (fsynced).
    pub fn durable_seq(&self) -> Seq {
        Seq(lock(&self.shared.state).durable_seq)
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        lock(&self.shared.state).stats
    }

    /// Syncs everything appended, with a durable sync marker after it, and
    /// closes the log; later appends fail.
    pub fn close(mut self) -> Result<()> {
        let out = self.exclusive(|sh, cur| sh.seal_tail(cur));
        self.stop_syncer();
        lock(&self.shared.state).closed = true;
        out
    }

    fn stop_syncer(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.syncer.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.stop_syncer();
    }
}

fn spawn_syncer(shared: Weak<Shared>, every: Duration) -> JoinHandle<()> {
    std::thread::spawn(move || {
        loop {
            std::thread::park_timeout(every);
            let Some(sh) = shared.upgrade() else { return };
            if sh.stop.load(Ordering::SeqCst) {
                return;
            }
            sh.background_sync();
        }
    })
}

impl Shared {
    /// Leads commit groups until no ready record is left, then gives up
    /// the role. Called with `state.leader` set by the caller.
    fn lead(&self) {
        let mut cur = lock(&self.current);
        loop {
            // Take the ready records at the front, one segment at a time.
            let mut taken = std::mem::take(&mut cur.taken);
            let mut st = lock(&self.state);
            if st.poisoned.is_none() {
                let mut bytes = 0usize;
                let mut seg = None;
                while let Some(Some(r)) = st.slots.front() {
                    if seg.is_some_and(|s| s != r.segment) || bytes >= GROUP_MAX {
                        break;
                    }
                    seg = Some(r.segment);
                    bytes += r.buf.len();
                    if let Some(Some(r)) = st.slots.pop_front() {
                        taken.push(r);
                    }
                    st.slot_base += 1;
                }
            }
            if taken.is_empty() {
                st.leader = false;
                let wake = st.waiters > 0;
                drop(st);
                cur.taken = taken;
                if wake {
                    self.cond.notify_all();
                }
                return;
            }
            drop(st);
            let result = self.commit(&mut cur, &taken);
            let mut st = lock(&self.state);
            match result {
                Ok(synced) => {
                    let last = taken.last().map_or(0, |r| r.seq);
                    st.written_seq = last;
                    if synced {
                        st.durable_seq = last;
                    }
                    st.synced_segment = cur.segment;
                    st.synced_end = cur.synced;
                }
                Err(e) => {
                    st.poisoned.get_or_insert(Arc::new(e));
                }
            }
            for r in taken.drain(..) {
                // Keep ordinary buffers; let a huge one go.
                if st.pool.len() < POOL_MAX && r.buf.capacity() <= POOL_BUF_MAX {
                    st.pool.push(r.buf);
                }
            }
            // A notify is a syscall; skip it when nobody waits (a waiter
            // checks its condition under this lock before it sleeps).
            let wake = st.waiters > 0;
            drop(st);
            cur.taken = taken;
            if wake {
                self.cond.notify_all();
            }
        }
    }

    /// Sleeps on `cond`, counted in `waiters`.
    fn wait_on<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        st.waiters += 1;
        let mut st = self.cond.wait(st).unwrap_or_else(|p| p.into_inner());
        st.waiters -= 1;
        st
    }

    /// Writes one group; returns whether it was fsynced.
    fn commit(&self, cur: &mut Current, taken: &[Ready]) -> Result<bool> {
        if let Some(r) = taken.first()
            && r.segment != cur.segment
        {
            self.switch(cur, r.segment, r.seq, &r.sealing)?;
        }
        let bytes: usize = taken.iter().map(|r| r.buf.len()).sum();
        let result = if let [one] = taken {
            cur.file.write_all_at(&one.buf, cur.end)
        } else {
            let mut group = std::mem::take(&mut cur.group);
            group.clear();
            for r in taken {
                group.extend_from_slice(&r.buf);
            }
            let r = cur.file.write_all_at(&group, cur.end);
            cur.group = group;
            r
        };
        result.map_err(io_err(FileOp::Write, &cur.path))?;
        cur.end += bytes as u64;
        cur.records_end = cur.end;
        if let Some(r) = taken.last() {
            cur.next_seq = r.seq + 1;
        }
        {
            let mut st = lock(&self.state);
            st.stats.writes += 1;
            st.stats.bytes_written += bytes as u64;
            // Written to the OS: what an fsync from here on makes durable.
            if let Some(r) = taken.last() {
                st.written_seq = r.seq;
            }
        }
        let sync = match self.sync_mode {
            SyncMode::Always => true,
            SyncMode::Interval(d) => cur.last_sync.elapsed() >= d,
            SyncMode::Never => false,
        };
        if sync {
            self.sync_current(cur, Mark::IfIdle)?;
        }
        Ok(sync)
    }

    /// fsyncs the current segment if it has unsynced bytes; with `mark`,
    /// then writes a sync marker if the fsync covered records that nothing
    /// written after them vouches for yet. The marker itself is left
    /// unsynced (the next fsync covers it; [`Shared::seal_tail`] syncs it).
    fn sync_current(&self, cur: &mut Current, mark: Mark) -> Result<()> {
        if cur.synced < cur.end {
            cur.file
                .sync_data()
                .map_err(io_err(FileOp::Sync, &cur.path))?;
            cur.synced = cur.end;
            lock(&self.state).stats.syncs += 1;
        }
        cur.last_sync = Instant::now();
        // Durable now, whatever happens to the marker.
        let idle = {
            let mut st = lock(&self.state);
            st.synced_segment = cur.segment;
            st.synced_end = cur.synced;
            st.durable_seq = st.written_seq;
            st.slots.is_empty()
        };
        let want = match mark {
            Mark::No => false,
            Mark::Yes => true,
            // A record reserved meanwhile will be written and fsynced in
            // its own group, which decides again: a marker is only worth
            // its write when the log goes idle.
            Mark::IfIdle => idle,
        };
        if want && cur.records_end > cur.claimed && cur.synced >= cur.records_end {
            self.write_marker(cur)?;
        }
        Ok(())
    }

    /// fsyncs the current segment, writes a sync marker if one is due, and
    /// fsyncs that too: the segment's end is durable and proven (before a
    /// roll or a close, when nothing may follow it in this segment).
    fn seal_tail(&self, cur: &mut Current) -> Result<()> {
        self.sync_current(cur, Mark::Yes)?;
        self.sync_current(cur, Mark::No)
    }

    /// Writes a sync marker at the end of the current segment, right after
    /// an fsync: a sealed, empty record whose durable mark is its own
    /// offset. Recovery takes it as proof that every byte before it was
    /// durable, so damage there is `Corruption`, never a torn tail.
    fn write_marker(&self, cur: &mut Current) -> Result<()> {
        debug_assert_eq!(cur.synced, cur.end, "a marker follows an fsync");
        let ticket = match cur.sealing.protect.draw() {
            Ok(t) => t,
            // The session has spent its nonces: the next append moves to a
            // new session and segment, whose records carry marks. Without
            // the marker this tail is only as well proven as before.
            Err(Error::Crypto(CryptoError::SessionExhausted(_))) => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut rec = [0u8; RECORD_OVERHEAD];
        RecordHeader {
            len: 0,
            marker: true,
            seq: cur.next_seq,
            counter: ticket.as_ref().map_or(0, |t| t.counter()),
            durable_mark: cur.end,
        }
        .encode_into(&mut rec);
        cur.sealing
            .protect
            .seal_record(ticket, &cur.ctx, &mut rec)?;
        if cur.file.write_all_at(&rec, cur.end).is_err() {
            // The marker is an extra proof, not a promise: the records
            // before it are durable already. Take back whatever part of it
            // reached the file, so it can never sit as garbage before a
            // later record or segment; only if that fails too is the file's
            // state unknown.
            cur.file
                .set_len(cur.end)
                .map_err(io_err(FileOp::SetLen, &cur.path))?;
            lock(&self.state).stats.sync_marker_failures += 1;
            return Ok(());
        }
        cur.claimed = cur.end;
        cur.end += RECORD_OVERHEAD as u64;
        let mut st = lock(&self.state);
        st.stats.sync_markers += 1;
        st.stats.bytes_written += RECORD_OVERHEAD as u64;
        // Keep the size accounting of reservations in step with the file.
        if st.res_segment == cur.segment {
            st.res_end += RECORD_OVERHEAD as u64;
        }
        Ok(())
    }

    /// Makes the current segment durable, then creates segment `n` (and
    /// any number between, empty, so numbers stay contiguous), each with
    /// its header and directory entry fsynced, and makes `n` current.
    /// Each segment gets the session it was reserved under; `sealing` is
    /// for any that has none recorded.
    fn switch(
        &self,
        cur: &mut Current,
        n: u64,
        first_seq: u64,
        sealing: &Arc<Sealing>,
    ) -> Result<()> {
        debug_assert!(n > cur.segment);
        self.seal_tail(cur)?;
        while cur.segment < n {
            let next = cur.segment + 1;
            let reserved = lock(&self.state).res_sealing.get(&next).cloned();
            let sealing = match reserved {
                Some(s) => s,
                None => Arc::clone(sealing),
            };
            let (file, path) = create_segment(&*self.vfs, &self.dir, &sealing, next, first_seq)?;
            cur.segment = next;
            cur.path = path;
            cur.file = file;
            cur.ctx = sealing.session.header(next, first_seq, 0).context();
            cur.sealing = sealing;
            cur.next_seq = first_seq;
            cur.end = HEADER_LEN as u64;
            cur.synced = HEADER_LEN as u64;
            cur.records_end = HEADER_LEN as u64;
            cur.claimed = HEADER_LEN as u64;
            let mut st = lock(&self.state);
            st.segments.insert(next, first_seq);
            // Created: drop its reservation (and any older one).
            st.res_sealing = st.res_sealing.split_off(&(next + 1));
            st.stats.segments_created += 1;
            st.synced_segment = next;
            st.synced_end = HEADER_LEN as u64;
            tracing::debug!(
                segment = next,
                first_seq,
                data_key = %cur.sealing.session.dek,
                path = %cur.path.display(),
                "WAL segment started"
            );
        }
        Ok(())
    }

    /// Replaces the writer session; later reservations go to a new
    /// segment, since a segment's header names one session.
    fn rotate_session(&self, st: &mut State) -> Result<()> {
        st.sealing = Arc::new(Sealing::start(self.keyring.as_ref(), self.db_id)?);
        st.res_segment += 1;
        st.res_end = HEADER_LEN as u64;
        st.res_ctx = st.sealing.session.header(st.res_segment, 0, 0).context();
        let (n, sealing) = (st.res_segment, st.sealing.clone());
        st.res_sealing.insert(n, sealing);
        st.stats.sessions += 1;
        Ok(())
    }

    /// The interval syncer's tick: fsync if anything is unsynced and no
    /// leader is busy (a busy leader syncs on its own schedule).
    fn background_sync(&self) {
        let mut st = lock(&self.state);
        if st.leader || st.poisoned.is_some() || st.durable_seq >= st.written_seq {
            return;
        }
        st.leader = true;
        drop(st);
        let r = {
            let mut cur = lock(&self.current);
            self.sync_current(&mut cur, Mark::Yes)
        };
        if let Err(e) = r {
            lock(&self.state).poisoned.get_or_insert(Arc::new(e));
        }
        self.lead();
    }
}

/// Creates segment `n`: header written and fsynced, directory fsynced.
fn create_segment(
    vfs: &dyn Vfs,
    dir: &Path,
    sealing: &Sealing,
    n: u64,
    first_seq: u64,
) -> Result<(Arc<dyn VfsFile>, PathBuf)> {
    let Sealing { protect, session } = sealing;
    let path = segment_path(dir, n);
    let ticket = protect.draw()?;
    let counter = ticket.as_ref().map_or(0, |t| t.counter());
    let mut header = session.header(n, first_seq, counter).encode();
    protect.seal_header(ticket, &mut header)?;
    let file = vfs
        .open(&path, OpenMode::CreateNew)
        .map_err(io_err(FileOp::Open, &path))?;
    file.write_all_at(&header, 0)
        .map_err(io_err(FileOp::Write, &path))?;
    file.sync_data().map_err(io_err(FileOp::Sync, &path))?;
    vfs.sync_dir(dir).map_err(io_err(FileOp::SyncDir, dir))?;
    Ok((file, path))
}
