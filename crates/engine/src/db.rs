//! [`Db`]: an open database.
//!
//! # Write path
//!
//! Every batch goes through [`crate::write`]: admitted and numbered by the
//! WAL, written, applied to the active memtable, published in order.
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
use sealkv_core_store::{Finder, ReadTxn, Store};
use sealkv_core_wal::Wal;
use sealkv_fileio::VfsLock;

use sealkv_core_wal::Durability;

use crate::batch::WriteBatch;
use crate::config::Config;
use crate::error::Error;
use crate::flush::{FlushSignal, FlushState, Frozen};
use crate::iter::{DbIter, MemSource, borrowed};
use crate::keyfilter::KeyHash;
use crate::keys::KeyState;
use crate::keyspace::catalog::Catalog;
use crate::keyspace::prefix::{DEFAULT, MAX_PREFIX_LEN, Prefix};
use crate::keyspace::{Keyspace, UserBounds, bounds, prefix_bounds};
use crate::memtable::{InternalKey, Memtable, Seq};
use crate::merge::SortedSource;
use crate::poison::{Poison, PoisonCause};
use crate::publish::Publisher;
use crate::snapshot::Snapshot;
use crate::stats::{Counters, Stats};
use crate::txn::conflict::ConflictWindow;
use crate::write::Commit;

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
    /// The named keyspaces.
    pub(crate) catalog: Catalog,
    /// Write sets of recent batches, for transactions to check against.
    pub(crate) conflicts: Mutex<ConflictWindow>,
    /// A number no other open database in this process has: keyspace
    /// handles carry it, so one of another database is refused.
    pub(crate) instance: u64,
    /// The freshness anchor, if one is configured.
    pub(crate) freshness: Option<crate::freshness::Freshness>,
    /// What the open repaired or stepped around: `verify` reports it.
    pub(crate) open_findings: crate::verify::OpenFindings,
    pub(crate) _lock: Box<dyn VfsLock>,
    /// The process that opened the database. A child forked after the
    /// open holds copies of the writer sessions (salts and nonce
    /// counters) and of the log's and the page file's positions; the
    /// directory lock (an `flock`) is shared with it. A write there would
    /// reuse nonces and race the parent in the same files, so every write
    /// refuses ([`Error::ForkedProcess`]); reads go on.
    pub(crate) opened_by: sealkv_fileio::OpenedBy,
}

/// The source of [`Inner::instance`].
static INSTANCES: AtomicU64 = AtomicU64::new(1);

/// A fresh [`Inner::instance`].
pub(crate) fn next_instance() -> u64 {
    INSTANCES.fetch_add(1, Ordering::Relaxed)
}

