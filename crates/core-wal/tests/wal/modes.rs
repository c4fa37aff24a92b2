//! The recovery modes on a log with damage in its middle, and the rule
//! that tells an unsynced hole (torn) from fsynced damage (corruption).

use sealkv_core_wal::{Error, RecoveryMode, Seq, SyncMode};

use crate::*;

/// Opens a log whose only segment holds `bytes`, on a fresh disk.
fn open_bytes(
    bytes: &[u8],
    opts: &sealkv_core_wal::WalOptions,
) -> Result<(
    sealkv_core_wal::Wal,
    sealkv_core_wal::RecoveryReport,
    Replayed,
)> {
    let (s, v) = sim();
    s.write_file(&seg_path(1), bytes);
    open(&v, opts)
}

type Damaged = (
    sealkv_fileio::SimVfs,
    std::sync::Arc<dyn sealkv_fileio::Vfs>,
    Vec<sealkv_core_wal::Batch>,
    Vec<(usize, usize)>,
);

fn damaged(prot: Option<sealkv_crypto_envelope::EncryptionAlgorithm>) -> Damaged {
    let opts = options(prot);
    let (s, v, batches) = fresh_log(&opts, 6, 30);
    let mut bytes = s.read_file(&seg_path(1)).unwrap();
    let ranges = record_ranges(&bytes);
    bytes[ranges[2].0 + 40] ^= 0x10;
    s.write_file(&seg_path(1), &bytes);
    (s, v, batches, ranges)
}

#[test]
fn each_mode_on_damage_in_the_middle() {
    for prot in PROTECTIONS {
        let opts = options(prot);
        let (_s, v, _b, ranges) = damaged(prot);
        for mode in [
            RecoveryMode::TolerateCorruptedTailRecords,
            RecoveryMode::AbsoluteConsistency,
        ] {
            match open(&v, &with_mode(opts.clone(), mode)) {
                Err(Error::Corruption {
                    segment: 1, offset, ..
                }) => {
                    assert_eq!(offset, ranges[2].0 as u64)
                }
                other => panic!("{mode:?}: {:?}", other.map(|x| x.1)),
            }
        }

        let (_s, v, batches, ranges) = damaged(prot);
        let (wal, report, seen) = open(
            &v,
            &with_mode(opts.clone(), RecoveryMode::SkipAnyCorruptedRecords),
        )
        .unwrap();
        let seqs: Vec<u64> = seen.iter().map(|(s, _)| s.0).collect();
        assert_eq!(seqs, vec![1, 2, 4, 5, 6]);
        for (seq, b) in &seen {
            assert_eq!(b, &batches[seq.0 as usize - 1]);
        }
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].offset, ranges[2].0 as u64);
        assert_eq!(report.skipped[0].len, (ranges[2].1 - ranges[2].0) as u64);
        assert_eq!(wal.next_seq(), Seq(7));
        drop(wal);

        let (_s, v, batches, ranges) = damaged(prot);
        let pit = with_mode(opts.clone(), RecoveryMode::PointInTimeRecovery);
        let (wal, report, seen) = open(&v, &pit).unwrap();
        assert_eq!(seen.len(), 2);
        assert_prefix(&seen, &batches);
        assert_eq!(report.skipped[0].offset, ranges[2].0 as u64);
        assert_eq!(wal.append(&batch(50, 5)).unwrap(), Seq(3));
        wal.close().unwrap();
        // The cut is durable and clean: the default mode now opens it.
        let (_w, report, seen) = open(&v, &opts).unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2].1, batch(50, 5));
        assert!(report.skipped.is_empty() && report.torn_tail.is_none());
    }
}

/// Unsynced records reach the disk out of order: a hole followed by valid
/// records whose durable marks lie before the hole is a torn tail; a hole
/// before a mark is corruption.
#[test]
fn the_durable_mark_tells_an_unsynced_hole_from_fsynced_damage() {
    for prot in PROTECTIONS {
        let opts = with_sync(options(prot), SyncMode::Never);
        let (s, v) = sim();
        let (wal, _, _) = open(&v, &opts).unwrap();
        let batches: Vec<_> = (0..6).map(|i| batch(i, 30)).collect();
        for b in &batches[..2] {
            wal.append(b).unwrap();
        }
        wal.sync().unwrap();
        for b in &batches[2..] {
            wal.append(b).unwrap();
        }
        // A crash, not a close: records 3.. were never fsynced.
        drop(wal);
        let full = s.read_file(&seg_path(1)).unwrap();
        let ranges = record_ranges(&full);
        let all = units(&full);
        // The sync wrote a marker after record 2, and nothing else did.
        assert_eq!(all.iter().filter(|u| u.2).count(), 1);
        assert_eq!(all[2], (ranges[1].1, ranges[1].1 + 48, true));

        // Hole in record 3 (unsynced when records 4.. were written).
        let mut hole = full.clone();
        hole[ranges[3].0..ranges[3].1].fill(0);
        s.write_file(&seg_path(1), &hole);
        let (_w, report, seen) = open(&v, &opts).unwrap();
        assert_eq!(seen.len(), 3, "{prot:?}");
        let torn = report.torn_tail.unwrap();
        assert_eq!(torn.offset, ranges[3].0 as u64);
        assert_eq!(torn.records_discarded, 2);
        drop(_w);

        // Damage in record 1: record 2.. carry a mark past it.
        let (s, v) = sim();
        let mut bad = full.clone();
        bad[ranges[1].0 + 35] ^= 1;
        s.write_file(&seg_path(1), &bad);
        assert!(matches!(
            open(&v, &opts),
            Err(Error::Corruption { segment: 1, .. })
        ));
    }
}

