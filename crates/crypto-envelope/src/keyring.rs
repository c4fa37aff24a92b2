//! [`Keyring`]: the unwrapped data keys of one open database, and the cache
//! of session subkeys used to open units.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::CryptoError;
use crate::gated::GatedAead;
use crate::ids::DbId;
use crate::keys::{DataKey, KeyId};
use crate::provider::CryptoProvider;
use crate::session::{SealObserver, SubkeyId, WriterSession, nonce_for, session_subkey};

/// Opening subkeys cached at most; past this the cache is cleared (sessions
/// are few — one per open, backup or import — so this is rarely reached).
const OPENER_CACHE_LIMIT: usize = 1024;

#[derive(Default)]
struct State {
    keys: BTreeMap<KeyId, DataKey>,
    active: Option<KeyId>,
    observer: Option<Arc<dyn SealObserver>>,
}

/// The data keys of one database, unwrapped, with the active one marked.
///
/// The WAL, the page store and the archive code share one `Arc<Keyring>`:
/// they start [`WriterSession`]s under the active key and open units through
/// [`Keyring::open`], which derives each session subkey once and caches it,
/// so opening costs no key schedule on the hot path. The algorithm of each
/// key comes from the authenticated registry, never from a unit's header.
pub struct Keyring {
    db_id: DbId,
    provider: Arc<CryptoProvider>,
    state: RwLock<State>,
    openers: RwLock<HashMap<SubkeyId, Opener>>,
}

/// An open-only handle on one session subkey: it verifies and decrypts
/// units, and cannot seal (sealing happens only through a
/// [`WriterSession`], which owns the nonce counter). Once a re-check
/// ([`CryptoProvider::self_test_again`]) marks its algorithm failed, it
/// refuses every open with that failure.
#[derive(Clone)]
pub struct Opener {
    aead: Arc<GatedAead>,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("algorithm", &self.aead.describe().algorithm())
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// Opens, in place, a unit sealed with nonce counter `counter`:
    /// verifies `tag` over `aad` and `buf`, then decrypts `buf`. On failure
    /// `buf` is left as ciphertext or zeroed, never as unverified plaintext.
    pub fn open(
        &self,
        counter: u64,
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        self.aead
            .get()?
            .open_in_place_detached(&nonce_for(counter), aad, buf, tag)?;
        Ok(())
    }

