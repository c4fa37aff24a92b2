//! The entries of one tree level, in key order, between reading the pages
//! they come from and packing them into new pages.
//!
//! A commit rebuilds every page a change reaches, and the pages next to
//! them that it pulls in to keep pages full (see `Commit::expand` in
//! `write.rs`): their entries are gathered here, then cut into pages by
//! [`pack`]. Packing a run of neighbouring pages together, rather than each
//! page alone, is what keeps pages full: a flush of many keys repacks whole
//! runs of leaves to nearly full pages, and a page left thin by deletes
//! merges with its neighbour.

use crate::error::{Result, StoreError};
use crate::node::{ChildRef, Node, entry_key};

/// Entries of one level: encoded leaf entries, or branch entries (a
/// separator and a child).
#[derive(Debug)]
pub(crate) enum Items {
    /// Leaf entries as stored, back to back in `arena`; entry `i` ends at
    /// `ends[i]`.
    Leaf {
        /// The encoded entries.
        arena: Vec<u8>,
        /// Where each entry ends.
        ends: Vec<usize>,
    },
    /// Branch entries: each child with the smallest key it may hold (the
    /// first entry's key is a lower bound the parent may replace).
    Branch(Vec<(Vec<u8>, ChildRef)>),
}

impl Items {
    /// No leaf entries yet.
    pub(crate) fn leaf() -> Items {
        Items::Leaf {
            arena: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// The entries of `node`, as stored.
    pub(crate) fn of(node: &Node) -> Items {
        if node.leaf {
            let mut arena = Vec::new();
            let mut ends = Vec::with_capacity(node.len());
            for i in 0..node.len() {
                arena.extend_from_slice(node.raw(i));
                ends.push(arena.len());
            }
            Items::Leaf { arena, ends }
        } else {
            Items::Branch(
                (0..node.len())
                    .map(|i| (node.key(i).to_vec(), node.child(i)))
                    .collect(),
            )
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Items::Leaf { ends, .. } => ends.len(),
            Items::Branch(v) => v.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoded size of each entry.
    pub(crate) fn sizes(&self) -> Vec<usize> {
        match self {
            Items::Leaf { ends, .. } => {
                let mut prev = 0;
                ends.iter()
                    .map(|&e| {
                        let s = e - prev;
                        prev = e;
                        s
                    })
                    .collect()
            }
            Items::Branch(v) => v.iter().map(|(k, _)| branch_size(k)).collect(),
        }
    }

    /// Bytes of all entries.
    pub(crate) fn total(&self) -> usize {
        match self {
            Items::Leaf { arena, .. } => arena.len(),
            Items::Branch(v) => v.iter().map(|(k, _)| branch_size(k)).sum(),
        }
    }

    /// Gives a branch level's first entry the separator its parent holds
    /// for it: a lower bound of every key below it, and the bound the
    /// entries before it (in the parent's other children) stay under. Leaf
    /// entries keep their keys.
    pub(crate) fn set_first_key(&mut self, key: &[u8]) {
        if let Items::Branch(v) = self
            && let Some(first) = v.first_mut()
        {
            first.0 = key.to_vec();
        }
    }

    /// Appends `more` (the entries of the pages to the right).
    /// Entries of another level are corruption (leaves at two depths),
    /// reported at `page`.
    pub(crate) fn extend(&mut self, more: Items, page: u64) -> Result<()> {
        if more.is_empty() {
            return Ok(());
        }
        if self.is_empty() {
            *self = more;
            return Ok(());
        }
        match (self, more) {
            (Items::Leaf { arena, ends }, Items::Leaf { arena: a, ends: e }) => {
                let base = arena.len();
                arena.extend_from_slice(&a);
                ends.extend(e.into_iter().map(|x| x + base));
                Ok(())
            }
            (Items::Branch(v), Items::Branch(w)) => {
                v.extend(w);
                Ok(())
            }
            _ => Err(StoreError::corrupt(page, "leaves at different depths")),
        }
    }

    /// The key of entry `i` (`i < len()`).
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        match self {
            Items::Leaf { arena, ends } => {
                let from = if i == 0 { 0 } else { ends[i - 1] };
                entry_key(&arena[from..ends[i]])
            }
            Items::Branch(v) => &v[i].0,
        }
    }
}

/// Bytes of a branch entry with key `key`.
pub(crate) fn branch_size(key: &[u8]) -> usize {
    2 + key.len() + 24
}

/// Cuts entries of the given sizes into pages holding at most `cap`
/// bytes each. `greedy`: each page as full as it goes, the last one taking
/// what is left (entries appended past the old last key: the page after
/// them is where the next ones go, so the pages before stay full, as
/// SQLite's balance-quick and B-tree bulk loading do). Otherwise as few
/// pages as greedy packing needs, evenly filled (a run of rewritten pages,
/// or a split in the middle of a page: room left in every page for later
/// inserts).
pub(crate) fn pack(sizes: &[usize], cap: usize, greedy: bool) -> Vec<std::ops::Range<usize>> {
    if greedy {
        return cut(sizes, |cur, s| cur + s > cap);
    }
    let k = min_pages(sizes, cap);
    let mut left = sizes.iter().sum::<usize>();
    let mut pages_left = k.max(1);
    cut(sizes, |cur, s| {
        // Close the page when the next entry does not fit, or would take
        // it further from an even share of what is left than it is now.
        let target = left / pages_left;
        let close = cur + s > cap || (pages_left > 1 && cur + s / 2 > target);
        if close {
            // Entries of uneven sizes can need a page more than greedy
            // packing counted: the last share is then all that is left.
            left = left.saturating_sub(cur);
            pages_left = pages_left.saturating_sub(1).max(1);
        }
        close
    })
}

/// The fewest pages of `cap` bytes that hold entries of `sizes` in order.
pub(crate) fn min_pages(sizes: &[usize], cap: usize) -> usize {
    cut(sizes, |cur, s| cur + s > cap).len()
}

/// Cuts `sizes` into groups: a group closes before an entry when
/// `close(bytes so far, next entry's size)` says so (it must when the
/// entry does not fit).
fn cut(
    sizes: &[usize],
    mut close: impl FnMut(usize, usize) -> bool,
) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut cur) = (0, 0);
    for (i, &s) in sizes.iter().enumerate() {
        if i > start && close(cur, s) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_packing_fills_every_page_but_the_last() {
        let sizes = vec![100; 95];
        let g = pack(&sizes, 1000, true);
        assert_eq!(g.len(), 10);
        assert!(g[..9].iter().all(|r| r.len() == 10));
        assert_eq!(g[9].len(), 5);
    }

    #[test]
    fn even_packing_takes_the_fewest_pages_and_balances_them() {
        let sizes = vec![100; 95];
        let g = pack(&sizes, 1000, false);
        assert_eq!(g.len(), 10);
        assert!(g.iter().all(|r| r.len() == 9 || r.len() == 10), "{g:?}");
        // Entries that do not divide the page: as few pages as greedy
        // packing, no sliver at the end.
        let g = pack(&[123; 65], 4014, false);
        assert_eq!(g.len(), 3);
        assert!(g.iter().all(|r| r.len() >= 21), "{g:?}");
        // Just over one page: two pages, half each.
        let g = pack(&[100; 11], 1000, false);
        assert_eq!(g.iter().map(|r| r.len()).collect::<Vec<_>>(), [6, 5]);
    }

    #[test]
    fn uneven_entries_never_run_out_of_shares() {
        // Large entries after small ones: even packing needs more pages
        // than greedy packing counted.
        let sizes = [[10usize; 30].as_slice(), &[900; 3], &[10; 5], &[990; 4]].concat();
        let g = pack(&sizes, 1000, false);
        for r in &g {
            assert!(sizes[r.clone()].iter().sum::<usize>() <= 1000);
        }
        assert_eq!(g.last().map(|r| r.end), Some(sizes.len()));
    }

    #[test]
    fn no_page_holds_more_than_it_can() {
        let sizes: Vec<usize> = (0..500).map(|i| 30 + (i * 37) % 400).collect();
        for greedy in [false, true] {
            for g in pack(&sizes, 1000, greedy) {
                assert!(sizes[g].iter().sum::<usize>() <= 1000);
            }
        }
    }
}
