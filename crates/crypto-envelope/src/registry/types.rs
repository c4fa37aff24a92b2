//! The public vocabulary of the registry: KEK kinds, key purposes and
//! states, and the facts about a key that are not secret.

use std::fmt;

use crate::algorithm::AlgorithmId;
use crate::keys::{KeyId, KeySource};

/// How the registry's master key (KEK) is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KekKind {
    /// A raw 256-bit key (given directly or by a key provider).
    Raw,
    /// A passphrase, stretched with Argon2id under the salt and cost stored
    /// in the registry header.
    Passphrase,
    /// A [`KeyWrapper`](crate::KeyWrapper) (an HSM or KMS key): the header
    /// records the wrapper, its key id and a random root key it wrapped.
    Wrapped,
}

impl fmt::Display for KekKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KekKind::Raw => "raw key",
            KekKind::Passphrase => "passphrase",
            KekKind::Wrapped => "key wrapper",
        })
    }
}

impl KekKind {
    pub(super) fn of(source: &KeySource) -> Self {
        match source {
            KeySource::Passphrase { .. } => KekKind::Passphrase,
            KeySource::Wrapper(_) => KekKind::Wrapped,
            KeySource::Key(_) | KeySource::Provider(_) => KekKind::Raw,
        }
    }
}

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// A data key (DEK): seals WAL records, pages and metadata through
    /// writer sessions.
    Data,
    /// A field key: seals single values ([`crate::field`]).
    Field,
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyPurpose::Data => "data",
            KeyPurpose::Field => "field",
        })
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyState {
    /// Data key: the one new sessions seal under. Field key: usable.
    Active,
    /// Data key superseded by a rotation: opens old units, seals nothing.
    Readable,
    /// Data key retired: its material is gone from the registry.
    Retired,
    /// Field key destroyed: its material is gone from the registry.
    Destroyed,
}

impl KeyState {
    /// Whether the registry holds the key's material in this state.
    pub fn has_material(self) -> bool {
        matches!(self, KeyState::Active | KeyState::Readable)
    }
}

/// The public facts about one key: never its material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's id, unique in its database and never reused.
    pub id: KeyId,
    /// What it is for.
    pub purpose: KeyPurpose,
    /// The algorithm it seals with.
    pub algorithm: AlgorithmId,
    /// Its state.
    pub state: KeyState,
}
