//! Keys and chunk sealing for logical export archives.
//!
//! An archive is sealed under an *archive key*: the database's master key by
//! default, or a separate backup key. That key never touches data. Each
//! archive draws a fresh random 32-byte salt, and two subkeys are derived
//! from (archive key, salt) with HKDF-SHA256:
//!
//! - the chunk key, `HKDF(key, salt, "sealkv-archive/v1" || "/chunk")`,
//!   which seals every chunk of that archive with the STREAM construction's
//!   nonces: chunk `i` under `i (u64, big-endian) || last flag || 0 0 0`;
//! - the key-check key, `HKDF(key, salt, "sealkv-archive/v1" || "/key-check")`,
//!   whose HMAC-SHA256 over the archive header tells a wrong key apart from
//!   a damaged archive (AES-GCM is not key-committing, so "the first chunk
//!   failed to open" cannot make that distinction).
//!
//! Because the salt is fresh per archive, two archives under one key never
//! share a chunk key, so their chunk nonces never collide. The writer side
//! cannot choose the salt: [`ArchiveKeys::generate`] draws it and returns
//! it (to go in the header), and its [`ChunkSealer`] numbers the chunks
//! itself, refusing anything after the last. The reader side,
//! [`ArchiveReadKeys`], takes the salt from the header it reads and can only
//! open. ([`crate::hazmat::archive_keys_with_salt`] derives writer keys
//! from a chosen salt, for tests that need fixed bytes.)
//!
//! ```
//! use sealkv_crypto_envelope::archive::{ArchiveKeys, ArchiveReadKeys};
//! use sealkv_crypto_envelope::{CryptoProvider, EncryptionAlgorithm, MasterKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = CryptoProvider::default();
//! let key = MasterKey::random()?;
//! let alg = EncryptionAlgorithm::Aes256Gcm.id();
//!
//! // Writing: the salt is drawn, then recorded in the header.
//! let keys = ArchiveKeys::generate(&provider, &key)?;
//! let header = [b"archive header, salt ".as_slice(), keys.salt()].concat();
//! let check = keys.key_check(&header);
//! let mut sealer = keys.into_sealer(&provider, alg)?;
//! let mut chunk = b"records".to_vec();
//! let mut tag = [0u8; 16];
//! let index = sealer.seal_next(true, &header, &mut chunk, &mut tag)?;
//!
//! // Reading: the salt comes from the header.
//! let read = ArchiveReadKeys::derive(&provider, &key, &header[21..].try_into()?)?;
//! assert!(read.verify_key_check(&header, &check));
//! read.opener(&provider, alg)?.open(index, true, &header, &mut chunk, &tag)?;
//! assert_eq!(chunk, b"records");
//!
//! // Another key is told apart.
//! let other = ArchiveReadKeys::derive(&provider, &MasterKey::random()?, &header[21..].try_into()?)?;
//! assert!(!other.verify_key_check(&header, &check));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::algorithm::AlgorithmId;
use crate::error::CryptoError;
use crate::gated::GatedAead;
use crate::kdf::hkdf_sha256;
use crate::keys::{MasterKey, SecretKey};
use crate::primitives::Mac;
use crate::provider::CryptoProvider;
use crate::session::NONCE_LEN;

/// The label every archive derivation starts with.
pub const ARCHIVE_LABEL: &[u8] = b"sealkv-archive/v1";

/// Length of an archive salt.
pub const ARCHIVE_SALT_LEN: usize = 32;

/// Length of a key-check value.
pub const KEY_CHECK_LEN: usize = 32;

/// The subkeys of one archive, derived from its key and salt.
struct Subkeys {
    chunk: SecretKey,
    check: SecretKey,
    mac: Arc<dyn Mac>,
}

impl Subkeys {
    fn derive(
        provider: &CryptoProvider,
        key: &MasterKey,
        salt: &[u8; ARCHIVE_SALT_LEN],
    ) -> Result<Self, CryptoError> {
        let ikm = key.secret().expose();
        Ok(Subkeys {
            chunk: hkdf_sha256(provider, ikm, salt, &[ARCHIVE_LABEL, b"/chunk"])?,
            check: hkdf_sha256(provider, ikm, salt, &[ARCHIVE_LABEL, b"/key-check"])?,
            mac: provider.mac()?,
        })
    }

    fn key_check(&self, header: &[u8]) -> [u8; KEY_CHECK_LEN] {
        self.mac.hmac_sha256(self.check.expose(), &[header])
    }
}

/// The keys of a new archive: a salt drawn for it, the chunk key and the
/// key-check key. Zeroized on drop; `Debug` is redacted.
pub struct ArchiveKeys {
    salt: [u8; ARCHIVE_SALT_LEN],
    keys: Subkeys,
}

impl fmt::Debug for ArchiveKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArchiveKeys(<redacted>)")
    }
}

