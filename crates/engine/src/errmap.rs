//! Lifting the layers' errors into the engine's: the cases a user acts on
//! (corruption, rollback, a poisoned log) get the engine's own variants,
//! naming the file; the rest keep their layer's detail. `Rollback` only
//! where an authenticated record shows a newer state than the one
//! presented (a page that opens but is not the version its parent
//! expects); a field read from a header not yet authenticated is a hint,
//! and its failure is `Corruption`.

use std::path::Path;

use crate::error::Error;
use crate::layout::{DATA_FILE, KEYS_FILE, WAL_DIR};

/// The file of WAL segment `n`.
pub(crate) fn segment_file(dir: &Path, n: u64) -> std::path::PathBuf {
    sealkv_core_wal::segment_path(&dir.join(WAL_DIR), n)
}

/// What a unit whose clear header names a data key the registry lacks
/// is, said without blaming a rollback: the id is not authenticated.
fn unknown_key(dek: sealkv_crypto_envelope::KeyId) -> String {
    format!(
        "names data key {dek}, which the key registry does not hold: a damaged header or an older registry"
    )
}

/// A WAL error, in the engine's terms.
pub(crate) fn wal(dir: &Path, e: sealkv_core_wal::Error) -> Error {
    use sealkv_core_wal::Error as W;
    match e {
        W::Corruption {
            segment,
            offset,
            what,
        } => Error::Corruption {
            file: segment_file(dir, segment),
            what: format!("at offset {offset}: {what}"),
        },
        W::WrongDatabase { segment } => Error::Corruption {
            file: segment_file(dir, segment),
            what: "the segment belongs to another database".into(),
        },
        W::AlgorithmMismatch {
            segment,
            found,
            expected,
        } => Error::Corruption {
            file: segment_file(dir, segment),
            what: format!("the header names algorithm {found}, its data key is {expected}"),
        },
        // The id is read from a header not yet authenticated: a hint, not
        // evidence. The evidence of a rollback (a meta page recording a
        // newer registry) is checked at open, before the log is read.
        W::MissingKey { segment, dek } => Error::Corruption {
            file: segment_file(dir, segment),
            what: unknown_key(dek),
        },
        W::EncryptedLog { .. } => Error::EncryptedDatabase,
        W::PlaintextLog { segment } => Error::Corruption {
            file: segment_file(dir, segment),
            what: "a plaintext segment in an encrypted database".into(),
        },
        W::Replay { seq, source } => Error::Corruption {
            file: dir.join(WAL_DIR),
            what: format!("at sequence {seq}: {source}"),
        },
        W::Poisoned { cause } => Error::Poisoned {
            cause: crate::poison::PoisonCause::Wal(cause),
            outcome_unknown: false,
        },
        W::Io(e) => Error::Io(e),
        W::ForkedProcess { opened_by, current } => Error::ForkedProcess { opened_by, current },
        other => Error::Wal(other),
    }
}

/// A page-file error, in the engine's terms.
pub(crate) fn store(dir: &Path, e: sealkv_core_store::StoreError) -> Error {
    use sealkv_core_store::StoreError as S;
    let file = dir.join(DATA_FILE);
    match e {
        S::Corruption { page, what } => Error::Corruption {
            file,
            what: format!("page {page}: {what}"),
        },
        S::Rollback { page } => Error::Rollback {
            file,
            what: format!("page {page} is an older version than its parent expects"),
        },
        S::MissingKey { page, dek } => Error::Corruption {
            file,
            what: format!("page {page} {}", unknown_key(dek)),
        },
        S::WrongDatabase => Error::Corruption {
            file,
            what: "the page file and the key registry (KEYS) belong to different databases: \
                   one of them was put in from another database"
                .into(),
        },
        S::Io(e) => Error::Io(e),
        S::ForkedProcess { opened_by, current } => Error::ForkedProcess { opened_by, current },
        other => Error::Store(other),
    }
}

/// A key-registry error, in the engine's terms.
pub(crate) fn registry(dir: &Path, e: sealkv_crypto_envelope::registry::RegistryError) -> Error {
    use sealkv_crypto_envelope::registry::RegistryError as R;
    match e {
        R::WrongKey => Error::WrongKey,
        R::Corruption { what, offset } => Error::Corruption {
            file: dir.join(KEYS_FILE),
            what: format!("at offset {offset}: {what}"),
        },
        R::UnknownKey(id) => Error::UnknownKey(id),
        R::KeyDestroyed(id) => Error::KeyDestroyed(id),
        R::Io(e) => Error::Io(e),
        other => Error::Registry(other),
    }
}
