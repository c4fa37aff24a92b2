//! Opening the WAL for the engine: replay into the memtable, and the
//! checks that the log and the page file agree (the log must continue the
//! page file exactly, or acknowledged writes would be lost silently).

use std::path::Path;
use std::sync::Arc;

use sealkv_core_wal::{BatchOp, Seq, Wal, WalOptions};

use crate::config::Config;
use crate::error::Error;
use crate::keys::KeyState;
use crate::layout::WAL_DIR;
use crate::memtable::Memtable;
use crate::meta::EngineMeta;

/// What opening the WAL produced.
pub(crate) struct Replayed {
    /// The log, open for appends (`None` for a read-only database).
    pub(crate) wal: Option<Wal>,
    /// The last sequence number in the database (tree or log).
    pub(crate) last_seq: u64,
    /// Torn tails cut.
    pub(crate) torn_tails: u64,
    /// Empty newest segments removed because their header was damaged.
    pub(crate) damaged_headers: Vec<sealkv_core_wal::Skipped>,
}

/// Why replay stopped: a gap between the page file and the log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Gap(String);

/// Opens the log, replays every batch after the page file's applied
/// sequence number into `active`, and checks the two agree: the log must
/// continue the page file exactly, or acknowledged writes would be lost.
pub(crate) fn open(
    config: &Config,
    dir: &Path,
    db_id: sealkv_crypto_envelope::DbId,
    keys: Option<&KeyState>,
    meta: &EngineMeta,
    active: &Arc<Memtable>,
) -> Result<Replayed, Error> {
    let wal_dir = dir.join(WAL_DIR);
    let expected_first = meta.applied_seq + 1;
    let mut options = WalOptions::new(db_id);
    options.sync_mode = config.sync_mode;
    options.segment_size = config.wal_segment_size;
    options.recovery_mode = config.recovery_mode;
    options.first_seq = Seq(expected_first);
    if let Some(k) = keys {
        options = options.sealed(k.keyring().clone());
    }
    let mut next = expected_first;
    let replay = |seq: Seq, batch: sealkv_core_wal::Batch| -> Result<(), Gap> {
        if seq.0 != next {
            return Err(Gap(format!(
                "the WAL jumps from sequence {} to {}: acknowledged writes are missing",
                next.saturating_sub(1),
                seq.0
            )));
        }
        for op in batch.iter() {
            match op {
                BatchOp::Put { key, value } => active.insert(key, seq.0, Some(value)),
                BatchOp::Delete { key } => active.insert(key, seq.0, None),
            }
        }
        next += 1;
        Ok(())
    };
    if config.read_only {
        let report = Wal::replay_read_only(config.vfs.clone(), &wal_dir, options, replay)
            .map_err(|e| crate::errmap::wal(dir, e))?;
        let last = report
            .last_seq
            .map_or(meta.applied_seq, |s| s.0.max(meta.applied_seq));
        check_continuity(dir, meta, next, last)?;
        if let Some(t) = &report.torn_tail {
            warn_torn_tail(dir, t, false);
        }
        return Ok(Replayed {
            wal: None,
            last_seq: next - 1,
            torn_tails: u64::from(report.torn_tail.is_some()),
            damaged_headers: report.damaged_headers,
        });
    }
    let (wal, report) = Wal::open(config.vfs.clone(), &wal_dir, options, replay)
        .map_err(|e| crate::errmap::wal(dir, e))?;
    check_continuity(dir, meta, next, wal.next_seq().0 - 1)?;
    if let Some(t) = &report.torn_tail {
        warn_torn_tail(dir, t, true);
    }
    Ok(Replayed {
        wal: Some(wal),
        last_seq: next - 1,
        torn_tails: u64::from(report.torn_tail.is_some()),
        damaged_headers: report.damaged_headers,
    })
}

/// After replay, `next` is one past the last batch replayed; the log's own
/// last sequence number must be exactly `next - 1`: more means batches the
/// replay never saw (a gap), fewer would make new batches reuse numbers the
/// page file already holds.
fn check_continuity(dir: &Path, meta: &EngineMeta, next: u64, log_last: u64) -> Result<(), Error> {
    if log_last == next - 1 {
        return Ok(());
    }
    Err(Error::Corruption {
        file: dir.join(WAL_DIR),
        what: format!(
            "the WAL ends at sequence {log_last} but the page file and replay reach {} (page file applied through {}): the log and the page file do not belong together, or log segments are missing",
            next - 1,
            meta.applied_seq
        ),
    })
}

/// Tells the operator about a torn tail: the end of the log that a crash
/// left half written (never acknowledged), cut by a writable open, left
/// out of the replay by a read-only one.
fn warn_torn_tail(dir: &Path, t: &sealkv_core_wal::TornTail, cut: bool) {
    tracing::warn!(
        segment = %crate::errmap::segment_file(dir, t.segment).display(),
        offset = t.offset,
        bytes = t.bytes_cut,
        records_discarded = t.records_discarded,
        "{}",
        if cut {
            "the WAL ended in a torn tail (a write cut short by a crash, never acknowledged); it was cut"
        } else {
            "the WAL ends in a torn tail (a write cut short by a crash, never acknowledged); it is left out of this read-only open"
        }
    );
}
