//! Sealing and opening chunks: the STREAM construction.
//!
//! Chunk `i` is sealed under the archive's chunk key with the nonce
//! `i (big-endian u64) || last flag || 0 0 0` and the AAD
//! `header || i || frame`, so a chunk opens only at its own position, in
//! its own archive, with its own last flag. Plaintext archives put a CRC32C
//! [`checksum_tag`] over the same AAD and body in the tag's place: it catches
//! accidents (bit rot, a cut, chunks out of order), not an attacker.

use sealkv::crypto::archive::{
    ARCHIVE_SALT_LEN, ArchiveKeys, ArchiveReadKeys, ChunkOpener, ChunkSealer,
};
use sealkv::crypto::{
    CryptoError, CryptoProvider, KdfParams, KeySource, MasterKey, checksum_tag, hazmat,
    verify_checksum_tag,
};

use super::error::ArchiveError;
use super::format::{CHUNK_TAG_LEN, FLAG_LAST, FRAME_LEN, HEADER_LEN, KeyKind, Protection, aad};

/// Seals the chunks of a new archive.
pub(crate) enum ChunkSealing {
    /// CRC32C checksum tags only.
    Plaintext,
    /// The archive's chunk sealer, which numbers the chunks itself.
    Sealed(ChunkSealer),
}

/// Opens the chunks of an archive being read.
pub(crate) enum ChunkOpening {
    /// CRC32C checksum tags only.
    Plaintext,
    /// An opener under the archive's chunk key.
    Sealed(ChunkOpener),
}

/// Why a chunk does not open.
pub(crate) struct OpenFailed;

impl ChunkSealing {
    /// Seals `body` in place as chunk `index` (the next one) and returns
    /// its tag.
    pub(crate) fn seal(
        &mut self,
        header: &[u8; HEADER_LEN],
        index: u64,
        frame: &[u8; FRAME_LEN],
        body: &mut [u8],
    ) -> Result<[u8; CHUNK_TAG_LEN], ArchiveError> {
        let last = frame[0] & FLAG_LAST != 0;
        match self {
            ChunkSealing::Plaintext => Ok(checksum_tag(&aad(header, index, frame), body)),
            ChunkSealing::Sealed(sealer) => {
                // The sealer owns the chunk numbering (and so the nonces);
                // the writer counts the same chunks.
                debug_assert_eq!(sealer.next_index(), index);
                let aad = aad(header, sealer.next_index(), frame);
                let mut tag = [0u8; CHUNK_TAG_LEN];
                sealer.seal_next(last, &aad, body, &mut tag)?;
                Ok(tag)
            }
        }
    }
}

impl ChunkOpening {
    /// Verifies and (when sealed) decrypts chunk `index` in place.
    pub(crate) fn open(
        &self,
        header: &[u8; HEADER_LEN],
        index: u64,
        frame: &[u8; FRAME_LEN],
        body: &mut [u8],
        tag: &[u8],
    ) -> Result<(), OpenFailed> {
        let last = frame[0] & FLAG_LAST != 0;
        let aad = aad(header, index, frame);
        match self {
            ChunkOpening::Plaintext => {
                if verify_checksum_tag(&aad, body, tag) {
                    Ok(())
                } else {
                    Err(OpenFailed)
                }
            }
            ChunkOpening::Sealed(opener) => opener
                .open(index, last, &aad, body, tag)
                .map_err(|_| OpenFailed),
        }
    }
}

/// The archive key and how a reader will get it again, for a new archive
/// sealed under `source`. A passphrase is stretched under a fresh Argon2id
/// salt recorded in the header.
pub(crate) fn export_key(
    source: &KeySource,
    provider: &CryptoProvider,
) -> Result<(MasterKey, KeyKind), ArchiveError> {
    let (key, kdf) = source.resolve_new(provider).map_err(|e| match e {
        CryptoError::Key(k) => ArchiveError::Key(k),
        other => ArchiveError::Crypto(other),
    })?;
    Ok((
        key,
        match kdf {
            Some(kdf) => KeyKind::Passphrase {
                salt: kdf.salt,
                params: kdf.params,
            },
            None => KeyKind::Raw,
        },
    ))
}

