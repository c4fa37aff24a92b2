//! The raft log, the vote and the committed id: openraft's
//! [`RaftLogStorage`] on a sealkv database of their own.
//!
//! Entries live in the keyspace `raft.log` under their index (8 bytes,
//! big-endian, so key order is log order), in postcard; an entry larger
//! than one value is split over several keys after its index (so
//! every request openraft accepts can be logged); the vote, the
//! committed id and the last purged id in `raft.meta`. Every write that
//! openraft relies on after a crash — appends, votes, truncations — is
//! synced before openraft hears of it; a purge is synced as far as it
//! reaches the disk (a purge a crash undoes only keeps more of the log).
//!
//! Appends are group-committed: `append` writes its entries at once (they
//! are readable when it returns, as openraft requires) without waiting for
//! the disk, and hands openraft's callback to the log's syncer thread,
//! which makes one synced write that covers every append before it (the
//! WAL is sequential) and only then calls the callbacks of all of them. So
//! concurrent client writes share an fsync, and no callback runs before
//! its entries are on disk.
//!
//! Crash safety of the multi-key changes:
//!
//! - an append is one synced batch (or, if very large, several, in log
//!   order): a crash keeps a prefix of it, never a hole; a split entry
//!   the crash left incomplete at the end of the log was never
//!   acknowledged and is removed when the log is opened;
//! - a truncation deletes from the end of the log backwards, each batch
//!   synced, so a crash leaves a shorter prefix of the old log (and at
//!   most an incomplete split entry at its end, removed at open);
//! - a purge records the new purged id first (with the first deletions),
//!   and readers ignore every entry at or below it, so what an interrupted
//!   purge leaves is never read and is removed by the next purge.
//!
//! A purge never reaches the disk past the node's current snapshot (its
//! *purge limit*): openraft purges a follower's log up to a received
//! snapshot as soon as it hands the snapshot over, before the state
//! machine has installed it. The part of such a purge above the limit is
//! kept pending, in memory: openraft sees it (readers ignore the entries
//! it covers, the log state reports it), and it is written once the
//! snapshot is installed and the limit rises. A crash or a failed install
//! in between leaves the log as it was, which still brings the state
//! machine up to date. openraft may append past such a purge before the
//! install has finished (after a new leader's append, or when it answers a
//! snapshot sent again at once); an append that would leave a hole on disk
//! below its entries waits until the install raises the limit over the
//! pending purge, and fails if the install fails: the purge never reaches
//! the disk ahead of the snapshot that covers it.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, ErrorSubject, ErrorVerb, LogId, LogState, RaftLogReader, StorageError, Vote,
};
use sealkv::{Db, Durability, Keyspace, WriteBatch};

use crate::codec::{LogKey, decode, encode, index_key, log_key, part_key};
use crate::error::{IntoStorage, StoreError};
use crate::types::{NodeId, SealRaft};

/// The keyspace of the log entries.
pub const LOG_KEYSPACE: &str = "raft.log";
/// The keyspace of the vote, the committed id, the last purged id and the
/// current snapshot's record.
pub const META_KEYSPACE: &str = "raft.meta";

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"purged";
/// Rewritten by each group sync: the synced write that covers the appends.
const SYNCED: &[u8] = b"synced";

/// Deletions per batch in truncations and purges.
const DELETE_CHUNK: usize = 4096;
/// An append is split into batches of about this many bytes.
const APPEND_BATCH_BYTES: usize = 16 << 20;
/// An entry whose encoding is larger than this is split into parts of at
/// most this many bytes (well under [`sealkv::MAX_VALUE_LEN`]).
const PART_BYTES: usize = 4 << 20;

/// Rebuilds entries from the log keyspace's items, in key order: a whole
/// entry from its one value, a split one from its parts.
#[derive(Default)]
struct Assembler {
    /// The split entry being rebuilt: its index, part count, parts so far
    /// and bytes.
    pending: Option<(u64, u32, u32, Vec<u8>)>,
}

impl Assembler {
    /// Takes the next item; returns an entry when one is complete.
    fn push(&mut self, key: &[u8], value: Vec<u8>) -> Result<Option<Entry<SealRaft>>, StoreError> {
        let key = log_key(key)?;
        let bytes = match (self.pending.take(), key) {
            (None, LogKey::Whole(_)) => value,
            (
                None,
                LogKey::Part {
                    index,
                    parts,
                    part: 0,
                },
            ) => {
                self.pending = Some((index, parts, 1, value));
                return Ok(None);
            }
            (
                Some((index, parts, next, mut bytes)),
                LogKey::Part {
                    index: i,
                    parts: n,
                    part,
                },
            ) if i == index && n == parts && part == next => {
                bytes.extend_from_slice(&value);
                if next + 1 < parts {
                    self.pending = Some((index, parts, next + 1, bytes));
                    return Ok(None);
                }
                bytes
            }
            (pending, key) => {
                let index = pending.map_or(key.index(), |p| p.0);
                return Err(StoreError::LogHole { index });
            }
        };
        let entry: Entry<SealRaft> = decode(&bytes, "log entry")?;
        if entry.log_id.index != key.index() {
            return Err(StoreError::LogHole { index: key.index() });
        }
        Ok(Some(entry))
    }

