//! Any bytes opened as a page file (plaintext, read-only), then verified
//! and scanned both ways: must return values or typed errors, never panic.
//! `fuzz_open` also retries each input with every checksum recomputed, so
//! mutants reach the header, meta, node, overflow and free-list parsers
//! instead of stopping at a CRC.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealkv_core_store::fuzz_open(data);
});
