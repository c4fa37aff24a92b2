//! The freshness anchor: a whole-directory restore of an older copy is
//! `Rollback`; a crash between a commit and the anchor's update is not; the
//! policy decides how often ordinary commits update it.

use std::sync::Arc;
use std::time::Duration;

use sealkv::anchor::{AnchorError, AnchorPolicy, FileAnchor, FreshnessAnchor, MemoryAnchor};
use sealkv::crypto::{EncryptionAlgorithm, KeySource};
use sealkv::{Config, Db, Error};
use sealkv_fileio::{FaultPlan, FaultyVfs, OpKind, SimVfs, Vfs};

use crate::support::{dir, key, modes, sim_config};

const ANCHOR: &str = "/anchors/db.anchor";

fn anchored(
    sim: &SimVfs,
    alg: Option<EncryptionAlgorithm>,
    anchor: Arc<dyn FreshnessAnchor>,
) -> Config {
    sim_config(sim, alg).freshness_anchor(anchor)
}

fn file_anchor(sim: &SimVfs) -> Arc<FileAnchor> {
    sim.create_dir_all(std::path::Path::new("/anchors"))
        .unwrap();
    Arc::new(FileAnchor::with_vfs(Arc::new(sim.clone()), ANCHOR))
}

/// The directory's files (not the anchor's), for putting an old copy back.
fn snapshot_dir(sim: &SimVfs) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    sim.files()
        .into_iter()
        .filter(|p| p.starts_with(dir()))
        .map(|p| {
            let b = sim.read_file(&p).unwrap();
            (p, b)
        })
        .collect()
}

fn put_back(sim: &SimVfs, files: &[(std::path::PathBuf, Vec<u8>)]) {
    for p in sim.files() {
        if p.starts_with(dir()) {
            sim.remove_file(&p).unwrap();
        }
    }
    for (p, b) in files {
        sim.write_file(p, b);
    }
}

/// `cp -r` of the whole directory, later put back over the newer one:
/// every file agrees with every other, so only the anchor can tell.
#[test]
fn a_whole_directory_restore_of_an_older_copy_is_a_rollback() {
    for alg in modes() {
        for kind in ["memory", "file"] {
            let sim = SimVfs::new();
            let anchor: Arc<dyn FreshnessAnchor> = match kind {
                "memory" => Arc::new(MemoryAnchor::new()),
                _ => file_anchor(&sim),
            };
            let db = Db::open_with_config(anchored(&sim, alg, anchor.clone())).unwrap();
            db.put(b"balance", b"100").unwrap();
            db.close().unwrap();
            let older = snapshot_dir(&sim);
            let db = Db::open_with_config(anchored(&sim, alg, anchor.clone())).unwrap();
            db.put(b"balance", b"0").unwrap();
            db.flush().unwrap();
            db.close().unwrap();
            put_back(&sim, &older);
            // Without the anchor, the old copy opens (the documented limit).
            let db = Db::open_with_config(sim_config(&sim, alg).read_only(true)).unwrap();
            assert_eq!(db.get(b"balance").unwrap().as_deref(), Some(&b"100"[..]));
            drop(db);
            for read_only in [true, false] {
                let err =
                    Db::open_with_config(anchored(&sim, alg, anchor.clone()).read_only(read_only))
                        .unwrap_err();
                assert!(
                    matches!(&err, Error::Rollback { file, what } if *file == dir() && what.contains("anchor")),
                    "{alg:?} {kind}: {err:?}"
                );
            }
        }
    }
}

