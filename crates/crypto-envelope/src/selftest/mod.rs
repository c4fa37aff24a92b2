//! Self-tests: what a cipher or a part must show before a provider uses it.
//!
//! A [`CryptoProvider`](crate::CryptoProvider) runs these checks on every
//! algorithm and part it holds before the first use: on an algorithm or part
//! a user registers, at registration (a failure refuses it, naming the
//! check); on the built-in ones, once per process, before the first cipher or
//! derivation (the verdict is cached, so opening a database pays for it at
//! most once). A failed check is a [`SelfTestFailure`] naming the subject and
//! the [`Check`].
//!
//! # What an AEAD algorithm must show
//!
//! 1. Its shape: 32-byte keys, 12-byte (96-bit) nonces, 16-byte tags; no
//!    other nonce size is supported.
//! 2. Its id: a reserved id (below [`AlgorithmId::FIRST_CUSTOM`]) must name a
//!    built-in algorithm and claim the same misuse resistance.
//! 3. Published known-answer vectors: a built-in id is checked against
//!    [`vectors`] (NIST CAVP for AES-256-GCM, RFC 8439 for
//!    ChaCha20-Poly1305, RFC 8452 for AES-256-GCM-SIV); a private id brings
//!    its own through [`AeadAlgorithm::known_answers`]: at least two, with
//!    distinct nonces, and no 32-bit word repeated within a key or a nonce.
//!    Each must seal to the published ciphertext and tag and open back.
//!    AES-256-GCM-SIV's built-in id also seals RFC 8452 C.3's counter-wrap
//!    vectors.
//! 4. Tampering: `open` refuses a flipped tag byte, ciphertext byte and AAD
//!    byte, on the vectors and on messages of its own.
//! 5. Counter nonces (sealkv's nonces are a counter): a 64-byte message and
//!    a page-sized one of odd length (4096 + 13 bytes) are sealed at
//!    counters 0, 1, 2, 2^32 - 1, 2^32 and 2^64 - 1; each opens back and
//!    sealing is deterministic; no 16-byte block of the page's keystream
//!    (ciphertext XOR plaintext) turns up twice, at any position, within
//!    one counter or across all of them (a counter block of nonce + block
//!    index would repeat one counter's keystream one block later in the
//!    next). Flipping any nonce byte gives keystream sharing no block with
//!    the original's. A message of 64 KiB + 13 bytes, past where a bulk
//!    path takes over, is sealed at counters 0 and 2^64 - 1: each opens
//!    back, refuses its last byte flipped, and no keystream block repeats
//!    within or across the two. A built-in id must also match the
//!    RustCrypto reference at each counter, for every message.
//! 6. Misuse resistance, if claimed: a 269-byte message, and the same with
//!    one byte flipped in any one of its 16-byte blocks (the partial last
//!    one included), sealed under one key and nonce, share no 16-byte block
//!    of keystream; nor do the page-sized message and the same with a byte
//!    flipped in its first, last or one of three spread-out blocks.
//!
//! # What a part must show
//!
//! HKDF-SHA256: RFC 5869's vectors, with the info given whole, in two parts
//! and in four (one of them empty: sealkv's labels have up to four parts).
//! HMAC-SHA256: RFC 4231's, with the data split the same ways. Argon2id: the reference implementation's. The
//! random source: it fills, and two draws differ.
//!
//! [`AlgorithmId::FIRST_CUSTOM`]: crate::AlgorithmId::FIRST_CUSTOM
//! [`AeadAlgorithm::known_answers`]: crate::AeadAlgorithm::known_answers

mod aead;
mod parts;
pub mod vectors;

use std::fmt;
use std::sync::{Arc, OnceLock};

pub use aead::check_algorithm;
pub use parts::{check_kdf, check_mac, check_password_hash, check_random};
pub use vectors::KnownAnswer;

/// A subject (an algorithm or a part) that failed a check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{subject} failed its self-test: {check}")]
pub struct SelfTestFailure {
    subject: String,
    check: Check,
}

impl SelfTestFailure {
    pub(crate) fn new(subject: String, check: Check) -> Self {
        SelfTestFailure { subject, check }
    }

    /// What failed: `"algorithm aes-256-gcm (ring) (0x0001)"`, `"kdf ..."`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The check it failed.
    pub fn check(&self) -> &Check {
        &self.check
    }
}

