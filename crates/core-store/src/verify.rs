//! `verify()`: a read-only walk of every reachable and every free page.

use crate::error::{Result, StoreError};
use crate::format::{
    FIRST_DATA_PAGE, FileHeader, MAX_DEPTH, META_A, PAGE_HEADER_LEN, PageKind, TAG_LEN,
};
use crate::meta::decode_free;
use crate::meta::{FreeEntry, Meta};
use crate::node::{ChildRef, Node, ValRef};
use crate::read::ReadTxn;
use crate::store::{Inner, Store, overflow_body};

/// One problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The page at fault.
    pub page: u64,
    /// What is wrong.
    pub what: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The transaction verified.
    pub txn: u64,
    /// Pages in the file (high-water mark).
    pub page_count: u64,
    /// Tree pages reachable from the root.
    pub tree_pages: u64,
    /// Overflow pages reachable from the tree.
    pub overflow_pages: u64,
    /// Free-list pages.
    pub free_list_pages: u64,
    /// Free pages.
    pub free_pages: u64,
    /// Key-value entries.
    pub entries: u64,
    /// Free pages that no longer hold the version the free list records
    /// but may legitimately have been overwritten by a transaction that
    /// never committed (a crash): listed, not counted as problems.
    pub overwritten_free: Vec<u64>,
    /// Problems, each naming its page.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What a page of a snapshot is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageRole {
    /// A branch or leaf of the tree.
    Tree,
    /// Part of a large value.
    Overflow,
    /// A page of the free list.
    FreeList,
    /// A free page.
    Free,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Unknown,
    Tree,
    Overflow,
    FreeList,
    Free,
}

struct Walk<'a> {
    inner: &'a Inner,
    page_count: u64,
    uses: Vec<Use>,
    report: VerifyReport,
    leaf_depth: Option<usize>,
    buf: Vec<u8>,
}

