//! The on-disk layout of segments and records (see `docs/FORMAT.md`).
//!
//! ```text
//! segment header (128 bytes, authenticated by its tag):
//!   0  magic "SEALKVWL"        8
//!   8  format version u16      (2; 1 is still read)
//!  10  flags u16               bit 0: sealed
//!  12  algorithm u16           0 when plaintext
//!  14  domain u8 (1 = WAL), reserved u8
//!  16  data key id u32         0 when plaintext
//!  20  reserved u32
//!  24  segment number u64
//!  32  first sequence u64      sequence of the segment's first record
//!  40  header nonce counter u64
//!  48  database id [16]
//!  64  session salt [32]       zero when plaintext
//!  96  reserved [16]
//! 112  tag [16]                AEAD tag (empty body, AAD = bytes 0..112) or CRC32C
//!
//! record (at 128, then back to back):
//!   0  body length u32
//!   4  flags u32               bit 0: sync marker (version 2 only); other bits 0
//!   8  sequence u64            a marker carries the sequence the next record will have
//!  16  nonce counter u64       0 when plaintext
//!  24  durable mark u64        the segment was fsynced up to here when this record was made
//!  32  body                    the encoded batch, sealed in place (empty in a marker)
//!  32+len  tag [16]
//!
//! A sync marker is written right after an fsync that left nothing after the
//! last record: its durable mark is its own offset, and it proves to recovery
//! that every byte before it was durable (docs/WAL.md).
//! record AAD = segment context (64 bytes) || record header (32 bytes)
//! segment context = version u16, algorithm u16, dek u32, segment u64, db id, salt
//! ```
//!
//! All integers are little-endian.

#![deny(clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use sealkv_crypto_envelope::{AlgorithmId, DbId, KeyId, SessionSalt, TAG_LEN};

/// Magic bytes at the start of every segment.
pub(crate) const MAGIC: [u8; 8] = *b"SEALKVWL";
/// Format version written. Version 2 added sync markers.
pub(crate) const VERSION: u16 = 2;
/// Oldest format version still read (no sync markers).
pub(crate) const OLDEST_VERSION: u16 = 1;
/// Largest sequence number accepted (far beyond any real log).
pub(crate) const MAX_SEQ: u64 = i64::MAX as u64;
/// Segment header length.
pub(crate) const HEADER_LEN: usize = 128;
/// Header bytes covered by the header tag.
const HEADER_BODY: usize = HEADER_LEN - TAG_LEN;
/// Record header length.
pub(crate) const RECORD_HEADER_LEN: usize = 32;
/// Bytes a record adds around its body.
pub(crate) const RECORD_OVERHEAD: usize = RECORD_HEADER_LEN + TAG_LEN;
/// Segment context length (first part of every record's AAD).
pub(crate) const CTX_LEN: usize = 64;
/// Full record AAD length.
pub(crate) const AAD_LEN: usize = CTX_LEN + RECORD_HEADER_LEN;
const FLAG_SEALED: u16 = 1;
const DOMAIN_WAL: u8 = 1;
/// Record flag: the record is a sync marker.
const RECORD_FLAG_MARKER: u32 = 1;

fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// The path of segment `n` in the log directory `dir`
/// (`{n:020}.wal`: twenty decimal digits, so names sort in order).
pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}.wal"))
}

/// The segment number of a file name, if it is a segment's.
pub(crate) fn parse_segment_name(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A decoded segment header (before or after its tag is checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// Format version of the segment ([`VERSION`] when written).
    pub(crate) version: u16,
    pub(crate) sealed: bool,
    pub(crate) algorithm: AlgorithmId,
    pub(crate) dek: KeyId,
    pub(crate) segment: u64,
    pub(crate) first_seq: u64,
    pub(crate) counter: u64,
    pub(crate) db_id: DbId,
    pub(crate) salt: SessionSalt,
}

impl SegmentHeader {
    /// The header bytes with a zero tag slot.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        let flags = if self.sealed { FLAG_SEALED } else { 0 };
        b[10..12].copy_from_slice(&flags.to_le_bytes());
        b[12..14].copy_from_slice(&self.algorithm.0.to_le_bytes());
        b[14] = DOMAIN_WAL;
        b[16..20].copy_from_slice(&self.dek.0.to_le_bytes());
        b[24..32].copy_from_slice(&self.segment.to_le_bytes());
        b[32..40].copy_from_slice(&self.first_seq.to_le_bytes());
        b[40..48].copy_from_slice(&self.counter.to_le_bytes());
        b[48..64].copy_from_slice(self.db_id.as_bytes());
        b[64..96].copy_from_slice(&self.salt.0);
        b
    }

    /// Parses the structural fields; `None` if the bytes cannot be a header
    /// of this format (bad magic, version, flags or reserved bytes).
    pub(crate) fn decode(b: &[u8]) -> Option<SegmentHeader> {
        let b = b.get(..HEADER_LEN)?;
        let version = u16_at(b, 8);
        if b.get(0..8)? != MAGIC || !(OLDEST_VERSION..=VERSION).contains(&version) {
            return None;
        }
        let flags = u16_at(b, 10);
        if flags & !FLAG_SEALED != 0 || *b.get(14)? != DOMAIN_WAL || *b.get(15)? != 0 {
            return None;
        }
        if u32_at(b, 20) != 0 || b.get(96..112)?.iter().any(|&x| x != 0) {
            return None;
        }
        // Sequence numbers live in 1..=i64::MAX, so `+ 1` never overflows.
        let first_seq = u64_at(b, 32);
        if first_seq == 0 || first_seq > MAX_SEQ {
            return None;
        }
        let mut db = [0u8; 16];
        db.copy_from_slice(b.get(48..64)?);
        let mut salt = [0u8; 32];
        salt.copy_from_slice(b.get(64..96)?);
        Some(SegmentHeader {
            version,
            sealed: flags & FLAG_SEALED != 0,
            algorithm: AlgorithmId(u16_at(b, 12)),
            dek: KeyId(u32_at(b, 16)),
            segment: u64_at(b, 24),
            first_seq,
            counter: u64_at(b, 40),
            db_id: DbId(db),
            salt: SessionSalt(salt),
        })
    }

    /// The bytes the header tag covers.
    pub(crate) fn aad(encoded: &[u8; HEADER_LEN]) -> &[u8] {
        &encoded[..HEADER_BODY]
    }

    /// The tag slot of an encoded header.
    pub(crate) fn tag_mut(encoded: &mut [u8; HEADER_LEN]) -> &mut [u8] {
        &mut encoded[HEADER_BODY..]
    }

    /// Whether records of this segment may be sync markers.
    pub(crate) fn has_markers(&self) -> bool {
        self.version >= 2
    }

    /// The segment context that starts every record's AAD.
    pub(crate) fn context(&self) -> [u8; CTX_LEN] {
        let mut c = [0u8; CTX_LEN];
        c[0..2].copy_from_slice(&self.version.to_le_bytes());
        c[2..4].copy_from_slice(&self.algorithm.0.to_le_bytes());
        c[4..8].copy_from_slice(&self.dek.0.to_le_bytes());
        c[8..16].copy_from_slice(&self.segment.to_le_bytes());
        c[16..32].copy_from_slice(self.db_id.as_bytes());
        c[32..64].copy_from_slice(&self.salt.0);
        c
    }
}

