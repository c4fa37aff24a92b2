//! Reading archives: [`ArchiveReader`] (chunks in, records out) and
//! [`verify_archive`] (an end-to-end check without importing).
//!
//! Every length read from the archive is bounded before it is used: a chunk
//! by the header's chunk size (at most 16 MiB), a record by the engine's
//! key and value limits. Nothing from a chunk is used before the chunk
//! authenticates.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use sealkv::crypto::{CryptoProvider, KeySource};

use super::error::{ArchiveError, Location, io};
use super::format::{
    CHUNK_TAG_LEN, CRC_AT, FRAME_LEN, HEADER_LEN, Header, HeaderProblem, KEY_CHECK_AT,
    KEYSPACE_MARK, KeyKind, MAX_KEYSPACE_NAME_LEN, MAX_RECORD_KEY_LEN, MAX_RECORD_VALUE_LEN,
    Protection, RECORD_PREFIX_LEN, TRAILER_LEN, Trailer, parse_frame, parse_record_prefix,
};
use super::stream::{ChunkOpening, import_key, opening, unwrap_archive_key};
use super::{ArchiveSummary, Progress};

/// One record: key and value.
pub type Record = (Vec<u8>, Vec<u8>);

/// What the record stream holds next: the start of a named keyspace, or a
/// record of the keyspace started last (the default keyspace before any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The records that follow belong to the keyspace of this name.
    Keyspace(String),
    /// A record: key and value.
    Record(Vec<u8>, Vec<u8>),
}

/// Reads `buf.len()` bytes unless the input ends first; returns how many.
fn read_full(input: &mut impl Read, buf: &mut [u8], path: &Path) -> Result<usize, ArchiveError> {
    let mut n = 0;
    while n < buf.len() {
        let Some(rest) = buf.get_mut(n..) else { break };
        match input.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(path)(e)),
        }
    }
    Ok(n)
}

/// Reads the records of an archive, checking every chunk, the order of the
/// records and the trailer's counts. Yields the records in key order.
pub struct ArchiveReader<R: Read> {
    input: R,
    path: PathBuf,
    /// The header's bytes (the fixed header and any wrapper section).
    header_bytes: Vec<u8>,
    header: Header,
    cipher: ChunkOpening,
    /// The current chunk's plaintext (its tag cut off).
    data: Vec<u8>,
    pos: usize,
    /// The chunk `data` came from.
    at: Location,
    next_index: u64,
    next_offset: u64,
    trailer: Option<Trailer>,
    counted: Trailer,
    last_key: Option<Vec<u8>>,
    /// The keyspace the records now read belong to (`None`: the default).
    keyspace: Option<String>,
    finished: bool,
    /// An error ended the reading.
    failed: bool,
}

