//! The key prefix of a keyspace: how one tree holds many keyspaces.
//!
//! Every key the engine stores starts with its keyspace's id in a
//! prefix-free, order-preserving encoding, so each keyspace is one
//! contiguous run of the tree, the memtables and the log:
//!
//! ```text
//! id < 0xF0                one byte: the id
//! id >= 0xF0               0xF0 + (n - 1), then the id in n big-endian
//!                          bytes, n = 1..=4 the fewest that hold it
//! ```
//!
//! The first byte tells the length, so no prefix is the start of another,
//! and ids compare as their encodings do. Ids 0 (the default keyspace) and
//! 1 (the catalog) take one byte, as do the first 238 named keyspaces.

use std::ops::Bound;

/// A keyspace's id: 0 is the default keyspace, 1 the catalog, and named
/// keyspaces get 2, 3, ... in order of creation, never reused.
pub(crate) type KeyspaceId = u32;

/// The default keyspace's id: what [`crate::Db`]'s own reads and writes use.
pub(crate) const DEFAULT: KeyspaceId = 0;
/// The catalog's id: the names and ids of the named keyspaces.
pub(crate) const CATALOG: KeyspaceId = 1;
/// The first id a named keyspace gets.
pub(crate) const FIRST_NAMED: KeyspaceId = 2;

/// The longest prefix: a marker byte and four id bytes.
pub(crate) const MAX_PREFIX_LEN: usize = 5;

const ONE_BYTE_LIMIT: u32 = 0xF0;

/// The encoded prefix of one keyspace, kept inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Prefix {
    bytes: [u8; MAX_PREFIX_LEN],
    len: u8,
}

impl Prefix {
    /// The prefix of keyspace `id`.
    pub(crate) fn of(id: KeyspaceId) -> Prefix {
        let mut bytes = [0u8; MAX_PREFIX_LEN];
        if id < ONE_BYTE_LIMIT {
            bytes[0] = id as u8;
            return Prefix { bytes, len: 1 };
        }
        let be = id.to_be_bytes();
        let skip = be.iter().take_while(|b| **b == 0).count();
        let n = be.len() - skip;
        bytes[0] = ONE_BYTE_LIMIT as u8 + (n as u8 - 1);
        bytes[1..=n].copy_from_slice(&be[skip..]);
        Prefix {
            bytes,
            len: 1 + n as u8,
        }
    }

    /// The id of the keyspace a stored key belongs to, read from its
    /// prefix; `None` for a key too short to hold one.
    pub(crate) fn id_of_key(key: &[u8]) -> Option<KeyspaceId> {
        let (&first, rest) = key.split_first()?;
        if u32::from(first) < ONE_BYTE_LIMIT {
            return Some(KeyspaceId::from(first));
        }
        let n = usize::from(first - ONE_BYTE_LIMIT as u8) + 1;
        if n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        Some(
            bytes
                .iter()
                .fold(0, |id, b| (id << 8) | KeyspaceId::from(*b)),
        )
    }

    /// The encoded bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// `key` with this prefix in front.
    pub(crate) fn key(&self, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.as_bytes().len() + key.len());
        out.extend_from_slice(self.as_bytes());
        out.extend_from_slice(key);
        out
    }

    /// A bound on user keys, as a bound on stored keys of this keyspace.
    /// An unbounded end becomes the edge of the keyspace.
    pub(crate) fn lower(&self, b: Bound<&[u8]>) -> Bound<Vec<u8>> {
        match b {
            Bound::Included(k) => Bound::Included(self.key(k)),
            Bound::Excluded(k) => Bound::Excluded(self.key(k)),
            Bound::Unbounded => Bound::Included(self.as_bytes().to_vec()),
        }
    }

    /// See [`Prefix::lower`]: the upper end.
    pub(crate) fn upper(&self, b: Bound<&[u8]>) -> Bound<Vec<u8>> {
        match b {
            Bound::Included(k) => Bound::Included(self.key(k)),
            Bound::Excluded(k) => Bound::Excluded(self.key(k)),
            Bound::Unbounded => crate::iter::prefix_upper(self.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_ids_take_one_byte() {
        assert_eq!(Prefix::of(DEFAULT).as_bytes(), &[0]);
        assert_eq!(Prefix::of(CATALOG).as_bytes(), &[1]);
        assert_eq!(Prefix::of(0xEF).as_bytes(), &[0xEF]);
        assert_eq!(Prefix::of(0xF0).as_bytes(), &[0xF0, 0xF0]);
        assert_eq!(Prefix::of(0x1234).as_bytes(), &[0xF1, 0x12, 0x34]);
        assert_eq!(
            Prefix::of(u32::MAX).as_bytes(),
            &[0xF3, 0xFF, 0xFF, 0xFF, 0xFF]
        );
    }

    proptest! {
        #[test]
        fn prefixes_round_trip_and_keep_order(a in any::<u32>(), b in any::<u32>(), ka in prop::collection::vec(any::<u8>(), 0..6), kb in prop::collection::vec(any::<u8>(), 0..6)) {
            let (pa, pb) = (Prefix::of(a), Prefix::of(b));
            prop_assert_eq!(&pa.key(&ka)[pa.as_bytes().len()..], &ka[..]);
            prop_assert_eq!(Prefix::id_of_key(&pa.key(&ka)), Some(a));
            // Keys of a lower keyspace all sort before keys of a higher
            // one, whatever the user keys: each keyspace is one run.
            if a != b {
                prop_assert_eq!(pa.key(&ka).cmp(&pb.key(&kb)), a.cmp(&b));
            }
            // No prefix starts another.
            if a != b {
                prop_assert!(!pa.as_bytes().starts_with(pb.as_bytes()));
            }
        }
    }
}
