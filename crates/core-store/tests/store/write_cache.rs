//! A write transaction does not cache the nodes it replaces: their pages
//! are freed by its commit, so such entries would only push out the nodes
//! readers use. Nodes already cached still serve it.

use std::collections::BTreeMap;

use sealkv_fileio::SimVfs;

use crate::common::{all, create, key, keyring, open, val};

#[test]
fn a_commit_leaves_the_cache_to_readers() {
    for sealed in [true, false] {
        let sim = SimVfs::new();
        let mut model = BTreeMap::new();
        {
            let store = create(&sim, sealed.then(keyring));
            let mut w = store.write().unwrap();
            for i in 0..5_000 {
                w.put(&key(i), &val(i, 0)).unwrap();
                model.insert(key(i), val(i, 0));
            }
            w.commit().unwrap();
        }
        let store = open(&sim, sealed.then(keyring));
        assert_eq!(store.stats().cache_bytes, 0, "sealed={sealed}: cold");

        // Rewrite every seventh key: the commit reads the root, branches
        // and most leaves, and frees every one of them.
        let mut w = store.write().unwrap();
        for i in (0..5_000).step_by(7) {
            w.put(&key(i), &val(i, 1)).unwrap();
            model.insert(key(i), val(i, 1));
        }
        w.commit().unwrap();
        let s = store.stats();
        assert!(s.pages_read > 10, "sealed={sealed}: {s:?}");
        assert_eq!(
            s.cache_bytes, 0,
            "sealed={sealed}: nodes the commit replaced were cached"
        );

        // Readers fill it, and see the new version.
        let r = store.read();
        assert_eq!(all(&r), model.clone().into_iter().collect::<Vec<_>>());
        assert!(store.stats().cache_bytes > 0, "sealed={sealed}");
        drop(r);

        // A write finds what readers cached: no page read for a key whose
        // path is cached.
        let before = store.stats();
        let mut w = store.write().unwrap();
        w.put(&key(3), &val(3, 2)).unwrap();
        w.commit().unwrap();
        let after = store.stats();
        assert!(after.cache_hits > before.cache_hits, "sealed={sealed}");
        assert_eq!(
            after.pages_read, before.pages_read,
            "sealed={sealed}: the write read a cached page again"
        );
        assert_eq!(
            store.read().get(&key(3)).unwrap().as_deref(),
            Some(&val(3, 2)[..])
        );
    }
}
