//! Temporary outputs renamed into place only when complete and synced.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::error::{ArchiveError, io};

/// A random hex suffix for temporary names (no secret in it).
fn suffix() -> Result<String, ArchiveError> {
    let mut b = [0u8; 6];
    sealkv::crypto::random::fill(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The sibling of `dest` named `.NAME.WHAT-RANDOM`.
fn sibling(dest: &Path, what: &str) -> Result<PathBuf, ArchiveError> {
    let name = dest
        .file_name()
        .ok_or_else(|| ArchiveError::InvalidOptions(format!("{} names no file", dest.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = parent(dest);
    Ok(parent.join(format!(".{name}.{what}-{}", suffix()?)))
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

/// A file being written under a temporary name; removed on drop unless
/// committed.
pub(crate) struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// Creates the temporary sibling of `dest`.
    pub(crate) fn create(dest: &Path) -> Result<Self, ArchiveError> {
        let path = sibling(dest, "tmp")?;
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        // Sealed or not, an export is nobody else's business: `0600`, as
        // the database's own files.
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(&path).map_err(io(&path))?;
        Ok(TempFile {
            path,
            file: Some(file),
        })
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
}

impl TempDir {
    /// Names (does not create) the temporary sibling of `dest`.
    pub(crate) fn name(dest: &Path) -> Result<Self, ArchiveError> {
        Ok(TempDir {
            path: sibling(dest, "import")?,
        })
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
            let old = sibling(dest, "old")?;
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