/// The last fsynced stretch of the log, with nothing written after it (a
/// close, a sync, a roll, the last durable group): a flipped bit there is
/// fsynced damage, and the sync marker written after the fsync proves it.
/// Before sync markers it was cut as a torn tail, losing acknowledged
/// records.
#[test]
fn damage_in_the_last_fsynced_records_is_corruption_not_a_torn_tail() {
    for prot in PROTECTIONS {
        for how in ["close", "always", "sync", "roll"] {
            let opts = match how {
                "always" => options(prot),
                _ => with_sync(options(prot), SyncMode::Never),
            };
            let (s, v) = sim();
            let (wal, _, _) = open(&v, &opts).unwrap();
            let batches: Vec<_> = (0..4).map(|i| batch(i, 30)).collect();
            for b in &batches {
                wal.append(b).unwrap();
            }
            match how {
                "close" => wal.close().unwrap(),
                "sync" => {
                    wal.sync().unwrap();
                    drop(wal);
                }
                "roll" => {
                    wal.roll().unwrap();
                    drop(wal);
                    // The new segment's creation was lost: segment 1 is
                    // the last one again.
                    let seg2 = s.read_file(&seg_path(2)).unwrap();
                    s.write_file(&seg_path(2), &vec![0; seg2.len()]);
                }
                _ => drop(wal),
            }
            let full = s.read_file(&seg_path(1)).unwrap();
            let ranges = record_ranges(&full);
            let last = *units(&full).last().unwrap();
            assert!(last.2, "{prot:?} {how}: the log ends in a sync marker");
            for (r, at) in [(3usize, 40usize), (3, 33), (2, 45)] {
                let mut bad = full.clone();
                bad[ranges[r].0 + at] ^= 0x04;
                for mode in [
                    RecoveryMode::TolerateCorruptedTailRecords,
                    RecoveryMode::PointInTimeRecovery,
                ] {
                    match open_bytes(&bad, &with_mode(opts.clone(), mode)) {
                        Err(Error::Corruption {
                            segment: 1, offset, ..
                        }) => {
                            assert_eq!(offset, ranges[r].0 as u64, "{prot:?} {how}")
                        }
                        Ok((_, report, seen)) if mode == RecoveryMode::PointInTimeRecovery => {
                            // Point in time: stops before the damage and
                            // says so; it never calls it a torn tail.
                            assert_eq!(seen.len(), r, "{prot:?} {how}");
                            assert!(report.torn_tail.is_none());
                            assert_eq!(report.skipped[0].offset, ranges[r].0 as u64);
                        }
                        other => panic!("{prot:?} {how} {mode:?}: {:?}", other.map(|x| x.1)),
                    }
                }
            }
            // Without the marker (a cut at the last record boundary) the
            // log ends cleanly: the documented limit of a boundary cut.
            let (_w, report, seen) = open_bytes(&full[..ranges[3].1], &opts).unwrap();
            assert_eq!(seen.len(), 4, "{prot:?} {how}");
            assert!(report.torn_tail.is_none());
        }
    }
}

/// A torn sync marker (its write lost or cut by a power cut) is a torn
/// tail like any unsynced write: the records before it are all kept.
#[test]
fn a_torn_sync_marker_is_cut_and_keeps_every_record() {
    for prot in PROTECTIONS {
        let (s, _v, batches) = fresh_log(&options(prot), 3, 20);
        let full = s.read_file(&seg_path(1)).unwrap();
        let last = *units(&full).last().unwrap();
        assert!(last.2);
        for cut in last.0 + 1..last.1 {
            let (_w, report, seen) = open_bytes(&full[..cut], &options(prot)).unwrap();
            assert_eq!(seen.len(), 3);
            assert_prefix(&seen, &batches);
            assert_eq!(report.torn_tail.unwrap().offset, last.0 as u64);
        }
        // A marker with a flipped bit is not a proof of anything.
        let mut bad = full.clone();
        bad[last.0 + 30] ^= 1;
        let (_w, report, seen) = open_bytes(&bad, &options(prot)).unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(report.torn_tail.unwrap().offset, last.0 as u64);
    }
}

