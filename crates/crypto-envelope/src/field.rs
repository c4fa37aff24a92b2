//! Field-level encryption: one value sealed on its own, so it stays
//! ciphertext in the memtable, the WAL and the pages — even with encryption
//! at rest off — and is opened only when the application reads it.
//!
//! Field keys are random keys with ids, stored wrapped in the key registry
//! (never derived from the master key: a rekey must not change them, and a
//! derived key could never be destroyed). Destroying a field key makes every
//! value sealed under it unreadable for good (crypto-shredding).
//!
//! # Modes
//!
//! - **Randomized** (the default, [`FieldSession::seal`]): values are
//!   sealed in *field sessions*, as the writer sessions of the WAL and the
//!   pages seal theirs ([`crate::session`]): a session draws a fresh 256-bit
//!   salt once, derives
//!   `subkey = HKDF-SHA256(field key, salt, "sealkv/v1/field/session")`
//!   once, and seals each value under the next counter, nonce = 8 zero
//!   bytes || counter (u32 BE). A session that reaches 2^32 seals
//!   ([`SEALS_PER_FIELD_SESSION`]) refuses and a new one (a new salt) takes
//!   over. The AAD binds the record key: a sealed value moved to another
//!   record does not open. Two seals of the same value differ (another
//!   counter, or another salt).
//! - **Deterministic** (explicit opt-in, [`seal_deterministic`]): the same
//!   value under the same key and field id always gives the same
//!   ciphertext, so an application can look values up by equality. It needs
//!   a nonce-misuse-resistant cipher (AES-256-GCM-SIV, or a provider
//!   algorithm that declares [`misuse_resistant`](crate::AeadAlgorithm::misuse_resistant),
//!   which its self-test makes it show);
//!   the subkey is `HKDF-SHA256(field key, salt = 32 zero bytes,
//!   "sealkv/v1/field/deterministic" || u32 BE len(field id) || field id)`
//!   (the length prefix keeps field ids that differ only by trailing zero
//!   bytes apart) and the AAD binds the field id, not the record key.
//!   **What it leaks:** who can read the files learns which records share a
//!   value in that field (and how many distinct values there are), never
//!   the values; and a deterministic value can be copied to another record
//!   of the same field without detection, since it is not bound to its
//!   record.
//!
//! # Why sessions, not a subkey per value
//!
//! Format 1 derived a subkey per value from a per-value salt: an HKDF, a
//! key schedule and a salt drawn from the operating system for every seal
//! and every open. A session derives its subkey once and a reader keeps one
//! [`FieldOpener`] per session it meets, so the hot path is one AEAD call.
//! Nonce uniqueness does not depend on anything stored or locked: it comes
//! from the fresh salt of each session (a copied directory written on both
//! sides, a crash and reopen, two handles on one database each start their
//! own) and the counter inside it, which never wraps.
//!
//! # What a sealed value leaks
//!
//! Its length (ciphertext = value + 16-byte tag + header: 44 bytes in
//! format 2, 40 in format-1 randomized, 8 deterministic; pad values first
//! if lengths matter), the field key id, and in format 2 the linkage of
//! its session, since the salt and counter are in clear: which values one
//! session sealed, in what order, how many it sealed between two of them,
//! and (by a change of salt) where a new session began. docs/SECURITY.md
//! says where the engine's values are readable.
//!
//! # Format
//!
//! Format 2, what randomized values are sealed in:
//!
//! ```text
//! byte 0      0xF2 (field-sealed value, format 2)
//! byte 1      mode: 1 randomized (the only mode of format 2)
//! bytes 2-3   algorithm id (u16 LE)
//! bytes 4-7   field key id (u32 LE)
//! bytes 8-39  session salt
//! bytes 40-43 counter (u32 BE); nonce = 8 zero bytes || counter
//! ...         ciphertext
//! 16 bytes    tag
//! ```
//!
//! AAD = bytes 0-43 || context (the record key).
//!
//! Format 1, still opened (deterministic values are still written in it):
//!
//! ```text
//! byte 0      0xF1 (field-sealed value, format 1)
//! byte 1      mode: 1 randomized, 2 deterministic
//! bytes 2-3   algorithm id (u16 LE)
//! bytes 4-7   field key id (u32 LE)
//! 32 bytes    salt (randomized mode only)
//! ...         ciphertext
//! 16 bytes    tag
//! ```
//!
//! Format 1 randomized: subkey = `HKDF-SHA256(field key, salt,
//! "sealkv/v1/field/randomized")`, one per value, nonce 12 zero bytes. The
//! header (with the salt, in randomized mode) is in the AAD, followed by
//! the record key (randomized) or the field id (deterministic).
//!
//! # Example
//!
//! ```
//! use sealkv_crypto_envelope::field::{FieldSession, open};
//! use sealkv_crypto_envelope::{CryptoProvider, DataKey, EncryptionAlgorithm, KeyId, SecretKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = CryptoProvider::default();
//! let tenant_key = DataKey::new(KeyId(7), EncryptionAlgorithm::Aes256Gcm.id(), SecretKey::random()?);
//! let session = FieldSession::start(&provider, &tenant_key)?;
//! let sealed = session.seal(b"user/42/email", b"ada@example.com")?;
//! assert_eq!(session.opener().open(b"user/42/email", &sealed)?, b"ada@example.com");
//! assert_eq!(open(&provider, &tenant_key, b"user/42/email", &sealed)?, b"ada@example.com");
//! // Bound to its record: it does not open under another key.
//! assert!(open(&provider, &tenant_key, b"user/43/email", &sealed).is_err());
//! # Ok(())
//! # }
//! ```

