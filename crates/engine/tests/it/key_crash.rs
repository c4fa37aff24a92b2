//! A power cut at every point of every key operation: between the
//! registry's write, the commit that records it, and the freshness
//! anchor's update. Each reopens without a false `Rollback` (or a false
//! anchor error) and without losing anything acknowledged; the operation
//! is there or not, whole.
//!
//! The sweep fails the k-th file operation of each kind during the key
//! operation (so it stops there), cuts the power, and reopens, for every k
//! the operation reaches: with and without a file anchor on the same
//! simulated disk (whose own writes are points of the sweep too).

// The sweep prints its counts (with --nocapture).
#![allow(clippy::print_stderr)]

use std::ops::ControlFlow;
use std::sync::Arc;

use sealkv::anchor::FileAnchor;
use sealkv::crypto::{EncryptionAlgorithm, KeySource};
use sealkv::{Config, Db, Error};
use sealkv_fileio::{FaultPlan, FaultyVfs, OpKind, SimVfs, Vfs};

use crate::support::{key, sim_config};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyOp {
    Rekey,
    Rotate,
    CreateFieldKey,
    DestroyFieldKey,
    ReencryptRetirement,
}

const KEY_OPS: [KeyOp; 5] = [
    KeyOp::Rekey,
    KeyOp::Rotate,
    KeyOp::CreateFieldKey,
    KeyOp::DestroyFieldKey,
    KeyOp::ReencryptRetirement,
];

const KINDS: [OpKind; 6] = [
    OpKind::Write,
    OpKind::Sync,
    OpKind::SyncDir,
    OpKind::Rename,
    OpKind::Open,
    OpKind::SetLen,
];

const ANCHOR: &str = "/anchors/db.anchor";

fn config(vfs: Arc<dyn Vfs>, sim: &SimVfs, alg: EncryptionAlgorithm, anchored: bool) -> Config {
    let c = sim_config(sim, Some(alg)).vfs(vfs.clone());
    if anchored {
        c.freshness_anchor(Arc::new(FileAnchor::with_vfs(vfs, ANCHOR)))
    } else {
        c
    }
}

/// The database before the operation; returns the field key.
fn prepare(db: &Db, op: KeyOp) -> sealkv::crypto::KeyId {
    for i in 0..40u32 {
        db.put(format!("k{i:03}"), i.to_be_bytes()).unwrap();
    }
    let field = db.create_field_key().unwrap();
    db.put_sealed(b"tenant", b"secret", field).unwrap();
    if op == KeyOp::ReencryptRetirement {
        db.rotate_data_key().unwrap();
    }
    db.flush().unwrap();
    field
}

fn run(db: &Db, op: KeyOp, field: sealkv::crypto::KeyId) -> Result<(), Error> {
    match op {
        KeyOp::Rekey => db.rekey(KeySource::Key(key(99))),
        KeyOp::Rotate => db.rotate_data_key().map(drop),
        KeyOp::CreateFieldKey => db.create_field_key().map(drop),
        KeyOp::DestroyFieldKey => db.destroy_field_key(field),
        KeyOp::ReencryptRetirement => db.reencrypt(&mut |_| ControlFlow::Continue(())).map(drop),
    }
}

/// Operation counts of `op` by kind, unfaulted.
fn counts(op: KeyOp, alg: EncryptionAlgorithm, anchored: bool) -> Vec<(OpKind, u64)> {
    let sim = SimVfs::new();
    sim.create_dir_all(std::path::Path::new("/anchors"))
        .unwrap();
    let faulty = FaultyVfs::over_sim(&sim);
    let db = Db::open_with_config(config(Arc::new(faulty.clone()), &sim, alg, anchored)).unwrap();
    let field = prepare(&db, op);
    let before = faulty.counts();
    run(&db, op, field).unwrap();
    let after = faulty.counts();
    KINDS
        .iter()
        .map(|k| (*k, after.get(*k) - before.get(*k)))
        .collect()
}

