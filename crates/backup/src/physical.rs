//! Physical backups: restore and verify.
//!
//! A physical backup is a database directory written by the engine's
//! [`Db::backup_to`](sealkv::Db::backup_to): the pages of one committed
//! state copied still sealed, so it opens with the same key as the database
//! it came from. This module owns the other half:
//!
//! - [`restore`] checks the backup end to end with the key (a wrong key is
//!   [`sealkv::Error::WrongKey`], damage is [`RestoreError::Damaged`]),
//!   then copies it into a temporary sibling of the destination, opens the
//!   copy (a new writer session) and rotates its data key, and only then
//!   renames it into place. The restored database and the backup's
//!   original therefore never seal under the same data key, let alone the
//!   same (key, nonce).
//! - [`verify_backup`] runs the same check without restoring.
//!
//! The backup itself is opened read-only and never changed.

use std::path::{Path, PathBuf};

use sealkv::{BackupOptions, BackupProgress, BackupReport, Config, Db, VerifyReport};

/// Errors of [`restore`] and [`verify_backup`]. None carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The backup failed its integrity check.
    #[error("the backup at {} is damaged: {}", path.display(), first_finding(findings))]
    Damaged {
        /// The backup directory.
        path: PathBuf,
        /// Each problem found, naming its file.
        findings: Vec<sealkv::Finding>,
    },
    /// The engine refused or failed (wrong key, missing key, destination
    /// exists, I/O).
    #[error(transparent)]
    Db(#[from] sealkv::Error),
}

fn first_finding(findings: &[sealkv::Finding]) -> String {
    match findings.first() {
        Some(f) if findings.len() > 1 => format!(
            "{}: {} (and {} more)",
            f.file.display(),
            f.what,
            findings.len() - 1
        ),
        Some(f) => format!("{}: {}", f.file.display(), f.what),
        None => "no finding recorded".into(),
    }
}

/// How [`restore`] behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// Replace an existing destination (default: refuse with
    /// [`sealkv::Error::DestinationExists`]). The old one is removed only
    /// once the restored database is complete and in place.
    pub replace_existing: bool,
}

impl RestoreOptions {
    /// The defaults: refuse an existing destination.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`RestoreOptions::replace_existing`].
    #[must_use]
    pub fn replace_existing(mut self, on: bool) -> Self {
        self.replace_existing = on;
        self
    }
}

/// What [`verify_backup`] found: a clean backup's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupSummary {
    /// Key-value entries in the backup.
    pub entries: u64,
    /// Pages checked.
    pub pages_checked: u64,
    /// Whether the backup is encrypted at rest.
    pub encrypted: bool,
}

/// Opens the backup `backup` describes read-only and checks every file.
fn open_checked(backup: &Config) -> Result<(Db, VerifyReport), RestoreError> {
    tracing::debug!(backup = %backup.path().display(), "physical backup check started");
    let db = Db::open_with_config(backup.clone().read_only(true).create_if_missing(false))?;
    let report = db.verify()?;
    tracing::debug!(
        backup = %backup.path().display(),
        entries = report.entries,
        pages_checked = report.pages_checked,
        findings = report.findings.len(),
        "physical backup checked"
    );
    if !report.is_clean() {
        return Err(RestoreError::Damaged {
            path: backup.path().to_path_buf(),
            findings: report.findings,
        });
    }
    Ok((db, report))
}

/// Checks the physical backup that `backup` (its path and key) opens,
/// end to end and read-only: the key registry, every page, the WAL.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = sealkv::Db::open(dir.path().join("live"))?;
/// db.put(b"k", b"v")?;
/// db.backup_to(&dir.path().join("backup"), &mut |_| {})?;
/// let summary = sealkv_backup::verify_backup(&sealkv::Config::new(dir.path().join("backup")))?;
/// assert_eq!(summary.entries, 1);
/// # Ok(())
/// # }
/// ```
pub fn verify_backup(backup: &Config) -> Result<BackupSummary, RestoreError> {
    let (db, report) = open_checked(backup)?;
    let encrypted = db.stats()?.encryption.encrypt_at_rest;
    db.close()?;
    Ok(BackupSummary {
        entries: report.entries,
        pages_checked: report.pages_checked,
        encrypted,
    })
}

/// Restores the physical backup that `backup` (its path and key) opens
/// into the new directory `dest`, which then opens with the same key.
///
/// The backup is checked first (nothing is written if it is damaged or the
/// key is wrong); the copy is built in a temporary sibling of `dest`, gets
/// a new data key, and is renamed to `dest` only when complete and synced.
/// `progress` follows the copy of the page file.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use sealkv::{Config, Db};
/// use sealkv::crypto::MasterKey;
/// use sealkv_backup::{RestoreOptions, restore};
///
/// let dir = tempfile::tempdir()?;
/// let key = MasterKey::from_hex(&"42".repeat(32))?;
/// let db = Db::open_with_config(Config::new(dir.path().join("live")).encryption_key(key.clone()))?;
/// db.put(b"k", b"v")?;
/// db.backup_to(&dir.path().join("backup"), &mut |_| {})?;
///
/// let backup = Config::new(dir.path().join("backup")).encryption_key(key.clone());
/// restore(&backup, &dir.path().join("restored"), &RestoreOptions::new(), &mut |_| {})?;
/// let restored = Db::open_with_config(Config::new(dir.path().join("restored")).encryption_key(key))?;
/// assert_eq!(restored.get(b"k")?.as_deref(), Some(&b"v"[..]));
/// # Ok(())
/// # }
/// ```
pub fn restore(
    backup: &Config,
    dest: &Path,
    options: &RestoreOptions,
    progress: &mut dyn FnMut(BackupProgress),
) -> Result<BackupReport, RestoreError> {
    // Refuse early, before the (long) check; the engine checks again.
    if dest.exists() && !options.replace_existing {
        return Err(sealkv::Error::DestinationExists {
            path: dest.to_path_buf(),
        }
        .into());
    }
    let (db, _) = open_checked(backup)?;
    let copy = BackupOptions::new()
        .replace_existing(options.replace_existing)
        .rotate_data_key(true);
    let report = db.backup_with(dest, &copy, progress);
    let closed = db.close();
    let report = report?;
    closed?;
    tracing::debug!(
        backup = %backup.path().display(),
        dest = %dest.display(),
        pages = report.pages,
        rotated_to = ?report.rotated_to,
        "physical backup restored"
    );
    Ok(report)
}
