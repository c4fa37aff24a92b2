//! What goes wrong in the store, and how openraft hears of it.

use std::path::PathBuf;

use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageError, StorageIOError};

use crate::types::NodeId;

/// An error of the replicated store. openraft sees it as a
/// [`StorageError`] (and stops the node: storage that fails is not trusted
/// to go on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database said no.
    #[error(transparent)]
    Db(#[from] sealkv::Error),
    /// A snapshot archive could not be written or read.
    #[error(transparent)]
    Archive(#[from] sealkv_backup::ArchiveError),
    /// A file or directory of the store could not be used.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A record the store wrote does not decode: damage that the AEAD did
    /// not catch cannot happen in an encrypted database, so this is a
    /// plaintext database's damage or a record of another program.
    #[error("a stored {what} does not decode")]
    Corrupt {
        /// Which record.
        what: &'static str,
    },
    /// The options cannot work (for example, snapshots of an encrypted
    /// database with no snapshot key, which would ship it in clear).
    #[error("invalid store options: {0}")]
    InvalidOptions(String),
    /// The log is not a consecutive run of entries (an entry is missing or
    /// records another index than its key).
    #[error("the raft log has a hole or a misplaced entry at index {index}")]
    LogHole {
        /// The index where the run breaks.
        index: u64,
    },
    /// The log is purged past the last entry the state machine has
    /// applied, and no snapshot covers the entries in between: the node
    /// cannot bring its state machine up to date from its own directory.
    /// Rebuild it from another node (a new directory, joining the cluster
    /// as a new node).
    #[error(
        "the raft log is purged up to index {purged} but the state machine has applied \
         only up to {applied:?}, and no snapshot covers the entries between"
    )]
    PurgedPastState {
        /// The last purged index.
        purged: u64,
        /// The last applied index (`None`: nothing applied).
        applied: Option<u64>,
    },
    /// An append had to wait for a snapshot's install (its entries follow
    /// a purge only that snapshot covers), and the install failed. Nothing
    /// of the append was written.
    #[error("the snapshot install an append waited for failed")]
    InstallFailed,
    /// A snapshot to install does not hold what its metadata says.
    #[error("the snapshot to install does not match its metadata")]
    SnapshotMismatch,
    /// A snapshot, or the node's state machine, records another cluster id
    /// than the node's ([`crate::StoreOptions::cluster_id`]).
    #[error("the {what} belongs to another cluster")]
    OtherCluster {
        /// What: the snapshot or the state machine.
        what: &'static str,
    },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }

    /// As openraft's error, naming what was being done.
    pub(crate) fn storage(
        self,
        subject: ErrorSubject<NodeId>,
        verb: ErrorVerb,
    ) -> StorageError<NodeId> {
        StorageError::IO {
            source: StorageIOError::new(subject, verb, AnyError::new(&self)),
        }
    }
}

/// Maps a store result into openraft's, naming the subject and the verb.
pub(crate) trait IntoStorage<T> {
    fn storage(
        self,
        subject: ErrorSubject<NodeId>,
        verb: ErrorVerb,
    ) -> Result<T, StorageError<NodeId>>;
}

impl<T, E: Into<StoreError>> IntoStorage<T> for Result<T, E> {
    fn storage(
        self,
        subject: ErrorSubject<NodeId>,
        verb: ErrorVerb,
    ) -> Result<T, StorageError<NodeId>> {
        self.map_err(|e| e.into().storage(subject, verb))
    }
}
