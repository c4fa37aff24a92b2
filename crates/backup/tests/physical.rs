//! Restoring physical backups: round trips in every mode, refusals (wrong
//! key, existing destination, damage) that write nothing, and no (key,
//! nonce) shared between a restored database and its original.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use sealkv::crypto::{EncryptionAlgorithm, MasterKey};
use sealkv::{Config, Db, Error};
use sealkv_backup::{RestoreError, RestoreOptions, restore, verify_backup};
use sealkv_testkit::{Canaries, read_tree, scan_for_plaintext};

fn key(byte: u8) -> MasterKey {
    MasterKey::from_bytes(&[byte; 32]).unwrap()
}

fn modes() -> Vec<Option<EncryptionAlgorithm>> {
    let mut m = vec![None];
    m.extend(EncryptionAlgorithm::ALL.map(Some));
    m
}

fn config(path: &Path, alg: Option<EncryptionAlgorithm>) -> Config {
    let c = Config::new(path).memtable_size(64 << 10);
    match alg {
        Some(alg) => c.encryption_key(key(7)).encryption_algorithm(alg),
        None => c,
    }
}

fn contents(db: &Db) -> BTreeMap<Vec<u8>, Vec<u8>> {
    db.range::<&[u8]>(..)
        .unwrap()
        .collect::<Result<BTreeMap<_, _>, _>>()
        .unwrap()
}

/// A live database with some history (overwrites, deletes, flushes) and
/// its backup.
fn live_and_backup(
    root: &Path,
    alg: Option<EncryptionAlgorithm>,
) -> (Db, BTreeMap<Vec<u8>, Vec<u8>>) {
    let db = Db::open_with_config(config(&root.join("live"), alg)).unwrap();
    for i in 0..2000u32 {
        db.put(format!("k{:05}", i % 1500), format!("v{i}").repeat(3))
            .unwrap();
        if i % 7 == 0 {
            db.delete(format!("k{:05}", i / 2)).unwrap();
        }
    }
    db.put(b"big", vec![0xAB; 20_000]).unwrap();
    let at_backup = contents(&db);
    db.backup_to(&root.join("backup"), &mut |_| {}).unwrap();
    (db, at_backup)
}

#[test]
fn a_restored_backup_holds_the_backup_and_writes_on_in_every_mode() {
    for alg in modes() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let (db, at_backup) = live_and_backup(root, alg);
        db.put(b"after", b"the backup").unwrap();

        let summary = verify_backup(&config(&root.join("backup"), alg)).unwrap();
        assert_eq!(summary.entries, at_backup.len() as u64);
        assert_eq!(summary.encrypted, alg.is_some());

        let dest = root.join("restored");
        let mut calls = 0;
        let report = restore(
            &config(&root.join("backup"), alg),
            &dest,
            &RestoreOptions::new(),
            &mut |_| calls += 1,
        )
        .unwrap();
        assert!(calls >= 1);
        assert_eq!(report.rotated_to.is_some(), alg.is_some());
        let restored = Db::open_with_config(config(&dest, alg)).unwrap();
        assert_eq!(contents(&restored), at_backup, "{alg:?}");
        assert!(restored.verify().unwrap().is_clean());
        restored.put(b"restored", b"writes").unwrap();
        restored.close().unwrap();
        // The backup itself still verifies (restore never writes to it).
        verify_backup(&config(&root.join("backup"), alg)).unwrap();
        db.close().unwrap();
    }
}

#[test]
fn an_encrypted_restore_holds_no_plaintext() {
    let canaries = Canaries::new(300);
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let alg = Some(EncryptionAlgorithm::ChaCha20Poly1305);
    let db = Db::open_with_config(config(&root.join("live"), alg)).unwrap();
    for i in 0..canaries.len() {
        db.put(canaries.key(i), canaries.value(i)).unwrap();
    }
    db.backup_to(&root.join("backup"), &mut |_| {}).unwrap();
    let dest = root.join("restored");
    restore(
        &config(&root.join("backup"), alg),
        &dest,
        &RestoreOptions::new(),
        &mut |_| {},
    )
    .unwrap();
    for dir in [root.join("backup"), dest] {
        let leaks = scan_for_plaintext(&read_tree(&dir), &canaries);
        assert!(leaks.is_empty(), "{}: {leaks:?}", dir.display());
    }
}

