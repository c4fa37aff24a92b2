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

use sealkv::anchor::{FileAnchor, FreshnessAnchor};
use sealkv::crypto::{EncryptionAlgorithm, KeyId, MasterKey};
use sealkv::{Config, Db, Error, SyncMode};

/// Each committed set this build reads.
const SETS: &[&str] = &[
    "pagefile1-wal2-keys1-engine2",
    "pagefile1-wal2-keys2-engine2",
    "pagefile1-wal2-keys2-engine3",
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
                        supported: 3,
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

/// Golden freshness anchor files: (set, the golden database set each was
/// written beside, anchor format version, commits this build's run makes
/// beyond the recorded one). Each set holds one anchor without a key and
/// one authenticated under the golden master key. A page file without a
/// lineage (engine meta version 2) gains one in a commit of its own at
/// this build's first writable open.
const ANCHOR_SETS: &[(&str, &str, u16, u64)] = &[
    ("anchor1", "pagefile1-wal2-keys1-engine2", 1, 1),
    ("anchor2", "pagefile1-wal2-keys2-engine3", 2, 0),
];

const ANCHOR_MODES: [(&str, Option<EncryptionAlgorithm>); 2] = [
    ("plaintext", None),
    ("aes-256-gcm", Some(EncryptionAlgorithm::Aes256Gcm)),
];

/// A copy of golden database `name` of `set` in a new temporary
/// directory: (the directory holding it, the database's path).
fn golden_copy(set: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    copy_dir(&golden_root().join(set).join(name), &dir);
    (tmp, dir)
}

/// Runs what each golden anchor was written by: a copy of golden database
/// `name` of `set` opened with a new anchor file `anchor`, one write, a
/// close. The anchor then records a state newer than the golden
/// database's. Returns the copy's `KEYS` afterwards (none without a key).
fn anchor_one_write_ahead(
    set: &str,
    name: &str,
    alg: Option<EncryptionAlgorithm>,
    anchor: &Path,
) -> Option<Vec<u8>> {
    let (_tmp, dir) = golden_copy(set, name);
    let config = config(&dir, alg).freshness_anchor(Arc::new(FileAnchor::new(anchor)));
    let db = Db::open_with_config(config).unwrap();
    db.put(b"golden/anchor", b"ahead of the golden database")
        .unwrap();
    db.close().unwrap();
    std::fs::read(dir.join("KEYS")).ok()
}

/// Writes the newest set of golden anchors (see [`anchor_one_write_ahead`]).
#[test]
#[ignore = "writes the golden anchor files; run by hand after an anchor format change"]
fn write_golden_anchors() {
    let (set, db_set, _, _) = ANCHOR_SETS[ANCHOR_SETS.len() - 1];
    let root = golden_root().join(set);
    std::fs::create_dir_all(&root).unwrap();
    for (name, alg) in ANCHOR_MODES {
        let target = root.join(format!("{name}.anchor"));
        assert!(!target.exists(), "{} exists", target.display());
        let tmp = tempfile::tempdir().unwrap();
        let anchor = tmp.path().join("db.anchor");
        anchor_one_write_ahead(db_set, name, alg, &anchor);
        std::fs::copy(&anchor, &target).unwrap();
    }
}

/// The newest slot of an anchor file, decoded by hand from the layout in
/// docs/FORMAT.md ("Freshness anchor file"): (version, db id, commit,
/// registry generation, registry hash, meta tag, lineage).
#[derive(Debug, PartialEq, Eq)]
struct AnchorSlot {
    version: u16,
    db_id: [u8; 16],
    commit: u64,
    registry_generation: u64,
    registry_hash: [u8; 32],
    meta_tag: [u8; 16],
    lineage: [u8; 16],
    tags: u16,
}

fn newest_anchor_slot(path: &Path) -> AnchorSlot {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len(), 1024, "{}", path.display());
    let slot = bytes
        .chunks_exact(512)
        .filter(|s| &s[..8] == b"SKVANCHR")
        .max_by_key(|s| u64::from_be_bytes(s[48..56].try_into().unwrap()))
        .unwrap();
    let version = u16::from_be_bytes(slot[8..10].try_into().unwrap());
    AnchorSlot {
        version,
        db_id: slot[16..32].try_into().unwrap(),
        commit: u64::from_be_bytes(slot[32..40].try_into().unwrap()),
        registry_generation: u64::from_be_bytes(slot[40..48].try_into().unwrap()),
        registry_hash: slot[56..88].try_into().unwrap(),
        meta_tag: slot[88..104].try_into().unwrap(),
        lineage: if version >= 2 {
            slot[104..120].try_into().unwrap()
        } else {
            [0; 16]
        },
        tags: u16::from_be_bytes(slot[10..12].try_into().unwrap()),
    }
}