/// The default keyspace's prefix: what `Db`'s own reads and writes use.
pub(crate) fn default_prefix() -> Prefix {
    Prefix::of(DEFAULT)
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
        self.check_open()?;
        self.inner.get(default_prefix().key(key.as_ref()))
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, Error> {
        Ok(self.get(key)?.is_some())
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
        self.write_with(batch, Durability::AsConfigured)
    }

    /// [`write`](Self::write), acknowledged as `durability` says rather
    /// than as the sync mode does: [`Durability::Buffered`] returns once
    /// the log record reaches the OS (a power cut may lose it, together
    /// with every write after it, never one before), [`Durability::Sync`]
    /// once an fsync covers it.
    pub fn write_with(&self, batch: &WriteBatch, durability: Durability) -> Result<(), Error> {
        self.check_open()?;
        batch.check(self.max_key_len())?;
        if let Some(ks) = batch.keyspaces().find(|ks| ks.owner != self.inner.instance) {
            return Err(Error::ForeignKeyspace {
                name: ks.name.clone(),
            });
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.inner
            .commit(batch, Commit::plain(durability))
            .map(|_| ())
    }

    /// Deletes every key of the default keyspace in `range`; returns how
    /// many it deleted. The keys go in batches of at most 1,024 keys (and
    /// 4 MiB of keys), each atomic and durable as a [`write`](Self::write)
    /// is; a crash or an error between two batches leaves the earlier ones
    /// done and the later keys in place (run it again to finish). Each
    /// batch deletes the keys present when it is taken: a key written into
    /// the range while this runs may or may not survive. The keys are
    /// listed from the leaves alone (no value is read), and the flush frees
    /// the pages they leave empty.
    pub fn delete_range<K: AsRef<[u8]>>(
        &self,
        range: impl std::ops::RangeBounds<K>,
    ) -> Result<u64, Error> {
        self.check_writable()?;
        let (lo, hi) = bounds(&range);
        let p = default_prefix();
        crate::bulk::delete_stored_range(
            &self.inner,
            p.lower(borrowed(&lo)),
            p.upper(borrowed(&hi)),
            None,
            Durability::AsConfigured,
        )
    }

    /// Deletes every key of the default keyspace that starts with
    /// `prefix` (as [`delete_range`](Self::delete_range) does); returns how
    /// many it deleted.
    pub fn delete_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<u64, Error> {
        self.check_writable()?;
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        let p = default_prefix();
        crate::bulk::delete_stored_range(
            &self.inner,
            p.lower(borrowed(&lo)),
            p.upper(borrowed(&hi)),
            None,
            Durability::AsConfigured,
        )
    }

    /// The keys in `range`, in order; reverse with `.rev()`.
    pub fn range<K: AsRef<[u8]>>(
        &self,
        range: impl std::ops::RangeBounds<K>,
    ) -> Result<DbIter, Error> {
        self.check_open()?;
        let view = self.inner.view()?;
        Ok(view.iter_in(&default_prefix(), bounds(&range)))
    }

    /// The keys starting with `prefix`, in order; reverse with `.rev()`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Result<DbIter, Error> {
        self.check_open()?;
        let view = self.inner.view()?;
        Ok(view.iter_in(&default_prefix(), prefix_bounds(prefix.as_ref())))
    }

    /// Every key of the default keyspace, in order; reverse with `.rev()`.
    pub fn iter(&self) -> Result<DbIter, Error> {
        self.range::<&[u8]>(..)
    }

    /// The keyspace called `name`, created (durably) if it does not exist
    /// yet. Names are 1 to [`MAX_KEYSPACE_NAME_LEN`](crate::MAX_KEYSPACE_NAME_LEN)
    /// bytes; they are stored sealed like data. A read-only database
    /// answers [`Error::KeyspaceNotFound`] for a name it lacks.
    pub fn keyspace(&self, name: &str) -> Result<Keyspace, Error> {
        self.check_open()?;
        let state = Catalog::open_or_create(&self.inner, name)?;
        Ok(Keyspace {
            db: self.clone(),
            state,
        })
    }

    /// The names of the named keyspaces, in order (the default keyspace,
    /// which has no name, is not listed).
    pub fn keyspaces(&self) -> Result<Vec<String>, Error> {
        self.check_open()?;
        self.inner.catalog.names()
    }

    /// Removes keyspace `name` with all its keys; returns whether it
    /// existed. Handles to it answer [`Error::KeyspaceDropped`] from then
    /// on, and no write to it is admitted after the drop. Its keys are
    /// deleted in bounded, atomic batches before this returns (their pages
    /// are reused once flushed); a crash in between finishes the deletion
    /// at the next open. A new keyspace of the same name is a new, empty
    /// keyspace.
    pub fn drop_keyspace(&self, name: &str) -> Result<bool, Error> {
        self.check_writable()?;
        Catalog::drop_keyspace(&self.inner, name)
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
        self.inner.check_process()?;
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

    /// The longest key this database accepts, in any keyspace: a quarter
    /// of a page less overhead and the keyspace prefix (959 bytes with 4 KiB
    /// pages, 16 319 with 64 KiB pages).
    pub fn max_key_len(&self) -> usize {
        self.inner.store.max_key_len() - MAX_PREFIX_LEN
    }

    pub(crate) fn check_open(&self) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Refuses changes to a closed, read-only or poisoned database, and
    /// in a child forked after the open.
    pub(crate) fn check_writable(&self) -> Result<(), Error> {
        self.check_open()?;
        if self.inner.wal.is_none() {
            return Err(Error::ReadOnly);
        }
        self.inner.check_process()?;
        self.inner.poisoned.check()
    }

    /// Lets tests reach the fork check without forking: the handle (its
    /// log and page file too) takes itself for opened by process `pid`.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn pretend_opened_by(&self, pid: u32) {
        self.inner.opened_by.pretend(pid);
        self.inner.store.pretend_opened_by(pid);
        if let Some(wal) = &self.inner.wal {
            wal.pretend_opened_by(pid);
        }
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
        if let Some(slot) = self.get_in_memtables(key) {
            return Ok(slot);
        }
        self.db.counters.tree_reads.fetch_add(1, Ordering::Relaxed);
        self.tree.get(key).map_err(|e| self.db.store_error(e))
    }

    /// [`View::get`] with the tree read through `finder` (made from this
    /// view's tree), which keeps its place from one read to the next.
    pub(crate) fn get_found(
        &self,
        finder: &mut Finder<'_>,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, Error> {
        if let Some(slot) = self.get_in_memtables(key) {
            return Ok(slot);
        }
        self.db.counters.tree_reads.fetch_add(1, Ordering::Relaxed);
        finder.get(key).map_err(|e| self.db.store_error(e))
    }

    /// [`View::get_found`] into `out` (cleared): whether `key` is
    /// present.
    pub(crate) fn get_found_into(
        &self,
        finder: &mut Finder<'_>,
        key: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        if let Some(slot) = self.get_in_memtables(key) {
            out.clear();
            out.extend_from_slice(slot.as_deref().unwrap_or_default());
            return Ok(slot.is_some());
        }
        self.db.counters.tree_reads.fetch_add(1, Ordering::Relaxed);
        finder
            .get_into(key, out)
            .map_err(|e| self.db.store_error(e))
    }

    /// The newest version of `key` in the memtables, if one holds one.
    fn get_in_memtables(&self, key: &[u8]) -> Option<crate::memtable::Slot> {
        // A memtable that is empty (a byte count of zero: see
        // `iter_stored_range`) or whose key filter rules the key out holds
        // no version of it at or below `at`; with every one ruled out, no
        // search key is made and none is searched.
        let hash = KeyHash::of(key);
        if !self.mems.iter().any(|m| m.may_hold(hash)) {
            return None;
        }
        newest_in(
            &self.mems,
            hash,
            &InternalKey::search(key.to_vec(), self.at),
        )
    }

    /// The user keys of keyspace `prefix` within `user` bounds.
    pub(crate) fn iter_in(&self, prefix: &Prefix, (lo, hi): UserBounds) -> DbIter {
        let lower = prefix.lower(borrowed(&lo));
        let upper = prefix.upper(borrowed(&hi));
        self.iter_stored_range(borrowed(&lower), borrowed(&upper), prefix.as_bytes().len())
    }

    /// Stored keys within `(lower, upper)`, each with its first `strip`
    /// bytes cut.
    pub(crate) fn iter_stored_range(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        strip: usize,
    ) -> DbIter {
        // A memtable whose byte count is zero holds no version at or below
        // `at`: a writer adds to the count after its insert and before it
        // publishes its batch, `at` was loaded (acquire) after that, and a
        // memtable never loses an entry. (Not the skip list's `len`, which
        // crossbeam documents as approximate under concurrent change.) With
        // every one empty, the tree is read without a merge.
        if self.mems.iter().all(|m| m.approx_bytes() == 0) {
            let tree = crate::tree::TreeSource::new(&self.tree, lower, upper, self.db.clone());
            return DbIter::tree_only(tree, strip);
        }
        DbIter::merged(self.sources(lower, upper), strip)
    }

    /// The memtables that hold something and the tree, newest first, each
    /// within `(lower, upper)` of stored keys.
    pub(crate) fn sources(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Vec<Box<dyn SortedSource<Error> + Send>> {
        let tree = crate::tree::TreeSource::new(&self.tree, lower, upper, self.db.clone());
        let mut sources: Vec<Box<dyn SortedSource<Error> + Send>> = self
            .mems
            .iter()
            .filter(|m| m.approx_bytes() != 0)
            .map(|m| {
                Box::new(MemSource::new(m.clone(), self.at, lower, upper))
                    as Box<dyn SortedSource<Error> + Send>
            })
            .collect();
        sources.push(Box::new(tree));
        sources
    }
}

/// The newest version of `search`'s key at or below its sequence number in
/// `mems` (newest memtable first), searching only the memtables whose key
/// filter leaves `hash`, the key's hash: `Some(None)` for a tombstone,
/// `None` if none of them has one.
fn newest_in<'a>(
    mems: impl IntoIterator<Item = &'a Arc<Memtable>>,
    hash: KeyHash,
    search: &InternalKey,
) -> Option<crate::memtable::Slot> {
    mems.into_iter()
        .filter(|m| m.may_hold(hash))
        .find_map(|m| m.get_at(search))
}

