//! The archive's byte layout: header, chunk frames, record encoding,
//! trailer. Pure encoding and decoding; no keys, no I/O.
//!
//! See `docs/FORMAT.md` ("Logical export archives") for the same layout in
//! prose.

use sealkv::crypto::{
    AlgorithmId, DbId, KdfParams, MAX_WRAPPED_LEN, MAX_WRAPPER_KIND_LEN, MAX_WRAPPING_KEY_ID_LEN,
    TAG_LEN,
};

/// The first 8 bytes of every archive.
pub const MAGIC: [u8; 8] = *b"SEALKVAR";
/// The format version this build writes. Version 2 adds keyspace markers
/// to the record stream, version 3 archives sealed under a key wrapper (key
/// kind 3, a wrapper section after the fixed header); this build reads
/// versions 1 to 3.
pub const VERSION: u16 = 3;
/// The format version that introduced the wrapper section, named in every
/// wrap context (a later version keeps naming it for the archives it reads).
pub const WRAPPED_SINCE: u16 = 3;
/// The oldest format version this build reads (no keyspace markers: every
/// record is in the default keyspace).
pub const OLDEST_VERSION: u16 = 1;
/// Bytes in the fixed header. An archive sealed under a key wrapper (key
/// kind 3) has a wrapper section of [`MIN_WRAPPER_SECTION_LEN`] to
/// [`MAX_WRAPPER_SECTION_LEN`] bytes right after it; the header is both.
pub const HEADER_LEN: usize = 164;
/// Offset of the wrapper section's length in the fixed header (key kind 3).
pub(crate) const WRAPPER_LEN_AT: usize = 84;
/// The shortest wrapper section: one-byte kind and key id, one byte of
/// wrapped key, and the lengths and CRC around them.
pub const MIN_WRAPPER_SECTION_LEN: usize = 1 + 1 + 1 + 1 + 2 + 1 + 4;
/// The longest wrapper section: the longest kind, key id and wrapped key a
/// [`KeyWrapper`](sealkv::crypto::KeyWrapper) may report.
pub const MAX_WRAPPER_SECTION_LEN: usize =
    1 + MAX_WRAPPER_KIND_LEN + 1 + MAX_WRAPPING_KEY_ID_LEN + 2 + MAX_WRAPPED_LEN + 4;
/// Offset of the key-check value in the header (it covers the bytes
/// before it).
pub(crate) const KEY_CHECK_AT: usize = 128;
/// Offset of the header's CRC32C (it covers the bytes before it).
pub(crate) const CRC_AT: usize = 160;
/// Bytes in a chunk's frame header (flags, 3 reserved, length).
pub const FRAME_LEN: usize = 8;
/// Bytes of tag (AEAD tag, or a CRC32C checksum tag) after each chunk body.
pub const CHUNK_TAG_LEN: usize = TAG_LEN;
/// Frame flag: this is the last chunk (the trailer).
pub(crate) const FLAG_LAST: u8 = 1;
/// Bytes in the trailer (the last chunk's body).
pub const TRAILER_LEN: usize = 24;
/// Bytes before each record's key (key length u32, value length u32).
pub const RECORD_PREFIX_LEN: usize = 8;
/// In a record prefix's key length, this bit marks a keyspace marker
/// (version 2): the low bits are the length of a keyspace name that
/// follows, the value length is 0, and the records after it (up to the
/// next marker) belong to that keyspace. Records before any marker belong
/// to the default keyspace.
pub const KEYSPACE_MARK: u32 = 1 << 31;
/// Longest keyspace name a marker may carry (the engine's limit).
pub const MAX_KEYSPACE_NAME_LEN: u32 = sealkv::MAX_KEYSPACE_NAME_LEN as u32;

/// Smallest chunk size accepted (small chunks only make sense in tests).
pub const MIN_CHUNK_SIZE: u32 = 64;
/// Largest chunk size accepted: bounds what a reader allocates.
pub const MAX_CHUNK_SIZE: u32 = 16 << 20;
/// The default chunk size: 256 KiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 256 << 10;
/// Longest key a record may carry (the largest a 64 KiB-page database
/// accepts is smaller).
pub const MAX_RECORD_KEY_LEN: u32 = 64 << 10;
/// Longest value a record may carry (the engine's limit).
pub const MAX_RECORD_VALUE_LEN: u32 = sealkv::MAX_VALUE_LEN as u32;

