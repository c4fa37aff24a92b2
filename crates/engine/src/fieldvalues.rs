//! Field-level encryption for values the caller stores itself (in a
//! keyspace, a batch or a transaction), and blind-index keys.
//!
//! [`Db::put_sealed`] seals and stores in one call, in the default
//! keyspace. Layers built on the engine (typed collections) seal values
//! that go into their own records and transactions: they seal with
//! [`Db::seal_field`], open with [`Db::open_field`], and look sealed values
//! up by equality through a [`BlindIndexKey`] from
//! [`Db::blind_index_key`]. The field key never leaves the engine.
//!
//! Randomized values are sealed in field format 2 by the handle's field
//! session of their key and opened through cached openers
//! ([`crate::fieldsessions`]): a seal or an open is one AEAD call.

use sealkv_crypto_envelope::KeyId;
use sealkv_crypto_envelope::blind::BlindIndexKey;
use sealkv_crypto_envelope::field::{self, FieldError, FieldFormat};
use zeroize::Zeroizing;

use crate::db::Db;
use crate::error::Error;
use crate::keys::KeyState;

impl Db {
    fn field_keys(&self) -> Result<&KeyState, Error> {
        self.inner.keys.as_ref().ok_or(Error::MissingKey)
    }

    /// Seals `value` under field key `field_key` in this handle's field
    /// session of that key (field format 2: a salt drawn once per session,
    /// a counter nonce per value), bound to `context` (the place the value is stored, such as its
    /// record key: it opens only with the same context), as
    /// [`Db::put_sealed`] does, without storing it. A destroyed key
    /// answers [`Error::KeyDestroyed`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let db = sealkv::Config::new(dir.path())
    ///     .encrypt_at_rest(false)
    ///     .encryption_key(sealkv::crypto::MasterKey::from_bytes(&[7; 32])?)
    ///     .open()?;
    /// let tenant = db.create_field_key()?;
    /// let sealed = db.seal_field(tenant, b"users/42/ssn", b"078-05-1120")?;
    /// let notes = db.keyspace("notes")?;
    /// notes.put(b"42", &sealed)?; // anywhere: a keyspace, a batch, a transaction
    /// assert_eq!(db.open_field(b"users/42/ssn", &notes.get(b"42")?.unwrap())?, b"078-05-1120");
    /// assert!(db.open_field(b"users/43/ssn", &sealed).is_err()); // bound to its context
    /// # Ok(())
    /// # }
    /// ```
    pub fn seal_field(
        &self,
        field_key: KeyId,
        context: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.seal_randomized(field_key, context, value)
    }

    /// Seals `value` for `context` in the current session of `field_key`,
    /// moving to a new session (a new salt) when that one has sealed its
    /// 2^32 values or was started by another process (before a fork).
    /// Every randomized value the engine writes goes through
    /// here.
    pub(crate) fn seal_randomized(
        &self,
        field_key: KeyId,
        context: &[u8],
        value: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let keys = self.field_keys()?;
        // A session exhausted between being handed out and sealing, or
        // found to be started by another process (this one is a forked
        // child), is retired and replaced on the next ask; two rounds of
        // 2^32 seals by other threads in between cannot happen, three
        // tries are plenty.
        for _ in 0..3 {
            match keys.field_session(field_key)?.seal(context, value) {
                Err(FieldError::SessionExhausted | FieldError::SessionForked) => continue,
                sealed => return Ok(sealed?),
            }
        }
        Err(FieldError::SessionExhausted.into())
    }

