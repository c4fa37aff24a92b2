//! Golden files: small databases written by an earlier build, committed
//! under `tests/golden/`, opened and checked by every later one. A format
//! change can never silently orphan existing data: it must keep reading
//! these (or bump a version and fail with a clear error, and say so here).
//!
//! `tests/golden/README.md` names the format versions each set holds. To
//! add a set after a format change, run
//! `cargo test -p sealkv --test it golden::write_golden_files -- --ignored`
//! with `SEALKV_GOLDEN_DIR` naming a new directory under `tests/golden/`,
//! and add it to [`SETS`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv::anchor::FileAnchor;
use sealkv::crypto::{EncryptionAlgorithm, KeyId, MasterKey};
use sealkv::{Config, Db, Error, SyncMode};

/// Each committed set this build reads.
const SETS: &[&str] = &[
    "pagefile1-wal2-keys1-engine2",
    "pagefile1-wal2-keys2-engine2",
];

/// Committed sets this build refuses, with the format version it must
/// name: written before keyspaces, their keys have no keyspace prefix.
const REFUSED_SETS: &[(&str, u32)] = &[("pagefile1-wal2-keys1", 1)];

const MODES: [(&str, Option<EncryptionAlgorithm>); 3] = [
    ("plaintext", None),
    ("aes-256-gcm", Some(EncryptionAlgorithm::Aes256Gcm)),
    (
        "chacha20-poly1305",
        Some(EncryptionAlgorithm::ChaCha20Poly1305),
    ),
];

/// The master key of the golden databases (test data, not a secret).
fn golden_key() -> MasterKey {
    MasterKey::from_bytes(&[0x60; 32]).unwrap()
}

pub(crate) fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// What every golden database holds (field-sealed values aside).
pub(crate) fn expected() -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for i in 0..120u32 {
        if i % 7 == 3 {
            continue; // deleted
        }
        let value = if i == 5 {
            vec![0xab; 20_000] // overflow pages
        } else {
            format!("value {i} of the golden set").into_bytes()
        };
        m.insert(format!("golden/{i:04}").into_bytes(), value);
    }
    m
}

/// What the golden databases' keyspace `users` holds.
pub(crate) fn users_expected() -> BTreeMap<Vec<u8>, Vec<u8>> {
    (0..30u32)
        .map(|i| {
            (
                format!("user/{i:03}").into_bytes(),
                format!("name {i}").into_bytes(),
            )
        })
        .collect()
}

fn config(dir: &Path, alg: Option<EncryptionAlgorithm>) -> Config {
    let c = Config::new(dir).sync_mode(SyncMode::Always);
    match alg {
        Some(a) => c.encryption_key(golden_key()).encryption_algorithm(a),
        None => c,
    }
}

/// Writes one golden database: part flushed into the tree (under a first
/// data key), part only in the WAL (under a second one, after a rotation),
/// a field-sealed value, then a crash-like stop (no close).
fn write_one(dir: &Path, alg: Option<EncryptionAlgorithm>) {
    write_with(config(dir, alg), alg.is_some());
}

/// [`write_one`] with `config`; `sealed`: it has a key.
pub(crate) fn write_with(config: Config, sealed: bool) {
    let db = Db::open_with_config(config).unwrap();
    let all: Vec<(Vec<u8>, Vec<u8>)> = expected().into_iter().collect();
    for i in 0..120u32 {
        let key = format!("golden/{i:04}").into_bytes();
        db.put(&key, b"to be replaced").unwrap();
    }
    let (first, second) = all.split_at(60);
    for (k, v) in first {
        db.put(k, v).unwrap();
    }
    db.flush().unwrap();
    if sealed {
        db.rotate_data_key().unwrap();
        let field = db.create_field_key().unwrap();
        assert_eq!(field, KeyId(3));
        db.put_sealed(b"sealed/one", b"a field-sealed value", field)
            .unwrap();
    }
    let users = db.keyspace("users").unwrap();
    for (k, v) in users_expected() {
        users.put(k, v).unwrap();
    }
    let dropped = db.keyspace("dropped").unwrap();
    dropped.put(b"gone", b"with its keyspace").unwrap();
    assert!(db.drop_keyspace("dropped").unwrap());
    for (k, v) in second {
        db.put(k, v).unwrap();
    }
    for i in (0..120u32).filter(|i| i % 7 == 3) {
        db.delete(format!("golden/{i:04}")).unwrap();
    }
    // Acknowledged under SyncMode::Always: durable in the WAL. No close.
    std::mem::forget(db);
}

