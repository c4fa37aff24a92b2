//! [`RegistryFile`]: the registry on disk (`KEYS` in the database
//! directory), replaced crash-safely.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv_fileio::{Vfs, read_bounded, write_atomic};

use super::format::MAX_FILE_LEN;
use super::{KeyRegistry, RegistryError};
use crate::keys::KeySource;
use crate::provider::CryptoProvider;

/// The registry file of one database.
#[derive(Clone)]
pub struct RegistryFile {
    vfs: Arc<dyn Vfs>,
    path: PathBuf,
}

impl std::fmt::Debug for RegistryFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryFile")
            .field("path", &self.path)
            .finish()
    }
}

impl RegistryFile {
    /// The registry file at `path`.
    pub fn new(vfs: Arc<dyn Vfs>, path: impl AsRef<Path>) -> Self {
        RegistryFile {
            vfs,
            path: path.as_ref().to_path_buf(),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `registry` as a new file; refuses if one exists.
    pub fn create(&self, registry: &KeyRegistry) -> Result<(), RegistryError> {
        let exists = self
            .vfs
            .exists(&self.path)
            .map_err(sealkv_fileio::FileError::with(
                sealkv_fileio::FileOp::Open,
                &self.path,
            ))?;
        if exists {
            return Err(RegistryError::AlreadyExists(self.path.clone()));
        }
        self.replace(registry)
    }

    /// Reads and opens the registry with the KEK `source` gives.
    pub fn load(
        &self,
        source: &KeySource,
        provider: &CryptoProvider,
    ) -> Result<KeyRegistry, RegistryError> {
        let bytes = read_bounded(&*self.vfs, &self.path, MAX_FILE_LEN as u64).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                RegistryError::Corruption {
                    what: "longer than any key registry",
                    offset: MAX_FILE_LEN as u64,
                }
            } else {
                RegistryError::Io(e)
            }
        })?;
        KeyRegistry::open(&bytes, source, provider)
    }

    /// Replaces the file with `registry`, crash-safely: a crash at any
    /// instant leaves the old registry or the new one, whole (temporary
    /// file, fsync, rename, directory fsync).
    pub fn replace(&self, registry: &KeyRegistry) -> Result<(), RegistryError> {
        let bytes = registry.to_bytes()?;
        write_atomic(&*self.vfs, &self.path, &bytes)?;
        Ok(())
    }
}
