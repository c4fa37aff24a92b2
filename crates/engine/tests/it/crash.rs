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

/// Runs batches on a disk that fails at a chosen operation, crashes with
/// torn writes, reopens, and checks: every acknowledged batch is whole;
/// the batch that failed is whole or absent; nothing after it exists.
fn run(seed: u64, alg: Option<EncryptionAlgorithm>) {
    let sim = SimVfs::new();
    let faulty = FaultyVfs::over_sim(&sim);
    let kinds = [OpKind::Write, OpKind::Sync, OpKind::SetLen, OpKind::SyncDir];
    let kind = kinds[(seed % kinds.len() as u64) as usize];
    let nth = 1 + (seed * 7919) % 60;
    let fault = if seed.is_multiple_of(5) {
        FaultKind::NoSpace
    } else {
        FaultKind::Eio
    };
    let config = sim_config(&sim, alg)
        .vfs(Arc::new(faulty.clone()))
        .sync_mode(SyncMode::Always);
    let mut acked = 0u32;
    let mut attempted = 0u32;
    // Arm after creation, so the fault hits the write path, flushes and
    // rolls rather than the creation of the database.
    if let Ok(db) = Db::open_with_config(config) {
        faulty.arm(FaultPlan::from(kind, nth).with_fault(fault));
        for i in 0..120u32 {
            attempted = i + 1;
            if db.write(&batch(i)).is_err() {
                break;
            }
            acked = i + 1;
            if i % 40 == 39 && db.flush().is_err() {
                break;
            }
        }
        // A killed process: no drop, no final sync.
        std::mem::forget(db);
    }
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
    for seed in 0..40 {
        run(seed, None);
    }
}

#[test]
fn faults_then_torn_crash_sealed() {
    // Each algorithm in turn.
    let algs = EncryptionAlgorithm::ALL;
    for seed in 40..100 {
        run(seed, Some(algs[(seed % algs.len() as u64) as usize]));
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
