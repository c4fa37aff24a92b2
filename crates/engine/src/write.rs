//! The write path: a batch becomes a log record, then memtable entries,
//! then visible.
//!
//! Every batch — a blind write, a transaction's commit, a catalog change —
//! goes through [`Inner::commit`]:
//!
//! 1. Admission, under the log's reservation lock, with the sequence number
//!    the record will get: a batch that writes to a dropped keyspace is
//!    refused; a transaction whose reads a batch numbered after its
//!    snapshot changed is refused ([`crate::txn`]); otherwise the batch's
//!    keys join the conflict window under that number. Nothing is numbered
//!    between the check and the record, so the checks see every batch
//!    before it.
//! 2. The record is sealed and written (group commit), durable as asked.
//! 3. The batch goes into the active memtable and is published: readers
//!    see batch `n` only once every batch before it is applied too.
//!
//! Writers hold the *gate* shared throughout; freezing the memtable takes it
//! exclusively, so a frozen memtable holds exactly the batches up to the
//! sequence number recorded at the freeze.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sealkv_core_wal::{BatchOp, Durability};

use crate::batch::WriteBatch;
use crate::db::Inner;
use crate::error::Error;
use crate::keyspace::KeyspaceState;
use crate::memtable::{Memtable, Seq, Slot};
use crate::poison::PoisonCause;
use crate::txn::conflict::{KeySet, ReadSet, Refusal};

/// How one batch is committed.
pub(crate) struct Commit<'a> {
    /// When the write is acknowledged.
    pub(crate) durability: Durability,
    /// A transaction's snapshot and what it read: the batch is refused if
    /// a batch numbered after the snapshot changed any of it.
    pub(crate) check: Option<(Seq, &'a ReadSet)>,
    /// The keyspace this batch drops: once it is admitted, no later batch
    /// may write to it.
    pub(crate) drops: Option<&'a KeyspaceState>,
}

impl Commit<'_> {
    /// A batch with no checks beyond the keyspaces it writes to.
    pub(crate) fn plain(durability: Durability) -> Self {
        Commit {
            durability,
            check: None,
            drops: None,
        }
    }
}

/// Why admission refused a batch.
enum Refused {
    Dropped(String),
    Conflict(Refusal),
}

impl Inner {
    /// Commits `batch` (see the module docs); returns its sequence number.
    pub(crate) fn commit(
        self: &Arc<Self>,
        batch: &WriteBatch,
        how: Commit<'_>,
    ) -> Result<Seq, Error> {
        let written = KeySet::new(batch.ops().map(|op| match op {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } => key,
        }));
        self.commit_then_apply(batch, how, written, |active, seq| {
            for op in batch.ops() {
                match op {
                    BatchOp::Put { key, value } => active.insert(key, seq, Some(value)),
                    BatchOp::Delete { key } => active.insert(key, seq, None),
                }
            }
        })
    }

    /// [`commit`](Self::commit) of a batch built from `writes` (each key
    /// once), holding exactly its entries in that order: the memtable takes
    /// the entries' buffers instead of copying them out of the batch.
    pub(crate) fn commit_writes(
        self: &Arc<Self>,
        batch: &WriteBatch,
        how: Commit<'_>,
        writes: Vec<(Vec<u8>, Slot)>,
    ) -> Result<Seq, Error> {
        debug_assert_eq!(writes.len(), batch.len());
        let key_bytes = writes.iter().map(|(k, _)| k.len()).sum();
        let written = KeySet::with_capacity(writes.len(), key_bytes, writes.iter().map(|(k, _)| k));
        self.commit_then_apply(batch, how, written, move |active, seq| {
            for (key, value) in writes {
                active.insert_owned(key, seq, value);
            }
        })
    }

    /// Admits, logs, applies (with `apply`, into the active memtable, under
    /// the sequence number given) and publishes `batch`, whose keys are
    /// `written`.
    fn commit_then_apply(
        self: &Arc<Self>,
        batch: &WriteBatch,
        how: Commit<'_>,
        written: KeySet,
        apply: impl FnOnce(&Memtable, Seq),
    ) -> Result<Seq, Error> {
        // A transaction or a keyspace handle may outlive `close()`.
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.poisoned.check()?;
        let wal = self.wal.as_ref().ok_or(Error::ReadOnly)?;
        self.wait_for_backlog()?;
        let gate = self.gate.read();
        let mut refused = None;
        let admitted = wal.append_with(&batch.inner, how.durability, |seq| {
            if let Some(ks) = batch.keyspaces().find(|ks| ks.is_dropped()) {
                refused = Some(Refused::Dropped(ks.name.clone()));
                return false;
            }
            let mut window = self.conflicts();
            if let Some((at, reads)) = how.check
                && let Err(why) = window.check(at, reads)
            {
                refused = Some(Refused::Conflict(why));
                return false;
            }
            if let Some(ks) = how.drops {
                ks.mark_dropped();
            }
            window.record(seq.0, written);
            window.prune(self.publisher.visible());
            true
        });
        let seq = match admitted {
            Ok(Some(seq)) => seq.0,
            Ok(None) => {
                return Err(match refused {
                    Some(Refused::Dropped(name)) => Error::KeyspaceDropped { name },
                    Some(Refused::Conflict(why)) => {
                        self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                        tracing::trace!(?why, "transaction refused at commit");
                        Error::Conflict
                    }
                    None => Error::Conflict,
                });
            }
            // Refused before anything was drawn, reserved or written (a
            // child forked after the open): known not written, and nothing
            // to poison. The log checks the process once for every append.
            Err(e @ sealkv_core_wal::Error::ForkedProcess { .. }) => {
                return Err(self.wal_error(e));
            }
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
        apply(&active, seq);
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
        Ok(seq)
    }
}
