//! Writer sessions: the one place nonces are made.
//!
//! # Why sessions
//!
//! A nonce must never repeat under one key. Counters persisted in the
//! database cannot promise that once the database is *copied* (a restored
//! backup running beside the original, `cp -r`, a VM snapshot put back): both
//! copies continue from the same counter. Nonces built from page number and
//! transaction id fail after a crash, when an uncommitted transaction's ids
//! are used again.
//!
//! So every writer session — each open for writing, each backup, restore,
//! import or re-encryption that writes — draws a fresh 256-bit random
//! [`SessionSalt`] and derives, once, one subkey per [`Domain`]:
//!
//! ```text
//! subkey = HKDF-SHA256(ikm = DEK, salt = session salt,
//!                      info = "sealkv/v1" || "/session/" || db id || domain)
//! nonce  = 0x00000000 || counter (u64, big-endian), counter = 0, 1, 2, ...
//! ```
//!
//! # The argument, once
//!
//! A (key, nonce) pair repeats only if two seals use the same subkey and the
//! same counter. Within one [`DomainSealer`], counters come from one atomic
//! `fetch_add` and are handed out as single-use [`NonceTicket`]s, so they are
//! distinct; a sealer exists once per (session, domain), since
//! [`WriterSession::start`] builds all of them and nothing else can. Across
//! sealers, subkeys differ unless DEK, salt, database id and domain all
//! coincide; distinct domains differ by construction, and two sessions share
//! a salt with probability about `n^2 / 2^257` for `n` sessions — nil. Nothing
//! is persisted, so copies, crashes and rollbacks cannot replay a counter:
//! each reopen is a new session with a new salt. A sealer refuses past
//! [`SEALS_PER_SESSION`] (2^32) seals, far inside AES-GCM's per-key limits;
//! the caller starts a new session.
//!
//! The salt (or its index in a table that is itself authenticated) is stored
//! in each sealed unit's header, so a reader derives the same subkey through
//! the [`Keyring`](crate::Keyring), which caches it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::algorithm::AlgorithmId;
use crate::error::CryptoError;
use crate::gated::GatedAead;
use crate::ids::DbId;
use crate::kdf::{LABEL_PREFIX, hkdf_sha256};
use crate::keys::{DataKey, KeyId, SecretKey};
use crate::provider::CryptoProvider;

/// Length of every nonce sealkv makes.
pub const NONCE_LEN: usize = 12;

/// Seals one session may make in one domain before it must be replaced.
pub const SEALS_PER_SESSION: u64 = 1 << 32;

/// What a subkey seals. Each domain has its own subkey per session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Domain {
    /// Write-ahead-log records.
    Wal = 1,
    /// Tree, overflow and free-list pages.
    Page = 2,
    /// Meta pages.
    Meta = 3,
}

impl Domain {
    /// Every domain.
    pub const ALL: [Domain; 3] = [Domain::Wal, Domain::Page, Domain::Meta];

    /// The domain's byte in labels and headers.
    pub const fn byte(self) -> u8 {
        self as u8
    }

    /// The domain with byte `b`.
    pub fn from_byte(b: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.byte() == b)
    }
}

/// A writer session's random 256-bit salt.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionSalt(pub [u8; 32]);

impl SessionSalt {
    /// A fresh salt from the OS CSPRNG.
    pub fn random() -> Result<Self, CryptoError> {
        let mut b = [0u8; 32];
        crate::random::fill(&mut b)?;
        Ok(SessionSalt(b))
    }

    /// A fresh salt from `provider`'s random source mixed with the
    /// operating system's ([`crate::random`] says why).
    pub(crate) fn draw(provider: &CryptoProvider) -> Result<Self, CryptoError> {
        Ok(SessionSalt(crate::random::salt(provider)?))
    }
}

impl fmt::Debug for SessionSalt {
    // The salt is public (it is stored in file headers); print a prefix to
    // tell sessions apart in test output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionSalt({}..)", hex::encode(&self.0[..6]))
    }
}

/// Names one subkey: which data key, which session, which domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubkeyId {
    /// The data key it is derived from.
    pub dek: KeyId,
    /// The session's salt.
    pub salt: SessionSalt,
    /// The domain.
    pub domain: Domain,
}

