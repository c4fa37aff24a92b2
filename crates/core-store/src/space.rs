//! `space()`: how the file's pages are used and how full the tree's pages
//! are.

use std::collections::HashMap;

use crate::error::{Result, StoreError};
use crate::format::{MAX_DEPTH, Tag};
use crate::node::{ChildRef, ValRef};
use crate::read::{ReadTxn, too_deep};
use crate::store::{OVERFLOW_HEAD, Store};

/// How a committed state uses the page file (see [`Store::space`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct SpaceStats {
    /// The transaction measured.
    pub txn: u64,
    /// Bytes of the file on disk (it may run past the last page: the file
    /// grows in chunks).
    pub file_bytes: u64,
    /// Pages in use or free (`0..page_count`), the header and meta pages
    /// included.
    pub page_count: u64,
    /// Free pages (reusable now or once older readers let go).
    pub free_pages: u64,
    /// Pages in use: header, meta slots, tree, overflow and free-list
    /// pages (`page_count - free_pages`).
    pub live_pages: u64,
    /// Leaf pages of the tree.
    pub leaf_pages: u64,
    /// Branch pages of the tree.
    pub branch_pages: u64,
    /// Overflow pages (values too large to sit in a leaf).
    pub overflow_pages: u64,
    /// Key-value entries.
    pub entries: u64,
    /// Bytes of leaf bodies in use (entry count and entries), over all
    /// leaves.
    pub leaf_bytes: u64,
    /// Bytes the leaves' bodies could hold (`leaf_pages` times a page's
    /// body).
    pub leaf_capacity: u64,
    /// Average fill of the leaves: `leaf_bytes` over `leaf_capacity` (0
    /// for an empty tree).
    pub leaf_fill: f64,
    /// Average fill of the branches, likewise.
    pub branch_fill: f64,
}

impl Store {
    /// Measures how the last committed state uses the file: file size,
    /// live and free pages, and how full leaves and branches are on
    /// average. Walks the tree through the cache (the nodes it reads are
    /// cached as a read would cache them); overflow pages are counted from
    /// the values' lengths, not read. What each page's subtree holds is
    /// kept, by page and tag, until a later walk finds the page replaced:
    /// asked again, it reads only the pages written since (a commit
    /// rewrites the path to what it changed), at the cost of some 80 bytes
    /// of memory per tree page once asked (never more entries than the
    /// file has pages). A damaged tree page the walk reads fails it with
    /// the error a read of it would give.
    pub fn space(&self) -> Result<SpaceStats> {
        let snap = self.read();
        let file_bytes = self.file_bytes()?;
        // One walk at a time: the memo is taken for the walk and put back.
        let mut memo = self.inner.space_memo.lock();
        let mut s = measure_with(&snap, &mut memo)?;
        s.file_bytes = file_bytes;
        Ok(s)
    }
}

/// What a subtree holds: the sums [`SpaceStats`] is made of.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    leaf_pages: u64,
    branch_pages: u64,
    overflow_pages: u64,
    entries: u64,
    leaf_bytes: u64,
    branch_bytes: u64,
}

impl Sums {
    fn add(&mut self, o: &Sums) {
        self.leaf_pages += o.leaf_pages;
        self.branch_pages += o.branch_pages;
        self.overflow_pages += o.overflow_pages;
        self.entries += o.entries;
        self.leaf_bytes += o.leaf_bytes;
        self.branch_bytes += o.branch_bytes;
    }
}

/// What [`Store::space`] keeps between walks: the sums of each tree page's
/// subtree, by page number, with the tag of the version measured (a page
/// number reused for another node has another tag, and its entry is
/// replaced when a walk meets it). Keyed by page number, it never holds
/// more entries than the file has pages.
#[derive(Debug, Default)]
pub(crate) struct SpaceMemo {
    subtrees: HashMap<u64, (Tag, Sums)>,
}

impl Store {
    /// Bytes of the page file on disk.
    pub fn file_bytes(&self) -> Result<u64> {
        self.inner.file.len().map_err(|e| {
            StoreError::Io(sealkv_fileio::FileError::new(
                sealkv_fileio::FileOp::Read,
                &self.inner.path,
                e,
            ))
        })
    }
}

/// Walks `snap`'s tree and counts its pages and bytes (with no memo).
#[cfg(test)]
fn measure(snap: &ReadTxn) -> Result<SpaceStats> {
    measure_with(snap, &mut SpaceMemo::default())
}

/// Counts `snap`'s tree's pages and bytes, reading only the pages `memo`
/// does not hold, and records in `memo` the ones it read.
fn measure_with(snap: &ReadTxn, memo: &mut SpaceMemo) -> Result<SpaceStats> {
    let meta = snap.meta();
    let body = snap.inner().sealer.body_len() as u64;
    // Pages the file no longer has (it shrank) leave the memo.
    if memo.subtrees.len() as u64 > meta.page_count {
        memo.subtrees.retain(|p, _| *p < meta.page_count);
    }
    let sums = match meta.root {
        Some(r) => subtree(snap, r, 0, memo)?,
        None => Sums::default(),
    };
    let mut s = SpaceStats {
        txn: meta.txn,
        page_count: meta.page_count,
        free_pages: meta.free_pages,
        live_pages: meta.page_count.saturating_sub(meta.free_pages),
        leaf_pages: sums.leaf_pages,
        branch_pages: sums.branch_pages,
        overflow_pages: sums.overflow_pages,
        entries: sums.entries,
        leaf_bytes: sums.leaf_bytes,
        ..SpaceStats::default()
    };
    let branch_bytes = sums.branch_bytes;
    let fill = |bytes: u64, pages: u64| {
        if pages == 0 {
            0.0
        } else {
            bytes as f64 / (pages * body) as f64
        }
    };
    s.leaf_capacity = s.leaf_pages * body;
    s.leaf_fill = fill(s.leaf_bytes, s.leaf_pages);
    s.branch_fill = fill(branch_bytes, s.branch_pages);
    Ok(s)
}

