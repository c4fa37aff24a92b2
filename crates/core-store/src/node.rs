//! Tree nodes: a decoded leaf or branch body with an index of its entries.
//!
//! Body layout (inside the sealed part of a page):
//!
//! ```text
//! u16 count, then `count` entries, then zero padding
//! leaf entry:   u16 klen | key | u8 0 | u32 vlen | value          (inline)
//!               u16 klen | key | u8 1 | u64 vlen | u64 page | tag  (overflow)
//! branch entry: u16 klen | key | u64 child page | child tag
//! ```
//!
//! Keys are strictly increasing. In a branch, entry `i` routes keys `>=
//! key(i)` and `< key(i+1)`; the first entry also takes every smaller key.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::error::{Result, StoreError};
use crate::format::{Tag, be16, be32, be64, tag_at};

/// A value as a leaf stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValRef<'a> {
    Inline(&'a [u8]),
    Overflow { len: u64, page: u64, tag: Tag },
}

/// A child pointer: page number and the tag the child must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildRef {
    /// The page.
    pub page: u64,
    /// Its expected tag.
    pub tag: Tag,
}

/// Bytes of one index record: the key's head and the entry's offset.
const RECORD: usize = 8;

/// What a cached node costs besides its buffer: the `Arc`'s two counters
/// and the allocator's header (32), and the cache's map entry and clock
/// slot (about 96).
const OVERHEAD: usize = 128;

/// A decoded tree page, in one shared allocation (cloning it is one
/// reference count increment):
///
/// ```text
/// data: shared prefix | count × (u32 head, u32 offset) | used body bytes
/// ```
///
/// The prefix is the bytes every key of the node starts with; a head is
/// the 4 bytes of a key after that prefix (zero-padded) as a number, in key
/// order, so a search compares heads and reads the body only where they
/// tie; an offset is where the entry starts in `data` (the next entry's
/// offset, or the end of `data`, is where it ends). Index records are in
/// native byte order: they are built in memory, never stored. A search
/// reads the prefix and the index from adjacent cache lines of the same
/// block, then the one entry it lands on.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) leaf: bool,
    /// Entry count.
    count: u16,
    /// Length of the shared prefix (bytes `0..prefix` of `data`).
    prefix: u16,
    data: Arc<[u8]>,
}

/// A key as [`Node::probe`] placed it against one node.
pub(crate) struct Probe<'k> {
    key: &'k [u8],
    /// The head of the key past the node's shared prefix, or, for a key
    /// that does not start with it, its order against the prefix.
    head: std::result::Result<u32, Ordering>,
}

impl Node {
    /// Parses and checks a body (page number `page` for errors); like
    /// [`Node::decode_used`], it keeps only the bytes the entries use.
    pub(crate) fn decode(leaf: bool, body: Box<[u8]>, page: u64) -> Result<Node> {
        Node::decode_used(leaf, &body, page)
    }

