//! The entry point of the "open arbitrary bytes" fuzz target.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use sealkv_fileio::{SimVfs, Vfs};

use crate::store::{Store, StoreOptions};

/// Writes `bytes` as a page file into an in-memory file system, opens it
/// (plaintext, read-only), verifies it and scans it both ways, ignoring
/// every error. It must never panic. Used by the fuzz target and by a
/// proptest; not part of the API.
#[doc(hidden)]
pub fn fuzz_open(bytes: &[u8]) {
    let sim = SimVfs::new();
    let path = Path::new("/fuzz/data.sealkv");
    sim.write_file(path, bytes);
    let vfs: Arc<dyn Vfs> = Arc::new(sim);
    let options = StoreOptions {
        read_only: true,
        cache_bytes: 1 << 20,
        ..StoreOptions::default()
    };
    let Ok((store, _)) = Store::open(vfs, path, options) else {
        return;
    };
    let _ = store.verify();
    let r = store.read();
    let _ = r.get(b"k");
    for e in r.iter().take(10_000) {
        if e.is_err() {
            break;
        }
    }
    for e in r
        .range(
            Bound::Included(b"a".as_slice()),
            Bound::Excluded(b"z".as_slice()),
        )
        .rev()
        .take(10_000)
    {
        if e.is_err() {
            break;
        }
    }
}