/// Reopens after the power cut with the old master key or, after a rekey
/// that reached the disk, the new one.
fn reopen(sim: &SimVfs, alg: EncryptionAlgorithm, anchored: bool) -> Result<Db, Error> {
    let vfs: Arc<dyn Vfs> = Arc::new(sim.clone());
    match Db::open_with_config(config(vfs.clone(), sim, alg, anchored)) {
        Err(Error::WrongKey) => Db::open_with_config(
            config(vfs, sim, alg, anchored)
                .encryption_key(key(99))
                .encryption_algorithm(alg),
        ),
        other => other,
    }
}

/// Positions 1..=n, or `sample` of them spread evenly (first and last
/// included).
fn positions(n: u64, sample: Option<u64>) -> Vec<u64> {
    match sample {
        Some(k) if n > k => {
            let mut v: Vec<u64> = (0..k).map(|i| 1 + i * (n - 1) / (k - 1)).collect();
            v.dedup();
            v
        }
        _ => (1..=n).collect(),
    }
}

fn sweep(op: KeyOp, alg: EncryptionAlgorithm, anchored: bool, sample: Option<u64>) -> u64 {
    let mut cases = 0;
    for (kind, n) in counts(op, alg, anchored) {
        for nth in positions(n, sample) {
            let what = format!("{alg} {op:?} anchored={anchored}: {kind:?} #{nth}");
            let sim = SimVfs::new();
            sim.create_dir_all(std::path::Path::new("/anchors"))
                .unwrap();
            let faulty = FaultyVfs::over_sim(&sim);
            let db = Db::open_with_config(config(Arc::new(faulty.clone()), &sim, alg, anchored))
                .unwrap();
            let field = prepare(&db, op);
            faulty.arm(FaultPlan::once(kind, nth));
            let result = run(&db, op, field);
            assert!(faulty.injected() > 0, "{what}: the fault did not fire");
            faulty.disarm();
            std::mem::forget(db);
            sim.crash();
            cases += 1;
            let db = reopen(&sim, alg, anchored).unwrap_or_else(|e| panic!("{what}: {e}"));
            for i in 0..40u32 {
                assert_eq!(
                    db.get(format!("k{i:03}")).unwrap(),
                    Some(i.to_be_bytes().to_vec()),
                    "{what}"
                );
            }
            match db.get_sealed(b"tenant", None) {
                Ok(v) => assert_eq!(v.as_deref(), Some(&b"secret"[..]), "{what}"),
                Err(Error::KeyDestroyed(_)) if op == KeyOp::DestroyFieldKey => {}
                Err(e) => panic!("{what}: {e}"),
            }
            if result.is_ok() && op == KeyOp::DestroyFieldKey {
                assert!(db.get_sealed(b"tenant", None).is_err(), "{what}: undone");
            }
            let report = db.verify().unwrap();
            assert!(report.is_clean(), "{what}: {:?}", report.findings);
            // What the open recorded holds: a second open agrees.
            db.close().unwrap();
            let db = reopen(&sim, alg, anchored).unwrap_or_else(|e| panic!("{what}: {e}"));
            db.put(b"after", b"1").unwrap();
            db.close().unwrap();
        }
    }
    cases
}

/// Every operation under one algorithm in turn (the orderings do not
/// depend on the cipher), with and without an anchor, `sample` positions
/// per kind of file operation (all with `None`). Returns the cases.
fn sweep_all(sample: Option<u64>) -> u64 {
    let mut total = 0;
    for (i, op) in KEY_OPS.into_iter().enumerate() {
        let alg = EncryptionAlgorithm::ALL[i % 3];
        for anchored in [false, true] {
            let n = sweep(op, alg, anchored, sample);
            eprintln!("{op:?} {alg} anchored={anchored}: {n} crash points");
            total += n;
        }
    }
    total
}

#[test]
fn a_power_cut_in_a_key_operation_reopens_without_a_false_rollback() {
    let total = sweep_all(Some(3));
    assert!(total > 100, "only {total} crash points");
}

/// Every position of every kind (minutes in release).
#[test]
#[ignore = "long: every crash point; cargo test --release -p sealkv --test it -- --ignored key_crash"]
fn a_power_cut_anywhere_in_a_key_operation_reopens_without_a_false_rollback() {
    let total = sweep_all(None);
    eprintln!("{total} crash points");
}
