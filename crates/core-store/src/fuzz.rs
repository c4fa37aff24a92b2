//! The entry point of the "open arbitrary bytes" fuzz target.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use sealkv_fileio::{SimVfs, Vfs};

use sealkv_crypto_envelope::DbId;

use crate::format::{FileHeader, PAGE_HEADER_LEN, PageKind, TAG_LEN, be64, check_page_size};
use crate::meta::{Meta, decode_free};
use crate::node::{Node, ValRef};
use crate::seal::{Mode, PageSealer};
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
    let sealer = PageSealer {
        db_id: DbId(id),
        algorithm: 0,
        page_size: p,
        mode: Mode::Plain,
    };
    for (n, page) in b.chunks_mut(p).enumerate().skip(1) {
        sealer.plain_retag(page, n as u64);
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

/// The page size the page target decodes at.
const FUZZ_PAGE: usize = 4096;

/// Decodes `bytes` as one page of a plaintext page file (zero-padded or cut
/// to 4 KiB): the file-header parser, then the page header and tag (the
/// tag recomputed, so mutants get past it) and the parser of the page's
/// kind — node, meta or free list — walking every entry; then the body
/// through every parser whatever the kind says. It must never panic. Used
/// by the `page_decode` fuzz target and a proptest; not part of the API.
#[doc(hidden)]
pub fn fuzz_page(bytes: &[u8]) {
    let _ = FileHeader::peek_page_size(bytes);
    let _ = FileHeader::decode(bytes);
    let mut page = vec![0u8; FUZZ_PAGE];
    let n = bytes.len().min(FUZZ_PAGE);
    page[..n].copy_from_slice(&bytes[..n]);
    // The slot the header claims, so the page-number check passes.
    let slot = be64(&page, 48).unwrap_or(0);
    let sealer = PageSealer {
        db_id: DbId([0; 16]),
        algorithm: 0,
        page_size: FUZZ_PAGE,
        mode: Mode::Plain,
    };
    sealer.plain_retag(&mut page, slot);
    let body_range = PAGE_HEADER_LEN..FUZZ_PAGE - TAG_LEN;
    let all = [
        PageKind::Meta,
        PageKind::Branch,
        PageKind::Leaf,
        PageKind::Overflow,
        PageKind::FreeList,
    ];
    if let Ok(h) = sealer.open(&mut page, slot, &all) {
        parse_body(h.kind, &page[body_range.clone()], slot);
    }
    for kind in all {
        parse_body(kind, &page[body_range.clone()], slot);
    }
}

/// Runs the parser of `kind` over `body` and walks what it accepts.
fn parse_body(kind: PageKind, body: &[u8], page: u64) {
    match kind {
        PageKind::Leaf | PageKind::Branch => {
            let leaf = kind == PageKind::Leaf;
            let Ok(node) = Node::decode(leaf, body.into(), page) else {
                return;
            };
            let mut total = 0usize;
            for i in 0..node.len() {
                total += node.raw(i).len() + node.key(i).len();
                if leaf {
                    if let ValRef::Inline(v) = node.val(i) {
                        total += v.len();
                    }
                } else {
                    total += usize::from(node.child(i).page == 0);
                }
            }
            assert!(total <= 3 * body.len());
            let _ = node.weight();
            if leaf {
                let _ = node.search(b"k");
            } else {
                let _ = node.route(b"k");
            }
        }
        PageKind::Meta => {
            if let Ok(m) = Meta::decode(body, page) {
                assert!(m.app_meta.len() <= crate::format::MAX_APP_META);
            }
        }
        PageKind::FreeList => {
            if let Ok((_, entries)) = decode_free(body, page) {
                assert!(entries.len() <= body.len());
            }
        }
        PageKind::Overflow => {}
    }
}
