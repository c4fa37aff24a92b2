//! [`Stats`]: what a database holds and what it has done.

use std::sync::atomic::{AtomicU64, Ordering};

use sealkv_crypto_envelope::{AlgorithmId, AlgorithmInfo, KeyId};

use crate::Error;
use crate::db::Inner;

/// Counters kept by an open database.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) writes: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) stalls: AtomicU64,
    pub(crate) flush_commits: AtomicU64,
    pub(crate) tree_reads: AtomicU64,
    pub(crate) transactions: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) retries: AtomicU64,
}

/// The encryption status of a database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncryptionStatus {
    /// Whether every byte written is sealed.
    pub encrypt_at_rest: bool,
    /// The algorithm of the active data key (`None` for plaintext).
    pub algorithm: Option<AlgorithmId>,
    /// What the crypto provider says of that algorithm: its name (a
    /// plugin's, for a private id) and implementation.
    pub algorithm_info: Option<AlgorithmInfo>,
    /// The data key new writes are sealed under.
    pub active_key: Option<KeyId>,
    /// Every data key still readable (units sealed under older ones than
    /// the active key remain until [`Db::reencrypt`](crate::Db::reencrypt)
    /// retires them; [`Db::key_coverage`](crate::Db::key_coverage) says
    /// what each still seals).
    pub data_keys: Vec<KeyId>,
    /// Field keys held (not destroyed).
    pub field_keys: Vec<KeyId>,
    /// The key registry's generation.
    pub registry_generation: u64,
}

/// A point-in-time report on an open database.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Batches written since open.
    pub writes: u64,
    /// Bytes of keys and values written since open.
    pub bytes_written: u64,
    /// Memtable flushes since open.
    pub flushes: u64,
    /// Page-file commits made by flushes since open (a flush of a memtable
    /// larger than `flush_commit_size` makes several).
    pub flush_commits: u64,
    /// Times a writer waited for the flusher.
    pub write_stalls: u64,
    /// Reads that reached the page file.
    pub tree_reads: u64,
    /// Transactions committed with writes since open.
    pub transactions: u64,
    /// Transaction commits refused for a conflict since open.
    pub conflicts: u64,
    /// Times [`Db::transaction`](crate::Db::transaction) ran a closure
    /// again after a conflict.
    pub transaction_retries: u64,
    /// Named keyspaces.
    pub keyspaces: u64,
    /// Bytes in memtables (active and frozen).
    pub memtable_bytes: u64,
    /// The last sequence number visible to readers.
    pub last_seq: u64,
    /// The last sequence number in the page file.
    pub applied_seq: u64,
    /// Torn WAL tails cut at open.
    pub torn_tails_repaired: u64,
    /// Bytes of WAL on disk.
    pub wal_bytes: u64,
    /// WAL sync markers written since open (proofs that the log's end was
    /// fsynced, so damage before one is corruption, never a torn tail).
    pub wal_sync_markers: u64,
    /// WAL sync markers whose write failed and was taken back (the writes
    /// before them stayed durable): a sign of a failing or full disk.
    pub wal_sync_marker_failures: u64,
    /// Pages in the page file (in use or free; the file may run a little
    /// past them, as it grows in chunks).
    pub pages: u64,
    /// Bytes of the page file on disk.
    pub file_bytes: u64,
    /// Pages of the page file in use: header, meta, tree, overflow and
    /// free-list pages (`pages - free_pages`).
    pub live_pages: u64,
    /// Free pages of the page file, reused by later commits (those that
    /// end the file are given back to the file system by a commit).
    pub free_pages: u64,
    /// Leaf pages of the tree. This and the other leaf figures come from a
    /// walk of the tree (through the cache) that reads only the pages
    /// written since the last `stats()` (what each page's subtree holds is
    /// kept by page and tag): zero when a damaged page stopped the walk (a
    /// warning is logged; [`Db::verify`](crate::Db::verify) names the
    /// page).
    pub leaf_pages: u64,
    /// Bytes the leaves' entries use, over all leaves.
    pub leaf_bytes: u64,
    /// Bytes the leaves could hold (`leaf_pages` times a page's body):
    /// [`Stats::leaf_fill`] is `leaf_bytes` over this.
    pub leaf_capacity: u64,
    /// Cuts of the page file's free tail that failed since open (each
    /// logged as a warning): the commits stood, and the file stays longer
    /// until a later commit's cut succeeds. A sign of a failing disk or
    /// file system.
    pub page_file_cut_failures: u64,
    /// Decrypted-page cache hits and misses since open.
    pub cache_hits: u64,
    /// Decrypted-page cache misses since open.
    pub cache_misses: u64,
    /// Encryption status.
    pub encryption: EncryptionStatus,
}

