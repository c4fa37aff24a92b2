//! [`CryptoProvider`]: the ciphers and the other primitives a database
//! uses.

use std::fmt;
use std::sync::Arc;

use crate::aead::{Aead, AeadAlgorithm};
use crate::algorithm::{
    AlgorithmId, AlgorithmInfo, EncryptionAlgorithm, UnknownAlgorithm, normalize_name,
};
use crate::error::CryptoError;
use crate::frozen::FrozenAlgorithm;
use crate::gated::GatedAead;
use crate::keys::SecretKey;
use crate::primitives::{Kdf, Mac, PasswordHash, SecureRandom};
use crate::rustcrypto;
use crate::selftest::{self, BuiltinVerdict, Gate, SelfTestFailure};

/// The AEAD algorithms, KDF, MAC, password hash and random source sealkv
/// works with.
///
/// Like rustls's `CryptoProvider`, it is a plain set of trait objects: the
/// default is pure-Rust RustCrypto with the operating system's random
/// generator; a user swaps one piece and keeps the rest —
/// [`with_algorithm`](CryptoProvider::with_algorithm) adds a cipher (under a
/// private id) or replaces a built-in one with another implementation,
/// [`with_kdf`](CryptoProvider::with_kdf), [`with_mac`](CryptoProvider::with_mac),
/// [`with_password_hash`](CryptoProvider::with_password_hash) and
/// [`with_random`](CryptoProvider::with_random) replace the other parts. Every
/// layer above picks an algorithm by its on-disk id. A database written by one
/// provider opens with any other that offers the same algorithm ids.
///
/// Nothing enters a provider unchecked: a registered algorithm or part must
/// pass its self-test ([`crate::selftest`]: published known-answer vectors,
/// tampering, counter nonces, misuse resistance when claimed) or it is
/// refused with [`CryptoError::SelfTest`] naming the failed check. The
/// built-in ones run the same self-test once per process, before their first
/// use.
///
/// A provider hands out no raw cipher: sealing goes through writer sessions,
/// which choose the nonces. [`crate::hazmat`] has the raw constructors for
/// code that must pick nonces itself.
///
/// ```
/// use sealkv_crypto_envelope::{CryptoProvider, EncryptionAlgorithm};
///
/// let provider = CryptoProvider::default();
/// let names: Vec<_> = provider.algorithms().map(|a| a.name).collect();
/// assert_eq!(names, ["aes-256-gcm", "chacha20-poly1305", "aes-256-gcm-siv"]);
/// assert_eq!(
///     provider.find_algorithm("ChaCha20_Poly1305").unwrap(),
///     EncryptionAlgorithm::ChaCha20Poly1305.id()
/// );
/// provider.self_test().unwrap();
/// ```
#[derive(Clone)]
pub struct CryptoProvider {
    aeads: Vec<Registered<FrozenAlgorithm>>,
    kdf: Registered<dyn Kdf>,
    mac: Registered<dyn Mac>,
    password_hash: Registered<dyn PasswordHash>,
    random: Registered<dyn SecureRandom>,
}

/// One algorithm or part, and when its self-test runs.
struct Registered<T: ?Sized> {
    part: Arc<T>,
    gate: Gate,
}

impl<T: ?Sized> Clone for Registered<T> {
    fn clone(&self) -> Self {
        Registered {
            part: self.part.clone(),
            gate: self.gate.clone(),
        }
    }
}

/// The verdicts of the built-in algorithms and parts, once per process.
static RUSTCRYPTO_AEAD: [BuiltinVerdict; 3] = [const { BuiltinVerdict::new() }; 3];
static RUSTCRYPTO_KDF: BuiltinVerdict = BuiltinVerdict::new();
static RUSTCRYPTO_MAC: BuiltinVerdict = BuiltinVerdict::new();
static RUSTCRYPTO_ARGON2: BuiltinVerdict = BuiltinVerdict::new();
static OS_RANDOM: BuiltinVerdict = BuiltinVerdict::new();
#[cfg(feature = "ring")]
static RING_AEAD: [BuiltinVerdict; 2] = [const { BuiltinVerdict::new() }; 2];
#[cfg(feature = "ring")]
static RING_KDF: BuiltinVerdict = BuiltinVerdict::new();
#[cfg(feature = "ring")]
static RING_MAC: BuiltinVerdict = BuiltinVerdict::new();
#[cfg(feature = "ring")]
static RING_RANDOM: BuiltinVerdict = BuiltinVerdict::new();

