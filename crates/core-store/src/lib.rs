#![doc = include_str!("../README.md")]
//!
//! # The API at a glance
//!
//! - The file: [`Store::create`], [`Store::open`] with [`StoreOptions`];
//!   what opening found: [`OpenReport`]; counters: [`StoreStats`].
//! - Reading: [`Store::read`] gives a [`ReadTxn`] ([`ReadTxn::get`],
//!   [`ReadTxn::range`], a double-ended [`Range`] of [`Entry`]s);
//!   [`Store::pin`] a [`PinnedRead`] for point lookups; [`ReadTxn::finder`]
//!   a [`Finder`] for runs of them.
//! - Writing: [`Store::write`] gives the one [`WriteTxn`] ([`Op`]s, app
//!   meta, [`WriteTxn::commit`]).
//! - Space: [`Store::space`] gives [`SpaceStats`] (file size, live and
//!   free pages, average leaf fill).
//! - Checking: [`Store::verify`] gives a [`VerifyReport`] of [`Problem`]s
//!   by [`PageRole`]; [`Store::zero_free_pages`].
//! - Backups: [`ReadTxn::pages`] and [`ReadTxn::raw_page`] copy a snapshot
//!   page by page, still sealed.
//! - What goes wrong: [`StoreError`] ([`StoreError::Rollback`] for a stale
//!   page put back).

mod cache;
#[cfg(test)]
mod crafted_tests;
mod error;
mod format;
#[cfg(feature = "fuzzing")]
mod fuzz;
mod level;
mod meta;
mod node;
mod read;
mod seal;
mod space;
mod store;
mod verify;
mod write;

pub use error::{Result, StoreError};
pub use format::{
    DEFAULT_CACHE_BYTES, DEFAULT_PAGE_SIZE, FORMAT_VERSION, MAX_APP_META, MAX_PAGE_SIZE,
    MAX_VALUE_LEN, MIN_PAGE_SIZE, Tag,
};
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use fuzz::{fuzz_open, fuzz_page};
pub use node::ChildRef;
pub use read::{Entry, Finder, PinnedRead, Range, ReadTxn};
pub use space::SpaceStats;
pub use store::{LastCommit, OpenReport, Store, StoreOptions, StoreStats};
pub use verify::{PageRole, Problem, VerifyReport};
pub use write::{CompactReport, Op, WriteTxn};
