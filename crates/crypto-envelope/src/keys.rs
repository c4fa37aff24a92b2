//! Key material: zeroizing containers with redacted `Debug`, and the ways a
//! master key reaches sealkv (raw bytes, hex, a key file, an environment
//! variable, a passphrase through Argon2id, or a [`KeyProvider`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use crate::error::CryptoError;

/// Length of every sealkv key: 256 bits.
pub const KEY_LEN: usize = 32;

/// 32 secret bytes, zeroized on drop, never printed.
///
/// `Debug` prints `SecretKey(<redacted>)`. There is deliberately no
/// `Display`, no `PartialEq` (comparisons of secrets belong in constant-time
/// code) and no serialization.
#[derive(Clone)]
pub struct SecretKey(Box<Zeroizing<[u8; KEY_LEN]>>);

impl SecretKey {
    /// Every constructor of a secret key ends here (the test-only census
    /// sees each key).
    fn boxed(k: Box<Zeroizing<[u8; KEY_LEN]>>) -> Self {
        #[cfg(feature = "secret-census")]
        crate::census::record(&k);
        SecretKey(k)
    }

    /// Takes exactly [`KEY_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != KEY_LEN {
            return Err(KeyError::WrongLength {
                expected: KEY_LEN,
                actual: bytes.len(),
            });
        }
        let mut k = Box::new(Zeroizing::new([0u8; KEY_LEN]));
        k.copy_from_slice(bytes);
        Ok(SecretKey::boxed(k))
    }

    /// The key of a published test vector, for the self-test. It is public,
    /// so the test-only census leaves it out: RFC 8452's counter-wrap
    /// vectors have an all-zero key, which would make every run of zeros
    /// in a log (a WAL file name) look like a leaked key.
    pub(crate) fn published(bytes: [u8; KEY_LEN]) -> Self {
        SecretKey(Box::new(Zeroizing::new(bytes)))
    }

    /// Takes ownership of an array, zeroizing the caller's copy.
    pub fn from_array(bytes: &mut [u8; KEY_LEN]) -> Self {
        let mut k = Box::new(Zeroizing::new([0u8; KEY_LEN]));
        k.copy_from_slice(bytes);
        bytes.zeroize();
        SecretKey::boxed(k)
    }

    /// A fresh key from the OS CSPRNG.
    pub fn random() -> Result<Self, CryptoError> {
        let mut k = Box::new(Zeroizing::new([0u8; KEY_LEN]));
        crate::random::fill(&mut k[..])?;
        Ok(SecretKey::boxed(k))
    }

    /// A fresh key: `provider`'s random bytes XOR the OS CSPRNG's
    /// ([`crate::random::mixed_fill`]).
    pub fn random_from(provider: &crate::CryptoProvider) -> Result<Self, CryptoError> {
        let mut k = Box::new(Zeroizing::new([0u8; KEY_LEN]));
        crate::random::mixed_fill(provider, &mut k[..])?;
        Ok(SecretKey::boxed(k))
    }

    /// The key's bytes. Handle with care: do not copy them anywhere that is
    /// not zeroized.
    pub fn expose(&self) -> &[u8] {
        &self.0[..]
    }

    /// Parses 64 hex digits (surrounding whitespace is ignored).
    pub fn from_hex(hex_str: &str) -> Result<Self, KeyError> {
        let s = hex_str.trim();
        if s.len() != KEY_LEN * 2 {
            return Err(KeyError::BadHex {
                reason: "expected 64 hex digits",
            });
        }
        let mut k = Box::new(Zeroizing::new([0u8; KEY_LEN]));
        hex::decode_to_slice(s, &mut k[..]).map_err(|_| KeyError::BadHex {
            reason: "not a hex digit",
        })?;
        Ok(SecretKey::boxed(k))
    }

    /// The key as 64 lowercase hex digits, in a zeroizing string (for
    /// writing key files; never for logs).
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.expose()))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Identifies a data key or field key in the key registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The user's master key: a key-encryption key (KEK). It never seals data
/// itself; subkeys derived from it wrap data keys, check the key, and seal
/// archives.
#[derive(Clone)]
pub struct MasterKey(SecretKey);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A master key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        SecretKey::from_bytes(bytes).map(MasterKey)
    }

    /// A fresh random master key.
    pub fn random() -> Result<Self, CryptoError> {
        SecretKey::random().map(MasterKey)
    }

    /// A master key from 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        SecretKey::from_hex(s).map(MasterKey)
    }

    /// Reads a key file: exactly 32 raw bytes, or 64 hex digits with an
    /// optional trailing newline.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        use std::io::Read;
        let path = path.as_ref();
        let io_err = |source| KeyError::File {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        if !file.metadata().map_err(io_err)?.is_file() {
            return Err(KeyError::KeyFileFormat {
                path: path.to_path_buf(),
            });
        }
        // A key file is 32 raw bytes or 64 hex digits and a line end: read
        // at most a little more than that, never a whole device or log.
        let mut bytes = Zeroizing::new(Vec::with_capacity(KEY_FILE_MAX + 1));
        file.take(KEY_FILE_MAX as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        if bytes.len() > KEY_FILE_MAX {
            return Err(KeyError::KeyFileFormat {
                path: path.to_path_buf(),
            });
        }
        if bytes.len() == KEY_LEN {
            return Self::from_bytes(&bytes);
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| KeyError::KeyFileFormat {
            path: path.to_path_buf(),
        })?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.len() != KEY_LEN * 2 {
            return Err(KeyError::KeyFileFormat {
                path: path.to_path_buf(),
            });
        }
        Self::from_hex(text).map_err(|_| KeyError::KeyFileFormat {
            path: path.to_path_buf(),
        })
    }

    /// Reads 64 hex digits from the environment variable `var`.
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        let value = Zeroizing::new(std::env::var(var).map_err(|e| match e {
            std::env::VarError::NotPresent => KeyError::EnvMissing(var.to_string()),
            std::env::VarError::NotUnicode(_) => KeyError::EnvNotUnicode(var.to_string()),
        })?);
        Self::from_hex(&value)
    }

    /// Derives a master key from a passphrase with `provider`'s Argon2id
    /// under `salt` and `params`; parameters outside
    /// [`KdfParams::FLOOR`]..=[`KdfParams::CEILING`] are refused. The salt is
    /// the one recorded beside the passphrase's data (a registry or archive
    /// header), or one just drawn for something new: callers outside this
    /// crate reach it only through
    /// [`hazmat::master_key_from_passphrase`](crate::hazmat::master_key_from_passphrase).
    pub(crate) fn from_passphrase_with(
        provider: &crate::CryptoProvider,
        passphrase: &Passphrase,
        salt: &[u8; 32],
        params: KdfParams,
    ) -> Result<Self, KeyError> {
        params.check()?;
        let hash = provider.password_hash().map_err(|e| match e {
            CryptoError::SelfTest(f) => KeyError::SelfTest(f),
            _ => KeyError::KdfParams {
                reason: "the password hash is unavailable",
            },
        })?;
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        hash.argon2id(passphrase.expose().as_bytes(), salt, params, &mut out[..])
            .map_err(|e| KeyError::KdfParams {
                reason: match e {
                    crate::primitives::PrimitiveError::OutOfMemory => {
                        "not enough memory for the passphrase KDF"
                    }
                    _ => "Argon2 failed",
                },
            })?;
        Ok(MasterKey(SecretKey::from_array(&mut out)))
    }

    /// The key's secret (crate-private: only derivations inside this crate
    /// touch it).
    pub(crate) fn secret(&self) -> &SecretKey {
        &self.0
    }

    /// A master key made of `secret`: a root or archive key drawn for a
    /// [`KeyWrapper`](crate::KeyWrapper) to wrap, or one it unwrapped.
    pub fn from_secret(secret: SecretKey) -> Self {
        MasterKey(secret)
    }
}

