//! Hot physical backups: [`Db::backup_to`].
//!
//! A backup is a database directory holding the state of the live database
//! as of one point — every batch up to the sequence number the backup
//! reports, nothing after — taken while writers go on:
//!
//! 1. Under the flush lock: the active memtable is frozen and flushed, so
//!    the page file's last commit holds every acknowledged batch up to its
//!    `applied_seq`; a read transaction pins that commit (its pages are not
//!    reused while it lives); its meta page, the file header and the key
//!    registry file (read under the registry lock, with the key source that
//!    opens it) are copied into memory. No commit, rotation or data-key
//!    retirement can land in between, so the registry copy holds every key
//!    the pinned pages name. Then the lock is released and writers and
//!    flushes go on.
//! 2. The pinned commit is walked and authenticated ([`ReadTxn::pages`]);
//!    its tree, overflow and free-list pages are copied still sealed, at
//!    their offsets, into a new page file in a temporary sibling directory
//!    of the destination; free pages and the other meta slot stay zeros.
//! 3. The copy is opened as a database of its own — a new writer session,
//!    so nothing is ever sealed again under the live session's subkeys (a
//!    nonce is never used twice under one key, not even by two copies) —
//!    given a lineage id of its own (its first commit; a freshness anchor
//!    of the live database then refuses the copy put in its place),
//!    its data key rotated if asked, and three commits
//!    write fresh meta pages and free lists that record the zeroed pages.
//!    It is closed, fsynced, and only then renamed to the destination.
//!
//! A failure at any step removes the temporary directory and leaves the
//! live database as it was (apart from the flush of step 1, an ordinary
//! one).

use std::path::{Path, PathBuf};

use sealkv_core_store::{PageRole, ReadTxn};
use sealkv_crypto_envelope::registry::KeyRegistry;
use sealkv_crypto_envelope::{KeyId, KeySource};
use sealkv_fileio::{FileError, FileOp, LockKind, OpenMode, Scratch, ScratchKind, Vfs};

use crate::db::{Db, Inner};
use crate::error::Error;
use crate::layout::{DATA_FILE, KEYS_FILE, WAL_DIR};
use crate::meta::EngineMeta;

/// Page 0 is the file header, pages 1 and 2 the meta slots (FORMAT.md,
/// "Page file"); transaction `t` lives in slot `1 + t % 2`.
const META_A: u64 = 1;
const FIRST_DATA_PAGE: u64 = 3;
/// Bytes copied between progress reports.
const RUN_BYTES: usize = 1 << 20;

/// How [`Db::backup_with`] behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupOptions {
    /// Replace an existing destination (default: refuse with
    /// [`Error::DestinationExists`]). The old destination is removed only
    /// after the new backup is complete and in place.
    pub replace_existing: bool,
    /// Rotate the copy's data key before it is put in place (what a
    /// restore does, so that the copy and its original never seal under
    /// the same data key). Ignored for a plaintext database.
    pub rotate_data_key: bool,
}

impl BackupOptions {
    /// The defaults: refuse an existing destination, keep the data key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`BackupOptions::replace_existing`].
    #[must_use]
    pub fn replace_existing(mut self, on: bool) -> Self {
        self.replace_existing = on;
        self
    }

    /// Sets [`BackupOptions::rotate_data_key`].
    #[must_use]
    pub fn rotate_data_key(mut self, on: bool) -> Self {
        self.rotate_data_key = on;
        self
    }
}

/// Progress of a backup, reported after each run of pages copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupProgress {
    /// Pages of the page file done (copied or left zero).
    pub pages_done: u64,
    /// Pages in the page file.
    pub pages_total: u64,
    /// Bytes of the page file done.
    pub bytes_done: u64,
    /// Bytes in the page file.
    pub bytes_total: u64,
}

/// What a finished backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// The backup holds every batch up to this sequence number and none
    /// after it.
    pub seq: u64,
    /// Pages in the backup's page file.
    pub pages: u64,
    /// Pages copied (tree, overflow and free-list pages, still sealed).
    pub pages_copied: u64,
    /// Free pages left as zeros.
    pub free_pages_zeroed: u64,
    /// Bytes of the backup's page file.
    pub bytes: u64,
    /// Whether the backup is encrypted at rest.
    pub encrypted: bool,
    /// The new data key of the copy, when [`BackupOptions::rotate_data_key`]
    /// was asked for an encrypted database.
    pub rotated_to: Option<KeyId>,
    /// Where the backup is.
    pub path: PathBuf,
}

/// The registry file's bytes, and (for a handle opened with a key) the key
/// source and the open registry that open them.
type RegistryCapture = (Vec<u8>, Option<(KeySource, KeyRegistry)>);