/// The directory one commit ahead of its anchor (a crash after a commit,
/// before the anchor's update) is accepted: a fault at every file
/// operation of a flush, then a power cut, then a reopen.
#[test]
fn a_crash_between_a_commit_and_the_anchor_update_is_not_a_rollback() {
    for alg in [None, Some(EncryptionAlgorithm::Aes256Gcm)] {
        // Count the flush's operations.
        let count = {
            let sim = SimVfs::new();
            let anchor = file_anchor(&sim);
            let faulty = FaultyVfs::over_sim(&sim);
            let db =
                Db::open_with_config(anchored(&sim, alg, anchor).vfs(Arc::new(faulty.clone())))
                    .unwrap();
            db.put(b"a", b"1").unwrap();
            let before = faulty.counts();
            db.flush().unwrap();
            let after = faulty.counts();
            [OpKind::Write, OpKind::Sync].map(|k| (k, after.get(k) - before.get(k)))
        };
        let mut cases = 0;
        for (kind, n) in count {
            for nth in 1..=n {
                let sim = SimVfs::new();
                sim.create_dir_all(std::path::Path::new("/anchors"))
                    .unwrap();
                let faulty = FaultyVfs::over_sim(&sim);
                let anchor = Arc::new(FileAnchor::with_vfs(Arc::new(faulty.clone()), ANCHOR));
                let db =
                    Db::open_with_config(anchored(&sim, alg, anchor).vfs(Arc::new(faulty.clone())))
                        .unwrap();
                db.put(b"a", b"1").unwrap();
                faulty.arm(FaultPlan::once(kind, nth));
                let _ = db.flush();
                assert_eq!(faulty.injected(), 1);
                std::mem::forget(db);
                sim.crash();
                let db = Db::open_with_config(anchored(&sim, alg, file_anchor(&sim)))
                    .unwrap_or_else(|e| panic!("{alg:?} {kind:?} #{nth}: {e}"));
                assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
                cases += 1;
            }
        }
        assert!(cases >= 6, "{cases}");
    }
}

/// A failed update of the anchor stops writes, as a failed commit does,
/// with the anchor's file error as the cause; the commit before it is
/// durable, and the next open accepts the directory ahead of its anchor.
#[test]
fn a_failed_anchor_update_stops_writes_and_names_the_anchor() {
    for alg in [None, Some(EncryptionAlgorithm::Aes256Gcm)] {
        let sim = SimVfs::new();
        sim.create_dir_all(std::path::Path::new("/anchors"))
            .unwrap();
        // Faults reach the anchor's file only.
        let faulty = FaultyVfs::over_sim(&sim);
        let anchor = Arc::new(FileAnchor::with_vfs(Arc::new(faulty.clone()), ANCHOR));
        let db = Db::open_with_config(anchored(&sim, alg, anchor)).unwrap();
        db.put(b"a", b"1").unwrap();
        faulty.arm(FaultPlan::once(OpKind::Sync, 1));
        let err = db.flush().unwrap_err();
        assert_eq!(faulty.injected(), 1, "{alg:?}");
        match &err {
            Error::Poisoned {
                cause,
                outcome_unknown: true,
            } => assert_eq!(
                cause.file_error().map(|f| f.path.as_path()),
                Some(std::path::Path::new(ANCHOR)),
                "{alg:?}: {err}"
            ),
            other => panic!("{alg:?}: {other:?}"),
        }
        assert!(
            matches!(
                db.put(b"b", b"2"),
                Err(Error::Poisoned {
                    outcome_unknown: false,
                    ..
                })
            ),
            "{alg:?}"
        );
        std::mem::forget(db);
        sim.crash();
        let db = Db::open_with_config(anchored(&sim, alg, file_anchor(&sim)))
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(db.get(b"b").unwrap(), None);
    }
}

/// Every commit updates the anchor under the default policy; an interval
/// policy updates it less often, and always on close and key operations.
#[test]
fn the_policy_sets_how_often_commits_update_the_anchor() {
    let run = |policy| {
        let sim = SimVfs::new();
        let anchor = MemoryAnchor::new();
        let db = Db::open_with_config(
            anchored(
                &sim,
                Some(EncryptionAlgorithm::Aes256Gcm),
                Arc::new(anchor.clone()),
            )
            .anchor_policy(policy),
        )
        .unwrap();
        let at_open = anchor.stores();
        for i in 0..20u32 {
            db.put(i.to_be_bytes(), b"v").unwrap();
            db.flush().unwrap();
        }
        let flushed = anchor.stores() - at_open;
        db.create_field_key().unwrap();
        let after_key_op = anchor.stores();
        let committed = anchor.state().unwrap().commit;
        db.put(b"last", b"v").unwrap();
        db.close().unwrap();
        let closed = anchor.state().unwrap().commit;
        (flushed, after_key_op, committed, closed, anchor)
    };
    let (every, ..) = run(AnchorPolicy::EveryCommit);
    assert_eq!(every, 20);
    let (rarely, after_key_op, committed, closed, anchor) =
        run(AnchorPolicy::Interval(Duration::from_secs(3600)));
    assert_eq!(rarely, 0);
    assert!(after_key_op > 0 && committed > 20, "{committed}");
    // Close flushed "last" and recorded it.
    assert_eq!(closed, committed + 1);
    assert_eq!(anchor.state().unwrap().commit, closed);
}