    /// Moves the counter of this handle's current session of `field_key`
    /// (started if there is none) forward to `counter`, never back: lets
    /// the engine's tests reach a session's end without 2^32 seals.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn skip_field_session_to(&self, field_key: KeyId, counter: u64) -> Result<(), Error> {
        self.field_keys()?
            .field_session(field_key)?
            .skip_to(counter);
        Ok(())
    }

    /// Makes this handle's current session of `field_key` (started if
    /// there is none) look started by another process, as it looks to a
    /// child forked after it started: lets the engine's tests reach the
    /// fork check without forking.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn pretend_field_session_forked(&self, field_key: KeyId) -> Result<(), Error> {
        self.field_keys()?
            .field_session(field_key)?
            .pretend_started_by(std::process::id().wrapping_add(1));
        Ok(())
    }

    /// How many field-session openers this handle keeps: lets the
    /// engine's tests see what a read put in the cache.
    #[cfg(feature = "fuzzing")]
    #[doc(hidden)]
    pub fn field_openers_cached(&self) -> Result<usize, Error> {
        Ok(self.field_keys()?.field_openers_cached())
    }

    /// Opens a field-sealed value for `context` with the key its header
    /// names: format 2 through the cached opener of its session, format 1
    /// (and deterministic values) by deriving their subkey. The registry
    /// is asked for the key first either way.
    pub(crate) fn open_sealed(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.open_sealed_into(context, sealed, &mut out)?;
        Ok(out)
    }

    /// [`Db::open_sealed`] into `out`, which it replaces; on an error `out`
    /// is left empty.
    fn open_sealed_into(
        &self,
        context: &[u8],
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        out.clear();
        let header = field::header(sealed)?;
        let keys = self.field_keys()?;
        match header.format {
            FieldFormat::V2 { salt, .. } => {
                keys.open_in_session(header.key_id, &salt, context, sealed, out)
            }
            // Format 1, or any the envelope opens without a session.
            _ => {
                let fk = keys.field_key(header.key_id)?;
                let opened = Zeroizing::new(field::open(
                    &self.inner.config.provider,
                    &fk,
                    context,
                    sealed,
                )?);
                out.extend_from_slice(&opened);
                Ok(())
            }
        }
    }

    /// Opens a value sealed by [`Db::seal_field`] (or stored by
    /// [`Db::put_sealed`], whose context is the record key) with the
    /// context it was sealed for; a deterministic value takes its field id
    /// as context. The field key is the one the value's header names; a
    /// destroyed one answers [`Error::KeyDestroyed`], a changed value or
    /// another context [`Error::Field`].
    pub fn open_field(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Error> {
        self.open_sealed(context, sealed)
    }

    /// [`Db::open_field`] into `out`, which it replaces: a reader of many
    /// values keeps one buffer instead of allocating one per value. The
    /// plaintext is the caller's to wipe (e.g. with `zeroize`) once used:
    /// the buffer is cleared, not wiped, before a value goes in, so bytes
    /// past a shorter value are the previous one's. On an error `out` is
    /// left empty (length 0), and what a failed authentication decrypted
    /// is wiped.
    pub fn open_field_into(
        &self,
        context: &[u8],
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.open_sealed_into(context, sealed, out)
    }

    /// The blind-index key of `scope` (the parts that name what is indexed:
    /// a collection, a field, a tenant) under field key `field_key` in this
    /// database: `HKDF-SHA256(field key, salt = database id,
    /// "sealkv/v1/field/blind-index" || each part length-prefixed)`, whose
    /// tags are `HMAC-SHA256(index key, value)` (see
    /// [`sealkv_crypto_envelope::blind`]). Destroying the field key makes
    /// every tag under it unlinkable. A destroyed key answers
    /// [`Error::KeyDestroyed`]. Derived keys are kept per field key and
    /// scope (a tag costs one HMAC, not a derivation too) until the field
    /// key is destroyed.
    pub fn blind_index_key(
        &self,
        field_key: KeyId,
        scope: &[&[u8]],
    ) -> Result<BlindIndexKey, Error> {
        let db_id = self.id();
        self.field_keys()?.blind_index_key(field_key, scope, |fk| {
            BlindIndexKey::derive(&self.inner.config.provider, fk, &db_id, scope)
                .map_err(Error::from)
        })
    }
}