impl Walk<'_> {
    fn problem(&mut self, page: u64, what: impl Into<String>) {
        self.report.problems.push(Problem {
            page,
            what: what.into(),
        });
    }

    fn error(&mut self, e: StoreError, page: u64) {
        match e {
            StoreError::Corruption { page, what } => self.problem(page, what),
            StoreError::Rollback { page } => self.problem(page, "stale version (rollback)"),
            other => self.problem(page, other.to_string()),
        }
    }

    /// Marks a page used; false (with a problem) if already used.
    fn mark(&mut self, page: u64, u: Use) -> bool {
        match self.uses.get_mut(page as usize) {
            Some(slot) if *slot == Use::Unknown => {
                *slot = u;
                true
            }
            Some(_) => {
                self.problem(page, "page used twice (or both used and free)");
                false
            }
            None => {
                self.problem(page, "page number out of range");
                false
            }
        }
    }

    fn read_open(&mut self, r: ChildRef, want: &[PageKind]) -> Result<crate::format::PageHeader> {
        let mut buf = std::mem::take(&mut self.buf);
        let res = self
            .inner
            .read_raw(r.page, self.page_count, &mut buf)
            .and_then(|()| {
                self.inner
                    .sealer
                    .open_expected(&mut buf, r.page, &r.tag, want)
            });
        self.buf = buf;
        res
    }

    fn node(&mut self, r: ChildRef) -> Result<Node> {
        let h = self.read_open(r, &[PageKind::Branch, PageKind::Leaf])?;
        let ps = self.inner.sealer.page_size;
        let body: Box<[u8]> = self.buf[PAGE_HEADER_LEN..ps - TAG_LEN].into();
        Node::decode(h.kind == PageKind::Leaf, body, r.page)
    }

    fn tree(&mut self, r: ChildRef, lower: Option<&[u8]>, upper: Option<&[u8]>, depth: usize) {
        if depth > MAX_DEPTH {
            return self.problem(r.page, "tree deeper than the limit (a cycle?)");
        }
        if !self.mark(r.page, Use::Tree) {
            return;
        }
        self.report.tree_pages += 1;
        let node = match self.node(r) {
            Ok(n) => n,
            Err(e) => return self.error(e, r.page),
        };
        let n = node.len();
        let first_bound = if node.leaf { 0 } else { 1 };
        for i in 0..n {
            let k = node.key(i);
            if i >= first_bound && lower.is_some_and(|l| k < l) {
                self.problem(r.page, format!("entry {i} below its parent's separator"));
            }
            if upper.is_some_and(|u| k >= u) {
                self.problem(r.page, format!("entry {i} not below the next separator"));
            }
        }
        if node.leaf {
            match self.leaf_depth {
                None => self.leaf_depth = Some(depth),
                Some(d) if d != depth => self.problem(r.page, "leaf at uneven depth"),
                Some(_) => {}
            }
            self.report.entries += n as u64;
            for i in 0..n {
                if let ValRef::Overflow { len, page, tag } = node.val(i) {
                    self.overflow(ChildRef { page, tag }, len);
                }
            }
            return;
        }
        for i in 0..n {
            let lo = if i == 0 { lower } else { Some(node.key(i)) };
            let hi = if i + 1 < n {
                Some(node.key(i + 1))
            } else {
                upper
            };
            self.tree(node.child(i), lo, hi, depth + 1);
        }
    }

    fn overflow(&mut self, first: ChildRef, len: u64) {
        let mut next = Some(first);
        let mut total = 0u64;
        while let Some(r) = next {
            if !self.mark(r.page, Use::Overflow) {
                return;
            }
            self.report.overflow_pages += 1;
            if let Err(e) = self.read_open(r, &[PageKind::Overflow]) {
                return self.error(e, r.page);
            }
            let ps = self.inner.sealer.page_size;
            match overflow_body(&self.buf[PAGE_HEADER_LEN..ps - TAG_LEN], r.page) {
                Ok((n, data)) => {
                    total += data.len() as u64;
                    next = n;
                }
                Err(e) => return self.error(e, r.page),
            }
        }
        if total != len {
            self.problem(first.page, "overflow chain length differs from its value's");
        }
    }

    fn free_list(&mut self, head: Option<ChildRef>, txn: u64, expected: u64) {
        let mut next = head;
        let mut entries = Vec::new();
        while let Some(r) = next {
            if !self.mark(r.page, Use::FreeList) {
                return;
            }
            self.report.free_list_pages += 1;
            if let Err(e) = self.read_open(r, &[PageKind::FreeList]) {
                return self.error(e, r.page);
            }
            let ps = self.inner.sealer.page_size;
            match decode_free(&self.buf[PAGE_HEADER_LEN..ps - TAG_LEN], r.page) {
                Ok((n, es)) => {
                    // Entries are sorted by page number across the chain.
                    let mut last = entries.last().map(|e: &FreeEntry| e.page);
                    for e in &es {
                        if last.is_some_and(|l| e.page <= l) {
                            self.problem(r.page, "free-list entries not sorted by page number");
                            break;
                        }
                        last = Some(e.page);
                    }
                    entries.extend(es);
                    next = n;
                }
                Err(e) => return self.error(e, r.page),
            }
        }
        if entries.len() as u64 != expected {
            self.problem(
                head.map_or(1, |r| r.page),
                "free-list length differs from the meta page's count",
            );
        }
        for e in entries {
            if !self.mark(e.page, Use::Free) {
                continue;
            }
            self.report.free_pages += 1;
            let mut buf = std::mem::take(&mut self.buf);
            let ok = match self.inner.read_raw(e.page, self.page_count, &mut buf) {
                Err(err) => {
                    self.buf = buf;
                    self.error(err, e.page);
                    continue;
                }
                Ok(()) if e.zeroed => {
                    let ok = buf.iter().all(|&b| b == 0)
                        || self.written_after(&mut buf, e.page, e.freed);
                    if !ok {
                        self.buf = buf;
                        self.problem(
                            e.page,
                            "free page recorded as zeroed is not zero, and holds no page sealed \
                             for this slot since it was freed: damage, old contents put back, or \
                             a page torn by a power cut during a commit that never completed",
                        );
                        continue;
                    }
                    true
                }
                Ok(()) => {
                    let want = [
                        PageKind::Branch,
                        PageKind::Leaf,
                        PageKind::Overflow,
                        PageKind::FreeList,
                    ];
                    self.inner
                        .sealer
                        .open_expected(&mut buf, e.page, &e.tag, &want)
                        .is_ok()
                }
            };
            self.buf = buf;
            if !ok {
                // Pages freed by the last commit belong to the older meta's
                // tree and are never overwritten before the next commit.
                if e.freed >= txn {
                    self.problem(e.page, "free page does not hold its recorded version");
                } else {
                    self.report.overwritten_free.push(e.page);
                }
            }
        }
    }
}

