//! Temporary outputs renamed into place only when complete and synced,
//! named and claimed as scratch entries ([`sealkv_fileio::Scratch`]) so
//! that the next export or import to the same destination removes what a
//! killed one left.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use sealkv_fileio::{Scratch, ScratchKind, StdVfs, VfsLock};

use super::error::{ArchiveError, io};
use super::format::MAGIC;

fn scratch(dest: &Path, kind: ScratchKind) -> Result<Scratch, ArchiveError> {
    Scratch::new(dest, kind)
        .map_err(|_| ArchiveError::InvalidOptions(format!("{} names no file", dest.display())))
}

fn claim(s: &Scratch) -> Result<Box<dyn VfsLock>, ArchiveError> {
    s.claim(&StdVfs::new()).map_err(io(&s.path))
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Fsyncs the directory holding `path`, so a rename in it is durable.
fn sync_parent(path: &Path) -> Result<(), ArchiveError> {
    let dir = parent(path);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io(&dir))
}

/// Removes the temporary archives that killed exports to `dest` left:
/// those no running export holds and that hold the start of an archive
/// (or less: an export killed before its first write). Anything else is
/// left alone and logged. Returns what it removed.
pub(crate) fn remove_abandoned_exports(dest: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let vfs = StdVfs::new();
    let mut removed = Vec::new();
    for s in Scratch::find(&vfs, dest).map_err(io(dest))? {
        if s.kind != ScratchKind::Building {
            continue;
        }
        let Some(_held) = s.abandoned(&vfs).map_err(io(&s.path))? else {
            tracing::info!(path = %s.path.display(), "an export to the same destination is writing this file; left alone");
            continue;
        };
        if !starts_like_an_archive(&s.path) {
            tracing::warn!(path = %s.path.display(), "a scratch file that is not an archive: left alone");
            continue;
        }
        std::fs::remove_file(&s.path).map_err(io(&s.path))?;
        tracing::warn!(path = %s.path.display(), "removed what an interrupted export left");
        removed.push(s.path);
    }
    Ok(removed)
}

/// Whether the regular file at `path` begins with the archive magic, or
/// with a part of it (up to empty).
fn starts_like_an_archive(path: &Path) -> bool {
    use std::io::Read;
    let Ok(meta) = path.symlink_metadata() else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    let mut head = Vec::with_capacity(MAGIC.len());
    let read = File::open(path).and_then(|f| f.take(MAGIC.len() as u64).read_to_end(&mut head));
    read.is_ok() && MAGIC.starts_with(&head)
}

/// A file being written under a temporary name; removed on drop unless
/// committed.
pub(crate) struct TempFile {
    path: PathBuf,
    file: Option<File>,
    /// Held while the file is being written: marks it in use.
    _claim: Box<dyn VfsLock>,
}

impl TempFile {
    /// Creates the temporary sibling of `dest`.
    pub(crate) fn create(dest: &Path) -> Result<Self, ArchiveError> {
        remove_abandoned_exports(dest)?;
        let s = scratch(dest, ScratchKind::Building)?;
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        // Sealed or not, an export is nobody else's business: `0600`, as
        // the database's own files.
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(&s.path).map_err(io(&s.path))?;
        match claim(&s) {
            Ok(claim) => Ok(TempFile {
                path: s.path,
                file: Some(file),
                _claim: claim,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&s.path);
                Err(e)
            }
        }
    }

    /// A handle to write through.
    pub(crate) fn file(&self) -> Result<File, ArchiveError> {
        match &self.file {
            Some(f) => f.try_clone().map_err(io(&self.path)),
            None => Err(ArchiveError::InvalidOptions("temporary file closed".into())),
        }
    }

    /// Fsyncs the file and moves it to `dest`: atomically refusing an
    /// existing `dest` (a hard link fails if it exists) unless `replace`.
    pub(crate) fn commit(mut self, dest: &Path, replace: bool) -> Result<(), ArchiveError> {
        if let Some(f) = self.file.take() {
            f.sync_all().map_err(io(&self.path))?;
        }
        if replace {
            std::fs::rename(&self.path, dest).map_err(io(dest))?;
        } else {
            std::fs::hard_link(&self.path, dest).map_err(|source| {
                if source.kind() == std::io::ErrorKind::AlreadyExists {
                    ArchiveError::Exists {
                        path: dest.to_path_buf(),
                    }
                } else {
                    ArchiveError::Io {
                        path: dest.to_path_buf(),
                        source,
                    }
                }
            })?;
            std::fs::remove_file(&self.path).map_err(io(&self.path))?;
        }
        self.path = PathBuf::new();
        sync_parent(dest)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A directory being filled under a temporary name; removed on drop unless
/// committed.
pub(crate) struct TempDir {
    path: PathBuf,
    /// Held while the database is being built: marks it in use.
    _claim: Box<dyn VfsLock>,
}

impl TempDir {
    /// Creates (empty, private) and claims the temporary sibling of
    /// `dest`, after removing what killed imports to `dest` left.
    pub(crate) fn create(dest: &Path) -> Result<Self, ArchiveError> {
        sealkv::leftovers::remove_abandoned_database_dirs(dest)?;
        let s = scratch(dest, ScratchKind::Building)?;
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&s.path).map_err(io(&s.path))?;
        match claim(&s) {
            Ok(claim) => Ok(TempDir {
                path: s.path,
                _claim: claim,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir(&s.path);
                Err(e)
            }
        }
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the directory to `dest`; an existing `dest` is refused unless
    /// `replace`, and then removed only after the new one is in place.
    pub(crate) fn commit(mut self, dest: &Path, replace: bool) -> Result<(), ArchiveError> {
        let exists = dest.symlink_metadata().is_ok();
        if exists && !replace {
            return Err(ArchiveError::Exists {
                path: dest.to_path_buf(),
            });
        }
        let old = if exists {
            let old = scratch(dest, ScratchKind::Replaced)?.path;
            std::fs::rename(dest, &old).map_err(io(dest))?;
            Some(old)
        } else {
            None
        };
        std::fs::rename(&self.path, dest).map_err(io(dest))?;
        self.path = PathBuf::new();
        sync_parent(dest)?;
        if let Some(old) = old {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
