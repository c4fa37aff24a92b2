//! Identifiers that bind sealed units to their database.

use std::fmt;

use crate::error::CryptoError;

/// A database's random 128-bit identity, recorded in every file header and
/// bound into every sealed unit's AAD, so that files of two databases can
/// never be mixed, even under the same key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DbId(pub [u8; 16]);

impl DbId {
    /// A fresh id from the OS CSPRNG.
    pub fn random() -> Result<Self, CryptoError> {
        let mut b = [0u8; 16];
        crate::random::fill(&mut b)?;
        Ok(DbId(b))
    }

    /// A fresh id: `provider`'s random bytes XOR the OS CSPRNG's
    /// ([`crate::random::mixed_fill`]).
    pub fn random_from(provider: &crate::CryptoProvider) -> Result<Self, CryptoError> {
        let mut b = [0u8; 16];
        crate::random::mixed_fill(provider, &mut b)?;
        Ok(DbId(b))
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for DbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbId({self})")
    }
}