use crate::algorithm::AlgorithmId;
use crate::error::CryptoError;
use crate::kdf::{LABEL_PREFIX, hkdf_sha256};
use crate::keys::{DataKey, KeyId};
use crate::provider::CryptoProvider;
use crate::session::NONCE_LEN;

mod session;

pub use session::{FieldOpener, FieldSession, SEALS_PER_FIELD_SESSION};

/// First byte of a field-sealed value of format 1.
pub const FIELD_MAGIC: u8 = 0xF1;
/// First byte of a field-sealed value of format 2.
pub const FIELD_MAGIC_V2: u8 = 0xF2;
const MAGIC_V2: u8 = FIELD_MAGIC_V2;
const V1_HEADER_LEN: usize = 8;
const SALT_LEN: usize = 32;
const V2_HEADER_LEN: usize = V1_HEADER_LEN + SALT_LEN + 4;
const TAG_LEN: usize = 16;
/// The nonce of format 1: every subkey seals one value (randomized) or is
/// used with a misuse-resistant cipher on purpose (deterministic), so it is
/// fixed.
const FIXED_NONCE: [u8; NONCE_LEN] = [0; NONCE_LEN];

/// How a value was sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldMode {
    /// A session's salt and a counter per value (format 2), or a salt per
    /// value (format 1); bound to the record key.
    Randomized,
    /// Same value, same ciphertext; bound to a field id.
    Deterministic,
}

impl FieldMode {
    fn byte(self) -> u8 {
        match self {
            FieldMode::Randomized => 1,
            FieldMode::Deterministic => 2,
        }
    }
}

/// Which format a field-sealed value is in, with what it records there.
/// A later format is a new variant, so a `match` needs a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldFormat {
    /// Format 1 (`0xF1`): randomized values carry a per-value salt,
    /// deterministic ones nothing more.
    V1,
    /// Format 2 (`0xF2`, randomized only): the sealing session's salt and
    /// the value's counter in it.
    V2 {
        /// The session's salt (public).
        salt: [u8; SALT_LEN],
        /// The value's counter, its nonce.
        counter: u32,
    },
}

/// What the header of a field-sealed value says (public information).
/// Read with [`header`]; a later format may add fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldHeader {
    /// The mode.
    pub mode: FieldMode,
    /// The algorithm recorded (checked against the key's own on open).
    pub algorithm: AlgorithmId,
    /// The field key that sealed it.
    pub key_id: KeyId,
    /// The format, and in format 2 the session salt and counter.
    pub format: FieldFormat,
}