    /// Parses and checks a body, keeping a copy of only its entries: the
    /// zero padding after the last one is dropped, so a cached node is
    /// charged (and holds) what it uses, not a whole page.
    pub(crate) fn decode_used(leaf: bool, body: &[u8], page: u64) -> Result<Node> {
        let bad = |what: &str| StoreError::corrupt(page, what);
        let offs = index(leaf, body, page)?;
        let end = offs.last().map_or(0, |&e| e as usize);
        // The entries, without the count before them (entry offsets count
        // from the start of the body, 2 bytes before `used`).
        let used = body
            .get(2..end)
            .ok_or_else(|| bad("entry overruns the page"))?;
        let count = offs.len() - 1;
        let key_at = |i: usize| {
            offs.get(i)
                .map_or(&[][..], |&o| entry_key_at(body, o as usize))
        };
        // Keys are sorted (`checked` fails the node otherwise, and no search
        // runs on it), so the first and last keys' common prefix is every
        // key's.
        let (first, last) = (key_at(0), key_at(count.saturating_sub(1)));
        let prefix = first.iter().zip(last).take_while(|(a, b)| a == b).count();
        let base = prefix + count * RECORD;
        // Built in place in its one allocation (an exact-length iterator
        // collects into an `Arc<[u8]>` without a second buffer): no other
        // copy of the decrypted entries is made, or left behind unwiped.
        let mut data: Arc<[u8]> = std::iter::repeat_n(0u8, base + used.len()).collect();
        let buf = Arc::get_mut(&mut data).ok_or_else(|| bad("node buffer shared"))?;
        let (index_part, body_part) = buf.split_at_mut(base);
        let (prefix_part, records) = index_part.split_at_mut(prefix);
        // `prefix` is at most the first key's length (computed from it).
        let shared = first.get(..prefix).ok_or_else(|| bad("key prefix"))?;
        prefix_part.copy_from_slice(shared);
        for ((i, &o), rec) in offs
            .iter()
            .take(count)
            .enumerate()
            .zip(records.chunks_exact_mut(RECORD))
        {
            let at = u32::try_from(base + (o as usize).saturating_sub(2))
                .map_err(|_| bad("node too large"))?;
            let h = head(key_at(i).get(prefix..).unwrap_or_default());
            let (h_out, at_out) = rec.split_at_mut(4);
            h_out.copy_from_slice(&h.to_ne_bytes());
            at_out.copy_from_slice(&at.to_ne_bytes());
        }
        body_part.copy_from_slice(used);
        Node {
            leaf,
            count: u16::try_from(count).map_err(|_| bad("too many entries"))?,
            prefix: u16::try_from(prefix).map_err(|_| bad("key too long"))?,
            data,
        }
        .checked(page)
    }

    /// The checks that need the index: keys strictly increasing, and no
    /// overflow value at page 0.
    fn checked(self, page: u64) -> Result<Node> {
        let bad = |what: &str| StoreError::corrupt(page, what);
        for i in 1..self.len() {
            if self.key(i - 1) >= self.key(i) {
                return Err(bad("keys out of order"));
            }
        }
        if self.leaf {
            for i in 0..self.len() {
                if let ValRef::Overflow { page: 0, .. } = self.val(i) {
                    return Err(bad("overflow value points at page 0"));
                }
            }
        }
        Ok(self)
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// The index records, one per entry (decoding built every one).
    #[inline]
    fn records(&self) -> &[[u8; RECORD]] {
        let at = usize::from(self.prefix);
        let index = self
            .data
            .get(at..at + self.len() * RECORD)
            .unwrap_or_default();
        index.as_chunks::<RECORD>().0
    }

    /// The head of key `i` (0 past the last).
    #[inline]
    fn head(&self, i: usize) -> u32 {
        self.records().get(i).map_or(0, record_head)
    }

    /// Where entry `i` starts in `data`; `i == len()` gives the end.
    #[inline]
    fn start(&self, i: usize) -> usize {
        match self.records().get(i) {
            Some(r) => record_start(r),
            None => self.data.len(),
        }
    }

    /// The encoded bytes of entry `i`.
    pub(crate) fn raw(&self, i: usize) -> &[u8] {
        self.data
            .get(self.start(i)..self.start(i + 1))
            .unwrap_or_default()
    }

    #[inline]
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        entry_key_at(&self.data, self.start(i))
    }