impl<R: Read> std::fmt::Debug for ArchiveReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveReader")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl<R: Read> ArchiveReader<R> {
    /// Reads and checks the header of the archive on `input` (named `path`
    /// in errors) and, if it is sealed, checks `key` against it: a sealed
    /// archive without a key is `MissingKey`, a key whose key check does
    /// not match is `WrongKey`. An archive sealed under a key wrapper needs
    /// that wrapper (`key` a [`KeySource::Wrapper`]): another kind of key,
    /// another wrapper or wrapping key is `WrongKey`, an unreachable one
    /// `Key(Wrap(Unavailable))`, and a key check that fails once the
    /// wrapper has opened the key is `Corruption` of the header (the
    /// wrapper authenticated the key). A plaintext archive is refused when a key
    /// is given (`NotSealed`).
    pub fn open(
        mut input: R,
        path: &Path,
        key: Option<&KeySource>,
        provider: &CryptoProvider,
    ) -> Result<Self, ArchiveError> {
        let file = path.to_path_buf();
        let mut header_bytes = vec![0u8; HEADER_LEN];
        let n = read_full(&mut input, &mut header_bytes, path)?;
        if n < HEADER_LEN {
            return Err(ArchiveError::Truncated {
                file,
                at: Location::Header,
                what: "the file is shorter than an archive header",
            });
        }
        let problem = |p| match p {
            HeaderProblem::Corrupt(what) => ArchiveError::Corruption {
                file: file.clone(),
                at: Location::Header,
                what,
            },
            HeaderProblem::Unsupported(what) => ArchiveError::Unsupported {
                file: file.clone(),
                what,
            },
        };
        // The wrapper section's length is read only from a fixed header
        // whose CRC holds: it bounds what is read next.
        let section_len = Header::wrapper_section_len(&header_bytes).map_err(problem)?;
        header_bytes.resize(HEADER_LEN + section_len, 0);
        let section = header_bytes.get_mut(HEADER_LEN..).unwrap_or_default();
        if read_full(&mut input, section, path)? < section_len {
            return Err(ArchiveError::Truncated {
                file,
                at: Location::Header,
                what: "the file ends inside the header's wrapper section",
            });
        }
        let header = Header::decode(&header_bytes).map_err(problem)?;
        let master = match &header.protection {
            // A key given means a sealed archive is expected: a plaintext
            // one in its place (anyone can write one, with any records)
            // must not be accepted silently. Read one with no key.
            Protection::PlaintextUnencrypted if key.is_some() => {
                return Err(ArchiveError::NotSealed { file });
            }
            Protection::PlaintextUnencrypted => None,
            Protection::Sealed { kind, .. } => {
                let source = key.ok_or_else(|| ArchiveError::MissingKey { file: file.clone() })?;
                Some(match kind {
                    KeyKind::Wrapped(w) => {
                        unwrap_archive_key(source, w, &header.salt, &header.source_db, path)?
                    }
                    other => import_key(source, other, path, provider)?,
                })
            }
        };
        let (cipher, keys) = opening(&header.protection, master.as_ref(), &header.salt, provider)?;
        if let Some(keys) = keys {
            let check = header_bytes.get(KEY_CHECK_AT..CRC_AT).unwrap_or_default();
            if !keys.verify_key_check(&Header::key_check_input(&header_bytes), check) {
                // A wrapped key that opened is the right key (the wrapper
                // authenticates it, bound to this archive's salt and
                // database): a key check that fails after it is damage.
                return Err(match &header.protection {
                    Protection::Sealed {
                        kind: KeyKind::Wrapped(_),
                        ..
                    } => ArchiveError::Corruption {
                        file,
                        at: Location::Header,
                        what: "the key check does not match the unwrapped archive key".into(),
                    },
                    _ => ArchiveError::WrongKey { file },
                });
            }
        }
        let next_offset = header_bytes.len() as u64;
        Ok(ArchiveReader {
            input,
            path: file,
            header_bytes,
            header,
            cipher,
            data: Vec::new(),
            pos: 0,
            at: Location::Header,
            next_index: 0,
            next_offset,
            trailer: None,
            failed: false,
            counted: Trailer::default(),
            last_key: None,
            keyspace: None,
            finished: false,
        })
    }

    /// The archive's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Archive bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.next_offset
    }

    /// Records read so far.
    pub fn records_read(&self) -> u64 {
        self.counted.records
    }

    fn corrupt(&self, at: Location, what: impl Into<String>) -> ArchiveError {
        ArchiveError::Corruption {
            file: self.path.clone(),
            at,
            what: what.into(),
        }
    }

    /// Reads, checks and opens the next chunk into `data`.
    fn load_chunk(&mut self) -> Result<(), ArchiveError> {
        let at = Location::Chunk {
            index: self.next_index,
            offset: self.next_offset,
        };
        let truncated = |what| ArchiveError::Truncated {
            file: self.path.clone(),
            at,
            what,
        };
        let mut frame = [0u8; FRAME_LEN];
        let n = read_full(&mut self.input, &mut frame, &self.path)?;
        if n == 0 {
            return Err(truncated("the archive ends before its last chunk"));
        }
        if n < FRAME_LEN {
            return Err(truncated("the archive ends inside this chunk"));
        }
        let Some((last, len)) = parse_frame(&frame) else {
            return Err(self.corrupt(at, "unknown chunk flags"));
        };
        if len > self.header.chunk_size {
            return Err(self.corrupt(at, "chunk length exceeds the archive's chunk size"));
        }
        if last && len as usize != TRAILER_LEN {
            return Err(self.corrupt(at, "the last chunk is not a trailer"));
        }
        let len = len as usize;
        self.data.resize(len + CHUNK_TAG_LEN, 0);
        let n = read_full(&mut self.input, &mut self.data, &self.path)?;
        if n < len + CHUNK_TAG_LEN {
            return Err(truncated("the archive ends inside this chunk"));
        }
        let (body, tag) = self.data.split_at_mut(len);
        let opened = self
            .cipher
            .open(&self.header_bytes, self.next_index, &frame, body, tag);
        if opened.is_err() {
            return Err(self.corrupt(
                at,
                match self.cipher {
                    ChunkOpening::Plaintext => "checksum mismatch: the chunk is damaged or out of place",
                    ChunkOpening::Sealed(_) => {
                        "authentication failed: the chunk is damaged, out of place, or from another archive"
                    }
                },
            ));
        }
        self.data.truncate(len);
        self.pos = 0;
        self.at = at;
        self.next_index += 1;
        self.next_offset += (FRAME_LEN + len + CHUNK_TAG_LEN) as u64;
        if last {
            let trailer = Trailer::decode(&self.data)
                .ok_or_else(|| self.corrupt(at, "the trailer does not decode"))?;
            self.trailer = Some(trailer);
            self.data.clear();
            let mut extra = [0u8; 1];
            if read_full(&mut self.input, &mut extra, &self.path)? != 0 {
                let after = Location::Chunk {
                    index: self.next_index,
                    offset: self.next_offset,
                };
                return Err(self.corrupt(after, "bytes after the last chunk"));
            }
        }
        Ok(())
    }

    /// Appends `n` record bytes to `out`, loading chunks as needed.
    fn take(&mut self, mut n: usize, out: &mut Vec<u8>) -> Result<(), ArchiveError> {
        while n > 0 {
            if self.pos >= self.data.len() {
                if self.trailer.is_some() {
                    return Err(self.corrupt(self.at, "a record is cut by the end of the archive"));
                }
                self.load_chunk()?;
                continue;
            }
            let avail = self.data.get(self.pos..).unwrap_or_default();
            let k = n.min(avail.len());
            out.extend_from_slice(avail.get(..k).unwrap_or_default());
            self.pos += k;
            n -= k;
        }
        Ok(())
    }

    /// The next record, or `None` after the last one (once the trailer's
    /// counts have been checked), whatever keyspace it belongs to
    /// ([`ArchiveReader::keyspace`] says which). After an error the reader is
    /// done: every later call fails too (nothing unauthenticated is ever
    /// parsed).
    pub fn next_record(&mut self) -> Result<Option<Record>, ArchiveError> {
        loop {
            match self.next_entry()? {
                Some(Entry::Record(k, v)) => return Ok(Some((k, v))),
                Some(Entry::Keyspace(_)) => {}
                None => return Ok(None),
            }
        }
    }

    /// The next entry of the record stream — a keyspace's start or a
    /// record — or `None` after the last one, checked as
    /// [`ArchiveReader::next_record`] is.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, ArchiveError> {
        if self.failed {
            return Err(self.corrupt(self.at, "reading stopped at an earlier error"));
        }
        let out = self.next_entry_inner();
        if out.is_err() {
            self.failed = true;
            self.data.clear();
            self.pos = 0;
        }
        out
    }

    /// The named keyspace the last record read belongs to (`None`: the
    /// default keyspace).
    pub fn keyspace(&self) -> Option<&str> {
        self.keyspace.as_deref()
    }

    fn next_entry_inner(&mut self) -> Result<Option<Entry>, ArchiveError> {
        if self.finished {
            return Ok(None);
        }
        while self.pos >= self.data.len() {
            if let Some(trailer) = self.trailer {
                if trailer != self.counted {
                    return Err(self.corrupt(
                        self.at,
                        format!(
                            "the trailer records {} records ({} bytes) but the archive holds {} ({} bytes)",
                            trailer.records,
                            trailer.data_bytes,
                            self.counted.records,
                            self.counted.data_bytes
                        ),
                    ));
                }
                self.finished = true;
                return Ok(None);
            }
            self.load_chunk()?;
        }
        let mut prefix = Vec::with_capacity(RECORD_PREFIX_LEN);
        self.take(RECORD_PREFIX_LEN, &mut prefix)?;
        let mut p = [0u8; RECORD_PREFIX_LEN];
        p.copy_from_slice(
            prefix
                .get(..RECORD_PREFIX_LEN)
                .unwrap_or(&[0; RECORD_PREFIX_LEN]),
        );
        let (klen, vlen) = parse_record_prefix(&p);
        if klen & KEYSPACE_MARK != 0 {
            return self.keyspace_marker(klen & !KEYSPACE_MARK, vlen).map(Some);
        }
        if klen > MAX_RECORD_KEY_LEN || vlen > MAX_RECORD_VALUE_LEN {
            return Err(self.corrupt(self.at, "record length out of range"));
        }
        let mut key = Vec::with_capacity(klen as usize);
        self.take(klen as usize, &mut key)?;
        let mut value = Vec::with_capacity(vlen as usize);
        self.take(vlen as usize, &mut value)?;
        if self.last_key.as_ref().is_some_and(|last| key <= *last) {
            return Err(self.corrupt(self.at, "records are not in ascending key order"));
        }
        self.last_key = Some(key.clone());
        self.counted.records += 1;
        self.counted.data_bytes += u64::from(klen) + u64::from(vlen);
        self.counted.stream_bytes += (RECORD_PREFIX_LEN as u64) + u64::from(klen) + u64::from(vlen);
        Ok(Some(Entry::Record(key, value)))
    }

    /// Reads a keyspace marker whose name is `len` bytes (its prefix read).
    fn keyspace_marker(&mut self, len: u32, vlen: u32) -> Result<Entry, ArchiveError> {
        if self.header.version < 2 {
            return Err(self.corrupt(self.at, "a keyspace marker in a version-1 archive"));
        }
        if len == 0 || len > MAX_KEYSPACE_NAME_LEN || vlen != 0 {
            return Err(self.corrupt(self.at, "keyspace marker length out of range"));
        }
        let mut name = Vec::with_capacity(len as usize);
        self.take(len as usize, &mut name)?;
        let name = String::from_utf8(name)
            .map_err(|_| self.corrupt(self.at, "a keyspace name that is not UTF-8"))?;
        if self.keyspace.as_ref().is_some_and(|last| name <= *last) {
            return Err(self.corrupt(self.at, "keyspaces are not in ascending name order"));
        }
        self.counted.stream_bytes += (RECORD_PREFIX_LEN as u64) + u64::from(len);
        self.keyspace = Some(name.clone());
        self.last_key = None;
        Ok(Entry::Keyspace(name))
    }

    /// What was read, once [`ArchiveReader::next_record`] returned `None`.
    pub fn summary(&self) -> ArchiveSummary {
        ArchiveSummary {
            path: self.path.clone(),
            header: self.header.clone(),
            records: self.counted.records,
            data_bytes: self.counted.data_bytes,
            archive_bytes: self.next_offset,
            chunks: self.next_index,
        }
    }
}