/// A data key (DEK): random, wrapped under the master key in the registry,
/// sealing units through per-session subkeys.
#[derive(Clone)]
pub struct DataKey {
    /// The key's id in the registry.
    pub id: KeyId,
    /// The algorithm this key seals with.
    pub algorithm: crate::AlgorithmId,
    key: SecretKey,
}

impl DataKey {
    /// A data key with `id` for `algorithm`.
    pub fn new(id: KeyId, algorithm: crate::AlgorithmId, key: SecretKey) -> Self {
        DataKey { id, algorithm, key }
    }

    /// The key's secret (crate-private: only derivations inside this crate
    /// touch it).
    pub(crate) fn secret(&self) -> &SecretKey {
        &self.key
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A passphrase, zeroized on drop, never printed.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase; an empty one is refused.
    pub fn new(passphrase: impl Into<String>) -> Result<Self, KeyError> {
        let p = Zeroizing::new(passphrase.into());
        if p.is_empty() {
            return Err(KeyError::EmptyPassphrase);
        }
        Ok(Passphrase(p))
    }

    /// Reads a passphrase from the environment variable `var`.
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        let value = std::env::var(var).map_err(|e| match e {
            std::env::VarError::NotPresent => KeyError::EnvMissing(var.to_string()),
            std::env::VarError::NotUnicode(_) => KeyError::EnvNotUnicode(var.to_string()),
        })?;
        Self::new(value)
    }

