//! Writing archives: [`ArchiveWriter`] (records in, chunks out) and
//! [`export`] (a database snapshot into an archive file).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sealkv::crypto::archive::ArchiveKeys;
use sealkv::crypto::{
    AlgorithmId, CryptoProvider, DbId, EncryptionAlgorithm, KeySource, MasterKey, SecretKey,
};
use sealkv::{Db, Snapshot};

use super::error::{ArchiveError, io};
use super::files::TempFile;
use super::format::{
    CHUNK_TAG_LEN, DEFAULT_CHUNK_SIZE, FRAME_LEN, Header, KEYSPACE_MARK, KeyKind, MAX_CHUNK_SIZE,
    MAX_KEYSPACE_NAME_LEN, MAX_RECORD_KEY_LEN, MAX_RECORD_VALUE_LEN, MIN_CHUNK_SIZE, Protection,
    RECORD_PREFIX_LEN, Trailer, VERSION, frame, record_prefix,
};
use super::stream::{ChunkSealing, export_key, plaintext_salt, wrap_archive_key};
use super::{ArchiveSummary, Progress};

/// How to write an archive.
///
/// Sealed is the default way ([`ExportOptions::sealed`]); an unencrypted
/// archive needs the loudly named [`ExportOptions::plaintext_unencrypted`].
#[derive(Clone)]
pub struct ExportOptions {
    key: Option<KeySource>,
    algorithm: AlgorithmId,
    chunk_size: u32,
    replace_existing: bool,
    provider: Arc<CryptoProvider>,
    keyspace: Option<String>,
}

impl std::fmt::Debug for ExportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportOptions")
            .field("sealed", &self.key.is_some())
            .field("algorithm", &self.algorithm)
            .field("chunk_size", &self.chunk_size)
            .field("replace_existing", &self.replace_existing)
            .field("keyspace", &self.keyspace)
            .finish_non_exhaustive()
    }
}

