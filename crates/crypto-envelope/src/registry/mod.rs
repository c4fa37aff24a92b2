//! The key registry: the authenticated set of wrapped keys of one database.
//!
//! A database's data is sealed with random data keys (DEKs); the user's
//! master key (the KEK) only wraps them. The registry holds every key of the
//! database, wrapped, with its id, purpose, algorithm and state:
//!
//! - **data keys**: exactly one is [`KeyState::Active`] (new writer sessions
//!   seal under it); after [`KeyRegistry::rotate_data_key`] the previous ones
//!   stay [`KeyState::Readable`] so old units still open; once a re-encryption
//!   pass has rewritten everything, [`KeyRegistry::retire_data_key`] drops a
//!   key's material ([`KeyState::Retired`]);
//! - **field keys** for field-level encryption ([`crate::field`]):
//!   [`KeyRegistry::add_field_key`] draws one, and
//!   [`KeyRegistry::destroy_field_key`] removes its wrapped bytes from the
//!   registry for good (crypto-shredding; older copies of the registry, as
//!   in backups, still hold it).
//!
//! Under a [`KeyWrapper`](crate::KeyWrapper) (an HSM or KMS key that never
//! leaves it) the KEK is a random *root key*: the header records the
//! wrapper's kind, its key id and the root key as the wrapper wrapped it,
//! and opening asks the wrapper for one unwrap. A wrapper naming another
//! key, or whose unwrap does not authenticate, is `WrongKey`.
//!
//! Every change increments the [`generation`](KeyRegistry::generation), which
//! the page store records so that a registry put back from an older copy is
//! noticed. [`KeyRegistry::rekey`] re-wraps every key under a new KEK in
//! O(keys); no key changes, so no data is rewritten (and whoever holds the
//! old KEK *and* an old copy of the registry can still read: after a KEK
//! compromise, rotate and re-encrypt).
//!
//! The registry's bytes (docs/FORMAT.md, "Key registry") end with an unkeyed
//! SHA-256, so damage is told apart from a wrong key: [`KeyRegistry::open`]
//! checks the structure and the hash (`Corruption`), then the key check, an
//! HMAC under a KEK subkey compared in constant time (`WrongKey`), then an
//! HMAC over the whole file and every wrapped key (`Corruption`). It never
//! uses "the AEAD opened" as the wrong-key test. [`RegistryFile`] keeps the
//! registry in the database directory and replaces it crash-safely.
//!
//! # Example
//!
//! ```
//! use sealkv_crypto_envelope::registry::KeyRegistry;
//! use sealkv_crypto_envelope::{DbId, EncryptionAlgorithm, KeySource, MasterKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let kek = KeySource::Key(MasterKey::random()?);
//! let mut registry = KeyRegistry::create(DbId::random()?, &kek, EncryptionAlgorithm::Aes256Gcm.id())?;
//! let first = registry.active_data_key();
//! let second = registry.rotate_data_key()?;
//! let tenant = registry.add_field_key(EncryptionAlgorithm::Aes256GcmSiv.id())?;
//!
//! let bytes = registry.to_bytes();
//! let reopened = KeyRegistry::open(&bytes, &kek)?;
//! assert_eq!(reopened.active_data_key(), second);
//! assert_eq!(reopened.generation(), registry.generation());
//! assert!(reopened.data_key(first).is_ok()); // still readable
//! assert!(reopened.field_key(tenant).is_ok());
//!
//! // The WAL and the page store get the data keys through a keyring.
//! let keyring = reopened.to_keyring()?;
//! assert_eq!(keyring.active(), Some(second));
//!
//! // Another master key is told apart from damage.
//! let other = KeySource::Key(MasterKey::random()?);
//! assert!(matches!(
//!     KeyRegistry::open(&bytes, &other),
//!     Err(sealkv_crypto_envelope::registry::RegistryError::WrongKey)
//! ));
//! # Ok(())
//! # }
//! ```

