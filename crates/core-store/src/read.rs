//! Read snapshots: point lookups and ordered ranges over one committed root.

use std::borrow::Cow;
use std::ops::Bound;
use std::sync::Arc;

use crate::error::{Result, StoreError};
use crate::format::MAX_DEPTH;
use crate::node::{ChildRef, Node, Probe, ValRef};
use crate::store::{Inner, Snapshot, Store};

/// A read snapshot: a consistent view of one committed transaction.
///
/// Readers never block the writer nor each other. While a `ReadTxn` lives,
/// the pages of its tree are not reused. It is `Send + Sync` and may outlive
/// the `Store` handle it came from.
pub struct ReadTxn {
    inner: Arc<Inner>,
    snap: Arc<Snapshot>,
    guard: Arc<ReaderGuard>,
}

/// Keeps a snapshot registered (its pages from reuse) while a `ReadTxn` or
/// any `Range` made from it lives.
struct ReaderGuard {
    inner: Arc<Inner>,
    txn: u64,
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        self.inner.unregister_reader(self.txn);
    }
}

impl std::fmt::Debug for ReadTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadTxn").field("txn", &self.txn()).finish()
    }
}

impl Store {
    /// Opens a read snapshot at the last committed transaction.
    pub fn read(&self) -> ReadTxn {
        let snap = self.inner.register_reader();
        ReadTxn {
            inner: self.inner.clone(),
            guard: Arc::new(ReaderGuard {
                inner: self.inner.clone(),
                txn: snap.meta.txn,
            }),
            snap,
        }
    }
}

/// A read snapshot borrowed from its [`Store`], for point lookups: a
/// [`ReadTxn`] without handles of its own, so opening and dropping one
/// allocates nothing. While it lives, the pages of its tree are not reused.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use std::{path::Path, sync::Arc};
/// # use sealkv_core_store::{Store, StoreOptions};
/// # use sealkv_fileio::{SimVfs, Vfs};
/// # let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new());
/// # vfs.create_dir_all(Path::new("/db"))?;
/// # let (store, _) = Store::create(vfs, Path::new("/db/data"), StoreOptions::default())?;
/// let mut w = store.write()?;
/// w.put(b"k", b"v")?;
/// w.commit()?;
/// let pinned = store.pin();
/// assert_eq!(pinned.get(b"k")?.as_deref(), Some(&b"v"[..]));
/// # Ok(())
/// # }
/// ```
pub struct PinnedRead<'a> {
    inner: &'a Inner,
    snap: Arc<Snapshot>,
}

impl Drop for PinnedRead<'_> {
    fn drop(&mut self) {
        self.inner.unregister_reader(self.snap.meta.txn);
    }
}

impl std::fmt::Debug for PinnedRead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedRead")
            .field("txn", &self.txn())
            .finish()
    }
}

impl Store {
    /// Opens a [`PinnedRead`] at the last committed transaction.
    pub fn pin(&self) -> PinnedRead<'_> {
        PinnedRead {
            inner: &self.inner,
            snap: self.inner.register_reader(),
        }
    }
}

impl PinnedRead<'_> {
    /// The transaction this snapshot shows.
    pub fn txn(&self) -> u64 {
        self.snap.meta.txn
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        tree_get(
            self.inner,
            self.snap.meta.root,
            self.snap.meta.page_count,
            key,
        )
    }
}

/// A key-value pair.
pub type Entry = (Vec<u8>, Vec<u8>);

/// What one level of a point lookup found.
enum Step {
    /// The child to descend to.
    Child(ChildRef),
    /// The key's value, copied out of the leaf.
    Inline(Vec<u8>),
    /// The key's value lives in an overflow chain of `len` bytes.
    Overflow(ChildRef, u64),
    /// The key is not in the tree.
    Absent,
}

