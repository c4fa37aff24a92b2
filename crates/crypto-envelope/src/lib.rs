//! The cryptographic envelope of sealkv: everything that seals bytes at rest.
//!
//! This crate knows nothing of pages, logs or trees. It offers:
//!
//! - the [`CryptoProvider`]: the ciphers behind the [`Aead`] seam
//!   (AES-256-GCM, ChaCha20-Poly1305, AES-256-GCM-SIV built in, others
//!   pluggable under private [`AlgorithmId`]s), HKDF, HMAC, Argon2id and the
//!   random source ([`primitives`]), each checked by its [`selftest`] before
//!   first use;
//! - keys in zeroizing containers with redacted `Debug` ([`SecretKey`],
//!   [`MasterKey`], [`DataKey`]), loaded from bytes, hex, key files, the
//!   environment, a passphrase through Argon2id, or a [`KeyProvider`];
//! - [`WriterSession`]s: a fresh random salt per writer session, per-domain
//!   subkeys derived once with HKDF, and counter nonces handed out as
//!   single-use tickets — the one place sealkv makes nonces (see the
//!   [`session`] module for the argument that they never repeat);
//! - the [`Keyring`] of unwrapped data keys, which opens units by the
//!   (data key, session, domain) recorded in their headers;
//! - the key [`registry`]: data and field keys wrapped under the master
//!   key in one authenticated file, with rotation, rekey, retirement and
//!   crypto-shredding;
//! - [`field`]-level encryption: single values sealed under field keys, in
//!   randomized (default) or deterministic mode;
//! - [`archive`] keys: the chunk key and key check of a logical export,
//!   derived per archive from its key and a fresh salt;
//! - the CRC32C [`checksum_tag`] that stands in for a tag when encryption is
//!   off, so sealed and plaintext units share one layout;
//! - [`hazmat`]: raw ciphers, chosen nonces and chosen salts, kept apart
//!   because nothing else in this crate lets a caller pick a nonce or a salt.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use sealkv_crypto_envelope::{
//!     CryptoProvider, DataKey, DbId, Domain, EncryptionAlgorithm, KeyId, Keyring, SecretKey,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keyring = Keyring::new(DbId::random()?, Arc::new(CryptoProvider::default()));
//! keyring.insert(DataKey::new(KeyId(1), EncryptionAlgorithm::Aes256Gcm.id(), SecretKey::random()?));
//! keyring.set_active(KeyId(1))?;
//!
//! // A writer seals under its session's subkey; the nonce is drawn for it.
//! let session = keyring.start_session()?;
//! let sealer = session.sealer(Domain::Wal);
//! let mut record = b"put k=v".to_vec();
//! let mut tag = [0u8; 16];
//! let counter = sealer.seal(b"segment 7, seq 42", &mut record, &mut tag)?;
//!
//! // A reader opens it from what the header records: subkey id and counter.
//! keyring.open(sealer.subkey_id(), counter, b"segment 7, seq 42", &mut record, &tag)?;
//! assert_eq!(record, b"put k=v");
//! # Ok(())
//! # }
//! ```

mod aead;
mod algorithm;
pub mod archive;
#[cfg(feature = "secret-census")]
pub mod census;
mod checksum;
mod error;
pub mod field;
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
