//! Sealing and opening chunks: the STREAM construction.
//!
//! Chunk `i` is sealed under the archive's chunk key with the nonce
//! `i (big-endian u64) || last flag || 0 0 0` and the AAD
//! `header || i || frame`, so a chunk opens only at its own position, in
//! its own archive, with its own last flag. Plaintext archives put a CRC32C
//! [`checksum_tag`] over the same AAD and body in the tag's place: it catches
//! accidents (bit rot, a cut, chunks out of order), not an attacker.

use sealkv::crypto::archive::{ARCHIVE_SALT_LEN, ArchiveKeys};
use sealkv::crypto::{
    Aead, CryptoProvider, KdfParams, KeySource, MasterKey, checksum_tag, verify_checksum_tag,
};

use super::error::ArchiveError;
use super::format::{CHUNK_TAG_LEN, FRAME_LEN, HEADER_LEN, KeyKind, Protection, aad, nonce};

/// Seals or opens the chunks of one archive.
pub(crate) enum ChunkCipher {
    /// CRC32C checksum tags only.
    Plaintext,
    /// An AEAD under the archive's chunk key.
    Sealed(Box<dyn Aead>),
}

/// Why a chunk does not open.
pub(crate) struct OpenFailed;

impl ChunkCipher {
    /// Seals `body` in place as chunk `index` and returns its tag.
    pub(crate) fn seal(
        &self,
        header: &[u8; HEADER_LEN],
        index: u64,
        frame: &[u8; FRAME_LEN],
        body: &mut [u8],
    ) -> Result<[u8; CHUNK_TAG_LEN], ArchiveError> {
        let last = frame[0] & super::format::FLAG_LAST != 0;
        let aad = aad(header, index, frame);
        match self {
            ChunkCipher::Plaintext => Ok(checksum_tag(&aad, body)),
            ChunkCipher::Sealed(aead) => {
                let mut tag = [0u8; CHUNK_TAG_LEN];
                aead.seal_in_place_detached(&nonce(index, last), &aad, body, &mut tag)
                    .map_err(|e| ArchiveError::Crypto(sealkv::crypto::CryptoError::Aead(e)))?;
                Ok(tag)
            }
        }
    }

    /// Verifies and (when sealed) decrypts chunk `index` in place.
    pub(crate) fn open(
        &self,
        header: &[u8; HEADER_LEN],
        index: u64,
        frame: &[u8; FRAME_LEN],
        body: &mut [u8],
        tag: &[u8],
    ) -> Result<(), OpenFailed> {
        let last = frame[0] & super::format::FLAG_LAST != 0;
        let aad = aad(header, index, frame);
        match self {
            ChunkCipher::Plaintext => {
                if verify_checksum_tag(&aad, body, tag) {
                    Ok(())
                } else {
                    Err(OpenFailed)
                }
            }
            ChunkCipher::Sealed(aead) => aead
                .open_in_place_detached(&nonce(index, last), &aad, body, tag)
                .map_err(|_| OpenFailed),
        }
    }
}

/// The archive key and how a reader will get it again, for a new archive
/// sealed under `source`. A passphrase is stretched under a fresh Argon2id
/// salt recorded in the header.
pub(crate) fn export_key(source: &KeySource) -> Result<(MasterKey, KeyKind), ArchiveError> {
    match source {
        KeySource::Passphrase { params, .. } => {
            params.check()?;
            let mut salt = [0u8; 32];
            sealkv::crypto::random::fill(&mut salt)?;
            let key = source.resolve(Some((&salt, *params)))?;
            Ok((
                key,
                KeyKind::Passphrase {
                    salt,
                    params: *params,
                },
            ))
        }
        other => Ok((other.resolve(None)?, KeyKind::Raw)),
    }
}

/// The archive key `source` gives for an archive whose header records
/// `kind`. A passphrase given for a raw-key archive (or the reverse) cannot
/// be the right key: `WrongKey`.
pub(crate) fn import_key(
    source: &KeySource,
    kind: &KeyKind,
    file: &std::path::Path,
) -> Result<MasterKey, ArchiveError> {
    let wrong = || ArchiveError::WrongKey {
        file: file.to_path_buf(),
    };
    match (source, kind) {
        (KeySource::Passphrase { .. }, KeyKind::Passphrase { salt, params }) => {
            let params: KdfParams = *params;
            Ok(source.resolve(Some((salt, params)))?)
        }
        (KeySource::Passphrase { .. }, KeyKind::Raw) => Err(wrong()),
        (_, KeyKind::Passphrase { .. }) => Err(wrong()),
        (other, KeyKind::Raw) => Ok(other.resolve(None)?),
    }
}

/// The chunk cipher and key-check function of an archive.
pub(crate) fn cipher(
    protection: &Protection,
    key: Option<&MasterKey>,
    salt: &[u8; ARCHIVE_SALT_LEN],
    provider: &CryptoProvider,
) -> Result<(ChunkCipher, Option<ArchiveKeys>), ArchiveError> {
    match (protection, key) {
        (Protection::Sealed { algorithm, .. }, Some(key)) => {
            let keys = ArchiveKeys::derive(key, salt);
            let aead = provider.new_aead(*algorithm, keys.chunk_key())?;
            Ok((ChunkCipher::Sealed(aead), Some(keys)))
        }
        _ => Ok((ChunkCipher::Plaintext, None)),
    }
}
