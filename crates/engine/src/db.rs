//! [`Db`]: an open database.
//!
//! # Write path
//!
//! `write(batch)` appends the batch to the WAL (group commit; durable per
//! the sync mode), inserts it into the active memtable under the sequence
//! number the WAL gave it, then publishes it: readers see batch `n` only
//! once every batch before it is applied too ([`Publisher`]). Writers hold
//! the *gate* shared while they do this; freezing the memtable takes it
//! exclusively, so a frozen memtable holds exactly the batches up to the
//! sequence number recorded at the freeze, and the WAL rolls to a new
//! segment at that point.
//!
//! # Flush
//!
//! Frozen memtables become page-file commits in [`crate::flush`].
//!
//! # Read path
//!
//! A read takes, under the memtable lock, the visible sequence number, the
//! memtables and a page-file read transaction, so it sees one consistent
//! state: memtables filtered to the visible sequence number, then the tree.

use std::collections::VecDeque;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use sealkv_core_store::{ReadTxn, Store};
use sealkv_core_wal::Wal;
use sealkv_fileio::VfsLock;

use crate::batch::WriteBatch;
use crate::config::Config;
use crate::error::Error;
use crate::flush::{FlushSignal, FlushState, Frozen};
use crate::iter::{DbIter, MemSource, borrowed as bound_ref, prefix_upper};
use crate::keys::KeyState;
use crate::memtable::{Memtable, Seq};
use crate::merge::SortedSource;
use crate::poison::{Poison, PoisonCause};
use crate::publish::Publisher;
use crate::snapshot::Snapshot;
use crate::stats::{Counters, Stats};
use sealkv_core_wal::BatchOp;

/// The memtables: the active one and the frozen ones, newest first.
#[derive(Debug)]
pub(crate) struct Memtables {
    pub(crate) active: Arc<Memtable>,
    pub(crate) frozen: VecDeque<Frozen>,
}

impl Memtables {
    pub(crate) fn frozen_bytes(&self) -> usize {
        self.frozen.iter().map(|f| f.mem.approx_bytes()).sum()
    }
}

/// The shared state of an open database.
pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) dir: PathBuf,
    pub(crate) keys: Option<KeyState>,
    /// Whether the WAL and the page file are sealed.
    pub(crate) sealed: bool,
    pub(crate) wal: Option<Wal>,
    pub(crate) store: Store,
    pub(crate) mems: RwLock<Memtables>,
    /// Writers share it; freezing takes it alone.
    pub(crate) gate: RwLock<()>,
    pub(crate) publisher: Publisher,
    pub(crate) flush_state: Mutex<FlushState>,
    pub(crate) signal: Arc<FlushSignal>,
    pub(crate) flusher: Mutex<Option<JoinHandle<()>>>,
    /// Set by the first failed write, commit or flush: no more writes.
    pub(crate) poisoned: Poison,
    pub(crate) closed: AtomicBool,
    pub(crate) counters: Counters,
    pub(crate) torn_tails: AtomicU64,
    /// The freshness anchor, if one is configured.
    pub(crate) freshness: Option<crate::freshness::Freshness>,
    /// What the open repaired or stepped around: `verify` reports it.
    pub(crate) open_findings: crate::verify::OpenFindings,
    pub(crate) _lock: Box<dyn VfsLock>,
}

