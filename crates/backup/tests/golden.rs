//! Golden export archives: archives written by earlier builds and
//! committed under `tests/golden/archive<version>/` (version 1: records of
//! the default keyspace only; version 2: named keyspaces too; version 3:
//! also an archive sealed under a key wrapper, the in-process
//! [`SoftwareWrapper`] with a fixed test key, whose unwrap is deterministic). Every build
//! must still verify and import each of them into exactly the records they
//! were written from, so a format change can never orphan a user's
//! archives (bump the version and keep reading the old one, or fail with a
//! clear error). Write the missing archives of the current version only on
//! purpose, for a new format version:
//! `cargo test -p sealkv-backup --test golden write_golden -- --ignored`
//! (committed archives are never rewritten).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use sealkv::crypto::{
    EncryptionAlgorithm, KdfParams, KeySource, MasterKey, Passphrase, SoftwareWrapper,
};
use sealkv::{Config, Db};
use sealkv_backup::archive::{
    self, ArchiveError, ExportOptions, ImportOptions, KeyKind, Protection,
};

/// Each committed set: its directory, its format version, and whether it
/// holds named keyspaces.
const SETS: [(&str, u16, bool); 3] = [
    ("archive1", 1, false),
    ("archive2", 2, true),
    ("archive3", 3, true),
];

fn golden_dir(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(set)
}

/// The named keyspaces of a version-2 golden archive: `users` with some
/// records, `empty` with none.
fn keyspaces() -> BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>> {
    let users = (0..40u32)
        .map(|i| {
            (
                format!("user/{i:03}").into_bytes(),
                format!("name {i}").into_bytes(),
            )
        })
        .collect();
    BTreeMap::from([
        ("empty".to_string(), BTreeMap::new()),
        ("users".to_string(), users),
    ])
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

/// The key wrapper of the golden wrapped archive: the in-process test
/// wrapper under a fixed key (test data, not a secret).
fn wrapper() -> KeySource {
    KeySource::Wrapper(Arc::new(SoftwareWrapper::new(
        "golden",
        MasterKey::from_bytes(&[0x63; 32]).unwrap(),
    )))
}

/// (file, the key that opens it, the algorithm it was sealed with) of a
/// set of format `version`.
fn archives(version: u16) -> Vec<(&'static str, Option<KeySource>, EncryptionAlgorithm)> {
    use EncryptionAlgorithm::*;
    let mut all = vec![
        ("plaintext.skva", None, Aes256Gcm),
        ("aes-256-gcm.skva", Some(raw_key()), Aes256Gcm),
        ("passphrase.skva", Some(passphrase()), Aes256Gcm),
        ("chacha20-poly1305.skva", Some(raw_key()), ChaCha20Poly1305),
        ("aes-256-gcm-siv.skva", Some(raw_key()), Aes256GcmSiv),
    ];
    if version >= 3 {
        all.push(("software-wrapper.skva", Some(wrapper()), Aes256Gcm));
    }
    all
}

#[test]
fn every_golden_archive_verifies_and_imports_as_written() {
    let want = records();
    for (set, version, named) in SETS {
        let want_named = if named { keyspaces() } else { BTreeMap::new() };
        let want_records = want.len() + want_named.values().map(BTreeMap::len).sum::<usize>();
        for (file, key, _) in archives(version) {
            let path = golden_dir(set).join(file);
            let summary = archive::verify_archive(&path, key.as_ref(), &mut |_| {}).unwrap();
            assert_eq!(summary.records, want_records as u64, "{set}/{file}");
            assert_eq!(summary.header.version, version, "{set}/{file}");
            if matches!(key, Some(KeySource::Wrapper(_))) {
                assert!(
                    matches!(
                        &summary.header.protection,
                        Protection::Sealed { kind: KeyKind::Wrapped(w), .. }
                            if w.wrapper_kind == "software" && w.key_id == "golden"
                    ),
                    "{set}/{file}"
                );
            }
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
            assert_eq!(got, want, "{set}/{file}");
            let names = db.keyspaces().unwrap();
            assert_eq!(
                names,
                want_named.keys().cloned().collect::<Vec<_>>(),
                "{set}/{file}"
            );
            for (name, records) in &want_named {
                let got: BTreeMap<Vec<u8>, Vec<u8>> = db
                    .keyspace(name)
                    .unwrap()
                    .iter()
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(&got, records, "{set}/{file}: keyspace {name}");
            }
        }
    }
}

#[test]
fn a_golden_sealed_archive_refuses_a_wrong_key() {
    let wrong_key = KeySource::Key(MasterKey::from_bytes(&[0x62; 32]).unwrap());
    let wrong_wrapper = KeySource::Wrapper(Arc::new(SoftwareWrapper::new(
        "golden",
        MasterKey::from_bytes(&[0x64; 32]).unwrap(),
    )));
    for (set, version, _) in SETS {
        for (file, key, _) in archives(version) {
            if key.is_none() {
                continue;
            }
            let path = golden_dir(set).join(file);
            for wrong in [&wrong_key, &wrong_wrapper] {
                let e = archive::verify_archive(&path, Some(wrong), &mut |_| {}).unwrap_err();
                assert!(
                    matches!(e, ArchiveError::WrongKey { .. }),
                    "{set}/{file}: {e:?}"
                );
            }
        }
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
    for (name, records) in keyspaces() {
        let ks = db.keyspace(&name).unwrap();
        for (k, v) in records {
            ks.put(k, v).unwrap();
        }
    }
    let (set, version, _) = SETS[SETS.len() - 1];
    let dir = golden_dir(set);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, key, algorithm) in archives(version) {
        if dir.join(file).exists() {
            continue; // written by an earlier build: never rewritten
        }
        let options = match key {
            None => ExportOptions::plaintext_unencrypted(),
            Some(k) => ExportOptions::sealed(k).algorithm(algorithm),
        }
        .chunk_size(4096);
        archive::export(&db, &dir.join(file), &options, &mut |_| {}).unwrap();
    }
}
