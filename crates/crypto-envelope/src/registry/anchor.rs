//! [`AnchorKey`]: the master key's subkey that authenticates a database's
//! freshness anchor.
//!
//! A freshness anchor is a small record kept outside the database directory
//! (another path, a KMS, a TPM counter) that says how far the database has
//! come, so a whole-directory restore of an older copy is detected. Where it
//! is stored on something an attacker could write, its bytes carry an
//! HMAC-SHA256 under this key: `HKDF(KEK, salt = db id, "sealkv/v1" ||
//! "/kek/anchor")`. It is bound to the database id by the derivation, and
//! changes with the master key (a rekey).

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::keys::SecretKey;
use crate::primitives::Mac;

/// Length of an anchor tag (HMAC-SHA256).
pub const ANCHOR_TAG_LEN: usize = 32;

/// The subkey that authenticates a freshness anchor. Obtained from an open
/// registry ([`KeyRegistry::anchor_key`](super::KeyRegistry::anchor_key));
/// `Debug` shows no key material; zeroized on drop.
#[derive(Clone)]
pub struct AnchorKey {
    key: SecretKey,
    /// The provider's (self-tested) HMAC-SHA256.
    hmac: Arc<dyn Mac>,
}

impl fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnchorKey(<redacted>)")
    }
}

impl AnchorKey {
    pub(super) fn new(key: SecretKey, hmac: Arc<dyn Mac>) -> Self {
        AnchorKey { key, hmac }
    }

    /// HMAC-SHA256 of `message` under this key.
    pub fn tag(&self, message: &[u8]) -> [u8; ANCHOR_TAG_LEN] {
        self.hmac.hmac_sha256(self.key.expose(), &[message])
    }

    /// Whether `tag` is this key's tag of `message`, compared in constant
    /// time.
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        bool::from(self.tag(message)[..].ct_eq(tag))
    }
}

#[cfg(test)]
mod tests {
    use crate::{DbId, EncryptionAlgorithm, KeySource, MasterKey};

    fn registry(kek: u8, db: u8) -> super::super::KeyRegistry {
        super::super::KeyRegistry::create(
            DbId([db; 16]),
            &KeySource::Key(MasterKey::from_bytes(&[kek; 32]).unwrap()),
            EncryptionAlgorithm::Aes256Gcm.id(),
        )
        .unwrap()
    }

    #[test]
    fn tags_depend_on_the_master_key_and_the_database() {
        let a = registry(1, 1).anchor_key();
        assert!(a.verify(b"state", &a.tag(b"state")));
        assert!(!a.verify(b"state2", &a.tag(b"state")));
        for other in [registry(2, 1).anchor_key(), registry(1, 2).anchor_key()] {
            assert!(!other.verify(b"state", &a.tag(b"state")));
        }
        // A rekey changes it; the same master key gives the same one.
        let mut reg = registry(1, 1);
        assert!(reg.anchor_key().verify(b"s", &a.tag(b"s")));
        reg.rekey(&KeySource::Key(MasterKey::from_bytes(&[3; 32]).unwrap()))
            .unwrap();
        assert!(!reg.anchor_key().verify(b"s", &a.tag(b"s")));
        assert_eq!(format!("{a:?}"), "AnchorKey(<redacted>)");
    }
}
