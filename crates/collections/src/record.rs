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

/// Joins head and body into a stored record.
pub(crate) fn join(head: &Head, body: &[u8]) -> Result<Vec<u8>, postcard::Error> {
    let mut out = vec![RECORD_FORMAT];
    out.extend_from_slice(&postcard::to_allocvec(head)?);
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
}
