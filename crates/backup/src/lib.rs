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
