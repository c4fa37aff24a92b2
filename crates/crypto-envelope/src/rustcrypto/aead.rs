//! RustCrypto's `aes-gcm`, `chacha20poly1305` and `aes-gcm-siv` behind the
//! [`Aead`] seam.

use aead::array::Array;
use aead::{AeadCore, AeadInOut, KeyInit};

use crate::aead::{Aead, AeadAlgorithm, AeadError};
use crate::algorithm::{AlgorithmId, EncryptionAlgorithm};
use crate::keys::SecretKey;

/// One RustCrypto cipher behind the [`Aead`] trait. Key schedules are wiped
/// when the cipher is dropped: the workspace turns on the `zeroize` features
/// of `aes-gcm`, `chacha20poly1305` and `aes` (the block cipher inside
/// `aes-gcm-siv`), and a test checks `ZeroizeOnDrop` at compile time.
struct RustCryptoAead<C> {
    cipher: C,
    id: AlgorithmId,
}

impl<C> Aead for RustCryptoAead<C>
where
    C: AeadInOut + Send + Sync,
{
    fn algorithm(&self) -> AlgorithmId {
        self.id
    }

    fn nonce_len(&self) -> usize {
        <C::NonceSize as aead::array::typenum::Unsigned>::USIZE
    }

    fn tag_len(&self) -> usize {
        <C::TagSize as aead::array::typenum::Unsigned>::USIZE
    }

    fn seal_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), AeadError> {
        let nonce: &Array<u8, C::NonceSize> =
            nonce.try_into().map_err(|_| AeadError::InvalidLength)?;
        if tag.len() != self.tag_len() {
            return Err(AeadError::InvalidLength);
        }
        let out = self
            .cipher
            .encrypt_inout_detached(nonce, aad, buf.into())
            .map_err(|_| AeadError::InvalidLength)?;
        tag.copy_from_slice(&out);
        Ok(())
    }

    fn open_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), AeadError> {
        let nonce: &Array<u8, C::NonceSize> =
            nonce.try_into().map_err(|_| AeadError::InvalidLength)?;
        let tag: &Array<u8, C::TagSize> = tag.try_into().map_err(|_| AeadError::InvalidLength)?;
        self.cipher
            .decrypt_inout_detached(nonce, aad, buf.into(), tag)
            .map_err(|_| AeadError::Authentication)
    }
}

/// A RustCrypto algorithm as an [`AeadAlgorithm`] factory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RustCryptoAlgorithm(pub(crate) EncryptionAlgorithm);

fn build<C>(key: &SecretKey, id: AlgorithmId) -> Result<Box<dyn Aead>, AeadError>
where
    C: AeadInOut + AeadCore + KeyInit + Send + Sync + 'static,
{
    let cipher = C::new_from_slice(key.expose()).map_err(|_| AeadError::InvalidLength)?;
    Ok(Box::new(RustCryptoAead { cipher, id }))
}

impl AeadAlgorithm for RustCryptoAlgorithm {
    fn id(&self) -> AlgorithmId {
        self.0.id()
    }

    fn name(&self) -> &'static str {
        self.0.name()
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

    fn misuse_resistant(&self) -> bool {
        self.0.misuse_resistant()
    }

    fn new_aead(&self, key: &SecretKey) -> Result<Box<dyn Aead>, AeadError> {
        let id = self.0.id();
        match self.0 {
            EncryptionAlgorithm::Aes256Gcm => build::<aes_gcm::Aes256Gcm>(key, id),
            EncryptionAlgorithm::ChaCha20Poly1305 => {
                build::<chacha20poly1305::ChaCha20Poly1305>(key, id)
            }
            EncryptionAlgorithm::Aes256GcmSiv => build::<aes_gcm_siv::Aes256GcmSiv>(key, id),
        }
    }
}

/// The RustCrypto algorithms, in [`EncryptionAlgorithm::ALL`] order. They
/// are also the reference a replacement of a built-in is compared with.
pub(crate) static ALGORITHMS: [RustCryptoAlgorithm; 3] = [
    RustCryptoAlgorithm(EncryptionAlgorithm::Aes256Gcm),
    RustCryptoAlgorithm(EncryptionAlgorithm::ChaCha20Poly1305),
    RustCryptoAlgorithm(EncryptionAlgorithm::Aes256GcmSiv),
];

#[cfg(test)]
mod tests {
    /// Compile-time proof that every cipher this provider holds wipes its
    /// key schedule on drop (the `zeroize` features are on). AES-256-GCM-SIV
    /// keeps an `aes::Aes256` as its key-generating key; its per-message
    /// keys are stack temporaries that aes-gcm-siv 0.12 does not wipe
    /// (documented in SECURITY.md).
    #[test]
    fn ciphers_zeroize_on_drop() {
        fn wipes<T: zeroize::ZeroizeOnDrop>() {}
        wipes::<aes_gcm::Aes256Gcm>();
        wipes::<chacha20poly1305::ChaCha20Poly1305>();
        wipes::<aes::Aes256>();
    }
}