impl fmt::Debug for CryptoProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoProvider")
            .field(
                "algorithms",
                &self.aeads.iter().map(|a| a.part.name()).collect::<Vec<_>>(),
            )
            .field("kdf", &self.kdf.part.name())
            .field("mac", &self.mac.part.name())
            .field("password_hash", &self.password_hash.part.name())
            .field("random", &self.random.part.name())
            .finish()
    }
}

impl Default for CryptoProvider {
    fn default() -> Self {
        Self::rustcrypto()
    }
}

impl CryptoProvider {
    /// The default provider: RustCrypto's AES-256-GCM, ChaCha20-Poly1305,
    /// AES-256-GCM-SIV, HKDF-SHA256, HMAC-SHA256 and Argon2id, and the
    /// operating system's random generator.
    pub fn rustcrypto() -> Self {
        CryptoProvider {
            aeads: rustcrypto::ALGORITHMS
                .iter()
                .zip(&RUSTCRYPTO_AEAD)
                .map(|(a, verdict)| Registered {
                    part: Arc::new(FrozenAlgorithm::freeze(Arc::new(*a))),
                    gate: Gate::Lazy(verdict),
                })
                .collect(),
            kdf: Registered {
                part: Arc::new(rustcrypto::HkdfSha256),
                gate: Gate::Lazy(&RUSTCRYPTO_KDF),
            },
            mac: Registered {
                part: Arc::new(rustcrypto::HmacSha256),
                gate: Gate::Lazy(&RUSTCRYPTO_MAC),
            },
            password_hash: Registered {
                part: Arc::new(rustcrypto::Argon2id),
                gate: Gate::Lazy(&RUSTCRYPTO_ARGON2),
            },
            random: Registered {
                part: Arc::new(rustcrypto::OsRandom),
                gate: Gate::Lazy(&OS_RANDOM),
            },
        }
    }

    /// The `ring` provider (cargo feature `ring`): `ring`'s AES-256-GCM and
    /// ChaCha20-Poly1305 (assembly, about three times the default's
    /// throughput), HKDF-SHA256, HMAC-SHA256 and random generator;
    /// RustCrypto's AES-256-GCM-SIV and Argon2id (`ring` has neither).
    ///
    /// It writes exactly the bytes the default provider writes: a database
    /// written with either opens with the other.
    ///
    /// ```
    /// use sealkv_crypto_envelope::CryptoProvider;
    ///
    /// let ring = CryptoProvider::ring();
    /// let implementations: Vec<_> = ring.algorithms().map(|a| a.implementation).collect();
    /// assert_eq!(
    ///     implementations,
    ///     ["aes-256-gcm (ring)", "chacha20-poly1305 (ring)", "aes-256-gcm-siv"]
    /// );
    /// ring.self_test().unwrap();
    /// ```
    #[cfg(feature = "ring")]
    pub fn ring() -> Self {
        use crate::ring_provider;
        let mut provider = Self::rustcrypto();
        for (algorithm, verdict) in ring_provider::ALGORITHMS.iter().zip(&RING_AEAD) {
            let algorithm = FrozenAlgorithm::freeze(Arc::new(*algorithm));
            provider.aeads.retain(|a| a.part.id() != algorithm.id());
            provider.aeads.push(Registered {
                part: Arc::new(algorithm),
                gate: Gate::Lazy(verdict),
            });
        }
        provider.aeads.sort_by_key(|a| a.part.id());
        provider.kdf = Registered {
            part: Arc::new(ring_provider::RingHkdf),
            gate: Gate::Lazy(&RING_KDF),
        };
        provider.mac = Registered {
            part: Arc::new(ring_provider::RingHmac),
            gate: Gate::Lazy(&RING_MAC),
        };
        provider.random = Registered {
            part: Arc::new(ring_provider::RingRandom),
            gate: Gate::Lazy(&RING_RANDOM),
        };
        provider
    }

