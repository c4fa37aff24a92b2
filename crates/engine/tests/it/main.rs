//! Engine integration tests: one binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anchor;
mod backup;
mod basic;
mod bulk;
mod chunked_flush;
mod compact_race;
mod crash;
mod encryption;
mod faults;
mod field_values;
mod forked;
mod freshness;
mod fuzz;
mod get_race;
mod golden;
mod golden_wrapped;
mod hookvfs;
mod key_crash;
mod keys;
mod keyspaces;
mod model;
#[cfg(feature = "ring")]
mod provider_interop;
mod reencrypt;
mod support;
mod tamper;
mod transactions;
mod tree_iter;
mod verify_findings;
mod verify_race;
