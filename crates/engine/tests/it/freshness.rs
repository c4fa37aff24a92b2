//! Freshness of the key registry: every key operation is recorded in a
//! meta page before it returns, so an older `KEYS` put back is `Rollback`
//! in every case; a damaged data-key id is `Corruption`, never blamed on
//! a rollback; an interrupted creation is told from a lost page file.

use std::ops::ControlFlow;
use std::path::PathBuf;

use sealkv::crypto::{EncryptionAlgorithm, KeySource, SoftwareWrapper};
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

/// A power cut inside `rotate_data_key` after its registry reached the
/// disk and before the commit that records it: the next open records the
/// new generation, in a meta page the older registry still opens (sealed
/// under the data key the rotation moved away from). The older `KEYS` put
/// back afterwards, with the header-only segments removed, is `Rollback`,
/// whether the reopened database wrote something under the new key or
/// not. Swept over every write and sync of the rotation.
#[test]
fn an_older_registry_put_back_after_an_interrupted_rotation_was_reopened_is_a_rollback() {
    use sealkv_fileio::{FaultPlan, FaultyVfs, OpKind};
    let mut failures = Vec::new();
    let mut interrupted = 0;
    for alg in EncryptionAlgorithm::ALL {
        let counts = {
            let sim = SimVfs::new();
            let faulty = FaultyVfs::over_sim(&sim);
            let config = sim_config(&sim, Some(alg)).vfs(std::sync::Arc::new(faulty.clone()));
            let db = Db::open_with_config(config).unwrap();
            db.put(b"a", b"1").unwrap();
            db.flush().unwrap();
            let before = faulty.counts();
            db.rotate_data_key().unwrap();
            let after = faulty.counts();
            [OpKind::Write, OpKind::Sync].map(|k| (k, after.get(k) - before.get(k)))
        };
        for (kind, n) in counts {
            for nth in 1..=n {
                for write_after in [false, true] {
                    let what = format!("{alg} {kind:?} #{nth} write_after={write_after}");
                    let sim = SimVfs::new();
                    let faulty = FaultyVfs::over_sim(&sim);
                    let config =
                        sim_config(&sim, Some(alg)).vfs(std::sync::Arc::new(faulty.clone()));
                    let db = Db::open_with_config(config).unwrap();
                    db.put(b"a", b"1").unwrap();
                    db.flush().unwrap();
                    let older = sim.read_file(&keys_path()).unwrap();
                    faulty.arm(FaultPlan::once(kind, nth));
                    let result = db.rotate_data_key();
                    assert!(faulty.injected() > 0, "{what}: the fault did not fire");
                    faulty.disarm();
                    std::mem::forget(db);
                    sim.crash();
                    if sim.read_file(&keys_path()).unwrap() == older {
                        // The rotation did not reach the disk.
                        continue;
                    }
                    if result.is_err() {
                        interrupted += 1;
                    }
                    let db = Db::open_with_config(sim_config(&sim, Some(alg)))
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    if write_after {
                        db.put(b"b", b"2").unwrap();
                    }
                    db.close().unwrap();
                    sim.write_file(&keys_path(), &older);
                    remove_header_only_newest_segments(&sim);
                    match Db::open_with_config(sim_config(&sim, Some(alg))) {
                        Err(Error::Rollback { file, .. }) if file.ends_with("KEYS") => {}
                        other => failures.push(format!("{what}: {:?}", other.map(|_| "opened"))),
                    }
                }
            }
        }
    }
    assert!(
        interrupted > 0,
        "no fault stopped a rotation after its registry"
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The generation in a `KEYS` file (bytes 74..82 of its header).
fn registry_generation(vfs: &SimVfs) -> u64 {
    let bytes = vfs.read_file(&keys_path()).unwrap();
    u64::from_be_bytes(bytes[74..82].try_into().unwrap())
}

/// A registry still at generation 1 beside its page file: what a database
/// created before the creation was marked complete (by advancing it to 2)
/// has, made here by failing that advance. Until its first writable open,
/// a lost page file beside it is taken for an interrupted creation (the
/// registry is set aside, never deleted, and an empty database created);
/// the first writable open advances it to 2, and from then on a lost page
/// file is refused and the generation-1 registry put back is `Rollback`.
#[test]
fn a_registry_still_at_generation_1_is_advanced_by_the_first_writable_open() {
    use sealkv_fileio::{FaultPlan, FaultyVfs, OpKind};
    let alg = Some(EncryptionAlgorithm::Aes256Gcm);
    let sim = (1..20)
        .find_map(|nth| {
            let sim = SimVfs::new();
            let faulty = FaultyVfs::over_sim(&sim);
            faulty.arm(FaultPlan::once(OpKind::Rename, nth));
            let config = sim_config(&sim, alg).vfs(std::sync::Arc::new(faulty.clone()));
            let failed = Db::open_with_config(config).is_err();
            faulty.disarm();
            sim.crash();
            (failed
                && sim.exists(&dir().join("data.sealkv")).unwrap()
                && registry_generation(&sim) == 1)
                .then_some(sim)
        })
        .expect("no fault left a registry at generation 1 beside its page file");
    let generation_1 = sim.read_file(&keys_path()).unwrap();

    // A read-only open writes nothing: still generation 1.
    let db = Db::open_with_config(sim_config(&sim, alg).read_only(true)).unwrap();
    drop(db);
    assert_eq!(registry_generation(&sim), 1);

    // The limit, until a writable open: the page file lost beside it looks
    // like an interrupted creation.
    let before: Vec<(PathBuf, Vec<u8>)> = sim
        .files()
        .into_iter()
        .map(|p| {
            let b = sim.read_file(&p).unwrap();
            (p, b)
        })
        .collect();
    sim.remove_file(&dir().join("data.sealkv")).unwrap();
    for seg in segments(&sim) {
        sim.remove_file(&seg).unwrap();
    }
    Db::open_with_config(sim_config(&sim, alg))
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(
        sim.read_file(&dir().join("KEYS.interrupted")).unwrap(),
        generation_1,
        "the registry was not kept"
    );
    for p in sim.files() {
        sim.remove_file(&p).unwrap();
    }
    for (p, b) in &before {
        sim.write_file(p, b);
    }

    // The first writable open advances it and records the generation.
    let db = Db::open_with_config(sim_config(&sim, alg)).unwrap();
    db.put(b"a", b"1").unwrap();
    db.close().unwrap();
    assert_eq!(registry_generation(&sim), 2);
    let current = sim.read_file(&keys_path()).unwrap();
    sim.write_file(&keys_path(), &generation_1);
    let err = Db::open_with_config(sim_config(&sim, alg))
        .map(|_| "opened")
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rollback { file, .. } if file.ends_with("KEYS")),
        "{err:?}"
    );
    sim.write_file(&keys_path(), &current);
    sim.remove_file(&dir().join("data.sealkv")).unwrap();
    for seg in segments(&sim) {
        sim.remove_file(&seg).unwrap();
    }
    let err = Db::open_with_config(sim_config(&sim, alg))
        .map(|_| "opened")
        .unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { file, .. } if file.ends_with("data.sealkv")),
        "{err:?}"
    );
}

