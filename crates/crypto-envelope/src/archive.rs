//! Keys for logical export archives.
//!
//! An archive is sealed under an *archive key*: the database's master key by
//! default, or a separate backup key. That key never touches data. Each
//! archive draws a fresh random 32-byte salt, and two subkeys are derived
//! from (archive key, salt) with HKDF-SHA256:
//!
//! - the chunk key, `HKDF(key, salt, "sealkv-archive/v1" || "/chunk")`,
//!   which seals every chunk of that archive with counter nonces;
//! - the key-check key, `HKDF(key, salt, "sealkv-archive/v1" || "/key-check")`,
//!   whose HMAC-SHA256 over the archive header tells a wrong key apart from
//!   a damaged archive (AES-GCM is not key-committing, so "the first chunk
//!   failed to open" cannot make that distinction).
//!
//! Because the salt is fresh per archive, two archives under one key never
//! share a chunk key, so their counter nonces never collide.
//!
//! ```
//! use sealkv_crypto_envelope::MasterKey;
//! use sealkv_crypto_envelope::archive::ArchiveKeys;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = MasterKey::random()?;
//! let salt = [7u8; 32];
//! let keys = ArchiveKeys::derive(&key, &salt);
//! let check = keys.key_check(b"archive header");
//! assert!(keys.verify_key_check(b"archive header", &check));
//!
//! let other = ArchiveKeys::derive(&MasterKey::random()?, &salt);
//! assert!(!other.verify_key_check(b"archive header", &check));
//! # Ok(())
//! # }
//! ```

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::kdf::hkdf_sha256;
use crate::keys::{MasterKey, SecretKey};

/// The label every archive derivation starts with.
pub const ARCHIVE_LABEL: &[u8] = b"sealkv-archive/v1";

/// Length of an archive salt.
pub const ARCHIVE_SALT_LEN: usize = 32;

/// Length of a key-check value.
pub const KEY_CHECK_LEN: usize = 32;

/// The two subkeys of one archive. Zeroized on drop; `Debug` is redacted.
pub struct ArchiveKeys {
    chunk: SecretKey,
    check: SecretKey,
}

impl fmt::Debug for ArchiveKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArchiveKeys(<redacted>)")
    }
}

impl ArchiveKeys {
    /// Derives the chunk key and the key-check key of the archive with salt
    /// `salt` under `key`.
    pub fn derive(key: &MasterKey, salt: &[u8; ARCHIVE_SALT_LEN]) -> Self {
        let ikm = key.secret().expose();
        ArchiveKeys {
            chunk: hkdf_sha256(ikm, salt, &[ARCHIVE_LABEL, b"/chunk"]),
            check: hkdf_sha256(ikm, salt, &[ARCHIVE_LABEL, b"/key-check"]),
        }
    }

    /// The key that seals the archive's chunks (hand it to
    /// [`CryptoProvider::new_aead`](crate::CryptoProvider::new_aead)).
    pub fn chunk_key(&self) -> &SecretKey {
        &self.chunk
    }

    /// HMAC-SHA256 of `header` under the key-check key.
    pub fn key_check(&self, header: &[u8]) -> [u8; KEY_CHECK_LEN] {
        // HMAC takes keys of any length: construction cannot fail.
        let Ok(mut m) = <Hmac<Sha256> as KeyInit>::new_from_slice(self.check.expose()) else {
            debug_assert!(false, "HMAC accepts any key length");
            return [0; KEY_CHECK_LEN];
        };
        m.update(header);
        m.finalize().into_bytes().into()
    }

    /// Whether `expected` is the key check of `header`, compared in
    /// constant time.
    pub fn verify_key_check(&self, header: &[u8], expected: &[u8]) -> bool {
        bool::from(self.key_check(header)[..].ct_eq(expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> MasterKey {
        MasterKey::from_bytes(&[b; 32]).unwrap()
    }

    #[test]
    fn known_answer() {
        // Pinned so a change to the derivation (which would orphan every
        // archive written so far) cannot pass unnoticed. Computed with an
        // independent HKDF-SHA256 (Python's hmac): ikm = 32 x 0x01,
        // salt = 32 x 0x02, info = "sealkv-archive/v1/chunk" | ".../key-check".
        let keys = ArchiveKeys::derive(&key(1), &[2; 32]);
        assert_eq!(
            hex::encode(keys.chunk_key().expose()),
            "e847c3725f77c2bc005de264407f897c39540bee85a9ae5f1415bc1789ed5940"
        );
        assert_eq!(
            hex::encode(keys.check.expose()),
            "404b6f04722febf5758ed2fda103f18cc3e4398dec6bda3e63b91cfbffb5004d"
        );
    }

    #[test]
    fn subkeys_are_distinct_per_purpose_key_and_salt() {
        let a = ArchiveKeys::derive(&key(1), &[2; 32]);
        let b = ArchiveKeys::derive(&key(1), &[3; 32]);
        let c = ArchiveKeys::derive(&key(4), &[2; 32]);
        let all = [
            a.chunk.expose().to_vec(),
            a.check.expose().to_vec(),
            b.chunk.expose().to_vec(),
            b.check.expose().to_vec(),
            c.chunk.expose().to_vec(),
            c.check.expose().to_vec(),
            vec![1; 32],
        ];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                assert_ne!(all[i], all[j], "{i} vs {j}");
            }
        }
        // Not the registry's subkeys either (different label family).
        let reg =
            crate::kdf::kek_subkey(&key(1), &crate::DbId([2; 16]), crate::KekPurpose::Archive);
        assert_ne!(reg.expose(), a.chunk.expose());
    }

    #[test]
    fn key_check_tells_keys_and_headers_apart() {
        let a = ArchiveKeys::derive(&key(1), &[2; 32]);
        let check = a.key_check(b"header");
        assert!(a.verify_key_check(b"header", &check));
        assert!(!a.verify_key_check(b"headeR", &check));
        assert!(!a.verify_key_check(b"header", &check[..31]));
        let other = ArchiveKeys::derive(&key(9), &[2; 32]);
        assert!(!other.verify_key_check(b"header", &check));
        assert!(!format!("{a:?}").contains("01"));
    }
}
