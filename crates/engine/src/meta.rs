//! The engine's own fields in the page file's meta page: what the tree
//! holds of the WAL, and which registry it was written with.
//!
//! ```text
//! 0   4  magic "SKVE"
//! 4   1  version (3; 2 lacks the lineage id)
//! 5   8  applied_seq        last WAL sequence number applied to the tree
//! 13  8  prev_applied_seq   applied_seq of the flush before (WAL retirement
//!                           runs one flush behind)
//! 21  8  anchor_segment     the WAL segment that begins right after
//!                           applied_seq (rolled to when the memtable froze)
//! 29  8  registry_generation  generation of the key registry (0: none)
//! 37  32 registry_hash      SHA-256 trailer of the registry file at that
//!                           generation (zeros: none)
//! 69  16 lineage            random id of this line of commits (version 3
//!                           on; absent in version 2)
//! 85  8  cursor_field_len   0: no re-encryption under way; n > 0: one
//!                           is, and the n - 1 bytes that follow are the
//!                           last key it rewrote (which may be empty)
//! 93  n-1 reencrypt cursor key
//! ```
//!
//! Version 2 has no lineage: the cursor field starts at 69. It is read
//! with no lineage, and the next commit writes version 3 with a new one.
//! The lineage is drawn when a database is created and again whenever a
//! copy becomes a database of its own (a backup, a restore): a freshness
//! anchor records it, so a copy put where the anchored database was is
//! told apart even when it has reached the same commit number.
//!
//! All integers big-endian. The meta page is sealed and authenticated by
//! the page store; these bytes are only ever read after it verified them.
//! A new page file records them in its first meta page, so a file without
//! them (or with version 1) was written by a build before keyspaces, whose
//! keys have no keyspace prefix: it is refused with
//! [`Error::UnsupportedFormat`], never read as if its keys had one.

use crate::Error;

const MAGIC: &[u8; 4] = b"SKVE";
const VERSION: u8 = 3;
/// Keyspace prefixes, no lineage id: read, rewritten as `VERSION` at the
/// next commit.
const NO_LINEAGE: u8 = 2;
/// The format of databases written before keyspaces existed.
const UNPREFIXED: u32 = 1;
/// Where the lineage id is (version 3).
const LINEAGE_AT: usize = 69;
/// The length of the fixed fields: version 2, version 3.
const FIXED_LEN_V2: usize = 77;
const FIXED_LEN: usize = 93;

/// The random id of a line of commits: drawn when a database is created
/// and whenever a copy becomes a database of its own. Not secret; it is
/// authenticated with the meta page and the freshness anchor.
pub(crate) type Lineage = [u8; 16];

/// A new lineage id, from the system's random source mixed with the
/// provider's (never all zeros, which stands for none).
pub(crate) fn new_lineage(
    provider: &sealkv_crypto_envelope::CryptoProvider,
) -> Result<Lineage, Error> {
    let mut id = Lineage::default();
    while id == Lineage::default() {
        sealkv_crypto_envelope::random::mixed_fill(provider, &mut id)?;
    }
    Ok(id)
}

/// The engine's fields of one committed meta page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EngineMeta {
    pub(crate) applied_seq: u64,
    pub(crate) prev_applied_seq: u64,
    pub(crate) anchor_segment: u64,
    pub(crate) registry_generation: u64,
    pub(crate) registry_hash: [u8; 32],
    /// `None` only for a meta page of version 2 not yet rewritten.
    pub(crate) lineage: Option<Lineage>,
    pub(crate) reencrypt_cursor: Option<Vec<u8>>,
}