    /// The tag length of the subkey's algorithm.
    pub fn tag_len(&self) -> usize {
        self.aead.describe().tag_len()
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.read();
        f.debug_struct("Keyring")
            .field("db_id", &self.db_id)
            .field("keys", &st.keys.keys().collect::<Vec<_>>())
            .field("active", &st.active)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// An empty keyring for database `db_id`.
    pub fn new(db_id: DbId, provider: Arc<CryptoProvider>) -> Self {
        Keyring {
            db_id,
            provider,
            state: RwLock::new(State::default()),
            openers: RwLock::new(HashMap::new()),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read()
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write()
    }

    /// The database this keyring belongs to.
    pub fn db_id(&self) -> &DbId {
        &self.db_id
    }

    /// The crypto provider.
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// Adds (or replaces) a data key.
    pub fn insert(&self, key: DataKey) {
        let id = key.id;
        let mut st = self.write();
        st.keys.insert(id, key);
        self.forget_openers(id);
        drop(st);
    }

    /// Removes a data key: units sealed under it can no longer be opened.
    pub fn remove(&self, id: KeyId) {
        let mut st = self.write();
        st.keys.remove(&id);
        if st.active == Some(id) {
            st.active = None;
        }
        self.forget_openers(id);
        drop(st);
    }

    /// Drops cached openers of key `id`. Called with the state lock held
    /// (lock order: state, then openers).
    fn forget_openers(&self, id: KeyId) {
        self.openers.write().retain(|k, _| k.dek != id);
    }

    /// Makes `id` the key new sessions seal under.
    pub fn set_active(&self, id: KeyId) -> Result<(), CryptoError> {
        let mut st = self.write();
        if !st.keys.contains_key(&id) {
            return Err(CryptoError::MissingDataKey(id));
        }
        st.active = Some(id);
        Ok(())
    }

    /// The active key's id.
    pub fn active(&self) -> Option<KeyId> {
        self.read().active
    }

    /// Ids of every key held.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.read().keys.keys().copied().collect()
    }

    /// Whether the keyring holds key `id`.
    pub fn contains(&self, id: KeyId) -> bool {
        self.read().keys.contains_key(&id)
    }

    /// Installs an observer that sees every seal of sessions started from
    /// now on (for nonce-uniqueness tests).
    pub fn set_seal_observer(&self, observer: Option<Arc<dyn SealObserver>>) {
        self.write().observer = observer;
    }

    /// Starts a new writer session under the active key.
    pub fn start_session(&self) -> Result<WriterSession, CryptoError> {
        let st = self.read();
        let id = st.active.ok_or(CryptoError::NoActiveKey)?;
        let dek = st.keys.get(&id).ok_or(CryptoError::MissingDataKey(id))?;
        WriterSession::start(&self.provider, &self.db_id, dek, st.observer.clone())
    }

    /// The open-only handle for units sealed under subkey `id`, derived
    /// once and cached.
    pub fn opener(&self, id: &SubkeyId) -> Result<Opener, CryptoError> {
        if let Some(o) = self.openers.read().get(id) {
            return Ok(o.clone());
        }
        // Lock order: state, then openers. Holding the state lock while
        // inserting keeps a concurrent `remove` of the key from being
        // undone by a stale insert.
        let st = self.read();
        let dek = st
            .keys
            .get(&id.dek)
            .ok_or(CryptoError::MissingDataKey(id.dek))?;
        let sub = session_subkey(&self.provider, dek, &self.db_id, &id.salt, id.domain)?;
        let opener = Opener {
            aead: Arc::new(self.provider.new_gated_aead(dek.algorithm, &sub)?),
        };
        let mut map = self.openers.write();
        if map.len() >= OPENER_CACHE_LIMIT {
            map.clear();
        }
        map.insert(*id, opener.clone());
        Ok(opener)
    }

    /// Opens, in place, a unit sealed under subkey `id` with nonce counter
    /// `counter`: verifies `tag` over `aad` and `buf`, then decrypts `buf`.
    pub fn open(
        &self,
        id: &SubkeyId,
        counter: u64,
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        self.opener(id)?.open(counter, aad, buf, tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use crate::session::Domain;
    use crate::{AeadError, EncryptionAlgorithm};

    fn ring(alg: EncryptionAlgorithm) -> Keyring {
        let r = Keyring::new(DbId([7; 16]), Arc::new(CryptoProvider::default()));
        r.insert(DataKey::new(
            KeyId(1),
            alg.id(),
            SecretKey::random().unwrap(),
        ));
        r.set_active(KeyId(1)).unwrap();
        r
    }

    #[test]
    fn session_seal_then_keyring_open() {
        for alg in [
            EncryptionAlgorithm::Aes256Gcm,
            EncryptionAlgorithm::ChaCha20Poly1305,
        ] {
            let r = ring(alg);
            let s = r.start_session().unwrap();
            let sealer = s.sealer(Domain::Page);
            let mut buf = b"page contents".to_vec();
            let mut tag = [0u8; 16];
            let ctr = sealer.seal(b"aad", &mut buf, &mut tag).unwrap();
            assert_ne!(&buf[..], b"page contents");
            let id = *sealer.subkey_id();
            let mut copy = buf.clone();
            r.open(&id, ctr, b"aad", &mut copy, &tag).unwrap();
            assert_eq!(&copy[..], b"page contents");
            // Wrong AAD, wrong counter, wrong domain: all fail.
            let mut c = buf.clone();
            assert!(matches!(
                r.open(&id, ctr, b"aaD", &mut c, &tag),
                Err(CryptoError::Aead(AeadError::Authentication))
            ));
            let mut c = buf.clone();
            assert!(r.open(&id, ctr + 1, b"aad", &mut c, &tag).is_err());
            let mut c = buf.clone();
            let other = SubkeyId {
                domain: Domain::Wal,
                ..id
            };
            assert!(r.open(&other, ctr, b"aad", &mut c, &tag).is_err());
        }
    }

    #[test]
    fn removed_key_cannot_open_and_no_active_key_cannot_seal() {
        let r = ring(EncryptionAlgorithm::Aes256Gcm);
        let s = r.start_session().unwrap();
        let mut buf = [1u8; 8];
        let mut tag = [0u8; 16];
        let ctr = s.sealer(Domain::Wal).seal(b"", &mut buf, &mut tag).unwrap();
        let id = *s.sealer(Domain::Wal).subkey_id();
        r.remove(KeyId(1));
        assert!(matches!(
            r.open(&id, ctr, b"", &mut buf, &tag),
            Err(CryptoError::MissingDataKey(KeyId(1)))
        ));
        assert!(matches!(r.start_session(), Err(CryptoError::NoActiveKey)));
        assert!(matches!(
            r.set_active(KeyId(9)),
            Err(CryptoError::MissingDataKey(KeyId(9)))
        ));
    }
}
