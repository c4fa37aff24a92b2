//! The protection modes a run covers, and the configuration both processes
//! open the database with.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv::anchor::FileAnchor;
use sealkv::crypto::{EncryptionAlgorithm, KeySource, MasterKey};
use sealkv::{Config, SyncMode};

/// The freshness anchor of the database at `dir`: `DIR.anchor`, beside the
/// directory (outside it, as an anchor must be).
pub(crate) fn anchor_path(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(".anchor");
    PathBuf::from(name)
}

/// The fixed test master key.
pub(crate) const KEY: [u8; 32] = [0x5a; 32];

/// Plaintext, sealed with one algorithm under a raw key, or sealed
/// (AES-256-GCM) under a key wrapper: an HSM's key (see [`crate::hsm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Plaintext,
    Sealed(EncryptionAlgorithm),
    /// The master key is a key wrapper's (`hsm`; not part of `all`).
    Hsm,
}

impl Mode {
    /// Plaintext, then every built-in algorithm.
    pub(crate) fn all() -> Vec<Mode> {
        let mut m = vec![Mode::Plaintext];
        m.extend(EncryptionAlgorithm::ALL.map(Mode::Sealed));
        m
    }

    /// `plaintext`, `aes`, `chacha`, `siv`, `hsm` or `all` (every mode
    /// but `hsm`).
    pub(crate) fn parse_list(s: &str) -> Result<Vec<Mode>, String> {
        Ok(match s {
            "all" => Self::all(),
            other => vec![Self::parse(other)?],
        })
    }

    pub(crate) fn parse(s: &str) -> Result<Mode, String> {
        Ok(match s {
            "plaintext" => Mode::Plaintext,
            "aes" | "aes-256-gcm" => Mode::Sealed(EncryptionAlgorithm::Aes256Gcm),
            "chacha" | "chacha20-poly1305" => Mode::Sealed(EncryptionAlgorithm::ChaCha20Poly1305),
            "siv" | "aes-256-gcm-siv" => Mode::Sealed(EncryptionAlgorithm::Aes256GcmSiv),
            "hsm" => Mode::Hsm,
            other => {
                return Err(format!(
                    "unknown mode {other:?} (plaintext, aes, chacha, siv, hsm or all)"
                ));
            }
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Plaintext => "plaintext",
            Mode::Sealed(alg) => alg.name(),
            Mode::Hsm => "hsm",
        }
    }

    pub(crate) fn sealed(self) -> bool {
        matches!(self, Mode::Sealed(_) | Mode::Hsm)
    }

    /// The master key of a sealed mode (what a rekey goes to as well): the
    /// fixed test key, or the HSM mode's key wrapper.
    pub(crate) fn key_source(self) -> Result<KeySource, String> {
        match self {
            Mode::Hsm => Ok(KeySource::Wrapper(crate::hsm::wrapper()?)),
            _ => Ok(KeySource::Key(
                MasterKey::from_bytes(&KEY).map_err(|e| e.to_string())?,
            )),
        }
    }

    /// The configuration of the database at `dir`: every write fsynced
    /// before it is acknowledged, and the smallest memtables and WAL
    /// segments the engine accepts, so flushes and segment rolls are
    /// frequent. The key is a fixed test key, or in the HSM mode the key
    /// wrapper's ([`Mode::key_source`]). With `anchored`, a
    /// freshness anchor file beside the directory ([`anchor_path`]),
    /// updated after every commit.
    pub(crate) fn config(self, dir: &Path, anchored: bool) -> Result<Config, String> {
        let mut config = Config::new(dir)
            .sync_mode(SyncMode::Always)
            .memtable_size(64 << 10)
            .wal_segment_size(64 << 10)
            .page_size(4096);
        if anchored {
            config = config.freshness_anchor(Arc::new(FileAnchor::new(anchor_path(dir))));
        }
        Ok(match self {
            Mode::Plaintext => config,
            Mode::Sealed(alg) => config
                .key_source(self.key_source()?)
                .encryption_algorithm(alg),
            Mode::Hsm => config
                .key_source(self.key_source()?)
                .encryption_algorithm(EncryptionAlgorithm::Aes256Gcm),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for m in Mode::all() {
            assert_eq!(Mode::parse(m.name()).unwrap(), m);
        }
        assert_eq!(Mode::parse_list("all").unwrap().len(), 4);
        assert_eq!(Mode::parse(Mode::Hsm.name()).unwrap(), Mode::Hsm);
        assert!(!Mode::all().contains(&Mode::Hsm));
        assert_eq!(Mode::parse("aes").unwrap().name(), "aes-256-gcm");
        assert!(Mode::parse("rot13").is_err());
    }
}
