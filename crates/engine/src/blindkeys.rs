//! Blind-index keys already derived, so a layer that tags one value per
//! record (a typed collection's blind index) pays for the HKDF once per
//! field key and scope instead of once per value.
//!
//! The cache is keyed by field key id and scope, and holds only keys of
//! field keys that were usable when kept: a key is derived outside the
//! registry lock and kept only if the field key is still there under it.
//! Every lookup first asks the registry for the field key (so a destroyed
//! or unknown key answers as it would without the cache), and destroying
//! a field key drops its derived keys here at once (zeroized: [`BlindIndexKey`] wipes its key on
//! drop), so no key of a shredded field key outlives it in memory.

use std::collections::HashMap;

use parking_lot::Mutex;
use sealkv_crypto_envelope::KeyId;
use sealkv_crypto_envelope::blind::BlindIndexKey;

/// The most derived keys kept; past it the cache starts over (a database
/// with more tenants than this derives again, as it did without a cache).
const MAX_KEYS: usize = 4096;

/// Derived blind-index keys by field key and encoded scope. Its `Debug`
/// shows only how many it holds.
#[derive(Default)]
pub(crate) struct BlindKeys {
    keys: Mutex<HashMap<(KeyId, Vec<u8>), BlindIndexKey>>,
}

impl std::fmt::Debug for BlindKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlindKeys")
            .field("len", &self.keys.lock().len())
            .finish()
    }
}

/// A scope's parts, each length-prefixed: two scopes encode alike only if
/// they are the same parts.
fn encode(scope: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(scope.iter().map(|p| 4 + p.len()).sum());
    for part in scope {
        // A part too long for a u32 prefix is refused by the derivation
        // (its parts are at most a few KiB) before it is ever cached.
        out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

impl BlindKeys {
    /// The key of `scope` under field key `id`, if it was derived. The
    /// caller has just checked, under the registry lock, that the field
    /// key is usable.
    pub(crate) fn get(&self, id: KeyId, scope: &[&[u8]]) -> Option<BlindIndexKey> {
        self.keys.lock().get(&(id, encode(scope))).cloned()
    }

    /// Keeps `key`, derived for `scope` under field key `id`. The caller
    /// holds the registry lock and has just found the field key usable
    /// there, so no destruction passes between (its [`BlindKeys::forget`]
    /// runs under the same lock).
    pub(crate) fn keep(&self, id: KeyId, scope: &[&[u8]], key: BlindIndexKey) {
        let mut keys = self.keys.lock();
        if keys.len() >= MAX_KEYS {
            keys.clear();
        }
        keys.insert((id, encode(scope)), key);
    }

    /// How many derived keys are kept (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.lock().len()
    }

    /// Drops every key derived from field key `id`.
    pub(crate) fn forget(&self, id: KeyId) {
        self.keys.lock().retain(|(key, _), _| *key != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_that_differ_only_in_where_parts_split_encode_apart() {
        assert_ne!(encode(&[b"ab", b"c"]), encode(&[b"a", b"bc"]));
        assert_ne!(encode(&[b"abc"]), encode(&[b"abc", b""]));
        assert_eq!(encode(&[b"a", b"b"]), encode(&[b"a", b"b"]));
    }

    fn derived(
        derivations: &mut u32,
        byte: u8,
    ) -> Result<BlindIndexKey, sealkv_crypto_envelope::CryptoError> {
        use sealkv_crypto_envelope::{
            CryptoProvider, DataKey, DbId, EncryptionAlgorithm, SecretKey,
        };
        *derivations += 1;
        let fk = DataKey::new(
            KeyId(u32::from(byte)),
            EncryptionAlgorithm::Aes256Gcm.id(),
            SecretKey::from_bytes(&[byte; 32])?,
        );
        BlindIndexKey::derive(&CryptoProvider::default(), &fk, &DbId([1; 16]), &[b"s"])
    }

    impl BlindKeys {
        /// `get`, or `derive` and `keep`.
        fn get_or_derive(
            &self,
            id: KeyId,
            scope: &[&[u8]],
            derive: impl FnOnce() -> Result<BlindIndexKey, sealkv_crypto_envelope::CryptoError>,
        ) -> Result<BlindIndexKey, sealkv_crypto_envelope::CryptoError> {
            if let Some(key) = self.get(id, scope) {
                return Ok(key);
            }
            let key = derive()?;
            self.keep(id, scope, key.clone());
            Ok(key)
        }
    }

    #[test]
    fn a_key_is_derived_once_per_field_key_and_scope_until_forgotten() {
        let cache = BlindKeys::default();
        let mut n = 0;
        let a = cache
            .get_or_derive(KeyId(1), &[b"s"], || derived(&mut n, 1))
            .unwrap();
        let again = cache
            .get_or_derive(KeyId(1), &[b"s"], || derived(&mut n, 1))
            .unwrap();
        assert_eq!(n, 1, "the second ask is served from the cache");
        assert_eq!(a.tag(b"v"), again.tag(b"v"));
        cache
            .get_or_derive(KeyId(1), &[b"t"], || derived(&mut n, 1))
            .unwrap();
        cache
            .get_or_derive(KeyId(2), &[b"s"], || derived(&mut n, 2))
            .unwrap();
        assert_eq!(n, 3, "another scope or field key derives its own");
        cache.forget(KeyId(1));
        assert_eq!(cache.keys.lock().len(), 1, "only key 2's stays");
        cache
            .get_or_derive(KeyId(1), &[b"s"], || derived(&mut n, 1))
            .unwrap();
        assert_eq!(n, 4, "a forgotten key is derived again");
        assert_eq!(format!("{cache:?}"), "BlindKeys { len: 2 }");
    }
}
