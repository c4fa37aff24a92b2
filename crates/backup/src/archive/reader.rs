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
    MAX_RECORD_KEY_LEN, MAX_RECORD_VALUE_LEN, Protection, RECORD_PREFIX_LEN, TRAILER_LEN, Trailer,
    parse_frame, parse_record_prefix,
};
use super::stream::{ChunkOpening, import_key, opening};
use super::{ArchiveSummary, Progress};

/// One record: key and value.
pub type Record = (Vec<u8>, Vec<u8>);

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
    header_bytes: [u8; HEADER_LEN],
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
    /// not match is `WrongKey`. A plaintext archive ignores `key`.
    pub fn open(
        mut input: R,
        path: &Path,
        key: Option<&KeySource>,
        provider: &CryptoProvider,
    ) -> Result<Self, ArchiveError> {
        let file = path.to_path_buf();
        let mut header_bytes = [0u8; HEADER_LEN];
        let n = read_full(&mut input, &mut header_bytes, path)?;
        if n < HEADER_LEN {
            return Err(ArchiveError::Truncated {
                file,
                at: Location::Header,
                what: "the file is shorter than an archive header",
            });
        }
        let header = Header::decode(&header_bytes).map_err(|p| match p {
            HeaderProblem::Corrupt(what) => ArchiveError::Corruption {
                file: file.clone(),
                at: Location::Header,
                what,
            },
            HeaderProblem::Unsupported(what) => ArchiveError::Unsupported {
                file: file.clone(),
                what,
            },
        })?;
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
                Some(import_key(source, kind, path, provider)?)
            }
        };
        let (cipher, keys) = opening(&header.protection, master.as_ref(), &header.salt, provider)?;
        if let Some(keys) = keys {
            let (body, rest) = header_bytes.split_at(KEY_CHECK_AT);
            let check = rest.get(..CRC_AT - KEY_CHECK_AT).unwrap_or_default();
            if !keys.verify_key_check(body, check) {
                return Err(ArchiveError::WrongKey { file });
            }
        }
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
            next_offset: HEADER_LEN as u64,
            trailer: None,
            failed: false,
            counted: Trailer::default(),
            last_key: None,
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
    /// counts have been checked). After an error the reader is done: every
    /// later call fails too (nothing unauthenticated is ever parsed).
    pub fn next_record(&mut self) -> Result<Option<Record>, ArchiveError> {
        if self.failed {
            return Err(self.corrupt(self.at, "reading stopped at an earlier error"));
        }
        let out = self.next_record_inner();
        if out.is_err() {
            self.failed = true;
            self.data.clear();
            self.pos = 0;
        }
        out
    }

    fn next_record_inner(&mut self) -> Result<Option<Record>, ArchiveError> {
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
        Ok(Some((key, value)))
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
