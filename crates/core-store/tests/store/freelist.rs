//! The free list stays consistent with the meta page's count under random
//! workloads: after every commit `verify()` is clean and a reopen lands on
//! the last transaction without falling back.

use std::path::Path;
use std::sync::Arc;

use sealkv_core_store::Store;
use sealkv_fileio::{SimVfs, Vfs};

use crate::common::*;

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn reopen_at(sim: &SimVfs, want: u64) {
    let v: Arc<dyn Vfs> = Arc::new(sim.clone());
    let (s, report) = Store::open(v, Path::new("/db/data.sealkv"), opts(None)).unwrap();
    assert_eq!(report.fell_back, None);
    assert_eq!(report.txn, want);
    drop(s);
}

/// Runs `commits` random commits (puts of 0..3000 B values, deletes, some
/// empty commits) over 600 keys, checking after each.
fn random_workload(seed: u64, commits: u32) {
    let sim = SimVfs::new();
    let store = create(&sim, None);
    let mut rng = Rng(seed);
    for _ in 0..commits {
        let mut w = store.write().unwrap();
        if rng.below(5) != 0 {
            for _ in 0..rng.below(80) {
                let k = key(rng.below(600) as u32);
                if rng.below(4) == 0 {
                    w.delete(&k).unwrap();
                } else {
                    let len = rng.below(3001) as usize;
                    w.put(&k, &vec![rng.next() as u8; len]).unwrap();
                }
            }
        }
        let txn = w.commit().unwrap();
        let report = store.verify().unwrap();
        assert!(report.is_clean(), "txn {txn}: {:?}", report.problems);
        // Reopen a copy of the file (the live handle holds the lock).
        let copy = SimVfs::new();
        let bytes = sim.read_file(Path::new("/db/data.sealkv")).unwrap();
        copy.write_file(Path::new("/db/data.sealkv"), &bytes);
        reopen_at(&copy, txn);
    }
}

#[test]
fn free_list_count_matches_chain_under_random_workloads() {
    for seed in 0..8 {
        random_workload(seed, 60);
    }
}

/// Commits that leave the file's last pages free and reusable lower the
/// page count and cut the file (to the larger of the two meta slots' page
/// counts); every state verifies, including the older slot, and a power
/// cut after each commit reopens at that commit.
#[test]
fn the_free_tail_is_given_back() {
    for sealed in [false, true] {
        let sim = SimVfs::new();
        let ring = sealed.then(keyring);
        let mut store = create(&sim, ring.clone());
        let mut w = store.write().unwrap();
        for i in 0..40_000u32 {
            w.put(&key(i), &val(i, 0)).unwrap();
        }
        w.commit().unwrap();
        let full = store.space().unwrap();
        // Delete the upper nine tenths, then rewrite what is left a few
        // times: the freed pages become reusable, the rewrites take the
        // lowest ones, and the top of the file is left free.
        let mut w = store.write().unwrap();
        for i in 4000..40_000u32 {
            w.delete(&key(i)).unwrap();
        }
        w.commit().unwrap();
        let mut sizes = Vec::new();
        for g in 1..6u32 {
            let mut w = store.write().unwrap();
            for i in 0..4000u32 {
                w.put(&key(i), &val(i, g)).unwrap();
            }
            let txn = w.commit().unwrap();
            let report = store.verify().unwrap();
            assert!(report.is_clean(), "{:?}", report.problems);
            sizes.push(store.space().unwrap());
            // A power cut now: the commit is durable, the cut or not.
            drop(store);
            sim.crash();
            let v: std::sync::Arc<dyn sealkv_fileio::Vfs> = std::sync::Arc::new(sim.clone());
            let (s, report) =
                sealkv_core_store::Store::open(v, &path(), opts(ring.clone())).unwrap();
            assert_eq!((report.txn, report.fell_back), (txn, None));
            store = s;
            assert!(store.verify().unwrap().is_clean());
        }
        let last = sizes.last().unwrap();
        assert!(
            last.page_count * 3 < full.page_count,
            "page count {} of {}",
            last.page_count,
            full.page_count
        );
        assert!(
            last.file_bytes * 3 < full.file_bytes,
            "file {} of {} bytes",
            last.file_bytes,
            full.file_bytes
        );
        let r = store.read();
        let want: Vec<_> = (0..4000u32).map(|i| (key(i), val(i, 5))).collect();
        assert_eq!(all(&r), want);
    }
}

/// A commit that gives the file's tail back while the key census reads
/// the file (a re-encryption's end, on another thread): the census
/// counts the pages that are left, instead of failing on a read past
/// the new end.
#[test]
fn the_key_census_reads_through_a_cut_of_the_tail() {
    use std::sync::atomic::{AtomicBool, Ordering};

    use sealkv_fileio::OpenMode;
    use sealkv_testkit::hook::{FileEvent, HookVfs};

    let sim = SimVfs::new();
    let armed = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(AtomicBool::new(false));
    let hook = {
        let (sim, armed, cut) = (sim.clone(), armed.clone(), cut.clone());
        move |event: FileEvent<'_>| {
            // The census reads runs of pages; a tree read is one page.
            if let FileEvent::Read { path, offset, len } = event
                && len > 4096
                && armed.swap(false, Ordering::SeqCst)
            {
                let file = (&sim as &dyn Vfs).open(path, OpenMode::ReadWrite)?;
                file.set_len(offset + len as u64 / 2)?;
                cut.store(true, Ordering::SeqCst);
            }
            Ok(())
        }
    };
    let vfs: Arc<dyn Vfs> = Arc::new(HookVfs::new(Arc::new(sim.clone()), hook));
    vfs.create_dir_all(Path::new("/db")).unwrap();
    let store = Store::create(vfs, &path(), opts(Some(keyring())))
        .unwrap()
        .0;
    let mut w = store.write().unwrap();
    for i in 0..4_000u32 {
        w.put(&key(i), &val(i, 0)).unwrap();
    }
    w.commit().unwrap();
    let whole: u64 = store.key_usage().unwrap().values().sum();
    armed.store(true, Ordering::SeqCst);
    let usage = store.key_usage().unwrap();
    assert!(
        cut.load(Ordering::SeqCst),
        "the file was not cut during the census"
    );
    let counted: u64 = usage.values().sum();
    assert!(counted > 0 && counted < whole, "{counted} of {whole} pages");
}
