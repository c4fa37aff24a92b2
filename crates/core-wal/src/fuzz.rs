//! The entry point of the "replay arbitrary bytes" fuzz target.

use std::path::Path;

use sealkv_crypto_envelope::{DbId, checksum_tag};
use sealkv_fileio::SimVfs;

use crate::batch::Batch;
use crate::format::{
    HEADER_LEN, RECORD_HEADER_LEN, RecordHeader, SegmentHeader, record_aad, segment_path,
};
use crate::options::{RecoveryMode, WalOptions};
use crate::recovery::Recovery;

/// Replays arbitrary bytes as a segment of a plaintext log, in every
/// recovery mode, on a simulated disk; then again with the header's and
/// every record's checksum recomputed, so that mutated inputs reach the
/// record and batch parsers instead of stopping at a CRC. The database id
/// and segment number are taken from the bytes' own header (when it
/// parses), so a valid segment replays whole. It must never panic. Used by
/// the fuzz target and by a proptest; not part of the API.
#[doc(hidden)]
pub fn fuzz_replay(bytes: &[u8]) {
    replay_in(bytes, &MODES);
    let _ = SegmentHeader::decode(bytes);
    let _ = RecordHeader::decode(bytes);
}

/// [`fuzz_replay`] in one recovery mode, chosen by the input's length
/// (mutations change it): the fuzz target's body, four times faster than
/// every mode on every input.
#[doc(hidden)]
pub fn fuzz_replay_one_mode(bytes: &[u8]) {
    let at = bytes.len() % MODES.len();
    replay_in(bytes, MODES.get(at..=at).unwrap_or(&[]));
}

/// Replays `bytes` as they are and with their checksums recomputed, in each
/// of `modes`, then decodes them as a batch.
fn replay_in(bytes: &[u8], modes: &[RecoveryMode]) {
    let fixed = fix_checksums(bytes);
    for &mode in modes {
        replay(bytes, mode);
        if let Some(fixed) = &fixed {
            replay(fixed, mode);
        }
    }
    let _ = Batch::decode(bytes);
}

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTailRecords,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTimeRecovery,
    RecoveryMode::SkipAnyCorruptedRecords,
];

fn replay(bytes: &[u8], mode: RecoveryMode) {
    let (db, n) = match SegmentHeader::decode(bytes) {
        Some(h) => (h.db_id, h.segment.clamp(1, 1 << 40)),
        None => (DbId([0; 16]), 1),
    };
    let sim = SimVfs::new();
    let dir = Path::new("/fuzz/wal");
    sim.write_file(&segment_path(dir, n), bytes);
    let mut opts = WalOptions::new(db);
    opts.recovery_mode = mode;
    let rec = Recovery {
        vfs: &sim,
        dir,
        opts: &opts,
        read_only: false,
    };
    let mut replayed = 0usize;
    let _ = rec.run(&mut |_, b: Batch| {
        replayed += b.iter().count();
        Ok(())
    });
    assert!(replayed <= bytes.len());
}

/// The bytes with the header CRC and every record's CRC recomputed (as far
/// as the record lengths can be walked); `None` if the header does not
/// parse.
fn fix_checksums(bytes: &[u8]) -> Option<Vec<u8>> {
    let h = SegmentHeader::decode(bytes)?;
    let mut b = bytes.to_vec();
    let mut head = [0u8; HEADER_LEN];
    head.copy_from_slice(b.get(..HEADER_LEN)?);
    let tag = checksum_tag(SegmentHeader::aad(&head), &[]);
    b.get_mut(HEADER_LEN - tag.len()..HEADER_LEN)?
        .copy_from_slice(&tag);
    let ctx = h.context();
    let mut at = HEADER_LEN;
    while let Some(rh) = b.get(at..).and_then(RecordHeader::decode) {
        let body = at + RECORD_HEADER_LEN;
        let end = body.checked_add(rh.len as usize)?;
        let aad = record_aad(&ctx, b.get(at..body)?);
        let tag = checksum_tag(&aad, b.get(body..end)?);
        b.get_mut(end..end + tag.len())?.copy_from_slice(&tag);
        at = end + tag.len();
    }
    Some(b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::sync::Arc;

    use sealkv_fileio::Vfs;

    use super::*;
    use crate::Wal;
    use crate::error::Error;

    /// A plaintext segment of three one-put batches, its first record's
    /// durable mark moved past the record's own offset and every checksum
    /// recomputed: authenticated, yet not what the writer makes. Found by
    /// the `wal_replay` fuzz body: skip mode resumed at that record, failed
    /// on it again and looped forever, recording a skip each time.
    fn segment_with_a_durable_mark_past_its_record() -> (SimVfs, Vec<u8>, WalOptions) {
        let sim = SimVfs::new();
        let vfs: Arc<dyn Vfs> = Arc::new(sim.clone());
        let dir = Path::new("/w");
        let opts = WalOptions::new(DbId([9; 16]));
        let (wal, _) =
            Wal::open(vfs, dir, opts.clone(), |_, _| Ok::<(), std::io::Error>(())).unwrap();
        for i in 0..3u8 {
            let mut b = Batch::new();
            b.put(&[b'k', i], b"v");
            wal.append(&b).unwrap();
        }
        wal.close().unwrap();
        let mut bytes = sim.read_file(&segment_path(dir, 1)).unwrap();
        let mark = HEADER_LEN + 24;
        bytes[mark..mark + 8].copy_from_slice(&(HEADER_LEN as u64 + 1).to_le_bytes());
        (sim, fix_checksums(&bytes).unwrap(), opts)
    }

    fn recover(mode: RecoveryMode) -> (Result<crate::options::RecoveryReport, Error>, Vec<u64>) {
        let (sim, bytes, mut opts) = segment_with_a_durable_mark_past_its_record();
        let dir = Path::new("/w");
        sim.write_file(&segment_path(dir, 1), &bytes);
        opts.recovery_mode = mode;
        let rec = Recovery {
            vfs: &sim,
            dir,
            opts: &opts,
            read_only: true,
        };
        let mut seqs = Vec::new();
        let r = rec.run(&mut |s, _| {
            seqs.push(s.0);
            Ok(())
        });
        (r.map(|r| r.report), seqs)
    }

    #[test]
    fn skip_mode_replays_a_record_whose_durable_mark_lies_past_it_and_reports_it() {
        let (report, seqs) = recover(RecoveryMode::SkipAnyCorruptedRecords);
        let report = report.unwrap();
        // It authenticates and is in sequence: replayed, and the moved
        // bytes reported once.
        assert_eq!(seqs, vec![1, 2, 3]);
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].offset, HEADER_LEN as u64);
        assert_eq!(report.skipped[0].len, 0);
    }

    #[test]
    fn strict_modes_refuse_a_record_whose_durable_mark_lies_past_it() {
        for mode in [
            RecoveryMode::TolerateCorruptedTailRecords,
            RecoveryMode::AbsoluteConsistency,
        ] {
            let (report, seqs) = recover(mode);
            assert!(
                matches!(report, Err(Error::Corruption { offset, .. }) if offset == HEADER_LEN as u64),
                "{mode:?}: {report:?}"
            );
            assert!(seqs.is_empty());
        }
    }
}