mod anchor;
mod error;
mod file;
mod format;
mod kek;
mod types;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::algorithm::AlgorithmId;
use crate::ids::DbId;
use crate::keyring::Keyring;
use crate::keys::{DataKey, KdfParams, KeyError, KeyId, KeySource, MasterKey, SecretKey};
use crate::provider::CryptoProvider;

pub use anchor::{ANCHOR_TAG_LEN, AnchorKey};
pub use error::RegistryError;
pub use file::{MAX_REGISTRY_LEN, REGISTRY_FILE_NAME, RegistryFile};
pub use types::{KekKind, KeyInfo, KeyPurpose, KeyState};

use format::{Header, StoredKdf, StoredWrap};
use kek::KekKeys;

/// The registry format version this build writes (it also reads version
/// 1, which has no wrapper section).
pub const REGISTRY_FORMAT_VERSION: u16 = format::VERSION;

/// A key's material and its wrapped form under the current KEK.
#[derive(Clone)]
struct Material {
    secret: SecretKey,
    wrapped: [u8; format::WRAPPED_LEN],
}

#[derive(Clone)]
struct Entry {
    info: KeyInfo,
    material: Option<Material>,
}

/// The authenticated set of wrapped keys of one database. See the
/// [module docs](self).
///
/// It holds the keys unwrapped in zeroizing memory, and the KEK's registry
/// subkeys (not the KEK). `Debug` shows ids, purposes, algorithms and
/// states, never key material.
#[derive(Clone)]
pub struct KeyRegistry {
    db_id: DbId,
    provider: Arc<CryptoProvider>,
    kek_kind: KekKind,
    kdf: Option<StoredKdf>,
    wrap: Option<StoredWrap>,
    kek: KekKeys,
    default_algorithm: AlgorithmId,
    generation: u64,
    next_id: u32,
    entries: BTreeMap<KeyId, Entry>,
    /// The generation and trailing hash of the bytes this registry was
    /// opened from: a registry read in an older format version is
    /// fingerprinted as the file it is, not as its re-encoding.
    opened_as: Option<(u64, [u8; format::DIGEST_LEN])>,
}

impl fmt::Debug for KeyRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRegistry")
            .field("db_id", &self.db_id)
            .field("generation", &self.generation)
            .field("kek_kind", &self.kek_kind)
            .field("kdf_params", &self.kdf.map(|k| k.params))
            .field("wrapping_key", &self.wrapping_key())
            .field("default_algorithm", &self.default_algorithm)
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

/// A wrapper's failure as a registry error: a wrapping key that is not
/// there or does not open the root key is the wrong key.
fn wrap_error(e: crate::WrapError) -> RegistryError {
    match e {
        crate::WrapError::WrongKey(_) => RegistryError::WrongKey,
        other => RegistryError::Key(KeyError::Wrap(other)),
    }
}

/// The registry root key `wrap` holds, unwrapped by the wrapper of
/// `source`. A wrapper of another kind, or naming another key, is the wrong
/// key (no unwrap is tried).
fn unwrap_root(
    source: &KeySource,
    wrap: &StoredWrap,
    db_id: &DbId,
) -> Result<MasterKey, RegistryError> {
    let wrapper = source.wrapper().ok_or(RegistryError::WrongKey)?;
    if wrapper.kind() != wrap.kind || wrapper.key_id().map_err(wrap_error)? != wrap.key_id {
        return Err(RegistryError::WrongKey);
    }
    let context = format::wrap_context(db_id, &wrap.kind, &wrap.key_id);
    let root = wrapper
        .unwrap(&wrap.wrapped, &context)
        .map_err(wrap_error)?;
    Ok(MasterKey::from_secret(root))
}

