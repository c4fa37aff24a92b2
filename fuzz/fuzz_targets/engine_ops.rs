//! Any bytes read as a program of engine operations — puts, deletes,
//! batches, flushes, reopens, torn crashes, key rotations, re-encryption
//! passes, snapshots, reads and scans — run against a `BTreeMap` model on
//! a simulated disk: the database must always read as the model and
//! verify clean.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealkv::fuzz_ops(data);
});
