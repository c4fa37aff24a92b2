//! Open + verify + full scan over arbitrary bytes never panics (the fuzz
//! target's body, driven by proptest until `fuzz/` exists).

use proptest::prelude::*;
use sealkv_core_store::fuzz_open;
use sealkv_fileio::SimVfs;

use crate::common::*;

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
}
