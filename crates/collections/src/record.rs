//! A stored record: its schema version, the index entries it owns, its
//! serde body.
//!
//! ```text
//! 01                      record format
//! postcard(Head)          schema version; (index id, value) of each entry
//! postcard(T)             the body; each Sealed field a sealed byte string
//! ```
//!
//! The record lists its own index entries, so an update or a delete
//! removes exactly the entries it wrote without decoding (or unsealing) the
//! old body: a record whose tenant was erased can still be deleted, with
//! its entries. The listed blind values are the tags the index holds
//! anyway, so the list reveals nothing the index does not.

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The record format this version writes and reads.
pub(crate) const RECORD_FORMAT: u8 = 1;

/// What precedes a record's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub(crate) version: u32,
    /// (index id, encoded value or tag), one per index the record is in.
    pub(crate) entries: Vec<(u32, Vec<u8>)>,
}

/// A stored record, split.
pub(crate) struct Stored<'a> {
    pub(crate) head: Head,
    pub(crate) body: &'a [u8],
}

/// The start of a stored record, up to its body: the body is encoded
/// after it into the same buffer.
pub(crate) fn start(head: &Head) -> Result<Vec<u8>, postcard::Error> {
    let entries: usize = head.entries.iter().map(|(_, v)| v.len() + 8).sum();
    let mut out = Vec::with_capacity(64 + entries);
    out.push(RECORD_FORMAT);
    postcard::to_extend(head, out)
}

/// Joins head and body into a stored record.
pub(crate) fn join(head: &Head, body: &[u8]) -> Result<Vec<u8>, postcard::Error> {
    let mut out = start(head)?;
    out.extend_from_slice(body);
    Ok(out)
}

/// Splits a stored record; `None` if it is not one.
pub(crate) fn split(bytes: &[u8]) -> Option<Stored<'_>> {
    let (&format, rest) = bytes.split_first()?;
    if format != RECORD_FORMAT {
        return None;
    }
    let (head, body) = postcard::take_from_bytes::<Head>(rest).ok()?;
    Some(Stored { head, body })
}

/// A stored record's schema version and body, its index entries read past
/// without being kept (a read needs only these); `None` if it is not a
/// record.
pub(crate) fn body_of(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (&format, rest) = bytes.split_first()?;
    if format != RECORD_FORMAT {
        return None;
    }
    // The same encoding as `Head`: a struct is its fields in order.
    let ((version, SkippedEntries), body) =
        postcard::take_from_bytes::<(u32, SkippedEntries)>(rest).ok()?;
    Some((version, body))
}

/// `Head::entries`, read and dropped as it goes: no allocation per entry.
struct SkippedEntries;

impl<'de> Deserialize<'de> for SkippedEntries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = SkippedEntries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("index entries")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SkippedEntries, A::Error> {
                // A value is a `Vec<u8>`, which postcard writes as a
                // length and the bytes, as it writes a byte string.
                while seq.next_element::<(u32, &'de [u8])>()?.is_some() {}
                Ok(SkippedEntries)
            }
        }
        d.deserialize_seq(Entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_splits_into_what_was_joined() {
        let head = Head {
            version: 3,
            entries: vec![(1, vec![0, 1]), (7, vec![9; 16])],
        };
        let bytes = join(&head, b"body").unwrap();
        let stored = split(&bytes).unwrap();
        assert_eq!(stored.head, head);
        assert_eq!(stored.body, b"body");
        assert!(split(&[2]).is_none());
        assert!(split(&[]).is_none());
        assert!(split(&bytes[..3]).is_none());
    }

    #[test]
    fn the_body_read_past_the_entries_is_the_body_split_gives() {
        for entries in [
            vec![],
            vec![(1, vec![0, 1]), (7, vec![9; 300]), (u32::MAX, vec![])],
        ] {
            let head = Head {
                version: 70_000,
                entries,
            };
            let bytes = join(&head, b"the body").unwrap();
            assert_eq!(body_of(&bytes), Some((70_000, &b"the body"[..])));
            let stored = split(&bytes).unwrap();
            assert_eq!(body_of(&bytes), Some((stored.head.version, stored.body)));
            for cut in 1..bytes.len() - b"the body".len() {
                assert!(body_of(&bytes[..cut]).is_none(), "cut at {cut}");
            }
        }
        assert!(body_of(&[2]).is_none());
        assert!(body_of(&[]).is_none());
    }
}
