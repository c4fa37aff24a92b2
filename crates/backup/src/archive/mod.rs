//! Logical export archives: the records of a snapshot in one portable file,
//! sealed in chunks, and the import and verify that read them back.
//!
//! An archive is a header (164 bytes, then a wrapper section when it is
//! sealed under a [`KeyWrapper`](sealkv::crypto::KeyWrapper): a random
//! archive key of its own, wrapped by it) followed by chunks. Each chunk holds up
//! to `chunk_size` bytes of a stream of length-prefixed records (a record
//! may span chunks) and is sealed with the STREAM construction: chunk `i`
//! under the archive's own chunk key with nonce `i || last flag` and AAD
//! `header || i || frame`. The last chunk is a trailer with the record and
//! byte counts. So a reader detects a cut at or inside any chunk, chunks
//! swapped, duplicated or taken from another archive, and a changed byte
//! anywhere, and names the chunk; a wrong key is told apart from damage by
//! the header's key check ([`ArchiveError::WrongKey`]).
//!
//! The modules, one job each: [`format`](mod@format) (bytes), `stream` (sealing
//! chunks), `writer` ([`ArchiveWriter`], [`export`]), `reader`
//! ([`ArchiveReader`], [`verify_archive`], [`verify_archive_with`]), `import` ([`import`]).

mod error;
mod files;
pub mod format;
mod import;
mod reader;
mod stream;
mod writer;

use std::path::PathBuf;

pub use error::{ArchiveError, Location};
pub use format::{Header, KeyKind, Protection, Trailer, WrappedArchiveKey};
pub use import::{ImportOptions, import};
pub use reader::{ArchiveReader, Entry, Record, verify_archive, verify_archive_with};
pub use writer::{ArchiveWriter, ExportOptions, export, export_snapshot};

/// How far an export, import or verify has got, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Archive bytes written or read so far.
    pub bytes_done: u64,
    /// The archive's size, when known (reading: always; exporting: only in
    /// the last report).
    pub bytes_total: Option<u64>,
    /// Records written or read so far.
    pub records_done: u64,
    /// The number of records, when known (only in the last report: it is in
    /// the archive's trailer).
    pub records_total: Option<u64>,
}

impl Progress {
    /// The last report, from what was written or read and checked.
    pub(crate) fn finished(summary: &ArchiveSummary, bytes_total: u64) -> Progress {
        Progress {
            bytes_done: summary.archive_bytes,
            bytes_total: Some(bytes_total),
            records_done: summary.records,
            records_total: Some(summary.records),
        }
    }

    /// A report while reading an archive of `bytes_total` bytes.
    pub(crate) fn reading<R: std::io::Read>(
        reader: &ArchiveReader<R>,
        bytes_total: u64,
    ) -> Progress {
        Progress {
            bytes_done: reader.bytes_read(),
            bytes_total: Some(bytes_total),
            records_done: reader.records_read(),
            records_total: None,
        }
    }
}

/// What an archive holds, as written or as read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// The archive file.
    pub path: PathBuf,
    /// Its header: protection, chunk size, source database, snapshot.
    pub header: Header,
    /// Records.
    pub records: u64,
    /// Key and value bytes of the records.
    pub data_bytes: u64,
    /// Size of the archive file.
    pub archive_bytes: u64,
    /// Chunks, the trailer included.
    pub chunks: u64,
}

impl ArchiveSummary {
    /// Whether the archive is sealed (not a plaintext export).
    pub fn is_sealed(&self) -> bool {
        matches!(self.header.protection, Protection::Sealed { .. })
    }

    /// The `debug` event that ends an export, an import or a check: counts
    /// and the path, never a key, a salt or a record.
    pub(crate) fn log(&self, what: &'static str) {
        tracing::debug!(
            path = %self.path.display(),
            sealed = self.is_sealed(),
            records = self.records,
            data_bytes = self.data_bytes,
            archive_bytes = self.archive_bytes,
            chunks = self.chunks,
            "{what} finished"
        );
    }
}
