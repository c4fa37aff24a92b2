//! A memtable's key filter: answers "certainly not here" for most keys a
//! memtable does not hold, so a read that misses skips the skip list.
//!
//! It is a blocked Bloom filter: a key's hash picks one 64-bit word and
//! three bits in it; inserting sets the bits (an atomic OR, so concurrent
//! writers need no lock), and a key whose bits are not all set was never
//! inserted. A key whose bits are all set may or may not be there: the
//! caller searches as before. The filter never says "absent" for a key
//! inserted, so it never changes what a read returns.
//!
//! Ordering: a writer sets a key's bits before it publishes its batch
//! (release), and a reader loads the visible sequence number (acquire)
//! before it tests bits, so every key of a batch the reader can see has
//! its bits set for that reader; relaxed bit operations suffice.
//!
//! The hash is not keyed: a caller who picks keys to collide only makes
//! reads search the skip list, as they did without a filter. The filter
//! lives in memory only.

use std::sync::atomic::{AtomicU64, Ordering};

/// Words of the filter per byte of memtable bound: 8 bits per 64 bytes,
/// about 8 bits per entry at the smallest entries the size bound counts.
const BYTES_PER_WORD: u64 = 512;
/// The fewest words (8 KiB).
const MIN_WORDS: usize = 1 << 10;
/// The most words (256 KiB): a larger memtable bound shares them, and the
/// filter answers "maybe" more often. Bounded so the filter stays in a
/// core's L2 cache: every insert sets bits in a random word, and a filter
/// that misses the cache on each costs blind writes about a tenth of their
/// speed (measured at 1 MiB).
const MAX_WORDS: usize = 1 << 15;

/// A set of key hashes with false positives and no false negatives.
#[derive(Debug)]
pub(crate) struct KeyFilter {
    words: Box<[AtomicU64]>,
}

/// The hash of a key, computed once and tested against several filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyHash(u64);

impl KeyHash {
    /// The hash of `key`.
    pub(crate) fn of(key: &[u8]) -> KeyHash {
        const MUL: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut h = (key.len() as u64).wrapping_mul(MUL);
        let mut chunks = key.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            h = (h ^ u64::from_le_bytes(word))
                .wrapping_mul(MUL)
                .rotate_left(29);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            h = (h ^ u64::from_le_bytes(word))
                .wrapping_mul(MUL)
                .rotate_left(29);
        }
        KeyHash(mix(h))
    }

    /// The three bits this hash sets in its word.
    fn mask(self) -> u64 {
        let h = self.0;
        (1u64 << (h >> 58)) | (1u64 << ((h >> 52) & 63)) | (1u64 << ((h >> 46) & 63))
    }
}

/// A final avalanche (the 64-bit finalizer of MurmurHash3), so every bit
/// of the hash depends on every bit of the key.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

impl KeyFilter {
    /// A filter sized for a memtable bounded at `memtable_bytes`.
    pub(crate) fn sized_for(memtable_bytes: u64) -> KeyFilter {
        let want = usize::try_from(memtable_bytes / BYTES_PER_WORD).unwrap_or(MAX_WORDS);
        let words = want.clamp(MIN_WORDS, MAX_WORDS).next_power_of_two();
        KeyFilter {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn word(&self, hash: KeyHash) -> &AtomicU64 {
        // The low bits pick the word; the mask uses the high ones.
        &self.words[(hash.0 as usize) & (self.words.len() - 1)]
    }

    /// Records a key.
    pub(crate) fn insert(&self, hash: KeyHash) {
        self.word(hash).fetch_or(hash.mask(), Ordering::Relaxed);
    }

    /// False only if no key with this hash was inserted.
    pub(crate) fn may_hold(&self, hash: KeyHash) -> bool {
        let mask = hash.mask();
        self.word(hash).load(Ordering::Relaxed) & mask == mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_follow_the_memtable_bound_within_limits() {
        assert_eq!(KeyFilter::sized_for(0).words.len(), MIN_WORDS);
        assert_eq!(KeyFilter::sized_for(8 << 20).words.len(), 1 << 14);
        assert_eq!(KeyFilter::sized_for(64 << 20).words.len(), MAX_WORDS);
        assert_eq!(KeyFilter::sized_for(u64::MAX).words.len(), MAX_WORDS);
    }

    /// Keys like a collection's: one shared prefix, a counter at the end.
    fn key(i: u32) -> Vec<u8> {
        let mut k = vec![7, 2, 0, 0, 0, 1];
        k.extend_from_slice(format!("person{i}@example.org").as_bytes());
        k
    }

    #[test]
    fn most_keys_never_inserted_are_answered_absent() {
        let f = KeyFilter::sized_for(8 << 20);
        for i in 0..30_000 {
            f.insert(KeyHash::of(&key(i)));
        }
        let maybe = (30_000..60_000)
            .filter(|i| f.may_hold(KeyHash::of(&key(*i))))
            .count();
        // 16 Ki words hold 30 000 keys: well under 1% should pass.
        assert!(maybe < 300, "{maybe} of 30000 absent keys passed");
    }

    proptest! {
        #[test]
        fn an_inserted_key_is_never_answered_absent(
            keys in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..200),
        ) {
            let f = KeyFilter::sized_for(0);
            for k in &keys {
                f.insert(KeyHash::of(k));
            }
            for k in &keys {
                prop_assert!(f.may_hold(KeyHash::of(k)));
            }
        }
    }
}
