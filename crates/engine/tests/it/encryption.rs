//! Encryption at rest end to end: nothing readable on disk, the right error
//! for every wrong key, tampering never returns wrong data.

use std::path::Path;

use sealkv::crypto::EncryptionAlgorithm;
use sealkv::{Db, Error};
use sealkv_fileio::SimVfs;
use sealkv_testkit::{Canaries, read_sim_tree, scan_for_plaintext};

use crate::support::{dir, key, modes, sim_config};

fn fill(db: &Db, canaries: &Canaries) {
    for i in 0..canaries.len() {
        db.put(canaries.key(i), canaries.value(i)).unwrap();
    }
}

#[test]
fn no_canary_reaches_the_disk_after_writes_flush_and_reopen() {
    for alg in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let canaries = Canaries::new(300);
        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        fill(&db, &canaries);
        // Some in the page file, some only in the WAL.
        db.flush().unwrap();
        for i in 0..50 {
            db.put(canaries.key(i), canaries.value(i + 50)).unwrap();
        }
        let leaks = scan_for_plaintext(&read_sim_tree(&vfs, &dir()), &canaries);
        assert!(leaks.is_empty(), "{alg}: {leaks:?}");
        db.close().unwrap();
        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        assert_eq!(
            db.get(canaries.key(3)).unwrap().as_deref(),
            Some(canaries.value(53))
        );
        db.put(b"after-reopen", canaries.value(1)).unwrap();
        db.close().unwrap();
        let leaks = scan_for_plaintext(&read_sim_tree(&vfs, &dir()), &canaries);
        assert!(leaks.is_empty(), "{alg}: {leaks:?}");
    }
}

#[test]
fn plaintext_mode_does_write_the_canaries() {
    // The scan itself must be able to fail.
    let vfs = SimVfs::new();
    let canaries = Canaries::new(20);
    let db = Db::open_with_config(sim_config(&vfs, None)).unwrap();
    fill(&db, &canaries);
    db.close().unwrap();
    assert!(!scan_for_plaintext(&read_sim_tree(&vfs, &dir()), &canaries).is_empty());
}

#[test]
fn every_wrong_key_gets_its_own_error() {
    for alg in EncryptionAlgorithm::ALL {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, Some(alg))).unwrap();
        db.put(b"k", b"v").unwrap();
        db.close().unwrap();
        let plain = || sim_config(&vfs, None);
        assert!(matches!(
            Db::open_with_config(plain()),
            Err(Error::EncryptedDatabase)
        ));
        assert!(matches!(
            Db::open_with_config(plain().encryption_key(key(8))),
            Err(Error::WrongKey)
        ));
        let other = EncryptionAlgorithm::ALL
            .into_iter()
            .find(|a| *a != alg)
            .unwrap();
        assert!(matches!(
            Db::open_with_config(plain().encryption_key(key(7)).encryption_algorithm(other)),
            Err(Error::AlgorithmMismatch { .. })
        ));
        let db = Db::open_with_config(plain().encryption_key(key(7))).unwrap();
        assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }
}

#[test]
fn a_plaintext_database_refuses_to_be_opened_as_encrypted() {
    let vfs = SimVfs::new();
    Db::open_with_config(sim_config(&vfs, None))
        .unwrap()
        .close()
        .unwrap();
    let err =
        Db::open_with_config(sim_config(&vfs, Some(EncryptionAlgorithm::Aes256Gcm))).unwrap_err();
    assert!(matches!(err, Error::PlaintextDatabase { .. }));
    assert!(
        err.to_string().contains("export"),
        "names the migration: {err}"
    );
}

#[test]
fn a_flipped_byte_anywhere_never_returns_wrong_data() {
    for mode in modes() {
        let alg = mode;
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = (0..200u32)
            .map(|i| (format!("key{i:05}").into_bytes(), vec![i as u8; 40]))
            .collect();
        for (k, v) in &expected[..150] {
            db.put(k, v).unwrap();
        }
        db.flush().unwrap();
        for (k, v) in &expected[150..] {
            db.put(k, v).unwrap();
        }
        db.close().unwrap();
        let pristine = vfs.clone();
        let files: Vec<_> = read_sim_tree(&pristine, &dir());
        let mut checked = 0;
        for (name, bytes) in &files {
            if name.ends_with("LOCK") || bytes.is_empty() {
                continue;
            }
            // About 80 offsets per file, spread over all of it.
            let step = (bytes.len() / 80).max(1);
            for offset in (0..bytes.len()).step_by(step) {
                let vfs = SimVfs::new();
                for (n, b) in &files {
                    vfs.write_file(Path::new(n), b);
                }
                let mut damaged = bytes.clone();
                damaged[offset] ^= 0x10;
                vfs.write_file(Path::new(name), &damaged);
                let Ok(db) = Db::open_with_config(sim_config(&vfs, alg)) else {
                    checked += 1;
                    continue;
                };
                for (k, v) in &expected {
                    match db.get(k) {
                        Ok(Some(got)) => assert_eq!(&got, v, "{name}@{offset}: wrong data"),
                        Ok(None) => {
                            // Only a cut WAL tail may lose the newest records.
                            assert!(name.contains("wal"), "{name}@{offset}: lost {k:?}");
                        }
                        Err(_) => {}
                    }
                }
                checked += 1;
            }
        }
        assert!(checked > 20, "{checked}");
    }
}
