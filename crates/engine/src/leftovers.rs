//! What interrupted runs leave next to their destination, and removing it.
//!
//! A backup, a restore and an import build their database in a hidden
//! sibling of the destination (`.NAME.sealkv-tmp-…`) and rename it into
//! place when complete; a replacement moves the old destination aside
//! (`.NAME.sealkv-old-…`) until the new one is in place. A run that is
//! killed leaves these behind. The next run to the same destination
//! removes those whose maker is gone (its lock can be taken:
//! [`sealkv_fileio::Scratch`]) and that hold only what the engine writes;
//! anything else is left alone and logged. [`leftovers`] lists them
//! without touching anything (for `sealkv verify`).

use std::path::{Path, PathBuf};

use sealkv_fileio::{FileError, FileOp, Scratch, StdVfs, Vfs};

pub use sealkv_fileio::ScratchKind;

use crate::error::Error;
use crate::layout::{WAL_DIR, is_database_entry};

/// A scratch entry found next to a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Leftover {
    /// Its path.
    pub path: PathBuf,
    /// Being built (`tmp`) or a replaced destination (`old`).
    pub kind: ScratchKind,
    /// A running command holds it (it is no leftover yet).
    pub in_use: bool,
}

fn io(op: FileOp, path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io(FileError::new(op, path, e))
}

/// The scratch entries next to `dest` (a database directory or an archive
/// file): what interrupted backups, restores, exports or imports to it
/// left, and those of runs still going. Changes nothing.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// assert!(sealkv::leftovers::leftovers(&dir.path().join("backup"))?.is_empty());
/// # Ok(())
/// # }
/// ```
pub fn leftovers(dest: &Path) -> Result<Vec<Leftover>, Error> {
    let vfs = StdVfs::new();
    let found = Scratch::find(&vfs, dest).map_err(io(FileOp::Dir, dest))?;
    let mut out = Vec::with_capacity(found.len());
    for s in found {
        // Probing takes the lock for an instant; a run that starts at that
        // very instant is one that could not yet have used the entry.
        let in_use = s
            .abandoned(&vfs)
            .map_err(io(FileOp::Lock, &s.path))?
            .is_none();
        out.push(Leftover {
            path: s.path,
            kind: s.kind,
            in_use,
        });
    }
    Ok(out)
}

/// Removes the abandoned scratch directories of runs that built a database
/// at `dest` (backup, restore, import), on the real file system; returns
/// what it removed. See [`leftovers`] for what is kept.
pub fn remove_abandoned_database_dirs(dest: &Path) -> Result<Vec<PathBuf>, Error> {
    remove_abandoned_dirs(&StdVfs::new(), dest)
}

/// As [`remove_abandoned_database_dirs`], through `vfs`. An entry is
/// removed only if its maker is gone, it is a directory holding only what
/// the engine writes, and, for a replaced destination, `dest` exists (the
/// replacement got into place; otherwise the old one is the only copy and
/// is left, with a warning).
pub(crate) fn remove_abandoned_dirs(vfs: &dyn Vfs, dest: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut removed = Vec::new();
    for s in Scratch::find(vfs, dest).map_err(io(FileOp::Dir, dest))? {
        let Some(_held) = s.abandoned(vfs).map_err(io(FileOp::Lock, &s.path))? else {
            tracing::info!(path = %s.path.display(), "a run to the same destination is using this scratch entry; left alone");
            continue;
        };
        if s.kind == ScratchKind::Replaced && !vfs.exists(dest).map_err(io(FileOp::Open, dest))? {
            tracing::warn!(
                path = %s.path.display(),
                dest = %dest.display(),
                "an interrupted replacement left the previous destination aside and none in its place: left alone (rename it back to use it)"
            );
            continue;
        }
        if !holds_only_database_files(vfs, &s.path)? {
            tracing::warn!(
                path = %s.path.display(),
                "a scratch entry holds files sealkv does not write: left alone"
            );
            continue;
        }
        crate::backup::remove_tree(vfs, &s.path)?;
        tracing::warn!(path = %s.path.display(), "removed what an interrupted run left");
        removed.push(s.path);
    }
    Ok(removed)
}

/// Whether `dir` is a directory whose entries are all ones the engine
/// writes (and whose log directory holds only segments).
fn holds_only_database_files(vfs: &dyn Vfs, dir: &Path) -> Result<bool, Error> {
    let Ok(entries) = vfs.read_dir(dir) else {
        return Ok(false);
    };
    for entry in entries {
        let Some(name) = entry.file_name() else {
            return Ok(false);
        };
        if !is_database_entry(name) {
            return Ok(false);
        }
        if name == WAL_DIR {
            let Ok(segments) = vfs.read_dir(&entry) else {
                return Ok(false);
            };
            let segment = |p: &PathBuf| {
                p.extension().is_some_and(|e| e == "wal")
                    && p.file_stem()
                        .and_then(|s| s.to_str())
                        .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
            };
            if !segments.iter().all(segment) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