pub(crate) fn tree_get(
    inner: &Inner,
    root: Option<ChildRef>,
    page_count: u64,
    key: &[u8],
) -> Result<Option<Vec<u8>>> {
    let Some(mut r) = root else { return Ok(None) };
    for _ in 0..=MAX_DEPTH {
        // Each node is read in place (a cached one under its cache shard's
        // lock, so the step touches no other cache entry: an overflow value
        // is read after it).
        let step = inner.visit_node(r, page_count, |node| {
            if !node.leaf {
                return Step::Child(node.child(node.route(key)));
            }
            match node.search(key).map(|i| node.val(i)) {
                Ok(ValRef::Inline(v)) => Step::Inline(v.to_vec()),
                Ok(ValRef::Overflow { len, page, tag }) => {
                    Step::Overflow(ChildRef { page, tag }, len)
                }
                Err(_) => Step::Absent,
            }
        })?;
        match step {
            Step::Child(c) => r = c,
            Step::Inline(v) => return Ok(Some(v)),
            Step::Overflow(first, len) => {
                return inner.read_overflow(first, len, page_count).map(Some);
            }
            Step::Absent => return Ok(None),
        }
    }
    Err(too_deep(r.page))
}

/// The error for a descent past [`MAX_DEPTH`].
pub(crate) fn too_deep(page: u64) -> StoreError {
    StoreError::corrupt(page, "tree deeper than the limit (a cycle?)")
}

/// Fails once a path holds more than [`MAX_DEPTH`] levels.
fn check_depth(path: &[(Node, usize)], next: u64) -> Result<()> {
    if path.len() > MAX_DEPTH {
        return Err(too_deep(next));
    }
    Ok(())
}

impl ReadTxn {
    /// The transaction this snapshot shows.
    pub fn txn(&self) -> u64 {
        self.snap.meta.txn
    }

    /// The application metadata committed with this transaction.
    pub fn app_meta(&self) -> &[u8] {
        &self.snap.meta.app_meta
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        tree_get(
            &self.inner,
            self.snap.meta.root,
            self.snap.meta.page_count,
            key,
        )
    }

    /// The entries with `lower <= key < upper` (per the bounds), in order;
    /// the iterator is double-ended.
    pub fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Range {
        Range {
            inner: self.inner.clone(),
            root: self.snap.meta.root,
            page_count: self.snap.meta.page_count,
            lower: lower.map(<[u8]>::to_vec),
            upper: upper.map(<[u8]>::to_vec),
            front: None,
            back: None,
            done: self.snap.meta.root.is_none(),
            _guard: self.guard.clone(),
            front_yielded: false,
            back_yielded: false,
            keys_only: false,
        }
    }

    /// [`range`](Self::range) yielding keys with empty values: no value is
    /// copied and no overflow page is read (what a bulk delete needs to
    /// list the keys it removes).
    pub fn range_keys(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Range {
        Range {
            keys_only: true,
            ..self.range(lower, upper)
        }
    }

    /// Every entry, in order.
    pub fn iter(&self) -> Range {
        self.range(Bound::Unbounded, Bound::Unbounded)
    }
}

/// Point lookups in one [`ReadTxn`] that keep the path the last one took:
/// the next lookup checks, level by level from the root, whether its key
/// still routes through the same child (one or two key comparisons a
/// level), and searches only from the first level where it does not. A
/// run of ascending keys that lie close together (the records an index
/// range names, in key order) is found mostly from the leaf or its parent
/// instead of from the root. Keys may come in any order: one that routes
/// elsewhere descends from where its path leaves the last one's.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use std::{path::Path, sync::Arc};
/// # use sealkv_core_store::{Store, StoreOptions};
/// # use sealkv_fileio::{SimVfs, Vfs};
/// # let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new());
/// # vfs.create_dir_all(Path::new("/db"))?;
/// # let (store, _) = Store::create(vfs, Path::new("/db/data"), StoreOptions::default())?;
/// let mut w = store.write()?;
/// w.put(b"a", b"1")?;
/// w.put(b"c", b"3")?;
/// w.commit()?;
/// let snapshot = store.read();
/// let mut finder = snapshot.finder();
/// assert_eq!(finder.get(b"a")?.as_deref(), Some(&b"1"[..]));
/// assert_eq!(finder.get(b"b")?, None);
/// assert_eq!(finder.get(b"c")?.as_deref(), Some(&b"3"[..]));
/// # Ok(())
/// # }
/// ```
pub struct Finder<'a> {
    txn: &'a ReadTxn,
    /// The last lookup's path: each branch with the child it took, then
    /// the leaf (its index unused).
    path: Vec<(Node, usize)>,
}