/// A rekey from a raw master key to a key wrapper and back, each way with a
/// close and a kill: the older `KEYS` put back (made under the other kind
/// of key, and opened with that key) is `Rollback` naming `KEYS`.
#[test]
fn an_older_registry_put_back_after_a_rekey_to_or_from_a_wrapper_is_a_rollback() {
    let wrapper = || {
        KeySource::Wrapper(std::sync::Arc::new(SoftwareWrapper::new(
            "hsm-key",
            key(0x33),
        )))
    };
    let raw = || KeySource::Key(key(7));
    let mut failures = Vec::new();
    for (name, from, to) in [
        (
            "raw->wrapper",
            raw as fn() -> KeySource,
            wrapper as fn() -> KeySource,
        ),
        ("wrapper->raw", wrapper, raw),
    ] {
        for kill in [false, true] {
            let vfs = SimVfs::new();
            let config = |source: KeySource| {
                sim_config(&vfs, None)
                    .key_source(source)
                    .encryption_algorithm(EncryptionAlgorithm::Aes256Gcm)
            };
            let db = Db::open_with_config(config(from())).unwrap();
            for i in 0..40u32 {
                db.put(format!("k{i:03}"), i.to_be_bytes()).unwrap();
            }
            db.flush().unwrap();
            let older = vfs.read_file(&keys_path()).unwrap();
            db.rekey(to()).unwrap();
            if kill {
                std::mem::forget(db);
                vfs.crash();
            } else {
                db.close().unwrap();
            }
            // The rekey took: the new key opens, the old one does not.
            Db::open_with_config(config(to())).unwrap().close().unwrap();
            assert!(Db::open_with_config(config(from())).is_err(), "{name}");
            vfs.write_file(&keys_path(), &older);
            match Db::open_with_config(config(from())) {
                Err(Error::Rollback { file, .. }) if file.ends_with("KEYS") => {}
                other => {
                    failures.push(format!("{name} kill={kill}: {:?}", other.map(|_| "opened")))
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// An open that falls back to the older meta slot and finds the registry
/// newer than the meta page commits nothing before the WAL replay has
/// shown that the log continues the older state: with a log segment
/// missing, the open is refused and the damaged page file is left exactly
/// as it was (for `verify` and for the operator), not committed over.
#[test]
fn a_fall_back_open_commits_nothing_before_the_log_is_checked() {
    for alg in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let config = |vfs: &SimVfs| {
            sim_config(vfs, Some(alg))
                .memtable_size(4 << 20)
                .wal_segment_size(64 << 10)
        };
        let db = Db::open_with_config(config(&vfs)).unwrap();
        for i in 0..50u32 {
            db.put(format!("k{i:03}"), vec![i as u8; 4000]).unwrap();
        }
        db.flush().unwrap();
        let used = db.page_roles().unwrap().last().unwrap().0 + 1;
        let data = dir().join("data.sealkv");
        let flushed = vfs.read_file(&data).unwrap();
        let log: Vec<_> = segments(&vfs)
            .into_iter()
            .map(|p| (vfs.read_file(&p).unwrap(), p))
            .collect();
        let older_keys = vfs.read_file(&dir().join("KEYS")).unwrap();
        // A key operation whose registry is written but whose recording
        // commit is lost (as a crash right after the registry leaves it),
        // and the page file's tail cut away.
        db.create_field_key().unwrap();
        std::mem::forget(db);
        for seg in segments(&vfs) {
            vfs.remove_file(&seg).unwrap();
        }
        for (bytes, path) in &log {
            vfs.write_file(path, bytes);
        }
        vfs.write_file(&data, &flushed[..used as usize / 2 * 4096]);
        // The process is gone (its lock with it).
        let vfs = vfs.fork_crashed_torn(0);
        // The open falls back (the newest tree is cut away).
        let probe = vfs.fork_crashed_torn(0);
        let db = Db::open_with_config(config(&probe).read_only(true)).unwrap();
        let report = db.verify().unwrap();
        assert!(
            report.findings.iter().any(|f| f.what.contains("fell back")),
            "{alg}: {:?}",
            report.findings
        );
        drop(db);
        // With the log intact, the open records the newer registry after
        // the replay, in a meta page the older registry still opens: put
        // back, that one is a rollback.
        let intact = vfs.fork_crashed_torn(0);
        let db = Db::open_with_config(config(&intact)).unwrap();
        assert_eq!(db.get("k049").unwrap().as_deref(), Some(&[49u8; 4000][..]));
        db.close().unwrap();
        intact.write_file(&dir().join("KEYS"), &older_keys);
        let err = Db::open_with_config(config(&intact))
            .map(|_| "opened")
            .unwrap_err();
        assert!(matches!(err, Error::Rollback { .. }), "{alg}: {err:?}");
        // ...and with the log not continuing the older state.
        let segs = segments(&vfs);
        assert!(segs.len() > 2, "{alg}: {segs:?}");
        vfs.remove_file(&segs[0]).unwrap();
        let before = vfs.read_file(&data).unwrap();
        let err = Db::open_with_config(config(&vfs))
            .map(|_| "opened")
            .unwrap_err();
        assert!(matches!(err, Error::Corruption { .. }), "{alg}: {err:?}");
        assert!(
            vfs.read_file(&data).unwrap() == before,
            "{alg}: the refused open wrote to the page file"
        );
    }
}
