//! Long-lived readers and page reuse under a warm cache.

use std::collections::HashMap;
use std::sync::Arc;

use sealkv_core_store::PageRole;
use sealkv_fileio::SimVfs;

use crate::common::*;

/// An encrypted store holding keys 0..1500 at generation 0, in one commit.
fn sealed_store_of_1500(sim: &SimVfs) -> sealkv_core_store::Store {
    let store = create(sim, Some(keyring()));
    let mut w = store.write().unwrap();
    for i in 0..1500u32 {
        w.put(&key(i), &val(i, 0)).unwrap();
    }
    w.commit().unwrap();
    store
}

#[test]
fn reader_keeps_its_view_and_its_pages_until_dropped() {
    let sim = SimVfs::new();
    let store = sealed_store_of_1500(&sim);
    let reader = store.read();
    let view = all(&reader);
    let pages: Vec<(u64, Vec<u8>)> = reader
        .pages()
        .unwrap()
        .into_iter()
        .filter(|(_, r)| matches!(r, PageRole::Tree | PageRole::Overflow))
        .map(|(p, _)| (p, reader.raw_page(p).unwrap()))
        .collect();
    for g in 1..40u32 {
        let mut w = store.write().unwrap();
        for i in 0..1500u32 {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.commit().unwrap();
    }
    assert_eq!(all(&reader), view);
    assert_eq!(reader.get(&key(7)).unwrap(), Some(val(7, 0)));
    for (p, bytes) in &pages {
        assert_eq!(
            &reader.raw_page(*p).unwrap(),
            bytes,
            "page {p} reused under a reader"
        );
    }
    assert_eq!(store.stats().readers, 1);
    assert_eq!(store.stats().oldest_reader, Some(reader.txn()));
    assert!(reader.txn() < store.stats().txn);
    drop(reader);
    assert_eq!(store.stats().readers, 0);
    assert_eq!(store.stats().oldest_reader, None);
    let latest = store.read();
    for g in 40..44u32 {
        let mut w = store.write().unwrap();
        for i in 0..1500u32 {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.commit().unwrap();
    }
    drop(latest);
    let r = store.read();
    let reused = pages
        .iter()
        .filter(|(p, bytes)| r.raw_page(*p).unwrap() != *bytes)
        .count();
    assert!(reused > 0, "the reader's pages are reused once it is gone");
}

#[test]
fn a_pinned_read_keeps_its_view_and_its_pages_until_dropped() {
    let sim = SimVfs::new();
    let store = sealed_store_of_1500(&sim);
    let pinned = store.pin();
    assert_eq!(store.stats().readers, 1);
    assert_eq!(store.stats().oldest_reader, Some(pinned.txn()));
    // Rewrite every value many times: the writer frees the pinned tree's
    // pages, and would reuse them but for the pin.
    for g in 1..40u32 {
        let mut w = store.write().unwrap();
        for i in 0..1500u32 {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.commit().unwrap();
    }
    for i in (0..1500u32).step_by(7) {
        assert_eq!(pinned.get(&key(i)).unwrap(), Some(val(i, 0)), "key {i}");
    }
    assert_eq!(pinned.get(b"absent").unwrap(), None);
    assert!(pinned.txn() < store.stats().txn);
    drop(pinned);
    assert_eq!(store.stats().readers, 0);
    assert_eq!(store.stats().oldest_reader, None);
    assert_eq!(store.pin().get(&key(7)).unwrap(), Some(val(7, 39)));
    assert_eq!(store.stats().readers, 0, "a dropped pin unregisters");
}

#[test]
fn snapshots_whose_readers_left_hold_no_pages_back() {
    let sim = SimVfs::new();
    let store = sealed_store_of_1500(&sim);
    let old = store.read();
    let pages: Vec<(u64, Vec<u8>)> = old
        .pages()
        .unwrap()
        .into_iter()
        .filter(|(_, r)| matches!(r, PageRole::Tree))
        .map(|(p, _)| (p, old.raw_page(p).unwrap()))
        .collect();
    let rewrite = |g: u32| {
        let mut w = store.write().unwrap();
        for i in 0..1500u32 {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.commit().unwrap();
    };
    rewrite(1);
    // A reader of the newest snapshot comes and goes while an older one
    // stays: the older one is still the oldest held.
    let pin = store.pin();
    assert!(pin.txn() > old.txn());
    drop(pin);
    assert_eq!(store.stats().readers, 1);
    assert_eq!(store.stats().oldest_reader, Some(old.txn()));
    drop(old);
    assert_eq!(store.stats().readers, 0);
    assert_eq!(store.stats().oldest_reader, None);
    // Point reads between commits, each reader gone before the next
    // commit: no snapshot stays held, so the first tree's pages are
    // reused.
    for g in 2..12u32 {
        for i in (0..1500u32).step_by(97) {
            assert_eq!(store.pin().get(&key(i)).unwrap(), Some(val(i, g - 1)));
        }
        assert_eq!(store.stats().oldest_reader, None, "generation {g}");
        rewrite(g);
    }
    assert_eq!(store.stats().readers, 0);
    let r = store.read();
    let reused = pages
        .iter()
        .filter(|(p, bytes)| r.raw_page(*p).unwrap() != *bytes)
        .count();
    assert!(reused > 0, "pages no reader holds are reused");
    assert_eq!(store.stats().oldest_reader, Some(r.txn()));
}

#[test]
fn freed_and_reused_page_is_never_served_from_cache() {
    let sim = SimVfs::new();
    let store = create(&sim, Some(keyring()));
    let mut tags_by_page: HashMap<u64, usize> = HashMap::new();
    for g in 0..25u32 {
        let mut w = store.write().unwrap();
        for i in 0..800u32 {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.commit().unwrap();
        // Warm the cache with this version, then check every value.
        let r = store.read();
        for i in 0..800u32 {
            assert_eq!(r.get(&key(i)).unwrap(), Some(val(i, g)), "gen {g} key {i}");
        }
        for (p, role) in r.pages().unwrap() {
            if role == PageRole::Tree {
                *tags_by_page.entry(p).or_default() += 1;
            }
        }
    }
    let s = store.stats();
    assert!(s.cache_hits > 0);
    // Page numbers were reused across versions while their old contents
    // sat in the cache.
    assert!(tags_by_page.values().any(|&n| n > 1));
}

#[test]
fn readers_run_concurrently_with_the_writer() {
    let sim = SimVfs::new();
    let store = create(&sim, None);
    let mut w = store.write().unwrap();
    for i in 0..500u32 {
        w.put(&key(i), &val(i, 0)).unwrap();
    }
    w.commit().unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = store.read();
                    let v = all(&r);
                    // Every snapshot is one whole generation.
                    let g = &v[0].1;
                    let gen_of = |x: &Vec<u8>| x.split(|&b| b == b'-').nth(2).map(<[u8]>::to_vec);
                    assert!(v.iter().all(|(_, x)| gen_of(x) == gen_of(g)));
                }
            })
        })
        .collect();
    for g in 1..30u32 {
        let mut w = store.write().unwrap();
        for i in 0..500u32 {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.commit().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn a_range_outliving_its_read_txn_keeps_its_pages() {
    let sim = SimVfs::new();
    let store = create(&sim, None);
    let mut w = store.write().unwrap();
    for i in 0..2000u32 {
        w.put(&key(i), &val(i, 0)).unwrap();
    }
    w.commit().unwrap();
    let r = store.read();
    let mut range = r.iter();
    drop(r);
    let first = range.next().unwrap().unwrap();
    assert_eq!(first.1, val(0, 0));
    for g in 1..10u32 {
        let mut w = store.write().unwrap();
        for i in 0..2000u32 {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.commit().unwrap();
    }
    let rest: Vec<_> = range.collect::<Result<_, _>>().unwrap();
    assert_eq!(rest.len(), 1999);
    assert!(
        rest.iter()
            .enumerate()
            .all(|(i, (_, v))| *v == val(i as u32 + 1, 0))
    );
    assert_eq!(store.stats().readers, 0);
}

#[test]
fn pages_freed_by_a_readers_commit_wait_for_it() {
    let sim = SimVfs::new();
    let store = create(&sim, None);
    for g in 0..2u32 {
        let mut w = store.write().unwrap();
        for i in 0..300u32 {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.commit().unwrap();
    }
    // The reader's snapshot records the pages its commit freed as free
    // pages holding a given version: they must stay so while it lives.
    let r = store.read();
    let at = store.stats().txn;
    for g in 2..4u32 {
        let mut w = store.write().unwrap();
        for i in 0..300u32 {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.commit().unwrap();
    }
    assert_eq!(store.stats().txn, at + 2);
    r.pages().unwrap();
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(r.get(&key(3)).unwrap(), Some(val(3, 1)));
}
