//! Sealing and opening chunks: the STREAM construction.
//!
//! Chunk `i` is sealed under the archive's chunk key with the nonce
//! `i (big-endian u64) || last flag || 0 0 0` and the AAD
//! `header || i || frame`, so a chunk opens only at its own position, in
//! its own archive, with its own last flag. Plaintext archives put a CRC32C
//! [`checksum_tag`] over the same AAD and body in the tag's place: it catches
//! accidents (bit rot, a cut, chunks out of order), not an attacker.

use sealkv::crypto::archive::{ARCHIVE_SALT_LEN, ArchiveReadKeys, ChunkOpener, ChunkSealer};
use sealkv::crypto::{
    CryptoError, CryptoProvider, DbId, KdfParams, KeyError, KeySource, KeyWrapper, MAX_WRAPPED_LEN,
    MAX_WRAPPER_KIND_LEN, MAX_WRAPPING_KEY_ID_LEN, MasterKey, SecretKey, WrapError, checksum_tag,
    hazmat, verify_checksum_tag,
};

use super::error::ArchiveError;
use super::format::{
    CHUNK_TAG_LEN, FLAG_LAST, FRAME_LEN, KeyKind, Protection, WrappedArchiveKey, aad, wrap_context,
};

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
        header: &[u8],
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
        header: &[u8],
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

/// The archive key of a new archive sealed under `source` (not a key
/// wrapper: see [`wrap_archive_key`]), and how a reader will get it again.
/// A passphrase is stretched under a fresh Argon2id salt recorded in the
/// header.
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

/// A wrapper's failure: a wrapping key that is not there or does not open
/// the wrapped key is the wrong key for `file`; an outage or a broken
/// wrapper stays what it is.
fn wrap_error(e: WrapError, file: &std::path::Path) -> ArchiveError {
    match e {
        WrapError::WrongKey(_) => ArchiveError::WrongKey {
            file: file.to_path_buf(),
        },
        other => ArchiveError::Key(KeyError::Wrap(other)),
    }
}

/// Wraps the archive key `secret` of a new archive with salt `salt` (of the
/// database `source_db`) under `wrapper`, bound to the archive's wrap
/// context, and unwraps it once again to compare before anything depends
/// on it: a wrapper that cannot unwrap its own output fails the export
/// rather than writing an archive nobody can read.
pub(crate) fn wrap_archive_key(
    wrapper: &dyn KeyWrapper,
    secret: &SecretKey,
    salt: &[u8; ARCHIVE_SALT_LEN],
    source_db: &DbId,
) -> Result<WrappedArchiveKey, ArchiveError> {
    let failed = |what: String| ArchiveError::Key(KeyError::Wrap(WrapError::Failed(what)));
    let wrapper_kind = wrapper.kind().to_string();
    let key_id = wrapper
        .key_id()
        .map_err(|e| ArchiveError::Key(KeyError::Wrap(e)))?;
    if wrapper_kind.is_empty()
        || wrapper_kind.len() > MAX_WRAPPER_KIND_LEN
        || !wrapper_kind.is_ascii()
    {
        return Err(failed(format!(
            "wrapper kind must be 1 to {MAX_WRAPPER_KIND_LEN} ASCII bytes"
        )));
    }
    if key_id.is_empty() || key_id.len() > MAX_WRAPPING_KEY_ID_LEN {
        return Err(failed(format!(
            "wrapping key id must be 1 to {MAX_WRAPPING_KEY_ID_LEN} bytes"
        )));
    }
    let context = wrap_context(salt, source_db, &wrapper_kind, &key_id);
    let wrapped = wrapper
        .wrap(secret, &context)
        .map_err(|e| ArchiveError::Key(KeyError::Wrap(e)))?;
    if wrapped.is_empty() || wrapped.len() > MAX_WRAPPED_LEN {
        return Err(failed(format!(
            "wrapped key of {} bytes (1 to {MAX_WRAPPED_LEN} allowed)",
            wrapped.len()
        )));
    }
    let again = wrapper
        .unwrap(&wrapped, &context)
        .map_err(|e| ArchiveError::Key(KeyError::Wrap(e)))?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        secret.expose(),
        again.expose(),
    )) {
        return Err(failed("the wrapper does not unwrap what it wrapped".into()));
    }
    Ok(WrappedArchiveKey {
        wrapper_kind,
        key_id,
        wrapped,
    })
}

/// The archive key of an archive wrapped as `w` (of the database
/// `source_db`, with salt `salt`), unwrapped by `source`'s wrapper. Another
/// kind of key, a wrapper of another kind or naming another wrapping key
/// (no unwrap is tried), or a wrapped key that does not open: `WrongKey`.
/// An unreachable wrapper: `Key(Wrap(Unavailable))`.
pub(crate) fn unwrap_archive_key(
    source: &KeySource,
    w: &WrappedArchiveKey,
    salt: &[u8; ARCHIVE_SALT_LEN],
    source_db: &DbId,
    file: &std::path::Path,
) -> Result<MasterKey, ArchiveError> {
    let wrong = || ArchiveError::WrongKey {
        file: file.to_path_buf(),
    };
    let wrapper = source.wrapper().ok_or_else(wrong)?;
    if wrapper.kind() != w.wrapper_kind {
        return Err(wrong());
    }
    if wrapper.key_id().map_err(|e| wrap_error(e, file))? != w.key_id {
        return Err(wrong());
    }
    let context = wrap_context(salt, source_db, &w.wrapper_kind, &w.key_id);
    let key = wrapper
        .unwrap(&w.wrapped, &context)
        .map_err(|e| wrap_error(e, file))?;
    Ok(MasterKey::from_secret(key))
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
        (KeySource::Passphrase { .. } | KeySource::Wrapper(_), KeyKind::Raw) => Err(wrong()),
        (_, KeyKind::Passphrase { .. }) => Err(wrong()),
        (other, KeyKind::Raw) => Ok(other.master_key(provider)?),
        (_, KeyKind::Wrapped(_)) => Err(ArchiveError::InvalidOptions(
            "a wrapped archive key is unwrapped with its header's salt".into(),
        )),
    }
}

/// The salt a plaintext archive's header records: it seals nothing, but
/// every archive gets a random one all the same (its checksums then differ
/// from any other archive's).
pub(crate) fn plaintext_salt(
    provider: &CryptoProvider,
) -> Result<[u8; ARCHIVE_SALT_LEN], ArchiveError> {
    let mut salt = [0u8; ARCHIVE_SALT_LEN];
    sealkv::crypto::random::mixed_fill(provider, &mut salt)?;
    Ok(salt)
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
