//! The key registry: a database's data keys and field keys, wrapped under
//! its master key (KEK), in one authenticated file.
//!
//! - Data keys (DEKs) seal the WAL, pages and metadata through writer
//!   sessions. One is active; rotation adds a new active one and keeps the
//!   old ones readable until they are retired (after a re-encryption).
//! - Field keys seal single values (field-level encryption). Destroying one
//!   removes its bytes from the file for good (crypto-shredding).
//! - The KEK never seals data: HKDF subkeys of it wrap the keys, compute the
//!   key check and MAC the file. `rekey` re-wraps everything under a new
//!   KEK without changing a single data key.
//!
//! Opening checks, in order: structure and the unkeyed SHA-256 (damage ->
//! [`RegistryError::Corruption`]); the KDF cost if a passphrase; the key
//! check, an HMAC under a KEK subkey compared in constant time (mismatch ->
//! [`RegistryError::WrongKey`] — never "the AEAD failed", since AES-GCM is
//! not key-committing); the MAC over the whole file, then every wrapped key
//! (failures -> `Corruption`). The byte format is in [`format`] and
//! `docs/FORMAT.md`.
//!
//! ```
//! use sealkv_crypto_envelope::registry::KeyRegistry;
//! use sealkv_crypto_envelope::{CryptoProvider, DbId, EncryptionAlgorithm, KeySource, MasterKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = CryptoProvider::default();
//! let kek = KeySource::Key(MasterKey::from_bytes(&[9; 32])?);
//! let mut reg = KeyRegistry::create(DbId::random()?, &kek, EncryptionAlgorithm::Aes256Gcm.id(), &provider)?;
//! let old = reg.active_data_key().id;
//! let new = reg.rotate_data_key()?;
//! let bytes = reg.to_bytes()?;
//! let reopened = KeyRegistry::open(&bytes, &kek, &provider)?;
//! assert_eq!(reopened.active_data_key().id, new);
//! assert!(reopened.data_key(old).is_ok());
//! # Ok(())
//! # }
//! ```

mod error;
mod file;
pub mod format;

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::algorithm::{AlgorithmId, EncryptionAlgorithm};
use crate::ids::DbId;
use crate::kdf::{KekPurpose, kek_subkey};
use crate::keyring::Keyring;
use crate::keys::{DataKey, KEY_LEN, KeyId, KeySource, MasterKey, SecretKey};
use crate::provider::CryptoProvider;

pub use error::RegistryError;
pub use file::RegistryFile;
use format::{
    CHECK_LEN, ENTRY_LEN, HASH_LEN, HEADER_LEN, Header, KekKind, MAC_LEN, MAX_ENTRIES, Purpose,
    RawEntry, State, WRAP_NONCE_LEN, WRAPPED_LEN,
};

/// One key, unwrapped (or gone).
#[derive(Clone)]
struct Entry {
    id: KeyId,
    purpose: Purpose,
    algorithm: AlgorithmId,
    state: State,
    /// `None` once retired or destroyed.
    key: Option<SecretKey>,
}

/// A database's keys, unwrapped in memory. Clone it to prepare a change,
/// write the clone durably ([`RegistryFile::replace`]), then keep it.
#[derive(Clone)]
pub struct KeyRegistry {
    db_id: DbId,
    kek: MasterKey,
    kek_kind: KekKind,
    algorithm: AlgorithmId,
    generation: u64,
    active: KeyId,
    entries: Vec<Entry>,
}

impl fmt::Debug for KeyRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |p: Purpose| -> Vec<u32> {
            self.entries
                .iter()
                .filter(|e| e.purpose == p && e.state == State::Live)
                .map(|e| e.id.0)
                .collect()
        };
        f.debug_struct("KeyRegistry")
            .field("db_id", &self.db_id)
            .field("generation", &self.generation)
            .field("active", &self.active)
            .field("data_keys", &ids(Purpose::Data))
            .field("field_keys", &ids(Purpose::Field))
            .finish_non_exhaustive()
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &SecretKey, parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = match <HmacSha256 as KeyInit>::new_from_slice(key.expose()) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_hmac() -> HmacSha256 {
    debug_assert!(false, "HMAC accepts keys of every length");
    // A fixed key: the caller's MAC then simply never verifies.
    <HmacSha256 as KeyInit>::new(&Default::default())
}