    /// The index of a split entry left incomplete, if any.
    fn incomplete(&self) -> Option<u64> {
        self.pending.as_ref().map(|p| p.0)
    }
}

/// The key bound just past every key of entry `index`.
fn after_index(index: u64) -> Bound<[u8; 8]> {
    match index.checked_add(1) {
        Some(next) => Bound::Excluded(index_key(next)),
        None => Bound::Unbounded,
    }
}

/// openraft's log storage on a sealkv database. Cheap to clone: clones
/// share the database (a clone is also the log reader openraft asks for).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<LogInner>,
}

struct LogInner {
    db: Db,
    log: Keyspace,
    meta: Keyspace,
    syncer: Syncer,
    purge: parking_lot::Mutex<PurgeState>,
    /// Bumped whenever the purge limit rises or an install fails: wakes an
    /// append waiting for a pending purge to be allowed on disk.
    purge_changed: tokio::sync::watch::Sender<u64>,
}

/// How far a purge may reach the disk, and what openraft asked beyond it.
#[derive(Default)]
struct PurgeState {
    /// The last log id the node's current snapshot covers: the disk is not
    /// purged past it.
    limit: Option<LogId<NodeId>>,
    /// A purge openraft asked for past the limit, not yet on disk.
    pending: Option<LogId<NodeId>>,
    /// An install failed since the limit last rose: the pending purge may
    /// never be allowed, so an append waiting for it fails.
    install_failed: bool,
}

/// What an append must do about a pending purge before writing.
enum BeforeAppend {
    /// Nothing: the append leaves no hole on disk (or the purge is written).
    Write,
    /// Wait: the append would leave a hole on disk, and only the install of
    /// the snapshot that covers the pending purge may write it.
    Wait,
}

/// The thread that syncs appends and calls their callbacks.
struct Syncer {
    queue: parking_lot::Mutex<Option<mpsc::Sender<LogFlushed<SealRaft>>>>,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl Syncer {
    fn start(db: Db, meta: Keyspace) -> Result<Syncer, StoreError> {
        let (tx, rx) = mpsc::channel::<LogFlushed<SealRaft>>();
        let thread = std::thread::Builder::new()
            .name("sealkv-raft-sync".into())
            .spawn(move || {
                let mut round: u64 = 0;
                while let Ok(first) = rx.recv() {
                    let mut waiting = vec![first];
                    waiting.extend(rx.try_iter());
                    round = round.wrapping_add(1);
                    let mut batch = WriteBatch::new();
                    batch.put_in(&meta, SYNCED, round.to_be_bytes());
                    let synced = db.write_with(&batch, Durability::Sync);
                    for callback in waiting {
                        let result = match &synced {
                            Ok(()) => Ok(()),
                            Err(e) => Err(std::io::Error::other(e.to_string())),
                        };
                        callback.log_io_completed(result);
                    }
                }
            })
            .map_err(StoreError::io("sealkv-raft-sync thread"))?;
        Ok(Syncer {
            queue: parking_lot::Mutex::new(Some(tx)),
            thread: parking_lot::Mutex::new(Some(thread)),
        })
    }

    /// Calls `callback` once everything written so far is synced.
    fn after_sync(&self, callback: LogFlushed<SealRaft>) -> Result<(), StoreError> {
        let queue = self.queue.lock();
        match queue.as_ref().map(|q| q.send(callback)) {
            Some(Ok(())) => Ok(()),
            _ => Err(StoreError::io("sealkv-raft-sync thread")(
                std::io::Error::other("the log's syncer has stopped"),
            )),
        }
    }
}

impl Drop for LogInner {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has synced what is
        // queued; waiting for it releases its handle on the database.
        self.syncer.queue.lock().take();
        if let Some(thread) = self.syncer.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("path", &self.inner.db.path())
            .finish_non_exhaustive()
    }
}

