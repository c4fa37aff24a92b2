//! Shared helpers.

use std::path::PathBuf;
use std::sync::Arc;

use sealkv::crypto::{EncryptionAlgorithm, MasterKey};
use sealkv::{Config, SyncMode};
use sealkv_fileio::SimVfs;

pub(crate) fn key(byte: u8) -> MasterKey {
    MasterKey::from_bytes(&[byte; 32]).unwrap()
}

/// How a matrix's database gets its master key: the raw test key (7), or
/// a key wrapper (the in-process [`SoftwareWrapper`](sealkv::crypto::SoftwareWrapper)
/// "hsm-1"), as an HSM would hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Master {
    Raw,
    Wrapped,
}

impl Master {
    /// The database's master key.
    pub(crate) fn source(self) -> sealkv::crypto::KeySource {
        match self {
            Master::Raw => sealkv::crypto::KeySource::Key(key(7)),
            Master::Wrapped => wrapper_source(1),
        }
    }

    /// What a rekey goes to: the raw key 99, or another wrapping key
    /// ("hsm-2").
    pub(crate) fn rekey_target(self) -> sealkv::crypto::KeySource {
        match self {
            Master::Raw => sealkv::crypto::KeySource::Key(key(99)),
            Master::Wrapped => wrapper_source(2),
        }
    }

    /// [`sim_config`] under this master key.
    pub(crate) fn config(self, vfs: &SimVfs, alg: EncryptionAlgorithm) -> Config {
        sim_config(vfs, Some(alg))
            .key_source(self.source())
            .encryption_algorithm(alg)
    }
}

/// An in-process key wrapper "hsm-N" under the test key 0x30+N.
pub(crate) fn wrapper_source(n: u8) -> sealkv::crypto::KeySource {
    sealkv::crypto::KeySource::Wrapper(Arc::new(sealkv::crypto::SoftwareWrapper::new(
        format!("hsm-{n}"),
        key(0x30 + n),
    )))
}

pub(crate) fn dir() -> PathBuf {
    PathBuf::from("/db")
}

/// A config on a simulated disk, small flush sizes so flushes happen.
pub(crate) fn sim_config(vfs: &SimVfs, alg: Option<EncryptionAlgorithm>) -> Config {
    let mut c = Config::new(dir())
        .vfs(Arc::new(vfs.clone()))
        .sync_mode(SyncMode::Always)
        .memtable_size(64 << 10)
        .wal_segment_size(64 << 10);
    if let Some(alg) = alg {
        c = c.encryption_key(key(7)).encryption_algorithm(alg);
    }
    c
}

/// Plaintext, then each built-in algorithm.
pub(crate) fn modes() -> Vec<Option<EncryptionAlgorithm>> {
    let mut m = vec![None];
    m.extend(EncryptionAlgorithm::ALL.map(Some));
    m
}

pub(crate) fn collect(
    iter: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), sealkv::Error>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    iter.collect::<Result<Vec<_>, _>>().unwrap()
}