/// Each golden anchor records a state newer than its golden database, so
/// opening that database with it is a `Rollback` naming the directory: the
/// file still parses and authenticates (an anchor this build could not
/// read would be `Anchor(Corrupt)` instead), and the check still holds.
/// Its fields are what the same run records today: the database, the
/// commit, the registry's generation and hash (the SHA-256 trailer of
/// `KEYS`), a meta tag, and (from version 2) the lineage of the golden
/// database's page file.
#[test]
fn golden_anchor_files_still_authenticate_and_catch_the_older_directory() {
    for &(set, db_set, version, extra) in ANCHOR_SETS {
        for (name, alg) in ANCHOR_MODES {
            let what = format!("{set}/{name}");
            let golden = golden_root().join(set).join(format!("{name}.anchor"));
            let recorded = newest_anchor_slot(&golden);
            let tmp = tempfile::tempdir().unwrap();
            let fresh_anchor = tmp.path().join("fresh.anchor");
            let keys_after = anchor_one_write_ahead(db_set, name, alg, &fresh_anchor);
            let fresh = newest_anchor_slot(&fresh_anchor);
            assert_eq!(recorded.version, version, "{what}");
            assert_eq!(recorded.tags, u16::from(alg.is_some()), "{what}");
            assert_eq!(recorded.db_id, fresh.db_id, "{what}");
            assert_eq!(recorded.commit + extra, fresh.commit, "{what}");
            assert_eq!(
                recorded.registry_generation, fresh.registry_generation,
                "{what}"
            );
            assert_eq!(recorded.registry_hash, fresh.registry_hash, "{what}");
            match alg {
                Some(_) => {
                    assert!(recorded.registry_generation > 1, "{what}");
                    let keys = keys_after.unwrap();
                    assert_eq!(
                        recorded.registry_hash[..],
                        keys[keys.len() - 32..],
                        "{what}"
                    );
                }
                None => {
                    assert_eq!(recorded.registry_generation, 0, "{what}");
                    assert_eq!(recorded.registry_hash, [0; 32], "{what}");
                }
            }
            assert_ne!(recorded.meta_tag, [0; 16], "{what}: no meta tag recorded");
            if version >= 2 {
                assert_ne!(recorded.lineage, [0; 16], "{what}: no lineage recorded");
                assert_eq!(recorded.lineage, fresh.lineage, "{what}");
            } else {
                assert_eq!(recorded.lineage, [0; 16], "{what}");
            }
            // The library reads a key-less one as the same fields.
            if alg.is_none() {
                let state = FileAnchor::new(&golden)
                    .load(&sealkv::anchor::AnchorKeys::none())
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    (
                        *state.db_id.as_bytes(),
                        state.commit,
                        state.registry_generation,
                        state.registry_hash,
                        state.meta_tag,
                        state.lineage
                    ),
                    (
                        recorded.db_id,
                        recorded.commit,
                        recorded.registry_generation,
                        recorded.registry_hash,
                        recorded.meta_tag,
                        recorded.lineage
                    ),
                    "{what}"
                );
            }

            let (tmp, dir) = golden_copy(db_set, name);
            let anchor = tmp.path().join("db.anchor");
            std::fs::copy(&golden, &anchor).unwrap();
            for read_only in [true, false] {
                let config = config(&dir, alg)
                    .read_only(read_only)
                    .freshness_anchor(Arc::new(FileAnchor::new(&anchor)));
                match Db::open_with_config(config) {
                    Err(Error::Rollback { file, what: why }) if file == dir => {
                        assert!(why.contains("anchor"), "{what}: {why}");
                    }
                    other => panic!(
                        "{what} read_only={read_only}: {:?}",
                        other.map(|_| "opened")
                    ),
                }
            }
        }
    }
}

