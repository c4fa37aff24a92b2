//! Every error a caller can provoke, with its variant.

use std::path::Path;
use std::sync::Arc;

use sealkv_core_store::{Store, StoreError, StoreOptions};
use sealkv_crypto_envelope::{
    CryptoProvider, DataKey, DbId, EncryptionAlgorithm, KeyId, Keyring, SecretKey,
};
use sealkv_fileio::{SimVfs, Vfs};

use crate::common::*;

fn vfs(sim: &SimVfs) -> Arc<dyn Vfs> {
    Arc::new(sim.clone())
}

#[test]
fn open_errors() {
    let sim = SimVfs::new();
    drop(create(&sim, Some(keyring())));
    let p = path();
    let e = Store::open(vfs(&sim), &p, opts(None)).unwrap_err();
    assert!(matches!(e, StoreError::EncryptedStore), "{e:?}");
    let e = Store::open(
        vfs(&sim),
        &p,
        opts(Some(keyring_with(DbId([3; 16]), [42; 32]))),
    )
    .unwrap_err();
    assert!(matches!(e, StoreError::WrongDatabase), "{e:?}");
    // The right db id but not the key that sealed the pages.
    let e = Store::open(
        vfs(&sim),
        &p,
        opts(Some(keyring_with(DbId([7; 16]), [1; 32]))),
    )
    .unwrap_err();
    assert!(
        matches!(e, StoreError::Corruption { page: 1 | 2, .. }),
        "{e:?}"
    );
    // Another algorithm for the active key.
    let k = Keyring::new(DbId([7; 16]), Arc::new(CryptoProvider::default()));
    k.insert(DataKey::new(
        KeyId(1),
        EncryptionAlgorithm::ChaCha20Poly1305.id(),
        SecretKey::from_bytes(&[42; 32]).unwrap(),
    ));
    k.set_active(KeyId(1)).unwrap();
    let e = Store::open(vfs(&sim), &p, opts(Some(Arc::new(k)))).unwrap_err();
    assert!(
        matches!(e, StoreError::AlgorithmMismatch { file: 1, key: 2 }),
        "{e:?}"
    );
    // A keyring without the page's key.
    let k = Keyring::new(DbId([7; 16]), Arc::new(CryptoProvider::default()));
    k.insert(DataKey::new(
        KeyId(2),
        EncryptionAlgorithm::Aes256Gcm.id(),
        SecretKey::from_bytes(&[42; 32]).unwrap(),
    ));
    k.set_active(KeyId(2)).unwrap();
    let e = Store::open(vfs(&sim), &p, opts(Some(Arc::new(k)))).unwrap_err();
    assert!(matches!(e, StoreError::MissingKey { .. }), "{e:?}");

    let plain = SimVfs::new();
    drop(create(&plain, None));
    let e = Store::open(vfs(&plain), &p, opts(Some(keyring()))).unwrap_err();
    assert!(matches!(e, StoreError::NotEncrypted), "{e:?}");
    let e = Store::open(vfs(&plain), Path::new("/db/missing"), opts(None)).unwrap_err();
    assert!(matches!(e, StoreError::Io(_)), "{e:?}");
    let e = Store::create(
        vfs(&plain),
        Path::new("/db/x"),
        StoreOptions {
            page_size: 5000,
            ..StoreOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, StoreError::InvalidPageSize(5000)), "{e:?}");
}

#[test]
fn a_read_only_open_refuses_another_algorithm() {
    let sim = SimVfs::new();
    drop(create(&sim, Some(keyring())));
    let k = Keyring::new(DbId([7; 16]), Arc::new(CryptoProvider::default()));
    k.insert(DataKey::new(
        KeyId(1),
        EncryptionAlgorithm::ChaCha20Poly1305.id(),
        SecretKey::from_bytes(&[42; 32]).unwrap(),
    ));
    k.set_active(KeyId(1)).unwrap();
    let ro = StoreOptions {
        read_only: true,
        ..opts(Some(Arc::new(k)))
    };
    let e = Store::open(vfs(&sim), &path(), ro).unwrap_err();
    assert!(
        matches!(e, StoreError::AlgorithmMismatch { file: 1, key: 2 }),
        "{e:?}"
    );
    // The right algorithm still opens read-only.
    let ro = StoreOptions {
        read_only: true,
        ..opts(Some(keyring()))
    };
    Store::open(vfs(&sim), &path(), ro).unwrap();
}

#[test]
fn locking_and_read_only() {
    let sim = SimVfs::new();
    let store = create(&sim, None);
    let e = Store::open(vfs(&sim), &path(), opts(None)).unwrap_err();
    assert!(matches!(e, StoreError::Locked), "{e:?}");
    let ro = StoreOptions {
        read_only: true,
        ..opts(None)
    };
    let e = Store::open(vfs(&sim), &path(), ro.clone()).unwrap_err();
    assert!(matches!(e, StoreError::Locked), "{e:?}");
    drop(store);
    let (r1, _) = Store::open(vfs(&sim), &path(), ro.clone()).unwrap();
    let (_r2, _) = Store::open(vfs(&sim), &path(), ro).unwrap();
    assert!(matches!(r1.write().unwrap_err(), StoreError::ReadOnly));
    assert!(matches!(
        r1.zero_free_pages().unwrap_err(),
        StoreError::ReadOnly
    ));
}

