//! How full the tree's pages stay: random and sequential loads in commits
//! of several sizes, then deletes; the leaves' average fill must stay at or
//! above the target, and the tree must stay valid.

use sealkv_core_store::Store;
use sealkv_fileio::{SimVfs, SplitMix64};

use crate::common::*;

/// The average leaf fill every load must keep.
const TARGET: f64 = 0.85;

/// Key `i` of a load: 16 bytes, in random or sequential order.
fn load_key(i: u64, random: bool) -> Vec<u8> {
    let n = if random { SplitMix64::mix(i) } else { i };
    [&b"user-key"[..], &n.to_be_bytes()].concat()
}

/// Puts `n` records of 100-byte values in commits of `per_commit`.
fn load(store: &Store, n: u64, per_commit: u64, random: bool) {
    let mut i = 0;
    while i < n {
        let mut w = store.write().unwrap();
        for j in i..(i + per_commit).min(n) {
            w.put(&load_key(j, random), &[0x5A; 100]).unwrap();
        }
        w.commit().unwrap();
        i += per_commit;
    }
}

fn check(store: &Store, n: u64, what: &str) -> f64 {
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{what}: {:?}", report.problems);
    let s = store.space().unwrap();
    assert_eq!(s.entries, n, "{what}");
    s.leaf_fill
}

#[test]
fn random_and_sequential_loads_keep_leaves_full() {
    for random in [true, false] {
        for per_commit in [1, 10, 100, 1000, 20_000] {
            let n = if per_commit == 1 { 4_000 } else { 20_000 };
            let store = create(&SimVfs::new(), None);
            load(&store, n, per_commit, random);
            let what = format!("random {random}, {per_commit} a commit");
            let fill = check(&store, n, &what);
            assert!(fill >= TARGET, "{what}: leaf fill {fill:.3}");
        }
    }
}

#[test]
fn deletes_merge_thin_leaves() {
    for per_commit in [10, 1000] {
        let store = create(&SimVfs::new(), None);
        load(&store, 20_000, 20_000, true);
        // Nine in ten go, in random order.
        let mut left = 20_000;
        let doomed: Vec<u64> = (0..20_000).filter(|i| i % 10 != 0).collect();
        for chunk in doomed.chunks(per_commit) {
            let mut w = store.write().unwrap();
            for &i in chunk {
                w.delete(&load_key(i, true)).unwrap();
            }
            w.commit().unwrap();
            left -= chunk.len() as u64;
        }
        let what = format!("delete nine in ten, {per_commit} a commit");
        let fill = check(&store, left, &what);
        // Thin leaves merge with a neighbour once they are under half
        // full, so they average at least that.
        assert!(fill >= 0.5, "{what}: leaf fill {fill:.3}");
    }
}
