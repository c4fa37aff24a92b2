//! HKDF-SHA256 subkey derivation and the labels that keep every use of a key
//! apart.
//!
//! The labels of a database's subkeys start with [`LABEL_PREFIX`]
//! (`"sealkv/v1"`): the master key's ([`KekPurpose`]: `/kek/wrap`,
//! `/kek/key-check`, `/kek/registry-mac`, salted with the database id), a
//! writer session's (`/session/`, [`crate::session`]) and a field value's
//! (`/field/...`, [`crate::field`]). An export archive's keys are not
//! derived from the master key's subkeys: they come from the archive key
//! and the archive's own salt under
//! [`ARCHIVE_LABEL`](crate::archive::ARCHIVE_LABEL) (`"sealkv-archive/v1"`,
//! [`crate::archive`]). Both prefixes name sealkv, so a key used by sealkv
//! never yields a subkey that some other protocol derives.

use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::keys::{KEY_LEN, MasterKey, SecretKey};
use crate::primitives::PrimitiveError;
use crate::provider::CryptoProvider;

/// The prefix of every HKDF `info` string sealkv uses.
pub const LABEL_PREFIX: &[u8] = b"sealkv/v1";

/// Purposes of the subkeys derived from the master key (KEK). The master key
/// itself never touches data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KekPurpose {
    /// Wraps data keys and field keys in the registry.
    Wrap,
    /// Computes the registry's key-check value.
    KeyCheck,
    /// Authenticates the registry's whole contents.
    RegistryMac,
    /// Authenticates the database's freshness anchor (a record kept
    /// outside the database directory).
    Anchor,
}

impl KekPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            KekPurpose::Wrap => b"/kek/wrap",
            KekPurpose::KeyCheck => b"/kek/key-check",
            KekPurpose::RegistryMac => b"/kek/registry-mac",
            KekPurpose::Anchor => b"/kek/anchor",
        }
    }
}

/// HKDF-SHA256(ikm, salt, info = concatenation of `info`) -> 32 bytes,
/// with `provider`'s KDF.
pub(crate) fn hkdf_sha256(
    provider: &CryptoProvider,
    ikm: &[u8],
    salt: &[u8],
    info: &[&[u8]],
) -> Result<SecretKey, CryptoError> {
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    provider
        .kdf()?
        .hkdf_sha256(ikm, salt, info, &mut out[..])
        .map_err(|e: PrimitiveError| CryptoError::KeyDerivation(e))?;
    Ok(SecretKey::from_array(&mut out))
}

/// The subkey of `kek` for `purpose` in database `db_id`:
/// HKDF(KEK, salt = db id, "sealkv/v1" || label).
pub(crate) fn kek_subkey(
    provider: &CryptoProvider,
    kek: &MasterKey,
    db_id: &crate::DbId,
    purpose: KekPurpose,
) -> Result<SecretKey, CryptoError> {
    hkdf_sha256(
        provider,
        kek.secret().expose(),
        db_id.as_bytes(),
        &[LABEL_PREFIX, purpose.label()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_matches_rfc5869_case_1_prefix() {
        // RFC 5869 test case 1 (SHA-256), first 32 bytes of the OKM.
        let ikm = [0x0b; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf_sha256(
            &CryptoProvider::default(),
            &ikm,
            &salt,
            &[&info[..4], &info[4..]],
        )
        .unwrap();
        assert_eq!(
            hex::encode(okm.expose()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn purposes_give_distinct_subkeys() {
        let kek = MasterKey::from_bytes(&[9; 32]).unwrap();
        let db = crate::DbId([1; 16]);
        let keys: Vec<_> = [
            KekPurpose::Wrap,
            KekPurpose::KeyCheck,
            KekPurpose::RegistryMac,
            KekPurpose::Anchor,
        ]
        .iter()
        .map(|p| {
            kek_subkey(&CryptoProvider::default(), &kek, &db, *p)
                .unwrap()
                .expose()
                .to_vec()
        })
        .collect();
        for i in 0..keys.len() {
            for j in i + 1..keys.len() {
                assert_ne!(keys[i], keys[j]);
            }
            assert_ne!(keys[i], kek.secret().expose());
        }
        let other_db = kek_subkey(
            &CryptoProvider::default(),
            &kek,
            &crate::DbId([2; 16]),
            KekPurpose::Wrap,
        )
        .unwrap();
        assert_ne!(other_db.expose(), &keys[0][..]);
    }
}
