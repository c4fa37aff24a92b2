//! [`KeyWrapper`]: master keys that never leave a hardware security module
//! or a key management service.
//!
//! An HSM or a cloud KMS does not hand out its keys: it wraps and unwraps.
//! A registry made with a [`KeySource::Wrapper`](crate::KeySource::Wrapper)
//! draws a random *registry root key*, has the wrapper wrap it, and records
//! the wrapped bytes with the wrapper's [`kind`](KeyWrapper::kind) and
//! [`key_id`](KeyWrapper::key_id) in its header. Opening the registry is one
//! unwrap call; the root key then plays the part a raw master key plays
//! (its subkeys wrap the data keys, check the key, MAC the registry and
//! authenticate the freshness anchor) and is zeroized as soon as they are
//! derived. The wrapping key itself is never in process memory.
//!
//! [`SoftwareWrapper`] wraps in process, for tests and development: its
//! wrapping key *is* in memory, so it gives none of an HSM's protection.

use std::fmt;

use zeroize::Zeroizing;

use crate::keys::{KEY_LEN, SecretKey};
use crate::provider::CryptoProvider;
use crate::{EncryptionAlgorithm, MasterKey};

/// The longest [`KeyWrapper::kind`] a registry records, in bytes.
pub const MAX_WRAPPER_KIND_LEN: usize = 32;
/// The longest [`KeyWrapper::key_id`] a registry records, in bytes.
pub const MAX_WRAPPING_KEY_ID_LEN: usize = 255;
/// The longest wrapped key a registry records, in bytes.
pub const MAX_WRAPPED_LEN: usize = 1024;

/// Wraps and unwraps 256-bit keys under a key that stays elsewhere (an HSM
/// token, a cloud KMS).
///
/// A registry under a [`KeySource::Wrapper`](crate::KeySource::Wrapper)
/// draws a random root key, has the wrapper wrap it, and records the
/// wrapped bytes with the wrapper's kind and key id; opening it is one
/// unwrap call, and the root key then plays the part of a raw master key.
/// The wrapping key itself is never in process memory.
///
/// Implementations must be deterministic about *which* key they use: the
/// same wrapper value always wraps under the same key, named by
/// [`key_id`](KeyWrapper::key_id).
pub trait KeyWrapper: Send + Sync {
    /// What kind of wrapper this is (`"pkcs11"`, `"aws-kms"`): ASCII, 1 to
    /// [`MAX_WRAPPER_KIND_LEN`] bytes. Recorded in the registry; a registry
    /// made by another kind is refused before any unwrap.
    fn kind(&self) -> &str;

    /// A stable, public identifier of the wrapping key (a key label and
    /// id, a KMS key ARN): 1 to [`MAX_WRAPPING_KEY_ID_LEN`] bytes, never
    /// key material. Recorded in the registry; a wrapper naming another key
    /// is refused as the wrong key before any unwrap.
    fn key_id(&self) -> Result<String, WrapError>;

    /// Wraps `key`, bound to `context`; the result is stored in the clear
    /// (at most [`MAX_WRAPPED_LEN`] bytes) and must authenticate both:
    /// unwrapping it under any other key, or with any other context, must
    /// fail rather than return a key.
    ///
    /// `context` is public and names where the wrapped key belongs (the
    /// registry builds it from its format version, database id, wrapper
    /// kind and key id; docs/FORMAT.md): an AEAD takes it as associated
    /// data, a KMS as its encryption context. A wrapped key copied into
    /// another database's registry then fails at the unwrap.
    fn wrap(&self, key: &SecretKey, context: &[u8]) -> Result<Vec<u8>, WrapError>;

    /// Unwraps what [`wrap`](KeyWrapper::wrap) returned for the same
    /// `context`. A wrapped key that does not open under this wrapper's key
    /// and this context is [`WrapError::WrongKey`].
    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<SecretKey, WrapError>;

    /// A short description for stats and error messages (module, token and
    /// key labels); never a PIN or key material.
    fn describe(&self) -> String;
}

/// Why a [`KeyWrapper`] failed. No variant carries a PIN or key bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WrapError {
    /// The wrapping key is not there (a token that is present holds no key
    /// of that label), the credential is refused (a wrong PIN), or the key
    /// is not the one that wrapped this key (the unwrap did not
    /// authenticate).
    #[error("wrong wrapping key: {0}")]
    WrongKey(String),
    /// The wrapper cannot be reached or used: a module that does not load,
    /// a token that is not present, an HSM or KMS that does not answer. An
    /// outage, never a wrong key.
    #[error("key wrapper unavailable: {0}")]
    Unavailable(String),
    /// The wrapper answered with something impossible (a wrapped key of
    /// the wrong length, an unwrapped key that is not 32 bytes).
    #[error("key wrapper failed: {0}")]
    Failed(String),
}

