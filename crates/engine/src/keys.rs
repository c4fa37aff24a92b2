//! The database's keys: the master key, the key registry file, and the
//! keyring the WAL and the page file seal with.
//!
//! Every change to the registry (a rotation, a new or destroyed field key,
//! a rekey) is made durable — written whole to a temporary file, fsynced,
//! renamed over `KEYS`, directory fsynced — before anything depends on it:
//! no unit is sealed under a new data key before the registry that holds it
//! is on disk. The caller then records the new generation in a meta page
//! (`keycommit.rs`) before the operation returns.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use sealkv_crypto_envelope::blind::BlindIndexKey;
use sealkv_crypto_envelope::field::{FieldOpener, FieldSession};
use sealkv_crypto_envelope::registry::{AnchorKey, KeyPurpose, KeyRegistry, RegistryFile};
use sealkv_crypto_envelope::{AlgorithmId, DataKey, DbId, KeyId, KeySource, Keyring};
use zeroize::Zeroize;

use crate::blindkeys::BlindKeys;
use crate::config::Config;
use crate::error::Error;
use crate::fieldsessions::FieldSessions;
use crate::stats::EncryptionStatus;

/// The open key registry and what was derived from it.
pub(crate) struct KeyState {
    path: PathBuf,
    dir: PathBuf,
    file: RegistryFile,
    registry: Mutex<KeyRegistry>,
    /// The registry's fingerprint, computed when it changes (not at every
    /// flush: encoding re-wraps every key). Written under the registry lock.
    fingerprint: Mutex<[u8; 32]>,
    source: Mutex<KeySource>,
    keyring: Arc<Keyring>,
    /// Blind-index keys derived from the field keys.
    pub(crate) blind_keys: BlindKeys,
    /// Field sessions sealing randomized values, and openers built.
    field_sessions: FieldSessions,
}

