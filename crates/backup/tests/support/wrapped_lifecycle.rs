//! The life of a database whose master key is a [`KeyWrapper`]: create,
//! write, reopen, verify, rotate, re-encrypt, back up and restore, export
//! and import (an archive sealed under the wrapper itself, and one under a
//! separate key), rekey to another wrapping key and back to a raw key. Shared
//! by the in-process wrapper's test and the PKCS#11 token's test, so both
//! prove the same things.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use sealkv::crypto::registry::KekKind;
use sealkv::crypto::{KeySource, KeyWrapper, MasterKey};
use sealkv::{Config, Db, Error, SyncMode};
use sealkv_backup::archive::{
    ArchiveError, ExportOptions, ImportOptions, KeyKind, Protection, export, import, verify_archive,
};
use sealkv_backup::{RestoreOptions, restore, verify_backup};

fn config(dir: &Path, key: &KeySource) -> Config {
    Config::new(dir)
        .sync_mode(SyncMode::Always)
        .key_source(key.clone())
}

fn contents(db: &Db) -> BTreeMap<Vec<u8>, Vec<u8>> {
    db.range::<&[u8]>(..)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Runs the whole life under `wrapper`; `other` is a second wrapping key
/// (the rekey target) and `wrong` a wrapper that must be refused as the
/// wrong key (another key label, another token).
pub(crate) fn run(
    root: &Path,
    wrapper: Arc<dyn KeyWrapper>,
    other: Arc<dyn KeyWrapper>,
    wrong: Arc<dyn KeyWrapper>,
) {
    let wrapper_kind = wrapper.kind().to_string();
    let wrapper_key_id = wrapper.key_id().unwrap();
    let key = KeySource::Wrapper(wrapper);
    let dir = root.join("db");
    let mut want = BTreeMap::new();

    // Create and write.
    let db = Db::open_with_config(config(&dir, &key)).unwrap();
    for i in 0..200u32 {
        let (k, v) = (
            format!("k{i:04}").into_bytes(),
            format!("v{i}").into_bytes(),
        );
        db.put(&k, &v).unwrap();
        want.insert(k, v);
    }
    db.flush().unwrap();
    db.close().unwrap();
    let keys = std::fs::read(dir.join("KEYS")).unwrap();
    assert_eq!(&keys[8..10], &[0, 2], "registry version 2");

    // Reopen and verify; the wrong wrapping key and a raw key are refused.
    let db = Db::open_with_config(config(&dir, &key)).unwrap();
    assert!(contents(&db) == want);
    assert!(db.verify().unwrap().is_clean());
    db.close().unwrap();
    match Db::open_with_config(config(&dir, &KeySource::Wrapper(wrong.clone()))) {
        Err(Error::WrongKey) => {}
        other => panic!("wrong wrapping key: {:?}", other.map(|_| ())),
    }
    let raw = KeySource::Key(MasterKey::from_bytes(&[0x44; 32]).unwrap());
    assert!(Db::open_with_config(config(&dir, &raw)).is_err());

    // Rotate, write under the new data key, re-encrypt everything.
    let db = Db::open_with_config(config(&dir, &key)).unwrap();
    let first = db.stats().unwrap().encryption.data_keys.len();
    db.rotate_data_key().unwrap();
    db.put(b"after-rotation", b"new key").unwrap();
    want.insert(b"after-rotation".to_vec(), b"new key".to_vec());
    let report = db.reencrypt(&mut |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(report.retired.len(), first, "the old data key retired");
    assert!(contents(&db) == want);

    // Back up and restore, still under the wrapper.
    let backup = root.join("backup");
    db.backup_to(&backup, &mut |_| {}).unwrap();
    verify_backup(&config(&backup, &key)).unwrap();
    let restored = root.join("restored");
    restore(
        &config(&backup, &key),
        &restored,
        &RestoreOptions::new(),
        &mut |_| {},
    )
    .unwrap();
    let copy = Db::open_with_config(config(&restored, &key)).unwrap();
    assert!(contents(&copy) == want);
    copy.close().unwrap();
    assert!(matches!(
        Db::open_with_config(config(&backup, &KeySource::Wrapper(wrong.clone()))),
        Err(Error::WrongKey)
    ));

    // Export sealed under the wrapper itself (a random archive key of that
    // archive alone, wrapped by it), verify, and import into a database
    // under the wrapper: the wrapper is the only key given.
    let archive = root.join("export.skva");
    let summary = export(
        &db,
        &archive,
        &ExportOptions::sealed(key.clone()),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(summary.header.version, 3);
    assert!(matches!(
        &summary.header.protection,
        Protection::Sealed {
            kind: KeyKind::Wrapped(w),
            ..
        } if w.wrapper_kind == wrapper_kind && w.key_id == wrapper_key_id
    ));
    let checked = verify_archive(&archive, Some(&key), &mut |_| {}).unwrap();
    assert_eq!(checked.records, want.len() as u64);
    for refused in [KeySource::Wrapper(wrong.clone()), raw.clone()] {
        assert!(
            matches!(
                verify_archive(&archive, Some(&refused), &mut |_| {}),
                Err(ArchiveError::WrongKey { .. })
            ),
            "{refused:?}"
        );
    }
    let imported = root.join("imported");
    let import_key = key.clone();
    import(
        &archive,
        Some(&key),
        &imported,
        &move |p: &Path| config(p, &import_key),
        &ImportOptions::new(),
        &mut |_| {},
    )
    .unwrap();
    let copy = Db::open_with_config(config(&imported, &key)).unwrap();
    assert!(contents(&copy) == want);
    copy.close().unwrap();

    // Export under a separate archive key still works, and the wrapper is
    // the wrong key for it.
    let archive_key = KeySource::Key(MasterKey::from_bytes(&[0x55; 32]).unwrap());
    let separate = root.join("separate.skva");
    export(
        &db,
        &separate,
        &ExportOptions::sealed(archive_key.clone()),
        &mut |_| {},
    )
    .unwrap();
    assert!(matches!(
        verify_archive(&separate, Some(&key), &mut |_| {}),
        Err(ArchiveError::WrongKey { .. })
    ));
    let imported = root.join("imported-separate");
    let import_key = key.clone();
    import(
        &separate,
        Some(&archive_key),
        &imported,
        &move |p: &Path| config(p, &import_key),
        &ImportOptions::new(),
        &mut |_| {},
    )
    .unwrap();
    let copy = Db::open_with_config(config(&imported, &key)).unwrap();
    assert!(contents(&copy) == want);
    copy.close().unwrap();

    // Rekey to another wrapping key: the first no longer opens.
    let other = KeySource::Wrapper(other);
    db.rekey(other.clone()).unwrap();
    db.close().unwrap();
    assert!(matches!(
        Db::open_with_config(config(&dir, &key)),
        Err(Error::WrongKey)
    ));
    let db = Db::open_with_config(config(&dir, &other)).unwrap();
    assert!(contents(&db) == want);

    // And out of the wrapper to a raw key, then back.
    db.rekey(raw.clone()).unwrap();
    db.close().unwrap();
    let db = Db::open_with_config(config(&dir, &raw)).unwrap();
    assert!(contents(&db) == want);
    db.rekey(key.clone()).unwrap();
    db.close().unwrap();
    let db = Db::open_with_config(config(&dir, &key)).unwrap();
    assert!(contents(&db) == want);
    assert!(db.verify().unwrap().is_clean());
    db.close().unwrap();
    let keys = std::fs::read(dir.join("KEYS")).unwrap();
    let reg = sealkv::crypto::registry::KeyRegistry::open(&keys, &key).unwrap();
    assert_eq!(reg.kek_kind(), KekKind::Wrapped);
}