    /// The value of leaf entry `i`.
    pub(crate) fn val(&self, i: usize) -> ValRef<'_> {
        self.entry(i).1
    }

    /// The key and value of leaf entry `i`, reading its place in the index
    /// once (what [`Node::key`] and [`Node::val`] give).
    #[inline]
    pub(crate) fn entry(&self, i: usize) -> (&[u8], ValRef<'_>) {
        debug_assert!(self.leaf);
        let start = self.start(i);
        let key = entry_key_at(&self.data, start);
        (key, self.val_at(start + 2 + key.len()))
    }

    /// The value whose flag byte is at `at`.
    #[inline]
    fn val_at(&self, at: usize) -> ValRef<'_> {
        let b = &self.data;
        if b.get(at) == Some(&0) {
            let len = be32(b, at + 1).unwrap_or(0) as usize;
            ValRef::Inline(b.get(at + 5..at + 5 + len).unwrap_or_default())
        } else {
            ValRef::Overflow {
                len: be64(b, at + 1).unwrap_or(0),
                page: be64(b, at + 9).unwrap_or(0),
                tag: tag_at(b, at + 17).unwrap_or_default(),
            }
        }
    }

    /// The child of branch entry `i`.
    pub(crate) fn child(&self, i: usize) -> ChildRef {
        debug_assert!(!self.leaf);
        let at = self.start(i) + 2 + self.key(i).len();
        ChildRef {
            page: be64(&self.data, at).unwrap_or(0),
            tag: tag_at(&self.data, at + 8).unwrap_or_default(),
        }
    }

    /// The first index in `lo..hi` whose head fails `pred` (heads are
    /// sorted, so `pred` holds on a prefix of them), by bisection.
    fn partition(&self, mut lo: usize, mut hi: usize, pred: impl Fn(u32) -> bool) -> usize {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(self.head(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The first index whose head is at least `h` (`len()` if none), by a
    /// bisection without a branch on the data: each step halves the span
    /// with a conditional move, so a search of a node of `n` entries is
    /// `log2(n)` head loads and no mispredicted jump, whatever the key.
    #[inline]
    fn first_head_at_least(&self, h: u32) -> usize {
        let records = self.records();
        let head = |i: usize| records.get(i).map_or(0, record_head);
        let (mut base, mut span) = (0, records.len());
        if span == 0 {
            return 0;
        }
        // The answer lies in `base..=base + span`.
        while span > 1 {
            let half = span / 2;
            if head(base + half) < h {
                base += half;
            }
            span -= half;
        }
        base + usize::from(head(base) < h)
    }

    /// Where `key` stands against this node's keys, for
    /// [`Node::cmp_probe`]: its shared prefix compared once, and the head
    /// of the rest.
    #[inline]
    pub(crate) fn probe<'k>(&self, key: &'k [u8]) -> Probe<'k> {
        let shared = self
            .data
            .get(..usize::from(self.prefix))
            .unwrap_or_default();
        let head = match key.strip_prefix(shared) {
            Some(rest) => Ok(head(rest)),
            // A key without the shared prefix sorts before every key of
            // the node or after every one, as it sorts against the prefix.
            None => Err(key.cmp(shared)),
        };
        Probe { key, head }
    }

    /// The order of key `i` against the probed key: by heads, and by
    /// whole keys only where the heads tie.
    #[inline]
    pub(crate) fn cmp_probe(&self, i: usize, probe: &Probe<'_>) -> Ordering {
        match probe.head {
            Ok(h) => match self.head(i).cmp(&h) {
                Ordering::Equal => self.key(i).cmp(probe.key),
                other => other,
            },
            Err(key_vs_prefix) => key_vs_prefix.reverse(),
        }
    }

    /// Leaf: the index of `key` or where it would go.
    #[inline]
    pub(crate) fn search(&self, key: &[u8]) -> std::result::Result<usize, usize> {
        self.search_probe(&self.probe(key))
    }

    /// [`Node::search`] of a probed key.
    #[inline]
    pub(crate) fn search_probe(&self, probe: &Probe<'_>) -> std::result::Result<usize, usize> {
        let n = self.len();
        let h = match probe.head {
            Ok(h) => h,
            Err(Ordering::Greater) => return Err(n),
            Err(_) => return Err(0),
        };
        // Heads are in key order: every key whose head is below `key`'s is
        // smaller than it, every key whose head is above is larger; only
        // the run of equal heads needs whole keys. Mostly that run is one
        // key or none (the 4 bytes after the shared prefix tell keys
        // apart); a longer one is bisected by whole keys, so a node whose
        // keys share more than its prefix stays logarithmic.
        let mut lo = self.first_head_at_least(h);
        if lo < n && self.head(lo) == h {
            match self.cmp_probe(lo, probe) {
                Ordering::Equal => return Ok(lo),
                Ordering::Greater => return Err(lo),
                Ordering::Less => lo += 1,
            }
            if lo < n && self.head(lo) == h {
                let mut hi = self.partition(lo, n, |x| x == h);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    match self.cmp_probe(mid, probe) {
                        Ordering::Less => lo = mid + 1,
                        Ordering::Greater => hi = mid,
                        Ordering::Equal => return Ok(mid),
                    }
                }
            }
        }
        Err(lo)
    }

    /// Branch: the child that routes `key`.
    pub(crate) fn route(&self, key: &[u8]) -> usize {
        self.route_probe(&self.probe(key))
    }

    /// [`Node::route`] of a probed key.
    #[inline]
    pub(crate) fn route_probe(&self, probe: &Probe<'_>) -> usize {
        match self.search_probe(probe) {
            Ok(i) => i,
            Err(0) => 0,
            Err(i) => i - 1,
        }
    }

    /// Bytes of the page body this node uses: the entry count and the
    /// entries (the rest of the body is zero padding).
    pub(crate) fn used_body(&self) -> usize {
        let index = usize::from(self.prefix) + self.len() * RECORD;
        2 + self.data.len().saturating_sub(index)
    }

    /// Bytes this node is charged in the cache: its buffer and what an
    /// entry costs besides.
    pub(crate) fn weight(&self) -> usize {
        self.data.len() + OVERHEAD
    }
}