    /// A provider with exactly `algorithms` (and the default's other parts),
    /// each checked as by [`CryptoProvider::with_algorithm`]; two with one
    /// id are refused.
    pub fn from_algorithms(algorithms: Vec<Arc<dyn AeadAlgorithm>>) -> Result<Self, CryptoError> {
        let mut provider = CryptoProvider {
            aeads: Vec::new(),
            ..Self::rustcrypto()
        };
        for algorithm in algorithms {
            let algorithm = FrozenAlgorithm::freeze(algorithm);
            if provider.registered(algorithm.id()).is_ok() {
                return Err(CryptoError::ProviderRejected {
                    id: algorithm.id(),
                    reason: "two algorithms with one id",
                });
            }
            provider = provider.with_frozen(algorithm)?;
        }
        Ok(provider)
    }

    /// This provider with `algorithm` added, replacing any with the same id,
    /// once it passes its self-test ([`crate::selftest`]); a failure is
    /// [`CryptoError::SelfTest`], naming the check.
    ///
    /// Every algorithm has sealkv's unit shape: 32-byte keys, 12-byte
    /// (96-bit) nonces, 16-byte tags. Ids below [`AlgorithmId::FIRST_CUSTOM`]
    /// belong to the built-in algorithms: an implementation may take one (a
    /// hardware-accelerated AES-256-GCM, say) only if it matches the
    /// built-in's published vectors and its output at counter nonces, and
    /// claims the same misuse resistance; unknown ids below it are refused.
    /// So no provider can make a database's recorded algorithm mean
    /// something else, or make deterministic field encryption run on a
    /// cipher that is not misuse-resistant. An algorithm under a private id
    /// is chosen by its name, which must not be a built-in's or another
    /// algorithm's in this provider.
    ///
    /// The algorithm is asked for its id, name, lengths and misuse
    /// resistance once, here; the self-test checks those answers and the
    /// provider uses them from then on, whatever the algorithm would answer
    /// later. Every cipher it builds afterwards must report the same id,
    /// nonce length and tag length, or it is refused
    /// ([`CryptoError::ProviderRejected`]).
    pub fn with_algorithm(self, algorithm: Arc<dyn AeadAlgorithm>) -> Result<Self, CryptoError> {
        self.with_frozen(FrozenAlgorithm::freeze(algorithm))
    }

    /// [`CryptoProvider::with_algorithm`] on answers already taken.
    fn with_frozen(mut self, algorithm: FrozenAlgorithm) -> Result<Self, CryptoError> {
        let id = algorithm.id();
        selftest::check_algorithm(&algorithm)?;
        if !id.is_reserved() {
            let name = normalize_name(algorithm.name());
            let taken = EncryptionAlgorithm::ALL.iter().any(|b| b.name() == name)
                || self
                    .algorithms()
                    .any(|a| a.id != id && normalize_name(a.name) == name);
            if taken || name.is_empty() {
                return Err(CryptoError::ProviderRejected {
                    id,
                    reason: "its name is empty or already names another algorithm",
                });
            }
        }
        self.aeads.retain(|a| a.part.id() != id);
        self.aeads.push(Registered {
            part: Arc::new(algorithm),
            gate: Gate::passed(),
        });
        self.aeads.sort_by_key(|a| a.part.id());
        Ok(self)
    }

    /// This provider with another HKDF-SHA256, once it passes RFC 5869's
    /// vectors.
    pub fn with_kdf(mut self, kdf: Arc<dyn Kdf>) -> Result<Self, CryptoError> {
        selftest::check_kdf(kdf.as_ref())?;
        self.kdf = Registered {
            part: kdf,
            gate: Gate::passed(),
        };
        Ok(self)
    }

