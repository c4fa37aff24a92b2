//! The decrypted-page cache: decoded tree nodes keyed by (page, tag).
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

struct Entry {
    node: Arc<Node>,
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

    pub(crate) fn get(&self, page: u64, tag: &Tag) -> Option<Arc<Node>> {
        let mut s = self.shard(page);
        match s.map.get_mut(&(page, *tag)) {
            Some(e) => {
                e.referenced = true;
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(e.node.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub(crate) fn insert(&self, page: u64, tag: Tag, node: Arc<Node>) {
        let weight = node.weight();
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
                node,
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