/// The head an index record holds.
#[inline]
fn record_head(r: &[u8; RECORD]) -> u32 {
    let [a, b, c, d, ..] = *r;
    u32::from_ne_bytes([a, b, c, d])
}

/// Where the entry of an index record starts in a node's `data`.
#[inline]
fn record_start(r: &[u8; RECORD]) -> usize {
    let [.., a, b, c, d] = *r;
    u32::from_ne_bytes([a, b, c, d]) as usize
}

/// The key of the entry starting at `at` in `b` (empty past the end: the
/// decoder checked every entry it indexed).
#[inline]
fn entry_key_at(b: &[u8], at: usize) -> &[u8] {
    let klen = be16(b, at).unwrap_or(0) as usize;
    b.get(at + 2..at + 2 + klen).unwrap_or_default()
}

/// The first 4 bytes of `rest` (zero-padded) as a big-endian number: in the
/// order of the byte strings, though not strictly (a tie says nothing).
#[inline]
fn head(rest: &[u8]) -> u32 {
    // The top half of the padded word of `rest`'s first 8 bytes.
    (word_be(rest) >> 32) as u32
}

/// The first 8 bytes of `s` (zero-padded) as a big-endian number: for a
/// short `s`, two loads that overlap (or for 1 to 3 bytes, three bytes
/// that cover it), each shifted to its place, instead of a loop a byte.
#[inline]
fn word_be(s: &[u8]) -> u64 {
    let n = s.len();
    if let Some(w) = s.first_chunk::<8>() {
        return u64::from_be_bytes(*w);
    }
    if n >= 4 {
        let first = s.first_chunk::<4>().map_or(0, |w| u32::from_be_bytes(*w));
        let last = s.last_chunk::<4>().map_or(0, |w| u32::from_be_bytes(*w));
        // `last` ends at byte `n - 1` of the word (from the top).
        return u64::from(first) << 32 | u64::from(last) << (8 * (8 - n));
    }
    let byte = |i: usize| u64::from(s.get(i).copied().unwrap_or(0)) << (56 - 8 * i);
    if n == 0 {
        0
    } else {
        byte(0) | byte(n / 2) | byte(n - 1)
    }
}

/// The start offset of each entry of `body`, plus the end of the last one,
/// checking that every entry lies inside it.
fn index(leaf: bool, body: &[u8], page: u64) -> Result<Vec<u32>> {
    let bad = |what: &str| StoreError::corrupt(page, what);
    let count = be16(body, 0).ok_or_else(|| bad("node truncated"))? as usize;
    if count == 0 {
        return Err(bad("empty node"));
    }
    let mut offs = Vec::with_capacity(count + 1);
    let mut at = 2usize;
    for _ in 0..count {
        offs.push(at as u32);
        let klen = be16(body, at).ok_or_else(|| bad("entry truncated"))? as usize;
        at += 2 + klen;
        if leaf {
            let flag = *body.get(at).ok_or_else(|| bad("entry truncated"))?;
            at += 1;
            at += match flag {
                0 => 4 + be32(body, at).ok_or_else(|| bad("entry truncated"))? as usize,
                1 => 32,
                _ => return Err(bad("bad value flag")),
            };
        } else {
            at += 24;
        }
        if at > body.len() {
            return Err(bad("entry overruns the page"));
        }
    }
    offs.push(at as u32);
    Ok(offs)
}

