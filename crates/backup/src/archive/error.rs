//! [`ArchiveError`]: everything that can go wrong writing or reading an
//! archive.

use std::path::PathBuf;

/// Where in an archive a problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The archive header.
    Header,
    /// Chunk number `index` (0-based, in file order), starting at byte
    /// `offset` of the file.
    Chunk {
        /// The chunk's position in the file.
        index: u64,
        /// Its byte offset.
        offset: u64,
    },
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Header => f.write_str("the header"),
            Location::Chunk { index, offset } => write!(f, "chunk {index} (offset {offset})"),
        }
    }
}

impl Location {
    /// The chunk index, if the location is a chunk.
    pub fn chunk(&self) -> Option<u64> {
        match self {
            Location::Header => None,
            Location::Chunk { index, .. } => Some(*index),
        }
    }
}

/// Errors of export, import and verify. None carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// A key was given but the archive is not sealed (a plaintext export,
    /// or one put in the sealed one's place): refused, since anyone can
    /// write a plaintext archive. Read it deliberately with no key.
    #[error(
        "the archive {} is NOT sealed (a plaintext export, or a replacement): refused because a key was given; read it without a key (CLI: --plaintext-archive) only if you made it",
        file.display()
    )]
    NotSealed {
        /// The archive.
        file: PathBuf,
    },
    /// The key does not open this archive (its key check does not match).
    #[error("wrong key for the archive {}", file.display())]
    WrongKey {
        /// The archive.
        file: PathBuf,
    },
    /// The archive is sealed and no key was given.
    #[error("the archive {} is sealed: give its key", file.display())]
    MissingKey {
        /// The archive.
        file: PathBuf,
    },
    /// A part of the archive failed authentication, its checksum or a
    /// structural check.
    #[error("corruption in archive {} at {at}: {what}", file.display())]
    Corruption {
        /// The archive.
        file: PathBuf,
        /// Where.
        at: Location,
        /// What is wrong.
        what: String,
    },
    /// The archive ends early: at or inside the chunk named.
    #[error("archive {} is truncated at {at}: {what}", file.display())]
    Truncated {
        /// The archive.
        file: PathBuf,
        /// The chunk that is missing or cut.
        at: Location,
        /// What was expected.
        what: &'static str,
    },
    /// A format version or algorithm this build does not know.
    #[error("archive {} is not supported: {what}", file.display())]
    Unsupported {
        /// The archive.
        file: PathBuf,
        /// What is unknown.
        what: String,
    },
    /// The destination exists and replacing it was not asked for.
    #[error("{} already exists; refusing to overwrite it", path.display())]
    Exists {
        /// The destination.
        path: PathBuf,
    },
    /// Options that do not go together.
    #[error("invalid archive options: {0}")]
    InvalidOptions(String),
    /// An I/O error, with its path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The source or destination database failed.
    #[error(transparent)]
    Db(#[from] sealkv::Error),
    /// A key could not be loaded or derived.
    #[error(transparent)]
    Key(#[from] sealkv::crypto::KeyError),
    /// A cipher or randomness failure.
    #[error(transparent)]
    Crypto(#[from] sealkv::crypto::CryptoError),
}

impl ArchiveError {
    /// The location of a corruption or truncation, if that is what this is.
    pub fn location(&self) -> Option<Location> {
        match self {
            ArchiveError::Corruption { at, .. } | ArchiveError::Truncated { at, .. } => Some(*at),
            _ => None,
        }
    }
}

/// An I/O error mapper naming `path`.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}
