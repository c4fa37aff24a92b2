//! Field sessions and openers of one open database, so a randomized field
//! value costs one AEAD call to seal or open, not a salt, a derivation and
//! a key schedule.
//!
//! Sealing: one [`FieldSession`] per field key (a fresh salt, its subkey
//! derived once, a counter nonce per value), started at the first seal
//! under that key in this handle and replaced by a new one (a new salt)
//! once it has sealed its 2^32 values or refused to seal in a process
//! forked after it started. At most [`MAX_SESSIONS`] are kept: a handle
//! that writes for many tenants, each under its own field key, drops one
//! session for each new one past the bound (a dropped key's next seal
//! starts a new session, with a new salt). Every handle, every reopen and
//! every copy of the directory starts its own sessions, so no
//! (salt, counter) pair repeats whatever happens to the files.
//!
//! Opening: one [`FieldOpener`] per (field key, session salt) met, up to
//! [`MAX_OPENERS`]; the handle's own sessions' openers are in it from their
//! start, another session's once one of its values has opened (a header's
//! salt is not authenticated until the value is, so an opener built for a
//! forged one is never kept). The caller asks the registry for the field key before every
//! lookup (so a destroyed key answers as such whatever is cached), and
//! destroying a field key drops its sessions and openers here at once.
//! The subkeys live only inside the ciphers, whose key schedules the
//! built-in RustCrypto ciphers wipe on drop (`ring`'s do not:
//! SECURITY.md). `Debug` shows only counts.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use sealkv_crypto_envelope::field::{FieldError, FieldOpener, FieldSession};
use sealkv_crypto_envelope::{CryptoProvider, DataKey, KeyId};

/// The most openers kept; past it the cache starts over (the sessions go
/// on sealing, and their values' openers are built again when read).
const MAX_OPENERS: usize = 4096;

/// The most sealing sessions kept (one per field key sealed under: with a
/// key per tenant, one per tenant written for). Past it one is dropped for
/// each new one; dropping is always safe, the next seal under its key
/// starts a new session with a fresh salt.
const MAX_SESSIONS: usize = 1024;

/// A field key and one of its session salts: what names an opener.
type SessionOf = (KeyId, [u8; 32]);

/// The sessions sealing under each field key and the openers built.
#[derive(Default)]
pub(crate) struct FieldSessions {
    sealing: Mutex<HashMap<KeyId, Arc<FieldSession>>>,
    openers: Mutex<Openers>,
}

/// The openers built, and the last one asked for: the values read one
/// after another were mostly sealed in one session, and comparing one
/// opener's key id and salt is cheaper than hashing them.
#[derive(Default)]
struct Openers {
    by_session: HashMap<SessionOf, Arc<FieldOpener>>,
    last: Option<Arc<FieldOpener>>,
}

impl Openers {
    fn len(&self) -> usize {
        self.by_session.len()
    }
}

impl std::fmt::Debug for FieldSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldSessions")
            .field("sessions", &self.sealing.lock().len())
            .field("openers", &self.openers.lock().len())
            .finish()
    }
}

impl FieldSessions {
    /// The session sealing under field key `id`, if one has values left.
    /// The caller has just found the key in the registry and holds its
    /// lock, as for [`FieldSessions::session`].
    pub(crate) fn current(&self, id: KeyId) -> Option<Arc<FieldSession>> {
        let sealing = self.sealing.lock();
        sealing.get(&id).filter(|s| !s.is_exhausted()).cloned()
    }

    /// The session sealing under `key`: the current one, or a new one when
    /// there is none or it has sealed all its values. The caller has just
    /// taken `key` from the registry (so it is not destroyed) and holds the
    /// registry lock, which keeps a destruction from passing between.
    pub(crate) fn session(
        &self,
        provider: &CryptoProvider,
        key: &DataKey,
    ) -> Result<Arc<FieldSession>, FieldError> {
        let mut sealing = self.sealing.lock();
        if let Some(s) = sealing.get(&key.id).filter(|s| !s.is_exhausted()) {
            return Ok(s.clone());
        }
        let session = Arc::new(FieldSession::start(provider, key)?);
        tracing::debug!(field_key = %key.id, "field session started");
        self.keep_opener(session.opener().clone());
        if sealing.len() >= MAX_SESSIONS && !sealing.contains_key(&key.id) {
            // Any one will do: its key's next seal starts a new session
            // (a new salt), and its values open through the openers.
            if let Some(evicted) = sealing.keys().next().copied() {
                sealing.remove(&evicted);
            }
        }
        sealing.insert(key.id, session.clone());
        Ok(session)
    }

    /// The cached opener of field key `id`'s session `salt`, if any. The
    /// caller has just checked the key in the registry and holds its lock.
    pub(crate) fn cached_opener(&self, id: KeyId, salt: &[u8; 32]) -> Option<Arc<FieldOpener>> {
        let mut openers = self.openers.lock();
        if let Some(last) = &openers.last
            && last.key_id() == id
            && last.salt() == salt
        {
            return Some(last.clone());
        }
        let found = openers.by_session.get(&(id, *salt)).cloned()?;
        openers.last = Some(found.clone());
        Some(found)
    }

    /// Keeps `opener` for the next values of its session. The caller holds
    /// the registry lock and has just found the key there (so no
    /// destruction passes between), and the opener has opened a value (so
    /// its salt is one a session drew, not a forged header's).
    pub(crate) fn keep_opener(&self, opener: Arc<FieldOpener>) {
        let mut openers = self.openers.lock();
        if openers.len() >= MAX_OPENERS {
            openers.by_session.clear();
        }
        openers
            .by_session
            .insert((opener.key_id(), *opener.salt()), opener.clone());
        openers.last = Some(opener);
    }

