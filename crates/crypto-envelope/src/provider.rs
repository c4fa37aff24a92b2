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

    /// The `ring` provider (cargo feature `ring`): `ring`'s AES-256-GCM and
    /// ChaCha20-Poly1305 (assembly, about three times the default's
    /// throughput), RustCrypto's AES-256-GCM-SIV (`ring` has none).
    ///
    /// It writes exactly the bytes the default provider writes: a database
    /// written with either opens with the other.
    ///
    /// ```
    /// use sealkv_crypto_envelope::{CryptoProvider, EncryptionAlgorithm, SecretKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let key = SecretKey::from_bytes(&[7; 32])?;
    /// let (mut a, mut b) = (b"page".to_vec(), b"page".to_vec());
    /// let (mut ta, mut tb) = ([0u8; 16], [0u8; 16]);
    /// for (provider, buf, tag) in [
    ///     (CryptoProvider::ring(), &mut a, &mut ta),
    ///     (CryptoProvider::rustcrypto(), &mut b, &mut tb),
    /// ] {
    ///     let aead = provider.builtin(EncryptionAlgorithm::Aes256Gcm, &key)?;
    ///     aead.seal_in_place_detached(&[0; 12], b"aad", buf, tag)?;
    /// }
    /// assert_eq!((a, ta), (b, tb));
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "ring")]
    pub fn ring() -> Self {
        let mut provider = Self::rustcrypto();
        for algorithm in &crate::ring_provider::ALGORITHMS {
            provider.algorithms.retain(|a| a.id() != algorithm.id());
            provider
                .algorithms
                .push(Arc::new(*algorithm) as Arc<dyn AeadAlgorithm>);
        }
        // Keep the lookup order of the built-ins.
        provider.algorithms.sort_by_key(|a| a.id());
        provider
    }

    /// A provider with exactly `algorithms`, each checked as by
    /// [`CryptoProvider::with_algorithm`]; two with one id are refused.
    pub fn from_algorithms(algorithms: Vec<Arc<dyn AeadAlgorithm>>) -> Result<Self, CryptoError> {
        let mut provider = CryptoProvider {
            algorithms: Vec::new(),
        };
        for algorithm in algorithms {
            if provider.algorithm(algorithm.id()).is_ok() {
                return Err(CryptoError::ProviderRejected {
                    id: algorithm.id(),
                    reason: "two algorithms with one id",
                });
            }
            provider = provider.with_algorithm(algorithm)?;
        }
        Ok(provider)
    }

    /// This provider with `algorithm` added, replacing any with the same id.
    ///
    /// Every algorithm must have sealkv's unit shape: 32-byte keys, 96-bit
    /// nonces, 16-byte tags. Ids below [`AlgorithmId::FIRST_CUSTOM`] belong
    /// to the built-in algorithms: an implementation may take one (a
    /// hardware-accelerated AES-256-GCM, say) only if it produces exactly the
    /// built-in's output — checked here on a fixed test vector — and claims
    /// the same misuse resistance; unknown ids below it are refused. So no
    /// provider can make a database's recorded algorithm mean something
    /// else, or make deterministic field encryption run on a cipher that is
    /// not misuse-resistant.
    pub fn with_algorithm(
        mut self,
        algorithm: Arc<dyn AeadAlgorithm>,
    ) -> Result<Self, CryptoError> {
        let id = algorithm.id();
        let reject = |reason| CryptoError::ProviderRejected { id, reason };
        if algorithm.key_len() != crate::KEY_LEN
            || algorithm.nonce_len() != crate::NONCE_LEN
            || algorithm.tag_len() != crate::TAG_LEN
        {
            return Err(reject("not 32-byte keys, 96-bit nonces and 16-byte tags"));
        }
        if id.0 < AlgorithmId::FIRST_CUSTOM {
            let builtin = EncryptionAlgorithm::from_id(id)
                .ok_or_else(|| reject("reserved id that names no built-in algorithm"))?;
            if algorithm.misuse_resistant() != builtin.misuse_resistant() {
                return Err(reject("misuse resistance differs from the built-in's"));
            }
            if !same_output(algorithm.as_ref(), builtin)? {
                return Err(reject(
                    "output differs from the built-in's on a test vector",
                ));
            }
        }
        self.algorithms.retain(|a| a.id() != id);
        self.algorithms.push(algorithm);
        Ok(self)
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
        let aead = alg.new_aead(key).map_err(CryptoError::Aead)?;
        if aead.algorithm() != id || aead.tag_len() != alg.tag_len() {
            return Err(CryptoError::ProviderRejected {
                id,
                reason: "the cipher built does not match its algorithm",
            });
        }
        Ok(aead)
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

/// Seals one fixed test vector with `candidate` and with the built-in
/// `builtin` and compares the outputs.
fn same_output(
    candidate: &dyn AeadAlgorithm,
    builtin: EncryptionAlgorithm,
) -> Result<bool, CryptoError> {
    let key = SecretKey::from_bytes(&[0x5a; 32])?;
    let nonce = [0xa5; crate::NONCE_LEN];
    let seal = |alg: &dyn AeadAlgorithm| -> Result<Vec<u8>, CryptoError> {
        let aead = alg.new_aead(&key)?;
        let mut buf = b"sealkv provider self-test, 2 blocks+".to_vec();
        let mut tag = [0u8; crate::TAG_LEN];
        aead.seal_in_place_detached(&nonce, b"aad", &mut buf, &mut tag)?;
        buf.extend_from_slice(&tag);
        Ok(buf)
    };
    let reference = rustcrypto::ALGORITHMS
        .iter()
        .find(|a| a.id() == builtin.id())
        .ok_or(CryptoError::UnsupportedAlgorithm(builtin.id()))?;
    Ok(seal(candidate)? == seal(reference)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aead::AeadError;

    /// A stand-in for a third-party cipher: a built-in under any id,
    /// optionally with a broken tag.
    struct Custom {
        id: AlgorithmId,
        inner: EncryptionAlgorithm,
        broken: bool,
    }

    struct Wrapped {
        inner: Box<dyn Aead>,
        id: AlgorithmId,
        broken: bool,
    }

    impl Aead for Wrapped {
        fn algorithm(&self) -> AlgorithmId {
            self.id
        }
        fn nonce_len(&self) -> usize {
            self.inner.nonce_len()
        }
        fn tag_len(&self) -> usize {
            self.inner.tag_len()
        }
        fn seal_in_place_detached(
            &self,
            nonce: &[u8],
            aad: &[u8],
            buf: &mut [u8],
            tag: &mut [u8],
        ) -> Result<(), AeadError> {
            self.inner.seal_in_place_detached(nonce, aad, buf, tag)?;
            if self.broken {
                tag[0] ^= 1;
            }
            Ok(())
        }
        fn open_in_place_detached(
            &self,
            nonce: &[u8],
            aad: &[u8],
            buf: &mut [u8],
            tag: &[u8],
        ) -> Result<(), AeadError> {
            self.inner.open_in_place_detached(nonce, aad, buf, tag)
        }
    }

    impl AeadAlgorithm for Custom {
        fn id(&self) -> AlgorithmId {
            self.id
        }
        fn name(&self) -> &'static str {
            "custom"
        }
        fn key_len(&self) -> usize {
            32
        }
        fn nonce_len(&self) -> usize {
            12
        }
        fn tag_len(&self) -> usize {
            16
        }
        fn new_aead(&self, key: &SecretKey) -> Result<Box<dyn Aead>, AeadError> {
            let inner = CryptoProvider::default()
                .builtin(self.inner, key)
                .map_err(|_| AeadError::Authentication)?;
            Ok(Box::new(Wrapped {
                inner,
                id: self.id,
                broken: self.broken,
            }))
        }
        fn misuse_resistant(&self) -> bool {
            self.inner.misuse_resistant()
        }
    }

    fn custom(id: u16, inner: EncryptionAlgorithm, broken: bool) -> Arc<dyn AeadAlgorithm> {
        Arc::new(Custom {
            id: AlgorithmId(id),
            inner,
            broken,
        })
    }

    #[test]
    fn a_faithful_replacement_of_a_builtin_is_accepted() {
        let p = CryptoProvider::default()
            .with_algorithm(custom(1, EncryptionAlgorithm::Aes256Gcm, false))
            .unwrap();
        assert_eq!(p.algorithm(AlgorithmId(1)).unwrap().name(), "custom");
    }

    #[test]
    fn an_unfaithful_or_mislabelled_builtin_id_is_refused() {
        let refused = |alg| {
            matches!(
                CryptoProvider::default().with_algorithm(alg),
                Err(CryptoError::ProviderRejected { .. })
            )
        };
        // Output differs from AES-256-GCM's.
        assert!(refused(custom(1, EncryptionAlgorithm::Aes256Gcm, true)));
        // ChaCha20-Poly1305 claiming to be AES-256-GCM.
        assert!(refused(custom(
            1,
            EncryptionAlgorithm::ChaCha20Poly1305,
            false
        )));
        // A non-misuse-resistant cipher claiming GCM-SIV's id.
        assert!(refused(custom(3, EncryptionAlgorithm::Aes256Gcm, false)));
        // A reserved id naming nothing.
        assert!(refused(custom(77, EncryptionAlgorithm::Aes256Gcm, false)));
    }

    #[test]
    fn custom_ids_are_free_but_unique_in_one_provider() {
        let p = CryptoProvider::default()
            .with_algorithm(custom(0x8001, EncryptionAlgorithm::Aes256Gcm, true))
            .unwrap();
        assert!(p.algorithm(AlgorithmId(0x8001)).is_ok());
        assert!(matches!(
            CryptoProvider::from_algorithms(vec![
                custom(0x8001, EncryptionAlgorithm::Aes256Gcm, false),
                custom(0x8001, EncryptionAlgorithm::Aes256Gcm, false),
            ]),
            Err(CryptoError::ProviderRejected { .. })
        ));
    }
}
