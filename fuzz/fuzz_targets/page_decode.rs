//! Any bytes decoded as one 4 KiB page: the page header and (recomputed)
//! plaintext tag, then the node, meta and free-list parsers, whatever the
//! page's kind byte says. Must return values or typed errors, never panic.
//! Sealed pages stay behind their AEAD tags, which a mutant cannot forge;
//! the plaintext mode is the "null cipher" that reaches the parsers.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sealkv_core_store::fuzz_page(data);
});
