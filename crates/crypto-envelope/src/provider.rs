//! [`CryptoProvider`]: which ciphers a database can use.

use std::fmt;
use std::sync::Arc;

use crate::aead::{Aead, AeadAlgorithm};
use crate::algorithm::{AlgorithmId, EncryptionAlgorithm};
use crate::error::CryptoError;
use crate::keys::SecretKey;
use crate::rustcrypto;

/// A set of AEAD algorithms, looked up by their on-disk id.
///
/// Like rustls's `CryptoProvider`, it is a plain list of trait objects: the
/// default is pure-Rust RustCrypto; a user can add or replace an algorithm by
/// implementing [`AeadAlgorithm`] and building a provider with it, and every
/// layer above picks it up by id. A database written by one provider opens
/// with any other that offers the same algorithm ids.
#[derive(Clone)]
pub struct CryptoProvider {
    algorithms: Vec<Arc<dyn AeadAlgorithm>>,
}

impl fmt::Debug for CryptoProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.algorithms.iter().map(|a| a.name()))
            .finish()
    }
}

impl Default for CryptoProvider {
    fn default() -> Self {
        Self::rustcrypto()
    }
}

impl CryptoProvider {
    /// The default provider: RustCrypto's AES-256-GCM, ChaCha20-Poly1305 and
    /// AES-256-GCM-SIV.
    pub fn rustcrypto() -> Self {
        CryptoProvider {
            algorithms: rustcrypto::ALGORITHMS
                .iter()
                .map(|a| Arc::new(*a) as Arc<dyn AeadAlgorithm>)
                .collect(),
        }
    }

    /// A provider with exactly `algorithms`.
    pub fn from_algorithms(algorithms: Vec<Arc<dyn AeadAlgorithm>>) -> Self {
        CryptoProvider { algorithms }
    }

    /// This provider with `algorithm` added, replacing any with the same id.
    pub fn with_algorithm(mut self, algorithm: Arc<dyn AeadAlgorithm>) -> Self {
        self.algorithms.retain(|a| a.id() != algorithm.id());
        self.algorithms.push(algorithm);
        self
    }

    /// The algorithm with on-disk id `id`.
    pub fn algorithm(&self, id: AlgorithmId) -> Result<&dyn AeadAlgorithm, CryptoError> {
        self.algorithms
            .iter()
            .find(|a| a.id() == id)
            .map(|a| a.as_ref())
            .ok_or(CryptoError::UnsupportedAlgorithm(id))
    }

    /// The algorithms this provider offers.
    pub fn algorithms(&self) -> impl Iterator<Item = &dyn AeadAlgorithm> {
        self.algorithms.iter().map(|a| a.as_ref())
    }

    /// A cipher for algorithm `id` keyed with `key`.
    pub fn new_aead(&self, id: AlgorithmId, key: &SecretKey) -> Result<Box<dyn Aead>, CryptoError> {
        let alg = self.algorithm(id)?;
        if key.expose().len() != alg.key_len() {
            return Err(CryptoError::KeyLength {
                expected: alg.key_len(),
                actual: key.expose().len(),
            });
        }
        alg.new_aead(key).map_err(CryptoError::Aead)
    }

    /// A cipher for a built-in algorithm keyed with `key`.
    pub fn builtin(
        &self,
        algorithm: EncryptionAlgorithm,
        key: &SecretKey,
    ) -> Result<Box<dyn Aead>, CryptoError> {
        self.new_aead(algorithm.id(), key)
    }
}
