//! Regression test from the lead engineer: found by the engine's BTreeMap model
//! test (three commits with 700-byte values and reopens between them; the third
//! commit fails with 'keys out of order'). Please fix the store bug, keep this
//! test (move it into your test binary if you like), and mention it in your report.

use sealkv_core_store::{Store, StoreOptions};
use sealkv_fileio::SimVfs;
use std::path::Path;
use std::sync::Arc;

#[test]
fn engine_sequence() {
    let sim = SimVfs::new();
    let vfs: Arc<dyn sealkv_fileio::Vfs> = Arc::new(sim.clone());
    let path = Path::new("/db/data.sealkv");
    sealkv_fileio::Vfs::create_dir_all(&sim, Path::new("/db")).unwrap();
    let (store, _) = Store::create(vfs.clone(), path, StoreOptions::default()).unwrap();
    let v = |b: u8| vec![b; 700];
    let k = |b: u8| vec![b'k', b];
    let mut first: Vec<(u8, u8)> = vec![
        (61, 42),
        (78, 227),
        (243, 25),
        (155, 18),
        (34, 62),
        (250, 2),
    ];
    first.sort();
    let mut t = store.write().unwrap();
    for (a, b) in &first {
        t.put(&k(*a), &v(*b)).unwrap();
    }
    t.commit().unwrap();
    drop(store);
    let (store, _) = Store::open(vfs.clone(), path, StoreOptions::default()).unwrap();
    let mut second: Vec<(u8, Option<u8>)> = vec![
        (122, Some(75)),
        (32, Some(38)),
        (194, Some(231)),
        (143, Some(106)),
        (199, Some(78)),
        (19, Some(144)),
        (2, Some(158)),
        (154, None),
        (74, Some(197)),
        (124, Some(187)),
        (129, Some(236)),
    ];
    second.sort();
    let mut t = store.write().unwrap();
    for (a, b) in &second {
        match b {
            Some(b) => t.put(&k(*a), &v(*b)).unwrap(),
            None => t.delete(&k(*a)).unwrap(),
        }
    }
    t.commit().unwrap();
    drop(store);
    let (store, _) = Store::open(vfs.clone(), path, StoreOptions::default()).unwrap();
    let mut t = store.write().unwrap();
    t.put(&k(67), &v(122)).unwrap();
    t.commit().unwrap();
    let r = store.read();
    let all: Vec<_> = r.iter().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(all.len(), 17);
}
