//! The write transaction and the copy-on-write commit.

use std::collections::BTreeMap;
use std::mem;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use sealkv_fileio::{FileError, FileOp};

use crate::error::{Result, StoreError};
use crate::format::MAX_DEPTH;
use crate::format::{MAX_APP_META, MAX_VALUE_LEN, META_A, PAGE_HEADER_LEN, PageKind, TAG_LEN, Tag};
use crate::meta::{FreeEntry, Meta, encode_free, free_per_page};
use crate::node::{
    ChildRef, Node, ValRef, entry_key, inline_size, put_branch, put_inline, put_overflow,
};
use crate::read::{too_deep, tree_get};
use crate::store::{Inner, OVERFLOW_HEAD, Snapshot, Store, WriterState, overflow_body};

/// Bytes of sealed pages a commit holds in memory before writing them out
/// (sorted, in runs) ahead of its fsync: the memory a commit needs stays
/// this constant however many pages it rewrites. Writing early is safe:
/// every page a commit writes is new or free (no meta slot's tree and no
/// reader uses it), and nothing points at it before the meta page.
pub(crate) const SPILL_BYTES: usize = 4 << 20;

/// One operation of a batch: a put (`Some(value)`) or a delete (`None`).
pub type Op = (Vec<u8>, Option<Vec<u8>>);

/// The write transaction: buffers puts and deletes, then commits them as
/// one copy-on-write transaction, or drops them on [`WriteTxn::abort`] (or
/// drop).
///
/// Only one exists per store at a time: [`Store::write`] waits for the
/// current one to end, and refuses with [`StoreError::WriteInProgress`] if
/// the calling thread already holds it (instead of deadlocking). A
/// `WriteTxn` is `Send`: it may be handed to another thread.
pub struct WriteTxn<'a> {
    store: &'a Store,
    base: Arc<Snapshot>,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    app_meta: Option<Vec<u8>>,
    zero_free: bool,
}

impl std::fmt::Debug for WriteTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTxn")
            .field("base", &self.base.meta.txn)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Drop for WriteTxn<'_> {
    fn drop(&mut self) {
        let inner = &self.store.inner;
        inner.gate.lock().owner = None;
        inner.gate_cv.notify_one();
    }
}

impl Store {
    /// Starts the write transaction, waiting while another thread holds it.
    pub fn write(&self) -> Result<WriteTxn<'_>> {
        let inner = &self.inner;
        if inner.read_only {
            return Err(StoreError::ReadOnly);
        }
        let me = std::thread::current().id();
        let mut g = inner.gate.lock();
        while let Some(owner) = g.owner {
            if owner == me {
                return Err(StoreError::WriteInProgress);
            }
            inner.gate_cv.wait(&mut g);
        }
        g.owner = Some(me);
        drop(g);
        let txn = WriteTxn {
            store: self,
            base: inner.snapshot(),
            pending: BTreeMap::new(),
            app_meta: None,
            zero_free: false,
        };
        if inner.poisoned.load(Ordering::SeqCst) {
            return Err(StoreError::Poisoned);
        }
        Ok(txn)
    }

    /// Overwrites every free page that no meta slot's tree and no reader
    /// can still need with zeros, and records them as zeroed, in one
    /// commit. Returns how many pages were zeroed. (Pages freed by the last
    /// commit stay until the next one: they belong to the older meta's
    /// tree.)
    pub fn zero_free_pages(&self) -> Result<u64> {
        let mut w = self.write()?;
        w.zero_free = true;
        Ok(w.commit_inner()?.1)
    }
}