impl Walk<'_> {
    /// Whether `buf`, read from free page `page`, is a page sealed for that
    /// slot by a transaction after `freed` (the one that freed it): what a
    /// commit that died before its meta page leaves in pages it had
    /// allocated. (Not "after the snapshot": a commit after the reopen
    /// takes the number of the one that died.) Contents from before the
    /// page was freed carry an older transaction.
    fn written_after(&self, buf: &mut [u8], page: u64, freed: u64) -> bool {
        let any = [
            PageKind::Branch,
            PageKind::Leaf,
            PageKind::Overflow,
            PageKind::FreeList,
        ];
        self.inner
            .sealer
            .open(buf, page, &any)
            .is_ok_and(|h| h.txn > freed)
    }
}

fn walk(inner: &Inner, meta: &Meta) -> (VerifyReport, Vec<Use>) {
    let ps = inner.sealer.page_size;
    let mut w = Walk {
        inner,
        page_count: meta.page_count,
        uses: vec![Use::Unknown; usize::try_from(meta.page_count).unwrap_or(0)],
        report: VerifyReport {
            txn: meta.txn,
            page_count: meta.page_count,
            ..VerifyReport::default()
        },
        leaf_depth: None,
        buf: vec![0u8; ps],
    };
    let mut hbuf = vec![0u8; ps];
    match inner.file.read_exact_at(&mut hbuf, 0) {
        Ok(()) => match FileHeader::decode(&hbuf) {
            Ok(h) if h.db_id == inner.sealer.db_id && h.algorithm == inner.sealer.algorithm => {}
            Ok(_) => w.problem(0, "header changed since open"),
            Err(e) => w.error(e, 0),
        },
        Err(e) => w.problem(0, format!("unreadable: {e}")),
    }
    for p in 0..FIRST_DATA_PAGE.min(meta.page_count) {
        if let Some(u) = w.uses.get_mut(p as usize) {
            *u = Use::Tree;
        }
    }
    if let Some(root) = meta.root {
        w.tree(root, None, None, 0);
    }
    w.free_list(meta.free_head, meta.txn, meta.free_pages);
    let mut uses = std::mem::take(&mut w.uses);
    for (p, u) in uses.iter().enumerate() {
        if *u == Use::Unknown {
            w.report.problems.push(Problem {
                page: p as u64,
                what: "leaked: neither reachable nor free".into(),
            });
        }
    }
    for u in uses.iter_mut().take(FIRST_DATA_PAGE as usize) {
        *u = Use::Unknown;
    }
    (w.report, uses)
}

impl Store {
    /// Checks the whole file, read-only: authenticates every reachable and
    /// every free page, checks key order, separators, depth, overflow
    /// lengths, the free-list count, and that every page is exactly one of
    /// header/meta, tree, overflow, free-list or free. Returns a report
    /// naming each problem.
    pub fn verify(&self) -> Result<VerifyReport> {
        let snap = self.read();
        let mut report = walk(&self.inner, snap.meta()).0;
        // The other slot, checked while no commit runs: a commit holds the
        // writer state from its first page to the publication of its
        // snapshot, and its meta page rewrites that slot. A commit since the
        // walk's snapshot rewrote it: not damage. (An open write transaction
        // that is not committing does not hold it, and does not hide damage.)
        let ws = self.inner.wstate.lock();
        let txn = snap.meta().txn;
        let other = if self.read().txn() == txn {
            self.other_meta_problem(txn)
        } else {
            None
        };
        drop(ws);
        if let Some(what) = other {
            report.problems.push(Problem {
                page: META_A + (txn + 1) % 2,
                what,
            });
        }
        Ok(report)
    }

    /// The other meta slot must hold the commit before `txn`, intact: it is
    /// what an open falls back to. A damaged or replayed slot, or one that
    /// holds a *later* commit (open fell back past it: that commit's meta
    /// page or tree was unusable), is reported.
    fn other_meta_problem(&self, txn: u64) -> Option<String> {
        let inner = &self.inner;
        let slot = META_A + (txn + 1) % 2;
        let ps = inner.sealer.page_size;
        let mut buf = vec![0u8; ps];
        if let Err(e) = inner.file.read_exact_at(&mut buf, slot * ps as u64) {
            return Some(format!("other meta slot unreadable: {e}"));
        }
        // Transaction 0 is the file's creation: the other slot was never
        // written, and is all zeros.
        if txn == 0 && buf.iter().all(|&b| b == 0) {
            return None;
        }
        let meta = inner
            .sealer
            .open(&mut buf, slot, &[PageKind::Meta])
            .and_then(|_| Meta::decode(buf.get(PAGE_HEADER_LEN..).unwrap_or(&[]), slot));
        match meta {
            Err(e) => Some(format!(
                "other meta slot (the fallback) is damaged: {e}; a crash while writing it, or tampering"
            )),
            // The slot's transaction is whatever the file says, u64::MAX
            // included.
            Ok(m) if txn > 0 && m.txn == txn - 1 => None,
            Ok(m) if m.txn > txn => Some(format!(
                "meta slot holds transaction {}, newer than the one opened ({txn}): its meta page or tree was unusable at open, which fell back to the older state",
                m.txn
            )),
            Ok(m) if txn == 0 => Some(format!(
                "other meta slot holds transaction {}, expected none (never written)",
                m.txn
            )),
            Ok(m) => Some(format!(
                "other meta slot holds transaction {}, expected {}: an older copy put back",
                m.txn,
                txn - 1
            )),
        }
    }
}

