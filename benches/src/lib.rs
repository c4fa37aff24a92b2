//! Criterion benchmarks for sealkv; see `benches/` in this package.
//!
//! Run them all with `cargo bench -p sealkv-benches`, or one with
//! `cargo bench -p sealkv-benches --bench aead`.