impl WriteTxn<'_> {
    fn check_key(&self, key: &[u8]) -> Result<()> {
        let max = self.store.max_key_len();
        if key.len() > max {
            return Err(StoreError::KeyTooLarge {
                len: key.len(),
                max,
            });
        }
        Ok(())
    }

    /// The transaction this one builds on.
    pub fn base_txn(&self) -> u64 {
        self.base.meta.txn
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_key(key)?;
        if value.len() > MAX_VALUE_LEN {
            return Err(StoreError::ValueTooLarge {
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        self.pending.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    /// Removes `key` (a no-op if absent).
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.check_key(key)?;
        self.pending.insert(key.to_vec(), None);
        Ok(())
    }

    /// Adds a batch of puts and deletes (sorted batches are cheapest; a
    /// later operation on the same key wins). Checks every operation first:
    /// on error, nothing of the batch is applied.
    pub fn apply(&mut self, ops: impl IntoIterator<Item = Op>) -> Result<()> {
        let ops: Vec<Op> = ops.into_iter().collect();
        for (k, v) in &ops {
            self.check_key(k)?;
            if let Some(v) = v
                && v.len() > MAX_VALUE_LEN
            {
                return Err(StoreError::ValueTooLarge {
                    len: v.len(),
                    max: MAX_VALUE_LEN,
                });
            }
        }
        for (k, v) in ops {
            self.pending.insert(k, v);
        }
        Ok(())
    }

    /// The value of `key` as this transaction sees it (its own writes
    /// first).
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.pending.get(key) {
            return Ok(v.clone());
        }
        let m = &self.base.meta;
        tree_get(&self.store.inner, m.root, m.page_count, key)
    }

    /// Sets the application metadata recorded in the meta page (at most
    /// [`MAX_APP_META`] bytes): the engine keeps its last applied sequence
    /// number, WAL anchor and registry generation there.
    pub fn set_app_meta(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.len() > MAX_APP_META {
            return Err(StoreError::AppMetaTooLarge {
                len: bytes.len(),
                max: MAX_APP_META,
            });
        }
        self.app_meta = Some(bytes.to_vec());
        Ok(())
    }

    /// Makes this commit also zero every free page that no meta slot's
    /// tree and no reader can still need (as [`Store::zero_free_pages`]
    /// does in a commit of its own).
    pub fn zero_free_pages_on_commit(&mut self) {
        self.zero_free = true;
    }

    /// Drops every buffered change.
    pub fn abort(self) {}

    /// Commits: writes the new pages, fsyncs, writes the meta page, fsyncs.
    /// Returns the new transaction id. On an I/O error the store is
    /// poisoned (the commit may or may not be durable; reopen to find out).
    pub fn commit(self) -> Result<u64> {
        Ok(self.commit_inner()?.0)
    }

    /// [`commit`](WriteTxn::commit), also returning how many free pages it
    /// zeroed (see [`WriteTxn::zero_free_pages_on_commit`]).
    pub fn commit_counting_zeroed(self) -> Result<(u64, u64)> {
        self.commit_inner()
    }

    fn commit_inner(mut self) -> Result<(u64, u64)> {
        let inner = self.store.inner.clone();
        let mut ws = inner.wstate.lock();
        let meta0 = &self.base.meta;
        // Open refuses a meta at u64::MAX; checked all the same.
        let txn = meta0.txn.checked_add(1).ok_or_else(|| {
            StoreError::corrupt(META_A + meta0.txn % 2, "transaction id exhausted")
        })?;
        let oldest = inner.oldest_reader();
        let mut c = Commit {
            inner: &inner,
            base_pages: meta0.page_count,
            txn,
            reusable: Vec::new(),
            kept: Vec::new(),
            freed: Vec::new(),
            high: meta0.page_count,
            out: Vec::new(),
            file_len: ws.file_len,
            spilled: 0,
        };
        for e in &ws.free {
            // Open refuses entries freed after their meta's transaction.
            if e.freed.checked_add(2).is_some_and(|f| f <= txn)
                // A reader at transaction o may walk its own free list
                // (`ReadTxn::pages`, a backup), which vouches for the pages
                // freed by commit o: keep those too.
                && oldest.is_none_or(|o| o > e.freed)
            {
                c.reusable.push(*e);
            } else {
                c.kept.push(*e);
            }
        }
        // Lowest pages first: pop() takes from the end.
        c.reusable
            .sort_unstable_by_key(|e| std::cmp::Reverse(e.page));
        let ops: Vec<Op> = mem::take(&mut self.pending).into_iter().collect();
        let built = (|| {
            let root = if ops.is_empty() {
                meta0.root
            } else {
                c.apply_root(meta0.root, &ops)?
            };
            Ok::<_, StoreError>((root, c.build_free_list(&ws.chain, self.zero_free)?))
        })();
        drop(ops);
        // Pages written early may have grown the file, even if the commit
        // then failed.
        ws.file_len = c.file_len;
        let (root, (free_head, free_all, chain, zeroed)) = built?;
        let meta = Meta {
            txn,
            root,
            page_count: c.high,
            free_head,
            free_pages: free_all.len() as u64,
            app_meta: self
                .app_meta
                .take()
                .unwrap_or_else(|| meta0.app_meta.clone()),
        };
        let out = mem::take(&mut c.out);
        let high = c.high;
        let spilled = c.spilled;
        if self.zero_free {
            // The file past the last page holds nothing live, but a commit
            // that died before its meta page may have left pages there:
            // cut it away and grow it back (the space reads as zeros).
            let p = inner.sealer.page_size as u64;
            let io = |op| {
                let path = &inner.path;
                move |e| StoreError::Io(FileError::new(op, path, e))
            };
            if ws.file_len > high * p {
                let keep = ws.file_len;
                let cut = inner
                    .file
                    .set_len(high * p)
                    .and_then(|()| inner.file.set_len(keep));
                if let Err(e) = cut {
                    inner.poisoned.store(true, Ordering::SeqCst);
                    return Err(io(FileOp::SetLen)(e));
                }
            }
        }
        let result = write_out(&inner, &mut ws, out, high, &meta, spilled);
        if result.is_err() {
            inner.poisoned.store(true, Ordering::SeqCst);
        }
        let meta_tag = result?;
        ws.free = free_all;
        ws.chain = chain;
        *inner.current.write() = Arc::new(Snapshot { meta, meta_tag });
        inner.commits.fetch_add(1, Ordering::Relaxed);
        Ok((txn, zeroed))
    }
}

/// Grows the file (by an eighth, at least 64 pages) to hold `pages` pages.
fn grow_to(inner: &Inner, file_len: &mut u64, pages: u64) -> Result<()> {
    let p = inner.sealer.page_size as u64;
    let need = pages * p;
    if need > *file_len {
        let grow = (*file_len / 8).max(64 * p);
        let new_len = need.max(*file_len + grow).div_ceil(p) * p;
        inner
            .file
            .set_len(new_len)
            .map_err(|e| StoreError::Io(FileError::new(FileOp::SetLen, &inner.path, e)))?;
        *file_len = new_len;
    }
    Ok(())
}

/// Writes sealed pages in page order, coalescing neighbours into runs of
/// up to 1 MiB, growing the file first if they reach past its end. No
/// fsync. Returns how many pages it wrote.
fn write_pages(inner: &Inner, file_len: &mut u64, mut out: Vec<(u64, Vec<u8>)>) -> Result<u64> {
    let Some(last) = out.iter().map(|(pg, _)| *pg).max() else {
        return Ok(0);
    };
    grow_to(inner, file_len, last + 1)?;
    let p = inner.sealer.page_size as u64;
    let path = &inner.path;
    let io = |op| move |e| StoreError::Io(FileError::new(op, path, e));
    out.sort_unstable_by_key(|(pg, _)| *pg);
    let mut run: Vec<u8> = Vec::new();
    let mut run_start = 0u64;
    let mut run_next = 0u64;
    let n = out.len() as u64;
    for (pg, buf) in out {
        if !run.is_empty() && (pg != run_next || run.len() >= 1 << 20) {
            inner
                .file
                .write_all_at(&run, run_start * p)
                .map_err(io(FileOp::Write))?;
            run.clear();
        }
        if run.is_empty() {
            run_start = pg;
        }
        run.extend_from_slice(&buf);
        run_next = pg + 1;
    }
    if !run.is_empty() {
        inner
            .file
            .write_all_at(&run, run_start * p)
            .map_err(io(FileOp::Write))?;
    }
    Ok(n)
}

/// Writes the pages not yet written (`spilled` were, earlier), fsyncs,
/// writes the meta page, fsyncs. Returns the meta page's tag.
fn write_out(
    inner: &Inner,
    ws: &mut WriterState,
    out: Vec<(u64, Vec<u8>)>,
    high: u64,
    meta: &Meta,
    spilled: u64,
) -> Result<Tag> {
    let p = inner.sealer.page_size as u64;
    let path = &inner.path;
    let io = |op| move |e| StoreError::Io(FileError::new(op, path, e));
    grow_to(inner, &mut ws.file_len, high)?;
    let n = spilled + write_pages(inner, &mut ws.file_len, out)?;
    inner.file.sync_data().map_err(io(FileOp::Sync))?;
    let slot = META_A + meta.txn % 2;
    let ps = inner.sealer.page_size;
    let mut buf = vec![0u8; ps];
    meta.encode(&mut buf[PAGE_HEADER_LEN..ps - TAG_LEN]);
    let tag = inner
        .sealer
        .seal(&mut buf, PageKind::Meta, slot, meta.txn)?;
    inner
        .file
        .write_all_at(&buf, slot * p)
        .map_err(io(FileOp::Write))?;
    inner.file.sync_data().map_err(io(FileOp::Sync))?;
    inner.pages_written.fetch_add(n + 1, Ordering::Relaxed);
    Ok(tag)
}

struct Commit<'a> {
    inner: &'a Inner,
    base_pages: u64,
    txn: u64,
    /// Free pages this commit may reuse, highest page first.
    reusable: Vec<FreeEntry>,
    /// Free pages not yet reusable.
    kept: Vec<FreeEntry>,
    /// Pages this commit frees.
    freed: Vec<FreeEntry>,
    high: u64,
    /// Sealed pages not yet written, at most [`SPILL_BYTES`] of them.
    out: Vec<(u64, Vec<u8>)>,
    /// The file's length as grown so far.
    file_len: u64,
    /// Pages already written out by [`Commit::push_out`].
    spilled: u64,
}