impl ArchiveKeys {
    /// Draws a fresh salt (`provider`'s random source mixed with the
    /// operating system's, as [`crate::random`] explains) and derives the
    /// archive's subkeys from it under `key`.
    pub fn generate(provider: &CryptoProvider, key: &MasterKey) -> Result<Self, CryptoError> {
        Self::with_salt(provider, key, crate::random::salt(provider)?)
    }

    /// Derives from a chosen salt: only for [`crate::hazmat`].
    pub(crate) fn with_salt(
        provider: &CryptoProvider,
        key: &MasterKey,
        salt: [u8; ARCHIVE_SALT_LEN],
    ) -> Result<Self, CryptoError> {
        Ok(ArchiveKeys {
            salt,
            keys: Subkeys::derive(provider, key, &salt)?,
        })
    }

    /// The archive's salt: record it in the header.
    pub fn salt(&self) -> &[u8; ARCHIVE_SALT_LEN] {
        &self.salt
    }

    /// HMAC-SHA256 of `header` under the key-check key.
    pub fn key_check(&self, header: &[u8]) -> [u8; KEY_CHECK_LEN] {
        self.keys.key_check(header)
    }

    /// The sealer of this archive's chunks with `algorithm`. It takes the
    /// keys: one archive, one sealer, so no chunk index is sealed twice.
    pub fn into_sealer(
        self,
        provider: &CryptoProvider,
        algorithm: AlgorithmId,
    ) -> Result<ChunkSealer, CryptoError> {
        Ok(ChunkSealer {
            aead: provider.new_gated_aead(algorithm, &self.keys.chunk)?,
            next: 0,
            closed: false,
        })
    }
}

/// The keys of an archive being read, from the salt in its header: they
/// check the key and open chunks, and cannot seal.
pub struct ArchiveReadKeys {
    keys: Subkeys,
}

impl fmt::Debug for ArchiveReadKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArchiveReadKeys(<redacted>)")
    }
}

impl ArchiveReadKeys {
    /// Derives the subkeys of the archive with salt `salt` (read from its
    /// header) under `key`.
    pub fn derive(
        provider: &CryptoProvider,
        key: &MasterKey,
        salt: &[u8; ARCHIVE_SALT_LEN],
    ) -> Result<Self, CryptoError> {
        Ok(ArchiveReadKeys {
            keys: Subkeys::derive(provider, key, salt)?,
        })
    }

    /// Whether `expected` is the key check of `header`, compared in
    /// constant time.
    pub fn verify_key_check(&self, header: &[u8], expected: &[u8]) -> bool {
        bool::from(self.keys.key_check(header)[..].ct_eq(expected))
    }

    /// The opener of this archive's chunks, sealed with `algorithm`.
    pub fn opener(
        &self,
        provider: &CryptoProvider,
        algorithm: AlgorithmId,
    ) -> Result<ChunkOpener, CryptoError> {
        Ok(ChunkOpener {
            aead: provider.new_gated_aead(algorithm, &self.keys.chunk)?,
        })
    }
}

/// The nonce of chunk `index`: the index (big-endian), the last flag, then
/// zeros — the STREAM construction's counter and last-chunk flag.
fn chunk_nonce(index: u64, last: bool) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..8].copy_from_slice(&index.to_be_bytes());
    n[8] = u8::from(last);
    n
}

/// Seals the chunks of one archive in order: chunk 0, 1, 2, ... and then
/// nothing after the one marked last.
pub struct ChunkSealer {
    aead: GatedAead,
    next: u64,
    closed: bool,
}

impl fmt::Debug for ChunkSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSealer")
            .field("algorithm", &self.aead.describe().algorithm())
            .field("next", &self.next)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl ChunkSealer {
    /// The index the next chunk gets (put it in its AAD).
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Seals `body` in place as the next chunk, `last` if it ends the
    /// archive, and writes its tag; returns its index. The index is spent
    /// whether sealing succeeds or not. After the last chunk, or once the
    /// indexes run out, it refuses with [`CryptoError::ArchiveClosed`].
    pub fn seal_next(
        &mut self,
        last: bool,
        aad: &[u8],
        body: &mut [u8],
        tag: &mut [u8],
    ) -> Result<u64, CryptoError> {
        if self.closed || self.next == u64::MAX {
            return Err(CryptoError::ArchiveClosed);
        }
        let index = self.next;
        self.next += 1;
        self.closed = last;
        self.aead
            .get()?
            .seal_in_place_detached(&chunk_nonce(index, last), aad, body, tag)?;
        Ok(index)
    }
}

/// Opens the chunks of one archive.
pub struct ChunkOpener {
    aead: GatedAead,
}

impl fmt::Debug for ChunkOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkOpener")
            .field("algorithm", &self.aead.describe().algorithm())
            .finish_non_exhaustive()
    }
}

