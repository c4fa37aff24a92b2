//! Disk space: the bytes an engine's files take on disk.

use std::path::Path;

use crate::exit::CliError;

/// The bytes allocated on disk to the files under `dir` (st_blocks × 512,
/// summed over the tree: what `du` counts, holes and preallocation
/// included as the file system has them). Elsewhere than on Unix, the
/// files' lengths.
pub(crate) fn allocated_bytes(dir: &Path) -> Result<u64, CliError> {
    let io = |source| CliError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let meta = entry.metadata().map_err(|source| CliError::Io {
            path: entry.path(),
            source,
        })?;
        if meta.is_dir() {
            total += allocated_bytes(&entry.path())?;
        } else if meta.is_file() {
            total += on_disk(&meta);
        }
    }
    Ok(total)
}

#[cfg(unix)]
fn on_disk(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.blocks() * 512
}

#[cfg(not(unix))]
fn on_disk(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn counts_every_file_of_the_tree_by_its_blocks() {
        let tmp = tempfile::tempdir().unwrap();
        let sub = tmp.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(tmp.path().join("a"), vec![1u8; 10_000]).unwrap();
        std::fs::write(sub.join("b"), vec![2u8; 5_000]).unwrap();
        let got = allocated_bytes(tmp.path()).unwrap();
        // At least the data (whole blocks of it), at most a few blocks more.
        assert!((15_000..15_000 + 4 * 4096 + 8192).contains(&got), "{got}");
        // A sparse file takes only the blocks written.
        let f = std::fs::File::create(tmp.path().join("sparse")).unwrap();
        f.set_len(1 << 30).unwrap();
        let with_sparse = allocated_bytes(tmp.path()).unwrap();
        if cfg!(unix) {
            assert!(with_sparse < got + (1 << 20), "{with_sparse}");
        }
        assert!(matches!(
            allocated_bytes(&tmp.path().join("missing")),
            Err(CliError::Io { .. })
        ));
    }
}
