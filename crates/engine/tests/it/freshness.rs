//! Freshness of the key registry: every key operation is recorded in a
//! meta page before it returns, so an older `KEYS` put back is `Rollback`
//! in every case; a damaged data-key id is `Corruption`, never blamed on
//! a rollback; an interrupted creation is told from a lost page file.

use std::ops::ControlFlow;
use std::path::PathBuf;

use sealkv::crypto::{EncryptionAlgorithm, KeySource};
use sealkv::{Db, Error};
use sealkv_fileio::{SimVfs, Vfs};

use crate::support::{dir, key, sim_config};

/// The key operations that change the registry.
#[derive(Debug, Clone, Copy)]
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

fn keys_path() -> PathBuf {
    dir().join("KEYS")
}

/// WAL segments, oldest first.
fn segments(vfs: &SimVfs) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = vfs
        .files()
        .into_iter()
        .filter(|p| p.starts_with(dir().join("wal")) && p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

/// Removes the newest WAL segments that hold only their 128-byte header
/// (what a key operation that starts a writer session leaves); returns how
/// many.
fn remove_header_only_newest_segments(vfs: &SimVfs) -> usize {
    let mut removed = 0;
    for seg in segments(vfs).into_iter().rev() {
        let len = vfs.read_file(&seg).unwrap().len();
        if len > 128 {
            break;
        }
        vfs.remove_file(&seg).unwrap();
        removed += 1;
    }
    removed
}

/// Builds a database, copies its `KEYS`, runs `op`, and stops the
/// process (`close` or a kill); returns the older `KEYS`.
fn run_op(vfs: &SimVfs, alg: EncryptionAlgorithm, op: KeyOp, kill: bool) -> Vec<u8> {
    let db = Db::open_with_config(sim_config(vfs, Some(alg))).unwrap();
    for i in 0..40u32 {
        db.put(format!("k{i:03}"), i.to_be_bytes()).unwrap();
    }
    let field = db.create_field_key().unwrap();
    db.put_sealed(b"tenant", b"secret", field).unwrap();
    if matches!(op, KeyOp::ReencryptRetirement) {
        db.rotate_data_key().unwrap();
        db.put(b"after-rotation", b"1").unwrap();
    }
    db.flush().unwrap();
    let older = vfs.read_file(&keys_path()).unwrap();
    match op {
        KeyOp::Rekey => db.rekey(KeySource::Key(key(99))).unwrap(),
        KeyOp::Rotate => {
            db.rotate_data_key().unwrap();
        }
        KeyOp::CreateFieldKey => {
            db.create_field_key().unwrap();
        }
        KeyOp::DestroyFieldKey => db.destroy_field_key(field).unwrap(),
        KeyOp::ReencryptRetirement => {
            let report = db.reencrypt(&mut |_| ControlFlow::Continue(())).unwrap();
            assert!(report.complete && !report.retired.is_empty(), "{report:?}");
        }
    }
    if kill {
        // SyncMode::Always: a power cut keeps what an operation returned.
        std::mem::forget(db);
        vfs.crash();
    } else {
        db.close().unwrap();
    }
    older
}

/// {every key operation} x {the older `KEYS` put back, with and without
/// removing header-only newest segments} x {every algorithm} x {close, a
/// kill}: `Rollback` naming `KEYS`, in every cell.
#[test]
fn an_older_registry_put_back_after_any_key_operation_is_a_rollback() {
    let mut failures = Vec::new();
    let mut cells = 0;
    for alg in EncryptionAlgorithm::ALL {
        for op in KEY_OPS {
            for strip in [false, true] {
                for kill in [false, true] {
                    cells += 1;
                    let vfs = SimVfs::new();
                    let older = run_op(&vfs, alg, op, kill);
                    vfs.write_file(&keys_path(), &older);
                    if strip {
                        remove_header_only_newest_segments(&vfs);
                    }
                    // The older registry opens under the key it was written
                    // with (key 7, the old master key after a rekey).
                    match Db::open_with_config(sim_config(&vfs, Some(alg))) {
                        Err(Error::Rollback { file, .. }) if file.ends_with("KEYS") => {}
                        other => failures.push(format!(
                            "{alg} {op:?} strip={strip} kill={kill}: {:?}",
                            other.map(|_| "opened")
                        )),
                    }
                }
            }
        }
    }
    assert_eq!(cells, 60);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// After each key operation, the database reopens with everything in it
/// (no false `Rollback`), and the operation's effect is there.
#[test]
fn every_key_operation_reopens_with_its_effect() {
    for alg in EncryptionAlgorithm::ALL {
        for op in KEY_OPS {
            for kill in [false, true] {
                let vfs = SimVfs::new();
                run_op(&vfs, alg, op, kill);
                let config = match op {
                    KeyOp::Rekey => sim_config(&vfs, None)
                        .encryption_key(key(99))
                        .encryption_algorithm(alg),
                    _ => sim_config(&vfs, Some(alg)),
                };
                let db = Db::open_with_config(config)
                    .unwrap_or_else(|e| panic!("{alg} {op:?} kill={kill}: {e}"));
                for i in 0..40u32 {
                    assert_eq!(
                        db.get(format!("k{i:03}")).unwrap(),
                        Some(i.to_be_bytes().to_vec())
                    );
                }
                let sealed = db.get_sealed(b"tenant", None);
                match op {
                    KeyOp::DestroyFieldKey => {
                        assert!(matches!(sealed, Err(Error::KeyDestroyed(_))), "{sealed:?}")
                    }
                    _ => assert_eq!(sealed.unwrap().as_deref(), Some(&b"secret"[..])),
                }
                let report = db.verify().unwrap();
                assert!(report.is_clean(), "{alg} {op:?}: {:?}", report.findings);
            }
        }
    }
}

/// A flipped bit in the clear data-key id of a tree page's header is
/// damage: `Corruption` naming the page file, never a rollback (the id is
/// read before anything authenticates it).
#[test]
fn a_damaged_data_key_id_in_a_page_header_is_corruption() {
    for alg in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        for i in 0..200u32 {
            db.put(format!("k{i:04}"), [7u8; 50]).unwrap();
        }
        db.flush().unwrap();
        let tree: Vec<u64> = db
            .page_roles()
            .unwrap()
            .into_iter()
            .filter(|(_, r)| *r == "tree")
            .map(|(p, _)| p)
            .collect();
        db.close().unwrap();
        let data = dir().join("data.sealkv");
        let mut bytes = vfs.read_file(&data).unwrap();
        // Every leaf (kind 3 in the clear header), not the root branch: the
        // open goes through, the read meets the damage.
        let leaves: Vec<usize> = tree
            .iter()
            .map(|p| *p as usize * 4096)
            .filter(|at| bytes[*at] == 3)
            .collect();
        assert!(leaves.len() > 1 && leaves.len() < tree.len());
        for at in leaves {
            bytes[at + 7] ^= 0x04;
        }
        vfs.write_file(&data, &bytes);
        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        let err = db.get(b"k0001").unwrap_err();
        assert!(
            matches!(&err, Error::Corruption { file, what }
                if file.ends_with("data.sealkv") && what.contains("data key")),
            "{alg}: {err:?}"
        );
    }
}

/// The same for the newest WAL segment's header: `Corruption` naming the
/// segment file.
#[test]
fn a_damaged_data_key_id_in_a_segment_header_is_corruption() {
    for alg in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        db.put(b"a", b"1").unwrap();
        std::mem::forget(db);
        vfs.crash();
        let seg = segments(&vfs).pop().unwrap();
        let mut bytes = vfs.read_file(&seg).unwrap();
        assert!(bytes.len() > 128, "the segment holds a record");
        bytes[17] ^= 0x04;
        vfs.write_file(&seg, &bytes);
        let err = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap_err();
        assert!(
            matches!(&err, Error::Corruption { file, what }
                if *file == seg && what.contains("data key")),
            "{alg}: {err:?}"
        );
    }
}

