//! No (subkey, nonce) ever repeats: across crash-and-reopen cycles and
//! across a copied file written on both sides. And no plaintext on disk.

use std::path::Path;
use std::sync::Arc;

use sealkv_crypto_envelope::SealObserver;
use sealkv_fileio::SimVfs;
use sealkv_testkit::{Canaries, NonceRecorder, read_sim_tree, scan_for_plaintext};

use crate::common::*;

#[test]
fn no_nonce_reuse_across_crashes_and_copies() {
    let rec = Arc::new(NonceRecorder::new());
    let ring = keyring();
    ring.set_seal_observer(Some(rec.clone() as Arc<dyn SealObserver>));
    let sim = SimVfs::new();
    drop(create(&sim, Some(ring.clone())));
    for cycle in 0..6u32 {
        let store = open(&sim, Some(ring.clone()));
        for t in 0..3u32 {
            let mut w = store.write().unwrap();
            for i in 0..300u32 {
                w.put(&key(i), &val(i, cycle * 10 + t)).unwrap();
            }
            w.commit().unwrap();
        }
        // An uncommitted transaction's pages are written, then lost.
        let mut w = store.write().unwrap();
        w.put(b"lost", b"x").unwrap();
        w.abort();
        drop(store);
        sim.crash_torn(u64::from(cycle));
    }
    // A copy of the file, written on both sides.
    sim.copy_tree(Path::new("/db"), Path::new("/copy"));
    let v: Arc<dyn sealkv_fileio::Vfs> = Arc::new(sim.clone());
    let (copy, _) =
        sealkv_core_store::Store::open(v, Path::new("/copy/data.sealkv"), opts(Some(ring.clone())))
            .unwrap();
    let orig = open(&sim, Some(ring.clone()));
    for s in [&orig, &copy] {
        let mut w = s.write().unwrap();
        for i in 0..300u32 {
            w.put(&key(i), b"same on both sides").unwrap();
        }
        w.commit().unwrap();
    }
    assert!(rec.count() > 100);
    assert!(rec.sessions() >= 9, "sessions {}", rec.sessions());
    assert!(rec.repeats().is_empty(), "{:?}", rec.repeats());
}

#[test]
fn sealed_file_holds_no_plaintext_and_plaintext_file_does() {
    let c = Canaries::new(40);
    for sealed in [true, false] {
        let sim = SimVfs::new();
        let store = create(&sim, sealed.then(keyring));
        let mut w = store.write().unwrap();
        for i in 0..c.len() {
            w.put(c.key(i), c.value(i)).unwrap();
        }
        // A large value goes to overflow pages.
        let big: Vec<u8> = c.value(0).iter().copied().cycle().take(50_000).collect();
        w.put(b"big", &big).unwrap();
        w.set_app_meta(c.value(1)).unwrap();
        w.commit().unwrap();
        let mut w = store.write().unwrap();
        for i in 0..c.len() / 2 {
            w.delete(c.key(i)).unwrap();
        }
        w.commit().unwrap();
        for _ in 0..3 {
            store.write().unwrap().commit().unwrap();
        }
        store.zero_free_pages().unwrap();
        drop(store);
        let files = read_sim_tree(&sim, Path::new("/db"));
        let leaks = scan_for_plaintext(&files, &c);
        if sealed {
            assert!(leaks.is_empty(), "{leaks:?}");
        } else {
            assert!(
                !leaks.is_empty(),
                "the scan must see plaintext when it is there"
            );
        }
    }
}