/// Problems opening a field-sealed value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FieldError {
    /// Not a field-sealed value, or truncated.
    #[error("not a field-sealed value: {0}")]
    Malformed(&'static str),
    /// Sealed under another field key than the one given.
    #[error("value is sealed under field key {found}, not {given}")]
    WrongKey {
        /// The key id in the value's header.
        found: KeyId,
        /// The key given.
        given: KeyId,
    },
    /// The tag did not verify: the value, its header or its context (record
    /// key or field id) changed.
    #[error("field-sealed value failed authentication")]
    Authentication,
    /// Deterministic mode needs a misuse-resistant algorithm
    /// (AES-256-GCM-SIV).
    #[error(
        "deterministic field encryption needs a misuse-resistant algorithm such as aes-256-gcm-siv, the key's is {0}"
    )]
    NotMisuseResistant(AlgorithmId),
    /// A field session sealed its 2^32 values; start a new session.
    #[error("field session exhausted its counters; start a new session")]
    SessionExhausted,
    /// The field session was started by another process: this one is a
    /// child forked after it started and holds a copy of its salt and
    /// counter, so sealing in it would repeat the parent's nonces. The
    /// session is retired; start a new one.
    #[error("field session started in another process (forked); start a new session")]
    SessionForked,
    /// A cipher or randomness failure.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Reads the public header of a field-sealed value.
pub fn header(sealed: &[u8]) -> Result<FieldHeader, FieldError> {
    let h = sealed
        .get(..V1_HEADER_LEN)
        .ok_or(FieldError::Malformed("shorter than its header"))?;
    let v2 = match h[0] {
        FIELD_MAGIC => false,
        FIELD_MAGIC_V2 => true,
        _ => return Err(FieldError::Malformed("bad magic byte")),
    };
    let mode = match h[1] {
        1 => FieldMode::Randomized,
        2 => FieldMode::Deterministic,
        _ => return Err(FieldError::Malformed("unknown mode")),
    };
    let format = if v2 {
        if mode != FieldMode::Randomized {
            return Err(FieldError::Malformed("format 2 is randomized only"));
        }
        let rest = sealed
            .get(V1_HEADER_LEN..V2_HEADER_LEN)
            .ok_or(FieldError::Malformed("truncated session salt or counter"))?;
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&rest[..SALT_LEN]);
        let c = &rest[SALT_LEN..];
        FieldFormat::V2 {
            salt,
            counter: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
        }
    } else {
        FieldFormat::V1
    };
    Ok(FieldHeader {
        mode,
        algorithm: AlgorithmId(u16::from_le_bytes([h[2], h[3]])),
        key_id: KeyId(u32::from_le_bytes([h[4], h[5], h[6], h[7]])),
        format,
    })
}

/// Checks that a value's header names key `id` with its algorithm.
fn check_key(h: &FieldHeader, id: KeyId, algorithm: AlgorithmId) -> Result<(), FieldError> {
    if h.key_id != id {
        return Err(FieldError::WrongKey {
            found: h.key_id,
            given: id,
        });
    }
    if h.algorithm != algorithm {
        // The key's algorithm comes from the registry; a header naming
        // another one has been tampered with.
        return Err(FieldError::Authentication);
    }
    Ok(())
}

fn encode_header(mode: FieldMode, key: &DataKey) -> [u8; V1_HEADER_LEN] {
    let mut h = [0u8; V1_HEADER_LEN];
    h[0] = FIELD_MAGIC;
    h[1] = mode.byte();
    h[2..4].copy_from_slice(&key.algorithm.0.to_le_bytes());
    h[4..8].copy_from_slice(&key.id.0.to_le_bytes());
    h
}

/// The longest associated data assembled on the stack; a longer context
/// is assembled on the heap.
const AAD_ON_STACK: usize = 256;

/// Runs `f` on a value's associated data: its `header`, then `context`.
/// Assembled on the stack when it fits, so sealing or opening a short value
/// allocates nothing for it.
fn with_aad<R>(header: &[u8], context: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let len = header.len() + context.len();
    if len > AAD_ON_STACK {
        let mut a = Vec::with_capacity(len);
        a.extend_from_slice(header);
        a.extend_from_slice(context);
        return f(&a);
    }
    let mut a = [0u8; AAD_ON_STACK];
    let (head, rest) = a.split_at_mut(header.len());
    head.copy_from_slice(header);
    rest[..context.len()].copy_from_slice(context);
    f(&a[..len])
}

/// The per-value subkey of format 1's randomized mode.
fn randomized_subkey(
    provider: &CryptoProvider,
    key: &DataKey,
    salt: &[u8],
) -> Result<crate::SecretKey, CryptoError> {
    hkdf_sha256(
        provider,
        key.secret().expose(),
        salt,
        &[LABEL_PREFIX, b"/field/randomized"],
    )
}

