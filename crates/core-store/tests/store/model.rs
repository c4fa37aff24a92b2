//! The store against a `BTreeMap` model: random transactions (puts,
//! deletes, large values, aborts), reopen between them, ranges both ways.

use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;
use sealkv_fileio::SimVfs;

use crate::common::*;

#[derive(Debug, Clone)]
enum Op {
    Put(u16, usize, u8),
    Delete(u16),
}

#[derive(Debug, Clone)]
struct Txn {
    ops: Vec<Op>,
    abort: bool,
    reopen: bool,
    range: (u16, u16),
    /// Some(base): every key of the transaction falls in `base..base + 64`
    /// (clustered inserts split one leaf many ways, also below a
    /// subtree's first key).
    cluster: Option<u16>,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..400, prop_oneof![8 => 0usize..200, 2 => 500usize..900, 1 => 900usize..20_000], any::<u8>())
            .prop_map(|(k, l, b)| Op::Put(k, l, b)),
        3 => (0u16..400).prop_map(Op::Delete),
    ]
}

fn txn() -> impl Strategy<Value = Txn> {
    (
        prop::collection::vec(op(), 0..120),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.2),
        (0u16..400, 0u16..400),
        prop::option::weighted(0.4, 0u16..340),
    )
        .prop_map(|(ops, abort, reopen, range, cluster)| Txn {
            ops,
            abort,
            reopen,
            range,
            cluster,
        })
}

fn k(i: u16) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

fn v(len: usize, b: u8) -> Vec<u8> {
    (0..len).map(|i| b.wrapping_add(i as u8)).collect()
}