#[test]
fn wrong_or_missing_key_and_an_existing_destination_are_refused_and_write_nothing() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let alg = Some(EncryptionAlgorithm::Aes256Gcm);
    let (_db, _) = live_and_backup(root, alg);
    let backup = root.join("backup");
    let dest = root.join("restored");

    let wrong = Config::new(&backup).encryption_key(key(8));
    let err = restore(&wrong, &dest, &RestoreOptions::new(), &mut |_| {}).unwrap_err();
    assert!(matches!(err, RestoreError::Db(Error::WrongKey)), "{err:?}");
    let err = restore(
        &Config::new(&backup),
        &dest,
        &RestoreOptions::new(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, RestoreError::Db(Error::EncryptedDatabase)),
        "{err:?}"
    );
    assert!(matches!(
        verify_backup(&wrong),
        Err(RestoreError::Db(Error::WrongKey))
    ));
    assert!(!dest.exists());

    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("mine"), b"keep").unwrap();
    let err = restore(
        &config(&backup, alg),
        &dest,
        &RestoreOptions::new(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(&err, RestoreError::Db(Error::DestinationExists { path }) if path == &dest),
        "{err:?}"
    );
    assert_eq!(std::fs::read(dest.join("mine")).unwrap(), b"keep");

    // Asked to replace, it does.
    restore(
        &config(&backup, alg),
        &dest,
        &RestoreOptions::new().replace_existing(true),
        &mut |_| {},
    )
    .unwrap();
    assert!(!dest.join("mine").exists());
    Db::open_with_config(config(&dest, alg)).unwrap();
}

#[test]
fn a_damaged_backup_is_refused_and_nothing_is_restored() {
    for alg in [None, Some(EncryptionAlgorithm::Aes256Gcm)] {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let (_db, _) = live_and_backup(root, alg);
        let data = root.join("backup").join("data.sealkv");
        let mut bytes = std::fs::read(&data).unwrap();
        // Flip a byte in the body of every non-zero data page: whichever
        // is reachable, the check finds it.
        let p = 4096;
        for page in 3..bytes.len() / p {
            let body = &mut bytes[page * p..(page + 1) * p];
            if body.iter().any(|&b| b != 0) {
                body[100] ^= 0x20;
            }
        }
        std::fs::write(&data, &bytes).unwrap();
        let dest = root.join("restored");
        let err = restore(
            &config(&root.join("backup"), alg),
            &dest,
            &RestoreOptions::new(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(
                &err,
                RestoreError::Damaged { .. } | RestoreError::Db(Error::Corruption { .. })
            ),
            "{alg:?}: {err:?}"
        );
        assert!(!dest.exists());
        let left: Vec<_> = std::fs::read_dir(root).unwrap().collect();
        assert_eq!(left.len(), 2, "only live/ and backup/ remain");
    }
}

/// Every sealed unit's (data key id, session salt, counter, domain) in a
/// page file, with the unit's bytes.
fn page_nonces(path: &Path) -> HashMap<(u32, [u8; 32], u64, bool), Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let p = 4096;
    let mut out = HashMap::new();
    for (n, page) in bytes.chunks_exact(p).enumerate().skip(1) {
        if page.iter().all(|&b| b == 0) {
            continue;
        }
        let dek = u32::from_be_bytes(page[4..8].try_into().unwrap());
        let counter = u64::from_be_bytes(page[8..16].try_into().unwrap());
        let salt: [u8; 32] = page[16..48].try_into().unwrap();
        let meta = page[0] == 1;
        let prev = out.insert((dek, salt, counter, meta), page.to_vec());
        assert!(
            prev.is_none(),
            "{}: page {n} repeats a nonce",
            path.display()
        );
    }
    out
}

/// The session salts of a database's WAL segments.
fn wal_salts(dir: &Path) -> HashSet<[u8; 32]> {
    std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .filter(|b| b.len() >= 128)
        .map(|b| b[64..96].try_into().unwrap())
        .collect()
}