/// An anchor that holds a state where the directory holds no database:
/// the database was removed (or replaced). Creating an empty one there
/// would accept that; refused.
#[test]
fn creating_a_database_where_the_anchor_records_one_is_refused() {
    for kind in ["memory", "file"] {
        let sim = SimVfs::new();
        let anchor: Arc<dyn FreshnessAnchor> = match kind {
            "memory" => Arc::new(MemoryAnchor::new()),
            _ => file_anchor(&sim),
        };
        let alg = Some(EncryptionAlgorithm::ChaCha20Poly1305);
        let db = Db::open_with_config(anchored(&sim, alg, anchor.clone())).unwrap();
        db.put(b"a", b"1").unwrap();
        db.close().unwrap();
        put_back(&sim, &[]);
        let err = Db::open_with_config(anchored(&sim, alg, anchor.clone())).unwrap_err();
        assert!(matches!(&err, Error::Rollback { .. }), "{kind}: {err:?}");
        assert!(!sim.exists(&dir().join("data.sealkv")).unwrap());
    }
}

/// A file anchor that is damaged, or that belongs to another database, or
/// that was written under another master key, is refused with the
/// anchor's error; a rekey re-authenticates it under the new key.
#[test]
fn a_damaged_foreign_or_other_key_anchor_is_refused_and_a_rekey_carries_it() {
    let alg = Some(EncryptionAlgorithm::Aes256Gcm);
    let sim = SimVfs::new();
    let anchor = file_anchor(&sim);
    let db = Db::open_with_config(anchored(&sim, alg, anchor.clone())).unwrap();
    db.put(b"a", b"1").unwrap();
    db.flush().unwrap();
    let before_rekey = sim.read_file(std::path::Path::new(ANCHOR)).unwrap();
    db.rekey(KeySource::Key(key(99))).unwrap();
    db.put(b"b", b"2").unwrap();
    db.close().unwrap();
    let new_key = || {
        anchored(&sim, None, file_anchor(&sim))
            .encryption_key(key(99))
            .encryption_algorithm(EncryptionAlgorithm::Aes256Gcm)
    };
    let db = Db::open_with_config(new_key()).unwrap();
    assert_eq!(db.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
    db.close().unwrap();
    let good = sim.read_file(std::path::Path::new(ANCHOR)).unwrap();

    // Damaged: both slots.
    let mut bad = good.clone();
    bad[40] ^= 1;
    bad[512 + 40] ^= 1;
    sim.write_file(std::path::Path::new(ANCHOR), &bad);
    let err = Db::open_with_config(new_key()).unwrap_err();
    assert!(
        matches!(&err, Error::Anchor(AnchorError::Corrupt { location, .. }) if location.contains("db.anchor")),
        "{err:?}"
    );
    // Another database's anchor (same master key).
    let other = SimVfs::new();
    let db = Db::open_with_config(
        anchored(&other, None, file_anchor(&other))
            .encryption_key(key(99))
            .encryption_algorithm(EncryptionAlgorithm::Aes256Gcm),
    )
    .unwrap();
    db.close().unwrap();
    sim.write_file(
        std::path::Path::new(ANCHOR),
        &other.read_file(std::path::Path::new(ANCHOR)).unwrap(),
    );
    let err = Db::open_with_config(new_key()).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Anchor(AnchorError::Unauthenticated { .. } | AnchorError::OtherDatabase { .. })
        ),
        "{err:?}"
    );
    // The anchor as it was before the rekey, under the old master key
    // only: it does not authenticate under the new one.
    sim.write_file(std::path::Path::new(ANCHOR), &before_rekey);
    let err = Db::open_with_config(new_key()).unwrap_err();
    assert!(
        matches!(&err, Error::Anchor(AnchorError::Unauthenticated { what, .. }) if what.contains("authenticate")),
        "{err:?}"
    );
    sim.write_file(std::path::Path::new(ANCHOR), &good);
    Db::open_with_config(new_key()).unwrap().close().unwrap();
}