/// Opens the archive file at `path` for reading.
pub(crate) fn open_file(
    path: &Path,
    key: Option<&KeySource>,
    provider: &CryptoProvider,
) -> Result<(ArchiveReader<BufReader<std::fs::File>>, u64), ArchiveError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    let reader = ArchiveReader::open(BufReader::with_capacity(1 << 20, file), path, key, provider)?;
    Ok((reader, len))
}

/// Progress is reported about every this many records.
const PROGRESS_EVERY: u64 = 4096;

/// Checks the archive at `path` end to end without importing it: header,
/// key, every chunk's tag (or checksum), record structure and order, and
/// the trailer's counts. Returns what it holds.
pub fn verify_archive(
    path: &Path,
    key: Option<&KeySource>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ArchiveSummary, ArchiveError> {
    verify_archive_with(path, key, &CryptoProvider::default(), progress)
}

/// [`verify_archive`] with the ciphers of `provider` (e.g. the `ring`
/// provider; any provider reads any archive whose algorithm it offers).
pub fn verify_archive_with(
    path: &Path,
    key: Option<&KeySource>,
    provider: &CryptoProvider,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ArchiveSummary, ArchiveError> {
    tracing::debug!(path = %path.display(), keyed = key.is_some(), "archive check started");
    let (mut reader, total) = open_file(path, key, provider)?;
    while reader.next_record()?.is_some() {
        if reader.records_read().is_multiple_of(PROGRESS_EVERY) {
            progress(&Progress::reading(&reader, total));
        }
    }
    let summary = reader.summary();
    summary.log("archive check");
    progress(&Progress::finished(&summary, total));
    Ok(summary)
}