/// One self-test check. Vectors are numbered from 0 in the order the
/// algorithm or [`vectors`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// Not 32-byte keys, 12-byte nonces and 16-byte tags.
    Shape {
        /// The algorithm's key length.
        key_len: usize,
        /// The algorithm's nonce length.
        nonce_len: usize,
        /// The algorithm's tag length.
        tag_len: usize,
    },
    /// An id in the reserved range that names no built-in algorithm.
    ReservedId,
    /// A built-in id with another misuse resistance than the built-in's.
    MisuseResistanceClaim,
    /// Fewer than two published vectors, or all with one nonce.
    TooFewVectors {
        /// How many were given.
        given: usize,
    },
    /// A vector unfit for the test.
    WeakVector {
        /// Which.
        vector: usize,
        /// Why.
        reason: &'static str,
    },
    /// The cipher could not be built, or is not what the algorithm says.
    Construction(&'static str),
    /// A published vector sealed to another ciphertext or tag.
    KnownAnswerSeal {
        /// Which.
        vector: usize,
    },
    /// A published vector did not open, or opened to another plaintext.
    KnownAnswerOpen {
        /// Which.
        vector: usize,
    },
    /// `open` accepted a message whose tag had a flipped byte.
    AcceptsFlippedTag,
    /// `open` accepted a message whose ciphertext had a flipped byte.
    AcceptsFlippedCiphertext,
    /// `open` accepted a message whose AAD had a flipped byte.
    AcceptsFlippedAad,
    /// Two counter nonces gave a 16-byte block of keystream (ciphertext
    /// XOR plaintext) in common, at any positions: they share a keystream.
    CounterNoncesShareKeystream {
        /// One counter.
        first: u64,
        /// The other.
        second: u64,
    },
    /// A 16-byte block of keystream repeats within one sealed message.
    KeystreamRepeats,
    /// A published counter-wrap vector (RFC 8452 C.3, for AES-256-GCM-SIV's
    /// built-in id) sealed to another ciphertext or tag, or did not open.
    CounterWrap {
        /// Which.
        vector: usize,
    },
    /// A message sealed at a counter nonce did not open back.
    CounterNonceRoundTrip {
        /// The counter.
        counter: u64,
    },
    /// Changing this byte of the nonce leaves a 16-byte block of keystream
    /// that the original nonce also gives.
    IgnoresNonceByte {
        /// The byte's index.
        byte: usize,
    },
    /// Sealing the same input twice gave two outputs.
    NotDeterministic,
    /// A built-in id whose output differs from the RustCrypto reference at
    /// this counter nonce (for the short, the page-sized or the large
    /// message).
    DiffersFromBuiltin {
        /// The counter.
        counter: u64,
    },
    /// Claims misuse resistance, but two messages under one key and nonce
    /// share keystream.
    NotMisuseResistant,
    /// A published KDF, MAC or password-hash vector gave another output (or
    /// an error).
    PartKnownAnswer {
        /// Which.
        vector: usize,
    },
    /// HKDF gave another output for the info in parts than whole.
    KdfInfoParts,
    /// HMAC gave another output for the data in parts than whole.
    MacDataParts,
    /// HMAC under a prepared key ([`Mac::keyed`](crate::primitives::Mac::keyed))
    /// gave another output than the published vector.
    MacKeyed {
        /// Which.
        vector: usize,
    },
    /// The random source failed, or gave the same bytes twice.
    RandomSource(&'static str),
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Shape {
                key_len,
                nonce_len,
                tag_len,
            } => write!(
                f,
                "shape: sealkv seals with 32-byte keys, 12-byte (96-bit) nonces and 16-byte tags; \
                 this algorithm has {key_len}-byte keys, {nonce_len}-byte nonces and {tag_len}-byte tags \
                 (no other nonce size is supported)"
            ),
            Check::ReservedId => f.write_str(
                "id: below 0x8000 only the built-in algorithms' ids may be used; pick a private id at or above 0x8000",
            ),
            Check::MisuseResistanceClaim => {
                f.write_str("id: claims another misuse resistance than the built-in algorithm of this id")
            }
            Check::TooFewVectors { given } => write!(
                f,
                "known-answer vectors: needs at least two published vectors with distinct nonces, has {given}"
            ),
            Check::WeakVector { vector, reason } => {
                write!(f, "known-answer vector {vector} is unfit: {reason}")
            }
            Check::Construction(why) => write!(f, "construction: {why}"),
            Check::KnownAnswerSeal { vector } => write!(
                f,
                "known-answer seal: vector {vector} sealed to another ciphertext or tag than the published one"
            ),
            Check::KnownAnswerOpen { vector } => write!(
                f,
                "known-answer open: vector {vector} did not open to the published plaintext"
            ),
            Check::AcceptsFlippedTag => f.write_str("tamper: open accepted a flipped tag byte"),
            Check::AcceptsFlippedCiphertext => {
                f.write_str("tamper: open accepted a flipped ciphertext byte")
            }
            Check::AcceptsFlippedAad => f.write_str("tamper: open accepted a flipped AAD byte"),
            Check::CounterNoncesShareKeystream { first, second } => write!(
                f,
                "counter nonces: counters {first} and {second} share keystream"
            ),
            Check::KeystreamRepeats => {
                f.write_str("keystream: a 16-byte block of keystream repeats within one message")
            }
            Check::CounterWrap { vector } => write!(
                f,
                "counter wrap: RFC 8452 C.3 vector {vector} (the 32-bit block counter wraps) sealed or opened wrong"
            ),
            Check::CounterNonceRoundTrip { counter } => write!(
                f,
                "counter nonces: a message sealed at counter {counter} did not open back"
            ),
            Check::IgnoresNonceByte { byte } => {
                write!(f, "nonce: flipping byte {byte} of the nonce leaves keystream the nonce also gives")
            }
            Check::NotDeterministic => {
                f.write_str("determinism: the same input sealed twice gave two outputs")
            }
            Check::DiffersFromBuiltin { counter } => write!(
                f,
                "reference: output differs from the built-in algorithm's at counter {counter}"
            ),
            Check::NotMisuseResistant => f.write_str(
                "misuse resistance: two messages under one key and nonce share keystream",
            ),
            Check::PartKnownAnswer { vector } => write!(
                f,
                "known-answer: published vector {vector} gave another output"
            ),
            Check::KdfInfoParts => {
                f.write_str("info in parts: HKDF gave another output for the info split in parts")
            }
            Check::MacDataParts => {
                f.write_str("data in parts: HMAC gave another output for the data split in parts")
            }
            Check::MacKeyed { vector } => write!(
                f,
                "prepared key: HMAC under a prepared key gave another output for published vector {vector}"
            ),
            Check::RandomSource(why) => write!(f, "random source: {why}"),
        }
    }
}

