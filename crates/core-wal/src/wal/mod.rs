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
//!
//! The log's jobs live in their own files: `group` (reserving, sealing
//! and the commit groups a leader writes), `segments` (creating, rolling,
//! switching and retiring segment files, and the writer session each one
//! names), `session` (what a writer session seals with and records) and
//! `syncer` (the background fsync of `SyncMode::Interval`).

mod group;
mod segments;
mod session;
mod syncer;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use sealkv_crypto_envelope::{DbId, Keyring};
use sealkv_fileio::{FileError, FileOp, OpenedBy, Vfs, VfsFile};

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::format::{CTX_LEN, HEADER_LEN, RECORD_OVERHEAD};
use crate::options::{RecoveryReport, Seq, SyncMode, WalOptions, WalStats};
use crate::recovery::{Recovery, ReplayError};

use group::Mark;
use segments::create_segment;
use session::Sealing;
use syncer::spawn_syncer;

/// A sealed record waiting for its turn to be written. (No `Debug`:
/// buffers hold record bytes.)
struct Ready {
    seq: u64,
    segment: u64,
    buf: Vec<u8>,
    /// Its appender waits for an fsync: the group that writes it syncs.
    sync: bool,
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
    /// The process that opened the log. A child forked after the open
    /// holds a copy of its writer session (salt and nonce counter) and of
    /// its position in the segment: appending there would reuse nonces and
    /// interleave two writers in one file, so a write refuses.
    opened_by: OpenedBy,
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
        let st = self.shared.state.lock();
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
            opened_by: OpenedBy::current(),
        });
        let syncer = match options.sync_mode {
            SyncMode::Interval(d) => Some(spawn_syncer(Arc::downgrade(&shared), d)),
            _ => None,
        };
        Ok((Wal { shared, syncer }, report))
    }

    /// Makes every record appended so far durable, and writes a sync
    /// marker after them (the proof recovery uses to tell damage to
    /// durable records from a torn tail).
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

    /// Lets tests reach the fork check without forking: the log takes
    /// itself for opened by process `pid`.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn pretend_opened_by(&self, pid: u32) {
        self.shared.opened_by.pretend(pid);
    }

    /// The sequence number the next append will get.
    pub fn next_seq(&self) -> Seq {
        Seq(self.shared.state.lock().next_seq)
    }

    /// The last sequence number known durable (fsynced).
    pub fn durable_seq(&self) -> Seq {
        Seq(self.shared.state.lock().durable_seq)
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        self.shared.state.lock().stats
    }

    /// Syncs everything appended, with a durable sync marker after it, and
    /// closes the log; later appends fail.
    pub fn close(mut self) -> Result<()> {
        let out = self.exclusive(|sh, cur| sh.seal_tail(cur));
        self.stop_syncer();
        self.shared.state.lock().closed = true;
        out
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.stop_syncer();
    }
}

impl Shared {
    /// Refuses a write in a process other than the one that opened the
    /// log (a child forked after the open).
    fn check_process(&self) -> Result<()> {
        self.opened_by.check().map_err(|f| Error::ForkedProcess {
            opened_by: f.opened_by,
            current: f.current,
        })
    }
}
