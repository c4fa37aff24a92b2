//! Golden export archives: archives of format version 1 written by an
//! earlier build and committed under `tests/golden/archive1/`. Every build
//! must still verify and import each of them into exactly the records they
//! were written from, so a format change can never orphan a user's
//! archives (bump the version and keep reading the old one, or fail with a
//! clear error). Regenerate only on purpose, for a new format version:
//! `cargo test -p sealkv-backup --test golden write_golden -- --ignored`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sealkv::crypto::{EncryptionAlgorithm, KdfParams, KeySource, MasterKey, Passphrase};
use sealkv::{Config, Db};
use sealkv_backup::archive::{self, ArchiveError, ExportOptions, ImportOptions};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/archive1")
}

/// The records every golden archive holds: inline and large values, an
/// empty value and an empty-ish binary key.
fn records() -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for i in 0..300u32 {
        m.insert(
            format!("key-{i:05}").into_bytes(),
            format!("value {i} ")
                .repeat(i as usize % 7 + 1)
                .into_bytes(),
        );
    }
    m.insert(b"big".to_vec(), vec![0xab; 20_000]);
    m.insert(b"empty".to_vec(), Vec::new());
    m.insert(vec![0], vec![1, 2, 3]);
    m
}

fn raw_key() -> KeySource {
    KeySource::Key(MasterKey::from_bytes(&[0x61; 32]).unwrap())
}

fn passphrase() -> KeySource {
    KeySource::Passphrase {
        passphrase: Passphrase::new("golden archive passphrase").unwrap(),
        params: KdfParams::FLOOR,
    }
}

/// (file, the key that opens it, the algorithm it was sealed with).
fn archives() -> Vec<(&'static str, Option<KeySource>, EncryptionAlgorithm)> {
    use EncryptionAlgorithm::*;
    vec![
        ("plaintext.skva", None, Aes256Gcm),
        ("aes-256-gcm.skva", Some(raw_key()), Aes256Gcm),
        ("passphrase.skva", Some(passphrase()), Aes256Gcm),
        ("chacha20-poly1305.skva", Some(raw_key()), ChaCha20Poly1305),
        ("aes-256-gcm-siv.skva", Some(raw_key()), Aes256GcmSiv),
    ]
}

#[test]
fn every_golden_archive_verifies_and_imports_as_written() {
    let want = records();
    for (file, key, _) in archives() {
        let path = golden_dir().join(file);
        let summary = archive::verify_archive(&path, key.as_ref(), &mut |_| {}).unwrap();
        assert_eq!(summary.records, want.len() as u64, "{file}");
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("imported");
        archive::import(
            &path,
            key.as_ref(),
            &dest,
            &|p: &Path| Config::new(p),
            &ImportOptions::new(),
            &mut |_| {},
        )
        .unwrap();
        let db = Db::open_with_config(Config::new(&dest)).unwrap();
        let got: BTreeMap<Vec<u8>, Vec<u8>> = db
            .range::<&[u8]>(..)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, want, "{file}");
    }
}

#[test]
fn a_golden_sealed_archive_refuses_a_wrong_key() {
    let wrong = KeySource::Key(MasterKey::from_bytes(&[0x62; 32]).unwrap());
    for (file, key, _) in archives() {
        if key.is_none() {
            continue;
        }
        let path = golden_dir().join(file);
        let e = archive::verify_archive(&path, Some(&wrong), &mut |_| {}).unwrap_err();
        assert!(matches!(e, ArchiveError::WrongKey { .. }), "{file}: {e:?}");
    }
}

#[test]
#[ignore = "writes the golden archives that are missing: only for a new format version or case"]
fn write_golden() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with_config(Config::new(dir.path().join("db"))).unwrap();
    for (k, v) in records() {
        db.put(k, v).unwrap();
    }
    std::fs::create_dir_all(golden_dir()).unwrap();
    for (file, key, algorithm) in archives() {
        if golden_dir().join(file).exists() {
            continue; // written by an earlier build: never rewritten
        }
        let options = match key {
            None => ExportOptions::plaintext_unencrypted(),
            Some(k) => ExportOptions::sealed(k).algorithm(algorithm),
        }
        .chunk_size(4096);
        archive::export(&db, &golden_dir().join(file), &options, &mut |_| {}).unwrap();
    }
}
