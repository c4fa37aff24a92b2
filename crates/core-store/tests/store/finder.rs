//! A `Finder`'s lookups (`get`, and `get_into` through one reused buffer)
//! against a `BTreeMap` model and against `ReadTxn::get`: keys in runs
//! that ascend (the path kept from one lookup to the next), keys in any
//! order (the path left where the next key routes elsewhere), absent keys
//! between, before and after the stored ones, values in overflow chains,
//! and a snapshot older than later commits.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sealkv_fileio::SimVfs;

use crate::common::*;

fn k(i: u16) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn finder_lookups_match_the_model(
        keys in prop::collection::btree_map(0u16..4000, (0usize..200, any::<u8>()), 0..1500),
        big in prop::collection::vec(0u16..4000, 0..4),
        runs in prop::collection::vec((0u16..4100, 1u16..60, 1u16..9), 1..40),
        scattered in prop::collection::vec(0u16..4100, 0..100),
        encrypted in any::<bool>(),
    ) {
        let sim = SimVfs::new();
        let store = create(&sim, encrypted.then(keyring));
        let mut model = BTreeMap::new();
        let mut w = store.write().unwrap();
        for (i, (len, b)) in &keys {
            let len = if big.contains(i) { 9000 } else { *len };
            let v: Vec<u8> = (0..len).map(|j| b.wrapping_add(j as u8)).collect();
            w.put(&k(*i), &v).unwrap();
            model.insert(k(*i), v);
        }
        w.commit().unwrap();
        let snapshot = store.read();
        // A later commit changes every key: the snapshot's finder does not
        // see it.
        let mut w = store.write().unwrap();
        for i in keys.keys() {
            w.put(&k(*i), b"later").unwrap();
        }
        w.commit().unwrap();

        let mut probes = Vec::new();
        for (start, len, step) in runs {
            probes.extend((0..len).map(|j| start.saturating_add(j * step)));
        }
        probes.extend(scattered);
        let mut finder = snapshot.finder();
        // A second finder reads through one buffer it keeps, as a run of
        // `get_into` does.
        let mut into = snapshot.finder();
        let mut buf = b"stale".to_vec();
        for p in probes {
            let want = model.get(&k(p)).cloned();
            prop_assert_eq!(&finder.get(&k(p)).unwrap(), &want, "key {}", p);
            prop_assert_eq!(snapshot.get(&k(p)).unwrap(), want.clone());
            let found = into.get_into(&k(p), &mut buf).unwrap();
            prop_assert_eq!(found, want.is_some(), "key {}", p);
            prop_assert_eq!(&buf, &want.unwrap_or_default(), "key {}", p);
        }
        // Keys outside every stored one: before the first, after the last.
        prop_assert_eq!(finder.get(b"a").unwrap(), None);
        prop_assert_eq!(finder.get(b"z").unwrap(), None);
        prop_assert_eq!(finder.get(b"").unwrap(), None);
    }
}

/// A store of keys 0..20,000 (a tree of three levels or more), and the
/// simulated disk under it.
fn twenty_thousand_keys() -> (SimVfs, sealkv_core_store::Store) {
    let sim = SimVfs::new();
    let store = create(&sim, Some(keyring()));
    let mut w = store.write().unwrap();
    for i in 0..20_000u32 {
        w.put(&key(i), &val(i, 0)).unwrap();
    }
    w.commit().unwrap();
    (sim, store)
}

/// The nodes `store` has looked up so far (cache hits and misses).
fn nodes(store: &sealkv_core_store::Store) -> u64 {
    let st = store.stats();
    st.cache_hits + st.cache_misses
}

#[test]
fn an_ascending_run_descends_from_below_the_root() {
    let (_sim, store) = twenty_thousand_keys();
    let snapshot = store.read();
    // A lookup from the root visits every level.
    let before = nodes(&store);
    assert_eq!(snapshot.get(&key(0)).unwrap(), Some(val(0, 0)));
    let depth = nodes(&store) - before;
    assert!(depth >= 3, "a tree of {depth} levels");
    // A run of ascending keys visits fewer than that per key: most stay
    // in the leaf or the branch above it.
    let mut finder = snapshot.finder();
    let before = nodes(&store);
    let run: Vec<u32> = (0..20_000u32).step_by(7).collect();
    for &i in &run {
        assert_eq!(finder.get(&key(i)).unwrap(), Some(val(i, 0)));
    }
    let visited = nodes(&store) - before;
    assert!(
        visited < run.len() as u64 * 3 / 2,
        "{visited} nodes for {} keys in a tree of {depth} levels",
        run.len()
    );
}

#[test]
fn keys_in_the_leaf_of_the_last_lookup_are_found_without_the_cache() {
    let (_sim, store) = twenty_thousand_keys();
    let snapshot = store.read();
    let mut finder = snapshot.finder();
    let mut value = Vec::new();
    assert!(finder.get_into(&key(1000), &mut value).unwrap());
    // Its neighbours (and a key absent between them) sit in the same leaf
    // (a leaf holds dozens of these entries): no node is looked up again.
    let before = nodes(&store);
    for i in [1001, 1002, 1000, 1001] {
        assert!(finder.get_into(&key(i), &mut value).unwrap());
        assert_eq!(value, val(i, 0));
    }
    let mut between = key(1001);
    between.push(0);
    assert!(!finder.get_into(&between, &mut value).unwrap());
    assert!(value.is_empty());
    assert_eq!(nodes(&store), before);
    // A key far away descends again.
    assert!(finder.get_into(&key(19_000), &mut value).unwrap());
    assert!(nodes(&store) > before);
}
