//! A range read from both ends in any interleaving, against a `BTreeMap`
//! model: the ends stop where they meet (each reads the other's last key in
//! place from the leaf its path holds), across leaf boundaries, at the
//! bounds, and with values in overflow chains.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use proptest::prelude::*;
use sealkv_fileio::SimVfs;

use crate::common::*;

fn bound(kind: u8, i: u16) -> Bound<Vec<u8>> {
    match kind % 3 {
        0 => Bound::Unbounded,
        1 => Bound::Included(format!("k{i:04}").into_bytes()),
        _ => Bound::Excluded(format!("k{i:04}").into_bytes()),
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn interleaved_ends_match_the_model(
        keys in prop::collection::btree_map(0u16..1500, (0usize..300, any::<u8>()), 0..600),
        big in prop::collection::vec(0u16..1500, 0..4),
        lower in (any::<u8>(), 0u16..1500),
        upper in (any::<u8>(), 0u16..1500),
        // 0: `next`, 1: `next_back`, 2: `next_with` (borrowed, copied out).
        steps in prop::collection::vec(0u8..3, 0..700),
        encrypted in any::<bool>(),
    ) {
        let sim = SimVfs::new();
        let store = create(&sim, encrypted.then(keyring));
        let mut model = BTreeMap::new();
        let mut w = store.write().unwrap();
        for (i, (len, b)) in &keys {
            // Some values go to overflow chains.
            let len = if big.contains(i) { 9000 } else { *len };
            let k = format!("k{i:04}").into_bytes();
            let v: Vec<u8> = (0..len).map(|j| b.wrapping_add(j as u8)).collect();
            w.put(&k, &v).unwrap();
            model.insert(k, v);
        }
        w.commit().unwrap();
        let (lo, hi) = (bound(lower.0, lower.1), bound(upper.0, upper.1));
        // A range with its start past its end is empty (BTreeMap panics on it).
        let empty = match (&lo, &hi) {
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                a > b || (a == b && !matches!((&lo, &hi), (Bound::Included(_), Bound::Included(_))))
            }
            _ => false,
        };
        let mut want: VecDeque<(Vec<u8>, Vec<u8>)> = if empty {
            VecDeque::new()
        } else {
            model
                .range::<Vec<u8>, _>((lo.clone(), hi.clone()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let r = store.read();
        let mut it = r.range(as_ref(&lo), as_ref(&hi));
        for step in steps.iter().copied().chain(std::iter::repeat_n(0, 2)) {
            let (got, exp) = match step {
                0 => (it.next(), want.pop_front()),
                1 => (it.next_back(), want.pop_back()),
                _ => (
                    it.next_with(|k, v| (k.to_vec(), v.to_vec())),
                    want.pop_front(),
                ),
            };
            prop_assert_eq!(got.transpose().unwrap(), exp);
        }
        // Whatever is left, read from the front, is the model's rest.
        let rest: Vec<_> = it.by_ref().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(rest, Vec::from(want));
        prop_assert!(it.next().is_none());
        prop_assert!(it.next_back().is_none());
    }
}
