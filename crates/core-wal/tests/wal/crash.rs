//! Crashes: a cut at every byte offset of the last records, and power cuts
//! that keep, lose or tear each unsynced write on its own.

use sealkv_core_wal::{Error, Seq, SyncMode};
use sealkv_fileio::SimVfs;

use crate::*;

#[test]
fn cut_at_every_byte_of_the_last_records_recovers_the_complete_prefix() {
    for prot in PROTECTIONS {
        let opts = options(prot);
        let (s, _v, batches) = fresh_log(&opts, 6, 40);
        let full = s.read_file(&seg_path(1)).unwrap();
        let ranges = record_ranges(&full);
        let all = units(&full);
        assert_eq!(ranges.len(), batches.len());
        assert_eq!(all.last().unwrap().1, full.len());
        // Each durable append is followed by a sync marker (log idle).
        assert!(
            all.last().unwrap().2,
            "{prot:?}: a closed log ends in a marker"
        );
        let from = ranges[2].0;
        for cut in from..=full.len() {
            let s2 = SimVfs::new();
            let v2: std::sync::Arc<dyn sealkv_fileio::Vfs> = std::sync::Arc::new(s2.clone());
            s2.write_file(&seg_path(1), &full[..cut]);
            let (wal, report, seen) = open(&v2, &opts).unwrap();
            let complete = ranges.iter().filter(|r| r.1 <= cut).count();
            assert_eq!(seen.len(), complete, "{prot:?} cut {cut}");
            assert_prefix(&seen, &batches);
            let at_boundary = all.iter().any(|u| u.1 == cut) || cut == 128;
            assert_eq!(report.torn_tail.is_none(), at_boundary, "cut {cut}");
            if let Some(t) = &report.torn_tail {
                let torn = all.iter().find(|u| u.1 > cut).unwrap().0;
                assert_eq!(t.offset, torn as u64);
                assert_eq!(t.bytes_cut, (cut - torn) as u64);
            }
            // The cut is durable: appending then crashing and replaying
            // again gives the prefix plus the new record.
            let extra = batch(99, 7);
            assert_eq!(wal.append(&extra).unwrap(), Seq(complete as u64 + 1));
            drop(wal);
            s2.crash();
            let (_w, report, seen) = open(&v2, &opts).unwrap();
            assert_eq!(report.torn_tail, None);
            assert_eq!(seen.len(), complete + 1);
            assert_prefix(&seen[..complete].to_vec(), &batches);
            assert_eq!(seen[complete].1, extra);
        }
    }
}

#[test]
fn absolute_consistency_refuses_a_torn_tail() {
    let opts = options(None);
    let (s, v, batches) = fresh_log(&opts, 3, 40);
    let full = s.read_file(&seg_path(1)).unwrap();
    let ranges = record_ranges(&full);
    assert_eq!(ranges.len(), batches.len());
    // Torn inside the last record (a crash before its fsync).
    s.write_file(&seg_path(1), &full[..ranges[2].1 - 5]);
    let strict = with_mode(
        opts.clone(),
        sealkv_core_wal::RecoveryMode::AbsoluteConsistency,
    );
    match open(&v, &strict) {
        Err(Error::Corruption {
            segment: 1, offset, ..
        }) => {
            assert_eq!(offset, ranges[2].0 as u64)
        }
        other => panic!("{:?}", other.map(|x| x.1)),
    }
}

/// Under the harsh crash model (each unsynced write kept, lost or torn per
/// sector, in any order), recovery in the default mode never reports
/// corruption, always returns a prefix of what was appended, and never
/// loses what was acknowledged as durable.
#[test]
fn scattered_power_cuts_never_lose_durable_records_nor_cry_corruption() {
    for prot in PROTECTIONS {
        for seed in 0..60u64 {
            let opts = with_sync(options(prot), SyncMode::Never);
            let (s, v) = sim();
            let mut model = Vec::new();
            let mut durable = 0usize;
            for round in 0..3u64 {
                let (wal, report, seen) = open(&v, &opts).unwrap();
                assert!(seen.len() >= durable, "seed {seed}: lost durable records");
                assert_prefix(&seen, &model);
                model.truncate(seen.len());
                let _ = report;
                let n = 3 + (seed + round) % 9;
                for i in 0..n {
                    let b = batch(seed * 100 + i, 200 + ((seed * 7 + i * 13) % 900) as usize);
                    wal.append(&b).unwrap();
                    model.push(b);
                    if (seed + i) % 4 == 0 {
                        wal.sync().unwrap();
                        durable = model.len();
                    }
                }
                drop(wal);
                s.crash_torn(seed * 31 + round);
            }
            let (_w, _, seen) = open(&v, &opts).unwrap();
            assert!(seen.len() >= durable);
            assert_prefix(&seen, &model);
        }
    }
}

#[test]
fn a_crash_while_creating_a_segment_loses_nothing() {
    let opts = options(None);
    let (s, v, batches) = fresh_log(&opts, 3, 20);
    // A segment file that exists with a header that never reached the disk.
    s.write_file(&seg_path(2), &[0u8; 128]);
    let (w, report, seen) = open(&v, &opts).unwrap();
    assert_eq!(report.segments_removed, vec![2]);
    assert_eq!(seen.len(), 3);
    assert_prefix(&seen, &batches);
    // The new segment takes number 2 again, so a second reopen sees no gap.
    assert_eq!(report.write_segment, 2);
    drop(w);
    let (_w, _, seen) = open(&v, &opts).unwrap();
    assert_prefix(&seen, &batches);
}

