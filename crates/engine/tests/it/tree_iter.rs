//! Iterators made while every memtable is empty read the tree without a
//! merge: they must still keep their view across later writes, flushes and
//! snapshots, and read from both ends like the merged ones.

use std::collections::{BTreeMap, VecDeque};

use sealkv::Db;
use sealkv_fileio::SimVfs;

use crate::support::{collect, modes, sim_config};

fn k(i: u32) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

fn v(i: u32, round: u32) -> Vec<u8> {
    format!(
        "value {i} of round {round} {}",
        "x".repeat((i % 90) as usize)
    )
    .into_bytes()
}

#[test]
fn a_tree_only_iterator_keeps_its_view_across_writes_and_flushes() {
    for mode in modes() {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, mode)).unwrap();
        let mut model = BTreeMap::new();
        for i in 0..3000u32 {
            db.put(k(i), v(i, 0)).unwrap();
            model.insert(k(i), v(i, 0));
        }
        db.close().unwrap();
        // Reopened: the WAL was flushed at close, every memtable is empty.
        let db = Db::open_with_config(sim_config(&vfs, mode)).unwrap();
        let mut it = db.range::<&[u8]>(..).unwrap();
        let mut window = db.range(k(1000).as_slice()..=k(1999).as_slice()).unwrap();
        let snap = db.snapshot().unwrap();
        let mut want: VecDeque<_> = model.clone().into_iter().collect();
        let mut want_window: VecDeque<_> = model
            .range(k(1000)..=k(1999))
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect();
        // Read a little from both ends before the writes.
        for _ in 0..50 {
            assert_eq!(it.next().unwrap().unwrap(), want.pop_front().unwrap());
            assert_eq!(it.next_back().unwrap().unwrap(), want.pop_back().unwrap());
        }
        // Overwrite, delete and add keys everywhere, flushing in between
        // (the pages the iterators stand on are rewritten and freed).
        let mut now = model.clone();
        for i in (0..3500u32).step_by(3) {
            if i % 2 == 0 {
                db.delete(k(i)).unwrap();
                now.remove(&k(i));
            } else {
                db.put(k(i), v(i, 1)).unwrap();
                now.insert(k(i), v(i, 1));
            }
        }
        db.flush().unwrap();
        db.put(k(5), v(5, 2)).unwrap();
        now.insert(k(5), v(5, 2));
        // The old iterators and the snapshot still read the old state,
        // from either end, in any order.
        let mut flip = 0u32;
        while !want.is_empty() {
            flip = flip.wrapping_mul(7).wrapping_add(3) % 11;
            let (got, exp) = if flip < 6 {
                (it.next(), want.pop_front())
            } else {
                (it.next_back(), want.pop_back())
            };
            assert_eq!(got.transpose().unwrap(), exp);
        }
        assert!(it.next().is_none() && it.next_back().is_none());
        while let Some(exp) = want_window.pop_back() {
            assert_eq!(window.next_back().unwrap().unwrap(), exp);
            if let Some(exp) = want_window.pop_front() {
                assert_eq!(window.next().unwrap().unwrap(), exp);
            }
        }
        assert!(window.next().is_none() && window.next_back().is_none());
        let old: Vec<_> = model.clone().into_iter().collect();
        assert_eq!(collect(snap.range::<&[u8]>(..)), old);
        // A new iterator sees the writes (memtable and tree merged).
        let new: Vec<_> = now.clone().into_iter().collect();
        assert_eq!(collect(db.range::<&[u8]>(..).unwrap()), new);
        drop((snap, it, window));
        db.close().unwrap();
        // And after a reopen, through the tree alone, both ways.
        let db = Db::open_with_config(sim_config(&vfs, mode)).unwrap();
        assert_eq!(collect(db.range::<&[u8]>(..).unwrap()), new);
        let mut rev = collect(db.range::<&[u8]>(..).unwrap().rev());
        rev.reverse();
        assert_eq!(rev, new);
        db.close().unwrap();
    }
}

#[test]
fn a_snapshot_taken_on_empty_memtables_ignores_later_writes() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(sim_config(&vfs, None)).unwrap();
    for i in 0..100u32 {
        db.put(k(i), v(i, 0)).unwrap();
    }
    db.close().unwrap();
    let db = Db::open_with_config(sim_config(&vfs, None)).unwrap();
    let snap = db.snapshot().unwrap();
    // The snapshot's active memtable receives writes it must not see.
    db.put(k(3), v(3, 1)).unwrap();
    db.delete(k(4)).unwrap();
    db.put(k(500), v(500, 1)).unwrap();
    let got = collect(snap.range::<&[u8]>(..));
    assert_eq!(got.len(), 100);
    assert_eq!(got[3], (k(3), v(3, 0)));
    assert_eq!(got[4], (k(4), v(4, 0)));
    assert_eq!(collect(snap.prefix(b"k005")), Vec::new());
    let now = collect(db.range::<&[u8]>(..).unwrap());
    assert_eq!(now.len(), 100);
    assert_eq!(now[3], (k(3), v(3, 1)));
    assert_eq!(now.last().unwrap(), &(k(500), v(500, 1)));
    db.close().unwrap();
}
