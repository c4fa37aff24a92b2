//! The [`Aead`] seam every cipher plugs into.

use zeroize::Zeroize;

use crate::algorithm::AlgorithmId;
use crate::keys::SecretKey;
use crate::selftest::KnownAnswer;

/// The one error an AEAD operation reports. It is deliberately opaque: a
/// failed open says nothing about *why* it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AeadError {
    /// The tag did not verify: wrong key, wrong nonce, wrong AAD, or the
    /// ciphertext or tag was changed.
    #[error("authentication failed")]
    Authentication,
    /// A nonce, tag or key of the wrong length, or a message longer than the
    /// algorithm allows.
    #[error("invalid length for this algorithm")]
    InvalidLength,
}

/// An authenticated cipher bound to one key.
///
/// This is the seam between sealkv and the cipher crates: the WAL, the page
/// store and the archives only ever hold a `dyn Aead`. An implementation must
/// verify the tag in constant time and must not release any plaintext from
/// [`Aead::open_in_place_detached`] unless the tag verifies (on failure, the
/// buffer's contents are unspecified; every cipher a
/// [`CryptoProvider`](crate::CryptoProvider) hands out zeroes the buffer
/// after a failed open, whatever the implementation left in it).
///
/// Implement it (with an [`AeadAlgorithm`] factory) to add a cipher without
/// forking sealkv. Holding one keyed with a sealkv key is hazardous: it seals
/// under any nonce it is given, so sealkv hands them out only through
/// [`hazmat`](crate::hazmat); everything else seals through writer sessions,
/// which choose the nonces.
pub trait Aead: Send + Sync {
    /// The algorithm's stable on-disk id.
    fn algorithm(&self) -> AlgorithmId;

    /// Nonce length in bytes.
    fn nonce_len(&self) -> usize;

    /// Tag length in bytes.
    fn tag_len(&self) -> usize;

    /// Encrypts `buf` in place and writes the tag to `tag`
    /// (`tag.len() == self.tag_len()`).
    fn seal_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), AeadError>;

    /// Verifies `tag` over `aad` and the ciphertext in `buf`, then decrypts
    /// `buf` in place.
    fn open_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), AeadError>;

    /// Encrypts `buf` in place and appends the tag.
    fn seal_in_place_append(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), AeadError> {
        let len = buf.len();
        buf.resize(len + self.tag_len(), 0);
        let (body, tag) = buf.split_at_mut(len);
        let result = self.seal_in_place_detached(nonce, aad, body, tag);
        if result.is_err() {
            buf.truncate(len);
        }
        result
    }

    /// Opens a buffer of ciphertext followed by its tag, in place, and
    /// truncates the tag away. Returns the plaintext.
    fn open_in_place_append<'a>(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &'a mut [u8],
    ) -> Result<&'a mut [u8], AeadError> {
        let body_len = buf
            .len()
            .checked_sub(self.tag_len())
            .ok_or(AeadError::InvalidLength)?;
        let (body, tag) = buf.split_at_mut(body_len);
        self.open_in_place_detached(nonce, aad, body, tag)?;
        Ok(body)
    }
}

/// A cipher whose failed opens leave zeros in the buffer.
///
/// The [`Aead`] contract leaves the buffer unspecified after a failed open,
/// and ciphers differ: RustCrypto's check the tag before they decrypt, or
/// undo the decryption (the ciphertext stays); a synthetic-IV cipher must
/// decrypt before it can check its tag, and one that does not undo it
/// leaves the plaintext of a forged or damaged unit; a plugin may leave
/// anything. The provider wraps every cipher
/// it builds in this, so no caller finds unauthenticated plaintext in a
/// buffer after an error, and none lingers in memory once it is dropped.
///
/// It also answers [`Aead::algorithm`], [`Aead::nonce_len`] and
/// [`Aead::tag_len`] from the values checked when the cipher was built, not
/// from the plugin's cipher, whose answers may change afterwards.
pub(crate) struct WipeOnFailedOpen {
    inner: Box<dyn Aead>,
    algorithm: AlgorithmId,
    nonce_len: usize,
    tag_len: usize,
}

impl WipeOnFailedOpen {
    /// Wraps `inner`, which was checked to report `algorithm`, `nonce_len`
    /// and `tag_len`.
    pub(crate) fn new(
        inner: Box<dyn Aead>,
        algorithm: AlgorithmId,
        nonce_len: usize,
        tag_len: usize,
    ) -> Self {
        WipeOnFailedOpen {
            inner,
            algorithm,
            nonce_len,
            tag_len,
        }
    }
}

impl Aead for WipeOnFailedOpen {
    fn algorithm(&self) -> AlgorithmId {
        self.algorithm
    }

    fn nonce_len(&self) -> usize {
        self.nonce_len
    }

    fn tag_len(&self) -> usize {
        self.tag_len
    }

    fn seal_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), AeadError> {
        self.inner.seal_in_place_detached(nonce, aad, buf, tag)
    }

    fn open_in_place_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), AeadError> {
        let opened = self.inner.open_in_place_detached(nonce, aad, buf, tag);
        if opened.is_err() {
            buf.zeroize();
        }
        opened
    }
}

/// A factory for [`Aead`] instances of one algorithm: what a
/// [`CryptoProvider`](crate::CryptoProvider) holds.
///
/// sealkv seals with 256-bit keys, 96-bit (12-byte) nonces and 128-bit
/// tags, and only those: every sealed unit records a 64-bit counter and the
/// nonce is that counter under a key that is fresh per writer session, so a
/// longer nonce (XChaCha20-Poly1305's 24 bytes) would buy nothing. A provider
/// refuses an algorithm of any other shape, saying which length is wrong.
///
/// Before an algorithm is used, the provider runs its self-test
/// ([`crate::selftest`]): published known-answer vectors, tampering, counter
/// nonces, and misuse resistance if it claims it. An algorithm under a
/// private id (at or above [`AlgorithmId::FIRST_CUSTOM`]) supplies its own
/// published vectors through [`AeadAlgorithm::known_answers`].
pub trait AeadAlgorithm: Send + Sync {
    /// The algorithm's stable on-disk id.
    fn id(&self) -> AlgorithmId;

    /// A short human-readable name: for an algorithm under a private id, the
    /// name users choose it by (unique in a provider, and none of the
    /// built-in names); for a built-in id, the implementation's name (the
    /// algorithm keeps the built-in's name).
    fn name(&self) -> &'static str;

    /// Key length in bytes.
    fn key_len(&self) -> usize;

    /// Nonce length in bytes.
    fn nonce_len(&self) -> usize;

    /// Tag length in bytes.
    fn tag_len(&self) -> usize;

    /// A cipher keyed with `key`.
    fn new_aead(&self, key: &SecretKey) -> Result<Box<dyn Aead>, AeadError>;

    /// Whether repeating a nonce only reveals equality of messages (as with
    /// AES-GCM-SIV) rather than breaking confidentiality and authenticity.
    /// Deterministic field encryption runs only on such algorithms.
    fn misuse_resistant(&self) -> bool {
        false
    }

    /// Published known-answer vectors for this algorithm (at least two, with
    /// distinct nonces, and no 32-bit word repeated within a key or a
    /// nonce), which the provider's self-test seals and opens before the
    /// algorithm is used. Built-in ids are checked against sealkv's own
    /// vectors whatever this returns; a private id without vectors is
    /// refused. [`crate::selftest::vectors`] holds the published vectors of
    /// the built-in algorithms, for a plugin that implements one of them under
    /// a private id.
    fn known_answers(&self) -> &'static [KnownAnswer] {
        &[]
    }
}
