//! `sealkv keygen PATH`: a new random 256-bit key, as 64 hex digits and a
//! newline, in a file only its owner can read.

use std::io::Write;
use std::path::Path;

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
    let mut file = opts.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::Exists(path.to_path_buf())
        } else {
            CliError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let io = |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    let hex = key.to_hex();
    file.write_all(hex.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(())
}
