//! Open + verify + full scan over arbitrary bytes never panics (the fuzz
//! target's body, driven by proptest until `fuzz/` exists).

use proptest::prelude::*;
use sealkv_core_store::{fuzz_open, fuzz_page};
use sealkv_fileio::SimVfs;

use crate::common::*;

/// A small page file with every kind of page: meta, branch, leaves, an
/// overflow chain and a free list (the second commit frees pages).
fn small_file() -> Vec<u8> {
    let sim = SimVfs::new();
    let store = create(&sim, None);
    for g in 0..2u32 {
        let mut w = store.write().unwrap();
        for i in 0..150u32 {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.put(b"big", &vec![3; 6000]).unwrap();
        w.commit().unwrap();
    }
    drop(store);
    let mut file = sim.read_file(&path()).unwrap();
    // Cut the zero pages the file grew by ahead of use (a smaller input
    // for the fuzzer); what remains must still open and verify clean.
    while file.len() > 4096 && file[file.len() - 4096..].iter().all(|&b| b == 0) {
        file.truncate(file.len() - 4096);
    }
    let check = SimVfs::new();
    check.write_file(&path(), &file);
    let store = open(&check, None);
    assert!(store.verify().unwrap().is_clean());
    assert_eq!(all(&store.read()).len(), 151);
    file
}

#[test]
fn committed_fuzz_inputs_never_panic() {
    let open = sealkv_testkit::fuzz_inputs("store_open");
    let page = sealkv_testkit::fuzz_inputs("page_decode");
    assert!(
        !open.is_empty() && !page.is_empty(),
        "the seed corpora are committed"
    );
    for (_, bytes) in open {
        fuzz_open(&bytes);
    }
    for (_, bytes) in page {
        fuzz_page(&bytes);
    }
}

/// Regenerates the committed seeds of `store_open` and `page_decode`
/// (`cargo test -p sealkv-core-store --test store write_fuzz_seeds -- --ignored`).
#[test]
#[ignore = "writes into fuzz/corpus"]
fn write_fuzz_seeds() {
    let file = small_file();
    sealkv_testkit::write_fuzz_seed("store_open", "small-plaintext", &file);
    sealkv_testkit::write_fuzz_seed("page_decode", "file-header", &file[..4096]);
    // The first page of each kind (byte 0: meta, branch, leaf, overflow,
    // free list).
    for (kind, name) in [
        (1, "meta"),
        (2, "branch"),
        (3, "leaf"),
        (4, "overflow"),
        (5, "free-list"),
    ] {
        let page = file.chunks(4096).skip(1).find(|p| p[0] == kind).unwrap();
        sealkv_testkit::write_fuzz_seed("page_decode", name, page);
    }
}

fn valid_file() -> Vec<u8> {
    let sim = SimVfs::new();
    let store = create(&sim, None);
    for g in 0..3u32 {
        let mut w = store.write().unwrap();
        for i in 0..400u32 {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.put(b"big", &vec![3; 9000]).unwrap();
        w.commit().unwrap();
    }
    drop(store);
    sim.read_file(&path()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..20_000)) {
        fuzz_open(&bytes);
    }

    #[test]
    fn mutated_valid_file(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>(), truncate in any::<bool>()) {
        let mut f = valid_file();
        for (i, b) in edits {
            let at = i.index(f.len());
            f[at] = b;
        }
        if truncate {
            let at = cut.index(f.len());
            f.truncate(at);
        }
        fuzz_open(&f);
    }

    #[test]
    fn arbitrary_page(bytes in prop::collection::vec(any::<u8>(), 0..5_000)) {
        fuzz_page(&bytes);
    }

    #[test]
    fn mutated_valid_page(which in any::<prop::sample::Index>(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let f = valid_file();
        let pages: Vec<&[u8]> = f.chunks(4096).collect();
        let mut page = pages[which.index(pages.len())].to_vec();
        for (i, b) in edits {
            let at = i.index(page.len());
            page[at] = b;
        }
        fuzz_page(&page);
    }
}