/// With an anchor, an older `KEYS` put back after a rotation and two
/// commits (both meta slots sealed under the new data key, which the older
/// registry lacks) is `Rollback`: the anchor, checked before the page file,
/// records a newer registry generation. Without an anchor nothing proves
/// it older, and the open is refused as `Corruption` (the documented
/// limit), never accepted.
#[test]
fn with_an_anchor_an_older_registry_put_back_after_a_rotation_and_two_commits_is_a_rollback() {
    for alg in EncryptionAlgorithm::ALL {
        for strip in [false, true] {
            let what = format!("{alg} strip={strip}");
            let sim = SimVfs::new();
            let anchor = file_anchor(&sim);
            let db = Db::open_with_config(anchored(&sim, Some(alg), anchor.clone())).unwrap();
            db.put(b"a", b"1").unwrap();
            db.flush().unwrap();
            let keys = dir().join("KEYS");
            let older = sim.read_file(&keys).unwrap();
            db.rotate_data_key().unwrap();
            for k in [b"b", b"c"] {
                db.put(k, b"2").unwrap();
                db.flush().unwrap();
            }
            db.close().unwrap();
            sim.write_file(&keys, &older);
            if strip {
                let mut segs: Vec<_> = sim
                    .files()
                    .into_iter()
                    .filter(|p| p.starts_with(dir().join("wal")))
                    .collect();
                segs.sort();
                for seg in segs.into_iter().rev() {
                    if sim.read_file(&seg).unwrap().len() > 128 {
                        break;
                    }
                    sim.remove_file(&seg).unwrap();
                }
            }
            for read_only in [true, false] {
                let err = Db::open_with_config(
                    anchored(&sim, Some(alg), anchor.clone()).read_only(read_only),
                )
                .map(|_| "opened")
                .unwrap_err();
                assert!(
                    matches!(&err, Error::Rollback { .. }),
                    "{what} read_only={read_only}: {err:?}"
                );
            }
            let err = Db::open_with_config(sim_config(&sim, Some(alg)))
                .map(|_| "opened")
                .unwrap_err();
            assert!(
                matches!(&err, Error::Corruption { what, .. } if what.contains("does not hold")),
                "{what} without the anchor: {err:?}"
            );
        }
    }
}

/// Where the directory holds no database, an anchor that cannot be read is
/// an I/O error, a damaged one is the anchor's damage, and only a whole
/// record of a database (one that was removed) is `Rollback`.
#[test]
fn creating_beside_an_unreadable_or_damaged_anchor_says_which() {
    let alg = Some(EncryptionAlgorithm::Aes256Gcm);
    let sim = SimVfs::new();
    let anchor_path = std::path::Path::new(ANCHOR);
    let db = Db::open_with_config(anchored(&sim, alg, file_anchor(&sim))).unwrap();
    db.put(b"a", b"1").unwrap();
    db.close().unwrap();
    put_back(&sim, &[]);
    let good = sim.read_file(anchor_path).unwrap();

    // Unreadable: the I/O error, naming the anchor file.
    let faulty = FaultyVfs::over_sim(&sim);
    faulty.arm(FaultPlan::once(OpKind::Read, 1));
    let anchor = Arc::new(FileAnchor::with_vfs(Arc::new(faulty.clone()), ANCHOR));
    let err = Db::open_with_config(anchored(&sim, alg, anchor)).unwrap_err();
    assert!(faulty.injected() > 0, "the read of the anchor did not fail");
    assert!(
        matches!(&err, Error::Io(e) if e.path.ends_with("db.anchor")),
        "{err:?}"
    );

    // Damaged (both slots): the anchor's damage, not a rollback.
    let mut bad = good.clone();
    bad[40] ^= 1;
    bad[512 + 40] ^= 1;
    sim.write_file(anchor_path, &bad);
    let err = Db::open_with_config(anchored(&sim, alg, file_anchor(&sim))).unwrap_err();
    assert!(
        matches!(&err, Error::Anchor(AnchorError::Corrupt { location, .. }) if location.contains("db.anchor")),
        "{err:?}"
    );

    // Whole: the database it records was removed.
    sim.write_file(anchor_path, &good);
    let err = Db::open_with_config(anchored(&sim, alg, file_anchor(&sim))).unwrap_err();
    assert!(matches!(&err, Error::Rollback { .. }), "{err:?}");
    assert!(!sim.exists(&dir().join("data.sealkv")).unwrap());
}

