//! The archive's byte layout: header, chunk frames, record encoding,
//! trailer. Pure encoding and decoding; no keys, no I/O.
//!
//! See `docs/FORMAT.md` ("Logical export archives") for the same layout in
//! prose.

use sealkv::crypto::{AlgorithmId, DbId, KdfParams, TAG_LEN};

/// The first 8 bytes of every archive.
pub const MAGIC: [u8; 8] = *b"SEALKVAR";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;
/// Bytes in the header.
pub const HEADER_LEN: usize = 164;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// The archive header: everything every chunk's AAD covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
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
    /// The header's bytes, with the key-check value and the CRC filled in
    /// (`key_check` computes the former over the first 128 bytes; plaintext
    /// archives leave it zero).
    pub(crate) fn encode(&self, key_check: impl FnOnce(&[u8]) -> [u8; 32]) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        let (mode, kind, alg, kdf) = match self.protection {
            Protection::PlaintextUnencrypted => (0u8, 0u8, 0u16, None),
            Protection::Sealed { algorithm, kind } => match kind {
                KeyKind::Raw => (1, 1, algorithm.0, None),
                KeyKind::Passphrase { salt, params } => (1, 2, algorithm.0, Some((salt, params))),
            },
        };
        b[10] = mode;
        b[11] = kind;
        b[12..14].copy_from_slice(&alg.to_le_bytes());
        b[16..20].copy_from_slice(&self.chunk_size.to_le_bytes());
        b[20..52].copy_from_slice(&self.salt);
        b[52..68].copy_from_slice(self.source_db.as_bytes());
        b[68..76].copy_from_slice(&self.snapshot_seq.to_le_bytes());
        b[76..84].copy_from_slice(&self.created_unix.to_le_bytes());
        if let Some((salt, params)) = kdf {
            b[84..88].copy_from_slice(&params.memory_kib.to_le_bytes());
            b[88..92].copy_from_slice(&params.iterations.to_le_bytes());
            b[92..96].copy_from_slice(&params.parallelism.to_le_bytes());
            b[96..128].copy_from_slice(&salt);
        }
        if mode == 1 {
            let check = key_check(&b[..KEY_CHECK_AT]);
            b[KEY_CHECK_AT..CRC_AT].copy_from_slice(&check);
        }
        let crc = crc32c::crc32c(&b[..CRC_AT]);
        b[CRC_AT..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes header bytes. Checks, in order: length, magic, CRC, version,
    /// then every field's range. The key check is left to the caller.
    pub(crate) fn decode(b: &[u8]) -> Result<Header, HeaderProblem> {
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
        if version != VERSION {
            return Err(HeaderProblem::Unsupported(format!(
                "format version {version} (this build reads {VERSION})"
            )));
        }
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
            _ => {
                return Err(HeaderProblem::Unsupported(format!(
                    "protection mode {mode}, key kind {kind}"
                )));
            }
        };
        let chunk_size = u32_at(b, 16);
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return corrupt("chunk size out of range");
        }
        Ok(Header {
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

/// The AAD of chunk `index`: the whole header, the index, and the frame.
pub(crate) fn aad(header: &[u8; HEADER_LEN], index: u64, frame: &[u8; FRAME_LEN]) -> Vec<u8> {
    let mut a = Vec::with_capacity(HEADER_LEN + 8 + FRAME_LEN);
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
        ] {
            let h = header(p);
            let b = h.encode(|_| [5; 32]);
            assert_eq!(Header::decode(&b), Ok(h));
        }
    }

    #[test]
    fn any_flipped_header_byte_is_refused() {
        let h = header(Protection::Sealed {
            algorithm: AlgorithmId(1),
            kind: KeyKind::Raw,
        });
        let b = h.encode(|_| [5; 32]);
        for i in 0..HEADER_LEN {
            let mut c = b;
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