impl Store {
    /// How many pages of the file, as they are on disk right now, name each
    /// data key id in their clear header: every page, reachable or free,
    /// the meta slots included; zeroed pages name none. Plaintext files
    /// name none. Headers are read without authentication (a tampered one
    /// counts for the key it claims), which errs toward keeping a key.
    /// Used to decide when a data key can be retired. Concurrent commits
    /// may change the answer: callers that act on it hold off writers.
    pub fn key_usage(
        &self,
    ) -> Result<std::collections::BTreeMap<sealkv_crypto_envelope::KeyId, u64>> {
        let inner = &self.inner;
        let mut usage = std::collections::BTreeMap::new();
        if !inner.sealer.sealed() {
            return Ok(usage);
        }
        let ps = inner.sealer.page_size as u64;
        let io = |e| {
            StoreError::Io(sealkv_fileio::FileError::new(
                sealkv_fileio::FileOp::Read,
                &inner.path,
                e,
            ))
        };
        let mut pages = inner.file.len().map_err(io)? / ps;
        // Read in runs of pages; look only at each page's header.
        let run = (1u64 << 20).div_ceil(ps).max(1);
        let mut buf = Vec::new();
        let mut page = META_A;
        // Commits go on meanwhile, and one may give the file's free tail
        // back between the length read and a run read: the pages past the
        // new end hold nothing, so the census goes on to the new end. A
        // file that keeps reading short of its own length is an error.
        let mut cuts_seen = 0;
        while page < pages {
            let n = run.min(pages - page);
            buf.resize((n * ps) as usize, 0);
            match inner.file.read_exact_at(&mut buf, page * ps) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && cuts_seen < 3 => {
                    cuts_seen += 1;
                    pages = inner.file.len().map_err(io)? / ps;
                    continue;
                }
                Err(e) => return Err(io(e)),
            }
            for chunk in buf.chunks_exact(ps as usize) {
                let Some(head) = chunk.get(..8) else { continue };
                if chunk.iter().all(|&b| b == 0) {
                    continue;
                }
                let dek = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
                *usage.entry(sealkv_crypto_envelope::KeyId(dek)).or_insert(0) += 1;
            }
            page += n;
        }
        Ok(usage)
    }
}

impl ReadTxn {
    /// Every page of this snapshot (tree, overflow, free list and free
    /// pages) with its role, in page order: what a physical backup copies
    /// (the tree and overflow pages) and what `reseal` would rewrite. Fails
    /// with the first problem found if the snapshot does not verify.
    pub fn pages(&self) -> Result<Vec<(u64, PageRole)>> {
        let (report, uses) = walk(self.inner(), self.meta());
        if let Some(p) = report.problems.into_iter().next() {
            return Err(StoreError::Corruption {
                page: p.page,
                what: p.what,
            });
        }
        Ok(uses
            .iter()
            .enumerate()
            .filter_map(|(p, u)| {
                let role = match u {
                    Use::Unknown => return None,
                    Use::Tree => PageRole::Tree,
                    Use::Overflow => PageRole::Overflow,
                    Use::FreeList => PageRole::FreeList,
                    Use::Free => PageRole::Free,
                };
                Some((p as u64, role))
            })
            .collect())
    }

    /// The raw (sealed) bytes of page `page` as stored, unauthenticated:
    /// for page-exact copies. Pages 0-2 (header and meta slots) included.
    pub fn raw_page(&self, page: u64) -> Result<Vec<u8>> {
        let inner = self.inner();
        let ps = inner.sealer.page_size;
        let mut buf = vec![0u8; ps];
        if page >= self.meta().page_count {
            return Err(StoreError::corrupt(page, "page number out of range"));
        }
        inner
            .file
            .read_exact_at(&mut buf, page * ps as u64)
            .map_err(|e| {
                StoreError::Io(sealkv_fileio::FileError::new(
                    sealkv_fileio::FileOp::Read,
                    &inner.path,
                    e,
                ))
            })?;
        Ok(buf)
    }
}
