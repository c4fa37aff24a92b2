//! Field sessions: how randomized field values (format 2) are sealed.
//!
//! A [`FieldSession`] draws one fresh 256-bit salt, derives one subkey from
//! the field key under it and builds the cipher once; every value it seals
//! takes the next counter as its nonce. A [`FieldOpener`] is the open-only
//! half for one (field key, salt): a reader keeps one per session it meets,
//! so opening costs no key derivation and no key schedule either.
//!
//! The nonce argument is the writer sessions' one ([`crate::session`]): a
//! (subkey, nonce) pair repeats only if two seals share a salt and a
//! counter. Within a session the counter comes from one atomic
//! `fetch_add`, and a session refuses past [`SEALS_PER_FIELD_SESSION`]
//! (2^32) seals, so it never wraps; two sessions share a salt with
//! probability about `n^2 / 2^257` for `n` sessions. Nothing is persisted,
//! so a copied directory written on both sides, a crash and reopen, or two
//! handles on one database all seal under new salts. A session records the
//! process that started it and refuses to seal in any other: a child
//! forked after it started holds a copy of its salt and counter.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sealkv_fileio::OpenedBy;
use zeroize::Zeroize;

use super::{
    FieldError, FieldFormat, FieldMode, MAGIC_V2, SALT_LEN, TAG_LEN, V1_HEADER_LEN, V2_HEADER_LEN,
    check_key, header, with_aad,
};
use crate::algorithm::AlgorithmId;
use crate::error::CryptoError;
use crate::gated::GatedAead;
use crate::kdf::{LABEL_PREFIX, hkdf_sha256};
use crate::keys::{DataKey, KeyId, SecretKey};
use crate::provider::CryptoProvider;
use crate::session::NONCE_LEN;

/// Seals one field session may make before a new one (a new salt) must
/// take over; the counter is stored in 4 bytes.
pub const SEALS_PER_FIELD_SESSION: u64 = 1 << 32;

/// The session subkey of field key `key` under `salt`:
/// `HKDF-SHA256(field key, salt, "sealkv/v1/field/session")`. No database
/// id: field-sealed values are opaque bytes that an export carries to a
/// database with another id.
fn session_subkey(
    provider: &CryptoProvider,
    key: &DataKey,
    salt: &[u8; SALT_LEN],
) -> Result<SecretKey, CryptoError> {
    hkdf_sha256(
        provider,
        key.secret().expose(),
        salt,
        &[LABEL_PREFIX, b"/field/session"],
    )
}

/// The nonce of counter `counter`: 8 zero bytes || counter (u32 BE).
fn nonce_for(counter: u32) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[8..].copy_from_slice(&counter.to_be_bytes());
    n
}

/// Opens the format-2 values of one field session: one field key, one
/// salt, the cipher built once. Its `Debug` shows the key id, the
/// algorithm and a prefix of the (public) salt, never key bytes. The
/// subkey lives only inside the cipher, whose key schedule is wiped on
/// drop by the built-in RustCrypto ciphers (`ring`'s is not: SECURITY.md).
pub struct FieldOpener {
    key_id: KeyId,
    algorithm: AlgorithmId,
    salt: [u8; SALT_LEN],
    aead: GatedAead,
}

impl fmt::Debug for FieldOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldOpener")
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm)
            .field("salt", &format_args!("{}..", hex::encode(&self.salt[..6])))
            .finish_non_exhaustive()
    }
}

impl FieldOpener {
    /// Derives the subkey of `key` under `salt` and builds its cipher.
    pub fn new(
        provider: &CryptoProvider,
        key: &DataKey,
        salt: &[u8; SALT_LEN],
    ) -> Result<Self, FieldError> {
        let subkey = session_subkey(provider, key, salt)?;
        Ok(FieldOpener {
            key_id: key.id,
            algorithm: key.algorithm,
            salt: *salt,
            aead: provider.new_gated_aead(key.algorithm, &subkey)?,
        })
    }

    /// The field key it opens for.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The session salt it opens for.
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    /// Opens a format-2 value sealed in the field session the opener
    /// belongs to, for `context`. A value of another key is `WrongKey`; of
    /// another session (salt) or format, `Malformed`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, FieldError> {
        let mut out = Vec::new();
        self.open_into(context, sealed, &mut out)?;
        Ok(out)
    }

    /// [`open`](Self::open) into `out`, which it replaces: a reader of
    /// many values keeps one buffer, and wipes it once done with each
    /// value (`clear` does not wipe: the bytes past a shorter value are
    /// the last one's). On an error `out` is left empty (length 0), and
    /// what a failed authentication decrypted is wiped.
    pub fn open_into(
        &self,
        context: &[u8],
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), FieldError> {
        out.clear();
        let h = header(sealed)?;
        check_key(&h, self.key_id, self.algorithm)?;
        let FieldFormat::V2 { salt, counter } = h.format else {
            return Err(FieldError::Malformed("not a format-2 value"));
        };
        if salt != self.salt {
            return Err(FieldError::Malformed("sealed in another field session"));
        }
        let body_len = sealed
            .len()
            .checked_sub(V2_HEADER_LEN + TAG_LEN)
            .ok_or(FieldError::Malformed("truncated body"))?;
        let (head, rest) = sealed.split_at(V2_HEADER_LEN);
        let (body, tag) = rest.split_at(body_len);
        let aead = self.aead.get()?;
        out.extend_from_slice(body);
        // The cipher wipes what a failed open decrypted.
        let opened = with_aad(head, context, |aad| {
            aead.open_in_place_detached(&nonce_for(counter), aad, out, tag)
        });
        if opened.is_err() {
            out.clear();
            return Err(FieldError::Authentication);
        }
        Ok(())
    }
}

