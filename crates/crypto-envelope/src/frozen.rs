//! [`FrozenAlgorithm`]: an algorithm's answers about itself, taken once.
//!
//! A provider asks an [`AeadAlgorithm`] for its id, name, lengths and
//! misuse-resistance claim exactly once, when it takes the algorithm in;
//! the self-test then checks that copy, and every later lookup, listing and
//! cipher construction uses the same copy. A plugin whose answers change
//! later (a claim read from a configuration switch, an id computed on each
//! call) cannot make the provider act on answers that were never checked.

use std::sync::Arc;

use crate::aead::{Aead, AeadAlgorithm, AeadError, WipeOnFailedOpen};
use crate::algorithm::AlgorithmId;
use crate::error::CryptoError;
use crate::keys::SecretKey;
use crate::selftest::KnownAnswer;

/// An algorithm with its answers fixed at the moment it was frozen; only
/// [`AeadAlgorithm::new_aead`] and [`AeadAlgorithm::known_answers`] still
/// reach the algorithm itself, and every cipher it builds is checked
/// against the frozen answers and wrapped in [`WipeOnFailedOpen`], however
/// it is reached (the provider, or the factory from
/// [`crate::hazmat::aead_algorithm`]).
pub(crate) struct FrozenAlgorithm {
    id: AlgorithmId,
    name: &'static str,
    key_len: usize,
    nonce_len: usize,
    tag_len: usize,
    misuse_resistant: bool,
    inner: Arc<dyn AeadAlgorithm>,
}

impl FrozenAlgorithm {
    /// Asks `inner` each question once and keeps the answers.
    pub(crate) fn freeze(inner: Arc<dyn AeadAlgorithm>) -> Self {
        FrozenAlgorithm {
            id: inner.id(),
            name: inner.name(),
            key_len: inner.key_len(),
            nonce_len: inner.nonce_len(),
            tag_len: inner.tag_len(),
            misuse_resistant: inner.misuse_resistant(),
            inner,
        }
    }

    /// A cipher keyed with `key`, checked against the frozen answers and
    /// wrapped so a failed open leaves zeros.
    pub(crate) fn new_aead_checked(&self, key: &SecretKey) -> Result<Box<dyn Aead>, CryptoError> {
        if key.expose().len() != self.key_len {
            return Err(CryptoError::KeyLength {
                expected: self.key_len,
                actual: key.expose().len(),
            });
        }
        let aead = self.inner.new_aead(key).map_err(CryptoError::Aead)?;
        // The plugin builds a new cipher each time: it must still be what
        // the self-test saw (the frozen lengths are sealkv's 12 and 16).
        if aead.algorithm() != self.id
            || aead.nonce_len() != self.nonce_len
            || aead.tag_len() != self.tag_len
        {
            return Err(CryptoError::ProviderRejected {
                id: self.id,
                reason: "the cipher built does not match its algorithm",
            });
        }
        Ok(Box::new(WipeOnFailedOpen::new(
            aead,
            self.id,
            self.nonce_len,
            self.tag_len,
        )))
    }
}

impl AeadAlgorithm for FrozenAlgorithm {
    fn id(&self) -> AlgorithmId {
        self.id
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn key_len(&self) -> usize {
        self.key_len
    }

    fn nonce_len(&self) -> usize {
        self.nonce_len
    }

    fn tag_len(&self) -> usize {
        self.tag_len
    }

    fn misuse_resistant(&self) -> bool {
        self.misuse_resistant
    }

    fn known_answers(&self) -> &'static [KnownAnswer] {
        self.inner.known_answers()
    }

    /// [`FrozenAlgorithm::new_aead_checked`], for holders of the factory
    /// ([`crate::hazmat::aead_algorithm`]): every refusal is
    /// [`AeadError::InvalidLength`] or the plugin's own error.
    fn new_aead(&self, key: &SecretKey) -> Result<Box<dyn Aead>, AeadError> {
        self.new_aead_checked(key).map_err(|e| match e {
            CryptoError::Aead(e) => e,
            _ => AeadError::InvalidLength,
        })
    }
}
