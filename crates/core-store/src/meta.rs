//! Meta pages and free-list pages.
//!
//! Meta body:
//!
//! ```text
//! u64 txn | u64 root page (0 = empty) | root tag | u64 page count
//! | u64 free-list head (0 = none) | free-list head tag | u64 free pages
//! | u64 entries (reserved, 0) | u16 app-meta length | app meta
//! ```
//!
//! Free-list page body:
//!
//! ```text
//! u64 next page (0 = last) | next tag | u16 count
//! | count x (u64 page | tag | u64 freed-by txn | u8 flags: 1 = zeroed)
//! ```

use crate::error::{Result, StoreError};
use crate::format::{MAX_APP_META, Tag, be16, be64, tag_at};
use crate::node::ChildRef;

/// What a meta page records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) txn: u64,
    pub(crate) root: Option<ChildRef>,
    pub(crate) page_count: u64,
    pub(crate) free_head: Option<ChildRef>,
    pub(crate) free_pages: u64,
    pub(crate) app_meta: Vec<u8>,
}

fn opt_ref(page: u64, tag: Tag) -> Option<ChildRef> {
    (page != 0).then_some(ChildRef { page, tag })
}

impl Meta {
    pub(crate) fn encode(&self, body: &mut [u8]) {
        debug_assert!(self.app_meta.len() <= MAX_APP_META);
        let mut o = Vec::with_capacity(128 + self.app_meta.len());
        let root = self.root.unwrap_or(ChildRef {
            page: 0,
            tag: [0; 16],
        });
        let fl = self.free_head.unwrap_or(ChildRef {
            page: 0,
            tag: [0; 16],
        });
        o.extend_from_slice(&self.txn.to_be_bytes());
        o.extend_from_slice(&root.page.to_be_bytes());
        o.extend_from_slice(&root.tag);
        o.extend_from_slice(&self.page_count.to_be_bytes());
        o.extend_from_slice(&fl.page.to_be_bytes());
        o.extend_from_slice(&fl.tag);
        o.extend_from_slice(&self.free_pages.to_be_bytes());
        o.extend_from_slice(&0u64.to_be_bytes());
        o.extend_from_slice(&(self.app_meta.len() as u16).to_be_bytes());
        o.extend_from_slice(&self.app_meta);
        body[..o.len()].copy_from_slice(&o);
        body[o.len()..].fill(0);
    }

    pub(crate) fn decode(body: &[u8], page: u64) -> Result<Meta> {
        let bad = || StoreError::corrupt(page, "meta page truncated");
        let txn = be64(body, 0).ok_or_else(bad)?;
        let root = opt_ref(
            be64(body, 8).ok_or_else(bad)?,
            tag_at(body, 16).ok_or_else(bad)?,
        );
        let page_count = be64(body, 32).ok_or_else(bad)?;
        let free_head = opt_ref(
            be64(body, 40).ok_or_else(bad)?,
            tag_at(body, 48).ok_or_else(bad)?,
        );
        let free_pages = be64(body, 64).ok_or_else(bad)?;
        let len = be16(body, 80).ok_or_else(bad)? as usize;
        if len > MAX_APP_META {
            return Err(StoreError::corrupt(page, "application metadata too long"));
        }
        let app_meta = body.get(82..82 + len).ok_or_else(bad)?.to_vec();
        Ok(Meta {
            txn,
            root,
            page_count,
            free_head,
            free_pages,
            app_meta,
        })
    }
}

/// One free page: where, the tag it carries (zeros once zeroed), and which
/// commit freed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FreeEntry {
    pub(crate) page: u64,
    pub(crate) tag: Tag,
    pub(crate) freed: u64,
    pub(crate) zeroed: bool,
}

pub(crate) const FREE_ENTRY_LEN: usize = 8 + 16 + 8 + 1;
const FREE_HEAD_LEN: usize = 8 + 16 + 2;

/// How many entries fit on a free-list page with body length `body`.
pub(crate) fn free_per_page(body: usize) -> usize {
    (body - FREE_HEAD_LEN) / FREE_ENTRY_LEN
}

pub(crate) fn encode_free(body: &mut [u8], next: Option<ChildRef>, entries: &[FreeEntry]) {
    body.fill(0);
    let next = next.unwrap_or(ChildRef {
        page: 0,
        tag: [0; 16],
    });
    body[0..8].copy_from_slice(&next.page.to_be_bytes());
    body[8..24].copy_from_slice(&next.tag);
    body[24..26].copy_from_slice(&(entries.len() as u16).to_be_bytes());
    let mut at = FREE_HEAD_LEN;
    for e in entries {
        body[at..at + 8].copy_from_slice(&e.page.to_be_bytes());
        body[at + 8..at + 24].copy_from_slice(&e.tag);
        body[at + 24..at + 32].copy_from_slice(&e.freed.to_be_bytes());
        body[at + 32] = u8::from(e.zeroed);
        at += FREE_ENTRY_LEN;
    }
}

pub(crate) fn decode_free(body: &[u8], page: u64) -> Result<(Option<ChildRef>, Vec<FreeEntry>)> {
    let bad = || StoreError::corrupt(page, "free-list page truncated");
    let next = opt_ref(
        be64(body, 0).ok_or_else(bad)?,
        tag_at(body, 8).ok_or_else(bad)?,
    );
    let count = be16(body, 24).ok_or_else(bad)? as usize;
    if count > free_per_page(body.len()) {
        return Err(StoreError::corrupt(page, "free-list count too large"));
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let at = FREE_HEAD_LEN + i * FREE_ENTRY_LEN;
        let zeroed = match body.get(at + 32) {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(StoreError::corrupt(page, "bad free-list flags")),
        };
        out.push(FreeEntry {
            page: be64(body, at).ok_or_else(bad)?,
            tag: tag_at(body, at + 8).ok_or_else(bad)?,
            freed: be64(body, at + 24).ok_or_else(bad)?,
            zeroed,
        });
    }
    Ok((next, out))
}