/// Whether and how the chunks are protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protection {
    /// CRC32C checksums only: anyone can read the records.
    PlaintextUnencrypted,
    /// Sealed with the AEAD named by `algorithm` under a key of `kind`.
    Sealed {
        /// The cipher.
        algorithm: AlgorithmId,
        /// How the archive key is given.
        kind: KeyKind,
    },
}

/// How a sealed archive's key is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// A raw 256-bit key (a master key, or a separate backup key file).
    Raw,
    /// A passphrase, stretched with Argon2id under the salt and cost
    /// recorded in the header.
    Passphrase {
        /// The Argon2id salt.
        salt: [u8; 32],
        /// The Argon2id cost.
        params: KdfParams,
    },
    /// A random archive key of this archive alone, wrapped by a
    /// [`KeyWrapper`](sealkv::crypto::KeyWrapper) (an HSM or KMS key that
    /// never leaves it); version 3 on.
    Wrapped(WrappedArchiveKey),
}

/// The wrapper section of an archive sealed under a key wrapper: which
/// wrapper and wrapping key wrapped the archive key, and the wrapped key.
/// All of it is public.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedArchiveKey {
    /// The wrapper's kind (`pkcs11`, `software`), 1 to 32 ASCII bytes.
    pub wrapper_kind: String,
    /// The wrapping key's stable id, 1 to 255 bytes.
    pub key_id: String,
    /// What the wrapper's `wrap` returned for the archive key, 1 to 1,024
    /// bytes.
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for WrappedArchiveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedArchiveKey")
            .field("wrapper_kind", &self.wrapper_kind)
            .field("key_id", &self.key_id)
            .field("wrapped_len", &self.wrapped.len())
            .finish()
    }
}

impl WrappedArchiveKey {
    /// The section's bytes: kind length (u8) and kind, key id length (u8)
    /// and key id, wrapped length (u16) and wrapped key, then a CRC32C of
    /// the bytes before it. `None` if a length is out of range.
    pub(crate) fn encode(&self) -> Option<Vec<u8>> {
        let kind = self.wrapper_kind.as_bytes();
        let id = self.key_id.as_bytes();
        if kind.is_empty()
            || kind.len() > MAX_WRAPPER_KIND_LEN
            || !kind.is_ascii()
            || id.is_empty()
            || id.len() > MAX_WRAPPING_KEY_ID_LEN
            || self.wrapped.is_empty()
            || self.wrapped.len() > MAX_WRAPPED_LEN
        {
            return None;
        }
        let mut b = Vec::with_capacity(1 + kind.len() + 1 + id.len() + 2 + self.wrapped.len() + 4);
        b.push(u8::try_from(kind.len()).ok()?);
        b.extend_from_slice(kind);
        b.push(u8::try_from(id.len()).ok()?);
        b.extend_from_slice(id);
        b.extend_from_slice(&u16::try_from(self.wrapped.len()).ok()?.to_le_bytes());
        b.extend_from_slice(&self.wrapped);
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        Some(b)
    }

    /// Decodes a wrapper section of exactly `b.len()` bytes.
    pub(crate) fn decode(b: &[u8]) -> Result<WrappedArchiveKey, HeaderProblem> {
        let corrupt = |s: &str| HeaderProblem::Corrupt(s.to_string());
        let Some(body_len) = b.len().checked_sub(4) else {
            return Err(corrupt("wrapper section shorter than its checksum"));
        };
        let (body, crc) = b.split_at(body_len);
        if u32_at(crc, 0) != crc32c::crc32c(body) {
            return Err(corrupt("wrapper section checksum mismatch"));
        }
        let mut rest = body;
        let mut take = |n: usize| -> Result<&[u8], HeaderProblem> {
            if rest.len() < n {
                return Err(corrupt("wrapper section lengths overrun it"));
            }
            let (now, after) = rest.split_at(n);
            rest = after;
            Ok(now)
        };
        let kind_len = usize::from(take(1)?.first().copied().unwrap_or(0));
        let kind = take(kind_len)?.to_vec();
        let id_len = usize::from(take(1)?.first().copied().unwrap_or(0));
        let id = take(id_len)?.to_vec();
        let wrapped_len = usize::from(u16_at(take(2)?, 0));
        let wrapped = take(wrapped_len)?.to_vec();
        if !rest.is_empty() {
            return Err(corrupt("wrapper section lengths do not add up"));
        }
        if kind.is_empty() || kind.len() > MAX_WRAPPER_KIND_LEN || !kind.is_ascii() {
            return Err(corrupt("wrapper kind out of range"));
        }
        let (Ok(wrapper_kind), Ok(key_id)) = (String::from_utf8(kind), String::from_utf8(id))
        else {
            return Err(corrupt("wrapping key id is not UTF-8"));
        };
        if key_id.is_empty() || wrapped.is_empty() || wrapped.len() > MAX_WRAPPED_LEN {
            return Err(corrupt("wrapper section length out of range"));
        }
        Ok(WrappedArchiveKey {
            wrapper_kind,
            key_id,
            wrapped,
        })
    }
}

