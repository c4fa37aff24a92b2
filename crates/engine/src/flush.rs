//! Flushing: frozen memtables become page-file commits.
//!
//! When the active memtable passes the memtable size, [`Inner::freeze`]
//! swaps in a new one and rolls the WAL; the flusher thread (one per open
//! database, woken when a memtable is frozen, when `wal_flush_interval`
//! passes, or at shutdown) then applies the oldest frozen memtable to the
//! page file in copy-on-write transactions of at most `flush_commit_size`
//! memtable bytes each, in key order; the last one's meta page records the
//! last sequence number applied (the ones before keep the previous one).
//! Then it drops the memtable and retires the WAL segments the *previous*
//! flush covered (one flush behind, so the older meta slot stays backed by
//! the log). The thread holds only a weak reference to the database, so
//! dropping the last `Db` handle ends it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::db::Inner;
use crate::error::Error;
use crate::keys::KeyState;
use crate::memtable::{Memtable, Seq};
use crate::meta::EngineMeta;
use crate::poison::PoisonCause;

/// A memtable frozen for flushing, with what its flush will record.
#[derive(Debug, Clone)]
pub(crate) struct Frozen {
    pub(crate) mem: Arc<Memtable>,
    /// Every batch up to this sequence number is in this memtable or older
    /// state.
    pub(crate) last_seq: Seq,
    /// The WAL segment rolled to at the freeze.
    pub(crate) next_segment: u64,
}

/// State only the flusher (or `flush()`) touches, under its mutex.
#[derive(Debug)]
pub(crate) struct FlushState {
    pub(crate) meta: EngineMeta,
}

/// What wakes the flusher.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    /// Frozen memtables are waiting.
    pub(crate) work: bool,
    /// The database is closing.
    pub(crate) stop: bool,
}

/// The flusher's mailbox and the condition writers wait on for backlog.
#[derive(Debug, Default)]
pub(crate) struct FlushSignal {
    pub(crate) state: Mutex<Signal>,
    pub(crate) wake: Condvar,
    /// Notified after each flush (writers waiting on backlog, `flush()`).
    pub(crate) done: Condvar,
}

impl FlushSignal {
    /// Asks the flusher to run.
    pub(crate) fn kick(&self) {
        let mut st = self.state.lock();
        st.work = true;
        self.wake.notify_all();
    }

    /// Asks the flusher to stop.
    pub(crate) fn stop(&self) {
        let mut st = self.state.lock();
        st.stop = true;
        self.wake.notify_all();
        self.done.notify_all();
    }
}

/// Starts the flusher thread for `db`.
pub(crate) fn spawn(
    db: Weak<Inner>,
    signal: Arc<FlushSignal>,
    interval: Option<Duration>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sealkv-flush".into())
        .spawn(move || run(db, signal, interval))
}

fn run(db: Weak<Inner>, signal: Arc<FlushSignal>, interval: Option<Duration>) {
    let tick = interval.unwrap_or(Duration::from_secs(3600));
    let mut last = Instant::now();
    loop {
        {
            let mut st = signal.state.lock();
            while !st.work && !st.stop {
                let elapsed = last.elapsed();
                if interval.is_some() && elapsed >= tick {
                    break;
                }
                let wait = tick.saturating_sub(elapsed);
                signal.wake.wait_for(&mut st, wait);
            }
            if st.stop {
                return;
            }
            st.work = false;
        }
        let Some(db) = db.upgrade() else { return };
        let by_interval = interval.is_some_and(|_| last.elapsed() >= tick);
        last = Instant::now();
        // Errors poison the database inside `background_flush`; the thread
        // keeps running so `close()` can still join it.
        db.background_flush(by_interval);
        drop(db);
        signal.done.notify_all();
    }
}

impl Inner {
    /// Blocks a writer while frozen memtables waiting for flush hold more
    /// than twice the flush size.
    pub(crate) fn wait_for_backlog(&self) -> Result<(), Error> {
        let bound = 2 * self.config.memtable_size as usize;
        // Fast path for every write: no backlog, no lock on the flusher's
        // mailbox.
        if !self.poisoned.is_set() && self.mems.read().frozen_bytes() <= bound {
            return Ok(());
        }
        // A forked child has no flusher to wait for.
        self.check_process()?;
        let mut st = self.signal.state.lock();
        loop {
            self.poisoned.check()?;
            if st.stop || self.mems.read().frozen_bytes() <= bound {
                return Ok(());
            }
            self.counters.stalls.fetch_add(1, Ordering::Relaxed);
            self.signal
                .done
                .wait_for(&mut st, std::time::Duration::from_millis(100));
        }
    }

    /// Freezes the active memtable if it holds something and at least
    /// `min_bytes`, and rolls the WAL. Returns whether it froze.
    pub(crate) fn freeze(&self, min_bytes: u64) -> Result<bool, Error> {
        let Some(wal) = self.wal.as_ref() else {
            return Ok(false);
        };
        // Before the log is rolled: a refusal there would poison.
        self.check_process()?;
        let _gate = self.gate.write();
        {
            let mems = self.mems.read();
            if mems.active.is_empty() || (mems.active.approx_bytes() as u64) < min_bytes {
                return Ok(false);
            }
        }
        let last_seq = self.publisher.visible();
        let next_segment = match wal.roll() {
            Ok(segment) => segment,
            Err(e) => {
                return Err(Error::Poisoned {
                    cause: self.poison(PoisonCause::wal(e)),
                    outcome_unknown: false,
                });
            }
        };
        // Made (its key filter allocated and zeroed) before readers are
        // held off by the memtable lock.
        let fresh = Arc::new(Memtable::sized_for(self.config.memtable_size));
        let mut mems = self.mems.write();
        let old = std::mem::replace(&mut mems.active, fresh);
        debug_assert!(old.max_seq() <= last_seq);
        mems.frozen.push_front(Frozen {
            mem: old,
            last_seq,
            next_segment,
        });
        Ok(true)
    }