fn deterministic_subkey(
    provider: &CryptoProvider,
    key: &DataKey,
    field_id: &[u8],
) -> Result<crate::SecretKey, FieldError> {
    let len = u32::try_from(field_id.len())
        .map_err(|_| FieldError::Malformed("field id longer than 4 GiB"))?;
    Ok(hkdf_sha256(
        provider,
        key.secret().expose(),
        &[0u8; 32],
        &[
            LABEL_PREFIX,
            b"/field/deterministic",
            &len.to_be_bytes(),
            field_id,
        ],
    )?)
}

/// Refuses deterministic mode on a key whose algorithm is not
/// misuse-resistant in `provider`.
fn check_misuse_resistant(provider: &CryptoProvider, key: &DataKey) -> Result<(), FieldError> {
    if provider.algorithm(key.algorithm)?.misuse_resistant {
        Ok(())
    } else {
        Err(FieldError::NotMisuseResistant(key.algorithm))
    }
}

/// Seals `value` of the record `record_key` under `key` in a session of
/// its own (format 2, counter 0). It costs a salt, a derivation and a key
/// schedule per value: to seal many, keep a [`FieldSession`].
pub fn seal_randomized(
    provider: &CryptoProvider,
    key: &DataKey,
    record_key: &[u8],
    value: &[u8],
) -> Result<Vec<u8>, FieldError> {
    FieldSession::start(provider, key)?.seal(record_key, value)
}

/// Seals in format 1, randomized, under `salt`. Nothing writes format 1
/// any more; tests keep this writer to prove format-1 values still open.
#[cfg(test)]
fn seal_randomized_v1(
    provider: &CryptoProvider,
    key: &DataKey,
    salt: [u8; SALT_LEN],
    record_key: &[u8],
    value: &[u8],
) -> Result<Vec<u8>, FieldError> {
    let header = encode_header(FieldMode::Randomized, key);
    let aead = provider.new_aead(key.algorithm, &randomized_subkey(provider, key, &salt)?)?;
    let mut out = Vec::with_capacity(V1_HEADER_LEN + SALT_LEN + value.len() + TAG_LEN);
    out.extend_from_slice(&header);
    out.extend_from_slice(&salt);
    out.extend_from_slice(value);
    let body_start = V1_HEADER_LEN + SALT_LEN;
    out.resize(body_start + value.len() + TAG_LEN, 0);
    let (head, rest) = out.split_at_mut(body_start);
    let (body, tag) = rest.split_at_mut(value.len());
    with_aad(head, record_key, |aad| {
        aead.seal_in_place_detached(&FIXED_NONCE, aad, body, tag)
    })
    .map_err(CryptoError::from)?;
    Ok(out)
}

/// Seals `value` deterministically for field `field_id` under `key`, which
/// must be an AES-256-GCM-SIV key. See the module docs for what this leaks.
pub fn seal_deterministic(
    provider: &CryptoProvider,
    key: &DataKey,
    field_id: &[u8],
    value: &[u8],
) -> Result<Vec<u8>, FieldError> {
    check_misuse_resistant(provider, key)?;
    let header = encode_header(FieldMode::Deterministic, key);
    let aead = provider.new_aead(
        key.algorithm,
        &deterministic_subkey(provider, key, field_id)?,
    )?;
    let mut out = Vec::with_capacity(V1_HEADER_LEN + value.len() + TAG_LEN);
    out.extend_from_slice(&header);
    out.extend_from_slice(value);
    out.resize(V1_HEADER_LEN + value.len() + TAG_LEN, 0);
    let (head, rest) = out.split_at_mut(V1_HEADER_LEN);
    let (body, tag) = rest.split_at_mut(value.len());
    with_aad(head, field_id, |aad| {
        aead.seal_in_place_detached(&FIXED_NONCE, aad, body, tag)
    })
    .map_err(CryptoError::from)?;
    Ok(out)
}

