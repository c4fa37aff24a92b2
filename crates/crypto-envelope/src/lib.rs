#![doc = include_str!("../README.md")]
//!
//! # The API at a glance
//!
//! - Ciphers and primitives: the [`CryptoProvider`] behind the [`Aead`]
//!   seam ([`AeadAlgorithm`], [`AlgorithmId`], [`EncryptionAlgorithm`]),
//!   HKDF, HMAC, Argon2id and the random source ([`primitives`]), each
//!   checked by its [`selftest`] before first use; [`hazmat`] for raw
//!   ciphers, chosen nonces and chosen salts, kept apart.
//! - Keys: [`SecretKey`], [`MasterKey`], [`DataKey`], [`Passphrase`],
//!   [`KdfParams`], [`KeySource`], [`KeyProvider`], [`KeyWrapper`] (keys
//!   that never leave an HSM or KMS).
//! - Sessions and nonces: [`Keyring`], [`WriterSession`], [`DomainSealer`],
//!   [`NonceTicket`]; the [`session`] module argues why nonces never repeat.
//! - Files and values: the key [`registry`], [`field`]-level encryption,
//!   [`archive`] keys, [`blind`]-index keys, [`checksum_tag`].

mod aead;
mod algorithm;
pub mod archive;
pub mod blind;
#[cfg(feature = "secret-census")]
pub mod census;
mod checksum;
mod error;
pub mod field;
mod frozen;
mod gated;
pub mod hazmat;
mod ids;
mod kdf;
mod keyring;
mod keys;
pub mod primitives;
mod provider;
pub mod random;
pub mod registry;
#[cfg(feature = "ring")]
mod ring_provider;
mod rustcrypto;
pub mod selftest;
pub mod session;
mod wrap;

pub use crate::aead::{Aead, AeadAlgorithm, AeadError};
pub use algorithm::{AlgorithmId, AlgorithmInfo, EncryptionAlgorithm, UnknownAlgorithm};
pub use checksum::{TAG_LEN, checksum_tag, verify_checksum_tag};
pub use error::CryptoError;
pub use ids::DbId;
pub use kdf::{KekPurpose, LABEL_PREFIX};
pub use keyring::{Keyring, Opener};
pub use keys::{
    DataKey, KEY_LEN, KdfParams, KeyError, KeyId, KeyProvider, KeySource, MasterKey, Passphrase,
    PassphraseKdf, SecretKey,
};
pub use provider::CryptoProvider;
pub use selftest::{KnownAnswer, SelfTestFailure};
pub use session::{
    Domain, DomainSealer, NONCE_LEN, NonceTicket, SEALS_PER_SESSION, SealObserver, SessionSalt,
    SubkeyId, WriterSession,
};
pub use wrap::{
    KeyWrapper, MAX_WRAPPED_LEN, MAX_WRAPPER_KIND_LEN, MAX_WRAPPING_KEY_ID_LEN, SoftwareWrapper,
    WrapError,
};
