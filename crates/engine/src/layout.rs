//! The names of what a database directory holds: what the engine writes
//! there, so tools (the `sealkv` command, backups) name the files from
//! here rather than repeating them.

use std::ffi::OsStr;

/// The page file: the B+tree of sealed pages.
pub const DATA_FILE: &str = "data.sealkv";
/// The page file's own lock file (held by the page store while open).
pub const DATA_LOCK_FILE: &str = "data.sealkv.lock";
/// The directory of write-ahead log segments.
pub const WAL_DIR: &str = "wal";
/// The lock file (empty; held with an advisory lock while open).
pub const LOCK_FILE: &str = "LOCK";
/// The key registry (present with a key, encrypted or not).
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