impl KeyState {
    fn reg(&self) -> MutexGuard<'_, KeyRegistry> {
        self.registry.lock()
    }

    fn map(&self, e: sealkv_crypto_envelope::registry::RegistryError) -> Error {
        crate::errmap::registry(&self.dir, e)
    }

    /// Creates the registry of a new database, with one active data key.
    pub(crate) fn create(config: &Config, path: &Path, db_id: DbId) -> Result<Self, Error> {
        let dir = config.path.clone();
        let source = config.key.clone().ok_or(Error::MissingKey)?;
        let map = |e| crate::errmap::registry(&dir, e);
        let registry = KeyRegistry::create_with_provider(
            db_id,
            &source,
            config.algorithm_for_new(),
            config.provider.clone(),
        )
        .map_err(map)?;
        let file = RegistryFile::new(config.vfs.clone(), &config.path);
        debug_assert_eq!(file.path(), path);
        file.create(&registry).map_err(map)?;
        tracing::debug!(
            path = %path.display(),
            algorithm = %algorithm_of(&registry),
            active_key = %registry.active_data_key(),
            generation = registry.generation(),
            "key registry created"
        );
        Self::assemble(config, path, file, registry, source)
    }

    /// Opens the registry of an existing database with the configured key.
    pub(crate) fn open(config: &Config, path: &Path) -> Result<Self, Error> {
        let dir = config.path.clone();
        let source = config.key.clone().ok_or(Error::MissingKey)?;
        let map = |e| crate::errmap::registry(&dir, e);
        let file = RegistryFile::new(config.vfs.clone(), &config.path);
        debug_assert_eq!(file.path(), path);
        let registry = match &config.registry_copy_of {
            // A copy of an open database's registry (a backup being
            // finished): opened under that database's master key.
            Some(live) => live
                .open_copy(&file.read_bytes().map_err(map)?)
                .map_err(map)?,
            None => file
                .load_with_provider(&source, config.provider.clone())
                .map_err(map)?,
        };
        tracing::debug!(
            path = %path.display(),
            algorithm = %algorithm_of(&registry),
            active_key = %registry.active_data_key(),
            generation = registry.generation(),
            keys = registry.keys().len(),
            "key registry opened"
        );
        Self::assemble(config, path, file, registry, source)
    }

    fn assemble(
        config: &Config,
        path: &Path,
        file: RegistryFile,
        registry: KeyRegistry,
        source: KeySource,
    ) -> Result<Self, Error> {
        let keyring = Arc::new(Keyring::new(*registry.db_id(), config.provider.clone()));
        registry
            .fill_keyring(&keyring)
            .map_err(|e| crate::errmap::registry(&config.path, e))?;
        Ok(KeyState {
            path: path.to_path_buf(),
            dir: config.path.clone(),
            file,
            fingerprint: Mutex::new(fingerprint_of(&registry)),
            registry: Mutex::new(registry),
            source: Mutex::new(source),
            keyring,
            blind_keys: BlindKeys::default(),
            field_sessions: FieldSessions::default(),
        })
    }

    /// The keyring the WAL and the page file use.
    pub(crate) fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// The registry's generation.
    pub(crate) fn generation(&self) -> u64 {
        self.reg().generation()
    }

    /// The registry's fingerprint: the SHA-256 trailer of its encoding
    /// (which is deterministic), recorded by each flush so a registry of
    /// another copy of this database at the same generation is detected.
    pub(crate) fn fingerprint(&self) -> [u8; 32] {
        *self.fingerprint.lock()
    }

    /// The algorithm of the active data key.
    pub(crate) fn algorithm(&self) -> AlgorithmId {
        algorithm_of(&self.reg())
    }

    /// Writes `registry` durably, then installs it.
    fn commit(
        &self,
        reg: &mut MutexGuard<'_, KeyRegistry>,
        next: KeyRegistry,
    ) -> Result<(), Error> {
        self.file.store(&next).map_err(|e| self.map(e))?;
        tracing::trace!(
            path = %self.path.display(),
            generation = next.generation(),
            "key registry written"
        );
        *self.fingerprint.lock() = fingerprint_of(&next);
        **reg = next;
        Ok(())
    }

    /// A new active data key: durable in the registry before the keyring
    /// hands it to any writer session, so nothing is sealed under a key the
    /// disk lacks.
    pub(crate) fn rotate(&self) -> Result<KeyId, Error> {
        let mut reg = self.reg();
        let mut next = reg.clone();
        let id = next.rotate_data_key().map_err(|e| self.map(e))?;
        let dek = next.data_key(id).map_err(|e| self.map(e))?;
        self.commit(&mut reg, next)?;
        self.keyring.insert(dek);
        self.keyring.set_active(id)?;
        tracing::debug!(new_key = %id, generation = reg.generation(), "data key rotated");
        Ok(id)
    }

    /// Re-wraps every key under `new`. `before_store` gets the old and the
    /// new master key's anchor keys and the registry's current generation
    /// and fingerprint once the new registry is ready and before it is written (the
    /// freshness anchor must accept both master keys while either registry
    /// may be the one on disk). It runs under the registry lock: it must
    /// not call back into this `KeyState`.
    pub(crate) fn rekey(
        &self,
        new: KeySource,
        before_store: impl FnOnce([AnchorKey; 2], u64, [u8; 32]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut reg = self.reg();
        let mut next = reg.clone();
        next.rekey(&new).map_err(|e| self.map(e))?;
        before_store(
            [reg.anchor_key(), next.anchor_key()],
            reg.generation(),
            self.fingerprint(),
        )?;
        self.commit(&mut reg, next)?;
        *self.source.lock() = new;
        tracing::debug!(
            generation = reg.generation(),
            "every key re-wrapped under a new master key (rekey)"
        );
        Ok(())
    }

    /// A new field key.
    pub(crate) fn add_field_key(&self, algorithm: AlgorithmId) -> Result<KeyId, Error> {
        let mut reg = self.reg();
        let mut next = reg.clone();
        let id = next.add_field_key(algorithm).map_err(|e| self.map(e))?;
        self.commit(&mut reg, next)?;
        tracing::debug!(field_key = %id, %algorithm, "field key created");
        Ok(id)
    }

    /// Field key `id`.
    pub(crate) fn field_key(&self, id: KeyId) -> Result<DataKey, Error> {
        self.reg().field_key(id).map_err(|e| self.map(e))
    }

    /// The session sealing randomized values under field key `id`. The
    /// registry is asked first and held meanwhile, so a destroyed key
    /// answers `KeyDestroyed` and no session of it is started after its
    /// destruction dropped the others.
    pub(crate) fn field_session(&self, id: KeyId) -> Result<Arc<FieldSession>, Error> {
        let reg = self.reg();
        reg.check_field_key(id).map_err(|e| self.map(e))?;
        if let Some(session) = self.field_sessions.current(id) {
            return Ok(session);
        }
        let key = reg.field_key(id).map_err(|e| self.map(e))?;
        Ok(self.field_sessions.session(reg.provider(), &key)?)
    }

    /// Opens `sealed`, a format-2 value of field key `id`'s session
    /// `salt`, for `context`, asking the registry first (a destroyed key
    /// answers `KeyDestroyed` whatever is cached). A session met for the
    /// first time gets its opener built outside the registry lock (the
    /// salt comes from the header, unauthenticated: a forged one must not
    /// hold up every other field seal and open), and kept only once the
    /// value has opened and the key is still there.
    pub(crate) fn open_in_session(
        &self,
        id: KeyId,
        salt: &[u8; 32],
        context: &[u8],
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.open_in_session_then(id, salt, context, sealed, out, || {})
    }

    /// [`KeyState::open_in_session`], running `opened` once a new
    /// session's opener has opened the value and before the registry is
    /// asked again (where a test destroys the key).
    fn open_in_session_then(
        &self,
        id: KeyId,
        salt: &[u8; 32],
        context: &[u8],
        sealed: &[u8],
        out: &mut Vec<u8>,
        opened: impl FnOnce(),
    ) -> Result<(), Error> {
        let (key, provider) = {
            let reg = self.reg();
            // Asked without copying the key out: a cached opener needs
            // only to know that the key still lives.
            reg.check_field_key(id).map_err(|e| self.map(e))?;
            if let Some(opener) = self.field_sessions.cached_opener(id, salt) {
                drop(reg);
                return Ok(opener.open_into(context, sealed, out)?);
            }
            let key = reg.field_key(id).map_err(|e| self.map(e))?;
            (key, reg.provider().clone())
        };
        let opener = FieldOpener::new(&provider, &key, salt)?;
        opener.open_into(context, sealed, out)?;
        opened();
        let reg = self.reg();
        // Destroyed meanwhile: it answers so, and nothing of it is kept,
        // the value it opened included.
        if let Err(e) = reg.field_key(id) {
            out.zeroize();
            return Err(self.map(e));
        }
        self.field_sessions.keep_opener(Arc::new(opener));
        drop(reg);
        Ok(())
    }

    /// The blind-index key of `scope` under field key `id`: the one kept,
    /// or one `derive`d from the field key. Asked of the registry every
    /// time (a destroyed or unknown key answers as such, whatever was
    /// derived from it before). A key is derived outside the registry lock
    /// (a derivation must not hold up every other field key use) and kept
    /// only if the field key is still there once it is taken again, so no
    /// key derived from a destroyed field key stays in memory.
    pub(crate) fn blind_index_key(
        &self,
        id: KeyId,
        scope: &[&[u8]],
        derive: impl FnOnce(&DataKey) -> Result<BlindIndexKey, Error>,
    ) -> Result<BlindIndexKey, Error> {
        let key = {
            let reg = self.reg();
            reg.check_field_key(id).map_err(|e| self.map(e))?;
            if let Some(kept) = self.blind_keys.get(id, scope) {
                return Ok(kept);
            }
            reg.field_key(id).map_err(|e| self.map(e))?
        };
        let derived = derive(&key)?;
        drop(key);
        let reg = self.reg();
        // Destroyed meanwhile: it answers so, and nothing of it is kept.
        reg.check_field_key(id).map_err(|e| self.map(e))?;
        self.blind_keys.keep(id, scope, derived.clone());
        drop(reg);
        Ok(derived)
    }

    /// How many field-session openers are cached (for tests).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn field_openers_cached(&self) -> usize {
        self.field_sessions.openers_len()
    }

    /// Destroys field key `id` for good.
    pub(crate) fn destroy_field_key(&self, id: KeyId) -> Result<(), Error> {
        let mut reg = self.reg();
        let mut next = reg.clone();
        next.destroy_field_key(id).map_err(|e| self.map(e))?;
        self.commit(&mut reg, next)?;
        self.blind_keys.forget(id);
        self.field_sessions.forget(id);
        tracing::debug!(field_key = %id, "field key destroyed");
        Ok(())
    }

    /// Advances the generation without another change: marks the
    /// database's creation complete (a registry at generation 1 may belong
    /// to a creation that never finished).
    pub(crate) fn advance_generation(&self) -> Result<u64, Error> {
        let mut reg = self.reg();
        let mut next = reg.clone();
        let generation = next.advance_generation().map_err(|e| self.map(e))?;
        self.commit(&mut reg, next)?;
        Ok(generation)
    }

    /// The key that authenticates the freshness anchor (it changes with a
    /// rekey).
    pub(crate) fn anchor_key(&self) -> AnchorKey {
        self.reg().anchor_key()
    }

    /// Retires data key `id` durably: its material leaves the registry and
    /// the keyring. The caller has checked that nothing on disk uses it.
    pub(crate) fn retire_data_key(&self, id: KeyId) -> Result<(), Error> {
        let mut reg = self.reg();
        let mut next = reg.clone();
        next.retire_data_key(id).map_err(|e| self.map(e))?;
        self.commit(&mut reg, next)?;
        self.keyring.remove(id);
        tracing::debug!(retired_key = %id, "data key retired: its material left the registry");
        Ok(())
    }

    /// The active data key.
    pub(crate) fn active_data_key(&self) -> KeyId {
        self.reg().active_data_key()
    }

    /// Every data key the registry holds material for (active or
    /// readable), by id.
    pub(crate) fn data_keys_with_material(&self) -> Vec<KeyId> {
        self.reg()
            .keys()
            .iter()
            .filter(|k| k.purpose == KeyPurpose::Data && k.state.has_material())
            .map(|k| k.id)
            .collect()
    }

    /// The encryption status for `stats()`.
    pub(crate) fn status(&self, sealed: bool) -> EncryptionStatus {
        let reg = self.reg();
        let keys = reg.keys();
        let ids = |p: KeyPurpose| -> Vec<KeyId> {
            keys.iter()
                .filter(|k| k.purpose == p && k.state.has_material())
                .map(|k| k.id)
                .collect()
        };
        EncryptionStatus {
            encrypt_at_rest: sealed,
            algorithm: sealed.then(|| algorithm_of(&reg)),
            algorithm_info: sealed
                .then(|| reg.provider().algorithm(algorithm_of(&reg)).ok())
                .flatten(),
            active_key: sealed.then(|| reg.active_data_key()),
            data_keys: if sealed {
                ids(KeyPurpose::Data)
            } else {
                Vec::new()
            },
            field_keys: ids(KeyPurpose::Field),
            registry_generation: reg.generation(),
        }
    }

    /// Reads and opens the registry file again (for `verify`), under the
    /// master key already in use: the key source is not asked again (no
    /// passphrase stretched, no HSM called).
    pub(crate) fn reload(&self) -> Result<(), Error> {
        let bytes = self.file.read_bytes().map_err(|e| self.map(e))?;
        self.reg()
            .open_copy(&bytes)
            .map(|_| ())
            .map_err(|e| self.map(e))
    }

    /// The registry file's bytes as they are on disk, with the key source
    /// that opens them and the open registry (which opens the copy without
    /// asking the key source: a backup works while an HSM is out of
    /// reach), read together under the registry lock (no rotation, rekey
    /// or retirement can land between them): what a backup copies.
    pub(crate) fn backup_copy(&self) -> Result<(Vec<u8>, KeySource, KeyRegistry), Error> {
        let reg = self.reg();
        let bytes = self.file.read_bytes().map_err(|e| self.map(e))?;
        let source = self.source.lock().clone();
        Ok((bytes, source, reg.clone()))
    }

    /// The registry file's path.
    #[allow(dead_code)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// The algorithm of the registry's active data key.
