//! The recovery modes on a log with damage in its middle, and the rule
//! that tells an unsynced hole (torn) from fsynced damage (corruption).

use sealkv_core_wal::{Error, RecoveryMode, Seq, SyncMode};

use crate::*;

type Damaged = (
    sealkv_fileio::SimVfs,
    std::sync::Arc<dyn sealkv_fileio::Vfs>,
    Vec<sealkv_core_wal::Batch>,
    Vec<(usize, usize)>,
);

fn damaged(prot: Option<sealkv_crypto_envelope::EncryptionAlgorithm>) -> Damaged {
    let opts = options(prot);
    let (s, v, batches) = fresh_log(&opts, 6, 30);
    let ranges = record_ranges(&batches);
    let mut bytes = s.read_file(&seg_path(1)).unwrap();
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
        wal.close().unwrap();
        let ranges = record_ranges(&batches);
        let full = s.read_file(&seg_path(1)).unwrap();

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