impl Stats {
    /// The average fill of the tree's leaves, from 0 to 1 (0 for an empty
    /// tree).
    pub fn leaf_fill(&self) -> f64 {
        if self.leaf_capacity == 0 {
            0.0
        } else {
            self.leaf_bytes as f64 / self.leaf_capacity as f64
        }
    }

    /// Cache hits over lookups, 0 when there were none.
    pub fn cache_hit_rate(&self) -> f64 {
        let total = self.cache_hits + self.cache_misses;
        if total == 0 {
            0.0
        } else {
            self.cache_hits as f64 / total as f64
        }
    }
}

pub(crate) fn collect(db: &Inner) -> Result<Stats, Error> {
    let memtable_bytes = {
        let mems = db.mems.read();
        mems.active.approx_bytes()
            + mems
                .frozen
                .iter()
                .map(|f| f.mem.approx_bytes())
                .sum::<usize>()
    } as u64;
    let applied_seq = db.flush_state.lock().meta.applied_seq;
    let store = db.store.stats();
    // The walk reads every tree page: a damaged one fails it, and the
    // counters are still worth having (the leaf figures stay zero; `verify`
    // names the damage).
    let space = match db.store.space() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %db.store_error(e), "stats: the tree walk failed; leaf fill unknown");
            let mut s = sealkv_core_store::SpaceStats::default();
            s.page_count = store.page_count;
            s.free_pages = store.free_pages;
            s.live_pages = store.page_count.saturating_sub(store.free_pages);
            s.file_bytes = db.store.file_bytes().map_err(|e| db.store_error(e))?;
            s
        }
    };
    let wal_bytes = wal_bytes(db);
    let wal_stats = db
        .wal
        .as_ref()
        .map(sealkv_core_wal::Wal::stats)
        .unwrap_or_default();
    let encryption = match &db.keys {
        None => EncryptionStatus {
            encrypt_at_rest: false,
            algorithm: None,
            algorithm_info: None,
            active_key: None,
            data_keys: Vec::new(),
            field_keys: Vec::new(),
            registry_generation: 0,
        },
        Some(keys) => keys.status(db.sealed),
    };
    let c = &db.counters;
    Ok(Stats {
        writes: c.writes.load(Ordering::Relaxed),
        bytes_written: c.bytes_written.load(Ordering::Relaxed),
        flushes: c.flushes.load(Ordering::Relaxed),
        flush_commits: c.flush_commits.load(Ordering::Relaxed),
        write_stalls: c.stalls.load(Ordering::Relaxed),
        tree_reads: c.tree_reads.load(Ordering::Relaxed),
        transactions: c.transactions.load(Ordering::Relaxed),
        conflicts: c.conflicts.load(Ordering::Relaxed),
        transaction_retries: c.retries.load(Ordering::Relaxed),
        keyspaces: db.catalog.names().map_or(0, |n| n.len() as u64),
        memtable_bytes,
        last_seq: db.publisher.visible(),
        applied_seq,
        torn_tails_repaired: db.torn_tails.load(Ordering::Relaxed),
        wal_bytes,
        wal_sync_markers: wal_stats.sync_markers,
        wal_sync_marker_failures: wal_stats.sync_marker_failures,
        pages: space.page_count,
        file_bytes: space.file_bytes,
        live_pages: space.live_pages,
        free_pages: space.free_pages,
        leaf_pages: space.leaf_pages,
        leaf_bytes: space.leaf_bytes,
        leaf_capacity: space.leaf_capacity,
        page_file_cut_failures: store.tail_cut_failures,
        cache_hits: store.cache_hits,
        cache_misses: store.cache_misses,
        encryption,
    })
}

/// Bytes of WAL segment files on disk.
fn wal_bytes(db: &Inner) -> u64 {
    let dir = db.dir.join(crate::layout::WAL_DIR);
    let vfs = &db.config.vfs;
    let Ok(files) = vfs.read_dir(&dir) else {
        return 0;
    };
    files
        .iter()
        .filter_map(|p| vfs.open(p, sealkv_fileio::OpenMode::Read).ok())
        .filter_map(|f| f.len().ok())
        .sum()
}
