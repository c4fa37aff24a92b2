//! sealkv backups: hot physical backups and their restore, sealed logical
//! export and import, and archive verification.
//!
//! - [`physical`]: a physical backup is taken by the engine
//!   ([`sealkv::Db::backup_to`]: pages copied still sealed, while writers
//!   go on); [`restore`] checks one with its key and puts a copy in place
//!   under a new data key; [`verify_backup`] checks one without restoring.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let db = sealkv::Db::open(dir.path().join("live"))?;
//! db.put(b"k", b"v")?;
//! db.backup_to(&dir.path().join("backup"), &mut |_| {})?;
//! let backup = sealkv::Config::new(dir.path().join("backup"));
//! sealkv_backup::restore(&backup, &dir.path().join("restored"), &Default::default(), &mut |_| {})?;
//! let restored = sealkv::Db::open(dir.path().join("restored"))?;
//! assert_eq!(restored.get(b"k")?.as_deref(), Some(&b"v"[..]));
//! # Ok(())
//! # }
//! ```

pub mod physical;

pub use physical::{BackupSummary, RestoreError, RestoreOptions, restore, verify_backup};
