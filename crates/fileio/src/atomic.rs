//! Crash-safe whole-file replacement.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{FileError, FileOp};
use crate::vfs::{OpenMode, Vfs};

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Replaces the file at `path` with `bytes` so that a crash at any instant
/// leaves either the old file or the new one, whole: write `path.tmp`, fsync
/// it, rename it over `path`, fsync the directory.
///
/// A stale `path.tmp` from an earlier crash is overwritten. The temporary
/// name is fixed, so two writers of one path must not run at once: callers
/// hold the database's exclusive lock (every sealkv caller does).
pub fn write_atomic(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let tmp = temp_path(path);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match vfs.remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(FileError::new(FileOp::Remove, &tmp, e)),
    }
    let file = vfs
        .open(&tmp, OpenMode::CreateNew)
        .map_err(FileError::with(FileOp::Open, &tmp))?;
    file.write_all_at(bytes, 0)
        .map_err(FileError::with(FileOp::Write, &tmp))?;
    file.sync_all()
        .map_err(FileError::with(FileOp::Sync, &tmp))?;
    drop(file);
    vfs.rename(&tmp, path)
        .map_err(FileError::with(FileOp::Rename, path))?;
    vfs.sync_dir(&dir)
        .map_err(FileError::with(FileOp::SyncDir, &dir))?;
    Ok(())
}

/// Reads the whole file at `path`.
pub fn read_whole(vfs: &dyn Vfs, path: &Path) -> Result<Vec<u8>, FileError> {
    read_bounded(vfs, path, u64::MAX)
}

/// Reads the whole file at `path`, refusing (with an `InvalidData` error,
/// before allocating) a file longer than `max_len` bytes: for small files
/// whose size an attacker or a damaged disk could inflate.
pub fn read_bounded(vfs: &dyn Vfs, path: &Path, max_len: u64) -> Result<Vec<u8>, FileError> {
    let file = vfs
        .open(path, OpenMode::Read)
        .map_err(FileError::with(FileOp::Open, path))?;
    let len = file.len().map_err(FileError::with(FileOp::Read, path))?;
    if len > max_len {
        return Err(FileError::new(
            FileOp::Read,
            path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file is {len} bytes, more than the {max_len} expected"),
            ),
        ));
    }
    let len = usize::try_from(len).map_err(|_| {
        FileError::new(
            FileOp::Read,
            path,
            io::Error::new(io::ErrorKind::InvalidData, "file too large for memory"),
        )
    })?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, 0)
        .map_err(FileError::with(FileOp::Read, path))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimVfs;

    #[test]
    fn read_bounded_refuses_oversized_files_before_reading() {
        let sim = SimVfs::new();
        let path = Path::new("/db/KEYS");
        sim.write_file(path, &[7u8; 100]);
        assert_eq!(read_bounded(&sim, path, 100).unwrap(), vec![7u8; 100]);
        let err = read_bounded(&sim, path, 99).unwrap_err();
        assert_eq!(err.op, FileOp::Read);
        assert_eq!(err.source.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn write_atomic_survives_a_crash_before_the_directory_sync() {
        let sim = SimVfs::new();
        let path = Path::new("/db/KEYS");
        sim.write_file(path, b"old");
        write_atomic(&sim, path, b"new").unwrap();
        sim.crash();
        assert_eq!(read_whole(&sim, path).unwrap(), b"new");
    }
}
