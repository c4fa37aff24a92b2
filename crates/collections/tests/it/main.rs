//! Collections integration tests: one binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod basic;
mod build;
mod canary;
mod import;
mod model;
mod sealed;
mod support;
mod tenancy;
