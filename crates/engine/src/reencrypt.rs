//! Re-encryption: rewrites everything on disk under the active data key in
//! bounded steps, then retires the data keys nothing uses any more.
//!
//! # How
//!
//! 1. `flush()`: every write so far goes into the tree, and the WAL rolls to
//!    a segment of the current writer session (under the active key).
//! 2. Steps: each takes the flush lock and the page file's write
//!    transaction, reads the next entries of the tree after the durable
//!    cursor and puts them back unchanged. The copy-on-write commit rewrites
//!    their leaves, overflow pages and the branches above them under the
//!    active key, and records the new cursor in the meta page. Writes and
//!    reads go on between steps (a flush waits for at most one step), and
//!    a crash keeps the cursor: calling [`Db::reencrypt`] again goes on
//!    from it.
//! 3. Finish: commits that zero every free page no reader needs (the pages
//!    the steps freed still hold old ciphertext) and retire the WAL
//!    segments the flush covered.
//! 4. Retire: every data key that no page of the file (reachable, free or
//!    meta) and no live WAL segment names any more is retired in the key
//!    registry (its material erased). A key something still names — say a
//!    long-lived snapshot kept its pages from being zeroed — is kept and
//!    reported in [`KeyCoverage`]; run again later.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};

use parking_lot::MutexGuard;
use sealkv_core_store::WriteTxn;
use sealkv_crypto_envelope::KeyId;

use crate::db::{Db, Inner};
use crate::error::Error;
use crate::flush::FlushState;
use crate::keys::KeyState;
use crate::meta::EngineMeta;

/// Entries put back per step, and the value bytes a step may carry.
const STEP_ENTRIES: usize = 1024;
const STEP_BYTES: usize = 4 << 20;
/// Commits that zero free pages at the end: pages freed by a commit are
/// still part of the other meta slot's tree until the next one.
const FINISH_COMMITS: usize = 3;
/// Passes at most (a second one only when a rotation stranded pages).
const PASSES: usize = 2;
/// How long a pass waits, in all, for readers opened before its end (they
/// may hold old pages): 100 × 20 ms.
const READER_WAITS: usize = 100;
const READER_WAIT: std::time::Duration = std::time::Duration::from_millis(20);
/// Longest cursor key kept in the meta page (it has room for about 1 KiB
/// of engine fields); a longer last key is cut to this prefix, and the next
/// step goes on from the prefix itself (re-putting a few entries).
const MAX_CURSOR: usize = 512;

/// Where a re-encryption stands, passed to the progress callback after
/// every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReencryptProgress {
    /// Entries rewritten so far by this call.
    pub entries: u64,
    /// Page-file pages written so far by this call.
    pub pages_written: u64,
    /// Pages in use when this call started: an estimate of the pages to
    /// write (a progress bar's total).
    pub pages_estimate: u64,
}

/// What [`Db::reencrypt`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReencryptReport {
    /// False if the progress callback stopped it early: the cursor is
    /// durable and the next call goes on from it.
    pub complete: bool,
    /// Entries rewritten by this call.
    pub entries: u64,
    /// Free pages overwritten with zeros.
    pub pages_zeroed: u64,
    /// Data keys retired (their material erased from the registry).
    pub retired: Vec<KeyId>,
    /// What each remaining data key still covers.
    pub coverage: KeyCoverage,
}

/// What one data key still seals on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataKeyCoverage {
    /// The data key.
    pub id: KeyId,
    /// Whether new writes are sealed under it.
    pub active: bool,
    /// Pages of the page file (reachable, free or meta) sealed under it.
    pub pages: u64,
    /// Live WAL segments sealed under it.
    pub wal_segments: u64,
}

impl DataKeyCoverage {
    /// Whether nothing on disk is sealed under this key.
    pub fn is_unused(&self) -> bool {
        self.pages == 0 && self.wal_segments == 0
    }
}

/// What every data key with material still covers, and whether a
/// re-encryption was interrupted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct KeyCoverage {
    /// One entry per data key the registry still holds, by id.
    pub keys: Vec<DataKeyCoverage>,
    /// A re-encryption stopped (or crashed) before it finished; the next
    /// [`Db::reencrypt`] goes on from where it stopped.
    pub reencrypt_pending: bool,
}

