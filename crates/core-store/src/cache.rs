//! The decrypted-page cache: decoded tree nodes, and whole overflow values,
//! keyed by (page, tag) — for a value, its first overflow page's, which
//! commits to the whole chain through the next-page tags it holds.
//!
//! Keying by the tag the parent expects means a page that was freed and
//! reused (new contents, new tag) can never be served from its old entry,
//! and a hit costs no decryption while still being exactly the version the
//! parent names. The cache is split into shards, each under its own mutex,
//! and bounded in bytes; eviction is CLOCK (second chance) per shard.
//!
//! Each shard keeps its entries in a map, and a ring of slots (key, weight
//! and a referenced bit) that the clock hand sweeps: a hit is one map
//! lookup and one bit set, and the sweep reads the slots in place (one map
//! operation per entry evicted, none per entry given its second chance). The map hashes the page
//! number and the first half of the tag with a multiply-rotate hash
//! instead of SipHash: the keys are page numbers this file chose and tags
//! of pages that authenticated, hashed on every node of every lookup.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use crate::format::Tag;
use crate::node::Node;

const SHARDS: usize = 16;

/// A cache key: a page and the tag its parent expects.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    page: u64,
    tag: Tag,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, ..] = self.tag;
        state.write_u64(self.page);
        state.write_u64(u64::from_le_bytes([a, b, c, d, e, f, g, h]));
    }
}

/// FxHash's word step: enough mixing for page numbers and tags (tags are
/// already uniform for sealed pages), at a multiply per word.
#[derive(Default)]
struct KeyHasher(u64);

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w.iter_mut().zip(chunk).for_each(|(d, s)| *d = *s);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// What an entry holds.
#[derive(Clone)]
enum Item {
    /// A decoded tree node.
    Node(Node),
    /// A whole overflow value, decrypted.
    Value(Arc<[u8]>),
}

/// What the clock sweep needs of an entry (the entry itself lives in the
/// map, so a hit reads no slot).
struct Slot {
    key: Key,
    weight: usize,
}

#[derive(Default)]
struct Shard {
    /// Key to the entry and its index in `slots`.
    map: HashMap<Key, (usize, Item), BuildHasherDefault<KeyHasher>>,
    /// The clock's ring; `None` for a slot whose entry was evicted.
    slots: Vec<Option<Slot>>,
    /// The referenced bit of each slot: dense, so that the bit a hit sets
    /// sits in a few cache lines per shard, not one per entry.
    referenced: Vec<bool>,
    /// Indexes of the `None` slots, reused before the ring grows.
    free: Vec<usize>,
    /// The clock hand: the next slot the sweep looks at.
    hand: usize,
    bytes: usize,
    hits: u64,
    misses: u64,
}

