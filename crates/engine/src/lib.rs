//! sealkv: an embedded key-value storage engine with encryption at rest.
//!
//! **Status: being built** (issue 5). This is the facade crate most users
//! will depend on: `Config`, `Db`, the memtable, flushing, snapshots,
//! field-level encryption and key rotation, composing the write-ahead log
//! (`sealkv-core-wal`) and the page store (`sealkv-core-store`). There is no
//! `Db` to open yet; what exists is internal groundwork (the multi-version
//! memtable and the double-ended merging iterator), and a re-export of the
//! cryptographic envelope, which is built.

pub use sealkv_crypto_envelope as crypto;

#[allow(dead_code)] // Used by `Db`, which is being built.
mod memtable;
#[allow(dead_code)] // Used by `Db`, which is being built.
mod merge;
