//! The write transaction and the copy-on-write commit.

use std::collections::BTreeMap;
use std::mem;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use sealkv_fileio::{FileError, FileOp};

use crate::error::{Result, StoreError};
use crate::format::MAX_DEPTH;
use crate::format::{MAX_APP_META, MAX_VALUE_LEN, META_A, PAGE_HEADER_LEN, PageKind, TAG_LEN, Tag};
use crate::level::{Items, min_pages, pack};
use crate::meta::{FreeEntry, Meta, encode_free, free_per_page};
use crate::node::{ChildRef, Node, ValRef, inline_size, put_branch, put_inline, put_overflow};
use crate::read::{too_deep, tree_get};
use crate::store::{Inner, OVERFLOW_HEAD, Snapshot, Store, WriterState};

mod relocate;

pub use relocate::CompactReport;

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
    /// What else this commit does (compaction's steps).
    mode: CommitMode,
}

/// What a commit does besides its puts and deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum CommitMode {
    /// Nothing else.
    #[default]
    Plain,
    /// Moves the live pages that lie past the file's live size into free
    /// slots below it (see `relocate.rs`).
    Relocate,
    /// Cuts the file's free tail exactly, however small.
    ShrinkExact,
}

/// What a commit did.
struct Committed {
    txn: u64,
    /// Free pages it zeroed.
    zeroed: u64,
    /// Pages it moved toward the start of the file.
    moved: u64,
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
    /// Lets tests reach the fork check without forking: the store takes
    /// itself for opened by process `pid`.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn pretend_opened_by(&self, pid: u32) {
        self.inner.opened_by.pretend(pid);
    }

    /// Starts the write transaction, waiting while another thread holds it.
    pub fn write(&self) -> Result<WriteTxn<'_>> {
        let inner = &self.inner;
        if inner.read_only {
            return Err(StoreError::ReadOnly);
        }
        if let Err(f) = inner.opened_by.check() {
            return Err(StoreError::ForkedProcess {
                opened_by: f.opened_by,
                current: f.current,
            });
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
            mode: CommitMode::Plain,
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
        Ok(w.commit_inner()?.zeroed)
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
        Ok(self.commit_inner()?.txn)
    }

    /// [`commit`](WriteTxn::commit), also returning how many free pages it
    /// zeroed (see [`WriteTxn::zero_free_pages_on_commit`]).
    pub fn commit_counting_zeroed(self) -> Result<(u64, u64)> {
        let done = self.commit_inner()?;
        Ok((done.txn, done.zeroed))
    }

    fn commit_inner(mut self) -> Result<Committed> {
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
            moved: 0,
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
            let root = if self.mode == CommitMode::Relocate {
                let from = c.relocation_target(&ws.free);
                c.relocate_root(meta0.root, from)?
            } else if ops.is_empty() {
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
        let moved = c.moved;
        if self.zero_free {
            // The file past the last page holds nothing live, but a commit
            // that died before its meta page may have left pages there:
            // cut it away and grow it back (the space reads as zeros). The
            // cut stops at the base meta's page count even when this commit
            // counts fewer pages (its free tail given back): until this
            // commit's meta page is durable, the base is the state an open
            // finds, and it must stay whole. The next zeroing commit, whose
            // base is this one, cuts the rest.
            let p = inner.sealer.page_size as u64;
            let io = |op| {
                let path = &inner.path;
                move |e| StoreError::Io(FileError::new(op, path, e))
            };
            let floor = high.max(meta0.page_count);
            if ws.file_len > floor * p {
                let keep = ws.file_len;
                let cut = inner
                    .file
                    .set_len(floor * p)
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
        // A reader of a snapshot older than the base may still read pages
        // past both slots' page counts (its free pages: `verify`, backups):
        // the cut waits for a commit without one. Readers that start now
        // see the base or this commit, both within the cut.
        if inner.oldest_reader().is_none_or(|o| o >= meta0.txn) {
            let exact = self.mode == CommitMode::ShrinkExact;
            shrink_file(&inner, &mut ws, high.max(meta0.page_count), exact);
        }
        ws.free = free_all;
        ws.chain = chain;
        *inner.current.write() = Arc::new(Snapshot { meta, meta_tag });
        inner.commits.fetch_add(1, Ordering::Relaxed);
        Ok(Committed { txn, zeroed, moved })
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

/// Gives the file's free tail back once a commit's meta page is durable:
/// cuts the file to `keep` pages (the larger of the two meta slots' page
/// counts, so the older slot's state stays whole), when that frees more
/// than the next growth would take back (an eighth of the file, at least
/// 64 pages: no cutting and growing on every commit). The commit is
/// durable already and the pages cut hold nothing any state needs, so a
/// failed cut (or a crash before it reaches the disk) only leaves the file
/// longer: the next commit tries again. A failure is counted
/// (`StoreStats::tail_cut_failures`), not returned. Not fsynced, for the
/// same reason. `exact` cuts whatever is free (a compaction's last step).
fn shrink_file(inner: &Inner, ws: &mut WriterState, keep: u64, exact: bool) {
    let p = inner.sealer.page_size as u64;
    let keep_len = keep * p;
    let slack = if exact {
        0
    } else {
        (ws.file_len / 8).max(64 * p)
    };
    if ws.file_len <= keep_len + slack {
        return;
    }
    match inner.file.set_len(keep_len) {
        Ok(()) => ws.file_len = keep_len,
        Err(_) => {
            inner.tail_cut_failures.fetch_add(1, Ordering::Relaxed);
        }
    }
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
    /// Pages moved toward the start of the file (a relocation commit).
    moved: u64,
}

type Reps = Vec<(Vec<u8>, ChildRef)>;

/// Untouched neighbours a run of rewritten pages may pull in to stay full
/// (a split then takes room from up to this many neighbours before it adds
/// a page: a split of one full page and three full neighbours leaves five
/// pages four-fifths full, where a split of the page alone leaves two
/// half-full ones). Measured on random inserts one to a hundred a commit:
/// leaves about 86% full on average with two, 88% with three.
const MAX_NEIGHBOURS: usize = 3;

/// Where a rebuilt run of children ended.
struct RunEnd {
    /// The first child after the run.
    end: usize,
    /// Whether the run's last entries were appended past every old key.
    appended: bool,
}

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
        let (items, appended) = match root {
            None => self.merge_leaf(None, ops)?,
            Some(r) => self.expand(r, ops, 0)?,
        };
        if let Items::Branch(v) = &items
            && let [(_, only)] = v.as_slice()
        {
            // A root with one child: the child becomes the root.
            return Ok(Some(*only));
        }
        let mut reps = self.write_items(&items, appended)?;
        while reps.len() > 1 {
            reps = self.write_items(&Items::Branch(reps), appended)?;
        }
        Ok(reps.pop().map(|(_, r)| r))
    }

    /// The entries of page `r` after `ops`: a leaf's entries merged with
    /// them; a branch's children, each run of children the ops reach
    /// rebuilt into new pages (with neighbours pulled in, see
    /// [`Commit::rebuild_run`]). Frees `r`. Also says whether the last
    /// entries were appended past every old one.
    fn expand(&mut self, r: ChildRef, ops: &[Op], depth: usize) -> Result<(Items, bool)> {
        if depth > MAX_DEPTH {
            return Err(too_deep(r.page));
        }
        let node = self.inner.load_node_to_replace(r, self.base_pages)?;
        self.free(r);
        if node.leaf {
            return self.merge_leaf(Some(&node), ops);
        }
        let n = node.len();
        // The ops each child routes: child i takes ops[cut[i]..cut[i + 1]].
        let mut cut = Vec::with_capacity(n + 1);
        cut.push(0);
        for i in 1..n {
            let from = cut[i - 1];
            let sep = node.key(i);
            cut.push(from + ops[from..].partition_point(|o| o.0.as_slice() < sep));
        }
        cut.push(ops.len());
        let touched = |i: usize| cut[i] < cut[i + 1];
        // The new entries, each with the child it keeps unchanged (if so).
        let mut out: Vec<(Vec<u8>, ChildRef, Option<usize>)> = Vec::with_capacity(n + 4);
        let mut appended = false;
        let mut i = 0;
        while i < n {
            if !touched(i) {
                out.push((node.key(i).to_vec(), node.child(i), Some(i)));
                i += 1;
                continue;
            }
            let run = self.rebuild_run(&node, i, &cut, ops, &mut out, depth)?;
            i = run.end;
            appended = run.appended && i == n;
        }
        let entries = out.into_iter().map(|(k, c, _)| (k, c)).collect();
        Ok((Items::Branch(entries), appended))
    }

    /// Rebuilds the run of children of `node` starting at `first` (which
    /// the ops reach) and every touched child after it, pushing the new
    /// pages' entries to `out`. Pulls in untouched neighbours (the next
    /// one, else the previous one, which `out` gives back) while the run
    /// would split or be thin, up to [`MAX_NEIGHBOURS`]: a split then
    /// moves entries into a neighbour's room instead of adding a half-empty
    /// page, and a page thinned by deletes merges with its neighbour. Runs
    /// that end in entries appended past every old key are packed
    /// greedily and pull in nothing.
    fn rebuild_run(
        &mut self,
        node: &Node,
        first: usize,
        cut: &[usize],
        ops: &[Op],
        out: &mut Vec<(Vec<u8>, ChildRef, Option<usize>)>,
        depth: usize,
    ) -> Result<RunEnd> {
        let n = node.len();
        let cap = self.body_len() - 2;
        let mut start = first;
        let mut end = first;
        let mut items = Items::leaf();
        let mut appended = false;
        let mut pulled = 0;
        loop {
            while end < n && cut[end] < cut[end + 1] {
                let (mut more, app) =
                    self.expand(node.child(end), &ops[cut[end]..cut[end + 1]], depth + 1)?;
                if end > 0 {
                    more.set_first_key(node.key(end));
                }
                items.extend(more, node.child(end).page)?;
                appended = app;
                end += 1;
            }
            let total = items.total();
            let pages = min_pages(&items.sizes(), cap);
            let split = pages > end - start;
            let thin = total * 2 < pages * cap;
            if appended || !(split || thin) || pulled >= MAX_NEIGHBOURS {
                break;
            }
            if end < n {
                let more = self.neighbour(node, end, depth)?;
                items.extend(more, node.child(end).page)?;
                end += 1;
            } else if start > 0 && out.last().is_some_and(|e| e.2 == Some(start - 1)) {
                out.pop();
                start -= 1;
                let mut before = self.neighbour(node, start, depth)?;
                before.extend(items, node.child(start).page)?;
                items = before;
            } else {
                break;
            }
            pulled += 1;
        }
        for (j, (k, r)) in self.write_items(&items, appended)?.into_iter().enumerate() {
            // The run's first page keeps the separator the parent had for
            // it (the first child of a node takes its new first key: it
            // also takes keys below the old one).
            let sep = if j == 0 && start > 0 {
                node.key(start).to_vec()
            } else {
                k
            };
            debug_assert!(out.last().is_none_or(|(prev, _, _)| *prev < sep));
            out.push((sep, r, None));
        }
        Ok(RunEnd { end, appended })
    }

    /// The entries of `node`'s untouched child `i`, which a run pulls in
    /// (its page is freed: it is rewritten with the run).
    fn neighbour(&mut self, node: &Node, i: usize, depth: usize) -> Result<Items> {
        let r = node.child(i);
        if depth + 1 > MAX_DEPTH {
            return Err(too_deep(r.page));
        }
        let child = self.inner.load_node_to_replace(r, self.base_pages)?;
        self.free(r);
        let mut items = Items::of(&child);
        if i > 0 {
            items.set_first_key(node.key(i));
        }
        Ok(items)
    }

    /// Writes `items` into new pages of their level (packed greedily or
    /// evenly, see [`pack`]); returns each page with its first key.
    fn write_items(&mut self, items: &Items, greedy: bool) -> Result<Reps> {
        let cap = self.body_len() - 2;
        let groups = pack(&items.sizes(), cap, greedy);
        let mut reps = Vec::with_capacity(groups.len());
        for g in groups {
            let count = (g.end - g.start) as u16;
            let first = items.key(g.start).to_vec();
            let r = match items {
                Items::Leaf { arena, ends } => {
                    let from = if g.start == 0 { 0 } else { ends[g.start - 1] };
                    let bytes = &arena[from..ends[g.end - 1]];
                    self.write_page(PageKind::Leaf, |b| {
                        b[..2].copy_from_slice(&count.to_be_bytes());
                        b[2..2 + bytes.len()].copy_from_slice(bytes);
                    })?
                }
                Items::Branch(v) => {
                    let mut body = Vec::with_capacity(self.body_len());
                    body.extend_from_slice(&count.to_be_bytes());
                    for (k, c) in &v[g] {
                        put_branch(&mut body, k, *c);
                    }
                    self.write_page(PageKind::Branch, |b| {
                        b[..body.len()].copy_from_slice(&body);
                    })?
                }
            };
            reps.push((first, r));
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

    /// A leaf's entries (none for a new tree) merged with `ops`; also
    /// whether the last entries were appended past every old one.
    fn merge_leaf(&mut self, node: Option<&Node>, ops: &[Op]) -> Result<(Items, bool)> {
        let n = node.map_or(0, Node::len);
        let mut arena = Vec::with_capacity(self.body_len() * 2);
        let mut ends: Vec<usize> = Vec::with_capacity(n + ops.len());
        let (mut i, mut j) = (0, 0);
        // Whether the last entry written came from an op placed after
        // every old entry.
        let mut appended = false;
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
                    appended = false;
                    i += 1;
                }
                (std::cmp::Ordering::Equal, Some(nd)) => {
                    if let ValRef::Overflow { len, page, tag } = nd.val(i) {
                        self.free_overflow(ChildRef { page, tag }, len)?;
                    }
                    if let (k, Some(v)) = &ops[j] {
                        self.encode_put(&mut arena, k, v)?;
                        ends.push(arena.len());
                        appended = false;
                    }
                    i += 1;
                    j += 1;
                }
                _ => {
                    if let (k, Some(v)) = &ops[j] {
                        self.encode_put(&mut arena, k, v)?;
                        ends.push(arena.len());
                        appended = i == n;
                    }
                    j += 1;
                }
            }
        }
        Ok((Items::Leaf { arena, ends }, appended))
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
        for r in self.overflow_chain(first, len)? {
            self.free(r);
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

    /// Lowers the page count past the reusable free pages that end the
    /// file: they leave the free list, and the file can be cut there (see
    /// [`shrink_file`]). Only reusable pages go: no meta slot's tree and no
    /// reader's snapshot holds them.
    fn trim_free_tail(&mut self) {
        // `reusable` is sorted highest page first.
        let mut cut = 0;
        while self
            .reusable
            .get(cut)
            .is_some_and(|e| e.page + 1 == self.high)
        {
            self.high -= 1;
            cut += 1;
        }
        self.reusable.drain(..cut);
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
        self.trim_free_tail();
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
