//! `sealkv keygen PATH`: a new random 256-bit key, as 64 hex digits and a
//! newline, in a file only its owner can read, made durable (the file and
//! its directory fsynced) before success is reported. On any failure the
//! file it created is removed: no empty or partial key file is left.

use std::io::Write;
use std::path::{Path, PathBuf};

use sealkv::crypto::SecretKey;

use crate::exit::CliError;

pub(crate) fn run(path: &Path) -> Result<(), CliError> {
    let key = SecretKey::random().map_err(|e| CliError::Key(e.to_string()))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::Exists(path.to_path_buf())
        } else {
            CliError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    // From here the file is ours: remove it if anything fails.
    let written = write_durably(file, path, key.to_hex().as_bytes());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

fn write_durably(mut file: std::fs::File, path: &Path, hex: &[u8]) -> Result<(), CliError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CliError::Io { path, source }
    };
    file.write_all(hex).map_err(io(path))?;
    file.write_all(b"\n").map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    drop(file);
    let dir = parent(path);
    sync_dir(&dir).map_err(io(&dir))
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes the new directory entry durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Directory fsync is not available here (Windows is not a promised
/// platform): the file itself is synced.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
