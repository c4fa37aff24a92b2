//! sealkv backups: hot physical backups and their restore, sealed logical
//! export and import, and archive verification.
//!
//! - [`physical`]: a physical backup is taken by the engine
//!   ([`sealkv::Db::backup_to`]: pages copied still sealed, while writers
//!   go on); [`restore`] checks one with its key and puts a copy in place
//!   under a new data key; [`verify_backup`] checks one without restoring.
//! - [`archive`]: writes the records of a snapshot into one portable file
//!   sealed in chunks (under the database's master key by default, or a
//!   separate backup key or passphrase), checks such a file end to end, and
//!   imports it into a new database with any algorithm, key or page size —
//!   the migration path between plaintext and encrypted databases and
//!   between ciphers.
//!
//! # Examples
//!
//! A physical backup and its restore:
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
//!
//! A sealed export, imported into an encrypted database:
//!
//! ```
//! use sealkv::crypto::{KeySource, MasterKey};
//! use sealkv::{Config, Db};
//! use sealkv_backup::archive::{self, ExportOptions, ImportOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let key = MasterKey::random()?;
//! let db = Db::open(dir.path().join("plain"))?;
//! db.put(b"user/1", b"ada")?;
//!
//! // Export, sealed under a backup key.
//! let file = dir.path().join("users.skva");
//! let sealed = ExportOptions::sealed(KeySource::Key(key.clone()));
//! let written = archive::export(&db, &file, &sealed, &mut |_| {})?;
//! let checked = archive::verify_archive(&file, Some(&KeySource::Key(key.clone())), &mut |_| {})?;
//! assert_eq!(checked.records, written.records);
//!
//! // Import into a new, encrypted database (plaintext -> encrypted).
//! let new_key = MasterKey::random()?;
//! let dest = dir.path().join("encrypted");
//! let config = |d: &std::path::Path| Config::new(d).encryption_key(new_key.clone()).encrypt_at_rest(true);
//! archive::import(&file, Some(&KeySource::Key(key)), &dest, &config, &ImportOptions::new(), &mut |_| {})?;
//! let copy = Db::open_with_config(config(&dest))?;
//! assert_eq!(copy.get(b"user/1")?.as_deref(), Some(&b"ada"[..]));
//! # Ok(())
//! # }
//! ```

pub mod archive;
pub mod physical;

pub use archive::{ArchiveError, ArchiveSummary, ExportOptions, ImportOptions};
pub use physical::{BackupSummary, RestoreError, RestoreOptions, restore, verify_backup};