/// The context a key wrapper binds an archive key to (its AEAD's associated
/// data, a KMS's encryption context): `SEALKVAR`, the format version that
/// introduced the wrapper section (3, u16 little-endian), the archive salt
/// (32 bytes), the source database id (16 bytes), then the wrapper kind and
/// the key id, each as a u16 little-endian length and its bytes. A wrapped
/// key copied into another archive (another salt), or recorded under
/// another kind or key id, fails at the unwrap.
pub fn wrap_context(salt: &[u8; 32], source_db: &DbId, kind: &str, key_id: &str) -> Vec<u8> {
    let mut c = Vec::with_capacity(8 + 2 + 32 + 16 + 4 + kind.len() + key_id.len());
    c.extend_from_slice(&MAGIC);
    c.extend_from_slice(&WRAPPED_SINCE.to_le_bytes());
    c.extend_from_slice(salt);
    c.extend_from_slice(source_db.as_bytes());
    for part in [kind.as_bytes(), key_id.as_bytes()] {
        // Both are bounded far below u16::MAX when written and when read.
        let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
        c.extend_from_slice(&len.to_le_bytes());
        c.extend_from_slice(part);
    }
    c
}

/// The archive header: everything every chunk's AAD covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The format version (written: [`VERSION`]).
    pub version: u16,
    /// Sealed or plaintext, with which algorithm and key kind.
    pub protection: Protection,
    /// Record bytes per chunk (every chunk but the trailer holds at most
    /// this many).
    pub chunk_size: u32,
    /// The archive's random salt: the chunk key is derived from it.
    pub salt: [u8; 32],
    /// The database the records came from.
    pub source_db: DbId,
    /// The snapshot sequence number the records are as of.
    pub snapshot_seq: u64,
    /// When the export started, seconds since the Unix epoch (informative).
    pub created_unix: u64,
}

/// Why header bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    /// Not an archive or damaged (CRC or structure).
    Corrupt(String),
    /// A version or value this build does not know.
    Unsupported(String),
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn arr_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    if let Some(s) = b.get(at..at + N) {
        a.copy_from_slice(s);
    }
    a
}

