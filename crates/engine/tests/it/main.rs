//! Engine integration tests: one binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backup;
mod basic;
mod crash;
mod encryption;
mod faults;
mod golden;
mod keys;
mod model;
mod reencrypt;
mod support;
