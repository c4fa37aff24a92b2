//! Serializable transactions, checked optimistically.
//!
//! A [`Transaction`] reads a snapshot (the database as of its start) plus
//! its own writes, and buffers its writes. At commit its writes become one
//! batch, admitted only if no batch numbered after the snapshot wrote a key
//! the transaction read, or a key inside a range its iterators covered
//! ([`conflict`]); otherwise the commit fails with [`Error::Conflict`] and
//! nothing of it is written. Every committed transaction therefore read
//! exactly what it would have read at its own place in the log: the
//! committed transactions are serializable in log order.
//!
//! Nothing is locked while a transaction runs: readers and writers go on,
//! transactions on disjoint keys commit side by side and share an fsync.
//! Blind writes ([`Db::write`]) are never refused; a transaction that read
//! what one of them wrote is. [`Db::transaction`] retries a refused
//! transaction (up to [`Config::transaction_retries`](crate::Config)
//! times), running its closure again on a fresh snapshot.
//!
//! A transaction that only reads never fails to commit. For a long
//! read-only job prefer a [`Snapshot`](crate::Snapshot): an open
//! transaction keeps the write sets of every batch since its start in
//! memory (up to a bound, past which it fails with a conflict).

pub(crate) mod conflict;
mod iter;
mod reader;
pub(crate) mod writes;

use std::ops::RangeBounds;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use sealkv_core_wal::Durability;

use crate::batch::{MAX_VALUE_LEN, WriteBatch};
use crate::db::{Db, View};
use crate::error::Error;
use crate::iter::OwnedRange;
use crate::keyspace::prefix::Prefix;
use crate::keyspace::{Keyspace, KeyspaceState, UserBounds, bounds, prefix_bounds};
use crate::memtable::Slot;
use crate::write::Commit;
use conflict::ReadSet;
pub use iter::{EntryRef, TxnIter};
pub use reader::TxnReader;
use writes::WriteSet;

/// Ranges covered by a transaction's iterators, recorded as they go.
pub(crate) type Covered = Arc<Mutex<Vec<OwnedRange>>>;

/// A read-write transaction: it reads a snapshot plus its own writes, and
/// its commit is refused with [`Error::Conflict`] if a batch committed
/// after its snapshot changed anything it read. Get one with
/// [`Db::transaction`] (which commits and retries for you) or
/// [`Db::begin_transaction`]. Dropping it without [`commit`](Self::commit)
/// discards its writes.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = sealkv::Db::open(dir.path())?;
/// let accounts = db.keyspace("accounts")?;
/// accounts.put(b"alice", 100u64.to_be_bytes())?;
/// accounts.put(b"bob", 0u64.to_be_bytes())?;
///
/// // Move 30 from alice to bob: both balances or neither, and never from
/// // a balance another transaction changed meanwhile.
/// db.transaction(|tx| {
///     let read = |v: Option<Vec<u8>>| u64::from_be_bytes(v.unwrap_or_default().try_into().unwrap_or([0; 8]));
///     let alice = read(tx.get_in(&accounts, b"alice")?);
///     let bob = read(tx.get_in(&accounts, b"bob")?);
///     tx.put_in(&accounts, b"alice", (alice - 30).to_be_bytes())?;
///     tx.put_in(&accounts, b"bob", (bob + 30).to_be_bytes())?;
///     Ok::<_, sealkv::Error>(())
/// })?;
/// assert_eq!(accounts.get(b"bob")?, Some(30u64.to_be_bytes().to_vec()));
/// # Ok(())
/// # }
/// ```
pub struct Transaction {
    db: Db,
    view: View,
    /// Buffered writes by stored key (keyspace prefix included).
    writes: WriteSet,
    keyspaces: Vec<Arc<KeyspaceState>>,
    reads: ReadSet,
    covered: Covered,
    durability: Durability,
    /// Registered in the conflict window (until commit or drop).
    registered: bool,
    /// The stored key of the read under way, in a buffer kept from one
    /// read to the next (no allocation per read).
    stored: Vec<u8>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("snapshot", &self.view.at)
            .field("writes", &self.writes.len())
            .finish_non_exhaustive()
    }
}

/// `compare_and_swap` found another value than the one expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareAndSwapError {
    /// The value the key holds.
    pub current: Option<Vec<u8>>,
    /// The value that was to be written.
    pub proposed: Option<Vec<u8>>,
}

impl std::fmt::Display for CompareAndSwapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: say what happened, not what they are.
        f.write_str("compare-and-swap: the key does not hold the expected value")
    }
}