fn algorithm_of(reg: &KeyRegistry) -> AlgorithmId {
    reg.key(reg.active_data_key())
        .map_or(reg.default_algorithm(), |k| k.algorithm)
}

/// The SHA-256 trailer of the registry's (deterministic) encoding.
fn fingerprint_of(reg: &KeyRegistry) -> [u8; 32] {
    reg.fingerprint()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealkv_crypto_envelope::{CryptoProvider, EncryptionAlgorithm};

    /// A keyed configuration for `dir` and the path of its key registry.
    fn config_and_registry(dir: &Path) -> (Config, PathBuf) {
        let key = crate::crypto::MasterKey::from_bytes(&[7; 32]).unwrap();
        let config = Config::new(dir).encryption_key(key);
        let path = RegistryFile::new(config.vfs.clone(), &config.path)
            .path()
            .to_path_buf();
        (config, path)
    }

    fn keys(dir: &Path) -> KeyState {
        let (config, path) = config_and_registry(dir);
        KeyState::create(&config, &path, DbId([1; 16])).unwrap()
    }

    /// A key state in a fresh directory (kept alive with it), holding one
    /// AES-256-GCM field key.
    fn keys_with_a_field_key() -> (tempfile::TempDir, KeyState, KeyId) {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys(dir.path());
        let id = keys
            .add_field_key(EncryptionAlgorithm::Aes256Gcm.id())
            .unwrap();
        (dir, keys, id)
    }

    fn derive(fk: &DataKey) -> Result<BlindIndexKey, Error> {
        let p = CryptoProvider::default();
        Ok(BlindIndexKey::derive(&p, fk, &DbId([1; 16]), &[b"s"])?)
    }

    #[test]
    fn a_field_key_destroyed_while_its_blind_key_derives_leaves_nothing_kept() {
        let (_dir, keys, id) = keys_with_a_field_key();
        let mut destroyed = false;
        let answer = keys.blind_index_key(id, &[b"s"], |fk| {
            let derived = derive(fk);
            keys.destroy_field_key(id).unwrap();
            destroyed = true;
            derived
        });
        assert!(destroyed, "the key was destroyed mid-derivation");
        assert!(matches!(answer, Err(Error::KeyDestroyed(k)) if k == id));
        assert_eq!(keys.blind_keys.len(), 0);

        // A live key's derivation is kept, and the next ask served from it.
        let live = keys
            .add_field_key(EncryptionAlgorithm::Aes256Gcm.id())
            .unwrap();
        let first = keys.blind_index_key(live, &[b"s"], derive).unwrap();
        assert_eq!(keys.blind_keys.len(), 1);
        let again = keys
            .blind_index_key(live, &[b"s"], |_| panic!("derived twice"))
            .unwrap();
        assert_eq!(first.tag(b"v"), again.tag(b"v"));
    }

    #[test]
    fn a_field_key_destroyed_while_a_new_session_opens_leaves_nothing_opened_or_kept() {
        let (dir, keys, id) = keys_with_a_field_key();
        let sealed = keys
            .field_session(id)
            .unwrap()
            .seal(b"ctx", b"value")
            .unwrap();
        let header = sealkv_crypto_envelope::field::header(&sealed).unwrap();
        let sealkv_crypto_envelope::field::FieldFormat::V2 { salt, .. } = header.format else {
            panic!("a session seals format 2");
        };
        // The sealing session's opener is not the reading one's: a fresh
        // state builds its own.
        let (config, path) = config_and_registry(dir.path());
        let reader = KeyState::open(&config, &path).unwrap();
        let mut out = b"what the buffer held".to_vec();
        let mut destroyed = false;
        let answer = reader.open_in_session_then(id, &salt, b"ctx", &sealed, &mut out, || {
            reader.destroy_field_key(id).unwrap();
            destroyed = true;
        });
        assert!(
            destroyed,
            "the key was destroyed between the open and the check"
        );
        assert!(matches!(answer, Err(Error::KeyDestroyed(k)) if k == id));
        assert!(out.is_empty(), "the opened value is wiped");
        assert_eq!(reader.field_sessions.openers_len(), 0);
    }
}