    /// This provider with another HMAC-SHA256, once it passes RFC 4231's
    /// vectors.
    pub fn with_mac(mut self, mac: Arc<dyn Mac>) -> Result<Self, CryptoError> {
        selftest::check_mac(mac.as_ref())?;
        self.mac = Registered {
            part: mac,
            gate: Gate::passed(),
        };
        Ok(self)
    }

    /// This provider with another Argon2id, once it passes the reference
    /// implementation's vectors.
    pub fn with_password_hash(
        mut self,
        password_hash: Arc<dyn PasswordHash>,
    ) -> Result<Self, CryptoError> {
        selftest::check_password_hash(password_hash.as_ref())?;
        self.password_hash = Registered {
            part: password_hash,
            gate: Gate::passed(),
        };
        Ok(self)
    }

    /// This provider with another random source, once it fills and two of
    /// its draws differ. It never replaces the operating system's CSPRNG:
    /// every key, database id and salt sealkv draws is its bytes XOR the
    /// operating system's ([`crate::random::mixed_fill`]), so a source that
    /// repeats across processes repeats no key, id or writer session's
    /// salt, and getrandom must still work.
    pub fn with_random(mut self, random: Arc<dyn SecureRandom>) -> Result<Self, CryptoError> {
        selftest::check_random(random.as_ref())?;
        self.random = Registered {
            part: random,
            gate: Gate::passed(),
        };
        Ok(self)
    }