impl std::error::Error for CompareAndSwapError {}

impl Transaction {
    pub(crate) fn begin(db: &Db) -> Result<Transaction, Error> {
        db.check_open()?;
        let inner = &db.inner;
        // Registered before the snapshot is taken, under the window's
        // lock: no batch after the snapshot can leave the window before
        // this transaction is counted.
        let view = {
            let mut window = inner.conflicts();
            let view = inner.view()?;
            window.open(view.at);
            view
        };
        Ok(Transaction {
            db: db.clone(),
            view,
            writes: WriteSet::default(),
            keyspaces: Vec::new(),
            reads: ReadSet::default(),
            covered: Covered::default(),
            durability: Durability::AsConfigured,
            registered: true,
            stored: Vec::new(),
        })
    }

    /// The sequence number of the snapshot it reads.
    pub fn snapshot_seq(&self) -> u64 {
        self.view.at
    }

    /// When the commit is acknowledged (by default, as the sync mode says).
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    /// The prefix of `ks` (the default keyspace for `None`), refusing a
    /// dropped keyspace or one of another database.
    fn target(&mut self, ks: Option<&Keyspace>) -> Result<Prefix, Error> {
        let Some(ks) = ks else {
            return Ok(Prefix::of(crate::keyspace::prefix::DEFAULT));
        };
        if ks.state.owner != self.db.inner.instance {
            return Err(Error::ForeignKeyspace {
                name: ks.state.name.clone(),
            });
        }
        let prefix = *ks.live()?;
        Ok(prefix)
    }

    fn note_write_target(&mut self, ks: Option<&Keyspace>) {
        if let Some(ks) = ks
            && !self.keyspaces.iter().any(|s| Arc::ptr_eq(s, &ks.state))
        {
            self.keyspaces.push(ks.state.clone());
        }
    }

    fn get_at(&mut self, ks: Option<&Keyspace>, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let prefix = self.target(ks)?;
        let stored = &mut self.stored;
        stored.clear();
        stored.extend_from_slice(prefix.as_bytes());
        stored.extend_from_slice(key);
        if let Some(own) = self.writes.get(stored.as_slice()) {
            // Its own write: nothing another transaction does changes it.
            return Ok(own.clone());
        }
        let value = self.view.get(stored)?;
        self.reads.key(stored);
        Ok(value)
    }

    fn write_at(
        &mut self,
        ks: Option<&Keyspace>,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), Error> {
        let prefix = self.target(ks)?;
        let max = self.db.max_key_len();
        if key.len() > max {
            return Err(Error::TooLarge {
                what: "key",
                len: key.len(),
                limit: max,
            });
        }
        if let Some(v) = value
            && v.len() > MAX_VALUE_LEN
        {
            return Err(Error::TooLarge {
                what: "value",
                len: v.len(),
                limit: MAX_VALUE_LEN,
            });
        }
        self.note_write_target(ks);
        self.writes
            .insert(prefix.key(key), value.map(<[u8]>::to_vec));
        Ok(())
    }

    fn iter_at(&mut self, ks: Option<&Keyspace>, user: UserBounds) -> Result<TxnIter, Error> {
        let prefix = self.target(ks)?;
        Ok(TxnIter::new(
            &self.view,
            &mut self.writes,
            prefix,
            user,
            self.covered.clone(),
        ))
    }

