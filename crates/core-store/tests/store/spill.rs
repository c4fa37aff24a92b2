//! Commits larger than the store's in-memory page budget (4 MiB) write
//! their pages out ahead of the fsync: a crash at any write of such a
//! commit still shows exactly the old or the new state, and zeroing more
//! free pages than the budget works the same way.

use std::sync::Arc;

use sealkv_core_store::{Store, StoreError};
use sealkv_fileio::{FaultKind, FaultPlan, FaultyVfs, OpKind, SimVfs, Vfs};

use crate::common::*;

type State = Vec<(Vec<u8>, Vec<u8>)>;

/// About 6 MiB of overflow pages: 1,500 values of 3,000 bytes.
fn big(i: u32, g: u8) -> Vec<u8> {
    vec![g.wrapping_add(i as u8); 3000]
}

fn state_a(store: &Store) {
    let mut w = store.write().unwrap();
    for i in 0..300u32 {
        w.put(&key(i), &val(i, 0)).unwrap();
    }
    w.commit().unwrap();
}

fn commit_b(store: &Store) -> Result<u64, StoreError> {
    let mut w = store.write()?;
    for i in 0..1500u32 {
        w.put(&key(i), &big(i, 1))?;
    }
    w.commit()
}

fn run(plan: Option<FaultPlan>, seed: u64, sealed: bool) -> (bool, State, State, State) {
    let sim = SimVfs::new();
    let ring = sealed.then(keyring);
    let store = create(&sim, ring.clone());
    state_a(&store);
    let a = all(&store.read());
    drop(store);
    let fv = Arc::new(FaultyVfs::over_sim(&sim));
    let v: Arc<dyn Vfs> = fv.clone();
    let store = Store::open(v, &path(), opts(ring.clone())).unwrap().0;
    if let Some(p) = plan {
        fv.arm(p);
    }
    let ok = commit_b(&store).is_ok();
    if !ok {
        assert!(matches!(store.write().unwrap_err(), StoreError::Poisoned));
    }
    let b: State = (0..1500u32).map(|i| (key(i), big(i, 1))).collect();
    drop(store);
    sim.crash_torn(seed);
    let store = open(&sim, ring);
    let got = all(&store.read());
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{plan:?}: {:?}", report.problems);
    (ok, a, b, got)
}

#[test]
fn a_crash_at_any_write_of_a_spilling_commit_shows_old_or_new_state() {
    for sealed in [false, true] {
        let writes = {
            let sim = SimVfs::new();
            let ring = sealed.then(keyring);
            let store = create(&sim, ring.clone());
            state_a(&store);
            drop(store);
            let fv = Arc::new(FaultyVfs::over_sim(&sim));
            let v: Arc<dyn Vfs> = fv.clone();
            let store = Store::open(v, &path(), opts(ring)).unwrap().0;
            let before = fv.counts();
            commit_b(&store).unwrap();
            let after = fv.counts();
            assert_eq!(after.get(OpKind::Sync) - before.get(OpKind::Sync), 2);
            after.get(OpKind::Write) - before.get(OpKind::Write)
        };
        // Runs are at most 1 MiB: six or more writes for 6 MiB of pages.
        assert!(writes >= 7, "{writes} writes");
        let mut saw_old = false;
        for n in 1..=writes {
            for plan in [
                FaultPlan::from(OpKind::Write, n),
                FaultPlan::once(OpKind::Write, n).with_fault(FaultKind::ShortWrite),
            ] {
                let (ok, a, b, got) = run(Some(plan), n, sealed);
                if ok {
                    assert!(got == b, "{plan:?}: acknowledged commit lost");
                } else {
                    assert!(got == a || got == b, "{plan:?}: a mix of states");
                }
                saw_old |= got == a;
            }
        }
        assert!(saw_old, "a failed write must leave the old state");
        for seed in 0..3 {
            let (ok, _, b, got) = run(None, seed, sealed);
            assert!(ok);
            assert!(got == b, "seed {seed}: the commit was lost");
        }
    }
}

#[test]
fn zeroing_more_free_pages_than_the_budget_holds() {
    let sim = SimVfs::new();
    let store = create(&sim, Some(keyring()));
    state_a(&store);
    commit_b(&store).unwrap();
    // Drop the big values: their 1,500 overflow pages become free.
    let mut w = store.write().unwrap();
    for i in 0..1500u32 {
        w.put(&key(i), &val(i, 2)).unwrap();
    }
    w.commit().unwrap();
    store.write().unwrap().commit().unwrap();
    let zeroed = store.zero_free_pages().unwrap();
    assert!(zeroed >= 1500, "zeroed {zeroed}");
    let want: State = (0..1500u32).map(|i| (key(i), val(i, 2))).collect();
    assert!(all(&store.read()) == want);
    drop(store);
    sim.crash_torn(9);
    let store = open(&sim, Some(keyring()));
    assert!(all(&store.read()) == want);
    assert!(store.verify().unwrap().is_clean());
}
