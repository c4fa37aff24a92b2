//! `ring`'s AES-256-GCM and ChaCha20-Poly1305 behind the [`Aead`] seam.
//!
//! Key schedules: each [`Aead`] holds one `ring::aead::LessSafeKey`, built
//! once when the cipher is made (the keyring caches ciphers per subkey), and
//! every seal and open works in place on the caller's buffer with no
//! allocation. Unlike the RustCrypto ciphers, `ring` 0.17 does not wipe its
//! expanded key schedule when a key is dropped (SECURITY.md says so).

use ring::aead::{self as raead, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::aead::{Aead, AeadAlgorithm, AeadError};
use crate::algorithm::{AlgorithmId, EncryptionAlgorithm};
use crate::keys::SecretKey;

/// One `ring` cipher bound to one key.
struct RingAead {
    key: LessSafeKey,
    id: AlgorithmId,
}

impl RingAead {
    fn nonce(nonce: &[u8]) -> Result<Nonce, AeadError> {
        Nonce::try_assume_unique_for_key(nonce).map_err(|_| AeadError::InvalidLength)
    }
}

impl Aead for RingAead {
    fn algorithm(&self) -> AlgorithmId {
        self.id
    }

    fn nonce_len(&self) -> usize {
        raead::NONCE_LEN
    }

    fn tag_len(&self) -> usize {
        self.key.algorithm().tag_len()
    }

    fn seal_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), AeadError> {
        let nonce = Self::nonce(nonce)?;
        if tag.len() != self.tag_len() {
            return Err(AeadError::InvalidLength);
        }
        let out = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), buf)
            .map_err(|_| AeadError::InvalidLength)?;
        tag.copy_from_slice(out.as_ref());
        Ok(())
    }

    fn open_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), AeadError> {
        let nonce = Self::nonce(nonce)?;
        let tag = Tag::try_from(tag).map_err(|_| AeadError::InvalidLength)?;
        self.key
            .open_in_place_separate_tag(nonce, Aad::from(aad), tag, buf, 0..)
            .map(|_| ())
            .map_err(|_| AeadError::Authentication)
    }
}

/// A `ring` algorithm as an [`AeadAlgorithm`] factory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingAlgorithm(pub(crate) EncryptionAlgorithm);

impl RingAlgorithm {
    fn ring_algorithm(self) -> Option<&'static raead::Algorithm> {
        match self.0 {
            EncryptionAlgorithm::Aes256Gcm => Some(&raead::AES_256_GCM),
            EncryptionAlgorithm::ChaCha20Poly1305 => Some(&raead::CHACHA20_POLY1305),
            _ => None,
        }
    }
}

impl AeadAlgorithm for RingAlgorithm {
    fn id(&self) -> AlgorithmId {
        self.0.id()
    }

    fn name(&self) -> &'static str {
        match self.0 {
            EncryptionAlgorithm::Aes256Gcm => "aes-256-gcm (ring)",
            EncryptionAlgorithm::ChaCha20Poly1305 => "chacha20-poly1305 (ring)",
            _ => self.0.name(),
        }
    }

    fn key_len(&self) -> usize {
        32
    }

    fn nonce_len(&self) -> usize {
        raead::NONCE_LEN
    }

    fn tag_len(&self) -> usize {
        16
    }

    fn misuse_resistant(&self) -> bool {
        self.0.misuse_resistant()
    }

    fn new_aead(&self, key: &SecretKey) -> Result<Box<dyn Aead>, AeadError> {
        let algorithm = self.ring_algorithm().ok_or(AeadError::InvalidLength)?;
        let unbound =
            UnboundKey::new(algorithm, key.expose()).map_err(|_| AeadError::InvalidLength)?;
        Ok(Box::new(RingAead {
            key: LessSafeKey::new(unbound),
            id: self.0.id(),
        }))
    }
}

/// The algorithms `ring` provides, in [`EncryptionAlgorithm::ALL`] order.
pub(crate) static ALGORITHMS: [RingAlgorithm; 2] = [
    RingAlgorithm(EncryptionAlgorithm::Aes256Gcm),
    RingAlgorithm(EncryptionAlgorithm::ChaCha20Poly1305),
];

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::CryptoProvider;

    #[test]
    fn each_ring_algorithm_passes_the_builtin_replacement_check() {
        for alg in ALGORITHMS {
            let provider = CryptoProvider::rustcrypto()
                .with_algorithm(Arc::new(alg))
                .unwrap_or_else(|e| panic!("{}: {e}", alg.name()));
            assert_eq!(
                provider.algorithm(alg.id()).map(|a| a.implementation).ok(),
                Some(alg.name())
            );
        }
    }

    #[test]
    fn the_ring_provider_offers_every_builtin_and_ring_for_two() {
        let p = CryptoProvider::ring();
        let names: Vec<_> = EncryptionAlgorithm::ALL
            .into_iter()
            .map(|a| p.algorithm(a.id()).map(|x| x.implementation).ok())
            .collect();
        assert_eq!(
            names,
            [
                Some("aes-256-gcm (ring)"),
                Some("chacha20-poly1305 (ring)"),
                Some("aes-256-gcm-siv"),
            ]
        );
    }

    #[test]
    fn gcm_siv_is_not_built_by_the_ring_factory() {
        let key = SecretKey::from_bytes(&[1; 32]).expect("32 bytes");
        assert_eq!(
            RingAlgorithm(EncryptionAlgorithm::Aes256GcmSiv)
                .new_aead(&key)
                .err(),
            Some(AeadError::InvalidLength)
        );
    }
}
