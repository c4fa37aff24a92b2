//! Compaction: moving live pages from the file's tail into free slots
//! nearer its start, so the tail can be cut.
//!
//! A copy-on-write tree cannot move a page in place: a page's number is in
//! its AAD and its parent holds its number and tag. So a page is moved the
//! way a commit changes one: its contents are written to a free slot as a
//! new page, sealed through [`crate::seal::PageSealer::seal`] like every
//! page a commit writes (a fresh counter nonce of the writer session, never
//! one used before), its parent is rewritten to point at it, and so on up
//! to a new root, all in one ordinary commit (a new meta page). The old
//! copies are freed by that commit; two commits later no meta slot needs
//! them, and once no reader's snapshot does either, they are reusable and
//! the free pages that end the file leave it (`trim_free_tail`, then
//! `shrink_file`).
//!
//! [`Store::compact`] runs that as commits, each an ordinary one (a crash
//! at any point leaves the state before or after a commit, which read the
//! same): two empty commits (every page freed before becomes reusable),
//! then rounds of a relocation commit and three empty ones that make the freed
//! tail reusable, drop it from the page count and cut the file, repeated
//! while a round moves pages and shrinks the file. Readers go on throughout
//! (each commit is copy-on-write), and a snapshot held keeps its pages: the
//! tail it needs stays until it is dropped (a later compaction gives it
//! back). Writers wait for each commit as for any other.

use super::{Commit, CommitMode};
use crate::error::{Result, StoreError};
use crate::format::{FIRST_DATA_PAGE, MAX_DEPTH, PAGE_HEADER_LEN, PageKind, TAG_LEN};
use crate::level::Items;
use crate::meta::FreeEntry;
use crate::node::{ChildRef, ValRef, put_branch, put_overflow};
use crate::read::too_deep;
use crate::store::{Store, overflow_body};

/// Rounds of a compaction at most (each round moves what the free slots
/// below the target can take; a second round moves what the first could
/// not, such as pages the round's own rewrites took from the tail).
const MAX_ROUNDS: usize = 4;

/// What [`Store::compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactReport {
    /// Bytes of the page file before.
    pub bytes_before: u64,
    /// Bytes of the page file after.
    pub bytes_after: u64,
    /// Pages moved toward the start of the file.
    pub pages_moved: u64,
    /// Commits made.
    pub commits: u64,
}

impl Store {
    /// Gives back the free pages among the live ones: moves live pages from
    /// the file's tail into free slots nearer its start, then cuts the file
    /// after its last live page (see the module docs of `relocate.rs` for
    /// the commits it makes). Online: readers keep their snapshots, and a
    /// snapshot held keeps the pages it reads (the file then shrinks less;
    /// compact again once it is dropped). Every commit is an ordinary one,
    /// so a crash leaves the state before or after it, which hold the same
    /// entries.
    pub fn compact(&self) -> Result<CompactReport> {
        let mut report = CompactReport {
            bytes_before: self.file_bytes()?,
            ..CompactReport::default()
        };
        // Two commits first, so every page freed before the compaction
        // is reusable by its first relocation (unless a reader holds it).
        for _ in 0..2 {
            self.commit_as(CommitMode::Plain)?;
        }
        report.commits += 2;
        let mut size = report.bytes_before;
        for _ in 0..MAX_ROUNDS {
            let moved = self.commit_as(CommitMode::Relocate)?;
            report.pages_moved += moved;
            // The pages freed by the relocation are reusable two commits on
            // (the second trims them from the page count), and the file is
            // cut once neither meta slot counts them (the third).
            for _ in 0..3 {
                self.commit_as(CommitMode::ShrinkExact)?;
            }
            report.commits += 4;
            let now = self.file_bytes()?;
            if moved == 0 || now >= size {
                break;
            }
            size = now;
        }
        report.bytes_after = self.file_bytes()?;
        Ok(report)
    }

    /// Commits nothing but what `mode` does; returns the pages moved.
    fn commit_as(&self, mode: CommitMode) -> Result<u64> {
        let mut w = self.write()?;
        w.mode = mode;
        Ok(w.commit_inner()?.moved)
    }
}