/// What was captured under the flush lock.
struct Capture {
    txn: ReadTxn,
    header: Vec<u8>,
    meta_page: Vec<u8>,
    /// The registry file and the key source that opens it (none when this
    /// handle was opened without a key: a plaintext database whose
    /// registry holds only field keys), with the live open registry.
    registry: Option<RegistryCapture>,
    seq: u64,
}

impl Db {
    /// Takes a hot physical backup into the new directory `dest` (its
    /// parent must exist; `dest` must not, see [`BackupOptions`]) with the
    /// default options. Writers and readers go on meanwhile. The backup
    /// opens with the same key as this database and passes
    /// [`Db::verify`]. `progress` is called after each run of pages.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = sealkv::Db::open(dir.path().join("live"))?;
    /// db.put(b"k", b"v")?;
    /// let report = db.backup_to(&dir.path().join("backup"), &mut |_| {})?;
    /// db.put(b"k", b"after")?;
    /// let copy = sealkv::Db::open(dir.path().join("backup"))?;
    /// assert_eq!(copy.get(b"k")?.as_deref(), Some(&b"v"[..]));
    /// assert_eq!(report.seq, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn backup_to(
        &self,
        dest: &Path,
        progress: &mut dyn FnMut(BackupProgress),
    ) -> Result<BackupReport, Error> {
        self.backup_with(dest, &BackupOptions::default(), progress)
    }

    /// [`Db::backup_to`] with options. A database open read-only can be
    /// backed up only if its WAL holds nothing the page file lacks
    /// ([`Error::ReadOnly`] otherwise).
    pub fn backup_with(
        &self,
        dest: &Path,
        options: &BackupOptions,
        progress: &mut dyn FnMut(BackupProgress),
    ) -> Result<BackupReport, Error> {
        self.check_open()?;
        let inner = &self.inner;
        let vfs = inner.config.vfs.clone();
        let name = dest
            .file_name()
            .ok_or_else(|| Error::InvalidDestination {
                path: dest.to_path_buf(),
                reason: "it has no directory name".into(),
            })?
            .to_string_lossy()
            .into_owned();
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Replacing through a symbolic link would remove what it points to
        // (an older backup, or the live database itself).
        if std::fs::symlink_metadata(dest).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::InvalidDestination {
                path: dest.to_path_buf(),
                reason: "it is a symbolic link: give the real directory".into(),
            });
        }
        if overlaps(&inner.dir, &parent, &name) {
            return Err(Error::InvalidDestination {
                path: dest.to_path_buf(),
                reason: format!(
                    "it is inside the database directory {} or contains it",
                    inner.dir.display()
                ),
            });
        }
        // What a killed backup or restore to `dest` left behind.
        crate::leftovers::remove_abandoned_dirs(&*vfs, dest)?;
        if exists(&*vfs, dest)? && !options.replace_existing {
            return Err(Error::DestinationExists {
                path: dest.to_path_buf(),
            });
        }
        if !exists(&*vfs, &parent)? {
            return Err(Error::NotFound { path: parent });
        }
        let tmp = Scratch::new(dest, ScratchKind::Building)
            .map_err(io(FileOp::Dir, dest))?
            .path;
        tracing::debug!(
            dest = %dest.display(),
            rotate_data_key = options.rotate_data_key,
            "physical backup started"
        );
        let cap = inner.capture()?;
        let result = (|| {
            vfs.create_dir_all(&tmp).map_err(io(FileOp::Dir, &tmp))?;
            // Marks the copy as in use until it is in place: the next run
            // to `dest` removes it only once this process is gone.
            let _claim = vfs
                .lock(&tmp, LockKind::Exclusive)
                .map_err(io(FileOp::Lock, &tmp))?;
            let mut report = inner.copy_pages(&cap, &tmp, progress)?;
            drop(cap.txn);
            report.rotated_to = finish_copy(inner, &tmp, cap.registry, cap.seq, options)?;
            for dir in [tmp.join(WAL_DIR), tmp.clone()] {
                vfs.sync_dir(&dir).map_err(io(FileOp::SyncDir, &dir))?;
            }
            publish(&*vfs, &tmp, dest, &parent)?;
            report.path = dest.to_path_buf();
            tracing::debug!(
                dest = %dest.display(),
                seq = report.seq,
                pages = report.pages,
                pages_copied = report.pages_copied,
                bytes = report.bytes,
                encrypted = report.encrypted,
                rotated_to = ?report.rotated_to,
                "physical backup finished"
            );
            Ok(report)
        })();
        if result.is_err()
            && exists(&*vfs, &tmp).unwrap_or(false)
            && let Err(e) = remove_tree(&*vfs, &tmp)
        {
            tracing::warn!(path = %tmp.display(), error = %e, "could not remove a failed backup's temporary directory");
        }
        result
    }
}