impl std::fmt::Debug for Finder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finder")
            .field("txn", &self.txn.txn())
            .field("depth", &self.path.len())
            .finish()
    }
}

impl ReadTxn {
    /// A [`Finder`] for point lookups in this snapshot.
    pub fn finder(&self) -> Finder<'_> {
        Finder {
            txn: self,
            path: Vec::new(),
        }
    }
}

impl Finder<'_> {
    /// The value of `key`, if present: what [`ReadTxn::get`] gives.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut value = Vec::new();
        Ok(self.get_into(key, &mut value)?.then_some(value))
    }

    /// [`Finder::get`] into a buffer the caller keeps: `out` is cleared,
    /// then holds the value of `key` if it is present (`true`) and stays
    /// empty if not (`false`). A run of lookups through one buffer
    /// allocates only while the buffer grows.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use std::{path::Path, sync::Arc};
    /// # use sealkv_core_store::{Store, StoreOptions};
    /// # use sealkv_fileio::{SimVfs, Vfs};
    /// # let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new());
    /// # vfs.create_dir_all(Path::new("/db"))?;
    /// # let (store, _) = Store::create(vfs, Path::new("/db/data"), StoreOptions::default())?;
    /// let mut w = store.write()?;
    /// w.put(b"a", b"1")?;
    /// w.commit()?;
    /// let snapshot = store.read();
    /// let mut finder = snapshot.finder();
    /// let mut value = Vec::new();
    /// assert!(finder.get_into(b"a", &mut value)?);
    /// assert_eq!(value, b"1");
    /// assert!(!finder.get_into(b"b", &mut value)?);
    /// assert!(value.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_into(&mut self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        let meta = &self.txn.snap.meta;
        let Some(root) = meta.root else {
            return Ok(false);
        };
        let page_count = meta.page_count;
        // Level by level from the root, the kept path's branches while
        // each still routes `key` through the child it took; the first
        // that does not picks its child again, looking a few children on
        // first, and the path below it is dropped.
        let mut rerouted_to = None;
        for (depth, (node, i)) in self.path.iter_mut().enumerate() {
            if node.leaf {
                break;
            }
            if let Err(j) = reroute(node, *i, &node.probe(key)) {
                *i = j;
                rerouted_to = Some((depth, node.child(j)));
                break;
            }
        }
        let mut next = match rerouted_to {
            Some((depth, child)) => {
                self.path.truncate(depth + 1);
                child
            }
            // Every branch routes `key` as before: the leaf the path holds
            // is the one to search (the very node the last lookup read and
            // authenticated, of this snapshot), without a cache lookup.
            None => match self.path.last() {
                Some((leaf, _)) if leaf.leaf => return self.found_in(leaf, key, page_count, out),
                // A descent that failed part way: on from its last branch.
                Some((branch, i)) => branch.child(*i),
                None => root,
            },
        };
        loop {
            check_depth(&self.path, next.page)?;
            let node = self.txn.inner.load_node(next, page_count)?;
            if node.leaf {
                let found = self.found_in(&node, key, page_count, out);
                self.path.push((node, 0));
                return found;
            }
            let i = node.route(key);
            next = node.child(i);
            self.path.push((node, i));
        }
    }

    /// Copies the value of `key` in `leaf` to `out` (empty before), if
    /// the leaf holds it.
    #[inline]
    fn found_in(
        &self,
        leaf: &Node,
        key: &[u8],
        page_count: u64,
        out: &mut Vec<u8>,
    ) -> Result<bool> {
        let Ok(i) = leaf.search(key) else {
            return Ok(false);
        };
        match leaf.val(i) {
            // An empty buffer (a `get`) is allocated to the value's size
            // at once.
            ValRef::Inline(v) if out.capacity() == 0 => *out = v.to_vec(),
            ValRef::Inline(v) => out.extend_from_slice(v),
            ValRef::Overflow { len, page, tag } => {
                *out = self
                    .txn
                    .inner
                    .read_overflow(ChildRef { page, tag }, len, page_count)?;
            }
        }
        Ok(true)
    }
}