/// Rewrites a plaintext version-2 segment without markers as version 1
/// (the version is in the header and in every record's AAD).
fn as_version_1(v2: &[u8]) -> Vec<u8> {
    use sealkv_crypto_envelope::checksum_tag;
    let mut b = v2.to_vec();
    b[8..10].copy_from_slice(&1u16.to_le_bytes());
    let tag = checksum_tag(&b[..112], &[]);
    b[112..128].copy_from_slice(&tag);
    let mut ctx = [0u8; 64];
    ctx[0..2].copy_from_slice(&1u16.to_le_bytes());
    ctx[8..16].copy_from_slice(&b[24..32]); // segment number
    ctx[16..32].copy_from_slice(&b[48..64]); // database id
    for (start, end, marker) in units(v2) {
        assert!(!marker, "version 1 has no markers");
        let mut aad = ctx.to_vec();
        aad.extend_from_slice(&b[start..start + 32]);
        let tag = checksum_tag(&aad, &b[start + 32..end - 16]);
        b[end - 16..end].copy_from_slice(&tag);
    }
    b
}

/// Segments of format version 1 (before sync markers) are still read; a
/// marker flag in one is damage; a version past the current one is refused.
#[test]
fn version_1_segments_are_still_read() {
    let opts = with_sync(options(None), SyncMode::Never);
    let (s, v) = sim();
    let (wal, _, _) = open(&v, &opts).unwrap();
    let batches: Vec<_> = (0..3).map(|i| batch(i, 25)).collect();
    for b in &batches {
        wal.append(b).unwrap();
    }
    drop(wal); // never synced: no marker
    let v2 = s.read_file(&seg_path(1)).unwrap();
    let v1 = as_version_1(&v2);
    let (_w, report, seen) = open_bytes(&v1, &opts).unwrap();
    assert_eq!(seen.len(), 3);
    assert_prefix(&seen, &batches);
    assert!(report.torn_tail.is_none() && report.skipped.is_empty());
    // The same bytes claiming version 2 fail their checksums.
    let mut relabelled = v1.clone();
    relabelled[8] = 2;
    assert!(matches!(
        open_bytes(&relabelled, &opts),
        Err(Error::Corruption { segment: 1, .. })
    ));
    // A well-formed sync marker (right checksum) appended to a version-1
    // segment is not one: it is damage at the tail, cut as torn.
    use sealkv_crypto_envelope::checksum_tag;
    let mut with_marker = v1.clone();
    let at = v1.len();
    let mut m = [0u8; 48];
    m[4] = 1; // marker flag
    m[8..16].copy_from_slice(&4u64.to_le_bytes()); // next sequence
    m[24..32].copy_from_slice(&(at as u64).to_le_bytes()); // its offset
    let mut aad = vec![0u8; 64];
    aad[0..2].copy_from_slice(&1u16.to_le_bytes());
    aad[8..16].copy_from_slice(&v1[24..32]);
    aad[16..32].copy_from_slice(&v1[48..64]);
    aad.extend_from_slice(&m[..32]);
    let tag = checksum_tag(&aad, &[]);
    m[32..48].copy_from_slice(&tag);
    with_marker.extend_from_slice(&m);
    let (_w, report, seen) = open_bytes(&with_marker, &opts).unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(report.torn_tail.map(|t| t.offset), Some(at as u64));
    assert_eq!(report.sync_markers, 0);
}

/// A whole record cut out of the middle of a segment: skip mode replays every valid record after it,
/// whatever its sync mode (under `Always` every later record's durable mark
/// then lies past its new offset), and reports the gap.
#[test]
fn skip_mode_replays_every_record_after_a_removed_one() {
    for sync in [SyncMode::Never, SyncMode::Always] {
        for prot in PROTECTIONS {
            let opts = with_sync(options(prot), sync);
            let (s, _v, _) = fresh_log(&opts, 5, 30);
            let full = s.read_file(&seg_path(1)).unwrap();
            let all = units(&full);
            // Drop the record of seq 3 (keep the sync markers).
            let records: Vec<usize> = (0..all.len()).filter(|&i| !all[i].2).collect();
            let drop = records[2];
            let mut out = full[..128].to_vec();
            for (i, u) in all.iter().enumerate() {
                if i != drop {
                    out.extend_from_slice(&full[u.0..u.1]);
                }
            }
            let (s2, v2) = sim();
            s2.write_file(&seg_path(1), &out);
            let mode = with_mode(opts.clone(), RecoveryMode::SkipAnyCorruptedRecords);
            let (_w, report, seen) = open(&v2, &mode).unwrap();
            let seqs: Vec<u64> = seen.iter().map(|(s, _)| s.0).collect();
            assert_eq!(seqs, vec![1, 2, 4, 5], "{sync:?} {prot:?}");
            assert!(
                !report.skipped.is_empty(),
                "{sync:?} {prot:?}: the gap is reported"
            );
        }
    }
}