/// What kind of KEK `source` gives, for a new registry.
fn new_kek_kind(source: &KeySource) -> Result<KekKind, RegistryError> {
    match source {
        KeySource::Passphrase { params, .. } => {
            params.check().map_err(RegistryError::KdfCost)?;
            let mut salt = [0u8; 32];
            crate::random::fill(&mut salt)?;
            Ok(KekKind::Passphrase {
                salt,
                params: *params,
            })
        }
        _ => Ok(KekKind::Raw),
    }
}

/// The KEK from `source` for a registry of `kind`.
fn resolve(source: &KeySource, kind: &KekKind) -> Result<MasterKey, RegistryError> {
    match (kind, source.is_passphrase()) {
        (KekKind::Raw, false) => Ok(source.resolve(None)?),
        (KekKind::Passphrase { salt, params }, true) => {
            params.check().map_err(RegistryError::KdfCost)?;
            Ok(source.resolve(Some((salt, *params)))?)
        }
        (KekKind::Raw, true) => Err(RegistryError::KekKindMismatch {
            expected: "raw key",
            given: "passphrase",
        }),
        (KekKind::Passphrase { .. }, false) => Err(RegistryError::KekKindMismatch {
            expected: "passphrase",
            given: "raw key",
        }),
    }
}

fn check_algorithm(provider: &CryptoProvider, id: AlgorithmId) -> Result<(), RegistryError> {
    provider
        .algorithm(id)
        .map(|_| ())
        .map_err(|_| RegistryError::UnknownAlgorithm(id))
}

impl KeyRegistry {
    /// A new registry for database `db_id`, with one fresh active data key
    /// of `algorithm`, under the KEK `source` gives (a passphrase gets a new
    /// random salt and the cost it names).
    pub fn create(
        db_id: DbId,
        source: &KeySource,
        algorithm: AlgorithmId,
        provider: &CryptoProvider,
    ) -> Result<Self, RegistryError> {
        check_algorithm(provider, algorithm)?;
        let kek_kind = new_kek_kind(source)?;
        let kek = resolve(source, &kek_kind)?;
        Ok(KeyRegistry {
            db_id,
            kek,
            kek_kind,
            algorithm,
            generation: 1,
            active: KeyId(1),
            entries: vec![Entry {
                id: KeyId(1),
                purpose: Purpose::Data,
                algorithm,
                state: State::Live,
                key: Some(SecretKey::random()?),
            }],
        })
    }