    /// The passphrase text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Argon2id cost parameters for passphrase-derived master keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

/// The longest key file accepted: 64 hex digits and `\r\n`.
const KEY_FILE_MAX: usize = 2 * KEY_LEN + 2;

impl KdfParams {
    /// The weakest parameters sealkv accepts: OWASP's minimum for Argon2id
    /// (19 MiB, 2 passes, 1 lane). Anything below is refused, also when
    /// read from an existing registry (a tampered header cannot weaken the
    /// KDF).
    pub const FLOOR: KdfParams = KdfParams {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// The default for new databases: 64 MiB, 3 passes, 1 lane.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// The strongest parameters sealkv accepts: 256 MiB, 8 passes, 4 lanes.
    /// Parameters are read from the registry's public header before the
    /// key can be checked, so a tampered header must not be able to make an
    /// open allocate gigabytes or run for minutes.
    pub const CEILING: KdfParams = KdfParams {
        memory_kib: 256 * 1024,
        iterations: 8,
        parallelism: 4,
    };

    /// Checks the parameters against [`KdfParams::FLOOR`] and
    /// [`KdfParams::CEILING`].
    pub fn check(&self) -> Result<(), KeyError> {
        if self.memory_kib < Self::FLOOR.memory_kib
            || self.iterations < Self::FLOOR.iterations
            || self.parallelism < Self::FLOOR.parallelism
        {
            return Err(KeyError::KdfParams {
                reason: "below the floor of 19 MiB, 2 passes, 1 lane",
            });
        }
        if self.memory_kib > Self::CEILING.memory_kib
            || self.iterations > Self::CEILING.iterations
            || self.parallelism > Self::CEILING.parallelism
        {
            return Err(KeyError::KdfParams {
                reason: "above the ceiling of 256 MiB, 8 passes, 4 lanes",
            });
        }
        Ok(())
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The Argon2id salt and cost a passphrase was stretched with: public, and
/// recorded beside what the key seals so it can be stretched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassphraseKdf {
    /// The salt, drawn for this use.
    pub salt: [u8; 32],
    /// The cost.
    pub params: KdfParams,
}

/// Supplies the master key from outside: a KMS, an HSM, an OS keychain.
///
/// sealkv calls it when a database is opened or created; the returned key
/// is zeroized when sealkv is done with it.
pub trait KeyProvider: Send + Sync {
    /// The master key.
    fn master_key(&self) -> Result<MasterKey, KeyError>;

    /// A short description for stats and error messages (e.g. `"aws-kms
    /// key alias/prod"`); must not contain key material.
    fn describe(&self) -> String;
}

/// Where the master key comes from.
#[derive(Clone)]
pub enum KeySource {
    /// A raw 256-bit key.
    Key(MasterKey),
    /// A passphrase; the key is derived with Argon2id under the salt and
    /// parameters stored in the registry header.
    Passphrase {
        /// The passphrase.
        passphrase: Passphrase,
        /// Cost for a *new* database (an existing one uses its stored
        /// parameters).
        params: KdfParams,
    },
    /// A [`KeyProvider`].
    Provider(Arc<dyn KeyProvider>),
    /// A [`KeyWrapper`](crate::KeyWrapper): an HSM or KMS key that never
    /// leaves it. The registry holds a random root key wrapped by it.
    Wrapper(Arc<dyn crate::KeyWrapper>),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Key(_) => f.write_str("KeySource::Key(<redacted>)"),
            KeySource::Passphrase { params, .. } => f
                .debug_struct("KeySource::Passphrase")
                .field("passphrase", &"<redacted>")
                .field("params", params)
                .finish(),
            KeySource::Provider(p) => write!(f, "KeySource::Provider({:?})", p.describe()),
            KeySource::Wrapper(w) => write!(f, "KeySource::Wrapper({:?})", w.describe()),
        }
    }
}

impl KeySource {
    /// A passphrase source with the default KDF cost.
    pub fn passphrase(passphrase: Passphrase) -> Self {
        KeySource::Passphrase {
            passphrase,
            params: KdfParams::DEFAULT,
        }
    }