impl Header {
    /// The header's bytes — the fixed 164 and, for key kind 3, the wrapper
    /// section — with the key-check value and the CRC filled in
    /// (`key_check` computes the former over bytes 0..128 followed by the
    /// wrapper section; plaintext archives leave it zero). `None` if the
    /// wrapper section's lengths are out of range.
    pub(crate) fn encode(&self, key_check: impl FnOnce(&[u8]) -> [u8; 32]) -> Option<Vec<u8>> {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        let (mode, kind, alg) = match &self.protection {
            Protection::PlaintextUnencrypted => (0u8, 0u8, 0u16),
            Protection::Sealed { algorithm, kind } => match kind {
                KeyKind::Raw => (1, 1, algorithm.0),
                KeyKind::Passphrase { .. } => (1, 2, algorithm.0),
                KeyKind::Wrapped(_) => (1, 3, algorithm.0),
            },
        };
        let section = match &self.protection {
            Protection::Sealed {
                kind: KeyKind::Wrapped(w),
                ..
            } => w.encode()?,
            _ => Vec::new(),
        };
        b[10] = mode;
        b[11] = kind;
        b[12..14].copy_from_slice(&alg.to_le_bytes());
        b[16..20].copy_from_slice(&self.chunk_size.to_le_bytes());
        b[20..52].copy_from_slice(&self.salt);
        b[52..68].copy_from_slice(self.source_db.as_bytes());
        b[68..76].copy_from_slice(&self.snapshot_seq.to_le_bytes());
        b[76..84].copy_from_slice(&self.created_unix.to_le_bytes());
        if let Protection::Sealed {
            kind: KeyKind::Passphrase { salt, params },
            ..
        } = &self.protection
        {
            b[84..88].copy_from_slice(&params.memory_kib.to_le_bytes());
            b[88..92].copy_from_slice(&params.iterations.to_le_bytes());
            b[92..96].copy_from_slice(&params.parallelism.to_le_bytes());
            b[96..128].copy_from_slice(salt);
        }
        if !section.is_empty() {
            let len = u32::try_from(section.len()).ok()?;
            b[WRAPPER_LEN_AT..WRAPPER_LEN_AT + 4].copy_from_slice(&len.to_le_bytes());
        }
        if mode == 1 {
            let mut covered = Vec::with_capacity(KEY_CHECK_AT + section.len());
            covered.extend_from_slice(&b[..KEY_CHECK_AT]);
            covered.extend_from_slice(&section);
            let check = key_check(&covered);
            b[KEY_CHECK_AT..CRC_AT].copy_from_slice(&check);
        }
        let crc = crc32c::crc32c(&b[..CRC_AT]);
        b[CRC_AT..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        let mut out = b.to_vec();
        out.extend_from_slice(&section);
        Some(out)
    }

    /// The bytes the key check covers: bytes 0..128 of the fixed header,
    /// then the wrapper section (empty unless key kind 3).
    pub(crate) fn key_check_input(bytes: &[u8]) -> Vec<u8> {
        let mut covered = bytes.get(..KEY_CHECK_AT).unwrap_or_default().to_vec();
        covered.extend_from_slice(bytes.get(HEADER_LEN..).unwrap_or_default());
        covered
    }

    /// The length of the wrapper section that follows the fixed header
    /// `b` (0 unless key kind 3). Checks, in order: length, magic, CRC,
    /// version, the section length's range.
    pub(crate) fn wrapper_section_len(b: &[u8]) -> Result<usize, HeaderProblem> {
        let corrupt = |s: &str| Err(HeaderProblem::Corrupt(s.to_string()));
        if b.len() < HEADER_LEN {
            return corrupt("shorter than a header");
        }
        if b.get(0..8) != Some(&MAGIC[..]) {
            return corrupt("not a sealkv archive (bad magic)");
        }
        if u32_at(b, CRC_AT) != crc32c::crc32c(b.get(..CRC_AT).unwrap_or_default()) {
            return corrupt("header checksum mismatch");
        }
        let version = u16_at(b, 8);
        if !(OLDEST_VERSION..=VERSION).contains(&version) {
            return Err(HeaderProblem::Unsupported(format!(
                "format version {version} (this build reads {OLDEST_VERSION} to {VERSION})"
            )));
        }
        if version < WRAPPED_SINCE || b.get(10..12) != Some(&[1, 3][..]) {
            return Ok(0);
        }
        let len = u32_at(b, WRAPPER_LEN_AT) as usize;
        if !(MIN_WRAPPER_SECTION_LEN..=MAX_WRAPPER_SECTION_LEN).contains(&len) {
            return corrupt("wrapper section length out of range");
        }
        Ok(len)
    }

    /// Decodes header bytes: the fixed header and the wrapper section
    /// [`Header::wrapper_section_len`] names, exactly. Checks, in order:
    /// length, magic, CRC, version, then every field's range. The key
    /// check is left to the caller.
    pub(crate) fn decode(b: &[u8]) -> Result<Header, HeaderProblem> {
        let corrupt = |s: &str| Err(HeaderProblem::Corrupt(s.to_string()));
        let section_len = Self::wrapper_section_len(b)?;
        if b.len() != HEADER_LEN + section_len {
            return corrupt("header length does not match its wrapper section");
        }
        let version = u16_at(b, 8);
        let mode = b.get(10).copied().unwrap_or(0xff);
        let kind = b.get(11).copied().unwrap_or(0xff);
        let alg = AlgorithmId(u16_at(b, 12));
        if u16_at(b, 14) != 0 {
            return corrupt("reserved header bytes are not zero");
        }
        let params = KdfParams {
            memory_kib: u32_at(b, 84),
            iterations: u32_at(b, 88),
            parallelism: u32_at(b, 92),
        };
        let kdf_salt: [u8; 32] = arr_at(b, 96);
        let check: [u8; 32] = arr_at(b, KEY_CHECK_AT);
        let kdf_zero = params.memory_kib == 0
            && params.iterations == 0
            && params.parallelism == 0
            && kdf_salt == [0; 32];
        let protection = match (mode, kind) {
            (0, 0) => {
                if alg.0 != 0 || !kdf_zero || check != [0; 32] {
                    return corrupt("plaintext archive with key fields set");
                }
                Protection::PlaintextUnencrypted
            }
            (1, 1) if kdf_zero => Protection::Sealed {
                algorithm: alg,
                kind: KeyKind::Raw,
            },
            (1, 2) => {
                if params.check().is_err() {
                    return corrupt("passphrase cost outside the accepted range");
                }
                Protection::Sealed {
                    algorithm: alg,
                    kind: KeyKind::Passphrase {
                        salt: kdf_salt,
                        params,
                    },
                }
            }
            (1, 3) if version >= WRAPPED_SINCE => {
                if b.get(WRAPPER_LEN_AT + 4..KEY_CHECK_AT)
                    .is_none_or(|r| r.iter().any(|&x| x != 0))
                {
                    return corrupt("key fields of another key kind are set");
                }
                let section = b.get(HEADER_LEN..).unwrap_or_default();
                Protection::Sealed {
                    algorithm: alg,
                    kind: KeyKind::Wrapped(WrappedArchiveKey::decode(section)?),
                }
            }
            _ => {
                return Err(HeaderProblem::Unsupported(format!(
                    "protection mode {mode}, key kind {kind} in format version {version}"
                )));
            }
        };
        let chunk_size = u32_at(b, 16);
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return corrupt("chunk size out of range");
        }
        Ok(Header {
            version,
            protection,
            chunk_size,
            salt: arr_at(b, 20),
            source_db: DbId(arr_at(b, 52)),
            snapshot_seq: u64_at(b, 68),
            created_unix: u64_at(b, 76),
        })
    }
}