/// The nonce for counter value `counter`: `0x00000000 || counter` (u64,
/// big-endian). Public only through [`crate::hazmat::nonce_for`].
pub(crate) fn nonce_for(counter: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

/// Derives the session subkey of `dek` for (`db_id`, `salt`, `domain`).
pub(crate) fn session_subkey(
    provider: &CryptoProvider,
    dek: &DataKey,
    db_id: &DbId,
    salt: &SessionSalt,
    domain: Domain,
) -> Result<SecretKey, CryptoError> {
    hkdf_sha256(
        provider,
        dek.secret().expose(),
        &salt.0,
        &[
            LABEL_PREFIX,
            b"/session/",
            db_id.as_bytes(),
            &[domain.byte()],
        ],
    )
}

/// Sees every seal a session makes: used by tests that prove no (subkey,
/// nonce) pair ever repeats.
pub trait SealObserver: Send + Sync {
    /// Called once per seal, before the ciphertext is produced.
    fn sealed(&self, subkey: &SubkeyId, counter: u64);
}

/// A counter value drawn from a [`DomainSealer`]: usable for exactly one
/// seal, by that sealer. It is neither `Clone` nor `Copy`.
#[derive(Debug)]
#[must_use = "a drawn nonce is spent whether or not it is used"]
pub struct NonceTicket {
    counter: u64,
    sealer: u64,
}

/// Gives every [`DomainSealer`] a process-unique serial, so a ticket can only
/// be spent with the sealer that drew it.
static SEALER_SERIAL: AtomicU64 = AtomicU64::new(1);

impl NonceTicket {
    /// The counter value (store it in the unit's header).
    pub fn counter(&self) -> u64 {
        self.counter
    }
}

/// Seals units of one domain for one session. Cheap to share (`Arc`); safe
/// to use from many threads at once, each seal getting its own nonce. Once
/// a re-check ([`CryptoProvider::self_test_again`]) marks its algorithm
/// failed, it refuses every seal and open with that failure.
pub struct DomainSealer {
    id: SubkeyId,
    serial: u64,
    aead: GatedAead,
    next: AtomicU64,
    observer: Option<Arc<dyn SealObserver>>,
}

impl fmt::Debug for DomainSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainSealer")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm())
            .field("sealed", &self.sealed())
            .finish_non_exhaustive()
    }
}

impl DomainSealer {
    /// Which subkey this is.
    pub fn subkey_id(&self) -> &SubkeyId {
        &self.id
    }

    /// The algorithm it seals with.
    pub fn algorithm(&self) -> AlgorithmId {
        self.aead.describe().algorithm()
    }

    /// Tag length in bytes.
    pub fn tag_len(&self) -> usize {
        self.aead.describe().tag_len()
    }

    /// How many nonces have been drawn.
    pub fn sealed(&self) -> u64 {
        self.next.load(Ordering::Relaxed).min(SEALS_PER_SESSION)
    }

    /// Marks every nonce of this sealer spent: the next draw refuses with
    /// [`CryptoError::SessionExhausted`]. It only ever moves the counter
    /// forward, so it cannot make a nonce be drawn twice; it is for retiring
    /// a session early, and for testing what a caller does at the limit
    /// without sealing 2^32 times.
    pub fn spend_all(&self) {
        self.next.fetch_max(SEALS_PER_SESSION, Ordering::Relaxed);
    }

    /// Draws the next nonce, or refuses once [`SEALS_PER_SESSION`] are spent.
    pub fn draw(&self) -> Result<NonceTicket, CryptoError> {
        let counter = self.next.fetch_add(1, Ordering::Relaxed);
        if counter >= SEALS_PER_SESSION {
            // Keep the counter pinned past the limit so it can never wrap.
            self.next.store(SEALS_PER_SESSION, Ordering::Relaxed);
            return Err(CryptoError::SessionExhausted(self.id.domain));
        }
        Ok(NonceTicket {
            counter,
            sealer: self.serial,
        })
    }

    /// Seals `buf` in place under the ticket's nonce, writing the tag to
    /// `tag`. Use this when the counter must go into the AAD or a header
    /// first.
    pub fn seal_with(
        &self,
        ticket: NonceTicket,
        aad: &[u8],
        buf: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), CryptoError> {
        if ticket.sealer != self.serial {
            return Err(CryptoError::ForeignTicket);
        }
        let aead = self.aead.get()?;
        if let Some(o) = &self.observer {
            o.sealed(&self.id, ticket.counter);
        }
        let nonce = nonce_for(ticket.counter);
        aead.seal_in_place_detached(&nonce, aad, buf, tag)?;
        Ok(())
    }

    /// Draws a nonce and seals `buf` in place; returns the counter to store.
    pub fn seal(&self, aad: &[u8], buf: &mut [u8], tag: &mut [u8]) -> Result<u64, CryptoError> {
        let ticket = self.draw()?;
        let counter = ticket.counter;
        self.seal_with(ticket, aad, buf, tag)?;
        Ok(counter)
    }

