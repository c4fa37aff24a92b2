//! A golden database whose key registry is wrapped (registry format 2 with
//! a wrapper section, KEK kind 3): written by an earlier build under a key
//! wrapper, committed under `tests/golden/`, opened and checked by every
//! later one, so the wrapper section's format is pinned. The wrapper is
//! the in-process [`SoftwareWrapper`] with a fixed test key (its unwrap is
//! deterministic; an HSM's would be the same bytes to the registry).
//!
//! To write it (only for a new set):
//! `cargo test -p sealkv --test it golden_wrapped::write_golden_wrapped_set -- --ignored`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv::crypto::registry::RegistryError;
use sealkv::crypto::{EncryptionAlgorithm, KeySource, MasterKey, SoftwareWrapper};
use sealkv::{Config, Db, Error, SyncMode};

use crate::golden::{contents, copy_dir, expected, golden_root, users_expected, write_with};

/// The committed set and its one database.
const SET: &str = "pagefile1-wal2-keys2-engine2-wrapped";
const NAME: &str = "software-wrapper";

/// The golden wrapper: key id `golden-wrapper`, key 32 bytes of `0x65`
/// (test data, not a secret).
fn wrapper(key_id: &str, byte: u8) -> KeySource {
    KeySource::Wrapper(Arc::new(SoftwareWrapper::new(
        key_id,
        MasterKey::from_bytes(&[byte; 32]).unwrap(),
    )))
}

fn golden_wrapper() -> KeySource {
    wrapper("golden-wrapper", 0x65)
}

fn config(dir: &Path, key: KeySource) -> Config {
    Config::new(dir)
        .sync_mode(SyncMode::Always)
        .key_source(key)
        .encryption_algorithm(EncryptionAlgorithm::Aes256Gcm)
}

fn golden_dir() -> PathBuf {
    golden_root().join(SET).join(NAME)
}

#[test]
#[ignore = "writes the golden wrapped set; run by hand for a new set only"]
fn write_golden_wrapped_set() {
    let dir = golden_dir();
    assert!(!dir.exists(), "{} exists", dir.display());
    write_with(config(&dir, golden_wrapper()), true);
    for lock in ["LOCK", "data.sealkv.lock"] {
        let _ = std::fs::remove_file(dir.join(lock));
    }
}

/// The committed registry's header records KEK kind 3 and the wrapper
/// section (kind `software`, key id `golden-wrapper`, a 60-byte wrapped
/// root key), byte for byte where docs/FORMAT.md puts them.
#[test]
fn the_golden_wrapped_registry_has_its_wrapper_section_where_the_format_says() {
    let keys = std::fs::read(golden_dir().join("KEYS")).unwrap();
    assert_eq!(&keys[0..8], b"SEALKEYS");
    assert_eq!(&keys[8..10], &[0, 2], "registry version 2");
    assert_eq!(keys[26], 3, "KEK kind 3: a key wrapper");
    assert!(keys[28..72].iter().all(|&b| b == 0), "no KDF salt or cost");
    let w = usize::from(u16::from_be_bytes([keys[90], keys[91]]));
    let section = &keys[92..92 + w];
    let kind_len = usize::from(section[0]);
    assert_eq!(&section[1..1 + kind_len], b"software");
    let id_at = 1 + kind_len;
    let id_len = usize::from(section[id_at]);
    assert_eq!(&section[id_at + 1..id_at + 1 + id_len], b"golden-wrapper");
    let wrapped_at = id_at + 1 + id_len;
    let wrapped_len = usize::from(u16::from_be_bytes([
        section[wrapped_at],
        section[wrapped_at + 1],
    ]));
    assert_eq!(wrapped_len, 60);
    assert_eq!(
        wrapped_at + 2 + wrapped_len,
        w,
        "the section's lengths add up"
    );
}

#[test]
fn the_golden_wrapped_database_opens_under_its_wrapper_and_no_other_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    copy_dir(&golden_dir(), &dir);
    let want = expected();

    // Another wrapping key under the same id, another id, a raw key: each
    // refused, nothing written.
    let before = std::fs::read(dir.join("KEYS")).unwrap();
    for (what, key) in [
        ("another key", wrapper("golden-wrapper", 0x66)),
        ("another id", wrapper("other", 0x65)),
    ] {
        match Db::open_with_config(config(&dir, key)) {
            Err(Error::WrongKey) => {}
            other => panic!("{what}: {:?}", other.map(|_| ())),
        }
    }
    let raw = KeySource::Key(MasterKey::from_bytes(&[0x65; 32]).unwrap());
    match Db::open_with_config(config(&dir, raw)) {
        Err(Error::Registry(RegistryError::KekKindMismatch { .. })) => {}
        other => panic!("a raw key: {:?}", other.map(|_| ())),
    }
    assert_eq!(std::fs::read(dir.join("KEYS")).unwrap(), before);

    let db = Db::open_with_config(config(&dir, golden_wrapper()).read_only(true)).unwrap();
    let report = db.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert!(contents(&db) == want, "contents differ");
    let users: std::collections::BTreeMap<_, _> = db
        .keyspace("users")
        .unwrap()
        .iter()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(users == users_expected(), "users differ");
    drop(db);

    let db = Db::open_with_config(config(&dir, golden_wrapper())).unwrap();
    assert_eq!(
        db.get_sealed(b"sealed/one", None).unwrap().as_deref(),
        Some(&b"a field-sealed value"[..])
    );
    assert_eq!(db.stats().unwrap().encryption.data_keys.len(), 2);
    db.rotate_data_key().unwrap();
    let report = db
        .reencrypt(&mut |_| std::ops::ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(report.retired.len(), 2);
    db.put(b"golden/new", b"written by this build").unwrap();
    db.close().unwrap();
    let db = Db::open_with_config(config(&dir, golden_wrapper())).unwrap();
    assert_eq!(
        db.get(b"golden/new").unwrap().as_deref(),
        Some(&b"written by this build"[..])
    );
    assert!(db.verify().unwrap().is_clean());
}
