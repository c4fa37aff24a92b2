//! Crash at each write, fsync and resize of a commit (fault-injecting file
//! over the crash-simulating one): reopen shows exactly the previous or the
//! new committed state, never a mix; an acknowledged commit is never lost.

use std::sync::Arc;

use sealkv_core_store::{Store, StoreError};
use sealkv_fileio::{FaultKind, FaultPlan, FaultyVfs, OpKind, SimVfs, Vfs};

use crate::common::*;

type State = Vec<(Vec<u8>, Vec<u8>)>;

fn state_a(store: &Store) {
    let mut w = store.write().unwrap();
    for i in 0..600u32 {
        w.put(&key(i), &val(i, 0)).unwrap();
    }
    w.put(b"big", &vec![1u8; 30_000]).unwrap();
    w.commit().unwrap();
    // A second commit so the free list is non-empty.
    let mut w = store.write().unwrap();
    for i in (0..600u32).step_by(5) {
        w.put(&key(i), &val(i, 1)).unwrap();
    }
    w.commit().unwrap();
}

fn commit_b(store: &Store) -> Result<u64, StoreError> {
    let mut w = store.write()?;
    for i in 0..900u32 {
        if i % 3 == 0 {
            w.delete(&key(i))?;
        } else {
            w.put(&key(i), &val(i, 2))?;
        }
    }
    w.put(b"big", &vec![2u8; 50_000])?;
    w.set_app_meta(b"B")?;
    w.commit()
}

/// Runs commit B with `plan` armed, crashes, reopens; returns (commit
/// result, state A, state B, state after reopen). Asserts that the plan's
/// fault fired.
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
    let res = commit_b(&store);
    assert_eq!(
        fv.injected() > 0,
        plan.is_some(),
        "{plan:?}: the fault fired (or none was planned)"
    );
    let ok = res.is_ok();
    if !ok {
        assert!(matches!(store.write().unwrap_err(), StoreError::Poisoned));
    }
    let b = all(&store.read());
    drop(store);
    sim.crash_torn(seed);
    let store = open(&sim, ring);
    let got = all(&store.read());
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{plan:?}: {:?}", report.problems);
    (ok, a, b, got)
}

fn counts(sealed: bool) -> (u64, u64, u64) {
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
    let d = |k| after.get(k) - before.get(k);
    (d(OpKind::Write), d(OpKind::Sync), d(OpKind::SetLen))
}

#[test]
fn crash_at_every_step_of_a_commit_shows_old_or_new_state() {
    for sealed in [false, true] {
        let (writes, syncs, setlens) = counts(sealed);
        assert!(writes >= 2 && syncs == 2, "writes {writes} syncs {syncs}");
        let mut plans = Vec::new();
        for n in 1..=writes {
            plans.push(FaultPlan::from(OpKind::Write, n));
            plans.push(FaultPlan::once(OpKind::Write, n).with_fault(FaultKind::ShortWrite));
        }
        for n in 1..=syncs {
            plans.push(FaultPlan::from(OpKind::Sync, n));
        }
        for n in 1..=setlens {
            plans.push(FaultPlan::from(OpKind::SetLen, n));
        }
        let (mut saw_new, mut saw_old) = (false, false);
        for (i, plan) in plans.into_iter().enumerate() {
            for seed in 0..3 {
                let (ok, a, b, got) = run(Some(plan), seed + 100 * i as u64, sealed);
                if ok {
                    assert_eq!(got, b, "{plan:?}: acknowledged commit lost");
                } else {
                    assert!(got == a || got == b, "{plan:?}: a mix of states");
                }
                saw_new |= got == b;
                saw_old |= got == a;
            }
        }
        assert!(saw_old, "some crash must lose the unacknowledged commit");
        // The short writes are completed: those commits are acknowledged
        // and found.
        assert!(saw_new, "some faulted commit must survive");
        // Without faults, the commit survives any crash.
        for seed in 0..5 {
            let (ok, _, b, got) = run(None, seed, sealed);
            assert!(ok);
            assert_eq!(got, b);
        }
    }
}
