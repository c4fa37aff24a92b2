//! Shared helpers.

use std::path::PathBuf;
use std::sync::Arc;

use sealkv::crypto::{EncryptionAlgorithm, MasterKey};
use sealkv::{Config, SyncMode};
use sealkv_fileio::SimVfs;

pub(crate) fn key(byte: u8) -> MasterKey {
    MasterKey::from_bytes(&[byte; 32]).unwrap()
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
