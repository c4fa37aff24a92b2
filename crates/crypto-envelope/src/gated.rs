//! [`GatedAead`]: a cipher that stops working once its algorithm fails a
//! re-check.
//!
//! A writer session's sealers, the keyring's openers and an archive's
//! chunk sealer and opener live as long as the database or the archive is
//! open, far longer than the moment the provider checked their
//! algorithm. When [`CryptoProvider::self_test_again`] marks an algorithm
//! failed, every such holder must stop too, not only the next one built:
//! each keeps its algorithm's gate and looks at the mark (one atomic load)
//! before every seal and open.
//!
//! [`CryptoProvider::self_test_again`]: crate::CryptoProvider::self_test_again

use crate::aead::Aead;
use crate::error::CryptoError;
use crate::selftest::Gate;

/// A cipher built by the provider, with its algorithm's self-test gate.
pub(crate) struct GatedAead {
    aead: Box<dyn Aead>,
    gate: Gate,
}

impl GatedAead {
    /// `aead`, usable while `gate` is not marked failed.
    pub(crate) fn new(aead: Box<dyn Aead>, gate: Gate) -> Self {
        GatedAead { aead, gate }
    }

    /// The cipher, or the self-test failure its algorithm was marked with.
    pub(crate) fn get(&self) -> Result<&dyn Aead, CryptoError> {
        self.gate.failed_later_verdict()?;
        Ok(self.aead.as_ref())
    }

    /// The cipher, for its algorithm id and lengths only (those are the
    /// checked answers, whatever the gate says).
    pub(crate) fn describe(&self) -> &dyn Aead {
        self.aead.as_ref()
    }
}
