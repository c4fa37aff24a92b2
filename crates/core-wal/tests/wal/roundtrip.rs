//! Random batches round-trip through append, roll, data key rotation (a
//! new active key and a new writer session) and reopen, against a `Vec`
//! model, plaintext and sealed.

use proptest::prelude::*;
use sealkv_core_wal::{Batch, BatchOp, Seq, SyncMode};
use sealkv_crypto_envelope::{DataKey, KeyId, SecretKey};

use crate::*;

#[derive(Debug, Clone)]
enum Step {
    Append(Vec<(bool, Vec<u8>, Vec<u8>)>),
    Roll,
    /// Sealed: a new data key becomes active, then `new_session`; plaintext:
    /// `new_session` alone.
    Rotate,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => prop::collection::vec(
            (any::<bool>(), prop::collection::vec(any::<u8>(), 0..24), prop::collection::vec(any::<u8>(), 0..300)),
            0..5,
        )
        .prop_map(Step::Append),
        1 => Just(Step::Roll),
        1 => Just(Step::Rotate),
        1 => Just(Step::Reopen),
    ]
}

fn to_batch(ops: &[(bool, Vec<u8>, Vec<u8>)]) -> Batch {
    let mut b = Batch::new();
    for (put, k, v) in ops {
        if *put {
            b.put(k, v);
        } else {
            b.delete(k);
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_batches_round_trip(steps in prop::collection::vec(step(), 1..40), prot in 0usize..3) {
        let mut opts = options(PROTECTIONS[prot]);
        opts.segment_size = 1024;
        opts.sync_mode = SyncMode::Never;
        let (_s, v) = sim();
        let mut model: Vec<Batch> = Vec::new();
        let (mut wal, _, seen) = open(&v, &opts).unwrap();
        prop_assert!(seen.is_empty());
        let (mut next_key, mut rotations) = (1u32, 0u64);
        for st in &steps {
            match st {
                Step::Append(ops) => {
                    let b = to_batch(ops);
                    let seq = wal.append(&b).unwrap();
                    model.push(b);
                    prop_assert_eq!(seq, Seq(model.len() as u64));
                }
                Step::Roll => {
                    wal.roll().unwrap();
                }
                Step::Rotate => {
                    if let Some(ring) = &opts.keyring {
                        next_key += 1;
                        ring.insert(DataKey::new(
                            KeyId(next_key),
                            PROTECTIONS[prot].unwrap().id(),
                            SecretKey::from_bytes(&[next_key as u8; 32]).unwrap(),
                        ));
                        ring.set_active(KeyId(next_key)).unwrap();
                    }
                    wal.new_session().unwrap();
                    rotations += 1;
                }
                Step::Reopen => {
                    wal.close().unwrap();
                    let (w, report, seen) = open(&v, &opts).unwrap();
                    rotations = 0;
                    prop_assert_eq!(report.torn_tail, None);
                    prop_assert_eq!(seen.len(), model.len());
                    assert_prefix(&seen, &model);
                    wal = w;
                }
            }
        }
        let sessions = wal.stats().sessions;
        wal.close().unwrap();
        // Since the last open, each rotation started a session of its own.
        if opts.keyring.is_some() {
            prop_assert_eq!(sessions, rotations);
        }
        let (_w, _, seen) = open(&v, &opts).unwrap();
        prop_assert_eq!(seen.len(), model.len());
        assert_prefix(&seen, &model);
        // Decoded operations are the ones put in.
        for ((_, got), want) in seen.iter().zip(&model) {
            let a: Vec<BatchOp<'_>> = got.iter().collect();
            let b: Vec<BatchOp<'_>> = want.iter().collect();
            prop_assert_eq!(a, b);
        }
    }
}

#[test]
fn retire_removes_flushed_segments_and_replay_starts_at_first_seq() {
    for prot in PROTECTIONS {
        let mut opts = options(prot);
        opts.segment_size = 600;
        let (s, v) = sim();
        let (wal, _, _) = open(&v, &opts).unwrap();
        let batches: Vec<Batch> = (0..40).map(|i| batch(i, 100)).collect();
        for b in &batches {
            wal.append(b).unwrap();
        }
        let before = s.files().len();
        let removed = wal.retire(Seq(20)).unwrap();
        assert!(removed > 0);
        assert_eq!(s.files().len(), before - removed);
        assert_eq!(wal.stats().segments_retired, removed as u64);
        wal.close().unwrap();
        let mut o = opts.clone();
        o.first_seq = Seq(21);
        let (_w, report, seen) = open(&v, &o).unwrap();
        let seqs: Vec<u64> = seen.iter().map(|(s, _)| s.0).collect();
        assert_eq!(seqs, (21..=40).collect::<Vec<_>>());
        for (seq, b) in &seen {
            assert_eq!(b, &batches[seq.0 as usize - 1]);
        }
        assert_eq!(report.last_seq, Some(Seq(40)));
    }
}

#[test]
fn new_log_numbers_from_first_seq_and_a_gap_is_corruption() {
    let mut opts = options(None);
    opts.first_seq = Seq(100);
    let (_s, v) = sim();
    let (wal, _, _) = open(&v, &opts).unwrap();
    assert_eq!(wal.append(&batch(0, 10)).unwrap(), Seq(100));
    wal.close().unwrap();
    // The engine claims everything up to 49 was flushed: records 50..99
    // would be missing.
    opts.first_seq = Seq(50);
    assert!(matches!(
        open(&v, &opts),
        Err(sealkv_core_wal::Error::Corruption { .. })
    ));
}

#[test]
fn roll_starts_a_new_segment_and_interval_mode_syncs() {
    let opts = with_sync(
        options(Some(sealkv_crypto_envelope::EncryptionAlgorithm::Aes256Gcm)),
        SyncMode::Interval(std::time::Duration::from_millis(5)),
    );
    let (s, v) = sim();
    let (wal, report, _) = open(&v, &opts).unwrap();
    let first = report.write_segment;
    wal.append(&batch(1, 10)).unwrap();
    let n = wal.roll().unwrap();
    assert_eq!(n, first + 1);
    assert_eq!(
        wal.roll().unwrap(),
        n,
        "rolling an empty segment is a no-op"
    );
    assert_eq!(wal.durable_seq(), Seq(1));
    wal.append(&batch(2, 10)).unwrap();
    // The background syncer makes it durable without any further call.
    let mut tries = 0;
    while wal.durable_seq() < Seq(2) && tries < 400 {
        std::thread::sleep(std::time::Duration::from_millis(5));
        tries += 1;
    }
    assert_eq!(wal.durable_seq(), Seq(2));
    s.crash();
    let (_w, _, seen) = open(&v, &opts).unwrap();
    assert_eq!(seen.len(), 2);
}

#[test]
fn a_log_wholly_older_than_first_seq_is_dropped_and_numbering_continues() {
    let opts = options(None);
    let (s, v, _) = fresh_log(&opts, 5, 10);
    let mut o = opts.clone();
    o.first_seq = Seq(100);
    let (wal, report, seen) = open(&v, &o).unwrap();
    assert!(seen.is_empty());
    assert_eq!(report.segments_removed, vec![1]);
    assert_eq!(wal.append(&batch(7, 10)).unwrap(), Seq(100));
    wal.close().unwrap();
    assert!(!sealkv_fileio::Vfs::exists(&s, &seg_path(1)).unwrap());
    let (_w, _, seen) = open(&v, &o).unwrap();
    assert_eq!(seen.len(), 1);
}

#[test]
fn a_log_opened_by_another_process_refuses_every_write_and_changes_nothing() {
    for prot in PROTECTIONS {
        let opts = options(prot);
        let (s, v) = sim();
        let (wal, _, _) = open(&v, &opts).unwrap();
        for i in 0..5 {
            wal.append(&batch(i, 100)).unwrap();
        }
        wal.sync().unwrap();
        let before: Vec<Vec<u8>> = s.files().iter().map(|p| s.read_file(p).unwrap()).collect();
        // What a child forked after the open holds.
        wal.pretend_opened_by(std::process::id().wrapping_add(1));
        let forked = |e: sealkv_core_wal::Error| matches!(e, sealkv_core_wal::Error::ForkedProcess { current, .. } if current == std::process::id());
        let rolls = wal.stats().rolls;
        assert!(forked(wal.append(&batch(9, 100)).unwrap_err()));
        assert!(forked(wal.sync().unwrap_err()));
        assert!(forked(wal.retire(Seq(5)).unwrap_err()));
        assert!(forked(wal.roll().unwrap_err()));
        assert!(forked(wal.new_session().unwrap_err()));
        let after: Vec<Vec<u8>> = s.files().iter().map(|p| s.read_file(p).unwrap()).collect();
        assert_eq!(before, after);
        assert_eq!(wal.next_seq(), Seq(6), "no sequence number reserved");
        assert_eq!(wal.stats().rolls, rolls, "no segment reserved");
        wal.pretend_opened_by(std::process::id());
        assert_eq!(wal.append(&batch(9, 100)).unwrap(), Seq(6));
        // A close in the child writes nothing either (no sealed tail).
        let before: Vec<Vec<u8>> = s.files().iter().map(|p| s.read_file(p).unwrap()).collect();
        wal.pretend_opened_by(std::process::id().wrapping_add(1));
        assert!(forked(wal.close().unwrap_err()));
        let after: Vec<Vec<u8>> = s.files().iter().map(|p| s.read_file(p).unwrap()).collect();
        assert_eq!(before, after);
    }
}
