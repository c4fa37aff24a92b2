//! Compaction: the file's free pages among live ones are given back, the
//! entries stay, readers keep their snapshots, a crash at any write, fsync
//! or resize leaves the state before or after, and no nonce repeats.

use std::path::Path;
use std::sync::Arc;

use sealkv_core_store::{Store, StoreError};
use sealkv_fileio::{FaultPlan, FaultyVfs, OpKind, SimVfs, Vfs};
use sealkv_testkit::nonces::{DiskWrites, reuses};

use crate::common::*;

const PAGE: u64 = 4096;

/// 3,000 entries (every 50th with an overflow value), then 90% deleted
/// from the start of the key space, so the free pages lie below live
/// ones: the file stays large until a compaction.
fn thinned(store: &Store) {
    let mut w = store.write().unwrap();
    for i in 0..3_000u32 {
        let v = if i % 50 == 0 {
            vec![i as u8; 9_000]
        } else {
            val(i, 0)
        };
        w.put(&key(i), &v).unwrap();
    }
    w.commit().unwrap();
    let mut w = store.write().unwrap();
    for i in 0..2_700u32 {
        w.delete(&key(i)).unwrap();
    }
    w.commit().unwrap();
    for _ in 0..3 {
        store.write().unwrap().commit().unwrap();
    }
}

#[test]
fn compaction_moves_the_tail_down_and_cuts_the_file() {
    for sealed in [false, true] {
        let sim = SimVfs::new();
        let ring = sealed.then(keyring);
        let store = create(&sim, ring.clone());
        thinned(&store);
        let before = all(&store.read());
        let bytes = store.file_bytes().unwrap();
        let space = store.space().unwrap();
        assert!(space.free_pages > space.live_pages, "{space:?}");
        let report = store.compact().unwrap();
        assert_eq!(report.bytes_before, bytes);
        assert!(report.pages_moved > 0, "{report:?}");
        let after = store.space().unwrap();
        // Only the pages the last commits' free lists need stay free.
        assert!(after.free_pages <= 8, "{after:?}");
        assert_eq!(
            report.bytes_after,
            after.page_count * PAGE,
            "{report:?} {after:?}"
        );
        assert!(report.bytes_after * 3 < bytes, "{report:?}");
        assert_eq!(all(&store.read()), before);
        let v = store.verify().unwrap();
        assert!(v.is_clean(), "{:?}", v.problems);
        drop(store);
        let store = open(&sim, ring);
        assert_eq!(all(&store.read()), before);
        assert_eq!(store.file_bytes().unwrap(), report.bytes_after);
        // Nothing left to move: a second compaction changes nothing.
        let again = store.compact().unwrap();
        assert_eq!(again.pages_moved, 0, "{again:?}");
        assert_eq!(again.bytes_after, report.bytes_after);
    }
}

#[test]
fn a_snapshot_held_through_compaction_keeps_its_pages() {
    let sim = SimVfs::new();
    let store = create(&sim, Some(keyring()));
    thinned(&store);
    let snap = store.read();
    let want = all(&snap);
    let held = store.compact().unwrap();
    // The snapshot's pages are still there, intact.
    assert_eq!(all(&snap), want);
    let v = store.verify().unwrap();
    assert!(v.is_clean(), "{:?}", v.problems);
    drop(snap);
    let freed = store.compact().unwrap();
    assert!(
        freed.bytes_after < held.bytes_after,
        "{held:?} then {freed:?}"
    );
    assert_eq!(all(&store.read()), want);
}

