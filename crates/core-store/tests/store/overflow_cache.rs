//! Overflow values are cached whole, decrypted, under their first page's
//! tag: a second read decrypts nothing, a new version of the value is never
//! served from the old entry, and a value too large for the cache is read
//! from the pages every time.

use std::collections::BTreeSet;

use sealkv_core_store::{PageRole, Store, StoreOptions};
use sealkv_fileio::{SimVfs, Vfs};
use std::path::Path;
use std::sync::Arc;

use crate::common::{create, keyring, path};

fn big(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn put(store: &Store, key: &[u8], value: &[u8]) {
    let mut w = store.write().unwrap();
    w.put(key, value).unwrap();
    w.commit().unwrap();
}

#[test]
fn a_second_read_of_an_overflow_value_reads_no_page() {
    for sealed in [true, false] {
        let sim = SimVfs::new();
        let store = create(&sim, sealed.then(keyring));
        let value = big(1, 20_000);
        put(&store, b"big", &value);
        let r = store.read();
        assert_eq!(r.get(b"big").unwrap().as_deref(), Some(&value[..]));
        let before = store.stats().pages_read;
        for _ in 0..3 {
            assert_eq!(r.get(b"big").unwrap().as_deref(), Some(&value[..]));
        }
        assert_eq!(store.stats().pages_read, before, "sealed={sealed}");
    }
}

/// The overflow pages of the store's current state.
fn overflow_pages(store: &Store) -> BTreeSet<u64> {
    store
        .read()
        .pages()
        .unwrap()
        .into_iter()
        .filter(|(_, role)| *role == PageRole::Overflow)
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn a_new_version_is_never_served_from_the_old_entry() {
    let sim = SimVfs::new();
    let store = create(&sim, Some(keyring()));
    let mut expected = Vec::new();
    let mut held: BTreeSet<u64> = BTreeSet::new();
    let mut reused = 0;
    for round in 0..6u8 {
        // Same key and length every round; freed pages get reused.
        let value = big(round, 9_000);
        put(&store, b"big", &value);
        assert_eq!(
            store.read().get(b"big").unwrap().as_deref(),
            Some(&value[..]),
            "round {round}"
        );
        let now = overflow_pages(&store);
        reused += now.intersection(&held).count();
        held.extend(now);
        expected = value;
    }
    // The check means something only if a page number that held an older
    // version (cached under that page) holds a newer one.
    assert!(reused > 0, "no overflow page was reused: {held:?}");
    // An old snapshot still reads its own version.
    let old = store.read();
    put(&store, b"big", &big(99, 9_000));
    assert_eq!(old.get(b"big").unwrap().as_deref(), Some(&expected[..]));
    assert_eq!(
        store.read().get(b"big").unwrap().as_deref(),
        Some(&big(99, 9_000)[..])
    );
}

#[test]
fn a_value_larger_than_the_cache_is_read_from_its_pages_each_time() {
    let sim = SimVfs::new();
    let v: Arc<dyn Vfs> = Arc::new(sim.clone());
    v.create_dir_all(Path::new("/db")).unwrap();
    let options = StoreOptions {
        keyring: Some(keyring()),
        // 16 shards of 1 KiB: no 20 KB value fits.
        cache_bytes: 16 << 10,
        ..StoreOptions::default()
    };
    let store = Store::create(v, &path(), options).unwrap().0;
    let value = big(7, 20_000);
    put(&store, b"big", &value);
    let r = store.read();
    assert_eq!(r.get(b"big").unwrap().as_deref(), Some(&value[..]));
    let before = store.stats().pages_read;
    assert_eq!(r.get(b"big").unwrap().as_deref(), Some(&value[..]));
    assert!(store.stats().pages_read >= before + 5);
}