    /// Flushes every frozen memtable, oldest first.
    pub(crate) fn flush_frozen(&self, st: &mut FlushState) -> Result<(), Error> {
        loop {
            let oldest = self.mems.read().frozen.back().cloned();
            let Some(frozen) = oldest else { return Ok(()) };
            self.flush_one(st, &frozen)?;
        }
    }

    /// Applies `frozen` to the page file in commits of at most
    /// `flush_commit_size` memtable bytes each, in key order, then drops it
    /// and retires the WAL one flush behind.
    ///
    /// Every commit but the last keeps the engine meta as it was (the same
    /// applied sequence number and WAL anchor): a crash between them opens
    /// a tree holding part of the memtable, and the replay of the log from
    /// the old anchor rewrites the same keys on top (the memtable shadows
    /// the tree, and the newest version of each key wins either way).
    /// Readers keep reading the frozen memtable, which shadows those keys,
    /// until the last commit is done.
    fn flush_one(&self, st: &mut FlushState, frozen: &Frozen) -> Result<(), Error> {
        let cuts_failed = self.store.stats().tail_cut_failures;
        let written = tracing::enabled!(tracing::Level::DEBUG).then(|| self.store.stats());
        tracing::debug!(
            up_to_seq = frozen.last_seq,
            memtable_bytes = frozen.mem.approx_bytes(),
            "flush started"
        );
        let budget = usize::try_from(self.config.flush_commit_size).unwrap_or(usize::MAX);
        let done = EngineMeta {
            applied_seq: frozen.last_seq,
            prev_applied_seq: st.meta.applied_seq,
            anchor_segment: frozen.next_segment,
            registry_generation: self.keys.as_ref().map_or(0, KeyState::generation),
            registry_hash: self.keys.as_ref().map_or([0; 32], KeyState::fingerprint),
            lineage: st.meta.lineage,
            reencrypt_cursor: st.meta.reencrypt_cursor.clone(),
        };
        // The meta of the commits before the last: the WAL position as it
        // was, the registry as it is now (the pages are sealed under it).
        let partial = EngineMeta {
            registry_generation: done.registry_generation,
            registry_hash: done.registry_hash,
            ..st.meta.clone()
        };
        let mut entries = frozen.mem.newest().peekable();
        loop {
            let mut txn = self.store.write().map_err(|e| self.store_error(e))?;
            let mut taken = 0usize;
            while taken < budget {
                let Some(e) = entries.next() else { break };
                taken += e.counted_bytes();
                match e.value() {
                    Some(value) => txn.put(e.key(), value),
                    None => txn.delete(e.key()),
                }
                .map_err(|e| self.store_error(e))?;
            }
            let last = entries.peek().is_none();
            let meta = if last { &done } else { &partial };
            txn.set_app_meta(&meta.encode())
                .map_err(|e| self.store_error(e))?;
            if let Err(e) = txn.commit() {
                // Acknowledged batches stay in the log; only this commit's
                // outcome is unknown.
                return Err(Error::Poisoned {
                    cause: self.poison(PoisonCause::store(e)),
                    outcome_unknown: false,
                });
            }
            self.counters.flush_commits.fetch_add(1, Ordering::Relaxed);
            self.committed(false)?;
            if last {
                break;
            }
            st.meta = partial.clone();
        }
        let retire_to = st.meta.applied_seq;
        st.meta = done;
        {
            let mut mems = self.mems.write();
            debug_assert!(
                mems.frozen
                    .back()
                    .is_some_and(|f| Arc::ptr_eq(&f.mem, &frozen.mem))
            );
            mems.frozen.pop_back();
        }
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        if let Some(wal) = &self.wal {
            // One flush behind: the older meta slot may still be the one
            // that opens after a crash, and it needs the log after it.
            wal.retire(sealkv_core_wal::Seq(retire_to))
                .map_err(|e| self.wal_error(e))?;
        }
        tracing::debug!(
            applied_seq = frozen.last_seq,
            pages_written = written.map_or(0, |w| self
                .store
                .stats()
                .pages_written
                .saturating_sub(w.pages_written)),
            "flush committed"
        );
        self.warn_failed_cuts(cuts_failed);
        self.signal.done.notify_all();
        Ok(())
    }

    /// `flush()`: freeze what is active and flush everything frozen.
    pub(crate) fn flush_all(&self) -> Result<(), Error> {
        if self.wal.is_none() {
            return Ok(());
        }
        let mut st = self.flush_state.lock();
        self.poisoned.check()?;
        self.freeze(0)?;
        self.flush_frozen(&mut st)
    }

    /// What the flusher thread runs when woken.
    pub(crate) fn background_flush(&self, by_interval: bool) {
        let mut st = self.flush_state.lock();
        if self.poisoned.is_set() || self.closed.load(Ordering::Acquire) {
            return;
        }
        let result = (|| {
            if by_interval {
                self.freeze(0)?;
            }
            self.flush_frozen(&mut st)
        })();
        if let Err(e) = result {
            tracing::error!(error = %e, "background flush failed; the database stops accepting writes");
            self.poison(PoisonCause::engine(e));
        }
    }
}
