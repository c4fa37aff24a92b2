//! `Db::verify()`: the whole integrity check, read-only.

use std::path::{Path, PathBuf};

use sealkv_core_wal::{RecoveryMode, Seq, Wal, WalOptions};

use crate::db::Db;
use crate::error::Error;
use crate::layout::{DATA_FILE, KEYS_FILE, WAL_DIR};

/// One problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file at fault.
    pub file: PathBuf,
    /// What is wrong, and where (page or offset).
    pub what: String,
}

/// What [`Db::verify`] checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Key-value entries in the page file's committed tree.
    pub entries: u64,
    /// Pages checked (tree, overflow, free list and free pages).
    pub pages_checked: u64,
    /// WAL records read.
    pub wal_records: u64,
    /// Every problem, naming its file.
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// What an open repaired or stepped around, kept for `verify`.
#[derive(Debug, Default)]
pub(crate) struct OpenFindings {
    /// Reported as they are: a fall-back to the older meta slot, an empty
    /// WAL segment with a damaged header (removed by a writable open).
    pub(crate) stepped_around: Vec<Finding>,
    /// The other meta slot did not authenticate at open. `verify` reads
    /// that slot again as it is on disk, so this is reported only once a
    /// commit since the open has rewritten it (then it is the only trace).
    pub(crate) other_slot: Option<Finding>,
    /// The page-file transaction the open found.
    pub(crate) txn: u64,
}

impl Db {
    /// The role of every page of the page file's current state, in page
    /// order ("tree", "overflow", "free-list", "free"; the header and meta
    /// pages 0-2 are not listed): for inspection tools and the tamper
    /// tests. Fails with `Corruption` if the state does not verify.
    #[doc(hidden)]
    pub fn page_roles(&self) -> Result<Vec<(u64, &'static str)>, Error> {
        self.check_open()?;
        let read = self.inner.store.read();
        let pages = read.pages().map_err(|e| self.inner.store_error(e))?;
        Ok(pages
            .into_iter()
            .map(|(p, role)| {
                let name = match role {
                    sealkv_core_store::PageRole::Tree => "tree",
                    sealkv_core_store::PageRole::Overflow => "overflow",
                    sealkv_core_store::PageRole::FreeList => "free-list",
                    sealkv_core_store::PageRole::Free => "free",
                    _ => "other",
                };
                (p, name)
            })
            .collect())
    }

    /// Checks every file of the database without changing any: the key
    /// registry (it is read and opened again), every page of the page file
    /// (reachable and free, authenticated and structurally checked), and
    /// every WAL record, strictly (a torn tail that an open would repair is
    /// a finding too), and what the open of this handle stepped around: a
    /// fall-back to the older meta slot, a meta slot that did not
    /// authenticate, an empty WAL segment with a damaged header (a
    /// writable open removes it). Returns the report; it is an error only
    /// when the check itself could not run.
    ///
    /// It holds flushes (and key rotation, re-encryption and backups, which
    /// commit under the same lock) off while it runs, so no page-file
    /// commit or WAL retirement is half done under it: a commit in flight
    /// would otherwise show as damage (a meta slot newer than the state
    /// read, a reused free page). Writes go on into the memtable meanwhile,
    /// until the memtables waiting for a flush reach their backlog bound
    /// (twice `memtable_size`): then writers wait for the check to end,
    /// which on a large database takes as long as reading every page once.
    /// Run it when a pause of writes is acceptable, or on a backup.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        let inner = &self.inner;
        let dir = &inner.dir;
        let flush = match inner.flush_state.try_lock() {
            Some(flush) => flush,
            None => {
                // A flush, rotation, re-encryption step or backup capture
                // is committing: check the state it leaves, not one half
                // written. (Tests wait for this event to know the check
                // met a commit in flight.)
                tracing::debug!("verify waits for a commit in progress");
                inner.flush_state.lock()
            }
        };
        let mut report = VerifyReport::default();
        let opened = &inner.open_findings;
        report
            .findings
            .extend(opened.stepped_around.iter().cloned());
        if inner.store.stats().txn != opened.txn {
            report.findings.extend(opened.other_slot.iter().cloned());
        }
        if let Some(keys) = &inner.keys
            && let Err(e) = keys.reload()
        {
            report.findings.push(Finding {
                file: dir.join(KEYS_FILE),
                what: e.to_string(),
            });
        }
        let store = inner.store.verify().map_err(|e| inner.store_error(e))?;
        report.entries = store.entries;
        report.pages_checked =
            store.tree_pages + store.overflow_pages + store.free_list_pages + store.free_pages;
        for p in store.problems {
            report.findings.push(Finding {
                file: dir.join(DATA_FILE),
                what: format!("page {}: {}", p.page, p.what),
            });
        }
        let mut options = WalOptions::new(inner.store.db_id());
        options.recovery_mode = RecoveryMode::AbsoluteConsistency;
        if inner.sealed
            && let Some(keys) = &inner.keys
        {
            options = options.sealed(keys.keyring().clone());
        }
        let applied = flush.meta.applied_seq;
        options.first_seq = Seq(applied + 1);
        let mut records = 0u64;
        let replay = |_: Seq, _: sealkv_core_wal::Batch| -> Result<(), std::convert::Infallible> {
            records += 1;
            Ok(())
        };
        match Wal::replay_read_only(inner.config.vfs.clone(), dir.join(WAL_DIR), options, replay) {
            Ok(r) => {
                for d in &r.damaged_headers {
                    report.findings.push(damaged_header_finding(dir, d));
                }
                for s in r.skipped {
                    report.findings.push(Finding {
                        file: dir.join(WAL_DIR),
                        what: format!("segment {} offset {}: {}", s.segment, s.offset, s.what),
                    });
                }
            }
            Err(e) => match crate::errmap::wal(dir, e) {
                Error::Corruption { file, what } => report.findings.push(Finding { file, what }),
                other => return Err(other),
            },
        }
        report.wal_records = records;
        drop(flush);
        // The same problem seen by the open and again now is one finding.
        let mut seen = std::collections::BTreeSet::new();
        report
            .findings
            .retain(|f| seen.insert((f.file.clone(), f.what.clone())));
        Ok(report)
    }
}

/// The finding for an empty newest WAL segment whose header was damaged
/// (the open removes it: it held nothing).
pub(crate) fn damaged_header_finding(dir: &Path, d: &sealkv_core_wal::Skipped) -> Finding {
    Finding {
        file: crate::errmap::segment_file(dir, d.segment),
        what: format!(
            "the segment's header fails its check ({}) and the segment holds no record: damage (a crash leaves a header whole or not at all). Nothing acknowledged was in it; a writable open removes it",
            d.what
        ),
    }
}
