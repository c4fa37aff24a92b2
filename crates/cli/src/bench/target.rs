//! sealkv under test: one [`Engine`] per mode (plaintext, or an algorithm
//! of a provider), each with its own database directory.
//!
//! Durable batches are `Db::write` under the default `SyncMode::Always`
//! (an fsync per commit, shared by concurrent commits).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv::crypto::{CryptoProvider, EncryptionAlgorithm, MasterKey};
use sealkv::{Config, Db, WriteBatch};

use super::engine::{Batch, Check, Engine, Open, Reader, Store, Visit};
use super::records::remove_dir;
use crate::exit::CliError;

/// One way of storing the data: plaintext, or an algorithm from a provider.
#[derive(Clone)]
pub(crate) struct Mode {
    /// Column name in the report.
    pub(crate) name: &'static str,
    pub(crate) algorithm: Option<EncryptionAlgorithm>,
    pub(crate) provider: Arc<CryptoProvider>,
}

impl Mode {
    /// Plaintext, then AES-256-GCM and ChaCha20-Poly1305 with the default
    /// provider, then (feature `ring`) both with the `ring` provider.
    pub(crate) fn all() -> Vec<Mode> {
        let rc = Arc::new(CryptoProvider::rustcrypto());
        #[allow(unused_mut)]
        let mut modes = vec![
            Mode {
                name: "plaintext",
                algorithm: None,
                provider: rc.clone(),
            },
            Mode {
                name: "aes-256-gcm",
                algorithm: Some(EncryptionAlgorithm::Aes256Gcm),
                provider: rc.clone(),
            },
            Mode {
                name: "chacha20-poly1305",
                algorithm: Some(EncryptionAlgorithm::ChaCha20Poly1305),
                provider: rc,
            },
        ];
        #[cfg(feature = "ring")]
        {
            let ring = Arc::new(CryptoProvider::ring());
            modes.push(Mode {
                name: "aes-256-gcm (ring)",
                algorithm: Some(EncryptionAlgorithm::Aes256Gcm),
                provider: ring.clone(),
            });
            modes.push(Mode {
                name: "chacha20-poly1305 (ring)",
                algorithm: Some(EncryptionAlgorithm::ChaCha20Poly1305),
                provider: ring,
            });
        }
        modes
    }
}

/// One mode's database directory and options.
pub(crate) struct Target {
    pub(crate) mode: Mode,
    pub(crate) dir: PathBuf,
    /// The page cache in MiB; `None`: the configuration's default.
    pub(crate) cache_mib: Option<u64>,
}

impl Target {
    pub(crate) fn new(mode: Mode, dir: PathBuf, cache_mib: Option<u64>) -> Self {
        Target {
            mode,
            dir,
            cache_mib,
        }
    }
}

impl Target {
    fn config(&self, create: bool) -> Result<Config, CliError> {
        let mut c = Config::new(&self.dir)
            .create_if_missing(create)
            .crypto_provider(self.mode.provider.clone());
        if let Some(mib) = self.cache_mib {
            c = c.cache_size(mib << 20);
        }
        if let Some(alg) = self.mode.algorithm {
            // A fixed benchmark key: the data is throwaway.
            let key =
                MasterKey::from_bytes(&[0x42; 32]).map_err(|e| CliError::Key(e.to_string()))?;
            c = c.encryption_key(key).encryption_algorithm(alg);
        }
        Ok(c)
    }

    /// Opens the database (creating it when `create`).
    pub(crate) fn open(&self, create: bool) -> Result<Db, CliError> {
        Ok(Db::open_with_config(self.config(create)?)?)
    }
}

impl Engine for Target {
    fn name(&self) -> &'static str {
        self.mode.name
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn session(
        &self,
        open: Open,
        work: &mut dyn FnMut(&dyn Store) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        if open == Open::Fresh {
            remove_dir(&self.dir)?;
        }
        let db = self.open(open == Open::Fresh)?;
        let result = work(&SealStore { db: &db });
        let closed = db.close();
        result?;
        Ok(closed?)
    }
}

struct SealStore<'a> {
    db: &'a Db,
}

impl Store for SealStore<'_> {
    fn write(&self, batch: &Batch) -> Result<(), CliError> {
        let mut b = WriteBatch::new();
        for (k, v) in batch.iter() {
            b.put(k, v);
        }
        Ok(self.db.write(&b)?)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>, CliError> {
        Ok(Box::new(SealReader { db: self.db }))
    }
}

struct SealReader<'a> {
    db: &'a Db,
}

impl Reader for SealReader<'_> {
    fn get(&mut self, key: &[u8], check: Check<'_>) -> Result<(), CliError> {
        let got = self.db.get(key)?;
        check(got.as_deref())
    }

    fn scan(&mut self, start: &[u8], limit: u64, visit: Visit<'_>) -> Result<u64, CliError> {
        let mut seen = 0;
        for item in self.db.range(start..)? {
            if seen == limit {
                break;
            }
            let (k, v) = item?;
            visit(&k, &v)?;
            seen += 1;
        }
        Ok(seen)
    }
}