/// Seals randomized field values (format 2) under one field key: a fresh
/// salt, a subkey derived once, a counter nonce per value. Safe to share
/// between threads (`Arc`); each seal takes its own counter. After
/// [`SEALS_PER_FIELD_SESSION`] seals it refuses with
/// [`FieldError::SessionExhausted`], and in a process forked after it
/// started with [`FieldError::SessionForked`]: start a new session. Its
/// `Debug` shows no key bytes.
pub struct FieldSession {
    opener: Arc<FieldOpener>,
    next: AtomicU64,
    /// The process that started it: a forked child holds a byte-identical
    /// copy of the session (salt and counter), so it must not seal in it.
    started_by: OpenedBy,
}

impl fmt::Debug for FieldSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldSession")
            .field("opener", &self.opener)
            .field("sealed", &self.sealed())
            .finish()
    }
}

impl FieldSession {
    /// Starts a session under field key `key`: draws a fresh salt
    /// ([`crate::random::mixed_fill`]) and derives the subkey.
    pub fn start(provider: &CryptoProvider, key: &DataKey) -> Result<Self, FieldError> {
        let salt = crate::random::salt(provider)?;
        Self::under(provider, key, salt)
    }

    /// A session under a chosen salt: only for known-answer vectors (a
    /// chosen salt could repeat one), so only in tests.
    #[cfg(test)]
    pub(crate) fn with_salt(
        provider: &CryptoProvider,
        key: &DataKey,
        salt: [u8; SALT_LEN],
    ) -> Result<Self, FieldError> {
        Self::under(provider, key, salt)
    }

    fn under(
        provider: &CryptoProvider,
        key: &DataKey,
        salt: [u8; SALT_LEN],
    ) -> Result<Self, FieldError> {
        Ok(FieldSession {
            opener: Arc::new(FieldOpener::new(provider, key, &salt)?),
            next: AtomicU64::new(0),
            started_by: OpenedBy::current(),
        })
    }

    /// Makes the session look started by process `pid`, as it looks to a
    /// child forked after it started: lets tests reach the fork check
    /// without forking.
    #[cfg(any(test, feature = "test-hooks"))]
    #[doc(hidden)]
    pub fn pretend_started_by(&self, pid: u32) {
        self.started_by.pretend(pid);
    }

    /// The field key it seals under.
    pub fn key_id(&self) -> KeyId {
        self.opener.key_id
    }

    /// The session's salt (public: every value it seals carries it).
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.opener.salt
    }

    /// The opener of the values this field session seals (same subkey,
    /// same cipher).
    pub fn opener(&self) -> &Arc<FieldOpener> {
        &self.opener
    }

    /// How many counters have been drawn.
    pub fn sealed(&self) -> u64 {
        self.next
            .load(Ordering::Relaxed)
            .min(SEALS_PER_FIELD_SESSION)
    }

    /// Whether every counter is spent (the next seal refuses).
    pub fn is_exhausted(&self) -> bool {
        self.sealed() >= SEALS_PER_FIELD_SESSION
    }

    /// Moves the counter forward to `counter` (never back, so no counter is
    /// ever drawn twice): for retiring a session early, and for testing
    /// what a caller does at the limit without sealing 2^32 times.
    pub fn skip_to(&self, counter: u64) {
        self.next
            .fetch_max(counter.min(SEALS_PER_FIELD_SESSION), Ordering::Relaxed);
    }

    fn draw(&self) -> Result<u32, FieldError> {
        let counter = self.next.fetch_add(1, Ordering::Relaxed);
        match u32::try_from(counter) {
            Ok(c) => Ok(c),
            Err(_) => {
                // Pinned at the limit so it can never wrap.
                self.next.store(SEALS_PER_FIELD_SESSION, Ordering::Relaxed);
                Err(FieldError::SessionExhausted)
            }
        }
    }

    /// Seals `value` for `context` (the record key: the value opens only
    /// with it) under the next counter.
    /// In a process other than the one that started the session (a child
    /// forked after it started), it refuses with
    /// [`FieldError::SessionForked`] and retires the session in that
    /// process: parent and child would otherwise draw the same counters
    /// under the same salt.
    pub fn seal(&self, context: &[u8], value: &[u8]) -> Result<Vec<u8>, FieldError> {
        if self.started_by.check().is_err() {
            // Only this process's copy of the counter moves: the parent's
            // session goes on.
            self.next.store(SEALS_PER_FIELD_SESSION, Ordering::Relaxed);
            return Err(FieldError::SessionForked);
        }
        let counter = self.draw()?;
        let o = &self.opener;
        // Asked before the value is copied: a refusal leaves no copy.
        let aead = o.aead.get()?;
        let mut out = Vec::with_capacity(V2_HEADER_LEN + value.len() + TAG_LEN);
        out.push(MAGIC_V2);
        out.push(FieldMode::Randomized.byte());
        out.extend_from_slice(&o.algorithm.0.to_le_bytes());
        out.extend_from_slice(&o.key_id.0.to_le_bytes());
        out.extend_from_slice(&o.salt);
        out.extend_from_slice(&counter.to_be_bytes());
        debug_assert_eq!(out.len(), V1_HEADER_LEN + SALT_LEN + 4);
        out.extend_from_slice(value);
        out.resize(V2_HEADER_LEN + value.len() + TAG_LEN, 0);
        let (head, rest) = out.split_at_mut(V2_HEADER_LEN);
        let (body, tag) = rest.split_at_mut(value.len());
        let sealed = with_aad(head, context, |aad| {
            aead.seal_in_place_detached(&nonce_for(counter), aad, body, tag)
        });
        if let Err(e) = sealed {
            // A failed seal may leave the value, or part of it, in clear.
            out.zeroize();
            return Err(CryptoError::from(e).into());
        }
        Ok(out)
    }
}
