//! Errors of the crypto envelope.

use crate::aead::AeadError;
use crate::algorithm::AlgorithmId;
use crate::keys::{KeyError, KeyId};
use crate::primitives::RandomError;
use crate::selftest::SelfTestFailure;
use crate::session::Domain;

/// Errors from sealing, opening and key handling.
///
/// No variant carries key material, and none is formatted from it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The provider has no algorithm with this id.
    #[error("unsupported encryption algorithm {0}")]
    UnsupportedAlgorithm(AlgorithmId),
    /// A key of the wrong length for its algorithm.
    #[error("key is {actual} bytes, the algorithm needs {expected}")]
    KeyLength {
        /// Length the algorithm needs.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// The cipher failed: authentication (tampering, wrong key) or a length.
    #[error("AEAD operation failed: {0}")]
    Aead(#[from] AeadError),
    /// A unit names a data key that the keyring does not hold.
    #[error("data key {0} is not in the keyring (retired or never known)")]
    MissingDataKey(KeyId),
    /// Sealing was asked for with no active data key.
    #[error("the keyring has no active data key")]
    NoActiveKey,
    /// The writer session has used all of its nonces in this domain; start a
    /// new session.
    #[error("writer session exhausted its nonces for {0:?}; start a new session")]
    SessionExhausted(Domain),
    /// An archive's chunk sealer was asked for a chunk after the last one.
    #[error("the archive's last chunk is sealed; nothing more can be sealed in it")]
    ArchiveClosed,
    /// A nonce ticket was spent on a sealer other than the one that drew it.
    #[error("a nonce ticket was used with a sealer that did not draw it")]
    ForeignTicket,
    /// The provider's random source failed.
    #[error(transparent)]
    Rng(RandomError),
    /// An algorithm or part failed its self-test (at registration, or
    /// before a built-in's first use); names the failed check.
    #[error(transparent)]
    SelfTest(#[from] SelfTestFailure),
    /// A provider refused an algorithm (two with one id, a name already
    /// taken), or an implementation built a cipher that is not what it
    /// claimed.
    #[error("algorithm {id} refused by the provider: {reason}")]
    ProviderRejected {
        /// The algorithm's id.
        id: AlgorithmId,
        /// Why.
        reason: &'static str,
    },
    /// The provider's KDF or password hash refused its input.
    #[error("key derivation failed: {0}")]
    KeyDerivation(crate::primitives::PrimitiveError),
    /// A key could not be loaded or derived.
    #[error(transparent)]
    Key(#[from] KeyError),
}