/// Children a [`Finder`] looks on past the one its last lookup took
/// before it searches the branch.
const LOOK_ON: usize = 4;

/// Whether child `i` of branch `node`, which routed the last key, routes
/// the probed key too (`Ok(i)`), else the child that does (`Err`): one of
/// the next few if the key lies past child `i` (a run of ascending keys
/// moves on a child or two at a time), else found by a search. Child `i`
/// takes the keys from its key (every smaller one too, for the first) up
/// to the next child's key (every larger one too, for the last).
#[inline]
fn reroute(node: &Node, i: usize, key: &Probe<'_>) -> std::result::Result<usize, usize> {
    if i > 0 && node.cmp_probe(i, key).is_gt() {
        return Err(node.route_probe(key));
    }
    // `key` is at or past child `i`'s first key: child `j` routes it if
    // it lies below child `j + 1`'s (each step one comparison).
    for j in i..node.len().min(i + 1 + LOOK_ON) {
        if j + 1 >= node.len() || node.cmp_probe(j + 1, key).is_gt() {
            return if j == i { Ok(i) } else { Err(j) };
        }
    }
    Err(node.route_probe(key))
}

/// An ordered, double-ended iterator over a range of a snapshot. Items are
/// `Result`s: after an error the iterator ends. It keeps its snapshot's
/// pages from reuse even after the `ReadTxn` is dropped.
pub struct Range {
    inner: Arc<Inner>,
    root: Option<ChildRef>,
    page_count: u64,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    /// Path to the next entry from the front: (node, index).
    front: Option<Vec<(Node, usize)>>,
    /// Path to one past the next entry from the back.
    back: Option<Vec<(Node, usize)>>,
    done: bool,
    _guard: Arc<ReaderGuard>,
    /// The front has yielded an entry: the last one is the entry before
    /// its path's position (the leaf it sits in is held by the path).
    front_yielded: bool,
    /// The back has yielded an entry: the last one is at its path's
    /// position.
    back_yielded: bool,
    /// Yield keys only, each with an empty value.
    keys_only: bool,
}

