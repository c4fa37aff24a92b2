//! The files of a database directory, named once.
//!
//! A database is a directory holding:
//!
//! | name | what |
//! |---|---|
//! | [`DATA_FILE`] | the page file |
//! | [`DATA_LOCK_FILE`] | the page file's own lock |
//! | [`WAL_DIR`] | the write-ahead log's segments |
//! | [`KEYS_FILE`] | the key registry (encrypted databases, and plaintext ones with field keys) |
//! | [`LOCK_FILE`] | the directory's lock: one writer, or any number of read-only openers |
//!
//! Their byte layouts are in the repository's `docs/FORMAT.md`. Tools that
//! look at a directory (the CLI's `init` refusing to overwrite a database,
//! backups and their leftovers, tests that damage a file on purpose) use
//! these names rather than spelling them again.

use std::ffi::OsStr;

/// The page file.
pub const DATA_FILE: &str = "data.sealkv";
/// The page file's own lock file (held by the page store while open).
pub const DATA_LOCK_FILE: &str = "data.sealkv.lock";
/// The directory of the write-ahead log's segments.
pub const WAL_DIR: &str = "wal";
/// The lock file that keeps a second writer out.
pub const LOCK_FILE: &str = "LOCK";
/// The key registry.
pub const KEYS_FILE: &str = sealkv_crypto_envelope::registry::REGISTRY_FILE_NAME;

/// Whether `name`, an entry of a database directory, is one the engine
/// writes: the page file, the log directory, the lock files, the key
/// registry, and the registry's temporary (`KEYS.tmp`, replaced on the
/// next write) and set-aside (`KEYS.interrupted[.N]`) copies.
///
/// ```
/// use std::ffi::OsStr;
/// assert!(sealkv::layout::is_database_entry(OsStr::new("data.sealkv")));
/// assert!(sealkv::layout::is_database_entry(OsStr::new("KEYS.interrupted.2")));
/// assert!(!sealkv::layout::is_database_entry(OsStr::new("notes.txt")));
/// ```
pub fn is_database_entry(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    if [DATA_FILE, DATA_LOCK_FILE, WAL_DIR, LOCK_FILE, KEYS_FILE].contains(&name) {
        return true;
    }
    let Some(rest) = name
        .strip_prefix(KEYS_FILE)
        .and_then(|r| r.strip_prefix('.'))
    else {
        return false;
    };
    rest == "tmp"
        || rest == "interrupted"
        || rest
            .strip_prefix("interrupted.")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::crypto::MasterKey;
    use crate::{Config, Db};

    /// Every entry of a database the engine made, after writes, a flush,
    /// a rotation and a reopen, is one `is_database_entry` names.
    #[test]
    fn a_database_holds_only_the_entries_named_here() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::from_hex(&"42".repeat(32)).unwrap();
        let config = Config::new(dir.path()).encryption_key(key);
        let db = Db::open_with_config(config.clone()).unwrap();
        db.put(b"k", b"v").unwrap();
        db.flush().unwrap();
        db.rotate_data_key().unwrap();
        db.close().unwrap();
        Db::open_with_config(config).unwrap().close().unwrap();
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let name = entry.unwrap().file_name();
            assert!(is_database_entry(&name), "{name:?}");
            names.push(name.into_string().unwrap());
        }
        names.sort();
        assert_eq!(
            names,
            [KEYS_FILE, LOCK_FILE, DATA_FILE, DATA_LOCK_FILE, WAL_DIR]
        );
    }
}