/// Opens a field-sealed value of either format. `context` is the record
/// key (randomized mode) or the field id (deterministic mode), as given
/// when sealing. A format-2 value costs a derivation and a key schedule
/// here: a reader of many keeps a [`FieldOpener`] per session.
pub fn open(
    provider: &CryptoProvider,
    key: &DataKey,
    context: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, FieldError> {
    let h = header(sealed)?;
    check_key(&h, key.id, key.algorithm)?;
    let (head_len, subkey) = match (h.format, h.mode) {
        (FieldFormat::V2 { salt, .. }, _) => {
            return FieldOpener::new(provider, key, &salt)?.open(context, sealed);
        }
        (FieldFormat::V1, FieldMode::Randomized) => {
            let salt = sealed
                .get(V1_HEADER_LEN..V1_HEADER_LEN + SALT_LEN)
                .ok_or(FieldError::Malformed("truncated salt"))?;
            (
                V1_HEADER_LEN + SALT_LEN,
                randomized_subkey(provider, key, salt)?,
            )
        }
        (FieldFormat::V1, FieldMode::Deterministic) => {
            check_misuse_resistant(provider, key)?;
            (V1_HEADER_LEN, deterministic_subkey(provider, key, context)?)
        }
    };
    let body_len = sealed
        .len()
        .checked_sub(head_len + TAG_LEN)
        .ok_or(FieldError::Malformed("truncated body"))?;
    let head = &sealed[..head_len];
    let mut body = sealed[head_len..head_len + body_len].to_vec();
    let tag = &sealed[head_len + body_len..];
    let aead = provider.new_aead(key.algorithm, &subkey)?;
    with_aad(head, context, |aad| {
        aead.open_in_place_detached(&FIXED_NONCE, aad, &mut body, tag)
    })
    .map_err(|_| FieldError::Authentication)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EncryptionAlgorithm, SecretKey};

    fn key(id: u32, alg: EncryptionAlgorithm) -> DataKey {
        DataKey::new(KeyId(id), alg.id(), SecretKey::random().unwrap())
    }

    #[test]
    fn randomized_round_trip_differs_each_time_and_binds_the_record() {
        let p = CryptoProvider::default();
        for alg in EncryptionAlgorithm::ALL {
            let k = key(1, alg);
            let a = seal_randomized(&p, &k, b"rec", b"secret value").unwrap();
            let b = seal_randomized(&p, &k, b"rec", b"secret value").unwrap();
            assert_ne!(a, b);
            assert!(!a.windows(6).any(|w| w == b"secret"));
            assert_eq!(open(&p, &k, b"rec", &a).unwrap(), b"secret value");
            assert!(matches!(
                open(&p, &k, b"rec2", &a),
                Err(FieldError::Authentication)
            ));
            assert_eq!(header(&a).unwrap().mode, FieldMode::Randomized);
        }
    }

    #[test]
    fn deterministic_needs_siv_and_is_stable_per_field() {
        let p = CryptoProvider::default();
        let gcm = key(1, EncryptionAlgorithm::Aes256Gcm);
        assert!(matches!(
            seal_deterministic(&p, &gcm, b"email", b"x"),
            Err(FieldError::NotMisuseResistant(_))
        ));
        let k = key(2, EncryptionAlgorithm::Aes256GcmSiv);
        let a = seal_deterministic(&p, &k, b"email", b"ada@example.com").unwrap();
        let b = seal_deterministic(&p, &k, b"email", b"ada@example.com").unwrap();
        let c = seal_deterministic(&p, &k, b"phone", b"ada@example.com").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Field ids that differ only by trailing zero bytes stay apart.
        let z1 = seal_deterministic(&p, &k, b"id", b"v").unwrap();
        let z2 = seal_deterministic(&p, &k, b"id\0", b"v").unwrap();
        assert_ne!(z1, z2);
        assert!(open(&p, &k, b"id\0", &z1).is_err());
        assert_eq!(open(&p, &k, b"email", &a).unwrap(), b"ada@example.com");
        assert!(matches!(
            open(&p, &k, b"phone", &a),
            Err(FieldError::Authentication)
        ));
    }

    fn fixed_key() -> DataKey {
        DataKey::new(
            KeyId(9),
            EncryptionAlgorithm::Aes256Gcm.id(),
            SecretKey::from_bytes(&[0x42; 32]).unwrap(),
        )
    }

    /// A format-2 value pinned byte for byte: field key 32 bytes of 0x42
    /// (id 9, AES-256-GCM), session salt 32 bytes of 0x5a, counter 7,
    /// context `user/1/email`, value `ada@example.com`. Computed apart
    /// with Python's `cryptography` (HKDF-SHA256, AESGCM) from the format
    /// in the module docs.
    const V2_VECTOR: &str = concat!(
        "f201010009000000",
        "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
        "00000007",
        "1e5361217817c8c33ff0e4b20978923fa3c25c786187089a27ee83e72f29a8"
    );

    /// A format-1 randomized value pinned byte for byte: the same key,
    /// salt 32 bytes of 0x5a, context and value (computed apart the same
    /// way).
    const V1_VECTOR: &str = concat!(
        "f101010009000000",
        "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
        "42bac290bc09f032952b778825620e7392f743dd688dbda0156330d578ad92"
    );

    #[test]
    fn format_2_known_answer_vector() {
        let p = CryptoProvider::default();
        let k = fixed_key();
        let session = FieldSession::with_salt(&p, &k, [0x5a; 32]).unwrap();
        session.skip_to(7);
        let sealed = session.seal(b"user/1/email", b"ada@example.com").unwrap();
        assert_eq!(hex::encode(&sealed), V2_VECTOR);
        assert_eq!(sealed.len(), 15 + 44 + 16);
        let h = header(&sealed).unwrap();
        assert_eq!(
            h.format,
            FieldFormat::V2 {
                salt: [0x5a; 32],
                counter: 7
            }
        );
        let pinned = hex::decode(V2_VECTOR).unwrap();
        assert_eq!(
            open(&p, &k, b"user/1/email", &pinned).unwrap(),
            b"ada@example.com"
        );
        assert_eq!(
            session.opener().open(b"user/1/email", &pinned).unwrap(),
            b"ada@example.com"
        );
    }

    #[test]
    fn associated_data_is_the_header_then_the_context_on_the_stack_or_not() {
        let header: Vec<u8> = (0..V2_HEADER_LEN).map(|i| i as u8).collect();
        for len in 0..=AAD_ON_STACK + 44 {
            let context: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let want = [header.as_slice(), &context].concat();
            assert_eq!(with_aad(&header, &context, <[u8]>::to_vec), want, "{len}");
            assert_eq!(
                with_aad(&context, &header, <[u8]>::to_vec),
                [context.as_slice(), &header].concat()
            );
        }
    }

    #[test]
    fn a_context_longer_than_the_stack_buffer_binds_every_byte() {
        let p = CryptoProvider::default();
        let k = fixed_key();
        let session = FieldSession::with_salt(&p, &k, [0x5a; 32]).unwrap();
        for len in [
            AAD_ON_STACK - V2_HEADER_LEN,
            AAD_ON_STACK + 1,
            3 * AAD_ON_STACK,
        ] {
            let context = vec![7u8; len];
            let sealed = session.seal(&context, b"value").unwrap();
            assert_eq!(open(&p, &k, &context, &sealed).unwrap(), b"value");
            let mut other = context.clone();
            if let Some(last) = other.last_mut() {
                *last ^= 1;
            }
            assert!(matches!(
                open(&p, &k, &other, &sealed),
                Err(FieldError::Authentication)
            ));
        }
    }

    #[test]
    fn open_into_replaces_what_the_buffer_held_and_leaves_it_empty_on_failure() {
        let p = CryptoProvider::default();
        let k = fixed_key();
        let session = FieldSession::with_salt(&p, &k, [0x5a; 32]).unwrap();
        let long = session
            .seal(b"ctx", b"a much longer value than the next")
            .unwrap();
        let short = session.seal(b"ctx", b"short").unwrap();
        let mut out = Vec::new();
        session.opener().open_into(b"ctx", &long, &mut out).unwrap();
        assert_eq!(out, b"a much longer value than the next");
        session
            .opener()
            .open_into(b"ctx", &short, &mut out)
            .unwrap();
        assert_eq!(out, b"short");
        let mut forged = short.clone();
        if let Some(last) = forged.last_mut() {
            *last ^= 1;
        }
        assert!(matches!(
            session.opener().open_into(b"ctx", &forged, &mut out),
            Err(FieldError::Authentication)
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn format_1_values_still_open() {
        let p = CryptoProvider::default();
        let k = fixed_key();
        let sealed =
            seal_randomized_v1(&p, &k, [0x5a; 32], b"user/1/email", b"ada@example.com").unwrap();
        assert_eq!(hex::encode(&sealed), V1_VECTOR);
        let pinned = hex::decode(V1_VECTOR).unwrap();
        assert_eq!(header(&pinned).unwrap().format, FieldFormat::V1);
        assert_eq!(
            open(&p, &k, b"user/1/email", &pinned).unwrap(),
            b"ada@example.com"
        );
        assert!(matches!(
            open(&p, &k, b"user/2/email", &pinned),
            Err(FieldError::Authentication)
        ));
        // A session's opener takes format 2 only.
        let opener = FieldOpener::new(&p, &k, &[0x5a; 32]).unwrap();
        assert!(matches!(
            opener.open(b"user/1/email", &pinned),
            Err(FieldError::Malformed(_))
        ));
    }

    #[test]
    fn format_2_values_are_bound_to_context_header_salt_and_counter() {
        let p = CryptoProvider::default();
        let k = fixed_key();
        let session = FieldSession::start(&p, &k).unwrap();
        let sealed = session.seal(b"rec", b"value").unwrap();
        // Every byte of the header (magic, mode, algorithm, key id, salt,
        // counter), the body and the tag, flipped: refused. Bytes that
        // keep the value parseable and name the same key are
        // `Authentication`, the rest a typed refusal of their own.
        for i in 0..sealed.len() {
            let mut s = sealed.clone();
            s[i] ^= 0x01;
            let err = open(&p, &k, b"rec", &s).unwrap_err();
            match i {
                0 | 1 => assert!(matches!(err, FieldError::Malformed(_)), "{i}: {err:?}"),
                4..=7 => assert!(matches!(err, FieldError::WrongKey { .. }), "{i}: {err:?}"),
                _ => assert!(matches!(err, FieldError::Authentication), "{i}: {err:?}"),
            }
            if (8..44).contains(&i) {
                // Through the session's own opener, another salt is
                // another session; another counter fails the tag.
                let err = session.opener().open(b"rec", &s).unwrap_err();
                if i < 40 {
                    assert!(matches!(err, FieldError::Malformed(_)), "{i}");
                } else {
                    assert!(matches!(err, FieldError::Authentication), "{i}");
                }
            }
        }
        for ctx in [&b"rec2"[..], b"re", b""] {
            assert!(matches!(
                session.opener().open(ctx, &sealed),
                Err(FieldError::Authentication)
            ));
        }
        for n in 0..sealed.len() {
            assert!(open(&p, &k, b"rec", &sealed[..n]).is_err(), "cut to {n}");
        }
    }

    #[test]
    fn a_session_seals_consecutive_counters_and_refuses_at_its_limit() {
        let p = CryptoProvider::default();
        let k = fixed_key();
        let session = FieldSession::start(&p, &k).unwrap();
        let counter = |s: &[u8]| match header(s).unwrap().format {
            FieldFormat::V2 { salt, counter } => {
                assert_eq!(&salt, session.salt());
                u64::from(counter)
            }
            FieldFormat::V1 => panic!("format 1"),
        };
        assert_eq!(counter(&session.seal(b"r", b"a").unwrap()), 0);
        assert_eq!(counter(&session.seal(b"r", b"a").unwrap()), 1);
        session.skip_to(3);
        session.skip_to(2); // never back
        assert_eq!(counter(&session.seal(b"r", b"a").unwrap()), 3);
        session.skip_to(SEALS_PER_FIELD_SESSION - 1);
        let last = session.seal(b"r", b"last").unwrap();
        assert_eq!(counter(&last), SEALS_PER_FIELD_SESSION - 1);
        assert!(!session.is_exhausted() || session.sealed() == SEALS_PER_FIELD_SESSION);
        for _ in 0..3 {
            assert!(matches!(
                session.seal(b"r", b"a"),
                Err(FieldError::SessionExhausted)
            ));
        }
        assert!(session.is_exhausted());
        assert_eq!(session.sealed(), SEALS_PER_FIELD_SESSION);
        assert_eq!(session.opener().open(b"r", &last).unwrap(), b"last");
        // A new session is a new salt.
        let next = FieldSession::start(&p, &k).unwrap();
        assert_ne!(next.salt(), session.salt());
    }

    #[test]
    fn a_session_refuses_to_seal_in_another_process_than_its_own() {
        let p = CryptoProvider::default();
        let k = fixed_key();
        let session = FieldSession::start(&p, &k).unwrap();
        let before = session.seal(b"r", b"parent").unwrap();
        // What a forked child sees: the session started in another process
        // (its parent), with the parent's salt and counter.
        session.pretend_started_by(std::process::id().wrapping_add(1));
        assert!(matches!(
            session.seal(b"r", b"child"),
            Err(FieldError::SessionForked)
        ));
        assert!(session.is_exhausted(), "retired: a new session takes over");
        assert!(matches!(
            session.seal(b"r", b"child"),
            Err(FieldError::SessionExhausted | FieldError::SessionForked)
        ));
        assert_eq!(session.opener().open(b"r", &before).unwrap(), b"parent");
    }

    #[test]
    fn a_value_relabelled_to_the_other_format_does_not_open() {
        let p = CryptoProvider::default();
        let k = fixed_key();
        // Format 2 read as format 1: the same salt bytes, but format 1's
        // subkey label and nonce, and byte 0 is in the AAD.
        let v2 = FieldSession::start(&p, &k)
            .unwrap()
            .seal(b"user/1/email", b"ada@example.com")
            .unwrap();
        let mut as_v1 = v2.clone();
        as_v1[0] = FIELD_MAGIC;
        assert_eq!(header(&as_v1).unwrap().format, FieldFormat::V1);
        assert!(matches!(
            open(&p, &k, b"user/1/email", &as_v1),
            Err(FieldError::Authentication)
        ));
        // Format-1 randomized read as format 2: its salt taken for a
        // session's, the first ciphertext bytes for a counter.
        let mut as_v2 = hex::decode(V1_VECTOR).unwrap();
        as_v2[0] = FIELD_MAGIC_V2;
        assert!(matches!(
            header(&as_v2).unwrap().format,
            FieldFormat::V2 { .. }
        ));
        assert!(matches!(
            open(&p, &k, b"user/1/email", &as_v2),
            Err(FieldError::Authentication)
        ));
        let opener = FieldOpener::new(&p, &k, &[0x5a; 32]).unwrap();
        assert!(matches!(
            opener.open(b"user/1/email", &as_v2),
            Err(FieldError::Authentication)
        ));
        // A deterministic value labelled format 2: format 2 has no
        // deterministic mode.
        let siv = key(2, EncryptionAlgorithm::Aes256GcmSiv);
        let mut det = seal_deterministic(&p, &siv, b"email", b"ada@example.com").unwrap();
        det[0] = FIELD_MAGIC_V2;
        assert!(matches!(
            header(&det),
            Err(FieldError::Malformed("format 2 is randomized only"))
        ));
        assert!(matches!(
            open(&p, &siv, b"email", &det),
            Err(FieldError::Malformed("format 2 is randomized only"))
        ));
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let p = CryptoProvider::default();
        let k = fixed_key();
        let session = FieldSession::with_salt(&p, &k, [0x5a; 32]).unwrap();
        let shown = format!("{session:?} {:?}", session.opener());
        assert!(shown.contains("KeyId(9)") || shown.contains('9'), "{shown}");
        assert!(!shown.contains("4242"), "{shown}");
        assert!(!shown.contains("66, 66"), "{shown}");
    }

    #[test]
    fn every_flip_and_truncation_is_refused() {
        let p = CryptoProvider::default();
        let k = key(3, EncryptionAlgorithm::Aes256Gcm);
        let sealed = seal_randomized(&p, &k, b"r", b"value").unwrap();
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut s = sealed.clone();
                s[i] ^= 1 << bit;
                assert!(open(&p, &k, b"r", &s).is_err(), "flip at {i}.{bit}");
            }
        }
        for n in 0..sealed.len() {
            assert!(
                open(&p, &k, b"r", &sealed[..n]).is_err(),
                "truncated to {n}"
            );
        }
        let other = key(4, EncryptionAlgorithm::Aes256Gcm);
        assert!(matches!(
            open(&p, &other, b"r", &sealed),
            Err(FieldError::WrongKey {
                found: KeyId(3),
                given: KeyId(4)
            })
        ));
    }
}