/// Resolves the KEK from `source` for a registry of kind `kind` with `kdf`
/// or `wrap`.
fn resolve_kek(
    provider: &CryptoProvider,
    source: &KeySource,
    kind: KekKind,
    kdf: Option<&StoredKdf>,
    wrap: Option<&StoredWrap>,
    db_id: &DbId,
) -> Result<KekKeys, RegistryError> {
    let given = KekKind::of(source);
    if given != kind {
        return Err(RegistryError::KekKindMismatch {
            registry: kind,
            given,
        });
    }
    let kek = match (kind, kdf) {
        (KekKind::Passphrase, Some(k)) => {
            k.params.check().map_err(RegistryError::KdfCost)?;
            source.resolve_with(provider, Some((&k.salt, k.params)))?
        }
        (KekKind::Passphrase, None) => {
            return Err(RegistryError::Corruption {
                what: "passphrase registry without KDF parameters",
                offset: 26,
            });
        }
        (KekKind::Raw, _) => source.resolve_with(provider, None)?,
        (KekKind::Wrapped, _) => {
            let wrap = wrap.ok_or(RegistryError::Corruption {
                what: "wrapped registry without a wrapper section",
                offset: 90,
            })?;
            unwrap_root(source, wrap, db_id)?
        }
    };
    KekKeys::derive(provider, &kek, db_id)
}

/// The KEK of something new under `source`, and what the header records
/// of it: a fresh salt for a passphrase, a fresh root key wrapped by a
/// key wrapper (unwrapped once again and compared before it is trusted, so
/// a wrapper that cannot unwrap what it wrapped is refused before any
/// registry depends on it).
fn new_kek(
    provider: &CryptoProvider,
    source: &KeySource,
    db_id: &DbId,
) -> Result<(Option<StoredKdf>, Option<StoredWrap>, KekKeys), RegistryError> {
    let kind = KekKind::of(source);
    if let Some(wrapper) = source.wrapper() {
        let key_id = wrapper.key_id().map_err(wrap_error)?;
        crate::wrap::check_wrapper_id(wrapper.kind(), &key_id)
            .map_err(|e| RegistryError::Key(KeyError::Wrap(e)))?;
        let root = SecretKey::random_from(provider)?;
        let context = format::wrap_context(db_id, wrapper.kind(), &key_id);
        let wrapped = wrapper
            .wrap(&root, &context)
            .map_err(|e| RegistryError::Key(KeyError::Wrap(e)))?;
        if wrapped.is_empty() || wrapped.len() > crate::MAX_WRAPPED_LEN {
            return Err(RegistryError::Key(KeyError::Wrap(
                crate::WrapError::Failed(format!(
                    "wrapped key of {} bytes (1 to {} allowed)",
                    wrapped.len(),
                    crate::MAX_WRAPPED_LEN
                )),
            )));
        }
        let again = wrapper
            .unwrap(&wrapped, &context)
            .map_err(|e| RegistryError::Key(KeyError::Wrap(e)))?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(root.expose(), again.expose())) {
            return Err(RegistryError::Key(KeyError::Wrap(
                crate::WrapError::Failed("the wrapper does not unwrap what it wrapped".into()),
            )));
        }
        let wrap = StoredWrap {
            kind: wrapper.kind().to_string(),
            key_id,
            wrapped,
        };
        let keys = KekKeys::derive(provider, &MasterKey::from_secret(root), db_id)?;
        return Ok((None, Some(wrap), keys));
    }
    let kdf = new_kdf(provider, source)?;
    let keys = resolve_kek(provider, source, kind, kdf.as_ref(), None, db_id)?;
    Ok((kdf, None, keys))
}

/// A fresh KDF salt and the cost asked for by `source`, if it is a
/// passphrase.
fn new_kdf(
    provider: &CryptoProvider,
    source: &KeySource,
) -> Result<Option<StoredKdf>, RegistryError> {
    match source {
        KeySource::Passphrase { params, .. } => {
            params.check().map_err(RegistryError::KdfCost)?;
            let salt: [u8; 32] = crate::random::salt(provider)?;
            Ok(Some(StoredKdf {
                salt,
                params: *params,
            }))
        }
        _ => Ok(None),
    }
}