impl Commit<'_> {
    /// The first page a relocation empties: the lowest page number such
    /// that the free slots below it this commit may reuse outnumber the
    /// live pages from it on (with room to spare for the branches and the
    /// free list the moves rewrite). `free` is every free page.
    pub(super) fn relocation_target(&self, free: &[FreeEntry]) -> u64 {
        let high = self.high;
        let Some(span) = usize::try_from(high).ok() else {
            return high;
        };
        // 0: live, 1: free and reusable now, 2: free, not yet reusable.
        let mut state = vec![0u8; span];
        for e in free {
            if let Some(s) = state.get_mut(e.page as usize) {
                *s = 2;
            }
        }
        for e in &self.reusable {
            if let Some(s) = state.get_mut(e.page as usize) {
                *s = 1;
            }
        }
        let mut reusable_below = self.reusable.len() as u64;
        let mut live_from = 0u64;
        let mut target = high;
        let mut t = high;
        while t > FIRST_DATA_PAGE {
            // Would `t - 1` do? It moves page `t - 1` too, if it is live.
            let (below, from) = match state[(t - 1) as usize] {
                0 => (reusable_below, live_from + 1),
                1 => (reusable_below - 1, live_from),
                _ => (reusable_below, live_from),
            };
            if below < from + 4 + from / 16 {
                break;
            }
            (reusable_below, live_from) = (below, from);
            t -= 1;
            target = t;
        }
        target
    }

    /// Whether a page moved now lands below `from`.
    fn room_below(&self, from: u64) -> bool {
        self.reusable.last().is_some_and(|e| e.page < from)
    }

    /// Relocates the tree under `root` (see [`Commit::relocate`]); returns
    /// the new root.
    pub(super) fn relocate_root(
        &mut self,
        root: Option<ChildRef>,
        from: u64,
    ) -> Result<Option<ChildRef>> {
        let Some(r) = root else {
            return Ok(None);
        };
        Ok(Some(self.relocate(r, from, 0)?.unwrap_or(r)))
    }

    /// Moves every page under `r` (itself, its descendants, their overflow
    /// chains) at or past page `from` to a free slot below it while there
    /// are such slots; rewrites the pages above a moved one. Returns the
    /// new reference to `r`'s page if it was rewritten.
    fn relocate(&mut self, r: ChildRef, from: u64, depth: usize) -> Result<Option<ChildRef>> {
        if depth > MAX_DEPTH {
            return Err(too_deep(r.page));
        }
        let node = self.inner.load_node(r, self.base_pages)?;
        let mut changed = false;
        let items = if node.leaf {
            let mut arena = Vec::with_capacity(node.used_body());
            let mut ends = Vec::with_capacity(node.len());
            for i in 0..node.len() {
                match node.val(i) {
                    ValRef::Overflow { len, page, tag } => {
                        let first = ChildRef { page, tag };
                        match self.relocate_overflow(first, len, from)? {
                            Some(moved) => {
                                put_overflow(&mut arena, node.key(i), len, moved);
                                changed = true;
                            }
                            None => arena.extend_from_slice(node.raw(i)),
                        }
                    }
                    ValRef::Inline(_) => arena.extend_from_slice(node.raw(i)),
                }
                ends.push(arena.len());
            }
            Items::Leaf { arena, ends }
        } else {
            let mut entries = Vec::with_capacity(node.len());
            for i in 0..node.len() {
                let child = node.child(i);
                let moved = self.relocate(child, from, depth + 1)?;
                changed |= moved.is_some();
                entries.push((node.key(i).to_vec(), moved.unwrap_or(child)));
            }
            Items::Branch(entries)
        };
        let moves = r.page >= from && self.room_below(from);
        if !changed && !moves {
            return Ok(None);
        }
        if moves {
            self.moved += 1;
        }
        self.free(r);
        self.write_whole(&items, r.page).map(Some)
    }

    /// Writes `items`, the entries of page `old`, back into one new page.
    fn write_whole(&mut self, items: &Items, old: u64) -> Result<ChildRef> {
        let count = items.len() as u16;
        match items {
            Items::Leaf { arena, .. } => self.write_page(PageKind::Leaf, |b| {
                b[..2].copy_from_slice(&count.to_be_bytes());
                b[2..2 + arena.len()].copy_from_slice(arena);
            }),
            Items::Branch(v) => {
                let body = branch_body(v, self.body_len(), old)?;
                self.write_page(PageKind::Branch, |b| {
                    b[..body.len()].copy_from_slice(&body);
                })
            }
        }
    }

    /// Moves the overflow chain starting at `first` (a value of `len`
    /// bytes) if any of its pages lies at or past `from` and there is room
    /// below; returns the new first page.
    fn relocate_overflow(
        &mut self,
        first: ChildRef,
        len: u64,
        from: u64,
    ) -> Result<Option<ChildRef>> {
        let chain = self.overflow_chain(first, len)?;
        if !chain.iter().any(|r| r.page >= from) || !self.room_below(from) {
            return Ok(None);
        }
        let value = self.inner.read_overflow(first, len, self.base_pages)?;
        for r in &chain {
            if r.page >= from {
                self.moved += 1;
            }
            self.free(*r);
        }
        self.write_overflow(&value).map(Some)
    }

    /// The pages of an overflow chain, each authenticated to find the next.
    pub(super) fn overflow_chain(&self, first: ChildRef, len: u64) -> Result<Vec<ChildRef>> {
        let ps = self.inner.sealer.page_size;
        let mut buf = vec![0u8; ps];
        let mut pages = Vec::new();
        let mut next = Some(first);
        let max_hops = len
            .div_ceil(crate::store::OVERFLOW_HEAD as u64)
            .min(self.base_pages);
        while let Some(r) = next {
            if pages.len() as u64 >= max_hops {
                return Err(StoreError::corrupt(r.page, "overflow chain loops"));
            }
            self.inner.read_raw(r.page, self.base_pages, &mut buf)?;
            self.inner
                .sealer
                .open_expected(&mut buf, r.page, &r.tag, &[PageKind::Overflow])?;
            let (n, _) = overflow_body(&buf[PAGE_HEADER_LEN..ps - TAG_LEN], r.page)?;
            pages.push(r);
            next = n;
        }
        Ok(pages)
    }
}

/// The body of a branch holding `entries`, moved from page `old`: what it
/// held, so it fits in `body_len` bytes; if it does not, the page it came
/// from was not what it claimed, and the error names it.
fn branch_body(entries: &[(Vec<u8>, ChildRef)], body_len: usize, old: u64) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(body_len);
    body.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    for (k, c) in entries {
        put_branch(&mut body, k, *c);
    }
    if body.len() > body_len {
        return Err(StoreError::corrupt(old, "a branch grew while it moved"));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_branch_too_big_to_move_names_its_page() {
        let child = ChildRef {
            page: 9,
            tag: [0; TAG_LEN],
        };
        let entries = vec![(vec![7u8; 100], child), (vec![8u8; 100], child)];
        let fits = branch_body(&entries, 4096, 41).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&fits[..2], &2u16.to_be_bytes());
        match branch_body(&entries, 200, 41) {
            Err(StoreError::Corruption { page, .. }) => assert_eq!(page, 41),
            other => panic!("{other:?}"),
        }
    }
}