#[test]
fn write_errors_and_the_single_writer() {
    let sim = SimVfs::new();
    let store = create(&sim, None);
    let mut w = store.write().unwrap();
    // A second write on the same thread is refused, not a deadlock.
    assert!(matches!(
        store.write().unwrap_err(),
        StoreError::WriteInProgress
    ));
    let max = store.max_key_len();
    assert_eq!(max, 964);
    assert!(matches!(
        w.put(&vec![1; max + 1], b"v").unwrap_err(),
        StoreError::KeyTooLarge { .. }
    ));
    w.put(&vec![1; max], &vec![2; 3000]).unwrap();
    assert!(matches!(
        w.set_app_meta(&[0; 1025]).unwrap_err(),
        StoreError::AppMetaTooLarge { .. }
    ));
    let e = w
        .apply(vec![
            (b"a".to_vec(), Some(b"1".to_vec())),
            (vec![0; max + 1], None),
        ])
        .unwrap_err();
    assert!(matches!(e, StoreError::KeyTooLarge { .. }));
    assert_eq!(
        w.get(b"a").unwrap(),
        None,
        "a refused batch applies nothing"
    );
    w.set_app_meta(b"anchor").unwrap();
    w.commit().unwrap();
    assert_eq!(store.read().app_meta(), b"anchor");
    assert_eq!(
        store.read().get(&vec![1; max]).unwrap(),
        Some(vec![2; 3000])
    );

    // Another thread waits for the writer instead of failing.
    let w = store.write().unwrap();
    let s2 = store.clone();
    let h = std::thread::spawn(move || {
        let mut w = s2.write().unwrap();
        w.put(b"t", b"2").unwrap();
        w.commit().unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(20));
    w.abort();
    assert_eq!(h.join().unwrap(), 2);
}

#[test]
fn page_sizes_up_to_64k_work() {
    for ps in [8192u32, 65536] {
        let sim = SimVfs::new();
        let v = vfs(&sim);
        v.create_dir_all(Path::new("/db")).unwrap();
        let o = StoreOptions {
            page_size: ps,
            ..opts(Some(keyring()))
        };
        let (store, _) = Store::create(v.clone(), &path(), o.clone()).unwrap();
        let mut w = store.write().unwrap();
        for i in 0..3000u32 {
            w.put(&key(i), &val(i, 0)).unwrap();
        }
        w.put(b"big", &vec![5; 200_000]).unwrap();
        w.commit().unwrap();
        drop(store);
        let (store, _) = Store::open(v, &path(), o).unwrap();
        assert_eq!(store.page_size(), ps);
        assert_eq!(all(&store.read()).len(), 3001);
        assert!(store.verify().unwrap().is_clean());
    }
}

/// A meta slot whose clear header names a data key the keyring lacks does
/// not stop the open: its key id is unauthenticated (damage and an older
/// keyring look alike), so the other slot is taken if it opens, and the
/// report names the slot and the key. Only when no slot opens is it
/// `MissingKey`, naming the page and the key.
#[test]
fn a_meta_slot_under_an_unknown_key_falls_back_to_the_other() {
    let sim = SimVfs::new();
    let ring = keyring();
    let store = create(&sim, Some(ring.clone()));
    let mut w = store.write().unwrap();
    w.put(b"a", b"1").unwrap();
    w.commit().unwrap();
    // Key 2 becomes active; the next commit's meta page is sealed under it.
    ring.insert(DataKey::new(
        KeyId(2),
        EncryptionAlgorithm::Aes256Gcm.id(),
        SecretKey::from_bytes(&[9; 32]).unwrap(),
    ));
    ring.set_active(KeyId(2)).unwrap();
    store.new_session().unwrap();
    let mut w = store.write().unwrap();
    w.put(b"b", b"2").unwrap();
    w.commit().unwrap();
    drop(store);
    let (store, report) = Store::open(vfs(&sim), &path(), opts(Some(keyring()))).unwrap();
    assert_eq!((report.txn, report.newest_txn), (1, 1));
    let why = report.other_slot.unwrap();
    assert!(why.contains("data key #2"), "{why}");
    assert_eq!(all(&store.read()), vec![(b"a".to_vec(), b"1".to_vec())]);
    drop(store);
    // The older slot under key 2 too: no slot opens.
    let sim2 = SimVfs::new();
    let ring2 = keyring();
    let store = create(&sim2, Some(ring2.clone()));
    ring2.insert(DataKey::new(
        KeyId(2),
        EncryptionAlgorithm::Aes256Gcm.id(),
        SecretKey::from_bytes(&[9; 32]).unwrap(),
    ));
    ring2.set_active(KeyId(2)).unwrap();
    store.new_session().unwrap();
    for i in 0..2u8 {
        let mut w = store.write().unwrap();
        w.put(&[i], b"x").unwrap();
        w.commit().unwrap();
    }
    drop(store);
    let e = Store::open(vfs(&sim2), &path(), opts(Some(keyring()))).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::MissingKey {
                page: 1 | 2,
                dek: KeyId(2)
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_store_opened_by_another_process_refuses_to_write() {
    let sim = SimVfs::new();
    let store = create(&sim, Some(keyring()));
    let mut w = store.write().unwrap();
    w.put(b"k", b"v").unwrap();
    w.commit().unwrap();
    // What a child forked after the open holds.
    store.pretend_opened_by(std::process::id().wrapping_add(1));
    let e = store.write().map(|_| ()).unwrap_err();
    assert!(
        matches!(e, StoreError::ForkedProcess { current, .. } if current == std::process::id()),
        "{e:?}"
    );
    assert!(matches!(
        store.compact().unwrap_err(),
        StoreError::ForkedProcess { .. }
    ));
    assert_eq!(store.read().get(b"k").unwrap().unwrap(), b"v");
    store.pretend_opened_by(std::process::id());
    store.write().unwrap().commit().unwrap();
}