impl Db {
    /// Rewrites everything on disk under the active data key, in bounded
    /// steps while reads and writes go on, zeroes the free pages, then
    /// retires every data key nothing uses any more. Use it after
    /// [`Db::rotate_data_key`] to stop depending on the old key (say,
    /// after it may have leaked).
    ///
    /// `progress` is called after every step; returning
    /// `ControlFlow::Break(())` stops after that step, durably: the next
    /// call goes on from there, as it does after a crash.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::ops::ControlFlow;
    /// use sealkv::crypto::MasterKey;
    /// use sealkv::{Config, Db};
    /// let dir = tempfile::tempdir()?;
    /// let key = MasterKey::from_bytes(&[7; 32])?;
    /// let db = Db::open_with_config(Config::new(dir.path()).encryption_key(key))?;
    /// db.put(b"k", b"v")?;
    /// db.flush()?;
    /// let old = db.stats()?.encryption.active_key;
    /// db.rotate_data_key()?;
    /// let report = db.reencrypt(&mut |_| ControlFlow::Continue(()))?;
    /// assert!(report.complete);
    /// assert_eq!(report.retired, old.into_iter().collect::<Vec<_>>());
    /// assert_eq!(db.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reencrypt(
        &self,
        progress: &mut dyn FnMut(&ReencryptProgress) -> ControlFlow<()>,
    ) -> Result<ReencryptReport, Error> {
        self.check_writable()?;
        let inner = &*self.inner;
        let keys = match (&inner.keys, inner.sealed) {
            (Some(k), true) => k,
            _ => {
                return Err(Error::NotEncrypted {
                    operation: "reencrypt",
                });
            }
        };
        inner.flush_all()?;
        let stats = inner.store.stats();
        let mut state = ReencryptProgress {
            pages_estimate: stats.page_count.saturating_sub(stats.free_pages),
            ..ReencryptProgress::default()
        };
        let written_at_start = stats.pages_written;
        let pages_written = |inner: &Inner| {
            inner
                .store
                .stats()
                .pages_written
                .saturating_sub(written_at_start)
        };
        let mut report = ReencryptReport::default();
        tracing::debug!(
            active_key = %keys.active_data_key(),
            pages_estimate = state.pages_estimate,
            "re-encryption started"
        );
        for pass in 0..PASSES {
            loop {
                let done = inner.reseal_step(&mut state)?;
                state.pages_written = pages_written(inner);
                report.entries = state.entries;
                if done {
                    break;
                }
                if progress(&state).is_break() {
                    report.coverage = inner.key_coverage()?;
                    tracing::debug!(
                        entries = report.entries,
                        "re-encryption stopped by the caller; the next call resumes it"
                    );
                    return Ok(report);
                }
            }
            report.pages_zeroed += inner.finish_pass()?;
            tracing::debug!(
                pass,
                entries = state.entries,
                pages_zeroed = report.pages_zeroed,
                "re-encryption pass finished"
            );
            // Retire what nothing names any more. The scan runs without the
            // flush lock: a key that is not active gains no page and no
            // segment, so what it reads can only shrink meanwhile.
            let mut coverage = inner.key_coverage()?;
            // From this transaction on, no tree holds a page sealed under
            // an old key: only readers opened before it can hold one.
            let end = inner.store.stats().txn;
            let predates =
                |inner: &Inner| inner.store.stats().oldest_reader.is_some_and(|o| o < end);
            let old_in_use = |c: &KeyCoverage| c.keys.iter().any(|k| !k.active && !k.is_unused());
            let mut waited = 0;
            while old_in_use(&coverage) && waited < READER_WAITS {
                if predates(inner) {
                    // A reader (a snapshot, an iterator) opened before the
                    // pass ended may hold pages sealed under an old key:
                    // give it a moment. Readers opened since hold none.
                    std::thread::sleep(READER_WAIT);
                    waited += 1;
                    continue;
                }
                // Every such reader let go: zero what they held, once.
                report.pages_zeroed += inner.finish_pass()?;
                coverage = inner.key_coverage()?;
                break;
            }
            let retire: Vec<KeyId> = coverage
                .keys
                .iter()
                .filter(|k| !k.active && k.is_unused())
                .map(|k| k.id)
                .collect();
            if !retire.is_empty() {
                // Recorded in the page file before this returns: the
                // registry that still holds them, put back, is a rollback.
                inner.key_operation(|keys, _| {
                    retire.iter().try_for_each(|id| keys.retire_data_key(*id))
                })?;
                report.retired.extend(retire);
            }
            // Pages still under an old key with no reader holding them were
            // rewritten under a key rotated away since (a rotation during a
            // stopped pass): one more pass from the start.
            let stranded =
                coverage.keys.iter().any(|k| !k.active && k.pages > 0) && !predates(inner);
            if !stranded || pass + 1 == PASSES {
                break;
            }
        }
        state.pages_written = pages_written(inner);
        let _ = progress(&state);
        report.complete = true;
        report.coverage = inner.key_coverage()?;
        tracing::debug!(
            entries = report.entries,
            pages_written = state.pages_written,
            pages_zeroed = report.pages_zeroed,
            retired = report.retired.len(),
            "re-encryption complete"
        );
        Ok(report)
    }

    /// What each data key still seals on disk (page-file pages and WAL
    /// segments), read from the files' clear headers: the basis on which
    /// [`Db::reencrypt`] retires keys. Reads every page header of the
    /// file, so it costs a full read of the page file (headers only are
    /// looked at). Empty for a plaintext database.
    pub fn key_coverage(&self) -> Result<KeyCoverage, Error> {
        self.check_open()?;
        self.inner.key_coverage()
    }
}

