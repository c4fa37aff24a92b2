//! The names of what a database directory holds: what the engine writes
//! there, so tools (the `sealkv` command, backups) name the files from
//! here rather than repeating them.

use std::ffi::OsStr;

/// The page file: the B+tree of sealed pages.
pub const DATA_FILE: &str = "data.sealkv";
/// The directory of write-ahead log segments.
pub const WAL_DIR: &str = "wal";
/// The lock file (empty; held with an advisory lock while open).
pub const LOCK_FILE: &str = "LOCK";
/// The key registry (present with a key, encrypted or not).
pub const KEYS_FILE: &str = sealkv_crypto_envelope::registry::REGISTRY_FILE_NAME;

/// Whether `name`, an entry of a database directory, is one the engine
/// writes: the page file, the log directory, the lock file, the key
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
    if [DATA_FILE, WAL_DIR, LOCK_FILE, KEYS_FILE].contains(&name) {
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