type Reps = Vec<(Vec<u8>, ChildRef)>;

impl Commit<'_> {
    fn body_len(&self) -> usize {
        self.inner.sealer.body_len()
    }

    fn alloc(&mut self) -> u64 {
        match self.reusable.pop() {
            Some(e) => e.page,
            None => {
                self.high += 1;
                self.high - 1
            }
        }
    }

    fn free(&mut self, r: ChildRef) {
        self.freed.push(FreeEntry {
            page: r.page,
            tag: r.tag,
            freed: self.txn,
            zeroed: false,
        });
    }

    fn write_page_at(
        &mut self,
        page: u64,
        kind: PageKind,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<ChildRef> {
        let ps = self.inner.sealer.page_size;
        let mut buf = vec![0u8; ps];
        fill(&mut buf[PAGE_HEADER_LEN..ps - TAG_LEN]);
        let tag = self.inner.sealer.seal(&mut buf, kind, page, self.txn)?;
        self.push_out(page, buf)?;
        Ok(ChildRef { page, tag })
    }

    /// Queues a sealed page; past [`SPILL_BYTES`] writes the queue out (no
    /// fsync). A failed write poisons the store, as a failed commit does.
    fn push_out(&mut self, page: u64, buf: Vec<u8>) -> Result<()> {
        self.out.push((page, buf));
        if self.out.len() * self.inner.sealer.page_size < SPILL_BYTES {
            return Ok(());
        }
        let out = mem::take(&mut self.out);
        match write_pages(self.inner, &mut self.file_len, out) {
            Ok(n) => {
                self.spilled += n;
                Ok(())
            }
            Err(e) => {
                self.inner.poisoned.store(true, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    fn write_page(&mut self, kind: PageKind, fill: impl FnOnce(&mut [u8])) -> Result<ChildRef> {
        let page = self.alloc();
        self.write_page_at(page, kind, fill)
    }

    fn apply_root(&mut self, root: Option<ChildRef>, ops: &[Op]) -> Result<Option<ChildRef>> {
        let mut reps = match root {
            None => self.rebuild_leaf(None, ops)?,
            Some(r) => self.apply(r, ops, 0)?,
        };
        while reps.len() > 1 {
            reps = self.build_branches(&reps)?;
        }
        Ok(reps.pop().map(|(_, r)| r))
    }

    fn apply(&mut self, r: ChildRef, ops: &[Op], depth: usize) -> Result<Reps> {
        if depth > MAX_DEPTH {
            return Err(too_deep(r.page));
        }
        let node = self.inner.load_node_to_replace(r, self.base_pages)?;
        self.free(r);
        if node.leaf {
            return self.rebuild_leaf(Some(&node), ops);
        }
        let n = node.len();
        let mut entries: Reps = Vec::with_capacity(n + 4);
        let mut start = 0;
        for i in 0..n {
            let end = if i + 1 < n {
                let sep = node.key(i + 1);
                start + ops[start..].partition_point(|o| o.0.as_slice() < sep)
            } else {
                ops.len()
            };
            if start == end {
                entries.push((node.key(i).to_vec(), node.child(i)));
            } else {
                let reps = self.apply(node.child(i), &ops[start..end], depth + 1)?;
                for (j, (k, c)) in reps.into_iter().enumerate() {
                    // Child i > 0 keeps its separator (every key routed to it
                    // is >= it). The first child also takes keys below its
                    // old first key, so it takes its new first key: the old
                    // one could be above the next new child's first key.
                    let sep = if j == 0 && i > 0 {
                        node.key(i).to_vec()
                    } else {
                        k
                    };
                    debug_assert!(entries.last().is_none_or(|(prev, _)| *prev < sep));
                    entries.push((sep, c));
                }
            }
            start = end;
        }
        if depth == 0 && entries.len() == 1 {
            // A root with one child: the child becomes the root.
            return Ok(entries);
        }
        self.build_branches(&entries)
    }

    /// Groups entry sizes into pages: each group fits, groups are even.
    fn pack(&self, sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
        let cap = self.body_len() - 2;
        let total: usize = sizes.iter().sum();
        let k = total.div_ceil(cap).max(1);
        let target = total.div_ceil(k);
        let mut groups = Vec::with_capacity(k);
        let (mut start, mut cur) = (0, 0);
        for (i, &s) in sizes.iter().enumerate() {
            if i > start && (cur + s > cap || cur >= target) {
                groups.push(start..i);
                start = i;
                cur = 0;
            }
            cur += s;
        }
        if start < sizes.len() {
            groups.push(start..sizes.len());
        }
        groups
    }

    fn build_branches(&mut self, entries: &[(Vec<u8>, ChildRef)]) -> Result<Reps> {
        let sizes: Vec<usize> = entries.iter().map(|(k, _)| 2 + k.len() + 24).collect();
        let mut reps = Vec::new();
        for g in self.pack(&sizes) {
            let group = &entries[g];
            let mut body = Vec::with_capacity(self.body_len());
            body.extend_from_slice(&(group.len() as u16).to_be_bytes());
            for (k, c) in group {
                put_branch(&mut body, k, *c);
            }
            let r =
                self.write_page(PageKind::Branch, |b| b[..body.len()].copy_from_slice(&body))?;
            reps.push((group[0].0.clone(), r));
        }
        Ok(reps)
    }

    fn encode_put(&mut self, arena: &mut Vec<u8>, key: &[u8], val: &[u8]) -> Result<()> {
        if inline_size(key.len(), val.len()) <= self.body_len() / 4 {
            put_inline(arena, key, val);
        } else {
            let first = self.write_overflow(val)?;
            put_overflow(arena, key, val.len() as u64, first);
        }
        Ok(())
    }

    fn rebuild_leaf(&mut self, node: Option<&Node>, ops: &[Op]) -> Result<Reps> {
        let n = node.map_or(0, Node::len);
        let mut arena = Vec::with_capacity(self.body_len() * 2);
        let mut ends: Vec<usize> = Vec::with_capacity(n + ops.len());
        let (mut i, mut j) = (0, 0);
        while i < n || j < ops.len() {
            let ord = match (node, ops.get(j)) {
                (Some(nd), Some(op)) if i < n => nd.key(i).cmp(&op.0),
                (_, Some(_)) => std::cmp::Ordering::Greater,
                _ => std::cmp::Ordering::Less,
            };
            match (ord, node) {
                (std::cmp::Ordering::Less, Some(nd)) => {
                    arena.extend_from_slice(nd.raw(i));
                    ends.push(arena.len());
                    i += 1;
                }
                (std::cmp::Ordering::Equal, Some(nd)) => {
                    if let ValRef::Overflow { len, page, tag } = nd.val(i) {
                        self.free_overflow(ChildRef { page, tag }, len)?;
                    }
                    if let (k, Some(v)) = &ops[j] {
                        self.encode_put(&mut arena, k, v)?;
                        ends.push(arena.len());
                    }
                    i += 1;
                    j += 1;
                }
                _ => {
                    if let (k, Some(v)) = &ops[j] {
                        self.encode_put(&mut arena, k, v)?;
                        ends.push(arena.len());
                    }
                    j += 1;
                }
            }
        }
        let mut sizes = Vec::with_capacity(ends.len());
        let mut prev = 0;
        for &e in &ends {
            sizes.push(e - prev);
            prev = e;
        }
        let mut reps = Vec::new();
        for g in self.pack(&sizes) {
            let from = if g.start == 0 { 0 } else { ends[g.start - 1] };
            let to = ends[g.end - 1];
            let count = (g.end - g.start) as u16;
            let bytes = &arena[from..to];
            let r = self.write_page(PageKind::Leaf, |b| {
                b[..2].copy_from_slice(&count.to_be_bytes());
                b[2..2 + bytes.len()].copy_from_slice(bytes);
            })?;
            reps.push((entry_key(bytes).to_vec(), r));
        }
        Ok(reps)
    }

    fn write_overflow(&mut self, val: &[u8]) -> Result<ChildRef> {
        let cap = self.body_len() - OVERFLOW_HEAD;
        let mut next: Option<ChildRef> = None;
        for chunk in val.chunks(cap).rev() {
            let nx = next.unwrap_or(ChildRef {
                page: 0,
                tag: [0; 16],
            });
            next = Some(self.write_page(PageKind::Overflow, |b| {
                b[0..8].copy_from_slice(&nx.page.to_be_bytes());
                b[8..24].copy_from_slice(&nx.tag);
                b[24..28].copy_from_slice(&(chunk.len() as u32).to_be_bytes());
                b[OVERFLOW_HEAD..OVERFLOW_HEAD + chunk.len()].copy_from_slice(chunk);
            })?);
        }
        next.ok_or_else(|| StoreError::corrupt(0, "empty overflow value"))
    }

    /// Frees an overflow chain, authenticating each page to find the next.
    fn free_overflow(&mut self, first: ChildRef, len: u64) -> Result<()> {
        let ps = self.inner.sealer.page_size;
        let mut buf = vec![0u8; ps];
        let mut next = Some(first);
        let mut hops = 0;
        let max_hops = len.div_ceil(OVERFLOW_HEAD as u64).min(self.base_pages);
        while let Some(r) = next {
            hops += 1;
            if hops > max_hops {
                return Err(StoreError::corrupt(r.page, "overflow chain loops"));
            }
            self.inner.read_raw(r.page, self.base_pages, &mut buf)?;
            self.inner
                .sealer
                .open_expected(&mut buf, r.page, &r.tag, &[PageKind::Overflow])?;
            let (n, _) = overflow_body(&buf[PAGE_HEADER_LEN..ps - TAG_LEN], r.page)?;
            self.free(r);
            next = n;
        }
        Ok(())
    }

    /// Zeroes every reusable free page; returns how many were not yet
    /// recorded as zeroed. Pages already recorded as zeroed are written
    /// with zeros again: a commit that died before its meta page may have
    /// written into them since.
    fn zero_reusable(&mut self) -> Result<u64> {
        let ps = self.inner.sealer.page_size;
        let mut n = 0;
        for i in 0..self.reusable.len() {
            let Some(e) = self.reusable.get_mut(i) else {
                break;
            };
            if !e.zeroed {
                n += 1;
            }
            e.zeroed = true;
            e.tag = [0; 16];
            let page = e.page;
            self.push_out(page, vec![0u8; ps])?;
        }
        Ok(n)
    }

    /// Frees the old free-list pages and writes the new list; returns its
    /// head, all entries and the chain.
    #[allow(clippy::type_complexity)]
    fn build_free_list(
        &mut self,
        old_chain: &[ChildRef],
        zero: bool,
    ) -> Result<(Option<ChildRef>, Vec<FreeEntry>, Vec<ChildRef>, u64)> {
        for r in old_chain {
            self.free(*r);
        }
        let per = free_per_page(self.body_len());
        let mut pages = Vec::new();
        loop {
            let total = self.reusable.len() + self.kept.len() + self.freed.len();
            if pages.len() >= total.div_ceil(per) {
                break;
            }
            pages.push(self.alloc());
        }
        let zeroed = if zero { self.zero_reusable()? } else { 0 };
        let mut all: Vec<FreeEntry> =
            Vec::with_capacity(self.reusable.len() + self.kept.len() + self.freed.len());
        all.extend(self.reusable.iter().rev());
        all.extend(self.kept.iter());
        all.extend(self.freed.iter());
        all.sort_unstable_by_key(|e| e.page);
        let mut next: Option<ChildRef> = None;
        let mut chain = Vec::with_capacity(pages.len());
        let chunks: Vec<&[FreeEntry]> = all.chunks(per).collect();
        debug_assert!(chunks.len() <= pages.len());
        // Every allocated page is linked into the chain: taking reusable
        // pages shrinks the list while allocating, which can leave a page
        // more than the entries need; it goes in as an empty chunk (the
        // next commit frees it with the rest of the old chain).
        for (i, &page) in pages.iter().enumerate().rev() {
            let chunk = chunks.get(i).copied().unwrap_or(&[]);
            let nx = next;
            let r = self.write_page_at(page, PageKind::FreeList, |b| encode_free(b, nx, chunk))?;
            chain.push(r);
            next = Some(r);
        }
        chain.reverse();
        Ok((next, all, chain, zeroed))
    }
}