impl std::fmt::Debug for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Range")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Range {
    fn seek_front(&self) -> Result<Vec<(Node, usize)>> {
        let mut path = Vec::new();
        let Some(mut r) = self.root else {
            return Ok(path);
        };
        loop {
            check_depth(&path, r.page)?;
            let node = self.inner.load_node(r, self.page_count)?;
            if node.leaf {
                let i = match &self.lower {
                    Bound::Unbounded => 0,
                    Bound::Included(k) => node.search(k).unwrap_or_else(|i| i),
                    Bound::Excluded(k) => match node.search(k) {
                        Ok(i) => i + 1,
                        Err(i) => i,
                    },
                };
                path.push((node, i));
                return Ok(path);
            }
            let i = match &self.lower {
                Bound::Unbounded => 0,
                Bound::Included(k) | Bound::Excluded(k) => node.route(k),
            };
            r = node.child(i);
            path.push((node, i));
        }
    }

    fn seek_back(&self) -> Result<Vec<(Node, usize)>> {
        let mut path = Vec::new();
        let Some(mut r) = self.root else {
            return Ok(path);
        };
        loop {
            check_depth(&path, r.page)?;
            let node = self.inner.load_node(r, self.page_count)?;
            if node.leaf {
                let i = match &self.upper {
                    Bound::Unbounded => node.len(),
                    Bound::Excluded(k) => node.search(k).unwrap_or_else(|i| i),
                    Bound::Included(k) => match node.search(k) {
                        Ok(i) => i + 1,
                        Err(i) => i,
                    },
                };
                path.push((node, i));
                return Ok(path);
            }
            let i = match &self.upper {
                Bound::Unbounded => node.len() - 1,
                Bound::Included(k) | Bound::Excluded(k) => node.route(k),
            };
            r = node.child(i);
            path.push((node, i));
        }
    }

    /// Moves a front path to the first entry of the next leaf.
    fn advance_front(&self, path: &mut Vec<(Node, usize)>) -> Result<bool> {
        path.pop();
        loop {
            let Some((node, i)) = path.last_mut() else {
                return Ok(false);
            };
            if *i + 1 < node.len() {
                *i += 1;
                let mut r = node.child(*i);
                loop {
                    check_depth(path, r.page)?;
                    let n = self.inner.load_node(r, self.page_count)?;
                    let leaf = n.leaf;
                    if !leaf {
                        r = n.child(0);
                    }
                    path.push((n, 0));
                    if leaf {
                        return Ok(true);
                    }
                }
            }
            path.pop();
        }
    }

    /// Moves a back path to one past the last entry of the previous leaf.
    fn advance_back(&self, path: &mut Vec<(Node, usize)>) -> Result<bool> {
        path.pop();
        loop {
            let Some((node, i)) = path.last_mut() else {
                return Ok(false);
            };
            if *i > 0 {
                *i -= 1;
                let mut r = node.child(*i);
                loop {
                    check_depth(path, r.page)?;
                    let n = self.inner.load_node(r, self.page_count)?;
                    if n.leaf {
                        let len = n.len();
                        path.push((n, len));
                        return Ok(true);
                    }
                    let last = n.len() - 1;
                    r = n.child(last);
                    path.push((n, last));
                }
            }
            path.pop();
        }
    }

    fn past_upper(&self, k: &[u8]) -> bool {
        match &self.upper {
            Bound::Unbounded => false,
            Bound::Included(u) => k > u.as_slice(),
            Bound::Excluded(u) => k >= u.as_slice(),
        }
    }

    fn before_lower(&self, k: &[u8]) -> bool {
        match &self.lower {
            Bound::Unbounded => false,
            Bound::Included(l) => k < l.as_slice(),
            Bound::Excluded(l) => k <= l.as_slice(),
        }
    }

    /// Moves the front one entry on: `false` (and the range done) at the
    /// end; then the entry is [`Range::front_entry`], which
    /// [`Range::visit_entry`] checks against the bounds.
    #[inline]
    fn step_front(&mut self) -> Result<bool> {
        if self.front.is_none() {
            self.front = Some(self.seek_front()?);
        }
        let mut path = self.front.take().unwrap_or_default();
        let out = self.next_front_in(&mut path);
        self.front = Some(path);
        let moved = matches!(out, Ok(true));
        self.front_yielded |= moved;
        self.done |= !moved;
        out
    }

    /// Moves the back one entry back, like [`Range::step_front`]; then
    /// the entry is [`Range::back_entry`].
    #[inline]
    fn step_back(&mut self) -> Result<bool> {
        if self.back.is_none() {
            self.back = Some(self.seek_back()?);
        }
        let mut path = self.back.take().unwrap_or_default();
        let out = self.next_back_in(&mut path);
        self.back = Some(path);
        let moved = matches!(out, Ok(true));
        self.back_yielded |= moved;
        self.done |= !moved;
        out
    }

    /// Moves the front `path` one entry on: `false` at the end.
    #[inline]
    fn next_front_in(&self, path: &mut Vec<(Node, usize)>) -> Result<bool> {
        loop {
            let Some((node, i)) = path.last_mut() else {
                return Ok(false);
            };
            if *i < node.len() {
                *i += 1;
                break;
            }
            if !self.advance_front(path)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Moves the back `path` one entry back: `false` at the start.
    #[inline]
    fn next_back_in(&self, path: &mut Vec<(Node, usize)>) -> Result<bool> {
        loop {
            let Some((_, i)) = path.last_mut() else {
                return Ok(false);
            };
            if *i > 0 {
                *i -= 1;
                break;
            }
            if !self.advance_back(path)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The entry the front stepped onto last, in place in its leaf.
    #[inline]
    fn front_entry(&self) -> Option<(&[u8], ValRef<'_>)> {
        let (node, i) = self.front.as_ref()?.last()?;
        Some(node.entry(i.checked_sub(1)?))
    }

    /// The entry the back stepped onto last, in place in its leaf.
    #[inline]
    fn back_entry(&self) -> Option<(&[u8], ValRef<'_>)> {
        let (node, i) = self.back.as_ref()?.last()?;
        Some(node.entry(*i))
    }

    /// `f` of the entry an end stepped onto (`front` or the back), its key
    /// borrowed from the leaf, its value too or, in overflow pages, read
    /// whole (empty for keys only); `None` if the entry lies past the
    /// range's bound at that end or where the other end has been.
    #[inline]
    fn visit_entry<R>(
        &self,
        front: bool,
        f: impl FnOnce(&[u8], Cow<'_, [u8]>) -> R,
    ) -> Result<Option<R>> {
        let entry = if front {
            self.front_entry()
        } else {
            self.back_entry()
        };
        let Some((key, val)) = entry else {
            return Ok(None);
        };
        let outside = if front {
            self.past_upper(key) || self.back_last().is_some_and(|b| key >= b)
        } else {
            self.before_lower(key) || self.front_last().is_some_and(|f| key <= f)
        };
        if outside {
            return Ok(None);
        }
        let value = match val {
            _ if self.keys_only => Cow::Borrowed(&[][..]),
            ValRef::Inline(v) => Cow::Borrowed(v),
            ValRef::Overflow { len, page, tag } => Cow::Owned(self.inner.read_overflow(
                ChildRef { page, tag },
                len,
                self.page_count,
            )?),
        };
        Ok(Some(f(key, value)))
    }

    /// One step from an end (`front` or the back) and `f` of the entry
    /// stepped onto: `None` once the range is done, and after an error.
    #[inline]
    fn next_visit<R>(
        &mut self,
        front: bool,
        f: impl FnOnce(&[u8], Cow<'_, [u8]>) -> R,
    ) -> Option<Result<R>> {
        if self.done {
            return None;
        }
        let stepped = if front {
            self.step_front()
        } else {
            self.step_back()
        };
        let out = match stepped {
            Ok(true) => self.visit_entry(front, f),
            Ok(false) => Ok(None),
            Err(e) => Err(e),
        };
        match out {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// The next entry from the front, given to `f` as borrowed key and
    /// value instead of copied out (what [`Iterator::next`] yields,
    /// without two allocations an entry): `None` once the range is done,
    /// and after an error.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use std::{ops::Bound, path::Path, sync::Arc};
    /// # use sealkv_core_store::{Store, StoreOptions};
    /// # use sealkv_fileio::{SimVfs, Vfs};
    /// # let vfs: Arc<dyn Vfs> = Arc::new(SimVfs::new());
    /// # vfs.create_dir_all(Path::new("/db"))?;
    /// # let (store, _) = Store::create(vfs, Path::new("/db/data"), StoreOptions::default())?;
    /// let mut w = store.write()?;
    /// w.put(b"a", b"1")?;
    /// w.put(b"b", b"22")?;
    /// w.commit()?;
    /// let snapshot = store.read();
    /// let mut range = snapshot.iter();
    /// let mut total = 0;
    /// while let Some(len) = range.next_with(|_key, value| value.len()) {
    ///     total += len?;
    /// }
    /// assert_eq!(total, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn next_with<R>(&mut self, f: impl FnOnce(&[u8], &[u8]) -> R) -> Option<Result<R>> {
        self.next_visit(true, |k, v| f(k, &v))
    }

    /// The key the front yielded last, read in place from the leaf its
    /// path holds (no copy per entry); `None` before its first entry.
    #[inline]
    fn front_last(&self) -> Option<&[u8]> {
        if !self.front_yielded {
            return None;
        }
        let (node, i) = self.front.as_ref()?.last()?;
        Some(node.key(i.checked_sub(1)?))
    }

    /// The key the back yielded last, read in place like
    /// [`Range::front_last`].
    #[inline]
    fn back_last(&self) -> Option<&[u8]> {
        if !self.back_yielded {
            return None;
        }
        let (node, i) = self.back.as_ref()?.last()?;
        Some(node.key(*i))
    }
}

impl Iterator for Range {
    type Item = Result<Entry>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_visit(true, |k, v| (k.to_vec(), v.into_owned()))
    }
}

impl DoubleEndedIterator for Range {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        self.next_visit(false, |k, v| (k.to_vec(), v.into_owned()))
    }
}

impl ReadTxn {
    pub(crate) fn meta(&self) -> &crate::meta::Meta {
        &self.snap.meta
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }
}