impl KeyRegistry {
    /// A new registry for database `db_id` under the KEK from `kek`, with a
    /// fresh random active data key for `algorithm` (also the default
    /// algorithm of later rotations), using the default crypto provider.
    ///
    /// For a passphrase, a random salt is drawn and the cost in the
    /// [`KeySource::Passphrase`] is recorded (refused outside
    /// [`KdfParams::FLOOR`]..=[`KdfParams::CEILING`]).
    pub fn create(
        db_id: DbId,
        kek: &KeySource,
        algorithm: AlgorithmId,
    ) -> Result<Self, RegistryError> {
        Self::create_with_provider(db_id, kek, algorithm, Arc::new(CryptoProvider::default()))
    }

    /// [`KeyRegistry::create`] with a chosen crypto provider, which must
    /// offer `algorithm`.
    pub fn create_with_provider(
        db_id: DbId,
        kek: &KeySource,
        algorithm: AlgorithmId,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, RegistryError> {
        check_algorithm(&provider, algorithm)?;
        let kek_kind = KekKind::of(kek);
        let (kdf, wrap, keys) = new_kek(&provider, kek, &db_id)?;
        let mut reg = KeyRegistry {
            db_id,
            provider,
            kek_kind,
            kdf,
            wrap,
            kek: keys,
            default_algorithm: algorithm,
            generation: 0,
            next_id: 1,
            entries: BTreeMap::new(),
            opened_as: None,
        };
        reg.insert_new(KeyPurpose::Data, algorithm)?;
        reg.generation = 1;
        Ok(reg)
    }

    /// Opens registry bytes with the KEK from `kek` and the default crypto
    /// provider.
    ///
    /// Checks, in order: length, magic, file hash and version, then the
    /// structure (`Corruption`, `UnsupportedVersion`), the KDF cost
    /// (`KdfCost`) and KEK kind (`KekKindMismatch`), then the key check
    /// (`WrongKey`), the registry MAC and every wrapped key (`Corruption`),
    /// then the algorithms (`UnknownAlgorithm`). Never panics on any input.
    pub fn open(bytes: &[u8], kek: &KeySource) -> Result<Self, RegistryError> {
        Self::open_with_provider(bytes, kek, Arc::new(CryptoProvider::default()))
    }

    /// [`KeyRegistry::open`] with a chosen crypto provider.
    pub fn open_with_provider(
        bytes: &[u8],
        kek: &KeySource,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, RegistryError> {
        let parsed = format::parse(bytes)?;
        let h = &parsed.header;
        let keys = resolve_kek(
            &provider,
            kek,
            h.kek_kind,
            h.kdf.as_ref(),
            h.wrap.as_ref(),
            &h.db_id,
        )?;
        Ok(Self::open_parsed(parsed, keys, provider)?.opened_from(bytes))
    }

    /// Records the trailing hash of `bytes`, which this registry was just
    /// opened from, as its fingerprint until it changes.
    fn opened_from(mut self, bytes: &[u8]) -> Self {
        self.opened_as = bytes
            .get(bytes.len().saturating_sub(format::DIGEST_LEN)..)
            .and_then(|tail| <[u8; format::DIGEST_LEN]>::try_from(tail).ok())
            .map(|tail| (self.generation, tail));
        self
    }

    /// Opens `bytes`, a copy of this database's registry, under this
    /// registry's master key: no key source is asked (no passphrase
    /// stretched, no HSM or KMS called), so a backup's copy or a
    /// verification reads the registry while the key wrapper is out of
    /// reach. Every check of [`KeyRegistry::open`] runs; registry bytes of
    /// another database or master key are `WrongKey`.
    pub fn open_copy(&self, bytes: &[u8]) -> Result<Self, RegistryError> {
        let parsed = format::parse(bytes)?;
        if parsed.header.db_id != self.db_id || parsed.header.kek_kind != self.kek_kind {
            return Err(RegistryError::WrongKey);
        }
        Ok(Self::open_parsed(parsed, self.kek.clone(), self.provider.clone())?.opened_from(bytes))
    }

    /// The checks after the KEK is known: key check, MAC, each wrapped key,
    /// the algorithms.
    fn open_parsed(
        parsed: format::Parsed<'_>,
        keys: KekKeys,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, RegistryError> {
        let h = &parsed.header;
        if !keys.verify_key_check(parsed.header_bytes, parsed.key_check) {
            return Err(RegistryError::WrongKey);
        }
        if !keys.verify_mac(parsed.mac_input, parsed.mac) {
            return Err(RegistryError::Corruption {
                what: "registry MAC mismatch",
                offset: parsed.mac_input.len() as u64,
            });
        }
        let mut entries = BTreeMap::new();
        for raw in &parsed.entries {
            let info = KeyInfo {
                id: raw.id,
                purpose: raw.purpose,
                algorithm: raw.algorithm,
                state: raw.state,
            };
            let material = match &raw.wrapped {
                None => None,
                Some(w) => {
                    let aad = format::wrap_aad(
                        parsed.version,
                        &h.db_id,
                        raw.id,
                        raw.purpose,
                        raw.algorithm,
                    );
                    let secret =
                        keys.unwrap(raw.id, &aad, w)?
                            .ok_or(RegistryError::Corruption {
                                what: "wrapped key does not open",
                                offset: raw.offset,
                            })?;
                    // A key read from an older version is re-wrapped under
                    // this version's AAD, which the next write records.
                    let wrapped = if parsed.version == format::VERSION {
                        *w
                    } else {
                        let aad = format::wrap_aad(
                            format::VERSION,
                            &h.db_id,
                            raw.id,
                            raw.purpose,
                            raw.algorithm,
                        );
                        keys.wrap(raw.id, &aad, &secret)?
                    };
                    Some(Material { secret, wrapped })
                }
            };
            entries.insert(raw.id, Entry { info, material });
        }
        debug_assert_eq!(entries.len(), h.key_count as usize);
        check_algorithm(&provider, h.default_algorithm)?;
        for e in entries.values() {
            if e.material.is_some() {
                check_algorithm(&provider, e.info.algorithm)?;
            }
        }
        Ok(KeyRegistry {
            db_id: h.db_id,
            provider,
            kek_kind: h.kek_kind,
            kdf: h.kdf,
            wrap: parsed.header.wrap.clone(),
            kek: keys,
            default_algorithm: h.default_algorithm,
            generation: h.generation,
            next_id: h.next_id,
            entries,
            opened_as: None,
        })
    }

    /// The registry's fingerprint: the SHA-256 trailer of the file it is on
    /// disk. For a registry not changed since it was opened, the trailer of
    /// the bytes it was opened from (which may be an older format version
    /// than [`to_bytes`](KeyRegistry::to_bytes) writes); otherwise the
    /// trailer of `to_bytes`.
    pub fn fingerprint(&self) -> [u8; 32] {
        if let Some((generation, hash)) = self.opened_as
            && generation == self.generation
        {
            return hash;
        }
        let bytes = self.to_bytes();
        let mut out = [0u8; 32];
        if let Some(tail) = bytes.get(bytes.len().saturating_sub(32)..) {
            out.copy_from_slice(tail);
        }
        out
    }

    /// The registry's bytes: header, key check, entries, MAC, hash.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = format::encode_header(&Header {
            db_id: self.db_id,
            kek_kind: self.kek_kind,
            kdf: self.kdf,
            wrap: self.wrap.clone(),
            default_algorithm: self.default_algorithm,
            generation: self.generation,
            next_id: self.next_id,
            key_count: u32::try_from(self.entries.len()).unwrap_or(u32::MAX),
        });
        let mut out = Vec::with_capacity(
            header.len()
                + 3 * format::DIGEST_LEN
                + self.entries.len() * (format::ENTRY_FIXED_LEN + format::WRAPPED_LEN),
        );
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.kek.key_check(&header));
        for e in self.entries.values() {
            format::encode_entry(
                &mut out,
                e.info.id,
                e.info.purpose,
                e.info.state,
                e.info.algorithm,
                e.material.as_ref().map(|m| &m.wrapped),
            );
        }
        let mac = self.kek.mac(&out);
        out.extend_from_slice(&mac);
        let hash = format::sha256(&out);
        out.extend_from_slice(&hash);
        out
    }

    /// Draws a new key, wraps it and inserts it; returns its id. Does not
    /// bump the generation.
    fn insert_new(
        &mut self,
        purpose: KeyPurpose,
        algorithm: AlgorithmId,
    ) -> Result<KeyId, RegistryError> {
        let id = KeyId(self.next_id);
        let next = self
            .next_id
            .checked_add(1)
            .ok_or(RegistryError::Exhausted("key ids"))?;
        let secret = SecretKey::random_from(&self.provider)?;
        let aad = format::wrap_aad(format::VERSION, &self.db_id, id, purpose, algorithm);
        let wrapped = self.kek.wrap(id, &aad, &secret)?;
        self.entries.insert(
            id,
            Entry {
                info: KeyInfo {
                    id,
                    purpose,
                    algorithm,
                    state: KeyState::Active,
                },
                material: Some(Material { secret, wrapped }),
            },
        );
        self.next_id = next;
        Ok(id)
    }

    fn bump(&mut self) -> Result<u64, RegistryError> {
        self.generation
            .checked_add(1)
            .ok_or(RegistryError::Exhausted("generation numbers"))
    }

    /// Makes a fresh random data key (of the default algorithm) the active
    /// one; the previous active key stays readable. Returns the new id.
    ///
    /// Store the registry durably before the first seal under the new key.
    pub fn rotate_data_key(&mut self) -> Result<KeyId, RegistryError> {
        let generation = self.bump()?;
        let old = self.active_data_key();
        let id = self.insert_new(KeyPurpose::Data, self.default_algorithm)?;
        if let Some(e) = self.entries.get_mut(&old) {
            e.info.state = KeyState::Readable;
        }
        self.generation = generation;
        debug_assert_eq!(self.active_data_key(), id);
        Ok(id)
    }

    /// Adds a fresh random field key for `algorithm` (AES-256-GCM-SIV for
    /// deterministic field encryption). Returns its id.
    pub fn add_field_key(&mut self, algorithm: AlgorithmId) -> Result<KeyId, RegistryError> {
        check_algorithm(&self.provider, algorithm)?;
        let generation = self.bump()?;
        let id = self.insert_new(KeyPurpose::Field, algorithm)?;
        self.generation = generation;
        Ok(id)
    }

    fn entry_mut(&mut self, id: KeyId, purpose: KeyPurpose) -> Result<&mut Entry, RegistryError> {
        let e = self
            .entries
            .get_mut(&id)
            .ok_or(RegistryError::UnknownKey(id))?;
        if e.info.purpose != purpose {
            return Err(RegistryError::WrongPurpose {
                id,
                expected: purpose,
                actual: e.info.purpose,
            });
        }
        Ok(e)
    }

    /// Retires data key `id`: its material is removed from the registry, so
    /// units sealed under it no longer open. For the end of a re-encryption
    /// pass. Refused for the active key (`ActiveKey`) and for a key already
    /// retired (`KeyRetired`).
    pub fn retire_data_key(&mut self, id: KeyId) -> Result<(), RegistryError> {
        let generation = self.bump()?;
        let e = self.entry_mut(id, KeyPurpose::Data)?;
        match e.info.state {
            KeyState::Active => return Err(RegistryError::ActiveKey(id)),
            KeyState::Retired => return Err(RegistryError::KeyRetired(id)),
            _ => {}
        }
        e.info.state = KeyState::Retired;
        e.material = None;
        self.generation = generation;
        Ok(())
    }

    /// Destroys field key `id`: its wrapped bytes leave the registry for
    /// good, and values sealed under it can never be opened from this
    /// registry again. Copies made before (backups, exports, old registry
    /// files) still hold it. The id stays, answering `KeyDestroyed`.
    pub fn destroy_field_key(&mut self, id: KeyId) -> Result<(), RegistryError> {
        let generation = self.bump()?;
        let e = self.entry_mut(id, KeyPurpose::Field)?;
        if e.info.state == KeyState::Destroyed {
            return Err(RegistryError::KeyDestroyed(id));
        }
        e.info.state = KeyState::Destroyed;
        e.material = None;
        self.generation = generation;
        Ok(())
    }

    /// Re-wraps every key under the KEK from `source` (which may change
    /// between raw key, passphrase and key wrapper; a passphrase gets a
    /// fresh salt, a key wrapper a fresh root key).
    /// O(number of keys); no key changes, so no data is rewritten.
    pub fn rekey(&mut self, source: &KeySource) -> Result<(), RegistryError> {
        let generation = self.bump()?;
        let kind = KekKind::of(source);
        let (kdf, wrap, keys) = new_kek(&self.provider, source, &self.db_id)?;
        let mut rewrapped = Vec::with_capacity(self.entries.len());
        for e in self.entries.values() {
            if let Some(m) = &e.material {
                let aad = format::wrap_aad(
                    format::VERSION,
                    &self.db_id,
                    e.info.id,
                    e.info.purpose,
                    e.info.algorithm,
                );
                rewrapped.push((e.info.id, keys.wrap(e.info.id, &aad, &m.secret)?));
            }
        }
        for (id, wrapped) in rewrapped {
            if let Some(m) = self.entries.get_mut(&id).and_then(|e| e.material.as_mut()) {
                m.wrapped = wrapped;
            }
        }
        self.kek = keys;
        self.kek_kind = kind;
        self.kdf = kdf;
        self.wrap = wrap;
        self.generation = generation;
        Ok(())
    }

    /// Records a change that is not in the keys themselves: increments the
    /// generation and nothing else. The engine marks a completed database
    /// creation with it (generation 1 is a registry whose database may not
    /// have been created yet). Store the registry durably afterwards, as
    /// after any change.
    pub fn advance_generation(&mut self) -> Result<u64, RegistryError> {
        self.generation = self.bump()?;
        Ok(self.generation)
    }

    /// The key that authenticates this database's freshness anchor: a
    /// subkey of the master key bound to the database id (it changes with
    /// a rekey).
    pub fn anchor_key(&self) -> AnchorKey {
        self.kek.anchor_key()
    }

    /// The database this registry belongs to.
    pub fn db_id(&self) -> &DbId {
        &self.db_id
    }

    /// The generation: 1 at creation, +1 on every change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How the KEK is obtained.
    pub fn kek_kind(&self) -> KekKind {
        self.kek_kind
    }

    /// The wrapper kind and wrapping key id that wrapped the root key, for a
    /// registry under a [`KeyWrapper`](crate::KeyWrapper) (both public).
    pub fn wrapping_key(&self) -> Option<(&str, &str)> {
        self.wrap
            .as_ref()
            .map(|w| (w.kind.as_str(), w.key_id.as_str()))
    }

    /// The passphrase KDF's cost, for a passphrase registry.
    pub fn kdf_params(&self) -> Option<KdfParams> {
        self.kdf.map(|k| k.params)
    }

    /// The algorithm of new data keys.
    pub fn default_algorithm(&self) -> AlgorithmId {
        self.default_algorithm
    }

    /// The crypto provider.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// The id of the active data key.
    pub fn active_data_key(&self) -> KeyId {
        let active = self
            .entries
            .values()
            .find(|e| e.info.purpose == KeyPurpose::Data && e.info.state == KeyState::Active)
            .map(|e| e.info.id);
        debug_assert!(active.is_some(), "a registry always has an active data key");
        active.unwrap_or(KeyId(0))
    }

    /// Every key's public facts, by id.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.entries.values().map(|e| e.info).collect()
    }

    /// The public facts of key `id`.
    pub fn key(&self, id: KeyId) -> Option<KeyInfo> {
        self.entries.get(&id).map(|e| e.info)
    }

    fn usable(&self, id: KeyId, purpose: KeyPurpose) -> Result<DataKey, RegistryError> {
        let (e, m) = self.usable_entry(id, purpose)?;
        Ok(DataKey::new(id, e.info.algorithm, m.secret.clone()))
    }

    /// The entry of key `id` and its material, if it is a usable key of
    /// `purpose`: what [`KeyRegistry::usable`] copies out.
    fn usable_entry(
        &self,
        id: KeyId,
        purpose: KeyPurpose,
    ) -> Result<(&Entry, &Material), RegistryError> {
        let e = self.entries.get(&id).ok_or(RegistryError::UnknownKey(id))?;
        if e.info.purpose != purpose {
            return Err(RegistryError::WrongPurpose {
                id,
                expected: purpose,
                actual: e.info.purpose,
            });
        }
        match (&e.material, e.info.state) {
            (Some(m), _) => Ok((e, m)),
            (None, KeyState::Destroyed) => Err(RegistryError::KeyDestroyed(id)),
            (None, _) => Err(RegistryError::KeyRetired(id)),
        }
    }

    /// Data key `id` (active or readable).
    pub fn data_key(&self, id: KeyId) -> Result<DataKey, RegistryError> {
        self.usable(id, KeyPurpose::Data)
    }

    /// Field key `id`, for [`crate::field`].
    pub fn field_key(&self, id: KeyId) -> Result<DataKey, RegistryError> {
        self.usable(id, KeyPurpose::Field)
    }

    /// Whether field key `id` is usable: the answer [`KeyRegistry::field_key`]
    /// gives, without copying the key out (for a caller that already holds
    /// what it derived from the key and only asks whether it may still use
    /// it).
    pub fn check_field_key(&self, id: KeyId) -> Result<(), RegistryError> {
        self.usable_entry(id, KeyPurpose::Field).map(|_| ())
    }

    /// Puts every readable data key into `keyring`, removes retired ones
    /// from it, and makes the active key the keyring's active key.
    pub fn fill_keyring(&self, keyring: &Keyring) -> Result<(), RegistryError> {
        if keyring.db_id() != &self.db_id {
            return Err(RegistryError::DbMismatch {
                registry: self.db_id,
                keyring: *keyring.db_id(),
            });
        }
        for e in self.entries.values() {
            if e.info.purpose != KeyPurpose::Data {
                continue;
            }
            match &e.material {
                Some(m) => {
                    keyring.insert(DataKey::new(e.info.id, e.info.algorithm, m.secret.clone()))
                }
                None => keyring.remove(e.info.id),
            }
        }
        keyring.set_active(self.active_data_key())?;
        Ok(())
    }

    /// A new keyring with every readable data key, on this registry's
    /// provider.
    pub fn to_keyring(&self) -> Result<Keyring, RegistryError> {
        let keyring = Keyring::new(self.db_id, self.provider.clone());
        self.fill_keyring(&keyring)?;
        Ok(keyring)
    }
}

fn check_algorithm(provider: &CryptoProvider, algorithm: AlgorithmId) -> Result<(), RegistryError> {
    provider
        .algorithm(algorithm)
        .map(|_| ())
        .map_err(|_| RegistryError::UnknownAlgorithm { algorithm })
}

#[cfg(test)]
mod tests;
