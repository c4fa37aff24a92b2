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
//! - **Randomized** (the default, [`seal_randomized`]): each value draws a
//!   fresh 256-bit salt; the value's own subkey is
//!   `HKDF-SHA256(field key, salt, "sealkv/v1/field/randomized")`, used for
//!   exactly one seal (so its nonce can be fixed). The AAD binds the record
//!   key: a sealed value moved to another record does not open. Two seals of
//!   the same value differ.
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
//! Both modes leak the value's length (ciphertext = value + 8-byte header
//! [+ 32-byte salt] + 16-byte tag); pad values first if lengths matter.
//!
//! # Format
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
//! The header (with the salt, in randomized mode) is in the AAD, followed by the record key (randomized)
//! or the field id (deterministic).
//!
//! # Example
//!
//! ```
//! use sealkv_crypto_envelope::field::{open, seal_randomized};
//! use sealkv_crypto_envelope::{CryptoProvider, DataKey, EncryptionAlgorithm, KeyId, SecretKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = CryptoProvider::default();
//! let tenant_key = DataKey::new(KeyId(7), EncryptionAlgorithm::Aes256Gcm.id(), SecretKey::random()?);
//! let sealed = seal_randomized(&provider, &tenant_key, b"user/42/email", b"ada@example.com")?;
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

/// First byte of every field-sealed value.
pub const FIELD_MAGIC: u8 = 0xF1;
const HEADER_LEN: usize = 8;
const SALT_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// The nonce: every subkey seals one value (randomized) or is used with a
/// misuse-resistant cipher on purpose (deterministic), so it is fixed.
const FIXED_NONCE: [u8; NONCE_LEN] = [0; NONCE_LEN];

/// How a value was sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldMode {
    /// Fresh salt per value; bound to the record key.
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

/// What the header of a field-sealed value says (public information).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldHeader {
    /// The mode.
    pub mode: FieldMode,
    /// The algorithm recorded (checked against the key's own on open).
    pub algorithm: AlgorithmId,
    /// The field key that sealed it.
    pub key_id: KeyId,
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
    /// A cipher or randomness failure.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Reads the public header of a field-sealed value.
pub fn header(sealed: &[u8]) -> Result<FieldHeader, FieldError> {
    let h = sealed
        .get(..HEADER_LEN)
        .ok_or(FieldError::Malformed("shorter than its header"))?;
    if h[0] != FIELD_MAGIC {
        return Err(FieldError::Malformed("bad magic byte"));
    }
    let mode = match h[1] {
        1 => FieldMode::Randomized,
        2 => FieldMode::Deterministic,
        _ => return Err(FieldError::Malformed("unknown mode")),
    };
    Ok(FieldHeader {
        mode,
        algorithm: AlgorithmId(u16::from_le_bytes([h[2], h[3]])),
        key_id: KeyId(u32::from_le_bytes([h[4], h[5], h[6], h[7]])),
    })
}

fn encode_header(mode: FieldMode, key: &DataKey) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = FIELD_MAGIC;
    h[1] = mode.byte();
    h[2..4].copy_from_slice(&key.algorithm.0.to_le_bytes());
    h[4..8].copy_from_slice(&key.id.0.to_le_bytes());
    h
}

fn aad(header: &[u8], context: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + context.len());
    a.extend_from_slice(header);
    a.extend_from_slice(context);
    a
}

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

/// Seals `value` of the record `record_key` under `key` with a fresh
/// per-value salt.
pub fn seal_randomized(
    provider: &CryptoProvider,
    key: &DataKey,
    record_key: &[u8],
    value: &[u8],
) -> Result<Vec<u8>, FieldError> {
    let header = encode_header(FieldMode::Randomized, key);
    let salt: [u8; SALT_LEN] = crate::random::salt(provider)?;
    let aead = provider.new_aead(key.algorithm, &randomized_subkey(provider, key, &salt)?)?;
    let mut out = Vec::with_capacity(HEADER_LEN + SALT_LEN + value.len() + TAG_LEN);
    out.extend_from_slice(&header);
    out.extend_from_slice(&salt);
    out.extend_from_slice(value);
    let body_start = HEADER_LEN + SALT_LEN;
    out.resize(body_start + value.len() + TAG_LEN, 0);
    let (head, rest) = out.split_at_mut(body_start);
    let (body, tag) = rest.split_at_mut(value.len());
    aead.seal_in_place_detached(&FIXED_NONCE, &aad(head, record_key), body, tag)
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
    let mut out = Vec::with_capacity(HEADER_LEN + value.len() + TAG_LEN);
    out.extend_from_slice(&header);
    out.extend_from_slice(value);
    out.resize(HEADER_LEN + value.len() + TAG_LEN, 0);
    let (head, rest) = out.split_at_mut(HEADER_LEN);
    let (body, tag) = rest.split_at_mut(value.len());
    aead.seal_in_place_detached(&FIXED_NONCE, &aad(head, field_id), body, tag)
        .map_err(CryptoError::from)?;
    Ok(out)
}

/// Opens a field-sealed value. `context` is the record key (randomized
/// mode) or the field id (deterministic mode), as given when sealing.
pub fn open(
    provider: &CryptoProvider,
    key: &DataKey,
    context: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, FieldError> {
    let h = header(sealed)?;
    if h.key_id != key.id {
        return Err(FieldError::WrongKey {
            found: h.key_id,
            given: key.id,
        });
    }
    if h.algorithm != key.algorithm {
        // The key's algorithm comes from the registry; a header naming
        // another one has been tampered with.
        return Err(FieldError::Authentication);
    }
    let (head_len, subkey) = match h.mode {
        FieldMode::Randomized => {
            let salt = sealed
                .get(HEADER_LEN..HEADER_LEN + SALT_LEN)
                .ok_or(FieldError::Malformed("truncated salt"))?;
            (
                HEADER_LEN + SALT_LEN,
                randomized_subkey(provider, key, salt)?,
            )
        }
        FieldMode::Deterministic => {
            check_misuse_resistant(provider, key)?;
            (HEADER_LEN, deterministic_subkey(provider, key, context)?)
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
    aead.open_in_place_detached(&FIXED_NONCE, &aad(head, context), &mut body, tag)
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
