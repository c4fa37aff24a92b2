//! Blind-index keys: look a sealed value up by equality without storing the
//! value, or a deterministic ciphertext of it.
//!
//! A blind index stores `HMAC-SHA256(index key, normalized value)` in place
//! of the value. The index key is derived from a field key (random, wrapped
//! in the key registry, destroyable) for one database and one *scope* — the
//! parts that name what is indexed, such as a collection, a field and a
//! tenant:
//!
//! ```text
//! index key = HKDF-SHA256(ikm = field key, salt = database id,
//!                         info = "sealkv/v1/field/blind-index"
//!                                || for each scope part: u32 BE len || part)
//! tag       = HMAC-SHA256(index key, value)
//! ```
//!
//! Both go through the provider's KDF and MAC parts. The length prefixes
//! keep scopes such as `["ab", "c"]` and `["a", "bc"]` apart. Destroying the
//! field key makes every tag computed under it unlinkable: nobody can
//! compute the tag of a guessed value any more, so stored tags cannot be
//! matched to values.
//!
//! **What a tag leaks** to someone who reads the files: which stored tags
//! are equal (records that share a value within one scope), and how many
//! records share each; never the value. Tags of one value under two scopes
//! (two fields, two tenants, two databases) are unrelated. Values from a
//! small set (a yes/no field, a birth year) can be told apart only by
//! someone who can compute tags, that is who holds the field key.
//!
//! ```
//! use sealkv_crypto_envelope::blind::BlindIndexKey;
//! use sealkv_crypto_envelope::{CryptoProvider, DataKey, DbId, EncryptionAlgorithm, KeyId, SecretKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = CryptoProvider::default();
//! let tenant = DataKey::new(KeyId(3), EncryptionAlgorithm::Aes256Gcm.id(), SecretKey::random()?);
//! let db = DbId([7; 16]);
//! let email = BlindIndexKey::derive(&provider, &tenant, &db, &[b"users", b"email"])?;
//! let phone = BlindIndexKey::derive(&provider, &tenant, &db, &[b"users", b"phone"])?;
//! assert_eq!(email.tag(b"ada@example.com"), email.tag(b"ada@example.com"));
//! assert_ne!(email.tag(b"ada@example.com"), phone.tag(b"ada@example.com"));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use crate::error::CryptoError;
use crate::ids::DbId;
use crate::kdf::{LABEL_PREFIX, hkdf_sha256};
use crate::keys::{DataKey, SecretKey};
use crate::primitives::{KeyedMac, Mac};
use crate::provider::CryptoProvider;

/// The length of a full tag, in bytes (callers may keep a prefix of it).
pub const BLIND_TAG_LEN: usize = 32;

/// The most scope parts, and the longest part, [`BlindIndexKey::derive`]
/// takes (keeps the HKDF info bounded).
pub const MAX_SCOPE_PARTS: usize = 16;
/// The longest scope part, in bytes.
pub const MAX_SCOPE_PART_LEN: usize = 4096;

/// An index key for one scope: computes blind tags. Its `Debug` shows
/// nothing of the key; the key is zeroized on drop.
#[derive(Clone)]
pub struct BlindIndexKey {
    /// Shared by the clones (a cache hands out one per tag), wiped when
    /// the last one drops.
    key: Arc<SecretKey>,
    mac: Arc<dyn Mac>,
    /// The key's HMAC pad states, hashed once, when the provider's MAC
    /// prepares keys ([`Mac::keyed`]): a tag then hashes only its value.
    prepared: Option<Arc<dyn KeyedMac>>,
}

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexKey(<redacted>)")
    }
}

impl BlindIndexKey {
    /// The index key of `scope` under `field_key` in database `db_id` (see
    /// the [module docs](self)). A scope of more than [`MAX_SCOPE_PARTS`]
    /// parts, or a part longer than [`MAX_SCOPE_PART_LEN`], is refused.
    pub fn derive(
        provider: &CryptoProvider,
        field_key: &DataKey,
        db_id: &DbId,
        scope: &[&[u8]],
    ) -> Result<Self, CryptoError> {
        if scope.len() > MAX_SCOPE_PARTS || scope.iter().any(|p| p.len() > MAX_SCOPE_PART_LEN) {
            return Err(CryptoError::KeyDerivation(
                crate::primitives::PrimitiveError::Parameters("blind-index scope too large"),
            ));
        }
        let lens: Vec<[u8; 4]> = scope
            .iter()
            // Bounded by MAX_SCOPE_PART_LEN above.
            .map(|p| (p.len() as u32).to_be_bytes())
            .collect();
        let mut info: Vec<&[u8]> = Vec::with_capacity(2 + 2 * scope.len());
        info.push(LABEL_PREFIX);
        info.push(b"/field/blind-index");
        for (len, part) in lens.iter().zip(scope) {
            info.push(len);
            info.push(part);
        }
        let key = hkdf_sha256(
            provider,
            field_key.secret().expose(),
            db_id.as_bytes(),
            &info,
        )?;
        let mac = provider.mac()?;
        let prepared = mac.keyed(key.expose()).map(Arc::from);
        Ok(BlindIndexKey {
            key: Arc::new(key),
            mac,
            prepared,
        })
    }