/// Checks what a wrapper reports about itself against the registry's limits.
pub(crate) fn check_wrapper_id(kind: &str, key_id: &str) -> Result<(), WrapError> {
    if kind.is_empty() || kind.len() > MAX_WRAPPER_KIND_LEN || !kind.is_ascii() {
        return Err(WrapError::Failed(format!(
            "wrapper kind must be 1 to {MAX_WRAPPER_KIND_LEN} ASCII bytes"
        )));
    }
    if key_id.is_empty() || key_id.len() > MAX_WRAPPING_KEY_ID_LEN {
        return Err(WrapError::Failed(format!(
            "wrapping key id must be 1 to {MAX_WRAPPING_KEY_ID_LEN} bytes"
        )));
    }
    Ok(())
}

/// An in-process [`KeyWrapper`]: AES-256-GCM-SIV under a wrapping key held
/// in this process's memory, the context as associated data; the wrapped
/// form is `nonce (12) || ciphertext (32) || tag (16)`. For tests and development only: it shows the
/// wrapped-registry mechanics without an HSM, and protects nothing an HSM
/// would.
pub struct SoftwareWrapper {
    key_id: String,
    key: MasterKey,
}

impl SoftwareWrapper {
    /// A wrapper under `key`, recorded in registries as `key_id`.
    pub fn new(key_id: impl Into<String>, key: MasterKey) -> Self {
        SoftwareWrapper {
            key_id: key_id.into(),
            key,
        }
    }

    fn aead(&self) -> Result<Box<dyn crate::Aead>, WrapError> {
        CryptoProvider::rustcrypto()
            .new_aead(EncryptionAlgorithm::Aes256GcmSiv.id(), self.key.secret())
            .map_err(|e| WrapError::Failed(e.to_string()))
    }
}

impl fmt::Debug for SoftwareWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareWrapper")
            .field("key_id", &self.key_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Nonce, key, tag.
const SOFT_WRAPPED_LEN: usize = 12 + KEY_LEN + 16;

impl KeyWrapper for SoftwareWrapper {
    fn kind(&self) -> &str {
        "software"
    }

    fn key_id(&self) -> Result<String, WrapError> {
        Ok(self.key_id.clone())
    }

    fn wrap(&self, key: &SecretKey, context: &[u8]) -> Result<Vec<u8>, WrapError> {
        let mut out = Zeroizing::new([0u8; SOFT_WRAPPED_LEN]);
        let (nonce, rest) = out.split_at_mut(12);
        crate::random::fill(nonce).map_err(|e| WrapError::Failed(e.to_string()))?;
        let (body, tag) = rest.split_at_mut(KEY_LEN);
        body.copy_from_slice(key.expose());
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| WrapError::Failed("nonce length".into()))?;
        self.aead()?
            .seal_in_place_detached(&nonce, context, body, tag)
            .map_err(|e| WrapError::Failed(e.to_string()))?;
        Ok(out.to_vec())
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<SecretKey, WrapError> {
        if wrapped.len() != SOFT_WRAPPED_LEN {
            return Err(WrapError::WrongKey("wrapped key of another length".into()));
        }
        let (nonce, rest) = wrapped.split_at(12);
        let (body, tag) = rest.split_at(KEY_LEN);
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| WrapError::Failed("nonce length".into()))?;
        let mut buf = Zeroizing::new([0u8; KEY_LEN]);
        buf.copy_from_slice(body);
        self.aead()?
            .open_in_place_detached(&nonce, context, &mut buf[..], tag)
            .map_err(|_| WrapError::WrongKey("the wrapped key does not open".into()))?;
        Ok(SecretKey::from_array(&mut buf))
    }

    fn describe(&self) -> String {
        format!("software wrapper, key {}", self.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_wrapper_round_trips_and_refuses_another_key() {
        let a = SoftwareWrapper::new("a", MasterKey::from_bytes(&[1; 32]).unwrap());
        let b = SoftwareWrapper::new("a", MasterKey::from_bytes(&[2; 32]).unwrap());
        let key = SecretKey::from_bytes(&[9; 32]).unwrap();
        let wrapped = a.wrap(&key, b"db 1").unwrap();
        assert!(!wrapped.windows(8).any(|w| w == [9; 8]));
        assert_eq!(a.unwrap(&wrapped, b"db 1").unwrap().expose(), key.expose());
        assert!(matches!(
            b.unwrap(&wrapped, b"db 1"),
            Err(WrapError::WrongKey(_))
        ));
        assert!(matches!(
            a.unwrap(&wrapped, b"db 2"),
            Err(WrapError::WrongKey(_))
        ));
        assert!(matches!(
            a.unwrap(&wrapped[1..], b"db 1"),
            Err(WrapError::WrongKey(_))
        ));
        assert!(!format!("{a:?}").contains("1, 1"));
    }
}