/// The sums of the subtree under `r` (at `depth`): from `memo` if it
/// holds this version of the page, else read (its children likewise) and
/// recorded there.
fn subtree(snap: &ReadTxn, r: ChildRef, depth: usize, memo: &mut SpaceMemo) -> Result<Sums> {
    if depth > MAX_DEPTH {
        return Err(too_deep(r.page));
    }
    if let Some((tag, sums)) = memo.subtrees.get(&r.page)
        && *tag == r.tag
    {
        return Ok(*sums);
    }
    let inner = snap.inner();
    let node = inner.load_node(r, snap.meta().page_count)?;
    let mut sums = Sums::default();
    if node.leaf {
        let overflow_cap = (inner.sealer.body_len() - OVERFLOW_HEAD) as u64;
        sums.leaf_pages = 1;
        sums.leaf_bytes = node.used_body() as u64;
        sums.entries = node.len() as u64;
        for i in 0..node.len() {
            if let ValRef::Overflow { len, .. } = node.val(i) {
                sums.overflow_pages += len.div_ceil(overflow_cap).max(1);
            }
        }
    } else {
        sums.branch_pages = 1;
        sums.branch_bytes = node.used_body() as u64;
        for i in 0..node.len() {
            let child = subtree(snap, node.child(i), depth + 1, memo)?;
            sums.add(&child);
        }
    }
    memo.subtrees.insert(r.page, (r.tag, sums));
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use sealkv_fileio::{SimVfs, Vfs};

    use super::*;
    use crate::StoreOptions;
    use crate::format::FIRST_DATA_PAGE;

    fn store() -> Store {
        let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new());
        vfs.create_dir_all(Path::new("/db"))
            .unwrap_or_else(|e| panic!("{e}"));
        Store::create(vfs, Path::new("/db/data"), StoreOptions::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .0
    }

    #[test]
    fn an_empty_store_has_no_tree_pages() {
        let s = store().space().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.leaf_pages, s.branch_pages, s.entries), (0, 0, 0));
        assert_eq!(s.page_count, FIRST_DATA_PAGE);
        assert_eq!(s.live_pages, FIRST_DATA_PAGE);
        assert_eq!(s.leaf_fill, 0.0);
        assert!(s.file_bytes >= FIRST_DATA_PAGE * 4096);
    }

    #[test]
    fn space_counts_what_verify_counts() {
        let st = store();
        let mut w = st.write().unwrap_or_else(|e| panic!("{e}"));
        for i in 0..3000u32 {
            let v = if i % 500 == 0 {
                vec![7u8; 9000]
            } else {
                vec![1u8; 40]
            };
            w.put(&i.to_be_bytes(), &v)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        w.commit().unwrap_or_else(|e| panic!("{e}"));
        let s = st.space().unwrap_or_else(|e| panic!("{e}"));
        let v = st.verify().unwrap_or_else(|e| panic!("{e}"));
        assert!(v.is_clean(), "{:?}", v.problems);
        assert_eq!(s.entries, 3000);
        assert_eq!(s.leaf_pages + s.branch_pages, v.tree_pages);
        assert_eq!(s.overflow_pages, v.overflow_pages);
        assert_eq!(s.free_pages, v.free_pages);
        assert_eq!(
            s.live_pages,
            FIRST_DATA_PAGE + v.tree_pages + v.overflow_pages + v.free_list_pages
        );
        assert!(s.leaf_fill > 0.0 && s.leaf_fill <= 1.0, "{}", s.leaf_fill);
        // Asked again with no commit between: the same answer.
        assert_eq!(st.space().unwrap_or_else(|e| panic!("{e}")), s);
    }

    /// Node lookups (cache hits and misses) since `before`.
    fn lookups(st: &Store, before: (u64, u64)) -> u64 {
        let s = st.stats();
        s.cache_hits + s.cache_misses - before.0 - before.1
    }

    /// After a commit that changes one leaf, `space()` reads the pages on
    /// its path, not the whole tree, and answers as a full walk does.
    #[test]
    fn space_after_a_small_commit_reads_only_what_changed() {
        let st = store();
        let mut w = st.write().unwrap_or_else(|e| panic!("{e}"));
        for i in 0..20_000u32 {
            w.put(&i.to_be_bytes(), &[3u8; 40])
                .unwrap_or_else(|e| panic!("{e}"));
        }
        w.commit().unwrap_or_else(|e| panic!("{e}"));
        let full = st.space().unwrap_or_else(|e| panic!("{e}"));
        assert!(full.leaf_pages > 100, "{full:?}");
        for round in 0..20u32 {
            let mut w = st.write().unwrap_or_else(|e| panic!("{e}"));
            let k = (round * 997 % 20_000).to_be_bytes();
            if round % 3 == 0 {
                w.delete(&k).unwrap_or_else(|e| panic!("{e}"));
            } else {
                w.put(&k, &vec![round as u8; 9000 * (round as usize % 2) + 10])
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            w.commit().unwrap_or_else(|e| panic!("{e}"));
            let s = st.stats();
            let s = st
                .space()
                .map(|sp| (sp, lookups(&st, (s.cache_hits, s.cache_misses))))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(s.1 <= 8, "round {round}: {} lookups", s.1);
            assert_eq!(
                s.0,
                measure(&st.read())
                    .map(|mut m| {
                        m.file_bytes = s.0.file_bytes;
                        m
                    })
                    .unwrap_or_else(|e| panic!("{e}")),
                "round {round}"
            );
        }
    }
}