    /// Opens a registry from its bytes with the KEK `source` gives.
    pub fn open(
        bytes: &[u8],
        source: &KeySource,
        provider: &CryptoProvider,
    ) -> Result<Self, RegistryError> {
        let header = Header::decode(bytes)?;
        let count = header.count as usize;
        if count == 0 || count > MAX_ENTRIES {
            return Err(RegistryError::corrupt("impossible key count", 85));
        }
        let body_end = HEADER_LEN + CHECK_LEN + count * ENTRY_LEN;
        let expected_len = body_end + MAC_LEN + HASH_LEN;
        if bytes.len() != expected_len {
            return Err(RegistryError::corrupt(
                "file length does not match its key count (truncated or extended)",
                bytes.len().min(expected_len),
            ));
        }
        let (hashed, hash) = bytes.split_at(expected_len - HASH_LEN);
        if Sha256::digest(hashed).as_slice() != hash {
            return Err(RegistryError::corrupt(
                "checksum mismatch: the file is damaged",
                expected_len - HASH_LEN,
            ));
        }
        let kek = resolve(source, &header.kek)?;
        let check = hmac(
            &kek_subkey(&kek, &header.db_id, KekPurpose::KeyCheck),
            &[&bytes[..HEADER_LEN]],
        );
        if !bool::from(check.ct_eq(&bytes[HEADER_LEN..HEADER_LEN + CHECK_LEN])) {
            return Err(RegistryError::WrongKey);
        }
        let mac = hmac(
            &kek_subkey(&kek, &header.db_id, KekPurpose::RegistryMac),
            &[&bytes[..body_end]],
        );
        if !bool::from(mac.ct_eq(&bytes[body_end..body_end + MAC_LEN])) {
            return Err(RegistryError::corrupt(
                "the registry MAC does not verify",
                body_end,
            ));
        }
        // Wrapping is sealkv's own: always the built-in AES-256-GCM-SIV.
        let wrap = CryptoProvider::default().builtin(
            EncryptionAlgorithm::Aes256GcmSiv,
            &kek_subkey(&kek, &header.db_id, KekPurpose::Wrap),
        )?;
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let at = HEADER_LEN + CHECK_LEN + i * ENTRY_LEN;
            let raw = RawEntry::decode(&bytes[at..at + ENTRY_LEN], at)?;
            if entries.last().is_some_and(|e: &Entry| e.id >= raw.id) {
                return Err(RegistryError::corrupt("key ids out of order", at));
            }
            let key = match raw.state {
                State::Live => {
                    check_algorithm(provider, raw.algorithm)?;
                    let mut k = [0u8; KEY_LEN];
                    k.copy_from_slice(&raw.wrapped[..KEY_LEN]);
                    wrap.open_in_place_detached(
                        &raw.nonce,
                        &raw.aad(&header.db_id),
                        &mut k,
                        &raw.wrapped[KEY_LEN..],
                    )
                    .map_err(|_| RegistryError::corrupt("a wrapped key does not open", at))?;
                    Some(SecretKey::from_array(&mut k))
                }
                State::Retired | State::Destroyed => None,
            };
            entries.push(Entry {
                id: raw.id,
                purpose: raw.purpose,
                algorithm: raw.algorithm,
                state: raw.state,
                key,
            });
        }
        let reg = KeyRegistry {
            db_id: header.db_id,
            kek,
            kek_kind: header.kek,
            algorithm: header.algorithm,
            generation: header.generation,
            active: header.active,
            entries,
        };
        match reg.entry(reg.active) {
            Some(e) if e.purpose == Purpose::Data && e.key.is_some() => Ok(reg),
            _ => Err(RegistryError::corrupt(
                "the active data key is not a live data key",
                81,
            )),
        }
    }

    /// The registry as bytes, every key wrapped anew (fresh random nonces).
    pub fn to_bytes(&self) -> Result<Vec<u8>, RegistryError> {
        let count = u32::try_from(self.entries.len()).map_err(|_| RegistryError::Exhausted)?;
        let header = Header {
            db_id: self.db_id,
            kek: self.kek_kind,
            algorithm: self.algorithm,
            generation: self.generation,
            active: self.active,
            count,
        }
        .encode();
        let mut out = Vec::with_capacity(
            HEADER_LEN + CHECK_LEN + self.entries.len() * ENTRY_LEN + MAC_LEN + HASH_LEN,
        );
        out.extend_from_slice(&header);
        out.extend_from_slice(&hmac(
            &kek_subkey(&self.kek, &self.db_id, KekPurpose::KeyCheck),
            &[&header],
        ));
        let wrap_key = kek_subkey(&self.kek, &self.db_id, KekPurpose::Wrap);
        let wrap =
            CryptoProvider::default().builtin(EncryptionAlgorithm::Aes256GcmSiv, &wrap_key)?;
        for e in &self.entries {
            let mut raw = RawEntry {
                id: e.id,
                purpose: e.purpose,
                algorithm: e.algorithm,
                state: e.state,
                nonce: [0; WRAP_NONCE_LEN],
                wrapped: [0; WRAPPED_LEN],
            };
            if let Some(key) = &e.key {
                crate::random::fill(&mut raw.nonce)?;
                let aad = raw.aad(&self.db_id);
                let (body, tag) = raw.wrapped.split_at_mut(KEY_LEN);
                body.copy_from_slice(key.expose());
                wrap.seal_in_place_detached(&raw.nonce, &aad, body, tag)
                    .map_err(crate::CryptoError::from)?;
            }
            raw.encode(&mut out);
        }
        let mac = hmac(
            &kek_subkey(&self.kek, &self.db_id, KekPurpose::RegistryMac),
            &[&out],
        );
        out.extend_from_slice(&mac);
        let hash = Sha256::digest(&out);
        out.extend_from_slice(&hash);
        Ok(out)
    }

    fn entry(&self, id: KeyId) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    fn entry_mut(&mut self, id: KeyId) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.id == id)
    }

    fn next_id(&self) -> Result<KeyId, RegistryError> {
        if self.entries.len() >= MAX_ENTRIES {
            return Err(RegistryError::Exhausted);
        }
        let last = self.entries.last().map_or(0, |e| e.id.0);
        last.checked_add(1)
            .map(KeyId)
            .ok_or(RegistryError::Exhausted)
    }

    fn add(&mut self, purpose: Purpose, algorithm: AlgorithmId) -> Result<KeyId, RegistryError> {
        let id = self.next_id()?;
        self.entries.push(Entry {
            id,
            purpose,
            algorithm,
            state: State::Live,
            key: Some(SecretKey::random()?),
        });
        self.generation += 1;
        Ok(id)
    }

    /// The key `id` of `purpose`, if it is live.
    fn live(&self, id: KeyId, purpose: Purpose) -> Result<DataKey, RegistryError> {
        let e = self.entry(id).ok_or(RegistryError::UnknownKey(id))?;
        if e.purpose != purpose {
            return Err(RegistryError::WrongPurpose(id, purpose.name()));
        }
        match (&e.key, e.state) {
            (Some(k), State::Live) => Ok(DataKey::new(e.id, e.algorithm, k.clone())),
            (_, State::Destroyed) => Err(RegistryError::KeyDestroyed(id)),
            _ => Err(RegistryError::KeyRetired(id)),
        }
    }

    /// The database this registry belongs to.
    pub fn db_id(&self) -> &DbId {
        &self.db_id
    }

    /// Increases on every change; the page file records it, so a registry
    /// put back from an older copy is detected.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The algorithm new data keys get.
    pub fn algorithm(&self) -> AlgorithmId {
        self.algorithm
    }

    /// Whether the KEK comes from a passphrase.
    pub fn is_passphrase(&self) -> bool {
        matches!(self.kek_kind, KekKind::Passphrase { .. })
    }

    /// The data key new writes are sealed under.
    pub fn active_data_key(&self) -> DataKey {
        // `open` and every change keep the active key live.
        self.live(self.active, Purpose::Data).unwrap_or_else(|_| {
            debug_assert!(false, "the active data key is always live");
            DataKey::new(
                self.active,
                self.algorithm,
                SecretKey::from_array(&mut [0; KEY_LEN]),
            )
        })
    }

    /// Data key `id`, if live.
    pub fn data_key(&self, id: KeyId) -> Result<DataKey, RegistryError> {
        self.live(id, Purpose::Data)
    }

    /// Field key `id`, if live.
    pub fn field_key(&self, id: KeyId) -> Result<DataKey, RegistryError> {
        self.live(id, Purpose::Field)
    }

    /// Ids of the live data keys.
    pub fn data_key_ids(&self) -> Vec<KeyId> {
        self.ids(Purpose::Data)
    }

    /// Ids of the live field keys.
    pub fn field_key_ids(&self) -> Vec<KeyId> {
        self.ids(Purpose::Field)
    }

    fn ids(&self, purpose: Purpose) -> Vec<KeyId> {
        self.entries
            .iter()
            .filter(|e| e.purpose == purpose && e.state == State::Live)
            .map(|e| e.id)
            .collect()
    }

    /// A new random data key of the registry's algorithm becomes the active
    /// one; the old ones stay readable.
    pub fn rotate_data_key(&mut self) -> Result<KeyId, RegistryError> {
        let id = self.add(Purpose::Data, self.algorithm)?;
        self.active = id;
        Ok(id)
    }

    /// A new random field key of `algorithm` (checked against `provider`).
    pub fn add_field_key(
        &mut self,
        algorithm: AlgorithmId,
        provider: &CryptoProvider,
    ) -> Result<KeyId, RegistryError> {
        check_algorithm(provider, algorithm)?;
        self.add(Purpose::Field, algorithm)
    }

    /// Removes data key `id` (after a re-encryption, nothing needs it).
    pub fn retire_data_key(&mut self, id: KeyId) -> Result<(), RegistryError> {
        if id == self.active {
            return Err(RegistryError::ActiveKey(id));
        }
        self.live(id, Purpose::Data)?;
        if let Some(e) = self.entry_mut(id) {
            e.state = State::Retired;
            e.key = None;
        }
        self.generation += 1;
        Ok(())
    }

    /// Destroys field key `id`: once the registry is written, its bytes are
    /// gone from the file and every value sealed under it is unreadable.
    pub fn destroy_field_key(&mut self, id: KeyId) -> Result<(), RegistryError> {
        self.live(id, Purpose::Field)?;
        if let Some(e) = self.entry_mut(id) {
            e.state = State::Destroyed;
            e.key = None;
        }
        self.generation += 1;
        Ok(())
    }

    /// Re-wraps every key under the KEK `source` gives (a passphrase gets a
    /// new salt). No data key or field key changes.
    pub fn rekey(&mut self, source: &KeySource) -> Result<(), RegistryError> {
        let kind = new_kek_kind(source)?;
        self.kek = resolve(source, &kind)?;
        self.kek_kind = kind;
        self.generation += 1;
        Ok(())
    }

    /// Puts every live data key into `keyring` and marks the active one.
    pub fn fill_keyring(&self, keyring: &Keyring) -> Result<(), RegistryError> {
        for id in self.data_key_ids() {
            keyring.insert(self.data_key(id)?);
        }
        keyring.set_active(self.active)?;
        Ok(())
    }
}