#[test]
fn a_restored_backup_and_its_original_both_writing_never_share_a_key_and_nonce() {
    for alg in EncryptionAlgorithm::ALL {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let (db, _) = live_and_backup(root, Some(alg));
        let dest = root.join("restored");
        let report = restore(
            &config(&root.join("backup"), Some(alg)),
            &dest,
            &RestoreOptions::new(),
            &mut |_| {},
        )
        .unwrap();
        let restored = Db::open_with_config(config(&dest, Some(alg))).unwrap();
        let original_key = db.stats().unwrap().encryption.active_key;
        let restored_key = restored.stats().unwrap().encryption.active_key;
        assert_eq!(restored_key, report.rotated_to);
        assert_ne!(restored_key, original_key);
        // Both write the same records, flush, reopen and write again.
        for round in 0..2 {
            for i in 0..1500u32 {
                let (k, v) = (format!("k{i:05}"), format!("round {round} {i}"));
                db.put(&k, &v).unwrap();
                restored.put(&k, &v).unwrap();
            }
            db.flush().unwrap();
            restored.flush().unwrap();
        }
        db.close().unwrap();
        restored.close().unwrap();
        let restored = Db::open_with_config(config(&dest, Some(alg))).unwrap();
        restored.put(b"again", b"1").unwrap();
        restored.close().unwrap();

        let a = page_nonces(&root.join("live").join("data.sealkv"));
        let b = page_nonces(&dest.join("data.sealkv"));
        assert!(a.len() > 10 && b.len() > 10);
        let mut shared = 0;
        for (nonce, bytes) in &b {
            if let Some(other) = a.get(nonce) {
                // The same unit copied is fine; another one under the same
                // (key, nonce) is a reuse.
                assert_eq!(other, bytes, "{alg:?}: (key, nonce) {nonce:?} sealed twice");
                shared += 1;
            }
        }
        // Most of the original's pages were rewritten on both sides.
        assert!(shared < b.len());
        let (wa, wb) = (wal_salts(&root.join("live")), wal_salts(&dest));
        assert!(!wa.is_empty() && !wb.is_empty());
        assert!(
            wa.is_disjoint(&wb),
            "{alg:?}: a WAL session salt on both sides"
        );
    }
}

/// A restore is a database of its own: put where the live database was
/// and opened with the live database's freshness anchor, it is `Rollback`
/// (another line of commits), however far its own commits went; with an
/// anchor of its own it opens and is anchored like any database.
#[test]
fn a_restored_copy_is_its_own_line_of_commits_for_a_freshness_anchor() {
    use std::sync::Arc;

    use sealkv::anchor::FileAnchor;

    for alg in [None, Some(EncryptionAlgorithm::ChaCha20Poly1305)] {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("live");
        let backup = tmp.path().join("backup");
        let restored = tmp.path().join("restored");
        let anchor = tmp.path().join("live.anchor");
        let anchored = |dir: &Path, anchor: &Path| {
            config(dir, alg).freshness_anchor(Arc::new(FileAnchor::new(anchor)))
        };
        let db = Db::open_with_config(anchored(&live, &anchor)).unwrap();
        db.put(b"k", b"1").unwrap();
        db.backup_to(&backup, &mut |_| {}).unwrap();
        db.close().unwrap();
        restore(
            &config(&backup, alg),
            &restored,
            &RestoreOptions::new(),
            &mut |_| {},
        )
        .unwrap();
        // The restored copy moves on, well past the live commit number.
        let db = Db::open_with_config(config(&restored, alg)).unwrap();
        for i in 0..5u8 {
            db.put(b"k", [i]).unwrap();
            db.flush().unwrap();
        }
        db.close().unwrap();
        std::fs::remove_dir_all(&live).unwrap();
        std::fs::rename(&restored, &live).unwrap();
        match Db::open_with_config(anchored(&live, &anchor)) {
            Err(Error::Rollback { what, .. }) => {
                assert!(what.contains("another copy"), "{alg:?}: {what}");
            }
            other => panic!("{alg:?}: {:?}", other.map(|_| "opened")),
        }
        // Anchored on its own, it opens.
        let own = tmp.path().join("restored.anchor");
        let db = Db::open_with_config(anchored(&live, &own)).unwrap();
        assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&[4u8][..]));
        db.close().unwrap();
        Db::open_with_config(anchored(&live, &own))
            .unwrap()
            .close()
            .unwrap();
    }
}
