//! Errors and the exit codes they map to (part of the CLI contract).
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | `get` of an absent key |
//! | 2 | usage error (clap) |
//! | 3 | key problem: missing, wrong, or a bad key file |
//! | 4 | corruption, a rollback (an older key registry; a directory older than its `--anchor-file`), a damaged anchor, or a failed integrity check |
//! | 5 | any other error: I/O, lock held, destination exists, bad input, a failed write of output |
//! | 6 | key wrapper unavailable: a PKCS#11 module that does not load, a token that is not present or does not answer (an outage, not a wrong key) |

use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code: `get` of an absent key.
pub(crate) const NOT_FOUND: u8 = 1;
/// Exit code: usage error.
pub(crate) const USAGE: u8 = 2;
/// Exit code: key problem.
pub(crate) const KEY_PROBLEM: u8 = 3;
/// Exit code: corruption.
pub(crate) const CORRUPTION: u8 = 4;
/// Exit code: any other error.
pub(crate) const OTHER: u8 = 5;
/// Exit code: the key wrapper (HSM, KMS) cannot be reached.
pub(crate) const KEY_UNAVAILABLE: u8 = 6;

/// A command's failure: one line on stderr, never key material.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The destination exists and we do not overwrite.
    #[error("{} already exists; refusing to overwrite it", .0.display())]
    Exists(PathBuf),
    /// `restore --anchor-file` into a DEST that a stopped run of it left
    /// before the anchor pointed there.
    #[error(
        "{} is what a restore that stopped before its anchor step left: the freshness anchor {} still records the database it recorded before. Remove {} and run the restore again",
        dest.display(),
        anchor.display(),
        dest.display()
    )]
    RestoreStopped { dest: PathBuf, anchor: PathBuf },
    /// I/O on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A key could not be made or read.
    #[error("{0}")]
    Key(String),
    /// The key wrapper (an HSM token, its module) cannot be reached: an
    /// outage, not a wrong key.
    #[error("{0}")]
    KeyUnavailable(String),
    /// An input file that is not in the expected format.
    #[error("{0}")]
    Input(String),
    /// Options that do not go together.
    #[error("{0}")]
    Usage(String),
    /// `get` of an absent key (no message).
    #[error("key not found")]
    NotFound,
    /// `keyspaces --drop` of a keyspace that does not exist.
    #[error("no keyspace {0:?}")]
    KeyspaceNotFound(String),
    /// A check found problems (already reported on stdout).
    #[error("{0}")]
    CheckFailed(String),
    /// Standard output (or error) could not be written: the output is lost.
    #[error("cannot write to {stream}: {source}")]
    Output {
        stream: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A directory that is neither empty nor a sealkv database.
    #[error(
        "{} is not empty and is not a sealkv database (it holds {entries}); give an empty or new directory",
        path.display()
    )]
    NotEmpty { path: PathBuf, entries: String },
    /// A command stopped part way: `source` is why, `report` what was done.
    #[error("{source}; {report}")]
    Stopped {
        source: Box<CliError>,
        report: String,
    },
    /// A write of a command that undoes its work on failure failed: the
    /// first failure, without the engine's advice to reopen the database
    /// (there is none left to reopen).
    #[error("a write failed: {0}")]
    WriteFailed(sealkv::PoisonCause),
    /// The database said no.
    #[error(transparent)]
    Db(#[from] sealkv::Error),
    /// An archive could not be written or read.
    #[error(transparent)]
    Archive(#[from] sealkv_backup::ArchiveError),
    /// A peer engine of `sealkv bench --peers` failed on its database file.
    #[cfg(feature = "peers")]
    #[error("{engine} at {}: {message}", path.display())]
    Peer {
        engine: &'static str,
        path: PathBuf,
        message: String,
    },
}

impl CliError {
    /// The contract's exit code for this error.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// The code as a number.
    pub(crate) fn code(&self) -> u8 {
        match self {
            CliError::NotFound | CliError::KeyspaceNotFound(_) => NOT_FOUND,
            CliError::Usage(_) => USAGE,
            CliError::Key(_) => KEY_PROBLEM,
            CliError::KeyUnavailable(_) => KEY_UNAVAILABLE,
            CliError::CheckFailed(_) => CORRUPTION,
            CliError::Db(e) => db_code(e),
            CliError::Archive(e) => archive_code(e),
            CliError::Stopped { source, .. } => source.code(),
            CliError::Exists(_)
            | CliError::RestoreStopped { .. }
            | CliError::Io { .. }
            | CliError::Input(_)
            | CliError::Output { .. }
            | CliError::WriteFailed(_)
            | CliError::NotEmpty { .. } => OTHER,
            #[cfg(feature = "peers")]
            CliError::Peer { .. } => OTHER,
        }
    }
}

/// The exit code of an engine error.
fn db_code(e: &sealkv::Error) -> u8 {
    use sealkv::Error as E;
    use sealkv::crypto::registry::RegistryError as R;
    use sealkv::crypto::{KeyError, WrapError};
    match e {
        E::Key(KeyError::Wrap(WrapError::Unavailable(_)))
        | E::Registry(R::Key(KeyError::Wrap(WrapError::Unavailable(_)))) => KEY_UNAVAILABLE,
        E::MissingKey | E::EncryptedDatabase | E::WrongKey | E::Key(_) => KEY_PROBLEM,
        E::Corruption { .. } | E::Rollback { .. } => CORRUPTION,
        E::Anchor(
            sealkv::anchor::AnchorError::Corrupt { .. }
            | sealkv::anchor::AnchorError::Unauthenticated { .. }
            | sealkv::anchor::AnchorError::OtherDatabase { .. },
        ) => CORRUPTION,
        // Refusals of what the caller asked (a plaintext database asked to
        // rotate or re-encrypt, a backup into the database itself, a bad
        // option) are no key problem and no damage.
        E::NotEncrypted { .. }
        | E::MissingFieldId
        | E::InvalidDestination { .. }
        | E::InvalidConfig(_) => OTHER,
        _ => OTHER,
    }
}

/// The exit code of an archive error.
fn archive_code(e: &sealkv_backup::ArchiveError) -> u8 {
    use sealkv_backup::ArchiveError as A;
    match e {
        A::Key(sealkv::crypto::KeyError::Wrap(sealkv::crypto::WrapError::Unavailable(_))) => {
            KEY_UNAVAILABLE
        }
        A::WrongKey { .. } | A::MissingKey { .. } | A::Key(_) => KEY_PROBLEM,
        A::Corruption { .. }
        | A::Truncated { .. }
        | A::Unsupported { .. }
        | A::NotSealed { .. } => CORRUPTION,
        A::Db(e) => db_code(e),
        _ => OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_refusals_are_other_errors_not_key_or_corruption() {
        let refusals = [
            sealkv::Error::NotEncrypted {
                operation: "rotate_data_key",
            },
            sealkv::Error::MissingFieldId,
            sealkv::Error::InvalidDestination {
                path: PathBuf::from("db/inside"),
                reason: "it is inside the database directory db or contains it".into(),
            },
            sealkv::Error::InvalidConfig("page size 3000".into()),
        ];
        for e in &refusals {
            assert_eq!(db_code(e), OTHER, "{e}");
        }
        assert_eq!(db_code(&sealkv::Error::WrongKey), KEY_PROBLEM);
    }

    #[test]
    fn an_unreachable_key_wrapper_is_its_own_code_not_a_wrong_key() {
        use sealkv::crypto::{KeyError, WrapError, registry::RegistryError};
        let outage = || KeyError::Wrap(WrapError::Unavailable("token absent".into()));
        assert_eq!(
            db_code(&sealkv::Error::Registry(RegistryError::Key(outage()))),
            KEY_UNAVAILABLE
        );
        assert_eq!(db_code(&sealkv::Error::Key(outage())), KEY_UNAVAILABLE);
        let wrong = KeyError::Wrap(WrapError::WrongKey("tag".into()));
        assert_eq!(db_code(&sealkv::Error::Key(wrong)), KEY_PROBLEM);
        assert_eq!(
            CliError::KeyUnavailable("module".into()).code(),
            KEY_UNAVAILABLE
        );
        assert_ne!(KEY_UNAVAILABLE, KEY_PROBLEM);
    }
}
