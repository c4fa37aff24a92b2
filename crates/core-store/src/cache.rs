//! The decrypted-page cache: decoded tree nodes, and whole overflow values,
//! keyed by (page, tag) — for a value, its first overflow page's, which
//! commits to the whole chain through the next-page tags it holds.
//!
//! Keying by the tag the parent expects means a page that was freed and
//! reused (new contents, new tag) can never be served from its old entry,
//! and a hit costs no decryption while still being exactly the version the
//! parent names. The cache is split into shards, each under its own mutex,
//! and bounded in bytes; eviction is CLOCK (second chance) per shard.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::format::Tag;
use crate::node::Node;

const SHARDS: usize = 16;

type Key = (u64, Tag);

/// What an entry holds.
#[derive(Clone)]
enum Item {
    /// A decoded tree node.
    Node(Arc<Node>),
    /// A whole overflow value, decrypted.
    Value(Arc<[u8]>),
}

struct Entry {
    item: Item,
    weight: usize,
    referenced: bool,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Key, Entry>,
    clock: VecDeque<Key>,
    bytes: usize,
}

/// A sharded, byte-bounded cache of decoded nodes.
pub(crate) struct PageCache {
    shards: Vec<Mutex<Shard>>,
    budget_per_shard: usize,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
}

impl PageCache {
    pub(crate) fn new(cache_bytes: usize) -> Self {
        PageCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            budget_per_shard: cache_bytes / SHARDS,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, page: u64) -> MutexGuard<'_, Shard> {
        let i = (page.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get_item(&self, page: u64, tag: &Tag) -> Option<Item> {
        let mut s = self.shard(page);
        match s.map.get_mut(&(page, *tag)) {
            Some(e) => {
                e.referenced = true;
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(e.item.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// The decoded node of page `page` with tag `tag`, if cached.
    pub(crate) fn get(&self, page: u64, tag: &Tag) -> Option<Arc<Node>> {
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
    pub(crate) fn insert(&self, page: u64, tag: Tag, node: Arc<Node>) {
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
        let mut s = self.shard(page);
        let key = (page, tag);
        if s.map.contains_key(&key) {
            return;
        }
        s.map.insert(
            key,
            Entry {
                item,
                weight,
                referenced: false,
            },
        );
        s.clock.push_back(key);
        s.bytes += weight;
        while s.bytes > self.budget_per_shard {
            let Some(k) = s.clock.pop_front() else { break };
            let second_chance = match s.map.get_mut(&k) {
                Some(e) if e.referenced => {
                    e.referenced = false;
                    true
                }
                Some(_) => false,
                None => continue,
            };
            if second_chance {
                s.clock.push_back(k);
            } else if let Some(e) = s.map.remove(&k) {
                s.bytes -= e.weight;
            }
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).bytes)
            .sum()
    }
}