    /// Drops every session and opener of field key `id`.
    pub(crate) fn forget(&self, id: KeyId) {
        self.sealing.lock().remove(&id);
        let mut openers = self.openers.lock();
        openers.by_session.retain(|(key, _), _| *key != id);
        if openers
            .last
            .as_ref()
            .is_some_and(|last| last.key_id() == id)
        {
            openers.last = None;
        }
    }

    /// How many openers are cached (for tests).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn openers_len(&self) -> usize {
        self.openers.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealkv_crypto_envelope::field::{FieldFormat, SEALS_PER_FIELD_SESSION, header};
    use sealkv_crypto_envelope::{EncryptionAlgorithm, SecretKey};

    fn key(id: u32) -> DataKey {
        DataKey::new(
            KeyId(id),
            EncryptionAlgorithm::Aes256Gcm.id(),
            SecretKey::from_bytes(&[id as u8; 32]).unwrap(),
        )
    }

    fn salt_and_counter(sealed: &[u8]) -> ([u8; 32], u32) {
        match header(sealed).unwrap().format {
            FieldFormat::V2 { salt, counter } => (salt, counter),
            other => panic!("not format 2: {other:?}"),
        }
    }

    #[test]
    fn one_session_per_key_until_it_is_exhausted_then_a_new_salt() {
        let p = CryptoProvider::default();
        let cache = FieldSessions::default();
        let (k1, k2) = (key(1), key(2));
        assert!(cache.current(k1.id).is_none());
        let s1 = cache.session(&p, &k1).unwrap();
        assert!(Arc::ptr_eq(&s1, &cache.session(&p, &k1).unwrap()));
        assert!(Arc::ptr_eq(&s1, &cache.current(k1.id).unwrap()));
        let s2 = cache.session(&p, &k2).unwrap();
        assert_ne!(s1.salt(), s2.salt());
        // Its own opener is cached from the start.
        assert!(Arc::ptr_eq(
            s1.opener(),
            &cache.cached_opener(k1.id, s1.salt()).unwrap()
        ));
        assert_eq!(cache.openers_len(), 2);

        // Near the end: the last counter is sealed, never 2^32, and the
        // next seal goes to a new session under a new salt at counter 0.
        s1.skip_to(SEALS_PER_FIELD_SESSION - 1);
        let last = s1.seal(b"r", b"v").unwrap();
        assert_eq!(salt_and_counter(&last), (*s1.salt(), u32::MAX));
        assert!(matches!(
            s1.seal(b"r", b"v"),
            Err(FieldError::SessionExhausted)
        ));
        assert!(
            cache.current(k1.id).is_none(),
            "an exhausted session is not current"
        );
        let next = cache.session(&p, &k1).unwrap();
        assert!(!Arc::ptr_eq(&s1, &next));
        assert!(Arc::ptr_eq(&next, &cache.current(k1.id).unwrap()));
        let first = next.seal(b"r", b"v").unwrap();
        assert_eq!(salt_and_counter(&first), (*next.salt(), 0));
        assert_ne!(next.salt(), s1.salt());
        // Both sessions' values still open.
        let o = cache.cached_opener(k1.id, s1.salt()).unwrap();
        assert_eq!(o.open(b"r", &last).unwrap(), b"v");

        // Key 1's opener was the last one asked for: forgetting the key
        // drops it there too.
        assert!(cache.cached_opener(k1.id, next.salt()).is_some());
        cache.forget(KeyId(1));
        assert!(cache.current(k1.id).is_none());
        assert!(cache.cached_opener(k1.id, next.salt()).is_none());
        assert!(cache.cached_opener(k1.id, s1.salt()).is_none());
        assert!(cache.cached_opener(k2.id, s2.salt()).is_some());
        assert_eq!(cache.openers_len(), 1, "only key 2's opener stays");
        assert!(cache.sealing.lock().get(&KeyId(1)).is_none());
        assert_eq!(
            format!("{cache:?}"),
            "FieldSessions { sessions: 1, openers: 1 }"
        );
    }

    #[test]
    fn the_sealing_sessions_stay_within_their_bound_and_go_on_sealing() {
        let p = CryptoProvider::default();
        let cache = FieldSessions::default();
        let keys: Vec<DataKey> = (0..MAX_SESSIONS as u32 + 100).map(key).collect();
        // Seals `value` under `k` and opens it through the kept opener.
        let seal_and_open = |k: &DataKey, value: &[u8]| {
            let sealed = cache.session(&p, k).unwrap().seal(b"r", value).unwrap();
            let (salt, _) = salt_and_counter(&sealed);
            let opener = cache.cached_opener(k.id, &salt).unwrap();
            assert_eq!(opener.open(b"r", &sealed).unwrap(), value);
        };
        for k in &keys {
            seal_and_open(k, b"v");
            assert!(cache.sealing.lock().len() <= MAX_SESSIONS);
        }
        assert_eq!(cache.sealing.lock().len(), MAX_SESSIONS, "full, never past");
        // Every key, evicted or not, seals on (an evicted one under a new
        // salt) and its values open.
        for k in &keys {
            seal_and_open(k, b"w");
        }
        assert!(cache.sealing.lock().len() <= MAX_SESSIONS);
    }
}
