//! The subkeys a registry derives from its master key (KEK), and what it
//! does with them: wrap keys, compute the key check, MAC the file, and
//! (handed out as an [`AnchorKey`]) authenticate the freshness anchor.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::aead::Aead;
use crate::algorithm::EncryptionAlgorithm;
use crate::ids::DbId;
use crate::kdf::{KekPurpose, kek_subkey};
use crate::keys::{KEY_LEN, KeyId, MasterKey, SecretKey};
use crate::primitives::Mac;
use crate::provider::CryptoProvider;

use super::anchor::AnchorKey;
use super::error::RegistryError;
use super::format::{DIGEST_LEN, WRAPPED_LEN, wrap_nonce};

/// The KEK's subkeys and the provider's (self-tested) MAC. The KEK itself
/// is not kept.
#[derive(Clone)]
pub(super) struct KekKeys {
    wrap: SecretKey,
    check: SecretKey,
    mac: SecretKey,
    anchor: SecretKey,
    hmac: Arc<dyn Mac>,
}

impl KekKeys {
    pub(super) fn derive(
        provider: &CryptoProvider,
        kek: &MasterKey,
        db_id: &DbId,
    ) -> Result<Self, RegistryError> {
        Ok(KekKeys {
            wrap: kek_subkey(provider, kek, db_id, KekPurpose::Wrap)?,
            check: kek_subkey(provider, kek, db_id, KekPurpose::KeyCheck)?,
            mac: kek_subkey(provider, kek, db_id, KekPurpose::RegistryMac)?,
            anchor: kek_subkey(provider, kek, db_id, KekPurpose::Anchor)?,
            hmac: provider.mac()?,
        })
    }

    /// The freshness anchor's key.
    pub(super) fn anchor_key(&self) -> AnchorKey {
        AnchorKey::new(self.anchor.clone(), Arc::clone(&self.hmac))
    }

    pub(super) fn key_check(&self, header: &[u8]) -> [u8; DIGEST_LEN] {
        self.hmac.hmac_sha256(self.check.expose(), &[header])
    }

    pub(super) fn mac(&self, body: &[u8]) -> [u8; DIGEST_LEN] {
        self.hmac.hmac_sha256(self.mac.expose(), &[body])
    }

    /// Whether `expected` is the key check of `header`, in constant time.
    pub(super) fn verify_key_check(&self, header: &[u8], expected: &[u8]) -> bool {
        bool::from(self.key_check(header)[..].ct_eq(expected))
    }

    /// Whether `expected` is the MAC of `body`, in constant time.
    pub(super) fn verify_mac(&self, body: &[u8], expected: &[u8]) -> bool {
        bool::from(self.mac(body)[..].ct_eq(expected))
    }

    fn wrapper(&self) -> Result<Box<dyn Aead>, RegistryError> {
        // Always RustCrypto's AES-256-GCM-SIV (self-tested before its first
        // use): the registry format fixes the wrapping cipher, whatever
        // provider seals the data, and a provider need not hold it.
        let provider = CryptoProvider::rustcrypto();
        Ok(provider.new_aead(EncryptionAlgorithm::Aes256GcmSiv.id(), &self.wrap)?)
    }

    /// Seals `key` for entry `id` with `aad`.
    pub(super) fn wrap(
        &self,
        id: KeyId,
        aad: &[u8],
        key: &SecretKey,
    ) -> Result<[u8; WRAPPED_LEN], RegistryError> {
        // Holds the plaintext key until it is sealed: wiped if sealing fails.
        let mut out = zeroize::Zeroizing::new([0u8; WRAPPED_LEN]);
        let (body, tag) = out.split_at_mut(KEY_LEN);
        body.copy_from_slice(key.expose());
        self.wrapper()?
            .seal_in_place_detached(&wrap_nonce(id), aad, body, tag)
            .map_err(crate::CryptoError::from)?;
        Ok(*out)
    }

    /// Opens the wrapped key of entry `id`; `None` if it does not
    /// authenticate.
    pub(super) fn unwrap(
        &self,
        id: KeyId,
        aad: &[u8],
        wrapped: &[u8; WRAPPED_LEN],
    ) -> Result<Option<SecretKey>, RegistryError> {
        let mut buf = zeroize::Zeroizing::new([0u8; KEY_LEN]);
        let (body, tag) = wrapped.split_at(KEY_LEN);
        buf.copy_from_slice(body);
        match self
            .wrapper()?
            .open_in_place_detached(&wrap_nonce(id), aad, &mut buf[..], tag)
        {
            Ok(()) => Ok(Some(SecretKey::from_array(&mut buf))),
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
impl KekKeys {
    /// The subkeys, concatenated, for tests that search output for
    /// them.
    pub(super) fn clone_secrets_for_test(&self) -> Vec<u8> {
        [
            self.wrap.expose(),
            self.check.expose(),
            self.mac.expose(),
            self.anchor.expose(),
        ]
        .concat()
    }
}