    /// `HMAC-SHA256(index key, value)`.
    pub fn tag(&self, value: &[u8]) -> [u8; BLIND_TAG_LEN] {
        match &self.prepared {
            Some(keyed) => keyed.hmac_sha256(&[value]),
            None => self.mac.hmac_sha256(self.key.expose(), &[value]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EncryptionAlgorithm, KeyId};

    fn key(byte: u8) -> DataKey {
        DataKey::new(
            KeyId(1),
            EncryptionAlgorithm::Aes256Gcm.id(),
            SecretKey::from_bytes(&[byte; 32]).unwrap(),
        )
    }

    #[test]
    fn tags_depend_on_key_database_and_every_scope_part() {
        let p = CryptoProvider::default();
        let db = DbId([1; 16]);
        let tag = |k: &DataKey, db: &DbId, scope: &[&[u8]]| {
            BlindIndexKey::derive(&p, k, db, scope).unwrap().tag(b"v")
        };
        let base = tag(&key(1), &db, &[b"users", b"email"]);
        assert_eq!(base, tag(&key(1), &db, &[b"users", b"email"]));
        let others = [
            tag(&key(2), &db, &[b"users", b"email"]),
            tag(&key(1), &DbId([2; 16]), &[b"users", b"email"]),
            tag(&key(1), &db, &[b"users", b"phone"]),
            tag(&key(1), &db, &[b"user", b"semail"]),
            tag(&key(1), &db, &[b"users", b"email", b""]),
            tag(&key(1), &db, &[b"users", b"email", b"tenant-1"]),
        ];
        for (i, t) in others.iter().enumerate() {
            assert_ne!(*t, base, "variant {i}");
        }
        let k = BlindIndexKey::derive(&p, &key(1), &db, &[b"users"]).unwrap();
        assert_ne!(k.tag(b"a"), k.tag(b"b"));
        assert_eq!(format!("{k:?}"), "BlindIndexKey(<redacted>)");
    }

    #[test]
    fn the_construction_is_hkdf_then_hmac_as_documented() {
        // Recomputed here from the documented formula with the provider's
        // parts, so a change of labels or layout fails this test.
        let p = CryptoProvider::default();
        let db = DbId([9; 16]);
        let fk = key(4);
        let mut info = b"sealkv/v1/field/blind-index".to_vec();
        for part in [&b"c"[..], b"field"] {
            info.extend_from_slice(&(part.len() as u32).to_be_bytes());
            info.extend_from_slice(part);
        }
        let ikey = hkdf_sha256(&p, &[4; 32], &[9; 16], &[&info]).unwrap();
        let want = p.mac().unwrap().hmac_sha256(ikey.expose(), &[b"value"]);
        let got = BlindIndexKey::derive(&p, &fk, &db, &[b"c", b"field"])
            .unwrap()
            .tag(b"value");
        assert_eq!(got, want);
    }

    #[test]
    fn a_prepared_key_tags_as_the_key_given_each_time() {
        let p = CryptoProvider::default();
        let k = BlindIndexKey::derive(&p, &key(5), &DbId([3; 16]), &[b"c", b"f"]).unwrap();
        assert!(
            k.prepared.is_some(),
            "the default MAC prepares keys: tags take the prepared path"
        );
        let mac = p.mac().unwrap();
        // Values shorter and longer than a SHA-256 block, and empty; each
        // asked twice (the states are copied per tag, never consumed).
        for value in [&b""[..], b"a@b.org", &[7u8; 64], &[9u8; 200]] {
            let want = mac.hmac_sha256(k.key.expose(), &[value]);
            assert_eq!(k.tag(value), want);
            assert_eq!(k.clone().tag(value), want);
        }
    }

    #[test]
    fn oversized_scopes_are_refused() {
        let p = CryptoProvider::default();
        let db = DbId([1; 16]);
        let many: Vec<&[u8]> = vec![b"x"; MAX_SCOPE_PARTS + 1];
        assert!(BlindIndexKey::derive(&p, &key(1), &db, &many).is_err());
        let long = vec![0u8; MAX_SCOPE_PART_LEN + 1];
        assert!(BlindIndexKey::derive(&p, &key(1), &db, &[&long]).is_err());
    }
}