    /// The value of `key` in the default keyspace: this transaction's own
    /// write, else the snapshot's.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        self.get_at(None, key.as_ref())
    }

    /// [`get`](Self::get) in keyspace `ks`.
    pub fn get_in(
        &mut self,
        ks: &Keyspace,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Vec<u8>>, Error> {
        self.get_at(Some(ks), key.as_ref())
    }

    /// Sets `key` to `value` in the default keyspace when the transaction
    /// commits.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        self.write_at(None, key.as_ref(), Some(value.as_ref()))
    }

    /// [`put`](Self::put) in keyspace `ks`.
    pub fn put_in(
        &mut self,
        ks: &Keyspace,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), Error> {
        self.write_at(Some(ks), key.as_ref(), Some(value.as_ref()))
    }

    /// Removes `key` from the default keyspace when the transaction
    /// commits.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<(), Error> {
        self.write_at(None, key.as_ref(), None)
    }

    /// [`delete`](Self::delete) in keyspace `ks`.
    pub fn delete_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>) -> Result<(), Error> {
        self.write_at(Some(ks), key.as_ref(), None)
    }

    /// Deletes, when the transaction commits, every key of the default
    /// keyspace in `range` as this transaction sees it (its snapshot with
    /// its own writes on top); returns how many. The range counts as read,
    /// so a key another transaction writes into it first makes the commit
    /// a [`Error::Conflict`]. The deletes are held in the transaction until
    /// it commits, one batch: for a range too large for one batch, use
    /// [`Db::delete_range`].
    pub fn delete_range<K: AsRef<[u8]>>(
        &mut self,
        range: impl RangeBounds<K>,
    ) -> Result<u64, Error> {
        self.delete_at(None, bounds(&range))
    }

    /// [`delete_range`](Self::delete_range) in keyspace `ks`.
    pub fn delete_range_in<K: AsRef<[u8]>>(
        &mut self,
        ks: &Keyspace,
        range: impl RangeBounds<K>,
    ) -> Result<u64, Error> {
        self.delete_at(Some(ks), bounds(&range))
    }

    /// Deletes, when the transaction commits, every key of the default
    /// keyspace that starts with `prefix` (see
    /// [`delete_range`](Self::delete_range)); returns how many.
    pub fn delete_prefix(&mut self, prefix: impl AsRef<[u8]>) -> Result<u64, Error> {
        self.delete_at(None, prefix_bounds(prefix.as_ref()))
    }

    /// [`delete_prefix`](Self::delete_prefix) in keyspace `ks`.
    pub fn delete_prefix_in(
        &mut self,
        ks: &Keyspace,
        prefix: impl AsRef<[u8]>,
    ) -> Result<u64, Error> {
        self.delete_at(Some(ks), prefix_bounds(prefix.as_ref()))
    }

    fn delete_at(&mut self, ks: Option<&Keyspace>, user: UserBounds) -> Result<u64, Error> {
        let keys = self
            .iter_at(ks, user)?
            .map(|item| item.map(|(k, _)| k))
            .collect::<Result<Vec<_>, Error>>()?;
        for key in &keys {
            self.write_at(ks, key, None)?;
        }
        Ok(keys.len() as u64)
    }

    /// The keys of the default keyspace in `range`: the snapshot with this
    /// transaction's writes (as they are now) on top. The keys an iterator
    /// yields, and the gaps between them, count as read.
    pub fn range<K: AsRef<[u8]>>(&mut self, range: impl RangeBounds<K>) -> Result<TxnIter, Error> {
        self.iter_at(None, bounds(&range))
    }

    /// [`range`](Self::range) in keyspace `ks`.
    pub fn range_in<K: AsRef<[u8]>>(
        &mut self,
        ks: &Keyspace,
        range: impl RangeBounds<K>,
    ) -> Result<TxnIter, Error> {
        self.iter_at(Some(ks), bounds(&range))
    }

    /// The keys of the default keyspace that start with `prefix` (see
    /// [`range`](Self::range)).
    pub fn prefix(&mut self, prefix: impl AsRef<[u8]>) -> Result<TxnIter, Error> {
        self.iter_at(None, prefix_bounds(prefix.as_ref()))
    }

    /// [`prefix`](Self::prefix) in keyspace `ks`.
    pub fn prefix_in(&mut self, ks: &Keyspace, prefix: impl AsRef<[u8]>) -> Result<TxnIter, Error> {
        self.iter_at(Some(ks), prefix_bounds(prefix.as_ref()))
    }

    /// Writes everything this transaction wrote, atomically, if nothing it
    /// read changed since its snapshot; otherwise [`Error::Conflict`] and
    /// nothing is written. A transaction that wrote nothing commits at once.
    pub fn commit(mut self) -> Result<(), Error> {
        if self.writes.is_empty() {
            return Ok(());
        }
        // In key order: the memtable's inserts then follow neighbouring
        // paths through its skip list (warm in the cache), and the same
        // writes make the same log record.
        let mut writes: Vec<(Vec<u8>, Slot)> =
            std::mem::take(&mut self.writes).into_writes().collect();
        writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let bytes = writes
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        let mut batch = WriteBatch::with_capacity(writes.len(), bytes);
        for (key, value) in &writes {
            match value {
                Some(v) => batch.raw_put(&[], key, v),
                None => batch.raw_delete(&[], key),
            };
        }
        for ks in &self.keyspaces {
            batch.note_keyspace(ks);
        }
        batch.check(usize::MAX)?;
        let covered = std::mem::take(&mut *self.covered.lock());
        for (lo, hi) in covered {
            self.reads.range(lo, hi);
        }
        let inner = self.db.inner.clone();
        let result = inner.commit_writes(
            &batch,
            Commit {
                check: Some((self.view.at, &self.reads)),
                ..Commit::plain(self.durability)
            },
            writes,
        );
        self.unregister();
        if result.is_ok() {
            inner.counters.transactions.fetch_add(1, Ordering::Relaxed);
        }
        result.map(|_| ())
    }

    /// Discards everything this transaction wrote (as dropping it does).
    pub fn rollback(self) {}

    fn unregister(&mut self) {
        if std::mem::take(&mut self.registered) {
            self.db.inner.conflicts().close(self.view.at);
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl Db {
    /// Starts a transaction on a snapshot of now. Prefer
    /// [`Db::transaction`], which commits and retries on conflict.
    pub fn begin_transaction(&self) -> Result<Transaction, Error> {
        Transaction::begin(self)
    }

    /// Runs `f` in a transaction and commits it; if the commit meets a
    /// conflict, runs `f` again on a fresh snapshot, up to
    /// [`Config::transaction_retries`](crate::Config::transaction_retries)
    /// times, then answers [`Error::Conflict`]. An error from `f` discards
    /// the transaction and is returned as is. `f` may run several times, so
    /// it must have no effect outside the transaction that a retry would
    /// repeat.
    pub fn transaction<T, E>(
        &self,
        mut f: impl FnMut(&mut Transaction) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<Error>,
    {
        let retries = self.inner.config.transaction_retries;
        let mut attempt = 0u32;
        loop {
            let mut tx = self.begin_transaction()?;
            let out = f(&mut tx)?;
            match tx.commit() {
                Ok(()) => return Ok(out),
                Err(Error::Conflict) if attempt < retries => {
                    attempt += 1;
                    self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                    back_off(attempt);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sets `key` (default keyspace) to `new` if it holds `expected`
    /// (`None`: absent; a `new` of `None` deletes), atomically. Returns
    /// `Ok(Err(_))` with the value found if it holds something else.
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Result<(), CompareAndSwapError>, Error> {
        compare_and_swap(self, None, key.as_ref(), expected, new)
    }

    /// Replaces the value of `key` (default keyspace) with `f(current)`
    /// atomically (`None` in or out: absent, or delete); returns the new
    /// value. `f` may run more than once (on conflict).
    pub fn update_fetch(
        &self,
        key: impl AsRef<[u8]>,
        f: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, Error> {
        update_fetch(self, None, key.as_ref(), f)
    }
}

impl Keyspace {
    /// [`Db::compare_and_swap`] in this keyspace.
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Result<(), CompareAndSwapError>, Error> {
        compare_and_swap(&self.db, Some(self), key.as_ref(), expected, new)
    }

    /// [`Db::update_fetch`] in this keyspace.
    pub fn update_fetch(
        &self,
        key: impl AsRef<[u8]>,
        f: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, Error> {
        update_fetch(&self.db, Some(self), key.as_ref(), f)
    }
}

/// Waits before retry number `attempt` of a refused transaction: a yield
/// for the first few, then a random pause that doubles in range up to about
/// a millisecond, so transactions that keep refusing each other (many on
/// few keys, or one descheduled mid-way) spread out instead of colliding
/// again at once.
fn back_off(attempt: u32) {
    const YIELDS: u32 = 3;
    if attempt <= YIELDS {
        std::thread::yield_now();
        return;
    }
    let range_us = 1u64 << (attempt - YIELDS).min(10);
    // Jitter from the standard library's randomly keyed hasher: no
    // cryptographic quality needed, only different pauses per thread.
    let mut h =
        std::hash::BuildHasher::build_hasher(&std::collections::hash_map::RandomState::new());
    std::hash::Hasher::write_u32(&mut h, attempt);
    let pause = std::hash::Hasher::finish(&h) % range_us;
    std::thread::sleep(std::time::Duration::from_micros(pause));
}

fn compare_and_swap(
    db: &Db,
    ks: Option<&Keyspace>,
    key: &[u8],
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Result<Result<(), CompareAndSwapError>, Error> {
    db.transaction(|tx| {
        let current = tx.get_at(ks, key)?;
        if current.as_deref() != expected {
            return Ok(Err(CompareAndSwapError {
                current,
                proposed: new.map(<[u8]>::to_vec),
            }));
        }
        tx.write_at(ks, key, new)?;
        Ok(Ok(()))
    })
}

fn update_fetch(
    db: &Db,
    ks: Option<&Keyspace>,
    key: &[u8],
    mut f: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>, Error> {
    db.transaction(|tx| {
        let current = tx.get_at(ks, key)?;
        let new = f(current.as_deref());
        tx.write_at(ks, key, new.as_deref())?;
        Ok(new)
    })
}