impl EngineMeta {
    /// The bytes of these fields: version 3, or version 2 while there is
    /// no lineage yet (a page file of version 2 keeps its layout until the
    /// open that draws its lineage commits).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let cursor = self.reencrypt_cursor.as_deref().unwrap_or_default();
        // 0 is "no cursor"; otherwise 1 + the key's length (the empty key
        // is a cursor too).
        let field_len = self
            .reencrypt_cursor
            .as_ref()
            .map_or(0, |c| c.len() as u64 + 1);
        let mut out = Vec::with_capacity(FIXED_LEN + cursor.len());
        out.extend_from_slice(MAGIC);
        out.push(if self.lineage.is_some() {
            VERSION
        } else {
            NO_LINEAGE
        });
        for v in [
            self.applied_seq,
            self.prev_applied_seq,
            self.anchor_segment,
            self.registry_generation,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.registry_hash);
        if let Some(lineage) = &self.lineage {
            out.extend_from_slice(lineage);
        }
        out.extend_from_slice(&field_len.to_be_bytes());
        out.extend_from_slice(cursor);
        out
    }

    /// Decodes the engine fields.
    pub(crate) fn decode(bytes: &[u8], file: &std::path::Path) -> Result<Self, Error> {
        let older = || Error::UnsupportedFormat {
            file: file.to_path_buf(),
            found: UNPREFIXED,
            supported: u32::from(VERSION),
            advice: "it was written before keyspaces existed; export it with the sealkv that wrote it and import the archive into a new database",
        };
        if bytes.is_empty() {
            return Err(older());
        }
        let bad = |what: &str| Error::Corruption {
            file: file.to_path_buf(),
            what: format!("engine fields of the meta page: {what}"),
        };
        if bytes.get(..4) != Some(&MAGIC[..]) {
            return Err(bad("bad magic"));
        }
        let fixed_len = match bytes.get(4) {
            Some(&VERSION) => FIXED_LEN,
            Some(&NO_LINEAGE) => FIXED_LEN_V2,
            Some(1) => return Err(older()),
            _ => return Err(bad("unknown version")),
        };
        let word_at = |at: usize| -> Result<u64, Error> {
            bytes
                .get(at..at + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| bad("truncated"))
        };
        let word = |i: usize| word_at(5 + 8 * i);
        let hash: [u8; 32] = bytes
            .get(37..69)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("truncated"))?;
        let lineage = if fixed_len == FIXED_LEN {
            let id: Lineage = bytes
                .get(LINEAGE_AT..LINEAGE_AT + 16)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("truncated"))?;
            if id == Lineage::default() {
                return Err(bad("lineage id of zeros"));
            }
            Some(id)
        } else {
            None
        };
        let field_len =
            usize::try_from(word_at(fixed_len - 8)?).map_err(|_| bad("cursor length"))?;
        let cursor = bytes
            .get(fixed_len..)
            .filter(|rest| rest.len() + 1 == field_len || (field_len == 0 && rest.is_empty()))
            .ok_or_else(|| bad("cursor length does not match"))?;
        Ok(EngineMeta {
            applied_seq: word(0)?,
            prev_applied_seq: word(1)?,
            anchor_segment: word(2)?,
            registry_generation: word(3)?,
            registry_hash: hash,
            lineage,
            reencrypt_cursor: (field_len > 0).then(|| cursor.to_vec()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn round_trips_and_refuses_damage() {
        let m = EngineMeta {
            applied_seq: 7,
            prev_applied_seq: 3,
            anchor_segment: 2,
            registry_generation: 9,
            registry_hash: [5; 32],
            lineage: Some([6; 16]),
            reencrypt_cursor: Some(b"k".to_vec()),
        };
        let bytes = m.encode();
        assert_eq!(bytes[4], VERSION);
        let p = Path::new("data.sealkv");
        assert_eq!(EngineMeta::decode(&bytes, p).unwrap(), m);
        assert!(matches!(
            EngineMeta::decode(&[], p),
            Err(Error::UnsupportedFormat {
                found: 1,
                supported: 3,
                ..
            })
        ));
        let mut v1 = bytes.clone();
        v1[4] = 1;
        assert!(matches!(
            EngineMeta::decode(&v1, p),
            Err(Error::UnsupportedFormat { found: 1, .. })
        ));
        for n in 1..bytes.len() {
            assert!(matches!(
                EngineMeta::decode(&bytes[..n], p),
                Err(Error::Corruption { .. })
            ));
        }
        for cursor in [None, Some(Vec::new())] {
            let m = EngineMeta {
                reencrypt_cursor: cursor,
                ..m.clone()
            };
            assert_eq!(EngineMeta::decode(&m.encode(), p).unwrap(), m);
        }
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        assert!(EngineMeta::decode(&bad, p).is_err());
        // A lineage of zeros is no lineage: damage, not "none".
        let mut zeros = bytes.clone();
        zeros[LINEAGE_AT..LINEAGE_AT + 16].fill(0);
        assert!(matches!(
            EngineMeta::decode(&zeros, p),
            Err(Error::Corruption { .. })
        ));
    }

    /// Version 2 (no lineage) reads with none, and is what is written
    /// while there is none.
    #[test]
    fn version_2_reads_without_a_lineage() {
        let m = EngineMeta {
            applied_seq: 7,
            registry_generation: 2,
            registry_hash: [5; 32],
            reencrypt_cursor: Some(b"cursor".to_vec()),
            ..EngineMeta::default()
        };
        // Version 2's layout, written out by hand.
        let mut v2 = b"SKVE".to_vec();
        v2.push(2);
        for w in [7u64, 0, 0, 2] {
            v2.extend_from_slice(&w.to_be_bytes());
        }
        v2.extend_from_slice(&[5; 32]);
        v2.extend_from_slice(&7u64.to_be_bytes());
        v2.extend_from_slice(b"cursor");
        let p = Path::new("data.sealkv");
        assert_eq!(EngineMeta::decode(&v2, p).unwrap(), m);
        assert_eq!(m.encode(), v2);
    }
}
