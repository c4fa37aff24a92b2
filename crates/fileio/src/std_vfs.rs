//! The real file system.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::vfs::{LockKind, OpenMode, Vfs, VfsFile, VfsLock};

/// The operating system's file system.
///
/// New files are created with mode `0600` and new directories with mode
/// `0700` on Unix: a database's files are nobody else's business, sealed or
/// not.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdVfs;

impl StdVfs {
    /// The real file system.
    pub fn new() -> Self {
        StdVfs
    }
}

#[derive(Debug)]
struct StdFile {
    file: File,
}

#[derive(Debug)]
struct StdLock {
    // Dropping the file releases the lock.
    _file: File,
}

impl VfsLock for StdLock {}

#[cfg(unix)]
fn create_options(opts: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    opts.mode(0o600);
}

#[cfg(not(unix))]
fn create_options(_opts: &mut OpenOptions) {}

impl Vfs for StdVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        let mut opts = OpenOptions::new();
        opts.read(true);
        match mode {
            OpenMode::Read => {}
            OpenMode::ReadWrite => {
                opts.write(true);
            }
            OpenMode::CreateNew => {
                opts.write(true).create_new(true);
                create_options(&mut opts);
            }
            OpenMode::CreateOrOpen => {
                opts.write(true).create(true);
                create_options(&mut opts);
            }
        }
        let file = opts.open(path)?;
        Ok(Arc::new(StdFile { file }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(path)? {
            out.push(entry?.path());
        }
        out.sort();
        Ok(out)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(path)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            // Directory handles cannot be fsynced portably; Windows is not a
            // promised platform yet (see the README). Say so rather than
            // claim a durability that was not obtained.
            let _ = path;
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "directory fsync is not supported on this platform",
            ))
        }
    }

    fn lock(&self, path: &Path, kind: LockKind) -> io::Result<Box<dyn VfsLock>> {
        let file = open_lock_file(path)?;
        let result = match kind {
            LockKind::Shared => file.try_lock_shared(),
            LockKind::Exclusive => file.try_lock(),
        };
        match result {
            Ok(()) => Ok(Box::new(StdLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the lock is held by another handle or process",
            )),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// Opens the file to lock: read-only when it exists (an advisory lock
/// needs no write access, so a database on read-only media can be read
/// under a shared lock; a directory is locked itself), created (mode
/// `0600`) when it is missing.
fn open_lock_file(path: &Path) -> io::Result<File> {
    match File::open(path) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut opts = OpenOptions::new();
            opts.write(true).create(true);
            create_options(&mut opts);
            opts.open(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("the lock file is missing and cannot be created: {e}"),
                )
            })
        }
        Err(e) => Err(e),
    }
}

impl VfsFile for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset)
        }
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::write_at(&self.file, buf, offset)
        }
        #[cfg(windows)]
        {
            std::os::windows::fs::FileExt::seek_write(&self.file, buf, offset)
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        // On Apple platforms only F_FULLFSYNC reaches the platter, and std's
        // `sync_all` is the call that issues it.
        #[cfg(target_vendor = "apple")]
        {
            self.file.sync_all()
        }
        #[cfg(not(target_vendor = "apple"))]
        {
            self.file.sync_data()
        }
    }

    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_lock_excludes_second_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("LOCK");
        let vfs = StdVfs::new();
        let held = vfs.lock(&path, LockKind::Exclusive).unwrap();
        let err = vfs.lock(&path, LockKind::Shared).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let err = vfs.lock(&path, LockKind::Exclusive).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(held);
        let _shared1 = vfs.lock(&path, LockKind::Shared).unwrap();
        let _shared2 = vfs.lock(&path, LockKind::Shared).unwrap();
        let err = vfs.lock(&path, LockKind::Exclusive).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    /// The access modes (`O_ACCMODE` of `/proc/self/fdinfo`) of this
    /// process's open descriptors of `path`.
    #[cfg(target_os = "linux")]
    fn open_modes_of(path: &Path) -> Vec<u32> {
        let path = fs::canonicalize(path).unwrap();
        let mut modes = Vec::new();
        for entry in fs::read_dir("/proc/self/fd").unwrap() {
            let fd = entry.unwrap().path();
            if fs::read_link(&fd).ok().as_deref() != Some(path.as_path()) {
                continue;
            }
            let name = fd.file_name().unwrap().to_str().unwrap().to_string();
            let info = fs::read_to_string(format!("/proc/self/fdinfo/{name}")).unwrap();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .unwrap()
                .trim();
            modes.push(u32::from_str_radix(flags, 8).unwrap() & 0o3);
        }
        modes
    }

    /// A lock opens an existing lock file read-only (so read-only media
    /// can be locked for reading), and creates a missing one.
    #[cfg(target_os = "linux")]
    #[test]
    fn locks_open_an_existing_lock_file_read_only() {
        const O_RDONLY: u32 = 0;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("LOCK");
        let vfs = StdVfs::new();
        let created = vfs.lock(&path, LockKind::Shared).unwrap();
        assert!(path.exists(), "a missing lock file is created");
        drop(created);
        for kind in [LockKind::Shared, LockKind::Exclusive] {
            let held = vfs.lock(&path, kind).unwrap();
            let modes = open_modes_of(&path);
            assert_eq!(modes, vec![O_RDONLY], "{kind:?}");
            drop(held);
            assert!(open_modes_of(&path).is_empty());
        }
    }

    #[cfg(unix)]
    #[test]
    fn new_directories_are_private_and_existing_ones_are_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let vfs = StdVfs::new();
        let deep = dir.path().join("a").join("b");
        vfs.create_dir_all(&deep).unwrap();
        for d in [dir.path().join("a"), deep.clone()] {
            let mode = fs::metadata(&d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
        // An existing directory keeps the mode its owner chose.
        fs::set_permissions(&deep, fs::Permissions::from_mode(0o750)).unwrap();
        vfs.create_dir_all(&deep).unwrap();
        let mode = fs::metadata(&deep).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o750);
    }

    #[test]
    fn create_new_refuses_existing_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let vfs = StdVfs::new();
        let f = vfs.open(&path, OpenMode::CreateNew).unwrap();
        f.write_all_at(b"abc", 10).unwrap();
        assert_eq!(f.len().unwrap(), 13);
        let err = vfs.open(&path, OpenMode::CreateNew).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let mut buf = [1u8; 13];
        f.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf[..10], &[0u8; 10]);
        assert_eq!(&buf[10..], b"abc");
        let err = f.read_exact_at(&mut buf, 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