/// The cached outcome of a self-test.
pub(crate) type Verdict = Result<(), SelfTestFailure>;

/// The self-test verdicts of one built-in algorithm or part, for the whole
/// process.
pub(crate) struct BuiltinVerdict {
    /// The first run, before the first use.
    first: OnceLock<Verdict>,
    /// The first failure of a later run.
    failed_later: OnceLock<SelfTestFailure>,
}

impl BuiltinVerdict {
    /// Nothing run yet.
    pub(crate) const fn new() -> Self {
        BuiltinVerdict {
            first: OnceLock::new(),
            failed_later: OnceLock::new(),
        }
    }
}

/// When a provider entry's self-test runs, and whether a later run failed.
///
/// A failed later run ([`Gate::recheck`]) marks the entry failed for good:
/// from then on every use is refused with that failure, whatever the first
/// verdict was. The mark is shared by every clone of the provider (for a
/// built-in, by the whole process, like its first verdict).
#[derive(Clone)]
pub(crate) enum Gate {
    /// It passed at registration; the cell holds a later failure.
    Passed(Arc<OnceLock<SelfTestFailure>>),
    /// A built-in: run once per process before the first use, then cached.
    Lazy(&'static BuiltinVerdict),
}

impl Gate {
    /// The gate of an entry that has just passed its self-test.
    pub(crate) fn passed() -> Self {
        Gate::Passed(Arc::default())
    }

    fn failed_later(&self) -> &OnceLock<SelfTestFailure> {
        match self {
            Gate::Passed(cell) => cell,
            Gate::Lazy(verdict) => &verdict.failed_later,
        }
    }

    /// The failure a later run marked the entry with, if any: one atomic
    /// load, for holders of a cipher built while the entry passed.
    pub(crate) fn failed_later_verdict(&self) -> Verdict {
        match self.failed_later().get() {
            Some(failure) => Err(failure.clone()),
            None => Ok(()),
        }
    }

    /// The verdict, running `test` first if this is the first asking.
    pub(crate) fn verdict(&self, test: impl FnOnce() -> Verdict) -> Verdict {
        self.failed_later_verdict()?;
        match self {
            Gate::Passed(_) => Ok(()),
            Gate::Lazy(verdict) => verdict.first.get_or_init(test).clone(),
        }
    }

    /// Runs `test` afresh, unless a later run already failed (that failure
    /// is the verdict for good); a failure marks the entry failed.
    pub(crate) fn recheck(&self, test: impl FnOnce() -> Verdict) -> Verdict {
        let marked = self.failed_later();
        if let Some(failure) = marked.get() {
            return Err(failure.clone());
        }
        let verdict = test();
        if let Err(failure) = &verdict {
            // A concurrent re-check may have marked it first: its failure
            // stays, and this one is reported all the same.
            let _ = marked.set(failure.clone());
        }
        verdict
    }
}

/// Decodes a hex field of a vector; `None` if it is not hex.
fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}
