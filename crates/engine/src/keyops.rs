//! Key management and field-level encryption on an open database.

use sealkv_crypto_envelope::field::{self, FieldMode};
use sealkv_crypto_envelope::{EncryptionAlgorithm, KeyId, KeySource};

use crate::db::Db;
use crate::error::Error;
use crate::keys::KeyState;

impl Db {
    fn keys(&self) -> Result<&KeyState, Error> {
        self.inner.keys.as_ref().ok_or(Error::MissingKey)
    }

    /// Re-wraps every data key and field key under `new_key`, durably (the
    /// page file records the registry's new generation before this
    /// returns, so the older registry put back is `Rollback`). No
    /// data is rewritten, so it takes milliseconds; afterwards only the new
    /// key opens the database.
    ///
    /// What it does not do: someone holding the old key *and* an old copy
    /// of the key registry (every backup has one) can still unwrap the data
    /// keys, which are unchanged. After a key compromise, rotate the data key
    /// and re-encrypt instead.
    pub fn rekey(&self, new_key: KeySource) -> Result<(), Error> {
        self.check_writable()?;
        self.keys()?;
        let inner = &self.inner;
        inner.key_operation(|keys, _| {
            keys.rekey(new_key, |anchor_keys, generation, hash| {
                inner.anchor_for_rekey(anchor_keys, generation, hash)
            })
        })
    }

    /// Starts sealing under a new random data key: the key registry holding
    /// it is made durable first, then the WAL and the page file start new
    /// writer sessions under it. Everything already written stays readable
    /// under the data key it records; [`Db::reencrypt`] rewrites it under
    /// the newest key and retires the old ones.
    pub fn rotate_data_key(&self) -> Result<KeyId, Error> {
        self.check_writable()?;
        if !self.inner.sealed {
            return Err(Error::NotEncrypted {
                operation: "rotate_data_key",
            });
        }
        let keys = self.keys()?;
        let inner = &self.inner;
        // No flush and no write may run while the sessions change.
        let mut flush = inner.lock_flush()?;
        let _gate = inner.gate.write();
        let id = keys.rotate()?;
        // A re-encryption under way targeted the old key: the next one
        // starts over (the commit below records it; a crash before it
        // resumes the pass, which then ends with a second pass, see
        // `reencrypt`).
        flush.meta.reencrypt_cursor = None;
        // Recorded in a meta page sealed under the old key, before anything
        // is sealed under the new one (keycommit.rs).
        inner.record_registry(&mut flush)?;
        let switched = inner
            .wal
            .as_ref()
            .map_or(Ok(0), sealkv_core_wal::Wal::new_session)
            .map_err(|e| inner.wal_error(e))
            .and_then(|_| inner.store.new_session().map_err(|e| inner.store_error(e)));
        if let Err(e) = switched {
            let cause = inner.poison(crate::poison::PoisonCause::engine(e));
            return Err(Error::Poisoned {
                cause,
                outcome_unknown: false,
            });
        }
        Ok(id)
    }

    /// A new random field key for randomized field encryption, sealed with
    /// the database's algorithm (AES-256-GCM for a plaintext database and
    /// for one sealed with a misuse-resistant algorithm such as
    /// AES-256-GCM-SIV: a misuse-resistant key is what marks a key for
    /// deterministic use), stored wrapped in the key registry. Needs a key, even with
    /// `encrypt_at_rest` off.
    pub fn create_field_key(&self) -> Result<KeyId, Error> {
        let keys = self.keys()?;
        // Never a misuse-resistant algorithm: that is what marks a key for
        // deterministic use, and a randomized key must not pass for one.
        let misuse_resistant = self
            .inner
            .config
            .provider
            .algorithm(keys.algorithm())
            .is_ok_and(|a| a.misuse_resistant);
        let alg = if self.inner.sealed && !misuse_resistant {
            keys.algorithm()
        } else {
            EncryptionAlgorithm::Aes256Gcm.id()
        };
        self.check_writable()?;
        self.inner.key_operation(|keys, _| keys.add_field_key(alg))
    }

    /// A new random field key for deterministic field encryption
    /// (AES-256-GCM-SIV: equal values give equal ciphertexts, which lets an
    /// application look values up by equality, and leaks which records share
    /// a value).
    pub fn create_deterministic_field_key(&self) -> Result<KeyId, Error> {
        self.check_writable()?;
        self.keys()?;
        self.inner
            .key_operation(|keys, _| keys.add_field_key(EncryptionAlgorithm::Aes256GcmSiv.id()))
    }

    /// Destroys field key `id`, durably: every value sealed under it is
    /// unreadable from now on, in this database and after reopening
    /// (crypto-shredding). Older backups, exports and copies of the key
    /// registry still hold the key.
    pub fn destroy_field_key(&self, id: KeyId) -> Result<(), Error> {
        self.check_writable()?;
        self.keys()?;
        self.inner
            .key_operation(|keys, _| keys.destroy_field_key(id))
    }

    /// Stores `value` under `key`, sealed on its own with field key
    /// `field_key` (randomized, bound to `key`: field format 2, sealed by
    /// this handle's field session of that key, as [`Db::seal_field`]). The
    /// value stays ciphertext in the memtable, the WAL and the pages, even
    /// with `encrypt_at_rest` off; read it with [`Db::get_sealed`].
    pub fn put_sealed(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        field_key: KeyId,
    ) -> Result<(), Error> {
        let key = key.as_ref();
        let sealed = self.seal_randomized(field_key, key, value.as_ref())?;
        self.put(key, sealed)
    }

    /// Stores `value` under `key` sealed deterministically for field
    /// `field_id` (the field key must be a deterministic one).
    pub fn put_deterministic(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        field_key: KeyId,
        field_id: &[u8],
    ) -> Result<(), Error> {
        let fk = self.keys()?.field_key(field_key)?;
        let sealed =
            field::seal_deterministic(&self.inner.config.provider, &fk, field_id, value.as_ref())?;
        self.put(key, sealed)
    }

    /// The deterministic ciphertext `value` would have for `field_id`: look
    /// it up by equality among stored values.
    pub fn deterministic_token(
        &self,
        value: impl AsRef<[u8]>,
        field_key: KeyId,
        field_id: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let fk = self.keys()?.field_key(field_key)?;
        Ok(field::seal_deterministic(
            &self.inner.config.provider,
            &fk,
            field_id,
            value.as_ref(),
        )?)
    }

    /// Reads and opens a field-sealed value. `field_id` is needed for
    /// deterministic values (and ignored for randomized ones, which are
    /// bound to their record key). A destroyed field key answers
    /// [`Error::KeyDestroyed`].
    pub fn get_sealed(
        &self,
        key: impl AsRef<[u8]>,
        field_id: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, Error> {
        let key = key.as_ref();
        let Some(sealed) = self.get(key)? else {
            return Ok(None);
        };
        let header = field::header(&sealed)?;
        let context = match header.mode {
            FieldMode::Randomized => key,
            FieldMode::Deterministic => match field_id {
                Some(id) => id,
                None => {
                    // A destroyed key says so before the missing field id.
                    self.keys()?.field_key(header.key_id)?;
                    return Err(Error::MissingFieldId);
                }
            },
        };
        Ok(Some(self.open_sealed(context, &sealed)?))
    }
}