impl ExportOptions {
    /// A sealed archive under `key` (the database's master key, a separate
    /// backup key, a passphrase, or a key wrapper: then a random archive
    /// key of this archive alone, wrapped by it), AES-256-GCM, 256 KiB
    /// chunks.
    pub fn sealed(key: KeySource) -> Self {
        ExportOptions {
            key: Some(key),
            algorithm: EncryptionAlgorithm::Aes256Gcm.id(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            replace_existing: false,
            provider: Arc::new(CryptoProvider::default()),
            keyspace: None,
        }
    }

    /// An archive whose records anyone who reads the file can read:
    /// CRC32C checksums per chunk, no encryption. Only for moving data out
    /// of sealkv on purpose.
    pub fn plaintext_unencrypted() -> Self {
        ExportOptions {
            key: None,
            algorithm: EncryptionAlgorithm::Aes256Gcm.id(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            replace_existing: false,
            provider: Arc::new(CryptoProvider::default()),
            keyspace: None,
        }
    }

    /// The cipher for a sealed archive (AES-256-GCM by default): a built-in
    /// [`EncryptionAlgorithm`] or any algorithm id the provider holds
    /// ([`ExportOptions::crypto_provider`]); one it lacks fails the export
    /// with `UnsupportedAlgorithm`.
    #[must_use]
    pub fn algorithm(mut self, algorithm: impl Into<AlgorithmId>) -> Self {
        self.algorithm = algorithm.into();
        self
    }

    /// Record bytes per chunk, between 64 bytes and 16 MiB.
    #[must_use]
    pub fn chunk_size(mut self, bytes: u32) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// Replace a file already at the destination (off by default).
    #[must_use]
    pub fn replace_existing(mut self, on: bool) -> Self {
        self.replace_existing = on;
        self
    }

    /// The ciphers to seal with (the default provider otherwise).
    #[must_use]
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = provider;
        self
    }

    /// Export only the keyspace called `name`, as that keyspace (an import
    /// recreates it under its name); every keyspace, the default one
    /// included, otherwise. A name the snapshot lacks fails the export
    /// with `KeyspaceNotFound` before any file is made.
    #[must_use]
    pub fn keyspace(mut self, name: impl Into<String>) -> Self {
        self.keyspace = Some(name.into());
        self
    }

    /// Whether the archive will be sealed.
    pub fn is_sealed(&self) -> bool {
        self.key.is_some()
    }
}

/// Writes records into an archive stream: the header first, then chunks of
/// `chunk_size` record bytes as they fill, then a partial chunk and the
/// trailer on [`ArchiveWriter::finish`]. Records must come in strictly
/// ascending key order (a snapshot's order), which readers check: first the
/// default keyspace's, then each named keyspace's after
/// [`ArchiveWriter::begin_keyspace`], names in ascending order.
pub struct ArchiveWriter<W: Write> {
    out: W,
    /// The header's bytes (the fixed header and any wrapper section): every
    /// chunk's AAD starts with them.
    header: Vec<u8>,
    cipher: ChunkSealing,
    chunk_size: usize,
    buf: Vec<u8>,
    index: u64,
    trailer: Trailer,
    written: u64,
    last_key: Option<Vec<u8>>,
    /// The named keyspace records go to now (`None`: the default one).
    keyspace: Option<String>,
    summary: ArchiveSummary,
    /// A write failed: the archive is incomplete, and nothing more is
    /// sealed (a chunk index is never sealed twice).
    failed: bool,
}

impl<W: Write> std::fmt::Debug for ArchiveWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveWriter")
            .field("chunks", &self.index)
            .field("records", &self.trailer.records)
            .finish_non_exhaustive()
    }
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive of the records of database `source_db` as of
    /// `snapshot_seq` on `out` and writes its header. `out` is named
    /// `path` in errors.
    pub fn new(
        mut out: W,
        path: &Path,
        options: &ExportOptions,
        source_db: DbId,
        snapshot_seq: u64,
    ) -> Result<Self, ArchiveError> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&options.chunk_size) {
            return Err(ArchiveError::InvalidOptions(format!(
                "chunk size {} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}",
                options.chunk_size
            )));
        }
        let provider = &options.provider;
        let created_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let (bytes, header, cipher) = match &options.key {
            None => {
                let header = Header {
                    version: VERSION,
                    protection: Protection::PlaintextUnencrypted,
                    chunk_size: options.chunk_size,
                    salt: plaintext_salt(provider)?,
                    source_db,
                    snapshot_seq,
                    created_unix,
                };
                let bytes = encode(&header, None)?;
                (bytes, header, ChunkSealing::Plaintext)
            }
            Some(source) => {
                // An algorithm the provider lacks fails before anything is
                // drawn or wrapped.
                provider.algorithm(options.algorithm)?;
                // Under a key wrapper, the archive key is this archive's
                // alone: drawn here, wrapped once its salt is known.
                let (key, kind, secret) = match source.wrapper() {
                    Some(_) => {
                        let secret = SecretKey::random_from(provider)?;
                        (MasterKey::from_secret(secret.clone()), None, Some(secret))
                    }
                    None => {
                        let (key, kind) = export_key(source, provider)?;
                        (key, Some(kind), None)
                    }
                };
                let keys = ArchiveKeys::generate(provider, &key)?;
                drop(key);
                let kind = match (kind, secret, source.wrapper()) {
                    (Some(kind), _, _) => kind,
                    (None, Some(secret), Some(wrapper)) => KeyKind::Wrapped(wrap_archive_key(
                        wrapper.as_ref(),
                        &secret,
                        keys.salt(),
                        &source_db,
                    )?),
                    _ => {
                        return Err(ArchiveError::InvalidOptions(
                            "no archive key was drawn for the key wrapper".into(),
                        ));
                    }
                };
                let header = Header {
                    version: VERSION,
                    protection: Protection::Sealed {
                        algorithm: options.algorithm,
                        kind,
                    },
                    chunk_size: options.chunk_size,
                    salt: *keys.salt(),
                    source_db,
                    snapshot_seq,
                    created_unix,
                };
                let bytes = encode(&header, Some(&keys))?;
                let cipher = ChunkSealing::Sealed(keys.into_sealer(provider, options.algorithm)?);
                (bytes, header, cipher)
            }
        };
        out.write_all(&bytes).map_err(io(path))?;
        let chunk_size = options.chunk_size as usize;
        let written = bytes.len() as u64;
        Ok(ArchiveWriter {
            out,
            header: bytes,
            cipher,
            chunk_size,
            buf: Vec::with_capacity(chunk_size),
            index: 0,
            trailer: Trailer::default(),
            written,
            last_key: None,
            keyspace: None,
            failed: false,
            summary: ArchiveSummary {
                header,
                records: 0,
                data_bytes: 0,
                archive_bytes: 0,
                chunks: 0,
                path: path.to_path_buf(),
            },
        })
    }

    /// Appends one record.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Result<(), ArchiveError> {
        self.check_not_failed()?;
        let (Ok(klen), Ok(vlen)) = (u32::try_from(key.len()), u32::try_from(value.len())) else {
            return Err(ArchiveError::InvalidOptions("record too large".into()));
        };
        if klen > MAX_RECORD_KEY_LEN || vlen > MAX_RECORD_VALUE_LEN {
            return Err(ArchiveError::InvalidOptions(format!(
                "record of {klen}-byte key and {vlen}-byte value exceeds the archive limits"
            )));
        }
        if self.last_key.as_deref().is_some_and(|last| key <= last) {
            return Err(ArchiveError::InvalidOptions(
                "records must come in strictly ascending key order".into(),
            ));
        }
        self.append(&record_prefix(klen, vlen))?;
        self.append(key)?;
        self.append(value)?;
        match &mut self.last_key {
            Some(k) => {
                k.clear();
                k.extend_from_slice(key);
            }
            None => self.last_key = Some(key.to_vec()),
        }
        self.trailer.records += 1;
        self.trailer.data_bytes += u64::from(klen) + u64::from(vlen);
        self.trailer.stream_bytes += (RECORD_PREFIX_LEN + key.len() + value.len()) as u64;
        Ok(())
    }

    /// Starts the records of keyspace `name`: every record pushed after
    /// this belongs to it. Names must come in strictly ascending order,
    /// after the default keyspace's records; a keyspace with no record is
    /// still recorded (an import creates it).
    pub fn begin_keyspace(&mut self, name: &str) -> Result<(), ArchiveError> {
        self.check_not_failed()?;
        let len = u32::try_from(name.len()).unwrap_or(u32::MAX);
        if name.is_empty() || len > MAX_KEYSPACE_NAME_LEN {
            return Err(ArchiveError::InvalidOptions(format!(
                "a keyspace name of {} bytes",
                name.len()
            )));
        }
        if self.keyspace.as_deref().is_some_and(|last| name <= last) {
            return Err(ArchiveError::InvalidOptions(
                "keyspaces must come in strictly ascending name order".into(),
            ));
        }
        self.append(&record_prefix(KEYSPACE_MARK | len, 0))?;
        self.append(name.as_bytes())?;
        self.trailer.stream_bytes += (RECORD_PREFIX_LEN + name.len()) as u64;
        self.keyspace = Some(name.to_string());
        self.last_key = None;
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.trailer.records
    }

    /// Archive bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    fn append(&mut self, mut bytes: &[u8]) -> Result<(), ArchiveError> {
        while !bytes.is_empty() {
            let room = self.chunk_size - self.buf.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.buf.extend_from_slice(now);
            bytes = rest;
            if self.buf.len() == self.chunk_size {
                self.emit(false)?;
            }
        }
        Ok(())
    }

    /// Seals and writes the buffered bytes as the next chunk.
    fn emit(&mut self, last: bool) -> Result<(), ArchiveError> {
        self.check_not_failed()?;
        let len = self.buf.len() as u32;
        let frame: [u8; FRAME_LEN] = frame(last, len);
        // Whatever happens next, this index is spent and the buffer (now
        // ciphertext) is never sealed again.
        self.failed = true;
        let tag: [u8; CHUNK_TAG_LEN] =
            self.cipher
                .seal(&self.header, self.index, &frame, &mut self.buf)?;
        self.index += 1;
        let path = self.summary.path.clone();
        let written = self
            .out
            .write_all(&frame)
            .and_then(|()| self.out.write_all(&self.buf))
            .and_then(|()| self.out.write_all(&tag));
        self.written += (FRAME_LEN + self.buf.len() + CHUNK_TAG_LEN) as u64;
        self.buf.clear();
        written.map_err(io(&path))?;
        self.failed = false;
        Ok(())
    }

    fn check_not_failed(&self) -> Result<(), ArchiveError> {
        if self.failed {
            return Err(ArchiveError::Io {
                path: self.summary.path.clone(),
                source: std::io::Error::other(
                    "an earlier write failed: this archive is incomplete",
                ),
            });
        }
        Ok(())
    }

    /// Writes the last partial chunk and the trailer, flushes, and returns
    /// the output and what was written.
    pub fn finish(mut self) -> Result<(W, ArchiveSummary), ArchiveError> {
        if !self.buf.is_empty() {
            self.emit(false)?;
        }
        self.buf.extend_from_slice(&self.trailer.encode());
        self.emit(true)?;
        let path = self.summary.path.clone();
        self.out.flush().map_err(io(&path))?;
        let mut summary = self.summary;
        summary.records = self.trailer.records;
        summary.data_bytes = self.trailer.data_bytes;
        summary.archive_bytes = self.written;
        summary.chunks = self.index;
        Ok((self.out, summary))
    }
}