/// The archive key `source` gives for an archive whose header records
/// `kind`. A passphrase given for a raw-key archive (or the reverse) cannot
/// be the right key: `WrongKey`.
pub(crate) fn import_key(
    source: &KeySource,
    kind: &KeyKind,
    file: &std::path::Path,
    provider: &CryptoProvider,
) -> Result<MasterKey, ArchiveError> {
    let wrong = || ArchiveError::WrongKey {
        file: file.to_path_buf(),
    };
    match (source, kind) {
        (KeySource::Passphrase { passphrase, .. }, KeyKind::Passphrase { salt, params }) => {
            let params: KdfParams = *params;
            // The salt is the one this archive's header records: reading.
            Ok(hazmat::master_key_from_passphrase(
                provider, passphrase, salt, params,
            )?)
        }
        (KeySource::Passphrase { .. }, KeyKind::Raw) => Err(wrong()),
        (_, KeyKind::Passphrase { .. }) => Err(wrong()),
        (other, KeyKind::Raw) => Ok(other.master_key(provider)?),
    }
}

/// The keys of a new archive sealed under `key` with `algorithm` (their
/// salt drawn for it), or `None` for a plaintext archive.
pub(crate) fn new_keys(
    protection: &Protection,
    key: Option<&MasterKey>,
    provider: &CryptoProvider,
) -> Result<Option<ArchiveKeys>, ArchiveError> {
    match (protection, key) {
        (Protection::Sealed { algorithm, .. }, Some(key)) => {
            // An algorithm the provider lacks fails before anything is drawn.
            provider.algorithm(*algorithm)?;
            Ok(Some(ArchiveKeys::generate(provider, key)?))
        }
        _ => Ok(None),
    }
}

/// The salt a new archive's header records: its keys' own, or for a
/// plaintext archive (which seals nothing) a random one all the same.
pub(crate) fn header_salt(
    keys: Option<&ArchiveKeys>,
    provider: &CryptoProvider,
) -> Result<[u8; ARCHIVE_SALT_LEN], ArchiveError> {
    match keys {
        Some(keys) => Ok(*keys.salt()),
        None => {
            let mut salt = [0u8; ARCHIVE_SALT_LEN];
            sealkv::crypto::random::mixed_fill(provider, &mut salt)?;
            Ok(salt)
        }
    }
}

/// The chunk sealing of a new archive, taking its keys (one archive, one
/// sealer).
pub(crate) fn sealing(
    protection: &Protection,
    keys: Option<ArchiveKeys>,
    provider: &CryptoProvider,
) -> Result<ChunkSealing, ArchiveError> {
    match (protection, keys) {
        (Protection::Sealed { algorithm, .. }, Some(keys)) => Ok(ChunkSealing::Sealed(
            keys.into_sealer(provider, *algorithm)?,
        )),
        _ => Ok(ChunkSealing::Plaintext),
    }
}

/// The chunk opening and key check of an archive being read, from the salt
/// in its header.
pub(crate) fn opening(
    protection: &Protection,
    key: Option<&MasterKey>,
    salt: &[u8; ARCHIVE_SALT_LEN],
    provider: &CryptoProvider,
) -> Result<(ChunkOpening, Option<ArchiveReadKeys>), ArchiveError> {
    match (protection, key) {
        (Protection::Sealed { algorithm, .. }, Some(key)) => {
            let keys = ArchiveReadKeys::derive(provider, key, salt)?;
            let opener = keys.opener(provider, *algorithm)?;
            Ok((ChunkOpening::Sealed(opener), Some(keys)))
        }
        _ => Ok((ChunkOpening::Plaintext, None)),
    }
}
