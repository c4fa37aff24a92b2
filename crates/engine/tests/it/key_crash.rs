//! A power cut at every point of every key operation: between the
//! registry's write, the commit that records it, and the freshness
//! anchor's update. Each reopens without a false `Rollback` (or a false
//! anchor error) and without losing anything acknowledged; the operation
//! is there or not, whole.
//!
//! The sweep fails the k-th file operation of each kind during the key
//! operation (so it stops there), cuts the power, and reopens, for every k
//! the operation reaches: with and without a file anchor on the same
//! simulated disk (whose own writes are points of the sweep too). Once the
//! registry the operation wrote reached the disk and an open recorded it,
//! the older `KEYS` put back is `Rollback` at every point. The sweep runs
//! under a raw master key and under a key wrapper.

// The sweep prints its counts (with --nocapture).
#![allow(clippy::print_stderr)]

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use sealkv::anchor::FileAnchor;
use sealkv::crypto::EncryptionAlgorithm;
use sealkv::{Config, Db, Error};
use sealkv_fileio::{FaultPlan, FaultyVfs, OpKind, SimVfs, Vfs};

use crate::support::{Master, dir};

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

/// A sweep's database: its algorithm, its master key, and whether a file
/// anchor is configured.
#[derive(Debug, Clone, Copy)]
struct Setup {
    alg: EncryptionAlgorithm,
    master: Master,
    anchored: bool,
}