fn run(txns: Vec<Txn>, encrypted: bool) -> Result<(), TestCaseError> {
    let sim = SimVfs::new();
    let ring = encrypted.then(keyring);
    let mut store = create(&sim, ring.clone());
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for t in txns {
        let mut w = store.write().unwrap();
        let mut next = model.clone();
        for o in &t.ops {
            let o = match (t.cluster, o) {
                (None, o) => o.clone(),
                (Some(b), Op::Put(i, l, v)) => Op::Put(b + i % 64, *l, *v),
                (Some(b), Op::Delete(i)) => Op::Delete(b + i % 64),
            };
            match o {
                Op::Put(i, len, b) => {
                    w.put(&k(i), &v(len, b)).unwrap();
                    next.insert(k(i), v(len, b));
                }
                Op::Delete(i) => {
                    w.delete(&k(i)).unwrap();
                    next.remove(&k(i));
                }
            }
        }
        if t.abort {
            w.abort();
        } else {
            w.commit().unwrap();
            model = next;
            let report = store.verify().unwrap();
            prop_assert!(report.is_clean(), "{:?}", report.problems);
        }
        if t.reopen {
            let last = store.stats().txn;
            drop(store);
            let v: std::sync::Arc<dyn sealkv_fileio::Vfs> = std::sync::Arc::new(sim.clone());
            let (s, report) =
                sealkv_core_store::Store::open(v, &path(), opts(ring.clone())).unwrap();
            prop_assert_eq!(report.fell_back, None);
            prop_assert_eq!(report.txn, last);
            store = s;
        }
        let r = store.read();
        let got = all(&r);
        let want: Vec<_> = model.clone().into_iter().collect();
        prop_assert_eq!(&got, &want);
        let rev: Vec<_> = r.iter().rev().collect::<Result<_, _>>().unwrap();
        let mut want_rev = want.clone();
        want_rev.reverse();
        prop_assert_eq!(rev, want_rev);
        let (a, b) = (k(t.range.0.min(t.range.1)), k(t.range.0.max(t.range.1)));
        let got: Vec<_> = r
            .range(Bound::Included(&a[..]), Bound::Excluded(&b[..]))
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<_> = model
            .range::<Vec<u8>, _>((Bound::Included(&a), Bound::Excluded(&b)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        prop_assert_eq!(&got, &want);
        // Alternate ends: front and back must meet exactly once.
        let mut it = r.range(Bound::Excluded(&a[..]), Bound::Included(&b[..]));
        let mut front = Vec::new();
        let mut back = Vec::new();
        while let Some(e) = it.next() {
            front.push(e.unwrap());
            match it.next_back() {
                Some(e) => back.push(e.unwrap()),
                None => break,
            }
        }
        back.reverse();
        front.extend(back);
        let want: Vec<_> = model
            .range::<Vec<u8>, _>((Bound::Excluded(&a), Bound::Included(&b)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        prop_assert_eq!(front, want);
        for i in [t.range.0, t.range.1] {
            prop_assert_eq!(r.get(&k(i)).unwrap(), model.get(&k(i)).cloned());
        }
    }
    let report = store.verify().unwrap();
    prop_assert!(report.is_clean(), "{:?}", report.problems);
    prop_assert_eq!(report.entries, model.len() as u64);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn plaintext_matches_model(txns in prop::collection::vec(txn(), 1..12)) {
        run(txns, false)?;
    }

    #[test]
    fn sealed_matches_model(txns in prop::collection::vec(txn(), 1..12)) {
        run(txns, true)?;
    }
}

#[test]
fn many_commits_reuse_pages_and_stay_verified() {
    let sim = SimVfs::new();
    let store = create(&sim, Some(keyring()));
    for g in 0..30u32 {
        let mut w = store.write().unwrap();
        for i in 0..300u32 {
            if (i + g) % 7 == 0 {
                w.delete(&key(i)).unwrap();
            } else {
                w.put(&key(i), &val(i, g)).unwrap();
            }
        }
        w.commit().unwrap();
    }
    let r = store.read();
    for i in 0..300u32 {
        let want = ((i + 29) % 7 != 0).then(|| val(i, 29));
        assert_eq!(r.get(&key(i)).unwrap(), want, "key {i}");
    }
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    // Pages are reused: the file stays far below 30 full copies.
    assert!(report.page_count < 120, "page count {}", report.page_count);
    assert!(report.free_pages > 0);
}

#[test]
fn large_value_round_trips_and_limit_is_enforced() {
    let sim = SimVfs::new();
    let store = create(&sim, Some(keyring()));
    let big: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
    let mut w = store.write().unwrap();
    w.put(b"big", &big).unwrap();
    let err = w
        .put(b"huge", &vec![0; sealkv_core_store::MAX_VALUE_LEN + 1])
        .unwrap_err();
    assert!(matches!(
        err,
        sealkv_core_store::StoreError::ValueTooLarge { .. }
    ));
    w.commit().unwrap();
    drop(store);
    let store = open(&sim, Some(keyring()));
    assert_eq!(store.read().get(b"big").unwrap().as_deref(), Some(&big[..]));
    let mut w = store.write().unwrap();
    w.delete(b"big").unwrap();
    w.commit().unwrap();
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(report.free_pages > 4000);
}

/// Batches that each land below every key already stored: the first child
/// of each branch on the left edge splits below its old first key (the case
/// the lead's engine repro found).
#[test]
fn descending_batches_match_model() {
    for (batch, len) in [(7u32, 700usize), (40, 120), (300, 30)] {
        let sim = SimVfs::new();
        let mut store = create(&sim, None);
        let mut model = BTreeMap::new();
        let mut top = 6000u32;
        for round in 0..12u32 {
            let mut w = store.write().unwrap();
            for i in top - batch..top {
                let v = vec![(i + round) as u8; len];
                w.put(&key(i), &v).unwrap();
                model.insert(key(i), v);
            }
            w.commit().unwrap();
            top -= batch;
            if round % 3 == 2 {
                drop(store);
                store = open(&sim, None);
            }
            let got = all(&store.read());
            assert_eq!(
                got,
                model.clone().into_iter().collect::<Vec<_>>(),
                "batch {batch} round {round}"
            );
        }
        assert!(store.verify().unwrap().is_clean());
    }
}

/// A three-level tree (long keys: few entries per branch), then commits
/// that delete most of it in random subsets, with a few puts between:
/// leaves and branches merge with their neighbours, the tree loses levels,
/// and every state matches the model and verifies.
fn merge_run(seed: u64, per_commit: usize, keep_one_in: u64) -> Result<(), TestCaseError> {
    let sim = SimVfs::new();
    let store = create(&sim, None);
    let mut model = BTreeMap::new();
    let mut rng = sealkv_fileio::SplitMix64::new(seed);
    let long_key = |i: u64| format!("{i:06}-{}", "k".repeat(190)).into_bytes();
    let mut w = store.write().unwrap();
    for i in 0..1500u64 {
        let v = vec![i as u8; (i % 40) as usize];
        w.put(&long_key(i), &v).unwrap();
        model.insert(long_key(i), v);
    }
    w.commit().unwrap();
    let mut doomed: Vec<u64> = (0..1500).filter(|i| i % keep_one_in != 0).collect();
    // Shuffle.
    for i in (1..doomed.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        doomed.swap(i, j);
    }
    for chunk in doomed.chunks(per_commit) {
        let mut w = store.write().unwrap();
        for &i in chunk {
            w.delete(&long_key(i)).unwrap();
            model.remove(&long_key(i));
        }
        let back = rng.next_u64() % 1500;
        w.put(&long_key(back), b"back").unwrap();
        model.insert(long_key(back), b"back".to_vec());
        w.commit().unwrap();
        let report = store.verify().unwrap();
        prop_assert!(report.is_clean(), "{:?}", report.problems);
        prop_assert_eq!(report.entries, model.len() as u64);
    }
    let got = all(&store.read());
    prop_assert_eq!(got, model.into_iter().collect::<Vec<_>>());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    #[test]
    fn merges_match_model(
        seed in any::<u64>(),
        per_commit in prop_oneof![5usize..60, 200usize..1500],
        keep_one_in in 2u64..40,
    ) {
        merge_run(seed, per_commit, keep_one_in)?;
    }
}