/// Eight threads append durably while the power is cut at a random
/// moment: every acknowledged record is replayed, in a dense prefix.
#[test]
fn power_cut_during_concurrent_durable_appends_keeps_every_acknowledged_record() {
    use std::sync::{Arc, Mutex};
    for seed in 0..12u64 {
        let prot = PROTECTIONS[(seed % 3) as usize];
        let opts = options(prot);
        let (s, v) = sim();
        let (wal, _, _) = open(&v, &opts).unwrap();
        let wal = Arc::new(wal);
        let acked = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let wal = wal.clone();
                let acked = acked.clone();
                std::thread::spawn(move || {
                    for i in 0.. {
                        match wal.append(&batch(t * 100_000 + i, 50 + (i as usize % 200))) {
                            Ok(seq) => acked.lock().unwrap().push(seq.0),
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(2 + seed % 5));
        s.crash_torn(seed);
        for h in threads {
            h.join().unwrap();
        }
        drop(wal);
        let acked = acked.lock().unwrap().clone();
        let (_w, _, seen) = open(&v, &opts).unwrap();
        let seqs: Vec<u64> = seen.iter().map(|(q, _)| q.0).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
        let max_acked = acked.iter().copied().max().unwrap_or(0);
        assert!(
            seqs.len() as u64 >= max_acked,
            "seed {seed}: acknowledged up to {max_acked}, replayed {}",
            seqs.len()
        );
    }
}

/// A process crash (the Wal dropped without `close`, the OS keeps its page
/// cache) loses nothing acknowledged in any sync mode; a power cut loses
/// what `Never` had not synced, but only a suffix.
#[test]
fn process_crash_loses_nothing_acknowledged_in_any_mode() {
    for mode in [
        SyncMode::Always,
        SyncMode::Never,
        SyncMode::Interval(std::time::Duration::from_secs(3600)),
    ] {
        let opts = with_sync(
            options(Some(sealkv_crypto_envelope::EncryptionAlgorithm::Aes256Gcm)),
            mode,
        );
        let (s, v) = sim();
        let (wal, _, _) = open(&v, &opts).unwrap();
        let batches: Vec<_> = (0..10).map(|i| batch(i, 64)).collect();
        for b in &batches[..5] {
            wal.append(b).unwrap();
        }
        wal.sync().unwrap();
        for b in &batches[5..] {
            wal.append(b).unwrap();
        }
        drop(wal);
        let (w, _, seen) = open(&v, &opts).unwrap();
        assert_eq!(seen.len(), 10, "{mode:?}");
        assert_prefix(&seen, &batches);
        drop(w);
        // Power cut right after unsynced appends.
        let (wal, _, _) = open(&v, &opts).unwrap();
        wal.append(&batch(10, 64)).unwrap();
        drop(wal);
        s.crash();
        let (_w, _, seen) = open(&v, &opts).unwrap();
        let expect = if mode == SyncMode::Always { 11 } else { 10 };
        assert_eq!(seen.len(), expect, "{mode:?}");
    }
}

mod model {
    use proptest::prelude::*;
    use sealkv_core_wal::{Batch, SyncMode};

    use crate::*;

    #[derive(Debug, Clone)]
    enum Op {
        Append(u16),
        Sync,
        Roll,
        NewSession,
        PowerCut(u64),
        ProcessCrash,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            10 => (1u16..1500).prop_map(Op::Append),
            2 => Just(Op::Sync),
            1 => Just(Op::Roll),
            1 => Just(Op::NewSession),
            1 => any::<u64>().prop_map(Op::PowerCut),
            1 => Just(Op::ProcessCrash),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Random appends, syncs, rolls, session changes, power cuts (the
        /// scattered model) and process crashes, against a `Vec` model:
        /// recovery never reports corruption, replays a prefix of what was
        /// appended, and never less than what was known durable.
        #[test]
        fn recovery_matches_the_model_under_random_crashes(
            ops in prop::collection::vec(op(), 1..60),
            prot in 0usize..3,
            never in any::<bool>(),
        ) {
            let sync = if never { SyncMode::Never } else { SyncMode::Always };
            let mut opts = with_sync(options(PROTECTIONS[prot]), sync);
            opts.segment_size = 3000;
            let (s, v) = sim();
            let mut model: Vec<Batch> = Vec::new();
            let mut durable = 0usize;
            let (mut wal, _, _) = open(&v, &opts).unwrap();
            for (i, op) in ops.iter().enumerate() {
                match op {
                    Op::Append(n) => {
                        let b = batch(i as u64, *n as usize);
                        wal.append(&b).unwrap();
                        model.push(b);
                        if !never {
                            durable = model.len();
                        }
                    }
                    Op::Sync => {
                        wal.sync().unwrap();
                        durable = model.len();
                    }
                    Op::Roll => {
                        wal.roll().unwrap();
                        durable = model.len();
                    }
                    Op::NewSession => {
                        if PROTECTIONS[prot].is_some() {
                            wal.new_session().unwrap();
                            durable = model.len();
                        }
                    }
                    Op::PowerCut(seed) => {
                        drop(wal);
                        s.crash_torn(*seed);
                        let (w, report, seen) = open(&v, &opts).unwrap();
                        prop_assert!(seen.len() >= durable, "lost durable records");
                        assert_prefix(&seen, &model);
                        prop_assert!(report.skipped.is_empty());
                        model.truncate(seen.len());
                        durable = model.len();
                        wal = w;
                    }
                    Op::ProcessCrash => {
                        drop(wal);
                        let (w, _, seen) = open(&v, &opts).unwrap();
                        prop_assert_eq!(seen.len(), model.len());
                        assert_prefix(&seen, &model);
                        durable = model.len();
                        wal = w;
                    }
                }
            }
        }
    }
}
