//! sealkv backups: hot physical backups, sealed logical export and import,
//! and archive verification.
//!
//! The [`archive`] module writes the records of a snapshot into one portable
//! file sealed in chunks (under the database's master key by default, or a
//! separate backup key or passphrase), checks such a file end to end, and
//! imports it into a new database with any algorithm, key or page size —
//! the migration path between plaintext and encrypted databases and between
//! ciphers.
//!
//! # Example
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

pub use archive::{ArchiveError, ArchiveSummary, ExportOptions, ImportOptions};