/// A chunk's frame header: flags and body length.
pub(crate) fn frame(last: bool, len: u32) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0] = if last { FLAG_LAST } else { 0 };
    f[4..8].copy_from_slice(&len.to_le_bytes());
    f
}

/// Decodes a frame header into (last, body length); `None` for unknown
/// flags or nonzero reserved bytes.
pub(crate) fn parse_frame(f: &[u8; FRAME_LEN]) -> Option<(bool, u32)> {
    if f[0] & !FLAG_LAST != 0 || f[1..4] != [0, 0, 0] {
        return None;
    }
    Some((f[0] & FLAG_LAST != 0, u32_at(f, 4)))
}

/// The AAD of chunk `index`: the whole header (the wrapper section
/// included), the index, and the frame.
pub(crate) fn aad(header: &[u8], index: u64, frame: &[u8; FRAME_LEN]) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + 8 + FRAME_LEN);
    a.extend_from_slice(header);
    a.extend_from_slice(&index.to_le_bytes());
    a.extend_from_slice(frame);
    a
}

/// The trailer: what the reader must have counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trailer {
    /// Records in the archive.
    pub records: u64,
    /// Key and value bytes of those records.
    pub data_bytes: u64,
    /// Bytes of the encoded record stream (prefixes included).
    pub stream_bytes: u64,
}

