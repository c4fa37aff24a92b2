//! [`FrozenAlgorithm`]: an algorithm's answers about itself, taken once.
//!
//! A provider asks an [`AeadAlgorithm`] for its id, name, lengths and
//! misuse-resistance claim exactly once, when it takes the algorithm in;
//! the self-test then checks that copy, and every later lookup, listing and
//! cipher construction uses the same copy. A plugin whose answers change
//! later (a claim read from a configuration switch, an id computed on each
//! call) cannot make the provider act on answers that were never checked.

use std::sync::Arc;

use crate::aead::{Aead, AeadAlgorithm, AeadError};
use crate::algorithm::AlgorithmId;
use crate::keys::SecretKey;
use crate::selftest::KnownAnswer;

/// An algorithm with its answers fixed at the moment it was frozen; only
/// [`AeadAlgorithm::new_aead`] and [`AeadAlgorithm::known_answers`] still
/// reach the algorithm itself.
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

    fn new_aead(&self, key: &SecretKey) -> Result<Box<dyn Aead>, AeadError> {
        self.inner.new_aead(key)
    }
}