/// The newest transaction id in the page file's meta slots (their clear
/// headers).
fn newest_txn(sim: &SimVfs) -> u64 {
    let bytes = sim.read_file(&dir().join("data.sealkv")).unwrap();
    [1usize, 2]
        .map(|slot| {
            u64::from_be_bytes(
                bytes[slot * 4096 + 56..slot * 4096 + 64]
                    .try_into()
                    .unwrap(),
            )
        })
        .into_iter()
        .max()
        .unwrap()
}

/// A copy of the directory that went its own way and reached the very
/// commit number (or registry generation) the anchor records is not the
/// directory the anchor records: the anchor binds the meta page's tag and
/// the registry's hash, so the copy is `Rollback`, not accepted as "at the
/// anchor".
#[test]
fn a_copy_that_diverged_to_the_anchored_commit_is_a_rollback() {
    for alg in [None, Some(EncryptionAlgorithm::ChaCha20Poly1305)] {
        for diverge in ["data", "field key"] {
            if alg.is_none() && diverge == "field key" {
                continue;
            }
            let what = format!("{alg:?} {diverge}");
            let sim = SimVfs::new();
            let anchor = file_anchor(&sim);
            let db = Db::open_with_config(anchored(&sim, alg, anchor.clone())).unwrap();
            db.put(b"a", b"1").unwrap();
            db.close().unwrap();
            let copy = snapshot_dir(&sim);
            let step = |db: &Db, value: &[u8]| match diverge {
                "data" => {
                    db.put(b"b", value).unwrap();
                    db.flush().unwrap();
                }
                _ => {
                    db.create_field_key().unwrap();
                }
            };
            // The anchored directory moves on...
            let db = Db::open_with_config(anchored(&sim, alg, anchor.clone())).unwrap();
            step(&db, b"anchored");
            db.close().unwrap();
            let at = newest_txn(&sim);
            // ...and so does the copy, without the anchor, as far.
            put_back(&sim, &copy);
            let db = Db::open_with_config(sim_config(&sim, alg)).unwrap();
            step(&db, b"copy");
            db.close().unwrap();
            assert_eq!(
                newest_txn(&sim),
                at,
                "{what}: the copy reached another commit"
            );
            let err = Db::open_with_config(anchored(&sim, alg, anchor.clone()))
                .map(|_| "opened")
                .unwrap_err();
            assert!(matches!(&err, Error::Rollback { .. }), "{what}: {err:?}");
        }
    }
}

/// A physical backup ends a few commits past its snapshot, so a backup put
/// in place of the live directory before the live database has committed
/// past the backup's last commit number is not "older" by commit number.
/// The backup is its own line of commits (a new lineage id in its meta
/// page), and the anchor records the live one's: `Rollback`, saying that
/// another copy stands where the anchored database was.
#[test]
fn a_backup_put_in_place_of_the_anchored_directory_is_a_rollback() {
    for alg in [None, Some(EncryptionAlgorithm::Aes256Gcm)] {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("live");
        let backup = tmp.path().join("backup");
        let anchor_path = tmp.path().join("db.anchor");
        let config = |dir: &std::path::Path| {
            let c = Config::new(dir).freshness_anchor(Arc::new(FileAnchor::new(&anchor_path)));
            match alg {
                Some(a) => c.encryption_key(key(7)).encryption_algorithm(a),
                None => c,
            }
        };
        let db = Db::open_with_config(config(&live)).unwrap();
        db.put(b"balance", b"100").unwrap();
        db.backup_to(&backup, &mut |_| {}).unwrap();
        // One more live commit: the backup's own commits since its
        // snapshot leave it at or past the live commit number.
        db.put(b"balance", b"0").unwrap();
        db.flush().unwrap();
        db.close().unwrap();
        std::fs::remove_dir_all(&live).unwrap();
        std::fs::rename(&backup, &live).unwrap();
        for read_only in [true, false] {
            match Db::open_with_config(config(&live).read_only(read_only)) {
                Err(Error::Rollback { what, .. }) => {
                    assert!(what.contains("another copy"), "{alg:?}: {what}");
                }
                other => panic!(
                    "{alg:?} read_only={read_only}: {:?}",
                    other.map(|_| "opened")
                ),
            }
        }
    }
}