/// A decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) len: u32,
    /// A sync marker: no batch, only a durable mark (its own offset).
    pub(crate) marker: bool,
    pub(crate) seq: u64,
    pub(crate) counter: u64,
    pub(crate) durable_mark: u64,
}

impl RecordHeader {
    pub(crate) fn encode_into(&self, b: &mut [u8]) {
        debug_assert!(b.len() >= RECORD_HEADER_LEN);
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&self.len.to_le_bytes());
        let flags = if self.marker { RECORD_FLAG_MARKER } else { 0 };
        h[4..8].copy_from_slice(&flags.to_le_bytes());
        h[8..16].copy_from_slice(&self.seq.to_le_bytes());
        h[16..24].copy_from_slice(&self.counter.to_le_bytes());
        h[24..32].copy_from_slice(&self.durable_mark.to_le_bytes());
        if let Some(dst) = b.get_mut(..RECORD_HEADER_LEN) {
            dst.copy_from_slice(&h);
        }
    }

    /// Parses a record header; `None` if an unknown flag is set.
    pub(crate) fn decode(b: &[u8]) -> Option<RecordHeader> {
        let b = b.get(..RECORD_HEADER_LEN)?;
        let flags = u32_at(b, 4);
        if flags & !RECORD_FLAG_MARKER != 0 {
            return None;
        }
        Some(RecordHeader {
            len: u32_at(b, 0),
            marker: flags & RECORD_FLAG_MARKER != 0,
            seq: u64_at(b, 8),
            counter: u64_at(b, 16),
            durable_mark: u64_at(b, 24),
        })
    }

    /// Total bytes the record takes in the segment.
    pub(crate) fn total_len(&self) -> u64 {
        self.len as u64 + RECORD_OVERHEAD as u64
    }
}

/// The record AAD: segment context then the record header bytes.
pub(crate) fn record_aad(ctx: &[u8; CTX_LEN], header: &[u8]) -> [u8; AAD_LEN] {
    let mut aad = [0u8; AAD_LEN];
    aad[..CTX_LEN].copy_from_slice(ctx);
    if let Some(h) = header.get(..RECORD_HEADER_LEN) {
        aad[CTX_LEN..].copy_from_slice(h);
    }
    aad
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_names() {
        let h = SegmentHeader {
            version: VERSION,
            sealed: true,
            algorithm: AlgorithmId(1),
            dek: KeyId(7),
            segment: 9,
            first_seq: 100,
            counter: 0,
            db_id: DbId([3; 16]),
            salt: SessionSalt([5; 32]),
        };
        assert_eq!(SegmentHeader::decode(&h.encode()), Some(h));
        let p = segment_path(Path::new("/w"), 42);
        assert_eq!(parse_segment_name(&p), Some(42));
        assert_eq!(parse_segment_name(Path::new("/w/42.wal")), None);
        let r = RecordHeader {
            len: 5,
            marker: false,
            seq: 6,
            counter: 7,
            durable_mark: 128,
        };
        let mut b = [0u8; RECORD_HEADER_LEN];
        r.encode_into(&mut b);
        assert_eq!(RecordHeader::decode(&b), Some(r));
        let m = RecordHeader {
            len: 0,
            marker: true,
            seq: 7,
            counter: 8,
            durable_mark: 300,
        };
        m.encode_into(&mut b);
        assert_eq!(RecordHeader::decode(&b), Some(m));
        b[4] = 2;
        assert_eq!(RecordHeader::decode(&b), None, "unknown flag");
        let mut old = h;
        old.version = OLDEST_VERSION;
        assert_eq!(SegmentHeader::decode(&old.encode()), Some(old));
        assert!(!old.has_markers() && h.has_markers());
        assert_ne!(old.context(), h.context(), "the version is authenticated");
        let mut future = h.encode();
        future[8] = 3;
        assert_eq!(SegmentHeader::decode(&future), None);
    }
}
