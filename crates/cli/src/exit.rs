//! Errors and the exit codes they map to (part of the CLI contract).
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | `get` of an absent key |
//! | 2 | usage error (clap) |
//! | 3 | key problem: missing, wrong, or a bad key file |
//! | 4 | corruption, or a failed integrity check |
//! | 5 | any other error: I/O, lock held, destination exists |

use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code: `get` of an absent key.
#[allow(dead_code)] // Used by `get`, which needs the engine.
pub(crate) const NOT_FOUND: u8 = 1;
/// Exit code: key problem.
pub(crate) const KEY_PROBLEM: u8 = 3;
/// Exit code: corruption.
#[allow(dead_code)] // Used by `verify`, which needs the engine.
pub(crate) const CORRUPTION: u8 = 4;
/// Exit code: any other error.
pub(crate) const OTHER: u8 = 5;

/// A command's failure: one line on stderr, never key material.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The destination exists and we do not overwrite.
    #[error("{} already exists; refusing to overwrite it", .0.display())]
    Exists(PathBuf),
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
    /// The command needs a part of sealkv that is not built yet.
    #[error(
        "`{0}` is not available yet: the storage engine is still being built (see the README's status)"
    )]
    NotYet(&'static str),
}

impl CliError {
    /// The contract's exit code for this error.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Key(_) => KEY_PROBLEM,
            CliError::Exists(_) | CliError::Io { .. } | CliError::NotYet(_) => OTHER,
        })
    }
}