impl Trailer {
    pub(crate) fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut b = [0u8; TRAILER_LEN];
        b[0..8].copy_from_slice(&self.records.to_le_bytes());
        b[8..16].copy_from_slice(&self.data_bytes.to_le_bytes());
        b[16..24].copy_from_slice(&self.stream_bytes.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Trailer> {
        if b.len() != TRAILER_LEN {
            return None;
        }
        Some(Trailer {
            records: u64_at(b, 0),
            data_bytes: u64_at(b, 8),
            stream_bytes: u64_at(b, 16),
        })
    }
}

/// A record's length prefix.
pub(crate) fn record_prefix(key_len: u32, value_len: u32) -> [u8; RECORD_PREFIX_LEN] {
    let mut p = [0u8; RECORD_PREFIX_LEN];
    p[..4].copy_from_slice(&key_len.to_le_bytes());
    p[4..].copy_from_slice(&value_len.to_le_bytes());
    p
}

/// Decodes a record prefix into (key length, value length).
pub(crate) fn parse_record_prefix(p: &[u8; RECORD_PREFIX_LEN]) -> (u32, u32) {
    (u32_at(p, 0), u32_at(p, 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(protection: Protection) -> Header {
        Header {
            version: VERSION,
            protection,
            chunk_size: 4096,
            salt: [3; 32],
            source_db: DbId([4; 16]),
            snapshot_seq: 77,
            created_unix: 1_700_000_000,
        }
    }

    #[test]
    fn headers_round_trip() {
        for p in [
            Protection::PlaintextUnencrypted,
            Protection::Sealed {
                algorithm: AlgorithmId(1),
                kind: KeyKind::Raw,
            },
            Protection::Sealed {
                algorithm: AlgorithmId(2),
                kind: KeyKind::Passphrase {
                    salt: [9; 32],
                    params: KdfParams::FLOOR,
                },
            },
            wrapped(),
        ] {
            let h = header(p);
            let b = h.encode(|_| [5; 32]).unwrap();
            assert_eq!(
                Header::wrapper_section_len(&b[..HEADER_LEN]),
                Ok(b.len() - HEADER_LEN)
            );
            assert_eq!(Header::decode(&b), Ok(h));
        }
    }

    fn wrapped() -> Protection {
        Protection::Sealed {
            algorithm: AlgorithmId(1),
            kind: KeyKind::Wrapped(WrappedArchiveKey {
                wrapper_kind: "pkcs11".into(),
                key_id: "label=master;id=01".into(),
                wrapped: vec![7; 60],
            }),
        }
    }

    #[test]
    fn the_key_check_covers_the_wrapper_section() {
        let mut seen = Vec::new();
        let b = header(wrapped())
            .encode(|covered| {
                seen = covered.to_vec();
                [5; 32]
            })
            .unwrap();
        assert_eq!(seen, Header::key_check_input(&b));
        assert_eq!(&seen[KEY_CHECK_AT..], &b[HEADER_LEN..]);
    }

    #[test]
    fn any_flipped_byte_of_a_wrapped_header_is_refused() {
        let b = header(wrapped()).encode(|_| [5; 32]).unwrap();
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x10;
            let refused = Header::wrapper_section_len(&c).and_then(|len| {
                let total = (HEADER_LEN + len).min(c.len());
                Header::decode(&c[..total])
            });
            assert!(refused.is_err(), "byte {i}");
        }
        assert!(Header::decode(&b[..b.len() - 1]).is_err());
        let mut longer = b.clone();
        longer.push(0);
        assert!(Header::decode(&longer).is_err());
    }

    #[test]
    fn a_wrapped_key_kind_in_an_older_version_is_unsupported() {
        let mut h = header(wrapped());
        h.version = 2;
        let b = h.encode(|_| [5; 32]).unwrap();
        assert!(matches!(
            Header::decode(&b[..HEADER_LEN]),
            Err(HeaderProblem::Unsupported(_))
        ));
    }

    #[test]
    fn wrapper_sections_with_lengths_out_of_range_are_not_written() {
        for w in [
            WrappedArchiveKey {
                wrapper_kind: String::new(),
                key_id: "k".into(),
                wrapped: vec![1],
            },
            WrappedArchiveKey {
                wrapper_kind: "k".into(),
                key_id: "x".repeat(256),
                wrapped: vec![1],
            },
            WrappedArchiveKey {
                wrapper_kind: "k".into(),
                key_id: "k".into(),
                wrapped: vec![1; MAX_WRAPPED_LEN + 1],
            },
        ] {
            assert_eq!(w.encode(), None);
        }
    }

    #[test]
    fn any_flipped_header_byte_is_refused() {
        let h = header(Protection::Sealed {
            algorithm: AlgorithmId(1),
            kind: KeyKind::Raw,
        });
        let b = h.encode(|_| [5; 32]).unwrap();
        for i in 0..HEADER_LEN {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert!(Header::decode(&c).is_err(), "byte {i}");
        }
        assert!(Header::decode(&b[..HEADER_LEN - 1]).is_err());
    }

    #[test]
    fn frames_round_trip_and_unknown_flags_are_refused() {
        assert_eq!(parse_frame(&frame(true, 24)), Some((true, 24)));
        assert_eq!(parse_frame(&[2, 0, 0, 0, 0, 0, 0, 0]), None);
    }
}