/// A damaged data-key id in the newest meta page is damage too: the open
/// falls back to the other slot, the WAL restores what it lacks, and
/// `verify` names the meta page.
#[test]
fn a_damaged_data_key_id_in_the_newest_meta_page_falls_back_and_is_reported() {
    for alg in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        db.put(b"a", b"1").unwrap();
        db.flush().unwrap();
        db.put(b"b", b"2").unwrap();
        db.flush().unwrap();
        db.close().unwrap();
        let data = dir().join("data.sealkv");
        let mut bytes = vfs.read_file(&data).unwrap();
        // The newest slot: the higher transaction id in the clear headers.
        let txn = |slot: usize| {
            u64::from_be_bytes(
                bytes[slot * 4096 + 56..slot * 4096 + 64]
                    .try_into()
                    .unwrap(),
            )
        };
        let slot = if txn(1) > txn(2) { 1 } else { 2 };
        bytes[slot * 4096 + 7] ^= 0x04;
        vfs.write_file(&data, &bytes);
        let db = Db::open_with_config(sim_config(&vfs, Some(alg)).read_only(true))
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(db.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
        let report = db.verify().unwrap();
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.file.ends_with("data.sealkv") && f.what.contains("meta")),
            "{alg}: {:?}",
            report.findings
        );
    }
}