#[test]
#[ignore = "writes a new golden set; run by hand after a format change"]
fn write_golden_files() {
    let root = std::env::var("SEALKV_GOLDEN_DIR").expect("set SEALKV_GOLDEN_DIR");
    let root = golden_root().join(root);
    for (name, alg) in MODES {
        let dir = root.join(name);
        assert!(!dir.exists(), "{} exists", dir.display());
        write_one(&dir, alg);
        for lock in ["LOCK", "data.sealkv.lock"] {
            let _ = std::fs::remove_file(dir.join(lock));
        }
    }
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub(crate) fn contents(db: &Db) -> BTreeMap<Vec<u8>, Vec<u8>> {
    db.range::<&[u8]>(..)
        .unwrap()
        .filter(|r| !r.as_ref().is_ok_and(|(k, _)| k.starts_with(b"sealed/")))
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn golden_databases_of_an_older_format_are_refused_by_name() {
    for (set, found) in REFUSED_SETS {
        for (name, alg) in MODES {
            let golden = golden_root().join(set).join(name);
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("db");
            copy_dir(&golden, &dir);
            for read_only in [true, false] {
                match Db::open_with_config(config(&dir, alg).read_only(read_only)) {
                    Err(sealkv::Error::UnsupportedFormat {
                        found: f,
                        supported: 2,
                        ..
                    }) => assert_eq!(f, *found, "{set}/{name}"),
                    other => panic!("{set}/{name}: {:?}", other.map(|_| ())),
                }
            }
        }
    }
}

#[test]
fn every_golden_database_opens_verifies_and_reads_as_written() {
    let want = expected();
    for set in SETS {
        for (name, alg) in MODES {
            let golden = golden_root().join(set).join(name);
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("db");
            copy_dir(&golden, &dir);

            // Read-only first: changes nothing, reports what open repairs.
            let db = Db::open_with_config(config(&dir, alg).read_only(true)).unwrap();
            let report = db.verify().unwrap();
            assert!(report.is_clean(), "{set}/{name}: {:?}", report.findings);
            assert!(contents(&db) == want, "{set}/{name}: contents differ");
            assert_eq!(db.keyspaces().unwrap(), vec!["users".to_string()]);
            let users: BTreeMap<_, _> = db
                .keyspace("users")
                .unwrap()
                .iter()
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(users == users_expected(), "{set}/{name}: users differ");
            drop(db);

            let db = Db::open_with_config(config(&dir, alg)).unwrap();
            assert!(contents(&db) == want, "{set}/{name}: contents differ");
            if alg.is_some() {
                let sealed = db.get_sealed(b"sealed/one", None).unwrap();
                assert_eq!(sealed.as_deref(), Some(&b"a field-sealed value"[..]));
                assert_eq!(db.stats().unwrap().encryption.data_keys.len(), 2);
                // Old data under both keys re-encrypts into the new format.
                db.rotate_data_key().unwrap();
                let report = db
                    .reencrypt(&mut |_| std::ops::ControlFlow::Continue(()))
                    .unwrap();
                assert_eq!(report.retired.len(), 2, "{set}/{name}");
            }
            db.put(b"golden/new", b"written by this build").unwrap();
            db.close().unwrap();
            let db = Db::open_with_config(config(&dir, alg)).unwrap();
            assert_eq!(
                db.get(b"golden/new").unwrap().as_deref(),
                Some(&b"written by this build"[..])
            );
            assert!(db.verify().unwrap().is_clean());
        }
    }
}

/// Golden freshness anchor files (anchor format version 1), one without a
/// key and one authenticated under the golden master key.
const ANCHOR_SET: &str = "anchor1";

const ANCHOR_MODES: [(&str, Option<EncryptionAlgorithm>); 2] = [
    ("plaintext", None),
    ("aes-256-gcm", Some(EncryptionAlgorithm::Aes256Gcm)),
];

/// A copy of golden database `name` of the first set in a new temporary
/// directory: (the directory holding it, the database's path).
fn golden_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    copy_dir(&golden_root().join(SETS[0]).join(name), &dir);
    (tmp, dir)
}

/// Writes each golden anchor: a copy of the golden database opened with a
/// new anchor file, one write, a close; the anchor then records a state
/// newer than the committed database's.
#[test]
#[ignore = "writes the golden anchor files; run by hand after an anchor format change"]
fn write_golden_anchors() {
    let root = golden_root().join(ANCHOR_SET);
    std::fs::create_dir_all(&root).unwrap();
    for (name, alg) in ANCHOR_MODES {
        let target = root.join(format!("{name}.anchor"));
        assert!(!target.exists(), "{} exists", target.display());
        let (tmp, dir) = golden_copy(name);
        let anchor = tmp.path().join("db.anchor");
        let config = config(&dir, alg).freshness_anchor(Arc::new(FileAnchor::new(&anchor)));
        let db = Db::open_with_config(config).unwrap();
        db.put(b"golden/anchor", b"ahead of the golden database")
            .unwrap();
        db.close().unwrap();
        std::fs::copy(&anchor, &target).unwrap();
    }
}

/// Each golden anchor records a state newer than its golden database, so
/// opening that database with it is a `Rollback` naming the directory: the
/// file still parses and authenticates (an anchor this build could not
/// read would be `Anchor(Corrupt)` instead), and the check still holds.
#[test]
fn golden_anchor_files_still_authenticate_and_catch_the_older_directory() {
    for (name, alg) in ANCHOR_MODES {
        let (tmp, dir) = golden_copy(name);
        let anchor = tmp.path().join("db.anchor");
        std::fs::copy(
            golden_root()
                .join(ANCHOR_SET)
                .join(format!("{name}.anchor")),
            &anchor,
        )
        .unwrap();
        for read_only in [true, false] {
            let config = config(&dir, alg)
                .read_only(read_only)
                .freshness_anchor(Arc::new(FileAnchor::new(&anchor)));
            match Db::open_with_config(config) {
                Err(Error::Rollback { file, what }) if file == dir => {
                    assert!(what.contains("anchor"), "{name}: {what}");
                }
                other => panic!(
                    "{name} read_only={read_only}: {:?}",
                    other.map(|_| "opened")
                ),
            }
        }
    }
}
