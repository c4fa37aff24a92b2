//! sealkv: an embedded key-value storage engine with encryption at rest.
//!
//! **Status: not built yet** (issue 5). This is the facade crate most users
//! will depend on: `Config`, `Db`, the memtable, flushing, snapshots,
//! field-level encryption and key rotation, composing the write-ahead log
//! (`sealkv-core-wal`) and the page store (`sealkv-core-store`). Today it
//! re-exports the cryptographic envelope, which is built.

pub use sealkv_crypto_envelope as crypto;
