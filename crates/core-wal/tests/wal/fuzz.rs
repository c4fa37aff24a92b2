//! Replay over arbitrary bytes never panics: the `wal_replay` fuzz
//! target's property, run as a proptest on stable in every test run.

use proptest::prelude::*;
use sealkv_core_wal::fuzz_replay;

use crate::*;

#[test]
fn committed_fuzz_inputs_never_panic() {
    let inputs = sealkv_testkit::fuzz_inputs("wal_replay");
    assert!(!inputs.is_empty(), "the seed corpus is committed");
    for (_, bytes) in inputs {
        fuzz_replay(&bytes);
    }
}

/// Regenerates the committed seeds of `wal_replay`: plaintext segments
/// (the target replays plaintext), one of a few large batches and one of
/// many small ones, each ended by the sync marker a close writes
/// (`cargo test -p sealkv-core-wal --test wal write_fuzz_seeds -- --ignored`).
#[test]
#[ignore = "writes into fuzz/corpus"]
fn write_fuzz_seeds() {
    for (name, n, size) in [("four-batches", 4, 40), ("twenty-small", 20, 2)] {
        let (s, _v, _) = fresh_log(&options(None), n, size);
        let bytes = s.read_file(&seg_path(1)).unwrap();
        sealkv_testkit::write_fuzz_seed("wal_replay", name, &bytes);
    }
}

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
