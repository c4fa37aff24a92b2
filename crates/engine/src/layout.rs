//! The files of a database directory, named once.
//!
//! A database is a directory holding:
//!
//! | name | what |
//! |---|---|
//! | [`DATA_FILE`] | the page file (and `data.sealkv.lock`, the page file's own lock) |
//! | [`WAL_DIR`] | the write-ahead log's segments |
//! | [`KEYS_FILE`] | the key registry (encrypted databases, and plaintext ones with field keys) |
//! | [`LOCK_FILE`] | the directory's lock: one writer, or any number of read-only openers |
//!
//! Their byte layouts are in the repository's `docs/FORMAT.md`. Tools that
//! look at a directory (the CLI's `init` refusing to overwrite a database,
//! backups, tests that damage a file on purpose) use these names rather
//! than spelling them again.

/// The page file.
pub const DATA_FILE: &str = "data.sealkv";
/// The directory of the write-ahead log's segments.
pub const WAL_DIR: &str = "wal";
/// The lock file that keeps a second writer out.
pub const LOCK_FILE: &str = "LOCK";
/// The key registry.
pub const KEYS_FILE: &str = "KEYS";