    /// The key wrapper, if this source is one.
    pub fn wrapper(&self) -> Option<&Arc<dyn crate::KeyWrapper>> {
        match self {
            KeySource::Wrapper(w) => Some(w),
            _ => None,
        }
    }

    /// Whether this source needs a KDF salt (it is a passphrase).
    pub fn is_passphrase(&self) -> bool {
        matches!(self, KeySource::Passphrase { .. })
    }

    /// The master key of a raw key or a [`KeyProvider`]. A passphrase gives
    /// none on its own ([`KeyError::KdfParams`]): it needs a salt, which
    /// [`KeySource::resolve_new`] draws for something new (and a registry
    /// or archive reader takes from the header it reads).
    pub fn master_key(&self, provider: &crate::CryptoProvider) -> Result<MasterKey, KeyError> {
        self.resolve_with(provider, None)
    }

    /// The master key for something new (an archive, say) sealed under this
    /// source: for a passphrase, a fresh salt is drawn (`provider`'s random
    /// source mixed with the operating system's, as [`crate::random`] says) and
    /// returned with the cost (`params` of the source, checked against the
    /// floor and ceiling), to be recorded beside what it seals; `None` for
    /// the other sources.
    pub fn resolve_new(
        &self,
        provider: &crate::CryptoProvider,
    ) -> Result<(MasterKey, Option<PassphraseKdf>), CryptoError> {
        match self {
            KeySource::Passphrase { params, .. } => {
                params.check()?;
                let salt: [u8; 32] = crate::random::salt(provider)?;
                let key = self.resolve_with(provider, Some((&salt, *params)))?;
                Ok((
                    key,
                    Some(PassphraseKdf {
                        salt,
                        params: *params,
                    }),
                ))
            }
            other => Ok((other.resolve_with(provider, None)?, None)),
        }
    }

