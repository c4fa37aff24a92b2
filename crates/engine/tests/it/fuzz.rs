//! The operation-sequence fuzz target's body (`sealkv::fuzz_ops`, the
//! engine against a `BTreeMap` model) on stable: its committed seeds and
//! crash regressions, and random programs through proptest.

use proptest::prelude::*;
use sealkv::fuzz_ops;

#[test]
fn committed_fuzz_inputs_hold() {
    let inputs = sealkv_testkit::fuzz_inputs("engine_ops");
    assert!(!inputs.is_empty(), "the seed corpus is committed");
    for (_, bytes) in inputs {
        fuzz_ops(&bytes);
    }
}

/// A program that runs every operation once with arguments from a simple
/// generator, in protection mode `mode`.
fn program(mode: u8, seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    let mut out = vec![mode];
    for i in 0..len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Every opcode in turn, then arguments from the generator.
        out.push(if i % 4 == 0 {
            (i / 4 % 14) as u8
        } else {
            (x >> 56) as u8
        });
    }
    out
}

/// Regenerates the committed seeds of `engine_ops`: one program per
/// protection mode (`cargo test -p sealkv --test it write_fuzz_seeds --
/// --ignored`).
#[test]
#[ignore = "writes into fuzz/corpus"]
fn write_fuzz_seeds() {
    for mode in 0..4u8 {
        let p = program(mode, u64::from(mode) + 1, 240);
        fuzz_ops(&p);
        sealkv_testkit::write_fuzz_seed("engine_ops", &format!("every-op-mode-{mode}"), &p);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn random_programs_read_as_the_model(bytes in prop::collection::vec(any::<u8>(), 1..200)) {
        fuzz_ops(&bytes);
    }
}