impl LogStore {
    /// The log storage in `db` (its keyspaces created if missing).
    pub(crate) fn new(db: Db) -> Result<Self, StoreError> {
        let log = db.keyspace(LOG_KEYSPACE)?;
        let meta = db.keyspace(META_KEYSPACE)?;
        let syncer = Syncer::start(db.clone(), meta.clone())?;
        let store = LogStore {
            inner: Arc::new(LogInner {
                db,
                log,
                meta,
                syncer,
                purge: parking_lot::Mutex::new(PurgeState::default()),
                purge_changed: tokio::sync::watch::Sender::new(0),
            }),
        };
        store.remove_incomplete_tail()?;
        Ok(store)
    }

    /// Removes the parts of a split entry a crash left incomplete at the
    /// end of the log (an append or a truncation it interrupted): that
    /// entry was never reported durable.
    fn remove_incomplete_tail(&self) -> Result<(), StoreError> {
        let Some(last) = self.inner.log.iter()?.next_back() else {
            return Ok(());
        };
        let LogKey::Part { index, .. } = log_key(&last?.0)? else {
            return Ok(());
        };
        let keys = self.keys_in((Bound::Included(index_key(index)), after_index(index)))?;
        let mut assembler = Assembler::default();
        for key in &keys {
            if let Some(value) = self.inner.log.get(key)? {
                assembler.push(key, value)?;
            }
        }
        if assembler.incomplete().is_some() {
            let mut batch = WriteBatch::new();
            for key in &keys {
                batch.delete_in(&self.inner.log, key);
            }
            self.inner.db.write_with(&batch, Durability::Sync)?;
        }
        Ok(())
    }