impl Inner {
    /// Step 1: flush, pin the last commit, copy its meta page, the header
    /// and the registry, all under the flush lock.
    fn capture(&self) -> Result<Capture, Error> {
        let mut st = self.lock_flush()?;
        if self.wal.is_some() {
            self.freeze(0)?;
            self.flush_frozen(&mut st)?;
        } else if !self.mems.read().active.is_empty() {
            // Read-only, with log records the page file lacks: a copy of
            // the page file alone would miss them.
            return Err(Error::ReadOnly);
        }
        let txn = self.store.read();
        let seq = EngineMeta::decode(txn.app_meta(), &self.dir.join(DATA_FILE))?.applied_seq;
        let header = txn.raw_page(0).map_err(|e| self.store_error(e))?;
        let meta_page = txn
            .raw_page(META_A + txn.txn() % 2)
            .map_err(|e| self.store_error(e))?;
        let registry = match &self.keys {
            Some(k) => Some(
                k.backup_copy()
                    .map(|(bytes, source, live)| (bytes, Some((source, live))))?,
            ),
            None => {
                // Without a key nothing can change the registry.
                let path = self.dir.join(KEYS_FILE);
                if exists(&*self.config.vfs, &path)? {
                    let bytes = sealkv_fileio::read_whole(&*self.config.vfs, &path)?;
                    Some((bytes, None))
                } else {
                    None
                }
            }
        };
        drop(st);
        Ok(Capture {
            txn,
            header,
            meta_page,
            registry,
            seq,
        })
    }

    /// Step 2: writes the registry and the page file of the copy into
    /// `tmp`, fsynced.
    fn copy_pages(
        &self,
        cap: &Capture,
        tmp: &Path,
        progress: &mut dyn FnMut(BackupProgress),
    ) -> Result<BackupReport, Error> {
        let vfs = &self.config.vfs;
        if let Some((bytes, _)) = &cap.registry {
            let path = tmp.join(KEYS_FILE);
            let f = vfs
                .open(&path, OpenMode::CreateNew)
                .map_err(io(FileOp::Open, &path))?;
            f.write_all_at(bytes, 0).map_err(io(FileOp::Write, &path))?;
            f.sync_all().map_err(io(FileOp::Sync, &path))?;
        }
        let roles = cap.txn.pages().map_err(|e| self.store_error(e))?;
        let ps = self.store.page_size() as usize;
        let page_count = roles
            .last()
            .map_or(FIRST_DATA_PAGE, |(p, _)| p + 1)
            .max(FIRST_DATA_PAGE);
        let mut copy = vec![false; usize::try_from(page_count).unwrap_or(0)];
        let mut zeroed = 0u64;
        for (page, role) in &roles {
            let keep = matches!(
                role,
                PageRole::Tree | PageRole::Overflow | PageRole::FreeList
            );
            zeroed += u64::from(!keep);
            if let Some(slot) = copy.get_mut(*page as usize) {
                *slot = keep;
            }
        }
        let path = tmp.join(DATA_FILE);
        let f = vfs
            .open(&path, OpenMode::CreateNew)
            .map_err(io(FileOp::Open, &path))?;
        let bytes_total = page_count * ps as u64;
        f.set_len(bytes_total).map_err(io(FileOp::SetLen, &path))?;
        let mut report = BackupReport {
            seq: cap.seq,
            pages: page_count,
            pages_copied: 0,
            free_pages_zeroed: zeroed,
            bytes: bytes_total,
            encrypted: self.sealed,
            rotated_to: None,
            path: tmp.to_path_buf(),
        };
        // Runs of consecutive non-zero pages, written in one call each.
        let mut run: Vec<u8> = Vec::with_capacity(RUN_BYTES);
        let mut run_start = 0u64;
        let flush_run = |run: &mut Vec<u8>, start: u64| -> Result<(), Error> {
            if !run.is_empty() {
                f.write_all_at(run, start * ps as u64)
                    .map_err(io(FileOp::Write, &path))?;
                run.clear();
            }
            Ok(())
        };
        let meta_slot = META_A + cap.txn.txn() % 2;
        let every = (RUN_BYTES / ps.max(1)).max(1) as u64;
        for page in 0..page_count {
            let bytes = if page == 0 {
                Some(cap.header.clone())
            } else if page == meta_slot {
                Some(cap.meta_page.clone())
            } else if copy.get(page as usize).copied().unwrap_or(false) {
                report.pages_copied += 1;
                Some(cap.txn.raw_page(page).map_err(|e| self.store_error(e))?)
            } else {
                None
            };
            match bytes {
                Some(b) => {
                    if run.is_empty() {
                        run_start = page;
                    }
                    run.extend_from_slice(&b);
                }
                None => flush_run(&mut run, run_start)?,
            }
            if run.len() >= RUN_BYTES {
                flush_run(&mut run, run_start)?;
            }
            if (page + 1) % every == 0 || page + 1 == page_count {
                progress(BackupProgress {
                    pages_done: page + 1,
                    pages_total: page_count,
                    bytes_done: (page + 1) * ps as u64,
                    bytes_total,
                });
            }
        }
        flush_run(&mut run, run_start)?;
        f.sync_all().map_err(io(FileOp::Sync, &path))?;
        Ok(report)
    }
}

