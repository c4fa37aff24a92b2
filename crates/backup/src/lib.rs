#![doc = include_str!("../README.md")]
//!
//! # The API at a glance
//!
//! - [`physical`]: [`restore`] with [`RestoreOptions`], [`verify_backup`];
//!   what they checked: [`BackupSummary`]; what goes wrong:
//!   [`RestoreError`]. Taking a backup is the engine's
//!   [`sealkv::Db::backup_to`].
//! - [`archive`]: [`archive::export`] with [`ExportOptions`],
//!   [`archive::verify_archive`], [`archive::import`] with
//!   [`ImportOptions`]; what they did: [`ArchiveSummary`]; what goes
//!   wrong: [`ArchiveError`].

pub mod archive;
pub mod physical;

pub use archive::{ArchiveError, ArchiveSummary, ExportOptions, ImportOptions};
pub use physical::{BackupSummary, RestoreError, RestoreOptions, restore, verify_backup};

/// The tour in the repository's top-level README, compiled as doctests so
/// it cannot fall behind the API. It lives here because this crate sees
/// both the engine and the archive API the tour uses; `cfg(doctest)` keeps
/// it out of every other build (and of the published package's).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeTour;
