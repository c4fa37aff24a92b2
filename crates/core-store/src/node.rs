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

/// A decoded tree page.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) leaf: bool,
    pub(crate) body: Box<[u8]>,
    /// Start offset of each entry, plus the end of the last one.
    offs: Vec<u32>,
    /// The length of the prefix every key of the node shares.
    prefix: usize,
    /// For each key, the 4 bytes after that prefix (zero-padded) as a
    /// big-endian number: in key order, so a search compares these in one
    /// small array and reads the body only where they tie.
    heads: Vec<u32>,
}

impl Node {
    /// Parses and checks a body (page number `page` for errors), keeping
    /// the whole buffer.
    pub(crate) fn decode(leaf: bool, body: Box<[u8]>, page: u64) -> Result<Node> {
        let offs = index(leaf, &body, page)?;
        Node::indexed(leaf, body, offs).checked(page)
    }

    /// Parses and checks a body like [`Node::decode`], but keeps a copy of
    /// only its entries: the zero padding after the last one is dropped, so
    /// a cached node is charged (and holds) what it uses, not a whole page.
    pub(crate) fn decode_used(leaf: bool, body: &[u8], page: u64) -> Result<Node> {
        let offs = index(leaf, body, page)?;
        let end = offs.last().map_or(0, |&e| e as usize);
        let used = body
            .get(..end)
            .ok_or_else(|| StoreError::corrupt(page, "entry overruns the page"))?;
        Node::indexed(leaf, used.into(), offs).checked(page)
    }

    /// A node over `body` with its entry offsets, and the search index
    /// (shared prefix, key heads) built from them.
    fn indexed(leaf: bool, body: Box<[u8]>, offs: Vec<u32>) -> Node {
        let mut n = Node {
            leaf,
            body,
            offs,
            prefix: 0,
            heads: Vec::new(),
        };
        let count = n.len();
        if count > 0 {
            // Keys are sorted (`checked` fails the node otherwise, and no
            // search runs on it), so the first and last keys' common
            // prefix is every key's.
            let (first, last) = (n.key(0), n.key(count - 1));
            n.prefix = first.iter().zip(last).take_while(|(a, b)| a == b).count();
            let heads = (0..count).map(|i| head(n.key(i).get(n.prefix..).unwrap_or(&[])));
            n.heads = heads.collect();
        }
        n
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

    pub(crate) fn len(&self) -> usize {
        self.offs.len() - 1
    }

    /// The encoded bytes of entry `i`.
    pub(crate) fn raw(&self, i: usize) -> &[u8] {
        &self.body[self.offs[i] as usize..self.offs[i + 1] as usize]
    }

    pub(crate) fn key(&self, i: usize) -> &[u8] {
        let at = self.offs[i] as usize;
        let klen = u16::from_be_bytes([self.body[at], self.body[at + 1]]) as usize;
        &self.body[at + 2..at + 2 + klen]
    }

    /// The value of leaf entry `i`.
    pub(crate) fn val(&self, i: usize) -> ValRef<'_> {
        debug_assert!(self.leaf);
        let at = self.offs[i] as usize + 2 + self.key(i).len();
        let b = &self.body;
        if b[at] == 0 {
            let len = be32(b, at + 1).unwrap_or(0) as usize;
            ValRef::Inline(&b[at + 5..at + 5 + len])
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
        let at = self.offs[i] as usize + 2 + self.key(i).len();
        ChildRef {
            page: be64(&self.body, at).unwrap_or(0),
            tag: tag_at(&self.body, at + 8).unwrap_or_default(),
        }
    }

    /// Leaf: the index of `key` or where it would go.
    pub(crate) fn search(&self, key: &[u8]) -> std::result::Result<usize, usize> {
        let n = self.len();
        if n == 0 {
            return Err(0);
        }
        let first = self.key(0);
        let shared = first.get(..self.prefix).unwrap_or(first);
        let Some(rest) = key.strip_prefix(shared) else {
            // A key without the shared prefix sorts before every key of
            // the node or after every one.
            return if key < first { Err(0) } else { Err(n) };
        };
        // Heads are in key order: every key whose head is below `key`'s is
        // smaller than it, every key whose head is above is larger; only
        // the run of equal heads needs whole keys (a binary search, so a
        // node whose keys share more than its prefix stays logarithmic).
        let h = head(rest);
        let mut lo = self.heads.partition_point(|&x| x < h);
        let mut hi = lo
            + self
                .heads
                .get(lo..)
                .map_or(0, |tail| tail.partition_point(|&x| x == h));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key(mid).cmp(key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Branch: the child that routes `key`.
    pub(crate) fn route(&self, key: &[u8]) -> usize {
        match self.search(key) {
            Ok(i) => i,
            Err(0) => 0,
            Err(i) => i - 1,
        }
    }

    /// Bytes this node is charged in the cache.
    pub(crate) fn weight(&self) -> usize {
        self.body.len() + self.offs.len() * 4 + self.heads.len() * 4 + 64
    }
}

/// The first 4 bytes of `rest` (zero-padded) as a big-endian number: in the
/// order of the byte strings, though not strictly (a tie says nothing).
fn head(rest: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    w.iter_mut().zip(rest).for_each(|(d, s)| *d = *s);
    u32::from_be_bytes(w)
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
            let node = leaf(&keys);
            let sorted: Vec<&Vec<u8>> = keys.iter().collect();
            for q in probes.iter().chain(keys.iter()) {
                let want = match sorted.iter().position(|k| k.as_slice() >= q.as_slice()) {
                    Some(i) if sorted[i] == q => Ok(i),
                    Some(i) => Err(i),
                    None => Err(sorted.len()),
                };
                prop_assert_eq!(node.search(q), want, "probe {:?}", q);
            }
        }
    }

    #[test]
    fn a_node_keeps_only_the_bytes_its_entries_use() {
        let keys = [b"a".to_vec(), b"b".to_vec()].into_iter().collect();
        let full = {
            let mut body = vec![0u8; 4000];
            let n = leaf(&keys);
            body[..n.body.len()].copy_from_slice(&n.body);
            body
        };
        let trimmed = Node::decode_used(true, &full, 3).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(trimmed.body.len(), 2 + 2 * inline_size(1, 1));
        assert_eq!(trimmed.val(1), ValRef::Inline(b"v"));
    }
}
