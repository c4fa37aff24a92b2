#![doc = include_str!("../README.md")]
//!
//! # The API at a glance
//!
//! - Ciphers: [`Aead`], [`AeadAlgorithm`], [`CryptoProvider`],
//!   [`AlgorithmId`], [`EncryptionAlgorithm`].
//! - Keys: [`SecretKey`], [`MasterKey`], [`DataKey`], [`Passphrase`],
//!   [`KdfParams`], [`KeySource`], [`KeyProvider`].
//! - Sessions and nonces: [`Keyring`], [`WriterSession`], [`DomainSealer`],
//!   [`NonceTicket`]; the [`session`] module argues why nonces never repeat.
//! - Files and values: the key [`registry`], [`field`]-level encryption,
//!   [`archive`] keys, [`checksum_tag`].

mod aead;
mod algorithm;
pub mod archive;
#[cfg(feature = "secret-census")]
pub mod census;
mod checksum;
mod error;
pub mod field;
mod ids;
mod kdf;
mod keyring;
mod keys;
mod provider;
pub mod random;
pub mod registry;
#[cfg(feature = "ring")]
mod ring_provider;
mod rustcrypto;
pub mod session;

pub use crate::aead::{Aead, AeadAlgorithm, AeadError};
pub use algorithm::{AlgorithmId, EncryptionAlgorithm, UnknownAlgorithm};
pub use checksum::{TAG_LEN, checksum_tag, verify_checksum_tag};
pub use error::CryptoError;
pub use ids::DbId;
pub use kdf::{KekPurpose, LABEL_PREFIX};
pub use keyring::{Keyring, Opener};
pub use keys::{
    DataKey, KEY_LEN, KdfParams, KeyError, KeyId, KeyProvider, KeySource, MasterKey, Passphrase,
    SecretKey,
};
pub use provider::CryptoProvider;
pub use session::{
    Domain, DomainSealer, NONCE_LEN, NonceTicket, SEALS_PER_SESSION, SealObserver, SessionSalt,
    SubkeyId, WriterSession, nonce_for,
};
