//! A worked example of a sealkv cipher plugin: AES-256-GCM from
//! [`aws-lc-rs`](https://docs.rs/aws-lc-rs) (AWS-LC, whose FIPS builds are
//! validated) under the private algorithm id [`ID`] and the name [`NAME`].
//!
//! A plugin is two small types: an [`AeadAlgorithm`] (the factory a
//! [`CryptoProvider`] holds: id, name, shape, published known-answer
//! vectors) and the [`Aead`] it builds for one key. Registering it runs the
//! provider's self-test (published vectors, tampering, counter nonces);
//! from then on a database can be sealed with it:
//!
//! ```
//! use std::sync::Arc;
//! use sealkv_crypto_envelope::CryptoProvider;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = sealkv_aws_lc::register(CryptoProvider::default())?;
//! let id = provider.find_algorithm("aes-256-gcm-aws-lc")?;
//! assert_eq!(id, sealkv_aws_lc::ID);
//! // Then: Config::new(dir).crypto_provider(Arc::new(provider)).encryption_algorithm(id)
//! # let _ = Arc::new(provider);
//! # Ok(())
//! # }
//! ```
//!
//! Why a private id and not AES-256-GCM's own (1): either works (the
//! self-test lets an implementation take a built-in id when it matches the
//! built-in's output), but a private id records in the database that it
//! was sealed with this implementation, so an operator can require it (a
//! FIPS deployment, say) and a build without the plugin refuses the
//! database with a clear `UnsupportedAlgorithm` instead of opening it with
//! another implementation. The bytes are AES-256-GCM's all the same.
//!
//! Key schedules: `aws-lc-rs` keeps the expanded key inside AWS-LC; like
//! `ring`, it does not promise to wipe it when the key is dropped.

use aws_lc_rs::aead::{self as awsaead, Aad, LessSafeKey, Nonce, UnboundKey};
use sealkv_crypto_envelope::selftest::vectors;
use sealkv_crypto_envelope::{
    Aead, AeadAlgorithm, AeadError, AlgorithmId, CryptoError, CryptoProvider, KnownAnswer,
    SecretKey,
};
use std::sync::Arc;

/// The plugin's private algorithm id, recorded in every database and
/// archive sealed with it.
pub const ID: AlgorithmId = AlgorithmId(0x8A01);

/// The name users choose it by (`--algorithm aes-256-gcm-aws-lc`).
pub const NAME: &str = "aes-256-gcm-aws-lc";

/// aws-lc-rs's AES-256-GCM as a sealkv algorithm.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsLcAes256Gcm;

impl AeadAlgorithm for AwsLcAes256Gcm {
    fn id(&self) -> AlgorithmId {
        ID
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn key_len(&self) -> usize {
        awsaead::AES_256_GCM.key_len()
    }

    fn nonce_len(&self) -> usize {
        awsaead::AES_256_GCM.nonce_len()
    }

    fn tag_len(&self) -> usize {
        awsaead::AES_256_GCM.tag_len()
    }

    /// NIST's AES-256-GCM vectors, the ones sealkv checks its own
    /// AES-256-GCM against.
    fn known_answers(&self) -> &'static [KnownAnswer] {
        vectors::AES_256_GCM
    }

    fn new_aead(&self, key: &SecretKey) -> Result<Box<dyn Aead>, AeadError> {
        let unbound = UnboundKey::new(&awsaead::AES_256_GCM, key.expose())
            .map_err(|_| AeadError::InvalidLength)?;
        Ok(Box::new(AwsLcAead {
            key: LessSafeKey::new(unbound),
        }))
    }
}

/// One AES-256-GCM key.
struct AwsLcAead {
    key: LessSafeKey,
}

fn nonce(nonce: &[u8]) -> Result<Nonce, AeadError> {
    Nonce::try_assume_unique_for_key(nonce).map_err(|_| AeadError::InvalidLength)
}

impl Aead for AwsLcAead {
    fn algorithm(&self) -> AlgorithmId {
        ID
    }

    fn nonce_len(&self) -> usize {
        awsaead::NONCE_LEN
    }

    fn tag_len(&self) -> usize {
        self.key.algorithm().tag_len()
    }

    fn seal_in_place_detached(
        &self,
        nonce_bytes: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), AeadError> {
        let nonce = nonce(nonce_bytes)?;
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
        nonce_bytes: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), AeadError> {
        let nonce = nonce(nonce_bytes)?;
        if tag.len() != self.tag_len() {
            return Err(AeadError::InvalidLength);
        }
        self.key
            .open_in_place_separate_tag(nonce, Aad::from(aad), tag, buf)
            .map(|_| ())
            .map_err(|_| AeadError::Authentication)
    }
}

/// `provider` with the plugin registered (after its self-test).
pub fn register(provider: CryptoProvider) -> Result<CryptoProvider, CryptoError> {
    provider.with_algorithm(Arc::new(AwsLcAes256Gcm))
}