    /// Every algorithm this provider holds, by id: what a user can choose
    /// for a new database (`--algorithm`), and how each is shown.
    pub fn algorithms(&self) -> impl Iterator<Item = AlgorithmInfo> + '_ {
        self.aeads.iter().map(|a| info(a.part.as_ref()))
    }

    /// The algorithm with on-disk id `id`.
    pub fn algorithm(&self, id: AlgorithmId) -> Result<AlgorithmInfo, CryptoError> {
        self.registered(id).map(|a| info(a.part.as_ref()))
    }

    /// The id of the algorithm named `name` (case, surrounding space and
    /// `_` for `-` do not matter): a built-in name, or the name of an
    /// algorithm under a private id.
    pub fn find_algorithm(&self, name: &str) -> Result<AlgorithmId, UnknownAlgorithm> {
        let norm = normalize_name(name);
        self.algorithms()
            .find(|a| normalize_name(a.name) == norm)
            .map(|a| a.id)
            .ok_or_else(|| UnknownAlgorithm::new(name, self.algorithms().map(|a| a.name).collect()))
    }

    /// Runs (or recalls) the self-test of every algorithm and part now,
    /// rather than before each one's first use.
    pub fn self_test(&self) -> Result<(), CryptoError> {
        for a in &self.aeads {
            self.checked(a)?;
        }
        self.kdf()?;
        self.mac()?;
        self.password_hash()?;
        let mut probe = [0u8; 1];
        self.fill_random(&mut probe)
    }

    /// Runs every algorithm's and part's self-test afresh, whatever the
    /// cached verdicts say (for a periodic re-check, and to measure what the
    /// self-test costs); returns the first failure.
    ///
    /// Each algorithm or part that fails is marked failed for good: every
    /// later use of it, through this provider or any clone of it, is
    /// refused with [`CryptoError::SelfTest`] naming that failure (for a
    /// built-in one, in the whole process), and a later re-check reports
    /// the same failure without running again. Holders built before the
    /// re-check stop too: a running writer session's sealers, the
    /// keyring's cached openers and an archive's chunk sealer and opener
    /// refuse every later seal and open with that failure. A raw cipher
    /// from [`crate::hazmat`] is not recalled.
    pub fn self_test_again(&self) -> Result<(), SelfTestFailure> {
        let mut verdicts = Vec::with_capacity(self.aeads.len() + 4);
        for a in &self.aeads {
            verdicts.push(
                a.gate
                    .recheck(|| selftest::check_algorithm(a.part.as_ref())),
            );
        }
        verdicts.push(
            self.kdf
                .gate
                .recheck(|| selftest::check_kdf(self.kdf.part.as_ref())),
        );
        verdicts.push(
            self.mac
                .gate
                .recheck(|| selftest::check_mac(self.mac.part.as_ref())),
        );
        verdicts.push(
            self.password_hash
                .gate
                .recheck(|| selftest::check_password_hash(self.password_hash.part.as_ref())),
        );
        verdicts.push(
            self.random
                .gate
                .recheck(|| selftest::check_random(self.random.part.as_ref())),
        );
        verdicts.into_iter().collect()
    }

    /// Fills `buf` from the provider's random source alone (sealkv draws
    /// keys, ids and salts with [`crate::random::mixed_fill`], which mixes
    /// in the operating system's bytes).
    pub fn fill_random(&self, buf: &mut [u8]) -> Result<(), CryptoError> {
        let random = &self.random;
        random
            .gate
            .verdict(|| selftest::check_random(random.part.as_ref()))?;
        random.part.fill(buf).map_err(CryptoError::Rng)
    }

    fn registered(&self, id: AlgorithmId) -> Result<&Registered<FrozenAlgorithm>, CryptoError> {
        self.aeads
            .iter()
            .find(|a| a.part.id() == id)
            .ok_or(CryptoError::UnsupportedAlgorithm(id))
    }

    /// The algorithm once its self-test has passed.
    fn checked<'a>(
        &self,
        registered: &'a Registered<FrozenAlgorithm>,
    ) -> Result<&'a FrozenAlgorithm, CryptoError> {
        let algorithm = registered.part.as_ref();
        registered
            .gate
            .verdict(|| selftest::check_algorithm(algorithm))?;
        Ok(algorithm)
    }

    /// The factory of algorithm `id`, self-tested: its answers are the ones
    /// taken when it entered the provider.
    pub(crate) fn aead_algorithm(
        &self,
        id: AlgorithmId,
    ) -> Result<&dyn AeadAlgorithm, CryptoError> {
        Ok(self.checked(self.registered(id)?)?)
    }

    /// A cipher for algorithm `id` keyed with `key`. Crate-private: it seals
    /// under any nonce ([`crate::hazmat::new_aead`] is the public door).
    pub(crate) fn new_aead(
        &self,
        id: AlgorithmId,
        key: &SecretKey,
    ) -> Result<Box<dyn Aead>, CryptoError> {
        let registered = self.registered(id)?;
        self.checked(registered)?.new_aead_checked(key)
    }

    /// [`CryptoProvider::new_aead`] with the algorithm's gate: for holders
    /// that outlive a re-check (writer sessions, openers), which must stop
    /// once the algorithm is marked failed.
    pub(crate) fn new_gated_aead(
        &self,
        id: AlgorithmId,
        key: &SecretKey,
    ) -> Result<GatedAead, CryptoError> {
        let registered = self.registered(id)?;
        let aead = self.checked(registered)?.new_aead_checked(key)?;
        Ok(GatedAead::new(aead, registered.gate.clone()))
    }

    /// The KDF, self-tested.
    pub(crate) fn kdf(&self) -> Result<&dyn Kdf, CryptoError> {
        let kdf = self.kdf.part.as_ref();
        self.kdf.gate.verdict(|| selftest::check_kdf(kdf))?;
        Ok(kdf)
    }

    /// The MAC, self-tested (shared, for holders that outlive a borrow).
    pub(crate) fn mac(&self) -> Result<Arc<dyn Mac>, CryptoError> {
        let mac = &self.mac.part;
        self.mac
            .gate
            .verdict(|| selftest::check_mac(mac.as_ref()))?;
        Ok(mac.clone())
    }

    /// The password hash, self-tested.
    pub(crate) fn password_hash(&self) -> Result<&dyn PasswordHash, CryptoError> {
        let hash = self.password_hash.part.as_ref();
        self.password_hash
            .gate
            .verdict(|| selftest::check_password_hash(hash))?;
        Ok(hash)
    }
}

fn info(algorithm: &FrozenAlgorithm) -> AlgorithmInfo {
    let id = algorithm.id();
    AlgorithmInfo {
        id,
        name: EncryptionAlgorithm::from_id(id).map_or(algorithm.name(), |b| b.name()),
        implementation: algorithm.name(),
        misuse_resistant: algorithm.misuse_resistant(),
    }
}