/// A registry recording a completed creation, without its page file, is
/// not moved aside for a new empty database: the open refuses, naming the
/// page file; an interrupted creation (registry only, never completed) is
/// still set aside and started over.
#[test]
fn a_lost_page_file_is_not_silently_replaced_by_a_new_database() {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(sim_config(&vfs, Some(EncryptionAlgorithm::Aes256Gcm))).unwrap();
    db.put(b"a", b"1").unwrap();
    db.close().unwrap();
    vfs.remove_file(&dir().join("data.sealkv")).unwrap();
    for seg in segments(&vfs) {
        vfs.remove_file(&seg).unwrap();
    }
    let err =
        Db::open_with_config(sim_config(&vfs, Some(EncryptionAlgorithm::Aes256Gcm))).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, what }
            if file.ends_with("data.sealkv") && what.contains("KEYS")),
        "{err:?}"
    );
    // Nothing was moved or created.
    assert!(vfs.exists(&keys_path()).unwrap());
    assert!(!vfs.exists(&dir().join("KEYS.interrupted")).unwrap());
    assert!(!vfs.exists(&dir().join("data.sealkv")).unwrap());
    // Without a key, the same refusal (the registry cannot be read, so it
    // is not set aside either).
    let err = Db::open_with_config(sim_config(&vfs, None)).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, .. } if file.ends_with("data.sealkv")),
        "{err:?}"
    );
}

/// The interrupted creation, for contrast: only the registry reached the
/// disk (the page file's creation failed); the next open sets it aside and
/// creates the database.
#[test]
fn an_interrupted_creation_is_set_aside_and_started_over() {
    use sealkv_fileio::{FaultKind, FaultPlan, FaultyVfs, OpKind};
    let sim = SimVfs::new();
    let faulty = FaultyVfs::over_sim(&sim);
    let alg = Some(EncryptionAlgorithm::Aes256Gcm);
    // The page file is created with the first `open` after the registry's
    // rename: fail opens until one leaves exactly that state.
    let mut interrupted = false;
    for nth in 1..20 {
        faulty.arm(FaultPlan::once(OpKind::Open, nth).with_fault(FaultKind::Eio));
        let config = sim_config(&sim, alg).vfs(std::sync::Arc::new(faulty.clone()));
        let failed = Db::open_with_config(config).is_err();
        faulty.disarm();
        sim.crash();
        if failed
            && sim.exists(&keys_path()).unwrap()
            && !sim.exists(&dir().join("data.sealkv")).unwrap()
        {
            interrupted = true;
            break;
        }
        for f in sim.files() {
            sim.remove_file(&f).unwrap();
        }
    }
    assert!(interrupted, "no fault left a registry without a page file");
    let db = Db::open_with_config(sim_config(&sim, alg)).unwrap();
    db.put(b"a", b"1").unwrap();
    assert!(sim.exists(&dir().join("KEYS.interrupted")).unwrap());
}
