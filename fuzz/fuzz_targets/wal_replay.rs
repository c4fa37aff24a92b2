//! Any bytes replayed as a WAL segment, in every recovery mode: batches or
//! typed errors, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealkv_core_wal::fuzz_replay_one_mode(data);
});