impl ChunkOpener {
    /// Verifies and decrypts, in place, chunk `index` (`last` if it claims
    /// to end the archive).
    pub fn open(
        &self,
        index: u64,
        last: bool,
        aad: &[u8],
        body: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        self.aead
            .get()?
            .open_in_place_detached(&chunk_nonce(index, last), aad, body, tag)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EncryptionAlgorithm;

    fn key(b: u8) -> MasterKey {
        MasterKey::from_bytes(&[b; 32]).unwrap()
    }

    fn subkeys(k: u8, salt: u8) -> Subkeys {
        Subkeys::derive(&CryptoProvider::default(), &key(k), &[salt; 32]).unwrap()
    }

    #[test]
    fn known_answer() {
        // Pinned so a change to the derivation (which would orphan every
        // archive written so far) cannot pass unnoticed. Computed with an
        // independent HKDF-SHA256 (Python's hmac): ikm = 32 x 0x01,
        // salt = 32 x 0x02, info = "sealkv-archive/v1/chunk" | ".../key-check".
        let keys = subkeys(1, 2);
        assert_eq!(
            hex::encode(keys.chunk.expose()),
            "e847c3725f77c2bc005de264407f897c39540bee85a9ae5f1415bc1789ed5940"
        );
        assert_eq!(
            hex::encode(keys.check.expose()),
            "404b6f04722febf5758ed2fda103f18cc3e4398dec6bda3e63b91cfbffb5004d"
        );
        // And the STREAM nonce layout of the archive format.
        assert_eq!(
            chunk_nonce(0x0102, true),
            [0, 0, 0, 0, 0, 0, 1, 2, 1, 0, 0, 0]
        );
    }

    #[test]
    fn subkeys_are_distinct_per_purpose_key_and_salt() {
        let (a, b, c) = (subkeys(1, 2), subkeys(1, 3), subkeys(4, 2));
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
        for purpose in [
            crate::KekPurpose::Wrap,
            crate::KekPurpose::KeyCheck,
            crate::KekPurpose::RegistryMac,
        ] {
            let reg = crate::kdf::kek_subkey(
                &CryptoProvider::default(),
                &key(1),
                &crate::DbId([2; 16]),
                purpose,
            )
            .unwrap();
            assert_ne!(reg.expose(), a.chunk.expose());
            assert_ne!(reg.expose(), a.check.expose());
        }
    }

    #[test]
    fn generated_salts_are_fresh_and_read_keys_match_them() {
        let p = CryptoProvider::default();
        let a = ArchiveKeys::generate(&p, &key(1)).unwrap();
        let b = ArchiveKeys::generate(&p, &key(1)).unwrap();
        assert_ne!(a.salt(), b.salt());
        let check = a.key_check(b"header");
        let read = ArchiveReadKeys::derive(&p, &key(1), a.salt()).unwrap();
        assert!(read.verify_key_check(b"header", &check));
        assert!(!read.verify_key_check(b"headeR", &check));
        assert!(!read.verify_key_check(b"header", &check[..31]));
        let other = ArchiveReadKeys::derive(&p, &key(9), a.salt()).unwrap();
        assert!(!other.verify_key_check(b"header", &check));
        let on_b = ArchiveReadKeys::derive(&p, &key(1), b.salt()).unwrap();
        assert!(!on_b.verify_key_check(b"header", &check));
        assert!(!format!("{a:?}{read:?}").contains("01"));
    }

    #[test]
    fn the_sealer_numbers_chunks_and_stops_after_the_last() {
        let p = CryptoProvider::default();
        let alg = EncryptionAlgorithm::ChaCha20Poly1305.id();
        let keys = ArchiveKeys::generate(&p, &key(1)).unwrap();
        let read = ArchiveReadKeys::derive(&p, &key(1), keys.salt()).unwrap();
        let mut sealer = keys.into_sealer(&p, alg).unwrap();
        let opener = read.opener(&p, alg).unwrap();
        let mut chunks = Vec::new();
        for last in [false, false, true] {
            let mut body = vec![7u8; 40];
            let mut tag = [0u8; 16];
            assert_eq!(sealer.next_index(), chunks.len() as u64);
            let i = sealer.seal_next(last, b"aad", &mut body, &mut tag).unwrap();
            chunks.push((i, last, body, tag));
        }
        let mut body = vec![7u8; 40];
        assert!(matches!(
            sealer.seal_next(false, b"aad", &mut body, &mut [0; 16]),
            Err(CryptoError::ArchiveClosed)
        ));
        for (i, last, body, tag) in &chunks {
            let mut b = body.clone();
            opener.open(*i, *last, b"aad", &mut b, tag).unwrap();
            assert_eq!(b, vec![7u8; 40]);
            // At another index, or with the other last flag: refused.
            let mut b = body.clone();
            assert!(opener.open(i + 1, *last, b"aad", &mut b, tag).is_err());
            let mut b = body.clone();
            assert!(opener.open(*i, !last, b"aad", &mut b, tag).is_err());
        }
        // Distinct indexes, distinct keystreams.
        assert_ne!(chunks[0].2, chunks[1].2);
    }
}
