//! The built-in algorithms and their stable on-disk ids.

use std::fmt;
use std::str::FromStr;

/// The stable on-disk identifier of an AEAD algorithm.
///
/// Ids below `0x8000` are reserved for sealkv's built-in algorithms
/// ([`EncryptionAlgorithm`]); a third-party cipher picks one at or above
/// [`AlgorithmId::FIRST_CUSTOM`] and registers it in a
/// [`CryptoProvider`](crate::CryptoProvider).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlgorithmId(pub u16);

impl AlgorithmId {
    /// The first id free for third-party algorithms.
    pub const FIRST_CUSTOM: u16 = 0x8000;

    /// Whether the id is in the range reserved for sealkv's built-in
    /// algorithms (below [`AlgorithmId::FIRST_CUSTOM`]).
    pub const fn is_reserved(self) -> bool {
        self.0 < Self::FIRST_CUSTOM
    }
}

impl From<EncryptionAlgorithm> for AlgorithmId {
    fn from(algorithm: EncryptionAlgorithm) -> Self {
        algorithm.id()
    }
}

impl fmt::Debug for AlgorithmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match EncryptionAlgorithm::from_id(*self) {
            Some(a) => write!(f, "AlgorithmId({a})"),
            None => write!(f, "AlgorithmId({:#06x})", self.0),
        }
    }
}

impl fmt::Display for AlgorithmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match EncryptionAlgorithm::from_id(*self) {
            Some(a) => a.fmt(f),
            None => write!(f, "custom algorithm {:#06x}", self.0),
        }
    }
}

/// The AEAD algorithms sealkv ships.
///
/// All three take 256-bit keys and 96-bit nonces and produce 128-bit tags.
/// The on-disk ids are part of the file formats and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum EncryptionAlgorithm {
    /// AES-256-GCM: the default; fastest where the CPU has AES and carry-less
    /// multiply instructions (every x86-64 and ARMv8 server and laptop).
    #[default]
    Aes256Gcm,
    /// ChaCha20-Poly1305: constant-time in software, for CPUs without AES
    /// instructions.
    ChaCha20Poly1305,
    /// AES-256-GCM-SIV: nonce-misuse resistant; used for deterministic
    /// field encryption and for wrapping keys in the registry.
    Aes256GcmSiv,
}

impl EncryptionAlgorithm {
    /// Every built-in algorithm.
    pub const ALL: [EncryptionAlgorithm; 3] = [
        EncryptionAlgorithm::Aes256Gcm,
        EncryptionAlgorithm::ChaCha20Poly1305,
        EncryptionAlgorithm::Aes256GcmSiv,
    ];

    /// The stable on-disk id.
    pub const fn id(self) -> AlgorithmId {
        AlgorithmId(match self {
            EncryptionAlgorithm::Aes256Gcm => 1,
            EncryptionAlgorithm::ChaCha20Poly1305 => 2,
            EncryptionAlgorithm::Aes256GcmSiv => 3,
        })
    }

    /// The built-in algorithm with on-disk id `id`, if any.
    pub fn from_id(id: AlgorithmId) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.id() == id)
    }

    /// Whether the algorithm is nonce-misuse resistant (AES-256-GCM-SIV).
    pub const fn misuse_resistant(self) -> bool {
        matches!(self, EncryptionAlgorithm::Aes256GcmSiv)
    }

    /// The canonical name, as accepted by [`FromStr`] and printed by
    /// [`Display`](fmt::Display).
    pub const fn name(self) -> &'static str {
        match self {
            EncryptionAlgorithm::Aes256Gcm => "aes-256-gcm",
            EncryptionAlgorithm::ChaCha20Poly1305 => "chacha20-poly1305",
            EncryptionAlgorithm::Aes256GcmSiv => "aes-256-gcm-siv",
        }
    }
}

impl fmt::Display for EncryptionAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for an algorithm name that names no algorithm on offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown encryption algorithm {name:?}; expected one of {}", .known.join(", "))]
pub struct UnknownAlgorithm {
    name: String,
    known: Vec<&'static str>,
}

impl UnknownAlgorithm {
    /// The error for `name`, when `known` are the names on offer.
    pub(crate) fn new(name: &str, known: Vec<&'static str>) -> Self {
        UnknownAlgorithm {
            name: name.to_string(),
            known,
        }
    }

    /// The name asked for.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names on offer.
    pub fn known(&self) -> &[&'static str] {
        &self.known
    }
}

/// The form names are compared in: trimmed, lowercase, `_` as `-`.
pub(crate) fn normalize_name(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

impl FromStr for EncryptionAlgorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = normalize_name(s);
        Self::ALL
            .into_iter()
            .find(|a| a.name() == norm)
            .ok_or_else(|| UnknownAlgorithm::new(s, Self::ALL.map(|a| a.name()).to_vec()))
    }
}

/// What a [`CryptoProvider`](crate::CryptoProvider) says about one of its
/// algorithms: enough to list, choose and show it, and nothing that seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlgorithmInfo {
    /// The stable on-disk id.
    pub id: AlgorithmId,
    /// The name it is chosen by (`--algorithm`, [`CryptoProvider::find_algorithm`](crate::CryptoProvider::find_algorithm)):
    /// the built-in name for a built-in id, the plugin's name otherwise.
    pub name: &'static str,
    /// The implementation's own name (`"aes-256-gcm (ring)"` for `ring`'s
    /// AES-256-GCM; the same as `name` for a plugin).
    pub implementation: &'static str,
    /// Whether it is nonce-misuse resistant (deterministic field encryption
    /// needs this).
    pub misuse_resistant: bool,
}

impl AlgorithmInfo {
    /// Whether this is one of sealkv's built-in algorithms.
    pub fn is_builtin(&self) -> bool {
        EncryptionAlgorithm::from_id(self.id).is_some()
    }
}

impl fmt::Display for AlgorithmInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_round_trip_and_are_stable() {
        let expected = [
            (1, "aes-256-gcm"),
            (2, "chacha20-poly1305"),
            (3, "aes-256-gcm-siv"),
        ];
        for (alg, (id, name)) in EncryptionAlgorithm::ALL.into_iter().zip(expected) {
            assert_eq!(alg.id(), AlgorithmId(id));
            assert_eq!(alg.to_string(), name);
            assert_eq!(name.parse::<EncryptionAlgorithm>().unwrap(), alg);
            assert_eq!(EncryptionAlgorithm::from_id(AlgorithmId(id)), Some(alg));
        }
        assert_eq!(
            "AES_256_GCM".parse::<EncryptionAlgorithm>().unwrap(),
            EncryptionAlgorithm::Aes256Gcm
        );
        assert!("aes-128-gcm".parse::<EncryptionAlgorithm>().is_err());
        assert_eq!(EncryptionAlgorithm::from_id(AlgorithmId(0)), None);
        assert_eq!(
            EncryptionAlgorithm::default(),
            EncryptionAlgorithm::Aes256Gcm
        );
    }
}
