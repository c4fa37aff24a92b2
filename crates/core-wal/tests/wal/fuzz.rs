//! Replay over arbitrary bytes never panics (the fuzz target's property,
//! run as a proptest until `fuzz/` exists on main).

use proptest::prelude::*;
use sealkv_core_wal::fuzz_replay;

use crate::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn replay_of_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        fuzz_replay(&bytes);
    }

    #[test]
    fn replay_of_a_mutated_valid_segment_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let (s, _v, _) = fresh_log(&options(None), 4, 40);
        let mut bytes = s.read_file(&seg_path(1)).unwrap();
        for (at, val) in edits {
            let i = at.index(bytes.len());
            bytes[i] = val;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(bytes.len() / 2));
        fuzz_replay(&bytes);
    }
}