#[test]
fn readers_on_other_threads_read_through_a_compaction() {
    let sim = SimVfs::new();
    let store = Arc::new(create(&sim, Some(keyring())));
    thinned(&store);
    let want = all(&store.read());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reads = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, want, stop, reads) =
                (store.clone(), want.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    assert_eq!(all(&store.read()), want);
                    reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Wait until the readers run, so the compaction overlaps them.
    while reads.load(std::sync::atomic::Ordering::Relaxed) < 2 {
        std::thread::yield_now();
    }
    let before = reads.load(std::sync::atomic::Ordering::Relaxed);
    let report = store.compact().unwrap();
    let during = reads.load(std::sync::atomic::Ordering::Relaxed) - before;
    stop.store(true, std::sync::atomic::Ordering::Release);
    for r in readers {
        r.join().unwrap();
    }
    assert!(report.pages_moved > 0, "{report:?}");
    let _ = during;
    // Readers held snapshots at times: a second pass finishes the job.
    store.compact().unwrap();
    assert_eq!(all(&store.read()), want);
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn no_nonce_repeats_through_compactions_and_crashes() {
    let ring = keyring();
    let sim = SimVfs::new();
    let writes = DiskWrites::new();
    let v: Arc<dyn Vfs> = Arc::new(writes.vfs(Arc::new(sim.clone())));
    v.create_dir_all(Path::new("/db")).unwrap();
    drop(Store::create(v.clone(), &path(), opts(Some(ring.clone()))).unwrap());
    for cycle in 0..3u64 {
        let store = Store::open(v.clone(), &path(), opts(Some(ring.clone())))
            .unwrap()
            .0;
        thinned(&store);
        store.compact().unwrap();
        drop(store);
        sim.crash_torn(cycle);
    }
    let units = writes.units();
    let reused = reuses(&units);
    assert!(reused.is_empty(), "{reused:?}");
}

/// Compaction of the thinned store with `plan` armed, then a torn crash:
/// the reopened store holds the same entries and verifies clean.
fn crash_case(plan: FaultPlan, seed: u64, sealed: bool) {
    let sim = SimVfs::new();
    let ring = sealed.then(keyring);
    let store = create(&sim, ring.clone());
    thinned(&store);
    let want = all(&store.read());
    drop(store);
    let fv = Arc::new(FaultyVfs::over_sim(&sim));
    let vfs: Arc<dyn Vfs> = fv.clone();
    let store = Store::open(vfs, &path(), opts(ring.clone())).unwrap().0;
    fv.arm(plan);
    let res = store.compact();
    assert!(fv.injected() > 0, "{plan:?}: the fault never fired");
    if let Err(e) = &res {
        assert!(matches!(e, StoreError::Io(_)), "{plan:?}: {e}");
    }
    drop(store);
    sim.crash_torn(seed);
    let store = open(&sim, ring);
    assert_eq!(all(&store.read()), want, "{plan:?}");
    let v = store.verify().unwrap();
    assert!(v.is_clean(), "{plan:?}: {:?}", v.problems);
    // And it compacts to the end from there.
    let done = store.compact().unwrap();
    assert!(done.bytes_after <= 200 * PAGE, "{plan:?}: {done:?}");
}

#[test]
fn a_crash_at_every_step_of_a_compaction_keeps_the_entries() {
    for sealed in [false, true] {
        // A dry run counts the compaction's writes, fsyncs and resizes.
        let sim = SimVfs::new();
        let ring = sealed.then(keyring);
        let store = create(&sim, ring.clone());
        thinned(&store);
        drop(store);
        let fv = Arc::new(FaultyVfs::over_sim(&sim));
        let vfs: Arc<dyn Vfs> = fv.clone();
        let store = Store::open(vfs, &path(), opts(ring)).unwrap().0;
        let before = fv.counts();
        store.compact().unwrap();
        let after = fv.counts();
        let mut cases = 0;
        for kind in [OpKind::Write, OpKind::Sync, OpKind::SetLen] {
            let n = after.get(kind) - before.get(kind);
            assert!(n > 0, "the compaction makes no {kind:?}");
            for nth in 1..=n {
                crash_case(FaultPlan::from(kind, nth), nth, sealed);
                cases += 1;
            }
        }
        assert!(cases >= 20, "{cases} crash points");
    }
}

/// A cut of the file's free tail that fails is no error for the commit
/// (it is durable, and the pages cut hold nothing): the compaction
/// succeeds with the file as long as it was, the failure is counted in
/// `stats()`, and the next compaction cuts it.
#[test]
fn a_failed_tail_cut_is_counted_and_the_next_compaction_cuts() {
    let sim = SimVfs::new();
    let store = create(&sim, Some(keyring()));
    thinned(&store);
    let want = all(&store.read());
    drop(store);
    let fv = Arc::new(FaultyVfs::over_sim(&sim));
    let vfs: Arc<dyn Vfs> = fv.clone();
    let store = Store::open(vfs, &path(), opts(Some(keyring()))).unwrap().0;
    assert_eq!(store.stats().tail_cut_failures, 0);
    fv.arm(FaultPlan::from(OpKind::SetLen, 1));
    let report = store.compact().unwrap();
    assert!(fv.injected() > 0, "no cut was tried");
    assert!(report.pages_moved > 0, "{report:?}");
    assert_eq!(report.bytes_after, report.bytes_before, "{report:?}");
    assert_eq!(store.stats().tail_cut_failures, fv.injected());
    assert_eq!(all(&store.read()), want);
    assert!(store.verify().unwrap().is_clean());
    fv.disarm();
    let done = store.compact().unwrap();
    assert!(done.bytes_after * 3 < report.bytes_before, "{done:?}");
    assert_eq!(all(&store.read()), want);
}