    /// Opens a unit this writer session sealed (same subkey) in place.
    pub fn open(
        &self,
        counter: u64,
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        let nonce = nonce_for(counter);
        self.aead
            .get()?
            .open_in_place_detached(&nonce, aad, buf, tag)?;
        Ok(())
    }
}

/// One writer session: a fresh salt and one [`DomainSealer`] per [`Domain`]
/// under one data key.
pub struct WriterSession {
    salt: SessionSalt,
    dek: KeyId,
    algorithm: AlgorithmId,
    sealers: [Arc<DomainSealer>; 3],
}

impl fmt::Debug for WriterSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterSession")
            .field("salt", &self.salt)
            .field("dek", &self.dek)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl WriterSession {
    /// Starts a session under `dek`: draws a fresh salt and derives every
    /// domain's subkey.
    pub fn start(
        provider: &CryptoProvider,
        db_id: &DbId,
        dek: &DataKey,
        observer: Option<Arc<dyn SealObserver>>,
    ) -> Result<Self, CryptoError> {
        let salt = SessionSalt::draw(provider)?;
        Self::with_salt(provider, db_id, dek, salt, observer)
    }

    fn with_salt(
        provider: &CryptoProvider,
        db_id: &DbId,
        dek: &DataKey,
        salt: SessionSalt,
        observer: Option<Arc<dyn SealObserver>>,
    ) -> Result<Self, CryptoError> {
        let make = |domain: Domain| -> Result<Arc<DomainSealer>, CryptoError> {
            let sub = session_subkey(provider, dek, db_id, &salt, domain)?;
            Ok(Arc::new(DomainSealer {
                id: SubkeyId {
                    dek: dek.id,
                    salt,
                    domain,
                },
                serial: SEALER_SERIAL.fetch_add(1, Ordering::Relaxed),
                aead: provider.new_gated_aead(dek.algorithm, &sub)?,
                next: AtomicU64::new(0),
                observer: observer.clone(),
            }))
        };
        Ok(WriterSession {
            salt,
            dek: dek.id,
            algorithm: dek.algorithm,
            sealers: [make(Domain::Wal)?, make(Domain::Page)?, make(Domain::Meta)?],
        })
    }

    /// The session's salt (store it where readers will find it).
    pub fn salt(&self) -> &SessionSalt {
        &self.salt
    }

    /// The data key it seals under.
    pub fn dek(&self) -> KeyId {
        self.dek
    }

    /// The algorithm it seals with.
    pub fn algorithm(&self) -> AlgorithmId {
        self.algorithm
    }

    /// The sealer for `domain`.
    pub fn sealer(&self, domain: Domain) -> &Arc<DomainSealer> {
        &self.sealers[domain as usize - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EncryptionAlgorithm;

    fn dek() -> DataKey {
        DataKey::new(
            KeyId(1),
            EncryptionAlgorithm::Aes256Gcm.id(),
            SecretKey::from_bytes(&[3; 32]).unwrap(),
        )
    }

    #[test]
    fn sealer_refuses_past_its_limit() {
        let p = CryptoProvider::default();
        let s = WriterSession::start(&p, &DbId([0; 16]), &dek(), None).unwrap();
        let sealer = s.sealer(Domain::Wal);
        sealer.next.store(SEALS_PER_SESSION - 1, Ordering::Relaxed);
        let mut buf = *b"last";
        let mut tag = [0u8; 16];
        assert_eq!(
            sealer.seal(b"", &mut buf, &mut tag).unwrap(),
            SEALS_PER_SESSION - 1
        );
        let err = sealer.seal(b"", &mut buf, &mut tag).unwrap_err();
        assert!(matches!(err, CryptoError::SessionExhausted(Domain::Wal)));
        assert!(sealer.draw().is_err());
        assert_eq!(sealer.sealed(), SEALS_PER_SESSION);
    }

    #[test]
    fn domains_and_salts_give_distinct_subkeys() {
        let db = DbId([5; 16]);
        let k = dek();
        let p = CryptoProvider::default();
        let sub = |db: &DbId, salt: u8, domain| {
            session_subkey(&p, &k, db, &SessionSalt([salt; 32]), domain).unwrap()
        };
        let a = sub(&db, 1, Domain::Wal);
        let b = sub(&db, 1, Domain::Page);
        let c = sub(&db, 2, Domain::Wal);
        let d = sub(&DbId([6; 16]), 1, Domain::Wal);
        let all = [a.expose(), b.expose(), c.expose(), d.expose()];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j]);
            }
        }
    }

    #[test]
    fn nonce_layout() {
        assert_eq!(nonce_for(0), [0; 12]);
        assert_eq!(nonce_for(0x0102), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
    }
}