    /// The master key of something already sealed: `kdf` gives the salt
    /// and cost recorded beside it for a passphrase (ignored for the other
    /// sources), stretched with `provider`'s Argon2id.
    pub(crate) fn resolve_with(
        &self,
        provider: &crate::CryptoProvider,
        kdf: Option<(&[u8; 32], KdfParams)>,
    ) -> Result<MasterKey, KeyError> {
        match self {
            KeySource::Key(k) => Ok(k.clone()),
            KeySource::Provider(p) => p.master_key(),
            KeySource::Wrapper(_) => Err(KeyError::WrapperHasNoKey),
            KeySource::Passphrase { passphrase, .. } => {
                let (salt, params) = kdf.ok_or(KeyError::KdfParams {
                    reason: "no KDF salt is recorded for this passphrase",
                })?;
                MasterKey::from_passphrase_with(provider, passphrase, salt, params)
            }
        }
    }
}

/// Problems loading or deriving a key. None of them carries key bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key of the wrong length.
    #[error("key has {actual} bytes, expected {expected}")]
    WrongLength {
        /// Expected length.
        expected: usize,
        /// Given length.
        actual: usize,
    },
    /// A hex key that does not parse (the input is not echoed).
    #[error("key is not valid hex: {reason}")]
    BadHex {
        /// What is wrong.
        reason: &'static str,
    },
    /// A key file that cannot be read.
    #[error("cannot read key file {}: {source}", path.display())]
    File {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A key file that is neither 32 raw bytes nor 64 hex digits.
    #[error("key file {} must hold 32 raw bytes or 64 hex digits", path.display())]
    KeyFileFormat {
        /// The key file.
        path: PathBuf,
    },
    /// The environment variable is not set.
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    /// The environment variable is not valid Unicode.
    #[error("environment variable {0} is not valid Unicode")]
    EnvNotUnicode(String),
    /// An empty passphrase.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// KDF parameters out of bounds, or the KDF failed.
    #[error("passphrase KDF parameters refused: {reason}")]
    KdfParams {
        /// What is wrong.
        reason: &'static str,
    },
    /// A [`KeyProvider`] failed.
    #[error("key provider failed: {0}")]
    Provider(String),
    /// The crypto provider's password hash failed its self-test.
    #[error(transparent)]
    SelfTest(crate::selftest::SelfTestFailure),
    /// A key wrapper (HSM, KMS) failed.
    #[error(transparent)]
    Wrap(#[from] crate::WrapError),
    /// A master key was asked of a key wrapper, which never hands one out:
    /// what is sealed must record a wrapped key instead.
    #[error("a key wrapper never hands out its key; this needs a raw key or a passphrase")]
    WrapperHasNoKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_or_non_regular_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 4096]).unwrap();
        assert!(matches!(
            MasterKey::from_file(&big),
            Err(KeyError::KeyFileFormat { .. })
        ));
        // 64 hex digits and CRLF is the longest accepted form.
        let crlf = dir.path().join("crlf");
        std::fs::write(&crlf, format!("{}\r\n", "0f".repeat(32))).unwrap();
        assert_eq!(
            MasterKey::from_file(&crlf).unwrap().secret().expose(),
            &[0x0f; 32]
        );
        assert!(matches!(
            MasterKey::from_file(dir.path()),
            Err(KeyError::KeyFileFormat { .. } | KeyError::File { .. })
        ));
    }

    #[test]
    fn kdf_costs_outside_floor_and_ceiling_are_refused() {
        assert!(KdfParams::FLOOR.check().is_ok());
        assert!(KdfParams::CEILING.check().is_ok());
        assert!(KdfParams::DEFAULT.check().is_ok());
        for p in [
            KdfParams {
                memory_kib: KdfParams::CEILING.memory_kib + 1,
                ..KdfParams::DEFAULT
            },
            KdfParams {
                iterations: 17,
                ..KdfParams::DEFAULT
            },
            KdfParams {
                parallelism: 9,
                ..KdfParams::DEFAULT
            },
            KdfParams {
                memory_kib: 19 * 1024 - 1,
                ..KdfParams::DEFAULT
            },
            KdfParams {
                iterations: 1,
                ..KdfParams::DEFAULT
            },
        ] {
            assert!(
                matches!(p.check(), Err(KeyError::KdfParams { .. })),
                "{p:?}"
            );
        }
    }

    #[test]
    fn wrong_lengths_and_bad_hex_are_typed_errors() {
        assert!(matches!(
            SecretKey::from_bytes(&[0u8; 31]),
            Err(KeyError::WrongLength {
                expected: 32,
                actual: 31
            })
        ));
        assert!(matches!(
            MasterKey::from_hex("abcd"),
            Err(KeyError::BadHex { .. })
        ));
        let bad = "zz".repeat(32);
        let err = MasterKey::from_hex(&bad).unwrap_err();
        assert!(matches!(err, KeyError::BadHex { .. }));
        assert!(!err.to_string().contains("zz"), "input must not be echoed");
        let good = "0f".repeat(32);
        let k = MasterKey::from_hex(&format!(" {good}\n")).unwrap();
        assert_eq!(k.secret().expose(), &[0x0f; 32]);
    }

    #[test]
    fn key_files_raw_hex_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        std::fs::write(&raw, [7u8; 32]).unwrap();
        assert_eq!(
            MasterKey::from_file(&raw).unwrap().secret().expose(),
            &[7u8; 32]
        );
        let hexf = dir.path().join("hex");
        std::fs::write(&hexf, format!("{}\n", "ab".repeat(32))).unwrap();
        assert_eq!(
            MasterKey::from_file(&hexf).unwrap().secret().expose(),
            &[0xab; 32]
        );
        let bad = dir.path().join("bad");
        std::fs::write(&bad, b"short").unwrap();
        assert!(matches!(
            MasterKey::from_file(&bad),
            Err(KeyError::KeyFileFormat { .. })
        ));
        let missing = dir.path().join("missing");
        assert!(matches!(
            MasterKey::from_file(&missing),
            Err(KeyError::File { .. })
        ));
    }

    #[test]
    fn env_keys() {
        // SAFETY-free: set_var is unsafe only in edition 2024 because of
        // other threads reading the environment; this test uses a variable
        // name no other test touches.
        let var = "SEALKV_TEST_KEY_ENV_7f3a";
        assert!(matches!(
            MasterKey::from_env(var),
            Err(KeyError::EnvMissing(_))
        ));
    }

    #[test]
    fn kdf_floor_is_enforced() {
        let provider = crate::CryptoProvider::default();
        let p = Passphrase::new("correct horse").unwrap();
        let weak = KdfParams {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        };
        assert!(matches!(
            MasterKey::from_passphrase_with(&provider, &p, &[1; 32], weak),
            Err(KeyError::KdfParams { .. })
        ));
        let a = MasterKey::from_passphrase_with(&provider, &p, &[1; 32], KdfParams::FLOOR).unwrap();
        let b = MasterKey::from_passphrase_with(&provider, &p, &[1; 32], KdfParams::FLOOR).unwrap();
        let c = MasterKey::from_passphrase_with(&provider, &p, &[2; 32], KdfParams::FLOOR).unwrap();
        assert_eq!(a.secret().expose(), b.secret().expose());
        assert_ne!(a.secret().expose(), c.secret().expose());
        assert!(matches!(
            Passphrase::new(""),
            Err(KeyError::EmptyPassphrase)
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let k = SecretKey::from_bytes(&[0xAB; 32]).unwrap();
        let dk = DataKey::new(
            KeyId(1),
            crate::EncryptionAlgorithm::Aes256Gcm.id(),
            k.clone(),
        );
        let mk = MasterKey::from_bytes(&[0xAB; 32]).unwrap();
        let p = Passphrase::new("hunter2hunter2").unwrap();
        let src = KeySource::Key(mk.clone());
        for s in [
            format!("{k:?}"),
            format!("{dk:?}"),
            format!("{mk:?}"),
            format!("{p:?}"),
            format!("{src:?}"),
            format!("{:?}", KeySource::passphrase(p.clone())),
        ] {
            let lower = s.to_lowercase();
            assert!(!lower.contains("abab"), "{s}");
            assert!(!s.contains("171"), "{s}");
            assert!(!s.contains("hunter2"), "{s}");
        }
    }
}
