//! [`import`]: a new database from an archive.

use std::path::Path;
use std::sync::Arc;

use sealkv::crypto::{CryptoProvider, KeySource};
use sealkv::{Config, Db, SyncMode, WriteBatch};

use super::error::ArchiveError;
use super::files::TempDir;
use super::reader::{Entry, open_file};
use super::{ArchiveSummary, Progress};

/// Records are written in batches of at most this many bytes...
const BATCH_BYTES: usize = 4 << 20;
/// ...or this many records.
const BATCH_RECORDS: usize = 4096;

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    replace_existing: bool,
    provider: Arc<CryptoProvider>,
}

impl ImportOptions {
    /// Defaults: an existing destination is refused; a sealed archive is
    /// opened with the default crypto provider.
    pub fn new() -> Self {
        Self::default()
    }

    /// The ciphers to open a sealed archive with (the default provider
    /// otherwise). The new database seals with its own [`Config`]'s
    /// provider.
    #[must_use]
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = provider;
        self
    }

    /// Replace a database already at the destination (off by default). The
    /// old one is removed only after the new one is complete and in place.
    #[must_use]
    pub fn replace_existing(mut self, on: bool) -> Self {
        self.replace_existing = on;
        self
    }
}

/// Builds a new database at `dest` from the archive at `archive`, opened
/// with `archive_key` if it is sealed.
///
/// `config` makes the new database's [`Config`] for a directory: any
/// algorithm, key, page size, encrypted or not — this is the migration path
/// between plaintext and encrypted databases and between algorithms. It is
/// called with a temporary directory next to `dest`; the database is built
/// there, closed (flushed and synced), and renamed to `dest` only when the
/// whole archive has been read and checked, so a failed import leaves no
/// database behind. The archive is checked as it is read; any damage stops
/// the import with the error naming the chunk.
pub fn import(
    archive: &Path,
    archive_key: Option<&KeySource>,
    dest: &Path,
    config: &dyn Fn(&Path) -> Config,
    options: &ImportOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ArchiveSummary, ArchiveError> {
    if !options.replace_existing && dest.symlink_metadata().is_ok() {
        return Err(ArchiveError::Exists {
            path: dest.to_path_buf(),
        });
    }
    tracing::debug!(
        archive = %archive.display(),
        dest = %dest.display(),
        keyed = archive_key.is_some(),
        "archive import started"
    );
    let (mut reader, total) = open_file(archive, archive_key, &options.provider)?;
    let temp = TempDir::create(dest)?;
    let cfg = config(temp.path());
    if cfg.path() != temp.path() {
        // Building anywhere else would write into a database the caller
        // did not name as the destination.
        return Err(ArchiveError::Db(sealkv::Error::InvalidConfig(
            "import's config function must use the directory it is given".into(),
        )));
    }
    // Nothing is acknowledged to anyone before the final close and rename:
    // no need to fsync every batch.
    let db = Db::open_with_config(cfg.sync_mode(SyncMode::Never))?;
    let mut batch = WriteBatch::new();
    let result = (|| {
        // The keyspace records go to: the default one until a marker.
        let mut keyspace = None;
        while let Some(entry) = reader.next_entry()? {
            match entry {
                Entry::Keyspace(name) => keyspace = Some(db.keyspace(&name)?),
                Entry::Record(key, value) => {
                    match &keyspace {
                        Some(ks) => batch.put_in(ks, &key, &value),
                        None => batch.put(&key, &value),
                    };
                }
            }
            if batch.len() >= BATCH_RECORDS || batch.size_in_bytes() >= BATCH_BYTES {
                db.write(&batch)?;
                batch.clear();
                progress(&Progress::reading(&reader, total));
            }
        }
        db.write(&batch)?;
        drop(keyspace);
        db.flush()?;
        Ok::<_, ArchiveError>(())
    })();
    let closed = db.close();
    result?;
    closed?;
    temp.commit(dest, options.replace_existing)?;
    let summary = reader.summary();
    summary.log("archive import");
    progress(&Progress::finished(&summary, total));
    Ok(summary)
}
