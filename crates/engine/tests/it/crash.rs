//! Crashes at any instant lose nothing acknowledged and never surface part
//! of a batch.

use std::sync::Arc;

use sealkv::crypto::EncryptionAlgorithm;
use sealkv::{Db, SyncMode, WriteBatch};
use sealkv_fileio::{FaultKind, FaultPlan, FaultyVfs, OpKind, SimVfs};

use crate::support::{modes, sim_config};

/// Batch `i` writes two keys of its own and overwrites one shared key.
fn batch(i: u32) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(format!("own/{i:05}/a"), i.to_be_bytes())
        .put(format!("shared/{:02}", i % 13), i.to_be_bytes())
        .put(format!("own/{i:05}/b"), i.to_be_bytes());
    b
}

fn present(db: &Db, i: u32) -> (bool, bool) {
    let a = db.get(format!("own/{i:05}/a")).unwrap().is_some();
    let b = db.get(format!("own/{i:05}/b")).unwrap().is_some();
    (a, b)
}

/// The operation kinds a fault is injected into.
const FAULT_KINDS: [OpKind; 4] = [OpKind::Write, OpKind::Sync, OpKind::SetLen, OpKind::SyncDir];

/// What the workload was told.
#[derive(Debug, PartialEq, Eq)]
struct Told {
    /// Batches whose write was called.
    attempted: u32,
    /// Batches whose write returned `Ok`.
    acked: u32,
    /// Whether a write or a flush returned an error.
    failed: bool,
}

/// The workload: 120 batches, a flush after every 40th; stops at the first
/// error.
fn workload(db: &Db) -> Told {
    let mut told = Told {
        attempted: 0,
        acked: 0,
        failed: false,
    };
    for i in 0..120u32 {
        told.attempted = i + 1;
        if db.write(&batch(i)).is_err() {
            told.failed = true;
            break;
        }
        told.acked = i + 1;
        if i % 40 == 39 && db.flush().is_err() {
            told.failed = true;
            break;
        }
    }
    told
}

/// How many operations of each of [`FAULT_KINDS`] the workload makes after
/// the database is created: a dry run without faults. The fault positions
/// are drawn from these counts, so every one is reached.
fn op_counts(alg: Option<EncryptionAlgorithm>) -> [u64; 4] {
    let sim = SimVfs::new();
    let faulty = FaultyVfs::over_sim(&sim);
    let config = sim_config(&sim, alg)
        .vfs(Arc::new(faulty.clone()))
        .sync_mode(SyncMode::Always);
    let db = Db::open_with_config(config).unwrap();
    let before = faulty.counts();
    let told = workload(&db);
    assert!(!told.failed && told.acked == 120, "{alg:?}: {told:?}");
    let after = faulty.counts();
    std::mem::forget(db);
    FAULT_KINDS.map(|k| {
        let n = after.get(k) - before.get(k);
        assert!(n > 0, "{alg:?}: the workload makes no {k:?}");
        n
    })
}

/// Runs batches on a disk that fails at a chosen operation (drawn from the
/// dry run's `counts`, so the fault fires), crashes with torn writes,
/// reopens, and checks: every acknowledged batch is whole; the batch that
/// failed is whole or absent; nothing after it exists.
fn run(seed: u64, alg: Option<EncryptionAlgorithm>, counts: [u64; 4]) {
    let sim = SimVfs::new();
    let faulty = FaultyVfs::over_sim(&sim);
    let k = (seed % FAULT_KINDS.len() as u64) as usize;
    let kind = FAULT_KINDS[k];
    let nth = 1 + (seed * 7919) % counts[k];
    let fault = if seed.is_multiple_of(5) {
        FaultKind::NoSpace
    } else {
        FaultKind::Eio
    };
    let config = sim_config(&sim, alg)
        .vfs(Arc::new(faulty.clone()))
        .sync_mode(SyncMode::Always);
    // Arm after creation, so the fault hits the write path, flushes and
    // rolls rather than the creation of the database.
    let db = Db::open_with_config(config)
        .unwrap_or_else(|e| panic!("seed {seed}: creation without faults failed: {e}"));
    faulty.arm(FaultPlan::from(kind, nth).with_fault(fault));
    let Told {
        attempted,
        acked,
        failed,
    } = workload(&db);
    // A killed process: no drop, no final sync.
    std::mem::forget(db);
    assert!(
        faulty.injected() > 0,
        "seed {seed}: the fault ({kind:?} #{nth} of {}) never fired",
        counts[k]
    );
    assert!(
        failed,
        "seed {seed}: the {kind:?} fault #{nth} failed no write nor flush"
    );
    sim.crash_torn(seed);
    let db = Db::open_with_config(sim_config(&sim, alg))
        .unwrap_or_else(|e| panic!("seed {seed}: reopen after crash failed: {e}"));
    for i in 0..acked {
        assert_eq!(
            present(&db, i),
            (true, true),
            "seed {seed}: acked batch {i} lost"
        );
    }
    let mut last_present = acked.checked_sub(1);
    for i in acked..attempted {
        let p = present(&db, i);
        assert!(
            p == (true, true) || p == (false, false),
            "seed {seed}: batch {i} torn: {p:?}"
        );
        if p.0 {
            last_present = Some(i);
        }
    }
    for i in attempted..120 {
        assert_eq!(
            present(&db, i),
            (false, false),
            "seed {seed}: batch {i} never written"
        );
    }
    // Shared keys hold the value of the last batch present that wrote them.
    for j in 0..13u32 {
        let want = last_present.and_then(|last| (0..=last).rev().find(|i| i % 13 == j));
        let got = db.get(format!("shared/{j:02}")).unwrap();
        assert_eq!(
            got,
            want.map(|i| i.to_be_bytes().to_vec()),
            "seed {seed}: shared/{j}"
        );
    }
}

#[test]
fn faults_then_torn_crash_plaintext() {
    let counts = op_counts(None);
    for seed in 0..40 {
        run(seed, None, counts);
    }
}

#[test]
fn faults_then_torn_crash_sealed() {
    // Each algorithm in turn.
    let algs = EncryptionAlgorithm::ALL;
    let counts = algs.map(|a| op_counts(Some(a)));
    for seed in 40..100 {
        let i = (seed % algs.len() as u64) as usize;
        run(seed, Some(algs[i]), counts[i]);
    }
}

#[test]
fn unsynced_writes_vanish_as_a_suffix_of_whole_batches() {
    let modes = modes();
    for seed in 0..24 {
        // Each mode in turn.
        let mode = modes[seed as usize % modes.len()];
        let sim = SimVfs::new();
        let db = Db::open_with_config(sim_config(&sim, mode).sync_mode(SyncMode::Never)).unwrap();
        for i in 0..60u32 {
            db.write(&batch(i)).unwrap();
            if i == 29 {
                db.flush().unwrap();
            }
        }
        std::mem::forget(db);
        sim.crash_torn(seed);
        let db = Db::open_with_config(sim_config(&sim, mode)).unwrap();
        let flags: Vec<_> = (0..60).map(|i| present(&db, i)).collect();
        let n = flags.iter().take_while(|p| **p == (true, true)).count();
        assert!(n >= 30, "seed {seed}: flushed batches lost");
        assert!(
            flags[n..].iter().all(|p| *p == (false, false)),
            "seed {seed}: hole or torn batch"
        );
    }
}
