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
            Error::Anchor(AnchorError::Corrupt { .. } | AnchorError::OtherDatabase { .. })
        ),
        "{err:?}"
    );
    // The anchor as it was before the rekey, under the old master key
    // only: it does not authenticate under the new one.
    sim.write_file(std::path::Path::new(ANCHOR), &before_rekey);
    let err = Db::open_with_config(new_key()).unwrap_err();
    assert!(
        matches!(&err, Error::Anchor(AnchorError::Corrupt { what, .. }) if what.contains("authenticate")),
        "{err:?}"
    );
    sim.write_file(std::path::Path::new(ANCHOR), &good);
    Db::open_with_config(new_key()).unwrap().close().unwrap();
}
