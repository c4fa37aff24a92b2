//! [`PoisonCause`]: why a database stopped accepting writes.
//!
//! A failed WAL append, WAL roll or page-file commit leaves the files in a
//! state the engine cannot vouch for (a write may or may not have reached
//! the disk), so the database refuses writes until it is reopened. The
//! first failure is kept and handed to every refusal, so an operator sees
//! the operating-system error (a full disk, too many open files, EIO)
//! rather than only "reopen it".

use std::fmt;
use std::sync::Arc;

use sealkv_fileio::FileError;

use crate::error::Error;

/// The failure that stopped a database accepting writes: the first one,
/// whichever layer reported it. Cheap to clone (a reference count); like
/// every error of the engine it carries no key material and no record
/// contents, only file names, operations and OS errors.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PoisonCause {
    /// Appending to, syncing or rolling the write-ahead log failed.
    Wal(Arc<sealkv_core_wal::Error>),
    /// Committing a flush, a re-encryption step or a key switch to the
    /// page file failed.
    Store(Arc<sealkv_core_store::StoreError>),
    /// Another step failed (for example a background flush), in the
    /// engine's terms.
    Engine(Arc<Error>),
}

impl PoisonCause {
    /// The cause of a failed WAL operation: the log's own first failure
    /// when it was already poisoned, else this error.
    pub(crate) fn wal(e: sealkv_core_wal::Error) -> Self {
        match e {
            sealkv_core_wal::Error::Poisoned { cause } => PoisonCause::Wal(cause),
            other => PoisonCause::Wal(Arc::new(other)),
        }
    }

    /// The cause of a failed page-file commit.
    pub(crate) fn store(e: sealkv_core_store::StoreError) -> Self {
        PoisonCause::Store(Arc::new(e))
    }

    /// The cause of any other failed step: the cause inside it when it is
    /// itself a refusal of a poisoned database.
    pub(crate) fn engine(e: Error) -> Self {
        match e {
            Error::Poisoned { cause, .. } => cause,
            other => PoisonCause::Engine(Arc::new(other)),
        }
    }

    /// The file operation that failed (which file, which operation, the
    /// OS error), when the cause was I/O.
    pub fn file_error(&self) -> Option<&FileError> {
        match self {
            PoisonCause::Wal(e) => wal_file_error(e),
            PoisonCause::Store(e) => match &**e {
                sealkv_core_store::StoreError::Io(f) => Some(f),
                _ => None,
            },
            PoisonCause::Engine(e) => match &**e {
                Error::Io(f) => Some(f),
                Error::Poisoned { cause, .. } => cause.file_error(),
                Error::Wal(w) => wal_file_error(w),
                Error::Store(sealkv_core_store::StoreError::Io(f)) => Some(f),
                _ => None,
            },
        }
    }

    /// The operating-system error at the root of the cause (`ENOSPC`,
    /// `EMFILE`, `EIO`, …), when it was I/O.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        self.file_error().map(|f| &f.source)
    }
}

fn wal_file_error(e: &sealkv_core_wal::Error) -> Option<&FileError> {
    match e {
        sealkv_core_wal::Error::Io(f) => Some(f),
        sealkv_core_wal::Error::Poisoned { cause } => wal_file_error(cause),
        _ => None,
    }
}

impl fmt::Display for PoisonCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoisonCause::Wal(e) => e.fmt(f),
            PoisonCause::Store(e) => e.fmt(f),
            PoisonCause::Engine(e) => e.fmt(f),
        }
    }
}

/// Its `Display` is the failure's own, so its source is the failure's
/// source (not the failure again).
impl std::error::Error for PoisonCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoisonCause::Wal(e) => e.source(),
            PoisonCause::Store(e) => e.source(),
            PoisonCause::Engine(e) => e.source(),
        }
    }
}

/// The poisoned state of an open database: unset until the first failure,
/// then that failure for good.
#[derive(Debug, Default)]
pub(crate) struct Poison {
    cause: std::sync::OnceLock<PoisonCause>,
}

impl Poison {
    /// Whether a failure stopped writes.
    pub(crate) fn is_set(&self) -> bool {
        self.cause.get().is_some()
    }

    /// Records `cause` unless an earlier failure was recorded, and returns
    /// the one kept (the first).
    pub(crate) fn set(&self, cause: PoisonCause) -> PoisonCause {
        self.cause.get_or_init(|| cause).clone()
    }

    /// The error for an operation stopped by the recorded failure, if
    /// there is one: `outcome_unknown` when the operation had already put
    /// something in the log, false when nothing of it was applied.
    pub(crate) fn error(&self, outcome_unknown: bool) -> Option<Error> {
        self.cause.get().map(|cause| Error::Poisoned {
            cause: cause.clone(),
            outcome_unknown,
        })
    }

    /// Refuses an operation if writes stopped (nothing of it is applied).
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self.error(false) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
