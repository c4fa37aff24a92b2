//! Integration tests of the page store (one binary, one module per concern).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod compact;
mod crash;
mod engine_repro;
mod errors;
mod fill;
mod finder;
mod freelist;
mod fuzz;
mod model;
mod nonce;
mod overflow_cache;
mod range_ends;
mod readers;
mod spill;
mod tamper;
mod write_cache;