impl Inner {
    /// The flush lock, refused once the database is poisoned.
    pub(crate) fn lock_flush(&self) -> Result<MutexGuard<'_, FlushState>, Error> {
        let st = self.flush_state.lock();
        self.poisoned.check()?;
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(st)
    }

    /// Puts the next entries after the cursor back; returns whether the
    /// pass is over (the cursor is then cleared).
    fn reseal_step(&self, state: &mut ReencryptProgress) -> Result<bool, Error> {
        let mut st = self.lock_flush()?;
        let mut txn = self.store.write().map_err(|e| self.store_error(e))?;
        // Commits happen only under the write transaction, so this reader
        // sees exactly the state the transaction builds on.
        let read = self.store.read();
        debug_assert_eq!(read.txn(), txn.base_txn());
        // Every key up to and including the cursor was put back; a cut
        // cursor (a prefix of the last key) is taken inclusively.
        let start = st.meta.reencrypt_cursor.clone();
        let lower = match &start {
            Some(c) if c.len() >= MAX_CURSOR => Bound::Included(c.as_slice()),
            Some(c) => Bound::Excluded(c.as_slice()),
            None => Bound::Unbounded,
        };
        let mut range = read.range(lower, Bound::Unbounded).peekable();
        let (mut n, mut bytes) = (0usize, 0usize);
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            // Stop at the step's bounds, but never on a cursor equal to
            // where this step began (many long keys sharing a prefix):
            // that would repeat the step for ever.
            let bounded = n >= STEP_ENTRIES || bytes >= STEP_BYTES;
            if bounded && cursor != start {
                break;
            }
            let Some(entry) = range.next() else { break };
            let (key, value) = entry.map_err(|e| self.store_error(e))?;
            txn.put(&key, &value).map_err(|e| self.store_error(e))?;
            n += 1;
            bytes += key.len() + value.len();
            cursor = Some(key.get(..MAX_CURSOR).unwrap_or(&key).to_vec());
        }
        let more = match range.peek() {
            None => false,
            Some(Ok(_)) => true,
            Some(Err(_)) => match range.next() {
                Some(Err(e)) => return Err(self.store_error(e)),
                _ => true,
            },
        };
        let cursor = if more { cursor } else { None };
        self.commit_meta(&mut st, txn, cursor)?;
        tracing::trace!(entries = n, bytes, more, "re-encryption step committed");
        state.entries += n as u64;
        Ok(!more)
    }

    /// Commits `txn` with the engine's meta fields (WAL position unchanged,
    /// the registry as it is now, `cursor`), then retires the WAL one
    /// commit behind, as a flush does. Returns the pages zeroed.
    pub(crate) fn commit_meta(
        &self,
        st: &mut FlushState,
        mut txn: WriteTxn<'_>,
        cursor: Option<Vec<u8>>,
    ) -> Result<u64, Error> {
        let meta = EngineMeta {
            applied_seq: st.meta.applied_seq,
            prev_applied_seq: st.meta.applied_seq,
            anchor_segment: st.meta.anchor_segment,
            registry_generation: self.keys.as_ref().map_or(0, KeyState::generation),
            registry_hash: self.keys.as_ref().map_or([0; 32], KeyState::fingerprint),
            lineage: st.meta.lineage,
            reencrypt_cursor: cursor,
        };
        txn.set_app_meta(&meta.encode())
            .map_err(|e| self.store_error(e))?;
        let zeroed = match txn.commit_counting_zeroed() {
            Ok((_, zeroed)) => zeroed,
            Err(e) => {
                return Err(Error::Poisoned {
                    cause: self.poison(crate::poison::PoisonCause::store(e)),
                    outcome_unknown: false,
                });
            }
        };
        let retire_to = st.meta.applied_seq;
        st.meta = meta;
        if let Some(wal) = &self.wal {
            let retired = wal
                .retire(sealkv_core_wal::Seq(retire_to))
                .map_err(|e| self.wal_error(e))?;
            tracing::trace!(
                applied_seq = st.meta.applied_seq,
                pages_zeroed = zeroed,
                wal_segments_retired = retired,
                "commit"
            );
        }
        self.committed(false)?;
        Ok(zeroed)
    }

    /// The commits that end a pass: each zeroes every free page no reader
    /// needs (the pages the steps freed still hold old ciphertext; pages
    /// freed by one commit are the other meta slot's until the next) and
    /// retires the WAL one commit behind. Returns the pages newly zeroed.
    fn finish_pass(&self) -> Result<u64, Error> {
        let mut st = self.lock_flush()?;
        self.zeroing_commits(&mut st)
    }

    /// Commits, one after another, that each zero every free page no reader
    /// and no meta slot needs (pages freed by a commit are the other meta
    /// slot's until the next one), keeping the engine's meta fields (the
    /// re-encryption cursor included) and retiring the WAL one commit
    /// behind. Returns the pages newly zeroed. Used at the end of a
    /// re-encryption pass and of a backup copy.
    pub(crate) fn zeroing_commits(&self, st: &mut FlushState) -> Result<u64, Error> {
        let mut zeroed = 0;
        for _ in 0..FINISH_COMMITS {
            let mut txn = self.store.write().map_err(|e| self.store_error(e))?;
            txn.zero_free_pages_on_commit();
            let cursor = st.meta.reencrypt_cursor.clone();
            zeroed += self.commit_meta(st, txn, cursor)?;
        }
        Ok(zeroed)
    }

    pub(crate) fn key_coverage(&self) -> Result<KeyCoverage, Error> {
        let pending = self.flush_state.lock().meta.reencrypt_cursor.is_some();
        self.coverage(pending)
    }

    fn coverage(&self, pending: bool) -> Result<KeyCoverage, Error> {
        let Some(keys) = self.keys.as_ref().filter(|_| self.sealed) else {
            return Ok(KeyCoverage::default());
        };
        let pages = self.store.key_usage().map_err(|e| self.store_error(e))?;
        let segments: BTreeMap<KeyId, u64> = match &self.wal {
            Some(wal) => wal.key_usage().map_err(|e| self.wal_error(e))?,
            None => BTreeMap::new(),
        };
        let active = keys.active_data_key();
        Ok(KeyCoverage {
            keys: keys
                .data_keys_with_material()
                .into_iter()
                .map(|id| DataKeyCoverage {
                    id,
                    active: id == active,
                    pages: pages.get(&id).copied().unwrap_or(0),
                    wal_segments: segments.get(&id).copied().unwrap_or(0),
                })
                .collect(),
            reencrypt_pending: pending,
        })
    }
}