/// Appends a leaf entry with an inline value.
pub(crate) fn put_inline(out: &mut Vec<u8>, key: &[u8], val: &[u8]) {
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(key);
    out.push(0);
    out.extend_from_slice(&(val.len() as u32).to_be_bytes());
    out.extend_from_slice(val);
}

/// Appends a leaf entry whose value lives in an overflow chain.
pub(crate) fn put_overflow(out: &mut Vec<u8>, key: &[u8], len: u64, first: ChildRef) {
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(key);
    out.push(1);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&first.page.to_be_bytes());
    out.extend_from_slice(&first.tag);
}

/// Appends a branch entry.
pub(crate) fn put_branch(out: &mut Vec<u8>, key: &[u8], child: ChildRef) {
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&child.page.to_be_bytes());
    out.extend_from_slice(&child.tag);
}

/// Size of a leaf entry with an inline value.
pub(crate) fn inline_size(klen: usize, vlen: usize) -> usize {
    2 + klen + 1 + 4 + vlen
}

/// Key of an encoded entry.
pub(crate) fn entry_key(raw: &[u8]) -> &[u8] {
    let klen = u16::from_be_bytes([raw[0], raw[1]]) as usize;
    &raw[2..2 + klen]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaf(keys: &std::collections::BTreeSet<Vec<u8>>) -> Node {
        let mut body = (keys.len() as u16).to_be_bytes().to_vec();
        for k in keys {
            put_inline(&mut body, k, b"v");
        }
        Node::decode_used(true, &body, 3).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Keys from a small alphabet with long shared runs, so nodes have
    /// shared prefixes, equal heads, keys that are prefixes of others, and
    /// zero bytes that pad like the heads do.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::sample::select(vec![&b""[..], b"user-key", b"user-kez", b"\0\0"]),
            prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 0xff]), 0..7),
        )
            .prop_map(|(p, t)| [p, &t].concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn search_agrees_with_a_linear_search(
            keys in prop::collection::btree_set(key(), 1..40),
            probes in prop::collection::vec(key(), 1..20),
        ) {
            agrees_with_a_linear_search(&keys, &probes)?;
        }
    }

    /// Entries in a large node: more than a 4 KiB page holds of short keys.
    const LARGE: usize = 128;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Large nodes: long runs of equal heads (every key starting
        /// "user"), bisected by whole keys.
        #[test]
        fn search_agrees_with_a_linear_search_in_large_nodes(
            keys in prop::collection::btree_set(key(), LARGE + 1..4 * LARGE),
            probes in prop::collection::vec(key(), 1..40),
        ) {
            agrees_with_a_linear_search(&keys, &probes)?;
        }
    }

    /// Bytes with many zeros and 0xff, so padding and sign mistakes show.
    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(vec![0u8, 1, 0x7f, 0x80, 0xff]), 0..20)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Heads order keys (a smaller head, a smaller key) and read the
        /// first bytes of a key as one zero-padded number.
        #[test]
        fn heads_read_keys_in_order(a in bytes(), b in bytes()) {
            prop_assert!(head(&a) >= head(&b) || a < b);
            prop_assert!(head(&a) <= head(&b) || a > b);
            let padded = |s: &[u8]| {
                let mut w = [0u8; 8];
                w.iter_mut().zip(s).for_each(|(d, s)| *d = *s);
                u64::from_be_bytes(w)
            };
            prop_assert_eq!(word_be(&a), padded(&a));
            prop_assert_eq!(u64::from(head(&a)), padded(&a) >> 32);
        }
    }

    /// `search` on a leaf of `keys` finds each of `keys` and each probe
    /// where a linear search of the sorted keys does.
    fn agrees_with_a_linear_search(
        keys: &std::collections::BTreeSet<Vec<u8>>,
        probes: &[Vec<u8>],
    ) -> Result<(), TestCaseError> {
        let node = leaf(keys);
        let sorted: Vec<&Vec<u8>> = keys.iter().collect();
        for q in probes.iter().chain(keys.iter()) {
            let want = match sorted.iter().position(|k| k.as_slice() >= q.as_slice()) {
                Some(i) if sorted[i] == q => Ok(i),
                Some(i) => Err(i),
                None => Err(sorted.len()),
            };
            prop_assert_eq!(node.search(q), want, "probe {:?}", q);
        }
        Ok(())
    }

    /// A 64 KiB page's worth of tiny entries (far more than the counted
    /// window), keys sharing a long prefix and ending in zero bytes: every
    /// key is found, every absent probe lands where a binary search of the
    /// sorted keys says.
    #[test]
    fn search_in_a_full_64k_leaf_of_tiny_entries() {
        let prefix = vec![0u8; 40];
        let keys: std::collections::BTreeSet<Vec<u8>> = (0..400u16)
            .flat_map(|i| {
                let p = prefix.clone();
                [0u8, 1].map(move |z| {
                    [&p[..], &i.to_be_bytes()[..], &[0, z][..z as usize + 1]].concat()
                })
            })
            .collect();
        let mut body = (keys.len() as u16).to_be_bytes().to_vec();
        for k in &keys {
            put_inline(&mut body, k, b"");
        }
        assert!(body.len() <= 65536 - 64, "{}", body.len());
        body.resize(65536 - 64, 0);
        let node = Node::decode_used(true, &body, 5).unwrap_or_else(|e| panic!("{e}"));
        assert!(node.len() > 2 * LARGE);
        let sorted: Vec<&Vec<u8>> = keys.iter().collect();
        for (i, k) in sorted.iter().enumerate() {
            assert_eq!(node.search(k), Ok(i));
            let mut longer = k.to_vec();
            longer.push(0);
            let want = sorted.binary_search(&&longer);
            assert_eq!(node.search(&longer), want, "{longer:?}");
            assert_eq!(
                node.search(&k[..k.len() - 1]),
                sorted.binary_search(&&k[..k.len() - 1].to_vec())
            );
        }
        assert_eq!(node.search(&prefix[..10]), Err(0));
        assert_eq!(node.search(&[1]), Err(keys.len()));
    }

    #[test]
    fn a_node_keeps_only_the_bytes_its_entries_use() {
        let keys = [b"a".to_vec(), b"b".to_vec()].into_iter().collect();
        let used = {
            let n = leaf(&keys);
            [&[0, 2][..], n.raw(0), n.raw(1)].concat()
        };
        let mut full = vec![0u8; 4000];
        full[..used.len()].copy_from_slice(&used);
        let trimmed = Node::decode_used(true, &full, 3).unwrap_or_else(|e| panic!("{e}"));
        // The entries (no padding), one index record per entry, no prefix
        // ("a" and "b" share none).
        assert_eq!(trimmed.data.len(), 2 * inline_size(1, 1) + 2 * RECORD);
        assert_eq!(trimmed.weight(), trimmed.data.len() + OVERHEAD);
        assert_eq!(trimmed.val(1), ValRef::Inline(b"v"));
    }

    /// What a leaf or branch entry holds, per the page format.
    #[derive(Debug, Clone, PartialEq)]
    enum Model {
        Inline(Vec<u8>),
        Overflow { len: u64, page: u64, tag: Tag },
        Child(ChildRef),
    }

    /// An entry's key, encoded bytes and what it holds.
    type ModelEntry = (Vec<u8>, Vec<u8>, Model);

    /// The reference decoder: the body read entry by entry as FORMAT.md
    /// describes it, with the checks a node must pass (entries inside the
    /// body, a known value flag, keys strictly increasing, no overflow at
    /// page 0). Each entry is (key, encoded bytes, what it holds).
    fn model_decode(leaf: bool, body: &[u8]) -> Option<Vec<ModelEntry>> {
        let take = |at: &mut usize, n: usize| -> Option<Vec<u8>> {
            let b = body.get(*at..*at + n)?.to_vec();
            *at += n;
            Some(b)
        };
        let num = |b: Vec<u8>| b.iter().fold(0u64, |a, &x| a << 8 | u64::from(x));
        let mut at = 0;
        let count = num(take(&mut at, 2)?);
        if count == 0 {
            return None;
        }
        let mut out: Vec<ModelEntry> = Vec::new();
        for _ in 0..count {
            let start = at;
            let klen = num(take(&mut at, 2)?) as usize;
            let key = take(&mut at, klen)?;
            let held = if leaf {
                match take(&mut at, 1)?[0] {
                    0 => {
                        let vlen = num(take(&mut at, 4)?) as usize;
                        Model::Inline(take(&mut at, vlen)?)
                    }
                    1 => {
                        let len = num(take(&mut at, 8)?);
                        let page = num(take(&mut at, 8)?);
                        let tag = take(&mut at, 16)?.try_into().ok()?;
                        if page == 0 {
                            return None;
                        }
                        Model::Overflow { len, page, tag }
                    }
                    _ => return None,
                }
            } else {
                let page = num(take(&mut at, 8)?);
                let tag = take(&mut at, 16)?.try_into().ok()?;
                Model::Child(ChildRef { page, tag })
            };
            if out.last().is_some_and(|(prev, _, _)| *prev >= key) {
                return None;
            }
            out.push((key, body[start..at].to_vec(), held));
        }
        Some(out)
    }

    /// A body of entries with keys from `key()` (shared prefixes, equal
    /// heads, zero bytes), inline or overflow values in a leaf, children
    /// in a branch, and zero padding after the last entry.
    fn body() -> impl Strategy<Value = (bool, Vec<u8>)> {
        let held = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40).prop_map(Model::Inline),
            (any::<u64>(), 0..4u64, any::<[u8; 16]>())
                .prop_map(|(len, page, tag)| Model::Overflow { len, page, tag }),
        ];
        (
            any::<bool>(),
            prop::collection::btree_map(key(), held, 1..40),
            any::<[u8; 16]>(),
            0..64usize,
        )
            .prop_map(|(leaf, entries, tag, pad)| {
                let mut body = (entries.len() as u16).to_be_bytes().to_vec();
                for (i, (k, v)) in entries.iter().enumerate() {
                    match (leaf, v) {
                        (true, Model::Inline(v)) => put_inline(&mut body, k, v),
                        (true, Model::Overflow { len, page, tag }) => {
                            put_overflow(
                                &mut body,
                                k,
                                *len,
                                ChildRef {
                                    page: *page,
                                    tag: *tag,
                                },
                            );
                        }
                        _ => put_branch(
                            &mut body,
                            k,
                            ChildRef {
                                page: i as u64,
                                tag,
                            },
                        ),
                    }
                }
                body.resize(body.len() + pad, 0);
                (leaf, body)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// The one-block layout decodes every body the reference decoder
        /// accepts, to the same entries, and refuses every body it refuses
        /// (whole bodies, and bodies with one byte changed or cut short).
        #[test]
        fn the_block_layout_decodes_what_the_page_format_says(
            (leaf, mut body) in body(),
            flip in any::<Option<(prop::sample::Index, u8)>>(),
            cut in any::<Option<prop::sample::Index>>(),
        ) {
            if let Some((at, x)) = flip {
                let at = at.index(body.len());
                body[at] ^= x;
            }
            if let Some(at) = cut {
                body.truncate(at.index(body.len()));
            }
            let want = model_decode(leaf, &body);
            let got = Node::decode_used(leaf, &body, 7);
            prop_assert_eq!(got.is_ok(), want.is_some(), "{:?}", got.as_ref().err());
            let (Ok(node), Some(want)) = (got, want) else { return Ok(()) };
            prop_assert_eq!(node.leaf, leaf);
            prop_assert_eq!(node.len(), want.len());
            let mut used = 2;
            for (i, (k, raw, held)) in want.iter().enumerate() {
                prop_assert_eq!(node.key(i), k.as_slice());
                prop_assert_eq!(node.raw(i), raw.as_slice());
                let got = if !leaf {
                    Model::Child(node.child(i))
                } else {
                    match node.val(i) {
                        ValRef::Inline(v) => Model::Inline(v.to_vec()),
                        ValRef::Overflow { len, page, tag } => Model::Overflow { len, page, tag },
                    }
                };
                prop_assert_eq!(&got, held);
                prop_assert_eq!(node.search(k), Ok(i));
                used += raw.len();
            }
            // What the node holds: the used body (no count, no padding),
            // an index record per entry, and the shared prefix.
            let records = want.len() * RECORD + usize::from(node.prefix);
            prop_assert_eq!(node.data.len(), used - 2 + records);
            prop_assert_eq!(node.weight(), node.data.len() + OVERHEAD);
        }
    }
}