/// The header's bytes, its key check made with `keys` (none: plaintext).
fn encode(header: &Header, keys: Option<&ArchiveKeys>) -> Result<Vec<u8>, ArchiveError> {
    header
        .encode(|b| keys.map(|k| k.key_check(b)).unwrap_or([0; 32]))
        .ok_or_else(|| ArchiveError::InvalidOptions("a wrapper section out of range".into()))
}

/// Progress is reported about every this many records.
const PROGRESS_EVERY: u64 = 4096;

/// Exports the records of a snapshot of `db` (taken now; writers may go
/// on) into a new archive at `dest`.
///
/// The archive is written under a temporary name next to `dest`, fsynced,
/// and renamed only when complete, so a failed export never leaves a file
/// that looks like a good archive. An existing `dest` is refused unless
/// [`ExportOptions::replace_existing`]. `progress` is called as records go
/// out (totals are not known in advance: `None`).
pub fn export(
    db: &Db,
    dest: &Path,
    options: &ExportOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ArchiveSummary, ArchiveError> {
    let snapshot = db.snapshot()?;
    export_snapshot(&snapshot, db.id(), dest, options, progress)
}

/// Exports the records of `snapshot` (of the database with id `source_db`)
/// into a new archive at `dest`, as [`export`] does.
pub fn export_snapshot(
    snapshot: &Snapshot,
    source_db: DbId,
    dest: &Path,
    options: &ExportOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ArchiveSummary, ArchiveError> {
    if !options.replace_existing && dest.symlink_metadata().is_ok() {
        return Err(ArchiveError::Exists {
            path: dest.to_path_buf(),
        });
    }
    let names = snapshot.keyspaces()?;
    let names = match &options.keyspace {
        None => names,
        Some(only) if names.contains(only) => vec![only.clone()],
        Some(only) => {
            return Err(sealkv::Error::KeyspaceNotFound { name: only.clone() }.into());
        }
    };
    tracing::debug!(dest = %dest.display(), seq = snapshot.seq(), "archive export started");
    let temp = TempFile::create(dest)?;
    let out = BufWriter::with_capacity(1 << 20, temp.file()?);
    let mut writer = ArchiveWriter::new(out, dest, options, source_db, snapshot.seq())?;
    let mut copy = |writer: &mut ArchiveWriter<_>, records: sealkv::DbIter| {
        for record in records {
            let (key, value) = record?;
            writer.push(&key, &value)?;
            if writer.records().is_multiple_of(PROGRESS_EVERY) {
                progress(&Progress {
                    bytes_done: writer.bytes_written(),
                    bytes_total: None,
                    records_done: writer.records(),
                    records_total: None,
                });
            }
        }
        Ok::<_, ArchiveError>(())
    };
    if options.keyspace.is_none() {
        copy(&mut writer, snapshot.iter())?;
    }
    // The keyspaces as the snapshot has them, not as they are now.
    for name in names {
        writer.begin_keyspace(&name)?;
        copy(&mut writer, snapshot.iter_named(&name)?)?;
    }
    let (out, summary) = writer.finish()?;
    let file = out.into_inner().map_err(|e| ArchiveError::Io {
        path: dest.to_path_buf(),
        source: e.into_error(),
    })?;
    drop(file);
    temp.commit(dest, options.replace_existing)?;
    summary.log("archive export");
    progress(&Progress::finished(&summary, summary.archive_bytes));
    Ok(summary)
}