/// An open database. Cheap to clone (a reference count) and to share across
/// threads; the database closes when the last clone is dropped or
/// [`Db::close`] is called.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = sealkv::Db::open(dir.path())?;
/// db.put(b"hello", b"world")?;
/// assert_eq!(db.get(b"hello")?.as_deref(), Some(&b"world"[..]));
/// db.close()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Db {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.dir)
            .field("encrypted", &self.inner.sealed)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating if needed) a plaintext database at `path` with the
    /// default configuration.
    pub fn open(path: impl AsRef<Path>) -> Result<Db, Error> {
        Self::open_with_config(Config::new(path))
    }

    /// Opens (or creates) the database `config` describes.
    pub fn open_with_config(config: Config) -> Result<Db, Error> {
        crate::open::open(config)
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        let key = key.as_ref();
        self.check_open()?;
        self.inner.get(key)
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        let mut b = WriteBatch::new();
        b.put(key, value);
        self.write(&b)
    }

    /// Removes `key` (no error if it is absent).
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<(), Error> {
        let mut b = WriteBatch::new();
        b.delete(key);
        self.write(&b)
    }

    /// Applies `batch` atomically. Returns once it is durable as the sync
    /// mode promises; it is then visible to every later read, from any
    /// thread (with several writers, a write also waits for the batches
    /// ordered before it to be applied).
    pub fn write(&self, batch: &WriteBatch) -> Result<(), Error> {
        self.check_open()?;
        batch.check(self.max_key_len())?;
        if batch.is_empty() {
            return Ok(());
        }
        self.inner.write(batch)
    }

    /// Every key, in order; reverse with `.rev()`.
    pub fn iter(&self) -> Result<DbIter, Error> {
        self.check_open()?;
        let view = self.inner.view()?;
        Ok(view.iter(Bound::Unbounded, Bound::Unbounded))
    }

    /// The keys in `range`, in order; reverse with `.rev()`.
    pub fn range<K: AsRef<[u8]>>(
        &self,
        range: impl std::ops::RangeBounds<K>,
    ) -> Result<DbIter, Error> {
        self.check_open()?;
        let lower = range.start_bound().map(|k| k.as_ref().to_vec());
        let upper = range.end_bound().map(|k| k.as_ref().to_vec());
        let view = self.inner.view()?;
        Ok(view.iter(bound_ref(&lower), bound_ref(&upper)))
    }

    /// The keys starting with `prefix`, in order; reverse with `.rev()`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Result<DbIter, Error> {
        self.check_open()?;
        let prefix = prefix.as_ref();
        let upper = prefix_upper(prefix);
        let view = self.inner.view()?;
        Ok(view.iter(Bound::Included(prefix), bound_ref(&upper)))
    }

    /// A consistent, read-only view as of now, unaffected by later writes.
    pub fn snapshot(&self) -> Result<Snapshot, Error> {
        self.check_open()?;
        Ok(Snapshot::new(self.inner.view()?))
    }

    /// Writes every acknowledged batch into the page file and retires the
    /// WAL it no longer needs.
    pub fn flush(&self) -> Result<(), Error> {
        self.check_open()?;
        self.inner.flush_all()
    }

    /// Flushes, stops the flusher and closes the files. Other clones of this
    /// `Db` fail with [`Error::Closed`] afterwards.
    pub fn close(self) -> Result<(), Error> {
        self.inner.close()
    }

    /// Counters and the encryption status.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.check_open()?;
        self.inner.stats()
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// The database's id (recorded in every file's header; archives
    /// record it as their source).
    pub fn id(&self) -> sealkv_crypto_envelope::DbId {
        self.inner.store.db_id()
    }

    /// The longest key this database accepts: a quarter of a page less
    /// overhead (964 bytes with 4 KiB pages, 16 324 with 64 KiB pages).
    pub fn max_key_len(&self) -> usize {
        self.inner.store.max_key_len()
    }

    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Refuses changes to a closed, read-only or poisoned database.
    pub(crate) fn check_writable(&self) -> Result<(), Error> {
        self.check_open()?;
        if self.inner.wal.is_none() {
            return Err(Error::ReadOnly);
        }
        self.inner.poisoned.check()
    }
}

/// One consistent read state: a sequence number, the memtables, and a page
/// file read transaction.
pub(crate) struct View {
    pub(crate) at: Seq,
    pub(crate) mems: Vec<Arc<Memtable>>,
    pub(crate) tree: ReadTxn,
    pub(crate) db: Arc<Inner>,
}

impl View {
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        if let Some(slot) = newest_in(&self.mems, key, self.at) {
            return Ok(slot);
        }
        self.db.counters.tree_reads.fetch_add(1, Ordering::Relaxed);
        self.tree.get(key).map_err(|e| self.db.store_error(e))
    }

    pub(crate) fn iter(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> DbIter {
        let tree = crate::tree::TreeSource::new(&self.tree, lower, upper, self.db.clone());
        // A memtable whose byte count is zero holds no version at or below
        // `at`: a writer adds to the count after its insert and before it
        // publishes its batch, `at` was loaded (acquire) after that, and a
        // memtable never loses an entry. (Not the skip list's `len`, which
        // crossbeam documents as approximate under concurrent change.) With
        // every one empty, the tree is read without a merge.
        let empty = |m: &&Arc<Memtable>| m.approx_bytes() == 0;
        if self.mems.iter().all(|m| empty(&m)) {
            return DbIter::tree_only(tree);
        }
        let mut sources: Vec<Box<dyn SortedSource<Error> + Send>> = self
            .mems
            .iter()
            .filter(|m| !empty(m))
            .map(|m| {
                Box::new(MemSource::new(m.clone(), self.at, lower, upper))
                    as Box<dyn SortedSource<Error> + Send>
            })
            .collect();
        sources.push(Box::new(tree));
        DbIter::merged(sources)
    }
}

/// The newest version of `key` at or below `at` in `mems` (newest memtable
/// first): `Some(None)` for a tombstone, `None` if none of them has one.
fn newest_in<'a>(
    mems: impl IntoIterator<Item = &'a Arc<Memtable>>,
    key: &[u8],
    at: Seq,
) -> Option<crate::memtable::Slot> {
    mems.into_iter().find_map(|m| m.get(key, at))
}