/// Step 3: opens the copy (a new writer session), rotates its data key if
/// asked, writes three fresh commits that record the zeroed free pages and
/// closes it. Returns the new data key, if rotated.
fn finish_copy(
    live: &Inner,
    tmp: &Path,
    registry: Option<RegistryCapture>,
    seq: u64,
    options: &BackupOptions,
) -> Result<Option<KeyId>, Error> {
    let mut config = live.config.clone();
    config.path = tmp.to_path_buf();
    config.read_only = false;
    config.create_if_missing = false;
    config.algorithm = None;
    config.encrypt_at_rest = live.sealed;
    let (key, live_registry) = registry
        .and_then(|(_, source)| source)
        .map_or((None, None), |(source, live)| (Some(source), Some(live)));
    config.key = key;
    config.registry_copy_of = live_registry;
    // The copy is a database of its own from here: a new line of commits,
    // so that put where the live database was, its anchor tells it apart.
    config.new_lineage = true;
    // The live database's freshness anchor records the live database: the
    // copy has the same id, and its commits recorded there would make the
    // live directory look older than its anchor.
    config.anchor = None;
    let copy = Db::open_with_config(config)?;
    let result = (|| {
        let rotated = if options.rotate_data_key && copy.inner.sealed {
            Some(copy.rotate_data_key()?)
        } else {
            None
        };
        let inner = &copy.inner;
        let mut st = inner.lock_flush()?;
        if st.meta.applied_seq != seq {
            return Err(Error::Corruption {
                file: tmp.join(DATA_FILE),
                what: format!(
                    "the copy opened at sequence {} instead of {seq}",
                    st.meta.applied_seq
                ),
            });
        }
        inner.zeroing_commits(&mut st)?;
        drop(st);
        Ok(rotated)
    })();
    let closed = copy.close();
    let rotated = result?;
    closed?;
    Ok(rotated)
}

/// Puts the finished copy `tmp` in place as `dest`; an existing `dest` is
/// moved aside first and removed once the new one is in place.
fn publish(vfs: &dyn Vfs, tmp: &Path, dest: &Path, parent: &Path) -> Result<(), Error> {
    let old = if exists(vfs, dest)? {
        let old = Scratch::new(dest, ScratchKind::Replaced)
            .map_err(io(FileOp::Rename, dest))?
            .path;
        vfs.rename(dest, &old).map_err(io(FileOp::Rename, dest))?;
        Some(old)
    } else {
        None
    };
    if let Err(e) = vfs.rename(tmp, dest) {
        if let Some(old) = &old {
            // Put the previous backup back where it was.
            let _ = vfs.rename(old, dest);
        }
        return Err(io(FileOp::Rename, tmp)(e));
    }
    vfs.sync_dir(parent).map_err(io(FileOp::SyncDir, parent))?;
    if let Some(old) = old {
        if let Err(e) = remove_tree(vfs, &old) {
            tracing::warn!(path = %old.display(), error = %e, "could not remove the replaced backup");
        }
        let _ = vfs.sync_dir(parent);
    }
    Ok(())
}

/// Whether `parent/name` is the database directory `live`, inside it, or
/// contains it (then replacing it would delete the live database). Paths
/// are compared resolved where they exist on the real file system, else as
/// given.
fn overlaps(live: &Path, parent: &Path, name: &str) -> bool {
    let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let live = resolve(live);
    let dest = resolve(parent).join(name);
    live.starts_with(&dest) || dest.starts_with(&live)
}

/// Removes `path` and everything under it, through the Vfs.
pub(crate) fn remove_tree(vfs: &dyn Vfs, path: &Path) -> Result<(), FileError> {
    for entry in vfs
        .read_dir(path)
        .map_err(FileError::with(FileOp::Dir, path))?
    {
        if vfs.remove_file(&entry).is_err() {
            remove_tree(vfs, &entry)?;
        }
    }
    vfs.remove_dir(path)
        .map_err(FileError::with(FileOp::Remove, path))
}

fn exists(vfs: &dyn Vfs, path: &Path) -> Result<bool, Error> {
    vfs.exists(path).map_err(io(FileOp::Open, path))
}

fn io(op: FileOp, path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io(FileError::new(op, path, e))
}