/// A page file of engine meta version 2 (no lineage) put back where a
/// database whose anchor records a lineage was: `Rollback` saying the page
/// file records no line of commits, read-only or not, and the page file is
/// left as it was (the writable open draws no lineage for it first). The
/// anchored database is the same golden copy after this build's first
/// writable open (which drew its lineage), so only the put-back older
/// format tells them apart.
#[test]
fn a_version_2_page_file_put_back_under_an_anchor_with_a_lineage_is_a_rollback() {
    for (name, alg) in ANCHOR_MODES {
        let (tmp, dir) = golden_copy("pagefile1-wal2-keys2-engine2", name);
        let original = tmp.path().join("original");
        copy_dir(&dir, &original);
        let anchor = tmp.path().join("db.anchor");
        let anchored = |read_only: bool| {
            config(&dir, alg)
                .read_only(read_only)
                .freshness_anchor(Arc::new(FileAnchor::new(&anchor)))
        };
        let db = Db::open_with_config(anchored(false)).unwrap();
        db.close().unwrap();
        let recorded = newest_anchor_slot(&anchor);
        assert_ne!(recorded.lineage, [0; 16], "{name}: no lineage recorded");
        std::fs::remove_dir_all(&dir).unwrap();
        copy_dir(&original, &dir);
        let before = std::fs::read(dir.join("data.sealkv")).unwrap();
        for read_only in [true, false] {
            match Db::open_with_config(anchored(read_only)) {
                Err(Error::Rollback { file, what }) if file == dir => {
                    assert!(what.contains("written before lineages"), "{name}: {what}");
                }
                other => panic!(
                    "{name} read_only={read_only}: {:?}",
                    other.map(|_| "opened")
                ),
            }
            assert!(
                std::fs::read(dir.join("data.sealkv")).unwrap() == before,
                "{name}: the refused open wrote to the page file"
            );
        }
    }
}

/// Field-sealed values of format 2, sealed once by `Db::seal_field` under
/// field key 3 of each sealed database of [`FIELD_VECTOR_SET`] for
/// [`FIELD_VECTOR_CONTEXT`], and pinned: a later build must open them as
/// it opens the format-1 value the set holds (`sealed/one`).
const FIELD_VECTORS: [(&str, Option<EncryptionAlgorithm>, &str); 2] = [
    (
        "aes-256-gcm",
        Some(EncryptionAlgorithm::Aes256Gcm),
        concat!(
            "f201010003000000",
            "d2d6b8dea6bc8f31cc18ce1fd3c00ee5db85bfc7a90749dcae02f1e5825f304a",
            "00000000",
            "f797103b6f9974f6cb2cb289883d6324ee7b3f4a8f850c4585001b54f6164f878e24df06309f",
        ),
    ),
    (
        "chacha20-poly1305",
        Some(EncryptionAlgorithm::ChaCha20Poly1305),
        concat!(
            "f201020003000000",
            "4c0d3ea83de157427bef0d75d85062e757cce922e3800c9c5aa1045c9f590cec",
            "00000000",
            "8db65799a5e6dcf70f42d6930153a76fdf1fea8fed70141a1258564e152c36041545b0eb7b17",
        ),
    ),
];

#[test]
fn golden_field_values_of_format_1_and_2_open() {
    for (name, alg, vector) in FIELD_VECTORS {
        let (_tmp, dir) = golden_copy(FIELD_VECTOR_SET, name);
        let db = Db::open_with_config(config(&dir, alg).read_only(true)).unwrap();
        let v1 = db.get(b"sealed/one").unwrap().unwrap();
        assert_eq!(v1[0], 0xF1, "{name}: the set holds a format-1 value");
        assert_eq!(
            db.open_field(b"sealed/one", &v1).unwrap(),
            b"a field-sealed value"
        );
        let v2 = from_hex(vector);
        assert_eq!(v2[0], 0xF2);
        assert_eq!(
            db.open_field(FIELD_VECTOR_CONTEXT, &v2).unwrap(),
            FIELD_VECTOR_VALUE,
            "{name}"
        );
        // This build writes format 2 under the same key, and it opens.
        let fresh = db
            .seal_field(KeyId(3), FIELD_VECTOR_CONTEXT, FIELD_VECTOR_VALUE)
            .unwrap();
        assert_eq!((fresh[0], fresh.len()), (0xF2, v2.len()));
        assert_eq!(
            db.open_field(FIELD_VECTOR_CONTEXT, &fresh).unwrap(),
            FIELD_VECTOR_VALUE
        );
    }
}

/// The golden set whose field key 3 seals the pinned format-2 values.
const FIELD_VECTOR_SET: &str = "pagefile1-wal2-keys2-engine3";
const FIELD_VECTOR_CONTEXT: &[u8] = b"golden/field-format-2";
const FIELD_VECTOR_VALUE: &[u8] = b"a format-2 field value";

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