impl Inner {
    /// The value of `key` in the current read state: what [`Inner::view`]
    /// and [`View::get`] give, without building a view (no memtable list,
    /// no handles: the tree snapshot is pinned for this lookup only).
    pub(crate) fn get(&self, stored: Vec<u8>) -> Result<Option<Vec<u8>>, Error> {
        // As in `view`: under the memtable lock no freeze can happen, so
        // the tree snapshot pinned here holds only batches at or below
        // `at`, and the memtables searched are the ones it lacks.
        let mems = self.mems.read();
        let at = self.publisher.visible();
        let tree = self.store.pin();
        // One search key for every memtable, and its key for the tree.
        let hash = KeyHash::of(&stored);
        let search = InternalKey::search(stored, at);
        let memtables = std::iter::once(&mems.active).chain(mems.frozen.iter().map(|f| &f.mem));
        if let Some(slot) = newest_in(memtables, hash, &search) {
            return Ok(slot);
        }
        drop(mems);
        self.counters.tree_reads.fetch_add(1, Ordering::Relaxed);
        tree.get(search.key()).map_err(|e| self.store_error(e))
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

    /// The conflict window, locked.
    pub(crate) fn conflicts(&self) -> parking_lot::MutexGuard<'_, ConflictWindow> {
        self.conflicts.lock()
    }

    pub(crate) fn close(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Err(forked) = self.check_process() {
            self.abandon_in_forked_child();
            return Err(forked);
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

    /// Closes a handle in a child forked after the open without writing
    /// (no flush, no anchor update, no log sync: those belong to the
    /// parent) and without joining the flusher, a thread of the parent
    /// that does not exist in the child.
    fn abandon_in_forked_child(&self) {
        self.closed.store(true, Ordering::Release);
        if let Some(flusher) = self.flusher.lock().take() {
            std::mem::forget(flusher);
        }
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

    /// Refuses a write in a process other than the one that opened the
    /// database (see [`Inner::opened_by`]).
    pub(crate) fn check_process(&self) -> Result<(), Error> {
        self.opened_by.check().map_err(|f| Error::ForkedProcess {
            opened_by: f.opened_by,
            current: f.current,
        })
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
        // the WAL and are replayed at the next open. In a forked child,
        // nothing: the parent's handle owns the files.
        if self.check_process().is_err() {
            self.abandon_in_forked_child();
            return;
        }
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
