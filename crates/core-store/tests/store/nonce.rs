//! No (subkey, nonce) ever repeats: across crash-and-reopen cycles and
//! across a copied file written on both sides — read from every page
//! written to the disk (`sealkv_testkit::nonces`), not from the sealer's
//! own count. And no plaintext on disk.

use std::path::Path;
use std::sync::Arc;

use sealkv_core_store::Store;
use sealkv_fileio::{SimVfs, Vfs};
use sealkv_testkit::nonces::{DiskWrites, reuses, sessions};
use sealkv_testkit::{Canaries, read_sim_tree, scan_for_plaintext};

use crate::common::*;

#[test]
fn no_nonce_reuse_across_crashes_and_copies() {
    let ring = keyring();
    let sim = SimVfs::new();
    let writes = DiskWrites::new();
    let v: Arc<dyn Vfs> = Arc::new(writes.vfs(Arc::new(sim.clone())));
    let open_at = |file: &str| {
        Store::open(v.clone(), Path::new(file), opts(Some(ring.clone())))
            .unwrap()
            .0
    };
    v.create_dir_all(Path::new("/db")).unwrap();
    drop(Store::create(v.clone(), &path(), opts(Some(ring.clone()))).unwrap());
    for cycle in 0..6u32 {
        let store = open_at("/db/data.sealkv");
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
    writes.copied(Path::new("/db"), Path::new("/copy"));
    let copy = open_at("/copy/data.sealkv");
    let orig = open_at("/db/data.sealkv");
    for s in [&orig, &copy] {
        let mut w = s.write().unwrap();
        for i in 0..300u32 {
            w.put(&key(i), b"same on both sides").unwrap();
        }
        w.commit().unwrap();
    }
    let units = writes.units();
    assert!(units.len() > 100, "{} pages written", units.len());
    // The creation, six cycles and the two sides of the copy.
    assert_eq!(sessions(&units), 9);
    let reused = reuses(&units);
    assert!(reused.is_empty(), "{reused:?}");
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
