//! [`RegistryFile`]: the registry on disk, `KEYS` in the database directory,
//! through a [`Vfs`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv_fileio::{FileError, FileOp, Vfs, read_bounded, write_atomic};

use crate::keys::KeySource;
use crate::provider::CryptoProvider;

use super::KeyRegistry;
use super::error::RegistryError;

/// The registry's file name in the database directory.
pub const REGISTRY_FILE_NAME: &str = "KEYS";

/// The largest registry file read (64 MiB, over a million keys): a damaged
/// or hostile length cannot make loading allocate more.
pub const MAX_REGISTRY_LEN: u64 = 64 * 1024 * 1024;

/// The key registry file of one database directory.
///
/// Every write replaces the whole file crash-safely
/// ([`sealkv_fileio::write_atomic`]: write `KEYS.tmp`, fsync it, rename it
/// over `KEYS`, fsync the directory): a crash at any instant leaves the old
/// registry or the new one, whole, and a stale `KEYS.tmp` is ignored. If a
/// write returns an error, either version may be the one on disk (the
/// caller must reload before relying on it).
#[derive(Debug, Clone)]
pub struct RegistryFile {
    vfs: Arc<dyn Vfs>,
    path: PathBuf,
}

impl RegistryFile {
    /// The registry file of database directory `dir`.
    pub fn new(vfs: Arc<dyn Vfs>, dir: &Path) -> Self {
        RegistryFile {
            vfs,
            path: dir.join(REGISTRY_FILE_NAME),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file exists.
    pub fn exists(&self) -> Result<bool, RegistryError> {
        self.vfs
            .exists(&self.path)
            .map_err(|e| FileError::new(FileOp::Open, &self.path, e).into())
    }

    /// Writes `registry` as a new file; refuses (`AlreadyExists`) if one
    /// exists. The database directory must exist, and the caller must hold
    /// the database's exclusive lock: the existence check and the write are
    /// two steps, so two unlocked creators could race.
    pub fn create(&self, registry: &KeyRegistry) -> Result<(), RegistryError> {
        if self.exists()? {
            return Err(RegistryError::AlreadyExists(self.path.clone()));
        }
        self.store(registry)
    }

    /// Replaces the file with `registry`, crash-safely.
    pub fn store(&self, registry: &KeyRegistry) -> Result<(), RegistryError> {
        write_atomic(self.vfs.as_ref(), &self.path, &registry.to_bytes())?;
        Ok(())
    }

    /// The file's bytes (at most [`MAX_REGISTRY_LEN`]).
    pub fn read_bytes(&self) -> Result<Vec<u8>, RegistryError> {
        read_bounded(self.vfs.as_ref(), &self.path, MAX_REGISTRY_LEN).map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData {
                RegistryError::Corruption {
                    what: "registry file longer than the limit",
                    offset: MAX_REGISTRY_LEN,
                }
            } else {
                e.into()
            }
        })
    }

    /// Loads and opens the registry with the KEK from `kek` (see
    /// [`KeyRegistry::open`]).
    pub fn load(&self, kek: &KeySource) -> Result<KeyRegistry, RegistryError> {
        KeyRegistry::open(&self.read_bytes()?, kek)
    }

    /// [`RegistryFile::load`] with a chosen crypto provider.
    pub fn load_with_provider(
        &self,
        kek: &KeySource,
        provider: Arc<CryptoProvider>,
    ) -> Result<KeyRegistry, RegistryError> {
        KeyRegistry::open_with_provider(&self.read_bytes()?, kek, provider)
    }
}
