//! A property test against a `BTreeMap`: random operations, flushes,
//! reopens and crashes; the database always reads as the model.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sealkv::{Db, WriteBatch};
use sealkv_fileio::SimVfs;

use crate::support::{collect, sim_config};

#[derive(Debug, Clone)]
enum Step {
    Put(u8, u8),
    Delete(u8),
    Batch(Vec<(u8, Option<u8>)>),
    Snapshot,
    Flush,
    Reopen,
    Crash,
    /// Rotate the data key (sealed databases only).
    Rotate,
    /// Re-encrypt; `true` stops after its first step (the next one goes on
    /// from the durable cursor).
    Reencrypt(bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Step::Put(k, v)),
        2 => any::<u8>().prop_map(Step::Delete),
        2 => prop::collection::vec((any::<u8>(), prop::option::of(any::<u8>())), 1..8).prop_map(Step::Batch),
        1 => Just(Step::Snapshot),
        1 => Just(Step::Flush),
        1 => Just(Step::Reopen),
        1 => Just(Step::Crash),
        1 => Just(Step::Rotate),
        1 => any::<bool>().prop_map(Step::Reencrypt),
    ]
}

fn k(b: u8) -> Vec<u8> {
    vec![b'k', b]
}

/// Values long enough that a few dozen writes pass the flush size.
fn v(b: u8) -> Vec<u8> {
    vec![b; 700]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn reads_always_match_the_model(steps in prop::collection::vec(step(), 1..80), mode in 0..4usize) {
        // Plaintext, then each algorithm.
        let alg = crate::support::modes()[mode];
        let sealed = alg.is_some();
        let sim = SimVfs::new();
        let config = || sim_config(&sim, alg);
        let mut db = Db::open_with_config(config()).unwrap();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for s in steps {
            match s {
                Step::Put(key, val) => {
                    db.put(k(key), v(val)).unwrap();
                    model.insert(k(key), v(val));
                }
                Step::Delete(key) => {
                    db.delete(k(key)).unwrap();
                    model.remove(&k(key));
                }
                Step::Batch(ops) => {
                    let mut b = WriteBatch::new();
                    for (key, val) in ops {
                        match val {
                            Some(val) => {
                                b.put(k(key), v(val));
                                model.insert(k(key), v(val));
                            }
                            None => {
                                b.delete(k(key));
                                model.remove(&k(key));
                            }
                        }
                    }
                    db.write(&b).unwrap();
                }
                Step::Snapshot => {
                    let snap = db.snapshot().unwrap();
                    db.put(b"zz-after-snapshot", b"x").unwrap();
                    db.delete(b"zz-after-snapshot").unwrap();
                    let seen = collect(snap.range::<&[u8]>(..));
                    let want: Vec<_> = model.clone().into_iter().collect();
                    prop_assert_eq!(seen, want);
                }
                Step::Flush => db.flush().unwrap(),
                Step::Reopen => {
                    db.close().unwrap();
                    db = Db::open_with_config(config()).unwrap();
                }
                Step::Rotate if sealed => {
                    db.rotate_data_key().unwrap();
                }
                Step::Reencrypt(stop) if sealed => {
                    let report = db
                        .reencrypt(&mut |_| {
                            if stop {
                                std::ops::ControlFlow::Break(())
                            } else {
                                std::ops::ControlFlow::Continue(())
                            }
                        })
                        .unwrap();
                    if report.complete {
                        // Only the active key is left, unless a snapshot
                        // (none is held here) kept old pages.
                        prop_assert_eq!(report.coverage.keys.len(), 1);
                    }
                }
                Step::Rotate | Step::Reencrypt(_) => {}
                Step::Crash => {
                    // SyncMode::Always: every acknowledged write survives.
                    std::mem::forget(db);
                    sim.crash_torn(model.len() as u64);
                    db = Db::open_with_config(config()).unwrap();
                }
            }
        }
        let forward = collect(db.range::<&[u8]>(..).unwrap());
        let want: Vec<_> = model.clone().into_iter().collect();
        prop_assert_eq!(&forward, &want);
        let mut backward = collect(db.range::<&[u8]>(..).unwrap().rev());
        backward.reverse();
        prop_assert_eq!(&backward, &want);
        for key in 0..=255u8 {
            prop_assert_eq!(db.get(k(key)).unwrap(), model.get(&k(key)).cloned());
        }
        let report = db.verify().unwrap();
        prop_assert!(report.is_clean(), "{:?}", report.findings);
    }
}
