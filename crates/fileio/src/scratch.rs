//! Scratch entries: the hidden siblings an output is built in before it is
//! renamed into place (a backup or restored database, an export, an
//! import), and the destination a replacement moves aside.
//!
//! They are named `.NAME.sealkv-tmp-UNIQUE` (being built) and
//! `.NAME.sealkv-old-UNIQUE` (replaced, to be removed) next to the
//! destination `NAME`, so an operator recognises them and the next run for
//! the same destination finds them. The process that makes one holds an
//! exclusive advisory lock on it ([`Scratch::claim`]) until it is done:
//! the lock dies with the process, so one that can be locked is abandoned
//! (its maker was killed), and one that cannot belongs to a run still
//! going. What an abandoned entry holds is for its maker to check before
//! removing it (nothing here deletes).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::vfs::{LockKind, Vfs, VfsLock};

/// The marker in every scratch name.
const MARK: &str = ".sealkv-";

/// What a scratch entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScratchKind {
    /// An output being built (`tmp`): complete only once renamed.
    Building,
    /// A destination moved aside by a replacement (`old`), to be removed
    /// once the new one is in place.
    Replaced,
}

impl ScratchKind {
    fn tag(self) -> &'static str {
        match self {
            ScratchKind::Building => "tmp",
            ScratchKind::Replaced => "old",
        }
    }
}

/// A scratch entry next to a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scratch {
    /// Its path.
    pub path: PathBuf,
    /// What it is.
    pub kind: ScratchKind,
}

/// The directory holding `path` (`.` for a bare name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(dest: &Path) -> io::Result<String> {
    dest.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} names no file", dest.display()),
            )
        })
}

impl Scratch {
    /// A new, unique scratch path of `kind` for `dest` (not created):
    /// `.NAME.sealkv-KIND-PID-NANOS-N`, unique in this process by its
    /// counter and across processes by the process id.
    pub fn new(dest: &Path, kind: ScratchKind) -> io::Result<Scratch> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            ".{}{MARK}{}-{}-{nanos}-{n}",
            file_name(dest)?,
            kind.tag(),
            std::process::id()
        );
        Ok(Scratch {
            path: parent_dir(dest).join(name),
            kind,
        })
    }

    /// The scratch entries of `dest` that exist, in name order.
    pub fn find(vfs: &dyn Vfs, dest: &Path) -> io::Result<Vec<Scratch>> {
        let name = file_name(dest)?;
        let dir = parent_dir(dest);
        if !vfs.exists(&dir)? {
            return Ok(Vec::new());
        }
        let prefix = format!(".{name}{MARK}");
        let mut out = Vec::new();
        for path in vfs.read_dir(&dir)? {
            let Some(rest) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(&prefix))
            else {
                continue;
            };
            let kind = match rest.split_once('-') {
                Some(("tmp", unique)) if is_unique(unique) => ScratchKind::Building,
                Some(("old", unique)) if is_unique(unique) => ScratchKind::Replaced,
                _ => continue,
            };
            out.push(Scratch { path, kind });
        }
        Ok(out)
    }

    /// Takes the lock that marks this entry in use by this process (it must
    /// exist: a file, or a directory). Hold it until the entry is renamed
    /// or removed.
    pub fn claim(&self, vfs: &dyn Vfs) -> io::Result<Box<dyn VfsLock>> {
        vfs.lock(&self.path, LockKind::Exclusive)
    }

    /// Whether the process that made this entry is gone: its lock can be
    /// taken. `Ok(None)` while a live run holds it; `Ok(Some(lock))` holds
    /// it for the caller while it removes the entry.
    pub fn abandoned(&self, vfs: &dyn Vfs) -> io::Result<Option<Box<dyn VfsLock>>> {
        match self.claim(vfs) {
            Ok(lock) => Ok(Some(lock)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `PID-NANOS-N`, three decimal numbers.
fn is_unique(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{OpenMode, StdVfs};

    #[test]
    fn names_are_found_only_for_their_destination_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = StdVfs::new();
        let dest = dir.path().join("backup");
        let tmp = Scratch::new(&dest, ScratchKind::Building).unwrap();
        let old = Scratch::new(&dest, ScratchKind::Replaced).unwrap();
        assert_ne!(
            tmp.path,
            Scratch::new(&dest, ScratchKind::Building).unwrap().path
        );
        let name = tmp.path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.starts_with(".backup.sealkv-tmp-"), "{name}");
        vfs.create_dir_all(&tmp.path).unwrap();
        vfs.open(&old.path, OpenMode::CreateNew).unwrap();
        // Not ours: another destination's, a look-alike, a user's file.
        let other = Scratch::new(&dir.path().join("backup2"), ScratchKind::Building).unwrap();
        vfs.create_dir_all(&other.path).unwrap();
        for name in [
            ".backup.sealkv-tmp-x",
            ".backup.tmp-1-2-3",
            "backup.sealkv-tmp-1-2-3",
        ] {
            vfs.open(&dir.path().join(name), OpenMode::CreateNew)
                .unwrap();
        }
        let mut found = Scratch::find(&vfs, &dest).unwrap();
        found.sort_by(|a, b| a.path.cmp(&b.path));
        let mut want = vec![tmp, old];
        want.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(found, want);
        assert!(
            Scratch::find(&vfs, &dir.path().join("none").join("x"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_entry_claimed_by_a_live_run_is_not_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = StdVfs::new();
        for (i, as_dir) in [true, false].into_iter().enumerate() {
            let s = Scratch::new(&dir.path().join(format!("d{i}")), ScratchKind::Building).unwrap();
            if as_dir {
                vfs.create_dir_all(&s.path).unwrap();
            } else {
                vfs.open(&s.path, OpenMode::CreateNew).unwrap();
            }
            let held = s.claim(&vfs).unwrap();
            assert!(s.abandoned(&vfs).unwrap().is_none(), "in use");
            drop(held);
            assert!(s.abandoned(&vfs).unwrap().is_some(), "abandoned");
        }
    }
}
