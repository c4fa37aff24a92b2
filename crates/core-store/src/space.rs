//! `space()`: how the file's pages are used and how full the tree's pages
//! are.

use crate::error::{Result, StoreError};
use crate::format::MAX_DEPTH;
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
    /// average. Walks every tree page through the cache (the nodes it
    /// reads are cached as a read would cache them); overflow pages are
    /// counted from the values' lengths, not read. The answer for a
    /// transaction is kept, so asking again before the next commit costs
    /// nothing.
    /// A damaged tree page fails the walk with the error a read of it
    /// would give.
    pub fn space(&self) -> Result<SpaceStats> {
        let snap = self.read();
        let txn = snap.txn();
        let file_bytes = self.file_bytes()?;
        if let Some(mut s) = self.inner.space_memo.lock().filter(|s| s.txn == txn) {
            s.file_bytes = file_bytes;
            return Ok(s);
        }
        let mut s = measure(&snap)?;
        s.file_bytes = file_bytes;
        *self.inner.space_memo.lock() = Some(s);
        Ok(s)
    }
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

/// Walks `snap`'s tree and counts its pages and bytes.
fn measure(snap: &ReadTxn) -> Result<SpaceStats> {
    let inner = snap.inner();
    let meta = snap.meta();
    let body = inner.sealer.body_len() as u64;
    let overflow_cap = body - OVERFLOW_HEAD as u64;
    let mut s = SpaceStats {
        txn: meta.txn,
        page_count: meta.page_count,
        free_pages: meta.free_pages,
        live_pages: meta.page_count.saturating_sub(meta.free_pages),
        ..SpaceStats::default()
    };
    let mut branch_bytes = 0u64;
    // Depth-first, one stack of (page, depth): at most MAX_DEPTH levels of
    // siblings waiting.
    let mut stack: Vec<(ChildRef, usize)> = meta.root.map(|r| (r, 0)).into_iter().collect();
    while let Some((r, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(too_deep(r.page));
        }
        let node = inner.load_node(r, meta.page_count)?;
        if node.leaf {
            s.leaf_pages += 1;
            s.leaf_bytes += node.used_body() as u64;
            s.entries += node.len() as u64;
            for i in 0..node.len() {
                if let ValRef::Overflow { len, .. } = node.val(i) {
                    s.overflow_pages += len.div_ceil(overflow_cap).max(1);
                }
            }
        } else {
            s.branch_pages += 1;
            branch_bytes += node.used_body() as u64;
            stack.extend((0..node.len()).rev().map(|i| (node.child(i), depth + 1)));
        }
    }
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
}
