//! [`Db::compact`]: the page file's free pages among live ones given back.
//!
//! The work is the page store's (`Store::compact`: live pages moved from
//! the file's tail into free slots nearer its start, each resealed as a new
//! page of an ordinary commit, then the file cut). The engine flushes first,
//! so what deletes freed is free before the pages move, and holds the flush
//! lock throughout: flushes (and key operations) wait for it; writers go on
//! into the memtable until the flush backlog makes them wait; readers and
//! snapshots go on, and the pages a snapshot reads stay until it is
//! dropped.

use sealkv_core_store::{CompactReport, StoreError};

use crate::db::{Db, Inner};
use crate::error::Error;
use crate::poison::PoisonCause;

impl Db {
    /// Gives the page file's free space back to the file system: flushes,
    /// moves live pages from the end of the file into free slots nearer its
    /// start (each sealed anew under the writer session, as any commit's
    /// pages are), and cuts the file after its last live page. Online:
    /// reads, snapshots and writes go on (flushes wait), and a snapshot
    /// held keeps its pages, so the file shrinks less until it is dropped
    /// and the next compaction. Each step is an ordinary commit: a crash
    /// leaves the database as it was before or after that step, with the
    /// same contents. Returns the page file's size before and after.
    pub fn compact(&self) -> Result<CompactReport, Error> {
        self.check_writable()?;
        self.inner.flush_all()?;
        let st = self.inner.lock_flush()?;
        let cuts_failed = self.inner.store.stats().tail_cut_failures;
        let report = match self.inner.store.compact() {
            Ok(r) => r,
            Err(e @ (StoreError::Io(_) | StoreError::Poisoned)) => {
                return Err(Error::Poisoned {
                    cause: self.inner.poison(PoisonCause::store(e)),
                    outcome_unknown: false,
                });
            }
            Err(e) => return Err(self.inner.store_error(e)),
        };
        self.inner.committed(false)?;
        drop(st);
        self.inner.warn_failed_cuts(cuts_failed);
        tracing::debug!(
            before = report.bytes_before,
            after = report.bytes_after,
            moved = report.pages_moved,
            "page file compacted"
        );
        Ok(report)
    }
}

impl Inner {
    /// Logs a warning if a cut of the page file's free tail failed since
    /// the count was `before` (the commits stood; the file stays longer
    /// until a later cut succeeds; `Stats::page_file_cut_failures` counts
    /// them).
    pub(crate) fn warn_failed_cuts(&self, before: u64) {
        let now = self.store.stats().tail_cut_failures;
        if now > before {
            tracing::warn!(
                failed = now - before,
                total = now,
                "the page file's free tail could not be cut; it stays until a later commit cuts it"
            );
        }
    }
}