fn config(vfs: Arc<dyn Vfs>, sim: &SimVfs, setup: Setup) -> Config {
    let c = setup.master.config(sim, setup.alg).vfs(vfs.clone());
    let anchored = setup.anchored;
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

fn run(db: &Db, op: KeyOp, field: sealkv::crypto::KeyId, master: Master) -> Result<(), Error> {
    match op {
        KeyOp::Rekey => db.rekey(master.rekey_target()),
        KeyOp::Rotate => db.rotate_data_key().map(drop),
        KeyOp::CreateFieldKey => db.create_field_key().map(drop),
        KeyOp::DestroyFieldKey => db.destroy_field_key(field),
        KeyOp::ReencryptRetirement => db.reencrypt(&mut |_| ControlFlow::Continue(())).map(drop),
    }
}

/// Operation counts of `op` by kind, unfaulted.
fn counts(op: KeyOp, setup: Setup) -> Vec<(OpKind, u64)> {
    let sim = SimVfs::new();
    sim.create_dir_all(std::path::Path::new("/anchors"))
        .unwrap();
    let faulty = FaultyVfs::over_sim(&sim);
    let db = Db::open_with_config(config(Arc::new(faulty.clone()), &sim, setup)).unwrap();
    let field = prepare(&db, op);
    let before = faulty.counts();
    run(&db, op, field, setup.master).unwrap();
    let after = faulty.counts();
    KINDS
        .iter()
        .map(|k| (*k, after.get(*k) - before.get(*k)))
        .collect()
}

/// Reopens after the power cut with the old master key or, after a rekey
/// that reached the disk, the new one.
fn reopen(sim: &SimVfs, setup: Setup) -> Result<Db, Error> {
    let vfs: Arc<dyn Vfs> = Arc::new(sim.clone());
    match Db::open_with_config(config(vfs.clone(), sim, setup)) {
        Err(Error::WrongKey) => Db::open_with_config(
            config(vfs, sim, setup)
                .key_source(setup.master.rekey_target())
                .encryption_algorithm(setup.alg),
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

fn keys_path() -> PathBuf {
    dir().join("KEYS")
}

/// Once the registry the operation wrote reached the disk and an open
/// recorded it: the older `KEYS` put back, with the newest header-only WAL
/// segments removed, is `Rollback`. The directory is then put back as it
/// was.
fn assert_older_registry_is_a_rollback(sim: &SimVfs, setup: Setup, older: &[u8], what: &str) {
    let newer = sim.read_file(&keys_path()).unwrap();
    let mut segments: Vec<PathBuf> = sim
        .files()
        .into_iter()
        .filter(|p| p.starts_with(dir().join("wal")) && p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    let mut removed = Vec::new();
    for seg in segments.into_iter().rev() {
        let bytes = sim.read_file(&seg).unwrap();
        if bytes.len() > 128 {
            break;
        }
        sim.remove_file(&seg).unwrap();
        removed.push((seg, bytes));
    }
    sim.write_file(&keys_path(), older);
    let vfs: Arc<dyn Vfs> = Arc::new(sim.clone());
    match Db::open_with_config(config(vfs, sim, setup)) {
        Err(Error::Rollback { .. }) => {}
        other => panic!(
            "{what}: the older KEYS put back: {:?}",
            other.map(|_| "opened")
        ),
    }
    sim.write_file(&keys_path(), &newer);
    for (seg, bytes) in removed {
        sim.write_file(&seg, &bytes);
    }
}

fn sweep(op: KeyOp, setup: Setup, sample: Option<u64>, put_back: &mut u64) -> u64 {
    let mut cases = 0;
    let Setup {
        alg,
        master,
        anchored,
    } = setup;
    for (kind, n) in counts(op, setup) {
        for nth in positions(n, sample) {
            let what = format!("{alg} {master:?} {op:?} anchored={anchored}: {kind:?} #{nth}");
            let sim = SimVfs::new();
            sim.create_dir_all(std::path::Path::new("/anchors"))
                .unwrap();
            let faulty = FaultyVfs::over_sim(&sim);
            let db = Db::open_with_config(config(Arc::new(faulty.clone()), &sim, setup)).unwrap();
            let field = prepare(&db, op);
            let older = sim.read_file(&keys_path()).unwrap();
            faulty.arm(FaultPlan::once(kind, nth));
            let result = run(&db, op, field, master);
            assert!(faulty.injected() > 0, "{what}: the fault did not fire");
            faulty.disarm();
            std::mem::forget(db);
            sim.crash();
            cases += 1;
            let db = reopen(&sim, setup).unwrap_or_else(|e| panic!("{what}: {e}"));
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
            db.close().unwrap();
            if sim.read_file(&keys_path()).unwrap() != older {
                assert_older_registry_is_a_rollback(&sim, setup, &older, &what);
                *put_back += 1;
            }
            // What the open recorded holds: a second open agrees.
            let db = reopen(&sim, setup).unwrap_or_else(|e| panic!("{what}: {e}"));
            db.put(b"after", b"1").unwrap();
            db.close().unwrap();
        }
    }
    cases
}

/// Every operation under `master`, under one algorithm in turn (the
/// orderings do not depend on the cipher; AES-256-GCM under a key
/// wrapper), with and without an anchor, `sample` positions per kind of
/// file operation (all with `None`). Returns the cases.
fn sweep_all(sample: Option<u64>, master: Master) -> (u64, u64) {
    let mut total = 0;
    let mut put_back = 0;
    for (i, op) in KEY_OPS.into_iter().enumerate() {
        let alg = match master {
            Master::Raw => EncryptionAlgorithm::ALL[i % 3],
            Master::Wrapped => EncryptionAlgorithm::Aes256Gcm,
        };
        for anchored in [false, true] {
            let setup = Setup {
                alg,
                master,
                anchored,
            };
            let n = sweep(op, setup, sample, &mut put_back);
            eprintln!("{op:?} {alg} {master:?} anchored={anchored}: {n} crash points");
            total += n;
        }
    }
    (total, put_back)
}

#[test]
fn a_power_cut_in_a_key_operation_reopens_without_a_false_rollback() {
    let (total, put_back) = sweep_all(Some(3), Master::Raw);
    eprintln!("{total} crash points, {put_back} with the older KEYS put back");
    assert!(total > 100, "only {total} crash points");
    assert!(
        put_back > 20,
        "only {put_back} cases put the older KEYS back"
    );
}

/// Every position of every kind (minutes in release).
#[test]
#[ignore = "long: every crash point; cargo test --release -p sealkv --test it -- --ignored key_crash"]
fn a_power_cut_anywhere_in_a_key_operation_reopens_without_a_false_rollback() {
    for master in [Master::Raw, Master::Wrapped] {
        let (total, put_back) = sweep_all(None, master);
        eprintln!("{master:?}: {total} crash points, {put_back} with the older KEYS put back");
    }
}

/// The same under a key wrapper (the registry holds a root key wrapped by
/// it, and a rekey goes to another wrapping key): fewer positions per
/// kind, the orderings being the raw key's.
#[test]
fn a_power_cut_in_a_key_operation_under_a_key_wrapper_reopens_without_a_false_rollback() {
    let (total, put_back) = sweep_all(Some(2), Master::Wrapped);
    eprintln!("{total} crash points, {put_back} with the older KEYS put back");
    assert!(total > 60, "only {total} crash points");
    assert!(
        put_back > 10,
        "only {put_back} cases put the older KEYS back"
    );
}