    /// The database the log lives in.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn meta(&self) -> &Keyspace {
        &self.inner.meta
    }

    fn get_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<T>, StoreError> {
        match self.inner.meta.get(key)? {
            Some(bytes) => Ok(Some(decode(&bytes, what)?)),
            None => Ok(None),
        }
    }

    fn put_meta<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
        what: &'static str,
        durability: Durability,
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        batch.put_in(&self.inner.meta, key, encode(value, what)?);
        self.inner.db.write_with(&batch, durability)?;
        Ok(())
    }

    /// Saves `vote`, synced, then flushes the database: a freshness anchor
    /// advances only with a page-file commit, so without the flush an older
    /// copy of the log database put back after the vote would open as
    /// current (the vote rolled back). Votes change once per election, so
    /// the flush is rare.
    fn put_vote(&self, vote: &Vote<NodeId>) -> Result<(), StoreError> {
        self.put_meta(VOTE, vote, "vote", Durability::Sync)?;
        self.inner.db.flush()?;
        Ok(())
    }

    /// The last purged log id, as openraft sees it: a purge still pending
    /// (past the node's current snapshot) included.
    pub fn purged(&self) -> Result<Option<LogId<NodeId>>, StoreError> {
        let pending = self.inner.purge.lock().pending;
        Ok(self.durable_purged()?.max(pending))
    }

    /// The last purged log id on disk.
    pub(crate) fn durable_purged(&self) -> Result<Option<LogId<NodeId>>, StoreError> {
        self.get_meta(PURGED, "purged log id")
    }

    /// Lets purges reach the disk up to `limit` (the last log id the node's
    /// current snapshot covers, now installed), and writes the part of a
    /// pending purge it allows.
    pub(crate) fn raise_purge_limit(&self, limit: Option<LogId<NodeId>>) -> Result<(), StoreError> {
        let mut state = self.inner.purge.lock();
        state.limit = state.limit.max(limit);
        state.install_failed = false;
        let written = match (state.pending, state.limit) {
            (Some(pending), Some(limit)) => self.purge_on_disk(&pending.min(limit)).map(|()| {
                if limit >= pending {
                    state.pending = None;
                }
            }),
            _ => Ok(()),
        };
        drop(state);
        self.inner
            .purge_changed
            .send_modify(|n| *n = n.wrapping_add(1));
        written
    }

    /// Records that installing a snapshot failed: an append waiting for
    /// the pending purge that snapshot would have allowed fails instead of
    /// waiting on.
    pub(crate) fn install_failed(&self) {
        self.inner.purge.lock().install_failed = true;
        self.inner
            .purge_changed
            .send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The id of the last entry present (ignoring what a purge left), or
    /// `None` for an empty log.
    fn last_present(&self, purged: Option<u64>) -> Result<Option<LogId<NodeId>>, StoreError> {
        let Some(last) = self.inner.log.iter()?.next_back() else {
            return Ok(None);
        };
        let (key, _) = last?;
        let index = log_key(&key)?.index();
        if purged.is_some_and(|p| index <= p) {
            return Ok(None);
        }
        match self.entries(index..=index)?.pop() {
            Some(entry) => Ok(Some(entry.log_id)),
            None => Err(StoreError::LogHole { index }),
        }
    }

    /// The entries whose index is in `range`, in order, skipping what a
    /// purge left; refuses a hole.
    pub fn entries(
        &self,
        range: impl RangeBounds<u64>,
    ) -> Result<Vec<Entry<SealRaft>>, StoreError> {
        let purged = self.purged()?.map(|id| id.index);
        let start = match range.start_bound() {
            Bound::Included(&i) => Some(i),
            Bound::Excluded(&i) => i.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let Some(mut start) = start else {
            return Ok(Vec::new());
        };
        if let Some(p) = purged {
            start = start.max(p.saturating_add(1));
        }
        let end = match range.end_bound() {
            Bound::Included(&i) => after_index(i),
            Bound::Excluded(&i) => Bound::Excluded(index_key(i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        let mut assembler = Assembler::default();
        for item in self
            .inner
            .log
            .range((Bound::Included(index_key(start)), end))?
        {
            let (key, value) = item?;
            let Some(entry) = assembler.push(&key, value)? else {
                continue;
            };
            let index = entry.log_id.index;
            let expected = out
                .last()
                .map_or(index, |e: &Entry<SealRaft>| e.log_id.index + 1);
            if index != expected {
                return Err(StoreError::LogHole { index: expected });
            }
            out.push(entry);
        }
        if let Some(index) = assembler.incomplete() {
            return Err(StoreError::LogHole { index });
        }
        Ok(out)
    }

    /// The keys of every entry in `range` (purge leftovers included).
    fn keys_in(&self, range: (Bound<[u8; 8]>, Bound<[u8; 8]>)) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut keys = Vec::new();
        for item in self.inner.log.range(range)? {
            keys.push(item?.0);
        }
        Ok(keys)
    }

    /// Waits until an append at `first` leaves no hole on disk: until the
    /// purge limit covers the pending purge below it, which is then
    /// written. Fails if an install fails meanwhile.
    async fn make_room_for(&self, first: u64) -> Result<(), StoreError> {
        loop {
            // Subscribed before the check: a change after it wakes us.
            let mut changed = self.inner.purge_changed.subscribe();
            match self.purge_pending_below(first)? {
                BeforeAppend::Write => return Ok(()),
                BeforeAppend::Wait => {
                    if changed.changed().await.is_err() {
                        return Err(StoreError::InstallFailed);
                    }
                }
            }
        }
    }

    fn append_entries(
        &self,
        entries: impl IntoIterator<Item = Entry<SealRaft>>,
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        for entry in entries {
            let index = entry.log_id.index;
            let value = encode(&entry, "log entry")?;
            if value.len() <= PART_BYTES {
                batch.put_in(&self.inner.log, index_key(index), value);
            } else {
                let chunks = value.chunks(PART_BYTES);
                let parts = u32::try_from(chunks.len()).map_err(|_| StoreError::Corrupt {
                    what: "log entry (too large to split)",
                })?;
                for (part, chunk) in (0..parts).zip(chunks) {
                    batch.put_in(&self.inner.log, part_key(index, parts, part), chunk);
                    if batch.size_in_bytes() >= APPEND_BATCH_BYTES {
                        self.inner.db.write_with(&batch, Durability::Buffered)?;
                        batch.clear();
                    }
                }
            }
            if batch.size_in_bytes() >= APPEND_BATCH_BYTES {
                self.inner.db.write_with(&batch, Durability::Buffered)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            // Synced by the syncer before openraft hears of it.
            self.inner.db.write_with(&batch, Durability::Buffered)?;
        }
        Ok(())
    }

    /// Deletes every entry from `index` on, last first.
    fn truncate_from(&self, index: u64) -> Result<(), StoreError> {
        let keys = self.keys_in((Bound::Included(index_key(index)), Bound::Unbounded))?;
        for chunk in keys.rchunks(DELETE_CHUNK) {
            let mut batch = WriteBatch::new();
            for key in chunk {
                batch.delete_in(&self.inner.log, key);
            }
            self.inner.db.write_with(&batch, Durability::Sync)?;
        }
        Ok(())
    }

    /// Writes a pending purge if an append at `first` would otherwise leave
    /// a hole on disk (the log on disk ends below `first - 1`: entries
    /// after a hole could not be read back after a restart), provided the
    /// purge limit covers it; otherwise the append must wait for the
    /// install that raises the limit (openraft may append past a snapshot's
    /// purge while the state machine is still installing it), or fail if
    /// that install failed.
    fn purge_pending_below(&self, first: u64) -> Result<BeforeAppend, StoreError> {
        let mut state = self.inner.purge.lock();
        let Some(pending) = state.pending else {
            return Ok(BeforeAppend::Write);
        };
        let last_key = match self.inner.log.iter()?.next_back() {
            Some(item) => Some(log_key(&item?.0)?.index()),
            None => None,
        };
        let durable = self.durable_purged()?.map(|id| id.index);
        let on_disk_next = last_key.max(durable).map_or(0, |i| i.saturating_add(1));
        if first <= on_disk_next {
            return Ok(BeforeAppend::Write);
        }
        if state.limit >= Some(pending) {
            self.purge_on_disk(&pending)?;
            state.pending = None;
            return Ok(BeforeAppend::Write);
        }
        if state.install_failed {
            return Err(StoreError::InstallFailed);
        }
        Ok(BeforeAppend::Wait)
    }

    /// Purges up to `log_id` as openraft asks: on disk up to the purge
    /// limit, the rest pending until the limit rises.
    fn purge_upto(&self, log_id: &LogId<NodeId>) -> Result<(), StoreError> {
        let mut state = self.inner.purge.lock();
        if state.limit >= Some(*log_id) {
            return self.purge_on_disk(log_id);
        }
        if let Some(limit) = state.limit {
            self.purge_on_disk(&limit)?;
        }
        state.pending = state.pending.max(Some(*log_id));
        Ok(())
    }

    /// Records `log_id` as purged on disk, then deletes every entry up to
    /// it; a purge at or below the one on disk changes nothing.
    fn purge_on_disk(&self, log_id: &LogId<NodeId>) -> Result<(), StoreError> {
        if self.durable_purged()? >= Some(*log_id) {
            return Ok(());
        }
        let keys = self.keys_in((Bound::Unbounded, after_index(log_id.index)))?;
        let mut chunks = keys.chunks(DELETE_CHUNK);
        let mut batch = WriteBatch::new();
        batch.put_in(&self.inner.meta, PURGED, encode(log_id, "purged log id")?);
        loop {
            if let Some(chunk) = chunks.next() {
                for key in chunk {
                    batch.delete_in(&self.inner.log, key);
                }
            }
            if batch.is_empty() {
                return Ok(());
            }
            self.inner.db.write_with(&batch, Durability::Sync)?;
            batch.clear();
        }
    }

    fn log_state(&self) -> Result<LogState<SealRaft>, StoreError> {
        let purged = self.purged()?;
        let last = self.last_present(purged.map(|p| p.index))?;
        Ok(LogState {
            last_log_id: last.or(purged),
            last_purged_log_id: purged,
        })
    }
}

impl RaftLogReader<SealRaft> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<SealRaft>>, StorageError<NodeId>> {
        self.entries(range)
            .storage(ErrorSubject::Logs, ErrorVerb::Read)
    }
}

impl RaftLogStorage<SealRaft> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<SealRaft>, StorageError<NodeId>> {
        self.log_state()
            .storage(ErrorSubject::Logs, ErrorVerb::Read)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.put_vote(vote)
            .storage(ErrorSubject::Vote, ErrorVerb::Write)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.get_meta(VOTE, "vote")
            .storage(ErrorSubject::Vote, ErrorVerb::Read)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // A hint for restarts (committed entries are durable on a quorum):
        // it need not be synced.
        self.put_meta(
            COMMITTED,
            &committed,
            "committed log id",
            Durability::Buffered,
        )
        .storage(ErrorSubject::Store, ErrorVerb::Write)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let stored: Option<Option<LogId<NodeId>>> = self
            .get_meta(COMMITTED, "committed log id")
            .storage(ErrorSubject::Store, ErrorVerb::Read)?;
        Ok(stored.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<SealRaft>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<SealRaft>> + Send,
        I::IntoIter: Send,
    {
        let mut entries = entries.into_iter().peekable();
        let room = match entries.peek() {
            Some(first) => self.make_room_for(first.log_id.index).await,
            None => Ok(()),
        };
        match room.and_then(|()| self.append_entries(entries)) {
            // openraft counts the entries durable only once the syncer has
            // synced them and called back.
            Ok(()) => self
                .inner
                .syncer
                .after_sync(callback)
                .storage(ErrorSubject::Logs, ErrorVerb::Write),
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e.storage(ErrorSubject::Logs, ErrorVerb::Write))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.truncate_from(log_id.index)
            .storage(ErrorSubject::Log(log_id), ErrorVerb::Delete)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.purge_upto(&log_id)
            .storage(ErrorSubject::Log(log_id), ErrorVerb::Delete)
    }
}