impl Inner {
    /// The value of `key` in the current read state: what [`Inner::view`]
    /// and [`View::get`] give, without building a view (no memtable list,
    /// no handles: the tree snapshot is pinned for this lookup only).
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        // As in `view`: under the memtable lock no freeze can happen, so
        // the tree snapshot pinned here holds only batches at or below
        // `at`, and the memtables searched are the ones it lacks.
        let mems = self.mems.read();
        let at = self.publisher.visible();
        let tree = self.store.pin();
        let memtables = std::iter::once(&mems.active).chain(mems.frozen.iter().map(|f| &f.mem));
        if let Some(slot) = newest_in(memtables, key, at) {
            return Ok(slot);
        }
        drop(mems);
        self.counters.tree_reads.fetch_add(1, Ordering::Relaxed);
        tree.get(key).map_err(|e| self.store_error(e))
    }

    /// The current consistent read state.
    pub(crate) fn view(self: &Arc<Self>) -> Result<View, Error> {
        // Under the memtable lock no freeze can happen, so any page-file
        // commit the read transaction sees holds only batches at or below
        // the visible sequence number read here.
        let mems = self.mems.read();
        let at = self.publisher.visible();
        let mut list = Vec::with_capacity(1 + mems.frozen.len());
        list.push(mems.active.clone());
        list.extend(mems.frozen.iter().map(|f| f.mem.clone()));
        let tree = self.store.read();
        drop(mems);
        Ok(View {
            at,
            mems: list,
            tree,
            db: self.clone(),
        })
    }

    fn write(self: &Arc<Self>, batch: &WriteBatch) -> Result<(), Error> {
        self.poisoned.check()?;
        let wal = self.wal.as_ref().ok_or(Error::ReadOnly)?;
        self.wait_for_backlog()?;
        let gate = self.gate.read();
        let seq = match wal.append(&batch.inner) {
            Ok(seq) => seq.0,
            Err(e) => {
                // The batch's outcome is unknown (it may be in the log).
                let cause = self.poison(PoisonCause::wal(e));
                return Err(Error::Poisoned {
                    cause,
                    outcome_unknown: true,
                });
            }
        };
        let active = self.mems.read().active.clone();
        for op in batch.ops() {
            match op {
                BatchOp::Put { key, value } => active.insert(key, seq, Some(value)),
                BatchOp::Delete { key } => active.insert(key, seq, None),
            }
        }
        self.publisher.finish(seq);
        drop(gate);
        // Acknowledged means visible to every later read: wait for the
        // batches before this one that other writers are still applying.
        // If one of them failed (the database is then poisoned), this batch
        // never becomes visible here: its outcome is unknown, as for a
        // write that fails.
        if !self.publisher.wait_visible(seq, || self.poisoned.is_set()) {
            // In the log, so possibly found after reopening. (The wait
            // gives up only once the database is poisoned.)
            return Err(self.poisoned.error(true).unwrap_or(Error::Closed));
        }
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_written
            .fetch_add(batch.size_in_bytes() as u64, Ordering::Relaxed);
        if active.approx_bytes() as u64 >= self.config.memtable_size {
            // The batch is in the log and visible: it is acknowledged
            // whatever the freeze does. A failed freeze (the WAL roll)
            // poisons the database, so the writes after this one are
            // refused with its cause.
            match self.freeze(self.config.memtable_size) {
                Ok(true) => self.signal.kick(),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "rolling the WAL after a write failed"),
            }
        }
        Ok(())
    }

    pub(crate) fn close(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        tracing::debug!(path = %self.dir.display(), "database closing");
        let flushed = if self.poisoned.is_set() {
            Ok(())
        } else {
            // The freshness anchor is brought up to date whatever its
            // policy.
            self.flush_all().and_then(|()| match self.wal {
                Some(_) => {
                    let _st = self.lock_flush()?;
                    self.committed(true)
                }
                None => Ok(()),
            })
        };
        self.closed.store(true, Ordering::Release);
        self.signal.stop();
        let handle = self.flusher.lock().take();
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
        if let Some(wal) = &self.wal {
            wal.sync().map_err(|e| self.wal_error(e))?;
        }
        flushed
    }

    /// Stops writes for good, recording `cause` unless an earlier failure
    /// was recorded; returns the first cause.
    pub(crate) fn poison(&self, cause: PoisonCause) -> PoisonCause {
        let first = self.poisoned.set(cause);
        self.signal.done.notify_all();
        first
    }

    pub(crate) fn stats(&self) -> Result<Stats, Error> {
        crate::stats::collect(self)
    }

    pub(crate) fn store_error(&self, e: sealkv_core_store::StoreError) -> Error {
        crate::errmap::store(&self.dir, e)
    }

    pub(crate) fn wal_error(&self, e: sealkv_core_wal::Error) -> Error {
        crate::errmap::wal(&self.dir, e)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: stop the flusher (it holds only a weak
        // reference) and make the log durable. Unflushed memtables are in
        // the WAL and are replayed at the next open.
        self.signal.stop();
        if let Some(wal) = &self.wal
            && !self.closed.load(Ordering::Acquire)
        {
            match wal.sync() {
                Ok(()) => {}
                // The failure that poisoned the log was returned to the
                // write that hit it; nothing new to tell.
                Err(e @ sealkv_core_wal::Error::Poisoned { .. }) => {
                    tracing::debug!(error = %e, "no WAL sync at drop: the log is poisoned");
                }
                Err(e) => tracing::warn!(error = %e, "sync of the WAL at drop failed"),
            }
        }
    }
}
