//! The entry point of the "open arbitrary bytes" fuzz target.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use sealkv_fileio::{SimVfs, Vfs};

use sealkv_crypto_envelope::DbId;

use crate::codec::{Codec, Mode};
use crate::format::{FileHeader, check_page_size};
use crate::store::{Store, StoreOptions};

/// Writes `bytes` as a page file into an in-memory file system, opens it
/// (plaintext, read-only), verifies it and scans it both ways, ignoring
/// every error; then does the same with every checksum recomputed, so that
/// mutated inputs reach the page parsers instead of stopping at a CRC. It
/// must never panic. Used by the fuzz target and by a proptest; not part of
/// the API.
#[doc(hidden)]
pub fn fuzz_open(bytes: &[u8]) {
    run(bytes);
    if let Some(fixed) = fix_checksums(bytes) {
        run(&fixed);
    }
}

/// The bytes with the header CRC and every page's plaintext tag recomputed.
fn fix_checksums(bytes: &[u8]) -> Option<Vec<u8>> {
    let p = FileHeader::peek_page_size(bytes)?;
    check_page_size(p).ok()?;
    let p = p as usize;
    let mut b = bytes.to_vec();
    let head = b.get_mut(..p)?;
    let crc = crc32c::crc32c(&head[..p - 4]);
    head[p - 4..].copy_from_slice(&crc.to_be_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(b.get(20..36)?);
    let codec = Codec {
        db_id: DbId(id),
        algorithm: 0,
        page_size: p,
        mode: Mode::Plain,
    };
    for (n, page) in b.chunks_mut(p).enumerate().skip(1) {
        codec.plain_retag(page, n as u64);
    }
    Some(b)
}

fn run(bytes: &[u8]) {
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