impl Shard {
    /// The entry of `key`, counted as a hit and marked referenced, or
    /// `None`, counted as a miss.
    fn get(&mut self, key: &Key) -> Option<&Item> {
        match self.map.get(key) {
            Some((i, item)) => {
                if let Some(r) = self.referenced.get_mut(*i) {
                    *r = true;
                }
                self.hits += 1;
                Some(item)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Evicts until `room` more bytes fit in `budget`: the hand clears the
    /// referenced bit of the entries it passes and evicts the first entry
    /// found without one. Two full turns always find one (the first turn
    /// clears every bit); the bound only guards the loop.
    fn make_room(&mut self, room: usize, budget: usize) {
        let mut steps = 2 * self.slots.len() + 1;
        while self.bytes + room > budget && steps > 0 && !self.slots.is_empty() {
            steps -= 1;
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let i = self.hand;
            self.hand += 1;
            let (Some(entry), Some(referenced)) =
                (self.slots.get_mut(i), self.referenced.get_mut(i))
            else {
                continue;
            };
            if entry.is_none() {
                continue;
            }
            if *referenced {
                *referenced = false;
            } else if let Some(s) = entry.take() {
                self.map.remove(&s.key);
                self.bytes -= s.weight;
                self.free.push(i);
            }
        }
    }

    fn insert(&mut self, key: Key, item: Item, weight: usize, budget: usize) {
        if self.map.contains_key(&key) {
            return;
        }
        self.make_room(weight, budget);
        let slot = Some(Slot { key, weight });
        let i = match self.free.pop() {
            Some(i) => {
                if let (Some(s), Some(r)) = (self.slots.get_mut(i), self.referenced.get_mut(i)) {
                    *s = slot;
                    *r = false;
                }
                i
            }
            None => {
                self.slots.push(slot);
                self.referenced.push(false);
                self.slots.len() - 1
            }
        };
        self.map.insert(key, (i, item));
        self.bytes += weight;
    }
}

/// A sharded, byte-bounded cache of decoded nodes.
pub(crate) struct PageCache {
    shards: Vec<Mutex<Shard>>,
    budget_per_shard: usize,
}

impl PageCache {
    pub(crate) fn new(cache_bytes: usize) -> Self {
        PageCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            budget_per_shard: cache_bytes / SHARDS,
        }
    }

    fn shard(&self, page: u64) -> Option<MutexGuard<'_, Shard>> {
        let i = (page.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % SHARDS;
        self.shards.get(i).map(|s| s.lock())
    }

    fn get_item(&self, page: u64, tag: &Tag) -> Option<Item> {
        self.shard(page)?.get(&Key { page, tag: *tag }).cloned()
    }

    /// Runs `f` on the cached node of page `page` with tag `tag`, if there
    /// is one, under its shard's lock: no reference to the node is taken
    /// (two atomic operations on its first cache line fewer), for a lookup
    /// that reads the node once and keeps nothing of it. `f` must not use
    /// the cache (the shard's lock is held).
    pub(crate) fn visit<R>(&self, page: u64, tag: &Tag, f: impl FnOnce(&Node) -> R) -> Option<R> {
        match self.shard(page)?.get(&Key { page, tag: *tag })? {
            Item::Node(n) => Some(f(n)),
            Item::Value(_) => None,
        }
    }

    /// The decoded node of page `page` with tag `tag`, if cached.
    pub(crate) fn get(&self, page: u64, tag: &Tag) -> Option<Node> {
        match self.get_item(page, tag)? {
            Item::Node(n) => Some(n),
            Item::Value(_) => None,
        }
    }

    /// The overflow value whose first page is `page` with tag `tag`, if
    /// cached.
    pub(crate) fn get_value(&self, page: u64, tag: &Tag) -> Option<Arc<[u8]>> {
        match self.get_item(page, tag)? {
            Item::Value(v) => Some(v),
            Item::Node(_) => None,
        }
    }

    /// Caches the decoded node of page `page`.
    pub(crate) fn insert(&self, page: u64, tag: Tag, node: Node) {
        let weight = node.weight();
        self.insert_item(page, tag, Item::Node(node), weight);
    }

    /// Caches the overflow value whose first page is `page`.
    pub(crate) fn insert_value(&self, page: u64, tag: Tag, value: Arc<[u8]>) {
        // The bytes plus the entry's own bookkeeping.
        let weight = value.len() + 64;
        self.insert_item(page, tag, Item::Value(value), weight);
    }

    fn insert_item(&self, page: u64, tag: Tag, item: Item, weight: usize) {
        if weight > self.budget_per_shard {
            return;
        }
        if let Some(mut s) = self.shard(page) {
            s.insert(Key { page, tag }, item, weight, self.budget_per_shard);
        }
    }

    /// Bytes held, lookups that hit and lookups that missed, over all
    /// shards.
    pub(crate) fn counters(&self) -> (usize, u64, u64) {
        self.shards.iter().fold((0, 0, 0), |(b, h, m), s| {
            let s = s.lock();
            (b + s.bytes, h + s.hits, m + s.misses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(bytes: usize) -> Node {
        // One leaf entry: u16 count, u16 klen, key "k", inline value.
        let mut body = vec![0, 1];
        crate::node::put_inline(&mut body, b"k", &vec![7u8; bytes]);
        Node::decode(true, body.into(), 9).unwrap_or_else(|e| panic!("{e}"))
    }

    fn tag(n: u8) -> Tag {
        [n; 16]
    }

    #[test]
    fn a_hit_needs_the_same_page_and_tag() {
        let c = PageCache::new(1 << 20);
        c.insert(5, tag(1), node(10));
        assert!(c.get(5, &tag(1)).is_some());
        assert!(c.get(5, &tag(2)).is_none());
        assert!(c.get(6, &tag(1)).is_none());
        assert!(c.get_value(5, &tag(1)).is_none(), "a node is not a value");
        let (_, hits, misses) = c.counters();
        assert_eq!((hits, misses), (2, 2));
    }

    #[test]
    fn every_shard_stays_under_its_budget_and_recently_used_entries_survive() {
        let c = PageCache::new(SHARDS * 10_000);
        let w = node(1000).weight();
        // Page 0 always lands in the same shard; keep touching it.
        c.insert(0, tag(0), node(1000));
        for p in 1..2_000u64 {
            c.insert(p, tag(0), node(1000));
            assert!(
                c.get(0, &tag(0)).is_some(),
                "the hot entry was evicted at {p}"
            );
            for s in &c.shards {
                let s = s.lock();
                assert!(s.bytes <= c.budget_per_shard);
                assert_eq!(s.map.len(), s.slots.iter().flatten().count());
                assert_eq!(s.bytes, s.map.len() * w);
            }
        }
        let (bytes, _, _) = c.counters();
        assert!(
            bytes > SHARDS * 10_000 / 2,
            "the cache stays mostly full: {bytes}"
        );
    }

    #[test]
    fn an_entry_larger_than_a_shard_is_not_cached() {
        let c = PageCache::new(SHARDS * 100);
        c.insert_value(1, tag(1), Arc::from(vec![0u8; 200].as_slice()));
        assert!(c.get_value(1, &tag(1)).is_none());
        assert_eq!(c.counters().0, 0);
    }
}
